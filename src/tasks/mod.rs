//! Durable background work: resume generation, e-mail, log retention and
//! the refresh of hot cached reads all run as rows of the `tasks` table (see [`queue`]).
//!
//! Why not a queue crate: apalis and friends keep tasks in their own tables
//! through their own pools, so a task could not be written in the same
//! transaction as the change that caused it — a crash between the two would
//! lose the task or run it for a change that never committed. Here a task
//! is committed with its change or not at all, is claimed under a lease
//! (`FOR UPDATE SKIP LOCKED` on PostgreSQL) so replicas never run it twice
//! concurrently, is retried with exponential back-off, and a task whose
//! worker died is claimed again when its lease runs out. Handlers are
//! idempotent (a resume already READY is not written again; a mail carries
//! a Message-ID derived from its task), which turns at-least-once delivery
//! into effects that happen once.
//!
//! Workers use a database pool of their own, so background work never
//! takes a connection a request is waiting for.

mod handlers;

pub use handlers::{Failure, Handlers, TaskHandler, builtin, id_field};

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use futures::FutureExt;
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};
use sea_orm::DatabaseConnection;
use tokio::{sync::Notify, task::JoinSet};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::db::queue;
pub use crate::db::queue::NewTask;
use crate::{
    config::{Limit, TaskSettings},
    db::entities::task,
    email::{Email, Mailer},
    resume_writer::ResumeWriter,
    throttle::Throttle,
    unit_of_work::Writer,
};

/// The payload of an `email.send` task for a team's user.
pub fn email_payload(team_id: i64, email: &Email) -> serde_json::Value {
    serde_json::json!({
        "teamId": team_id,
        "to": email.to,
        "subject": email.subject,
        "body": email.body,
    })
}

pub use crate::db::queue::{EMAIL, REFRESH, RESUME, RETENTION, TaskHandle};

/// Sending one e-mail to a user of `team_id`.
pub fn email(tasks: &TaskHandle, team_id: i64, email: &Email) -> NewTask {
    tasks.task(EMAIL, email_payload(team_id, email))
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DepthLabel {
    pub kind: String,
    pub status: String,
}

/// Queue and worker metrics.
#[derive(Debug)]
pub struct TaskMetrics {
    pub depth: Family<DepthLabel, Gauge>,
    pub completed: Family<KindLabel, Counter>,
    pub retried: Family<KindLabel, Counter>,
    pub failed: Family<KindLabel, Counter>,
    pub released: Family<KindLabel, Counter>,
    pub duration: Family<KindLabel, Histogram, fn() -> Histogram>,
    pub wait: Family<KindLabel, Histogram, fn() -> Histogram>,
    pub logs_deleted: Counter,
}

fn seconds_histogram() -> Histogram {
    // 1 ms … ~9 min.
    Histogram::new(exponential_buckets(0.001, 2.5, 16))
}

impl TaskMetrics {
    pub fn new(registry: &mut Registry) -> Self {
        let metrics = Self {
            depth: Family::default(),
            completed: Family::default(),
            retried: Family::default(),
            failed: Family::default(),
            released: Family::default(),
            duration: Family::new_with_constructor(seconds_histogram),
            wait: Family::new_with_constructor(seconds_histogram),
            logs_deleted: Counter::default(),
        };
        registry.register(
            "task_queue_depth",
            "Tasks queued or running, by kind and status",
            metrics.depth.clone(),
        );
        // The series dashboards and alerts read exist from the start, at 0
        // (the scheduler first measures the queue a moment after start).
        for kind in [RESUME, EMAIL, RETENTION, REFRESH] {
            for status in ["queued", "running"] {
                let _ = metrics.depth.get_or_create(&DepthLabel {
                    kind: kind.into(),
                    status: status.into(),
                });
            }
        }
        registry.register(
            "tasks_completed",
            "Tasks finished successfully",
            metrics.completed.clone(),
        );
        registry.register(
            "tasks_retried",
            "Task attempts that failed and were rescheduled",
            metrics.retried.clone(),
        );
        registry.register(
            "tasks_failed",
            "Tasks that failed for good",
            metrics.failed.clone(),
        );
        registry.register(
            "tasks_released",
            "Tasks handed back to the queue at shutdown",
            metrics.released.clone(),
        );
        registry.register(
            "task_duration_seconds",
            "Time a task attempt ran",
            metrics.duration.clone(),
        );
        registry.register(
            "task_wait_seconds",
            "Time a task waited in the queue before it ran",
            metrics.wait.clone(),
        );
        registry.register(
            "logs_deleted",
            "Activity-log rows deleted by retention",
            metrics.logs_deleted.clone(),
        );
        metrics
    }

    /// Creates the series of `kinds` at 0 (see the cache's metrics: a
    /// series that does not exist yet reads as no data, not zero).
    pub fn start_series<'a>(&self, kinds: impl IntoIterator<Item = &'a str>) {
        for kind in kinds {
            let l = Self::kind(kind);
            let _ = self.completed.get_or_create(&l);
            let _ = self.retried.get_or_create(&l);
            let _ = self.failed.get_or_create(&l);
            let _ = self.released.get_or_create(&l);
        }
    }

    fn kind(kind: &str) -> KindLabel {
        KindLabel {
            kind: kind.to_owned(),
        }
    }
}

