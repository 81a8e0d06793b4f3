//! What each kind of task does. Every handler is idempotent: running it
//! again after a crash does not repeat an effect that already happened.

use std::{collections::BTreeSet, time::Duration};

use serde_json::json;

use super::{EMAIL, REFRESH, RESUME, RETENTION, TaskContext, queue};
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

/// Runs one task.
pub async fn dispatch(ctx: &TaskContext, task: &task::Model) -> Result<(), Failure> {
    match task.kind.as_str() {
        RESUME => generate_resume(ctx, id_field(task, "resumeId")?).await,
        EMAIL => send_email(ctx, task).await,
        RETENTION => apply_retention(ctx).await,
        REFRESH => {
            let team_id = id_field(task, "teamId")?;
            let refreshed = ctx.refresher.refresh(team_id, &ctx.db).await;
            tracing::debug!(team_id, refreshed, "hot reads refreshed in the cache");
            Ok(())
        }
        other => Err(Failure::Permanent(format!("unknown task kind `{other}`"))),
    }
}

/// Called once when a task has failed for good.
pub async fn give_up(ctx: &TaskContext, task: &task::Model, message: &str) {
    if task.kind == RESUME
        && let Ok(resume_id) = id_field(task, "resumeId")
        && let Err(error) = fail_resume(ctx, resume_id, message).await
    {
        tracing::error!(%error, resume_id, "marking a resume FAILED did not work");
    }
}

fn id_field(task: &task::Model, field: &str) -> Result<i64, Failure> {
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
    if resume.status == ResumeStatus::Pending && db::resumes::set_generating(db, resume.id).await? {
        ctx.cache
            .invalidate(job.team_id, &[Dep::Resumes, Dep::Job(job.id)])
            .await;
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
    let written = ctx.writer.write(&input).await.map_err(|e| match e {
        WriteError::Retryable {
            message,
            retry_after,
        } => Failure::Retry {
            message,
            after: retry_after,
        },
        WriteError::Permanent(message) => Failure::Permanent(message),
    })?;

    let txn = crate::db::begin_write(db).await?;
    if !db::resumes::set_ready(&txn, resume.id, &written.content, &written.model).await? {
        return Ok(());
    }
    db::activity::record(
        &txn,
        Entry::info(
            job.team_id,
            user.id,
            "resume.ready",
            format!("resume ready for {} at {}", job.title, job.company),
        )
        .with_metadata(json!({ "jobId": job.id, "resumeId": resume.id, "model": written.model })),
    )
    .await?;
    let mail = email::resume_ready(&user.name, &user.email, &job.title, &job.company);
    let task = super::NewTask {
        max_attempts: ctx.settings.max_attempts,
        ..super::NewTask::new(EMAIL, super::email_payload(&mail))
    };
    queue::enqueue(&txn, &[task]).await?;
    txn.commit().await?;
    ctx.cache
        .invalidate(job.team_id, &[Dep::Resumes, Dep::Job(job.id), Dep::Logs])
        .await;
    ctx.wake.notify_one();
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
    let txn = crate::db::begin_write(db).await?;
    if db::resumes::set_failed(&txn, resume.id, message).await? {
        db::activity::record(
            &txn,
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
        )
        .await?;
    }
    txn.commit().await?;
    ctx.cache
        .invalidate(job.team_id, &[Dep::Resumes, Dep::Job(job.id), Dep::Logs])
        .await;
    Ok(())
}

async fn send_email(ctx: &TaskContext, task: &task::Model) -> Result<(), Failure> {
    let mail: Email = serde_json::from_value(task.payload.clone())
        .map_err(|e| Failure::Permanent(format!("payload is not an e-mail: {e}")))?;
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
    let mut teams = BTreeSet::new();
    loop {
        let deleted = db::logs::delete_older_than(&ctx.db, cutoff, BATCH).await?;
        ctx.metrics.logs_deleted.inc_by(deleted.len() as u64);
        let done = (deleted.len() as u64) < BATCH;
        teams.extend(deleted.into_iter().flatten());
        if done {
            break;
        }
        tokio::task::yield_now().await;
    }
    for team_id in teams {
        ctx.cache.invalidate(team_id, &[Dep::Logs]).await;
    }
    let week_ago = db::now() - chrono::Duration::days(7);
    while queue::purge_finished(&ctx.db, week_ago, BATCH).await? >= BATCH {}
    Ok(())
}
