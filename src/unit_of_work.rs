//! The one way data is written. A [`UnitOfWork`] wraps the transaction of
//! one change and collects, as the change is made, what must follow it:
//! activity-log entries and background tasks (written in the same
//! transaction, so they exist if and only if the change does), the cache
//! namespaces it touched, and the events it causes. [`UnitOfWork::commit`]
//! then commits and, in this order: makes every cached answer that depended
//! on the touched namespaces unreachable, wakes the workers, publishes the
//! events. The commit and those steps run in a task of their own that is
//! awaited but not owned by the caller: a client that disconnects (or a
//! request cut off by its timeout) once the change is complete cannot leave
//! it committed with stale answers behind.
//!
//! A write to a team's jobs, users, log or resumes also schedules the
//! coalesced refresh of the team's hot cached reads, whichever write it is.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
};

use sea_orm::{DatabaseConnection, DatabaseTransaction, DbErr};
use tracing::Instrument;

use crate::{
    cache::{Dep, ResponseCache},
    db::replicas::WritePositions,
    db::{
        self,
        activity::Entry,
        queue::{NewTask, TaskHandle},
    },
    events::{Event, EventBus},
};

/// Starts units of work; shared by every request and worker of a replica.
#[derive(Clone)]
pub struct Writer {
    cache: Arc<ResponseCache>,
    tasks: TaskHandle,
    events: EventBus,
    /// With read replicas: where each team's last write is in the WAL.
    positions: Option<Arc<WritePositions>>,
}

impl Writer {
    pub fn new(cache: Arc<ResponseCache>, tasks: TaskHandle, events: EventBus) -> Self {
        Self {
            cache,
            tasks,
            events,
            positions: None,
        }
    }

    /// Records the primary's WAL position after each commit, before
    /// cached answers are made stale (read replicas compare with it).
    pub fn with_positions(mut self, positions: Arc<WritePositions>) -> Self {
        self.positions = Some(positions);
        self
    }

    /// How tasks are made (attempts, delays).
    pub fn tasks(&self) -> &TaskHandle {
        &self.tasks
    }

    pub fn events(&self) -> &EventBus {
        &self.events
    }

    /// Opens a write transaction on `db` (`BEGIN IMMEDIATE` on SQLite).
    pub async fn begin(&self, db: &DatabaseConnection) -> Result<UnitOfWork, DbErr> {
        Ok(UnitOfWork {
            txn: db::begin_write(db).await?,
            db: db.clone(),
            writer: self.clone(),
            touched: BTreeMap::new(),
            entries: Vec::new(),
            tasks: Vec::new(),
            events: Vec::new(),
        })
    }
}

/// One change in the making. Dropped without [`commit`](Self::commit), it
/// rolls back and nothing follows.
pub struct UnitOfWork {
    txn: DatabaseTransaction,
    /// The pool the transaction came from (the write position is read
    /// there after the commit).
    db: DatabaseConnection,
    writer: Writer,
    touched: BTreeMap<i64, BTreeSet<Dep>>,
    entries: Vec<Entry>,
    tasks: Vec<NewTask>,
    events: Vec<Event>,
}

/// What a committed unit of work did, for tests and the write-path audit.
#[derive(Debug, Clone, Default)]
pub struct Committed {
    pub touched: BTreeMap<i64, BTreeSet<Dep>>,
    pub tasks: usize,
    pub events: usize,
}

impl UnitOfWork {
    /// The transaction, for the `db::*` functions that read and write.
    pub fn db(&self) -> &DatabaseTransaction {
        &self.txn
    }

    /// Declares that the change touches these namespaces of `team_id`.
    pub fn touch(&mut self, team_id: i64, deps: &[Dep]) {
        self.touched
            .entry(team_id)
            .or_default()
            .extend(deps.iter().copied());
    }

    /// Adds an activity-log entry (written at commit, in the transaction).
    pub fn log(&mut self, entry: Entry) {
        if let Some(team_id) = entry.team_id {
            self.touch(team_id, &[Dep::Logs]);
        }
        self.entries.push(entry);
    }

    /// Adds a background task (written at commit, in the transaction),
    /// remembering the trace it was caused in.
    pub fn enqueue(&mut self, mut task: NewTask) {
        if task.trace_context.is_none() {
            task.trace_context = crate::telemetry::traceparent();
        }
        self.tasks.push(task);
    }

    /// Adds an event, published once the change is committed.
    pub fn publish(&mut self, event: Event) {
        self.events.push(event);
    }