/// What handlers work with.
pub struct TaskContext {
    pub db: DatabaseConnection,
    /// Handlers write through it, like mutations.
    pub writer: Writer,
    /// Counts mails against each team's quota.
    pub throttle: Arc<Throttle>,
    /// `QUOTA_MAILS_PER_TEAM`.
    pub mail_quota: Limit,
    pub resume_writer: ResumeWriter,
    pub mailer: Mailer,
    pub settings: TaskSettings,
    pub metrics: Arc<TaskMetrics>,
    /// What each kind of task does.
    pub handlers: Handlers,
    pub wake: Arc<Notify>,
}

/// The running workers and scheduler of one replica.
pub struct TaskSystem {
    ctx: Arc<TaskContext>,
    stop_claiming: CancellationToken,
    abandon: CancellationToken,
    workers: tokio::sync::Mutex<JoinSet<()>>,
}

impl TaskSystem {
    /// Starts `concurrency` workers and the scheduler.
    pub fn start(ctx: Arc<TaskContext>) -> Arc<Self> {
        ctx.metrics.start_series(ctx.handlers.keys().copied());
        let system = Arc::new(Self {
            stop_claiming: CancellationToken::new(),
            abandon: CancellationToken::new(),
            workers: tokio::sync::Mutex::new(JoinSet::new()),
            ctx,
        });
        let mut handles = JoinSet::new();
        let node = format!("{}-{:08x}", std::process::id(), rand::random::<u32>());
        for n in 0..system.ctx.settings.concurrency {
            handles.spawn(worker(Arc::clone(&system), format!("{node}-{n}")));
        }
        if system.ctx.settings.concurrency > 0 {
            handles.spawn(scheduler(Arc::clone(&system)));
        }
        if let Ok(mut workers) = system.workers.try_lock() {
            *workers = handles;
        }
        tracing::info!(
            workers = system.ctx.settings.concurrency,
            resume_writer = system.ctx.resume_writer.describe(),
            mail = system.ctx.mailer.describe(),
            "background workers started"
        );
        system
    }

    pub fn context(&self) -> &Arc<TaskContext> {
        &self.ctx
    }

    /// Stops taking new tasks (on SIGTERM, before requests drain).
    pub fn stop_claiming(&self) {
        self.stop_claiming.cancel();
    }

    /// Lets running tasks finish within the grace period, hands the rest
    /// back to the queue, and waits for every worker to exit.
    pub async fn drain(&self) {
        self.stop_claiming.cancel();
        let mut workers = std::mem::take(&mut *self.workers.lock().await);
        let grace = self.ctx.settings.shutdown_grace;
        let deadline = tokio::time::Instant::now() + grace;
        let mut handed_back = false;
        loop {
            let next = if handed_back {
                // Handing back is a write; one that cannot be made now
                // (the database is away or locked) is left to the lease.
                match tokio::time::timeout_at(deadline + HAND_BACK_LIMIT, workers.join_next()).await
                {
                    Ok(next) => next,
                    Err(_) => {
                        tracing::warn!(
                            running = workers.len(),
                            "tasks could not be handed back in time: their leases will expire"
                        );
                        workers.abort_all();
                        break;
                    }
                }
            } else {
                match tokio::time::timeout_at(deadline, workers.join_next()).await {
                    Ok(next) => next,
                    Err(_) => {
                        tracing::warn!(
                            ?grace,
                            "tasks still running after the grace period: handing them back to the queue"
                        );
                        self.abandon.cancel();
                        handed_back = true;
                        continue;
                    }
                }
            };
            if next.is_none() {
                break;
            }
        }
        tracing::info!("background workers stopped");
    }
}

/// How long workers get, after the grace period, to hand their tasks back.
const HAND_BACK_LIMIT: Duration = Duration::from_millis(500);

