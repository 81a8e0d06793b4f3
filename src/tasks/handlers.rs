//! What each kind of task does. Every handler is idempotent: running it
//! again after a crash does not repeat an effect that already happened.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
    time::Duration,
};

use futures::future::BoxFuture;
use serde_json::json;

use super::{EMAIL, RESUME, RETENTION, TaskContext, queue};
use crate::events::Event;
use crate::{
    cache::Dep,
    db::{
        self,
        activity::Entry,
        entities::task,
        enums::{LogLevel, ResumeStatus},
    },
    email::{self, Email},
    resume_writer::{ResumeInput, WriteError},
};

/// Why an attempt failed.
#[derive(Debug)]
pub enum Failure {
    /// Try again later (after `after`, or the back-off).
    Retry {
        message: String,
        after: Option<Duration>,
    },
    /// Trying again cannot help.
    Permanent(String),
}

impl From<sea_orm::DbErr> for Failure {
    fn from(err: sea_orm::DbErr) -> Self {
        Failure::Retry {
            message: format!("database error: {err}"),
            after: None,
        }
    }
}

/// What one kind of task does. Handlers are idempotent: running one again
/// after a crash does not repeat an effect that already happened.
pub trait TaskHandler: Send + Sync {
    /// One attempt.
    fn run<'a>(
        &'a self,
        ctx: &'a TaskContext,
        task: &'a task::Model,
    ) -> BoxFuture<'a, Result<(), Failure>>;

    /// Called once when the task has failed for good.
    fn give_up<'a>(
        &'a self,
        _ctx: &'a TaskContext,
        _task: &'a task::Model,
        _message: &'a str,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }
}

/// The handlers of every kind, by kind.
pub type Handlers = BTreeMap<&'static str, Arc<dyn TaskHandler>>;

/// The kinds the service itself enqueues (the cache refresh comes from the
/// GraphQL layer, which knows how requests are cached).
pub fn builtin() -> Handlers {
    let mut handlers: Handlers = BTreeMap::new();
    handlers.insert(RESUME, Arc::new(Resumes));
    handlers.insert(EMAIL, Arc::new(Mails));
    handlers.insert(RETENTION, Arc::new(Retention));
    handlers
}

struct Resumes;

impl TaskHandler for Resumes {
    fn run<'a>(
        &'a self,
        ctx: &'a TaskContext,
        task: &'a task::Model,
    ) -> BoxFuture<'a, Result<(), Failure>> {
        Box::pin(async move { generate_resume(ctx, id_field(task, "resumeId")?).await })
    }

    fn give_up<'a>(
        &'a self,
        ctx: &'a TaskContext,
        task: &'a task::Model,
        message: &'a str,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if let Ok(resume_id) = id_field(task, "resumeId")
                && let Err(error) = fail_resume(ctx, resume_id, message).await
            {
                tracing::error!(%error, resume_id, "marking a resume FAILED did not work");
            }
        })
    }
}

struct Mails;

impl TaskHandler for Mails {
    fn run<'a>(
        &'a self,
        ctx: &'a TaskContext,
        task: &'a task::Model,
    ) -> BoxFuture<'a, Result<(), Failure>> {
        Box::pin(send_email(ctx, task))
    }
}

struct Retention;

impl TaskHandler for Retention {
    fn run<'a>(
        &'a self,
        ctx: &'a TaskContext,
        _task: &'a task::Model,
    ) -> BoxFuture<'a, Result<(), Failure>> {
        Box::pin(apply_retention(ctx))
    }
}

/// The `teamId` (or another id) of a task's payload.
pub fn id_field(task: &task::Model, field: &str) -> Result<i64, Failure> {
    task.payload[field]
        .as_i64()
        .ok_or_else(|| Failure::Permanent(format!("payload lacks `{field}`")))
}

