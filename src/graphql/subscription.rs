//! Live updates: the `Subscription` root. Each subscription listens to its
//! caller's team only (see [`crate::events`]); every event is checked
//! against the caller's team again before it is sent, and the objects it
//! names are read when it is delivered, with the caller's access, so a
//! deleted job is `null` and nothing of another team can appear.
//!
//! A subscriber further behind than the team's buffer gets one error with
//! the code `SLOW_CONSUMER` and its subscription ends; the WebSocket and
//! SSE layers then close the connection.

use async_graphql::{Context, Enum, ID, Object, Subscription as SubscriptionRoot};
use futures::{Stream, stream};

use super::{
    context::{ContextExt, Session},
    ids::{self, Kind},
    types::{Job, Resume},
};
use crate::{
    db::{
        self,
        enums::{JobStatus, ResumeStatus},
    },
    error::{AppError, AppResult},
    events::{Event, JobChange, TeamEvents, hub::Ended},
};

/// The subscription root.
#[derive(Default)]
pub struct Subscription;

/// What happened to a job.
#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum JobEventKind {
    Created,
    Updated,
    StatusChanged,
    Deleted,
}

impl From<JobChange> for JobEventKind {
    fn from(change: JobChange) -> Self {
        match change {
            JobChange::Created => Self::Created,
            JobChange::Updated => Self::Updated,
            JobChange::StatusChanged => Self::StatusChanged,
            JobChange::Deleted => Self::Deleted,
        }
    }
}

/// A change of one of the team's jobs.
pub struct JobEvent {
    kind: JobEventKind,
    job_id: i64,
    status: Option<JobStatus>,
}

#[Object]
impl JobEvent {
    async fn kind(&self) -> JobEventKind {
        self.kind
    }

    async fn job_id(&self) -> ID {
        ids::encode(Kind::Job, self.job_id)
    }

    /// The job's status after the change, when it is known.
    async fn status(&self) -> Option<JobStatus> {
        self.status
    }

    /// The job as it is now; `null` once deleted.
    async fn job(&self, ctx: &Context<'_>) -> AppResult<Option<Job>> {
        if self.kind == JobEventKind::Deleted {
            return Ok(None);
        }
        Ok(ctx.loaders()?.jobs.load_one(self.job_id).await?.map(Job))
    }
}

/// A resume of the team that finished: READY or FAILED.
pub struct ResumeUpdate {
    resume_id: i64,
    job_id: i64,
    status: ResumeStatus,
}

#[Object]
impl ResumeUpdate {
    async fn resume_id(&self) -> ID {
        ids::encode(Kind::Resume, self.resume_id)
    }

    async fn job_id(&self) -> ID {
        ids::encode(Kind::Job, self.job_id)
    }

    async fn status(&self) -> ResumeStatus {
        self.status
    }

    /// The resume as it is now.
    async fn resume(&self, ctx: &Context<'_>) -> AppResult<Option<Resume>> {
        let viewer = ctx.viewer()?;
        Ok(db::resumes::find(ctx.db()?, viewer.team_id, self.resume_id)
            .await?
            .map(Resume))
    }
}

#[SubscriptionRoot]
impl Subscription {
    /// The caller's team's job changes, optionally of one job or of jobs
    /// that now have one status.
    async fn job_events(
        &self,
        ctx: &Context<'_>,
        job_id: Option<ID>,
        status: Option<JobStatus>,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<JobEvent>>> {
        let (job_id, events) = listen(ctx, job_id)?;
        Ok(deliver(ctx, events, move |event| match *event {
            Event::Job {
                job_id: id,
                change,
                status: now,
                ..
            } if job_id.is_none_or(|wanted| wanted == id)
                && status.is_none_or(|wanted| Some(wanted) == now) =>
            {
                Some(JobEvent {
                    kind: change.into(),
                    job_id: id,
                    status: now,
                })
            }
            _ => None,
        }))
    }

    /// The caller's team's resumes as they become READY or FAILED,
    /// optionally of one job.
    async fn resume_updates(
        &self,
        ctx: &Context<'_>,
        job_id: Option<ID>,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<ResumeUpdate>>> {
        let (job_id, events) = listen(ctx, job_id)?;
        Ok(deliver(ctx, events, move |event| match *event {
            Event::Resume {
                resume_id,
                job_id: id,
                status,
                ..
            } if matches!(status, ResumeStatus::Ready | ResumeStatus::Failed)
                && job_id.is_none_or(|wanted| wanted == id) =>
            {
                Some(ResumeUpdate {
                    resume_id,
                    job_id: id,
                    status,
                })
            }
            _ => None,
        }))
    }
}

/// The job filter and the caller's team's events.
fn listen(
    ctx: &Context<'_>,
    job_id: Option<ID>,
) -> async_graphql::Result<(Option<i64>, TeamEvents)> {
    let job_id = job_id
        .map(|id| ids::decode(Kind::Job, &id, "jobId"))
        .transpose()?;
    let viewer = ctx.viewer()?;
    Ok((job_id, ctx.services()?.writer.events().team(viewer.team_id)))
}

/// The events `pick` keeps, each checked against the caller's team, with
/// the loaders emptied before each one (nested fields read current rows);
/// ends with `SLOW_CONSUMER` when the subscriber fell behind.
fn deliver<'ctx, T: Send + 'ctx, F>(
    ctx: &Context<'ctx>,
    events: TeamEvents,
    pick: F,
) -> impl Stream<Item = async_graphql::Result<T>> + 'ctx
where
    F: Fn(&Event) -> Option<T> + Send + 'ctx,
{
    let session = ctx.data_opt::<Session>();
    let team_id = events.team_id();
    stream::unfold(Some((events, pick)), move |state| async move {
        let (mut events, pick) = state?;
        loop {
            match events.next().await {
                Ok(event) => {
                    if event.team_id() != team_id {
                        continue;
                    }
                    let Some(item) = pick(&event) else { continue };
                    if let Some(loaders) = session.and_then(Session::loaders) {
                        loaders.forget();
                    }
                    return Some((Ok(item), Some((events, pick))));
                }
                Err(Ended::Lagged { missed }) => {
                    let error = AppError::slow_consumer(missed).into();
                    return Some((Err(error), None));
                }
                Err(Ended::Closed) => return None,
            }
        }
    })
}