async fn worker(system: Arc<TaskSystem>, name: String) {
    let ctx = &system.ctx;
    loop {
        if system.stop_claiming.is_cancelled() {
            return;
        }
        match queue::claim(&ctx.db, &name, 1, ctx.settings.lease).await {
            Ok(tasks) if !tasks.is_empty() => {
                for task in tasks {
                    run(&system, &name, task).await;
                }
            }
            Ok(_) => {
                tokio::select! {
                    () = system.stop_claiming.cancelled() => return,
                    () = ctx.wake.notified() => {},
                    () = tokio::time::sleep(ctx.settings.poll) => {},
                }
            }
            Err(error) => {
                tracing::warn!(%error, "claiming tasks failed; retrying");
                tokio::select! {
                    () = system.stop_claiming.cancelled() => return,
                    () = tokio::time::sleep(ctx.settings.poll) => {},
                }
            }
        }
    }
}

/// Runs one claimed task to completion, retry, failure or release, in a
/// span of its own (every log line of the attempt names the task).
async fn run(system: &TaskSystem, worker: &str, task: task::Model) {
    let span = tracing::info_span!(
        "task",
        id = task.id,
        kind = %task.kind,
        attempt = task.attempts,
        trace_id = tracing::field::Empty,
        span_id = tracing::field::Empty,
        otel.name = %format_args!("task {}", task.kind),
    );
    if let Some(cause) = &task.trace_context {
        crate::telemetry::link(&span, cause);
    }
    crate::telemetry::record_ids(&span);
    settle(system, worker, task).instrument(span).await;
}

async fn settle(system: &TaskSystem, worker: &str, task: task::Model) {
    let ctx = &system.ctx;
    let kind = TaskMetrics::kind(&task.kind);
    let waited = (crate::db::now() - task.run_at)
        .to_std()
        .unwrap_or_default();
    ctx.metrics
        .wait
        .get_or_create(&kind)
        .observe(waited.as_secs_f64());
    let started = Instant::now();
    // Stop well before the lease runs out, so no other worker can start it
    // while this attempt is still going.
    let limit = ctx.settings.lease.mul_f64(0.9);
    // The attempt runs as a task of its own: a handler that panics fails
    // this attempt, and one that hangs (or keeps a thread busy) is left
    // behind at the limit; either way the worker goes on.
    let attempt = tokio::spawn({
        let ctx = Arc::clone(&system.ctx);
        let task = task.clone();
        async move { dispatch(&ctx, &task).await }.in_current_span()
    });
    let cancel = attempt.abort_handle();
    let outcome = tokio::select! {
        outcome = tokio::time::timeout(limit, attempt) => Some(outcome),
        () = system.abandon.cancelled() => None,
    };
    if !matches!(outcome, Some(Ok(Ok(_)))) {
        cancel.abort();
    }
    ctx.metrics
        .duration
        .get_or_create(&kind)
        .observe(started.elapsed().as_secs_f64());
    let result = match outcome {
        None => {
            ctx.metrics.released.get_or_create(&kind).inc();
            tracing::info!(
                task = task.id,
                kind = task.kind,
                "handed back to the queue at shutdown"
            );
            queue::release(&ctx.db, task.id, worker).await.map(|_| ())
        }
        Some(Ok(Ok(Ok(())))) => {
            ctx.metrics.completed.get_or_create(&kind).inc();
            queue::complete(&ctx.db, task.id, worker).await.map(|held| {
                if !held {
                    tracing::warn!(task = task.id, "finished a task whose lease had run out");
                }
            })
        }
        Some(outcome) => {
            let failure = match outcome {
                Ok(Ok(Err(failure))) => failure,
                Ok(Err(join)) => Failure::Retry {
                    message: match join.try_into_panic() {
                        Ok(panic) => format!("the handler panicked: {}", panic_message(&panic)),
                        Err(_) => "the attempt was cancelled".to_owned(),
                    },
                    after: None,
                },
                Err(_) => Failure::Retry {
                    message: format!("timed out after {limit:?}"),
                    after: None,
                },
                Ok(Ok(Ok(()))) => unreachable_success(),
            };
            settle_failure(ctx, worker, &task, failure).await
        }
    };
    if let Err(error) = result {
        tracing::error!(%error, task = task.id, "recording a task's outcome failed; its lease will expire");
    }
}

/// Runs one attempt with the handler of its kind.
async fn dispatch(ctx: &TaskContext, task: &task::Model) -> Result<(), Failure> {
    match ctx.handlers.get(task.kind.as_str()) {
        Some(handler) => handler.run(ctx, task).await,
        None => Err(Failure::Permanent(format!(
            "unknown task kind `{}`",
            task.kind
        ))),
    }
}

/// Calls the give-up hook of a task's kind (a handler that panics there
/// only loses the hook).
async fn give_up(ctx: &TaskContext, task: &task::Model, message: &str) {
    if let Some(handler) = ctx.handlers.get(task.kind.as_str())
        && let Err(panic) = std::panic::AssertUnwindSafe(handler.give_up(ctx, task, message))
            .catch_unwind()
            .await
    {
        tracing::error!(
            task = task.id,
            panic = panic_message(&panic),
            "a give-up hook panicked"
        );
    }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_owned())
}