async fn generate_resume(ctx: &TaskContext, resume_id: i64) -> Result<(), Failure> {
    let db = &ctx.db;
    // Gone (its job was deleted) or already settled: nothing to do.
    let Some(resume) = db::resumes::find_any(db, resume_id).await? else {
        return Ok(());
    };
    if matches!(resume.status, ResumeStatus::Ready | ResumeStatus::Failed) {
        return Ok(());
    }
    let (Some(job), Some(user)) = (
        db::jobs::find_any(db, resume.job_id).await?,
        db::users::find_any(db, resume.user_id).await?,
    ) else {
        return Ok(());
    };
    let team = db::teams::find(db, job.team_id)
        .await?
        .map(|t| t.name)
        .unwrap_or_default();
    if resume.status == ResumeStatus::Pending {
        let mut uow = ctx.writer.begin(db).await?;
        if db::resumes::set_generating(uow.db(), resume.id).await? {
            uow.touch(job.team_id, &[Dep::Resumes, Dep::Job(job.id)]);
            uow.commit().await?;
        }
    }
    let other_titles =
        db::jobs::recent_titles_by_creator(db, job.team_id, user.id, job.id, 5).await?;
    let input = ResumeInput {
        name: user.name.clone(),
        email: user.email.clone(),
        team,
        title: job.title.clone(),
        company: job.company.clone(),
        location: job.location.clone(),
        description: job.description.clone(),
        salary: (job.salary_min.is_some() || job.salary_max.is_some())
            .then_some((job.salary_min, job.salary_max)),
        other_titles,
    };
    let written = ctx.resume_writer.write(&input).await.map_err(|e| match e {
        WriteError::Retryable {
            message,
            retry_after,
        } => Failure::Retry {
            message,
            after: retry_after,
        },
        WriteError::Permanent(message) => Failure::Permanent(message),
    })?;

    let mut uow = ctx.writer.begin(db).await?;
    if !db::resumes::set_ready(uow.db(), resume.id, &written.content, &written.model).await? {
        return Ok(());
    }
    uow.log(
        Entry::info(
            job.team_id,
            user.id,
            "resume.ready",
            format!("resume ready for {} at {}", job.title, job.company),
        )
        .with_metadata(json!({ "jobId": job.id, "resumeId": resume.id, "model": written.model })),
    );
    let mail = email::resume_ready(&user.name, &user.email, &job.title, &job.company);
    uow.enqueue(super::email(ctx.writer.tasks(), job.team_id, &mail));
    uow.touch(job.team_id, &[Dep::Resumes, Dep::Job(job.id)]);
    uow.publish(Event::Resume {
        team_id: job.team_id,
        resume_id: resume.id,
        job_id: job.id,
        status: ResumeStatus::Ready,
    });
    uow.commit().await?;
    Ok(())
}

async fn fail_resume(
    ctx: &TaskContext,
    resume_id: i64,
    message: &str,
) -> Result<(), sea_orm::DbErr> {
    let db = &ctx.db;
    let Some(resume) = db::resumes::find_any(db, resume_id).await? else {
        return Ok(());
    };
    let Some(job) = db::jobs::find_any(db, resume.job_id).await? else {
        return Ok(());
    };
    let mut uow = ctx.writer.begin(db).await?;
    if !db::resumes::set_failed(uow.db(), resume.id, message).await? {
        return Ok(());
    }
    uow.log(
        Entry {
            level: LogLevel::Error,
            ..Entry::info(
                job.team_id,
                resume.user_id,
                "resume.failed",
                format!("resume for {} failed: {message}", job.title),
            )
        }
        .with_metadata(json!({ "jobId": job.id, "resumeId": resume.id })),
    );
    uow.touch(job.team_id, &[Dep::Resumes, Dep::Job(job.id)]);
    uow.publish(Event::Resume {
        team_id: job.team_id,
        resume_id: resume.id,
        job_id: job.id,
        status: ResumeStatus::Failed,
    });
    uow.commit().await?;
    Ok(())
}

async fn send_email(ctx: &TaskContext, task: &task::Model) -> Result<(), Failure> {
    let mail: Email = serde_json::from_value(task.payload.clone())
        .map_err(|e| Failure::Permanent(format!("payload is not an e-mail: {e}")))?;
    if let Some(team_id) = task.payload["teamId"].as_i64()
        && ctx
            .throttle
            .hit("mails", &team_id.to_string(), ctx.mail_quota)
            .await
            .is_err()
    {
        return Err(Failure::Permanent(
            "the team's mail quota is used up (QUOTA_MAILS_PER_TEAM)".to_owned(),
        ));
    }
    ctx.mailer
        .send(&format!("task-{}", task.id), &mail)
        .await
        .map_err(|e| Failure::Retry {
            message: format!("sending mail failed: {e}"),
            after: None,
        })
}

/// Deletes log rows past retention in batches of 1,000, each its own short
/// statement, then finished tasks older than a week.
async fn apply_retention(ctx: &TaskContext) -> Result<(), Failure> {
    const BATCH: u64 = 1000;
    let cutoff = db::now() - chrono::Duration::days(ctx.settings.retention_days);
    loop {
        let mut uow = ctx.writer.begin(&ctx.db).await?;
        let deleted = db::logs::delete_older_than(uow.db(), cutoff, BATCH).await?;
        let done = (deleted.len() as u64) < BATCH;
        let teams: BTreeSet<i64> = deleted.iter().flatten().copied().collect();
        for team_id in teams {
            uow.touch(team_id, &[Dep::Logs]);
        }
        uow.commit().await?;
        ctx.metrics.logs_deleted.inc_by(deleted.len() as u64);
        if done {
            break;
        }
        tokio::task::yield_now().await;
    }
    let week_ago = db::now() - chrono::Duration::days(7);
    while queue::purge_finished(&ctx.db, week_ago, BATCH).await? >= BATCH {}
    Ok(())
}