    /// Commits, then invalidates, wakes and publishes (see the module doc).
    pub async fn commit(self) -> Result<Committed, DbErr> {
        let (committed, after) = self.commit_only().await?;
        if after.await.is_err() {
            tracing::error!("the steps after a commit failed");
        }
        Ok(committed)
    }

    /// Commits and returns without waiting for what follows (it still runs
    /// to the end): for a refused sign-in, whose answer must take the same
    /// time whether or not the account exists.
    pub async fn commit_detached(self) -> Result<Committed, DbErr> {
        Ok(self.commit_only().await?.0)
    }

    /// Hands the whole commit to a task of its own: once a change is
    /// complete, the caller going away (a client disconnecting, the request
    /// timeout) can no longer stop it between the COMMIT and the steps that
    /// make old answers unreachable. The returned handle ends when those
    /// steps have run.
    async fn commit_only(self) -> Result<(Committed, tokio::task::JoinHandle<()>), DbErr> {
        let (answer, committed) = tokio::sync::oneshot::channel();
        let after = tokio::spawn(
            async move {
                match self.write_and_commit().await {
                    Ok((committed, follow_up)) => {
                        let _ = answer.send(Ok(committed));
                        follow_up.run().await;
                    }
                    Err(error) => {
                        let _ = answer.send(Err(error));
                    }
                }
            }
            .instrument(tracing::Span::current()),
        );
        let committed = committed
            .await
            .map_err(|_| DbErr::Custom("the commit ended without an answer".into()))??;
        Ok((committed, after))
    }

    /// Writes the entries and tasks, commits, and returns what must follow.
    async fn write_and_commit(mut self) -> Result<(Committed, FollowUp), DbErr> {
        // A refresh replays reads through the response cache: with the
        // cache switched off there is nothing to refresh, and its task
        // would cost a write, a claim and a finish per change.
        let refresh = self.writer.cache.enabled();
        let refreshes: Vec<NewTask> = self
            .touched
            .iter()
            .filter(|_| refresh)
            .filter(|(_, deps)| deps.iter().any(|d| !matches!(d, Dep::Job(_))))
            .map(|(team, _)| NewTask {
                trace_context: crate::telemetry::traceparent(),
                ..self.writer.tasks.cache_refresh(*team)
            })
            .collect();
        self.tasks.extend(refreshes);
        db::activity::record_all(&self.txn, std::mem::take(&mut self.entries)).await?;
        // Tasks already queued under the same dedup key (the coalesced
        // refresh, mostly) are not added and wake nobody: the queued one has
        // its wake-ups. Under a stream of writes that saves two claim
        // queries per write.
        let added = db::queue::enqueue(&self.txn, &self.tasks).await?;
        self.txn.commit().await?;
        let committed = Committed {
            touched: self.touched,
            tasks: self.tasks.len(),
            events: self.events.len(),
        };
        let follow_up = FollowUp {
            db: self.db,
            writer: self.writer,
            touched: committed.touched.clone(),
            wake: added > 0,
            // A delayed task (the coalesced refresh) is due later: wake the
            // workers then too, rather than at their next poll.
            wake_later: self
                .tasks
                .iter()
                .map(|t| t.delay)
                .filter(|d| !d.is_zero())
                .min()
                .filter(|_| added > 0),
            events: self.events,
        };
        Ok((committed, follow_up))
    }
}

/// What runs after a commit, in order.
struct FollowUp {
    db: DatabaseConnection,
    writer: Writer,
    touched: BTreeMap<i64, BTreeSet<Dep>>,
    wake: bool,
    wake_later: Option<std::time::Duration>,
    events: Vec<Event>,
}

impl FollowUp {
    async fn run(self) {
        // First the position, then the generations: a reader that sees the
        // new generations finds a position that covers this write.
        if let Some(positions) = &self.writer.positions {
            let teams: Vec<i64> = self.touched.keys().copied().collect();
            positions.record_after_commit(&self.db, &teams).await;
        }
        for (team_id, deps) in &self.touched {
            let deps: Vec<Dep> = deps.iter().copied().collect();
            self.writer.cache.invalidate(*team_id, &deps).await;
        }
        if let Some(delay) = self.wake_later {
            let tasks = self.writer.tasks.clone();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                tasks.wake();
            });
        }
        if self.wake {
            self.writer.tasks.wake();
        }
        let mut events = self.events;
        // A member changed: open subscriptions of the team check their
        // caller again (a revoked token's are closed).
        events.extend(
            self.touched
                .iter()
                .filter(|(_, deps)| deps.contains(&Dep::Users))
                .map(|(team_id, _)| Event::Users { team_id: *team_id }),
        );
        self.writer.events.publish(events);
    }
}