/// The success arm is matched before; kept total without a panic.
fn unreachable_success() -> Failure {
    Failure::Retry {
        message: "internal: a success was treated as a failure".to_owned(),
        after: None,
    }
}

async fn settle_failure(
    ctx: &TaskContext,
    worker: &str,
    task: &task::Model,
    failure: Failure,
) -> Result<(), sea_orm::DbErr> {
    let kind = TaskMetrics::kind(&task.kind);
    let (message, after, permanent) = match failure {
        Failure::Retry { message, after } => (message, after, false),
        Failure::Permanent(message) => (message, None, true),
    };
    if !permanent && task.attempts < task.max_attempts {
        let delay = after.unwrap_or_else(|| backoff(ctx.settings.backoff, task.attempts));
        let run_at = crate::db::now() + chrono::Duration::from_std(delay).unwrap_or_default();
        ctx.metrics.retried.get_or_create(&kind).inc();
        tracing::warn!(
            task = task.id,
            kind = task.kind,
            attempt = task.attempts,
            error = message,
            ?delay,
            "task failed; retrying"
        );
        queue::retry_or_fail(&ctx.db, task.id, worker, &message, Some(run_at)).await?;
        return Ok(());
    }
    ctx.metrics.failed.get_or_create(&kind).inc();
    tracing::error!(
        task = task.id,
        kind = task.kind,
        attempts = task.attempts,
        error = message,
        "task failed for good"
    );
    give_up(ctx, task, &message).await;
    queue::retry_or_fail(&ctx.db, task.id, worker, &message, None).await?;
    Ok(())
}

/// Fails for good the tasks whose lease ran out after their last attempt
/// (their worker died, or the handler killed it), running their give-up
/// hooks: whatever killed it, a task ends after `max_attempts`.
async fn reap(ctx: &TaskContext) {
    match queue::reap_exhausted(&ctx.db).await {
        Ok(reaped) => {
            for task in reaped {
                let message = task.last_error.clone().unwrap_or_default();
                ctx.metrics
                    .failed
                    .get_or_create(&TaskMetrics::kind(&task.kind))
                    .inc();
                tracing::error!(
                    task = task.id,
                    kind = task.kind,
                    attempts = task.attempts,
                    "task failed for good: its lease ran out on its last attempt"
                );
                give_up(ctx, &task, &message).await;
            }
        }
        Err(error) => tracing::warn!(%error, "reaping exhausted tasks failed"),
    }
}

/// `base × 2^(attempt-1)`, at most five minutes, with ±20% jitter.
fn backoff(base: Duration, attempt: i32) -> Duration {
    let exp = base.saturating_mul(1u32 << (attempt.clamp(1, 20) - 1) as u32);
    let capped = exp.min(Duration::from_secs(300));
    capped.mul_f64(0.8 + rand::random::<f64>() * 0.4)
}

/// Enqueues periodic work and refreshes the depth gauges.
async fn scheduler(system: Arc<TaskSystem>) {
    let ctx = &system.ctx;
    let mut retention = tokio::time::interval(ctx.settings.retention_interval);
    let mut gauges = tokio::time::interval(Duration::from_secs(5));
    let mut reaping = tokio::time::interval(
        (ctx.settings.poll * 4).clamp(Duration::from_millis(200), Duration::from_secs(5)),
    );
    loop {
        tokio::select! {
            () = system.stop_claiming.cancelled() => return,
            _ = retention.tick() => {
                let task = NewTask::new(RETENTION, serde_json::json!({})).dedup(RETENTION);
                match queue::enqueue(&ctx.db, &[task]).await {
                    Ok(0) => {}
                    Ok(_) => ctx.wake.notify_one(),
                    Err(error) => tracing::warn!(%error, "scheduling log retention failed"),
                }
            }
            _ = reaping.tick() => reap(ctx).await,
            _ = gauges.tick() => {
                if let Ok(rows) = queue::depth(&ctx.db).await {
                    for kind in [RESUME, EMAIL, RETENTION, REFRESH] {
                        for status in ["queued", "running"] {
                            let n = rows.iter().find(|(k, s, _)| k == kind && s == status).map_or(0, |r| r.2);
                            ctx.metrics.depth.get_or_create(&DepthLabel { kind: kind.into(), status: status.into() }).set(n);
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let base = Duration::from_secs(2);
        for _ in 0..100 {
            let first = backoff(base, 1);
            assert!(first >= Duration::from_millis(1600) && first <= Duration::from_millis(2400));
            let third = backoff(base, 3);
            assert!(third >= Duration::from_millis(6400) && third <= Duration::from_millis(9600));
            assert!(backoff(base, 30) <= Duration::from_secs(360));
        }
    }
}
