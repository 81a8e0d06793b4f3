use async_graphql::{Context, ID, Object};
use serde_json::json;

use super::job_for_write;
use crate::{
    cache::Dep,
    db::{self, activity::Entry},
    error::{AppError, AppResult, FieldError},
    events::{Event, JobChange},
    graphql::{
        context::ContextExt,
        ids::{self, Kind},
        inputs::{Checker, CreateJobInput, UpdateJobInput},
        types::Job,
    },
};

/// At most this many field errors are returned for one bulk input.
const MAX_REPORTED_ERRORS: usize = 100;

#[derive(Default)]
pub struct JobMutation;

#[Object]
impl JobMutation {
    /// Adds a job to the caller's team.
    async fn create_job(&self, ctx: &Context<'_>, input: CreateJobInput) -> AppResult<Job> {
        let mut jobs = create(ctx, vec![input], false).await?;
        jobs.pop()
            .ok_or_else(|| AppError::internal(anyhow::anyhow!("insert returned no row")))
    }

    /// Adds many jobs in one transaction: all are validated first, and either
    /// all are created or none. Returned in input order.
    async fn create_jobs(
        &self,
        ctx: &Context<'_>,
        input: Vec<CreateJobInput>,
    ) -> AppResult<Vec<Job>> {
        let max = ctx.services()?.config.limits.max_bulk_jobs;
        if input.len() > max {
            return Err(AppError::invalid(
                "input",
                format!(
                    "holds {} jobs; at most {max} are allowed per call",
                    input.len()
                ),
            ));
        }
        create(ctx, input, true).await
    }

    /// Changes a job of the caller's team.
    async fn update_job(&self, ctx: &Context<'_>, id: ID, input: UpdateJobInput) -> AppResult<Job> {
        let viewer = ctx.viewer()?;
        viewer.require_writer()?;
        let id = ids::decode(Kind::Job, &id, "id")?;
        let mut uow = ctx.services()?.writer.begin(ctx.db()?).await?;
        let job = job_for_write(uow.db(), viewer.team_id, id).await?;
        let changes = input.validate(job.salary_min, job.salary_max)?;
        let before_status = job.status;
        let updated = db::jobs::update(uow.db(), job, changes).await?;
        let mut metadata = json!({ "jobId": updated.id });
        let change = if updated.status != before_status {
            metadata["statusFrom"] = json!(before_status);
            metadata["statusTo"] = json!(updated.status);
            JobChange::StatusChanged
        } else {
            JobChange::Updated
        };
        uow.log(
            Entry::info(
                viewer.team_id,
                viewer.user_id,
                "job.updated",
                format!("updated {} at {}", updated.title, updated.company),
            )
            .with_metadata(metadata),
        );
        uow.touch(viewer.team_id, &[Dep::Jobs, Dep::Job(updated.id)]);
        uow.publish(Event::Job {
            team_id: viewer.team_id,
            job_id: updated.id,
            change,
            status: Some(updated.status),
        });
        uow.commit().await?;
        Ok(Job(updated))
    }

    /// Deletes a job of the caller's team and its resumes.
    async fn delete_job(&self, ctx: &Context<'_>, id: ID) -> AppResult<bool> {
        let viewer = ctx.viewer()?;
        viewer.require_writer()?;
        let id = ids::decode(Kind::Job, &id, "id")?;
        let mut uow = ctx.services()?.writer.begin(ctx.db()?).await?;
        let job = job_for_write(uow.db(), viewer.team_id, id).await?;
        db::jobs::delete(uow.db(), viewer.team_id, job.id).await?;
        uow.log(
            Entry::info(
                viewer.team_id,
                viewer.user_id,
                "job.deleted",
                format!("deleted {} at {}", job.title, job.company),
            )
            .with_metadata(json!({ "jobId": job.id })),
        );
        uow.touch(viewer.team_id, &[Dep::Jobs, Dep::Job(job.id), Dep::Resumes]);
        uow.publish(Event::Job {
            team_id: viewer.team_id,
            job_id: job.id,
            change: JobChange::Deleted,
            status: None,
        });
        uow.commit().await?;
        Ok(true)
    }
}

/// Validates every input, then inserts them all and their log entry in one
/// transaction. `bulk` inputs report errors as `input[i].field`.
async fn create(ctx: &Context<'_>, input: Vec<CreateJobInput>, bulk: bool) -> AppResult<Vec<Job>> {
    let viewer = ctx.viewer()?;
    viewer.require_writer()?;
    let mut errors: Vec<FieldError> = Vec::new();
    let mut jobs = Vec::with_capacity(input.len());
    for (i, item) in input.into_iter().enumerate() {
        let prefix = if bulk {
            format!("input[{i}]")
        } else {
            "input".to_owned()
        };
        let mut check = Checker::new(prefix);
        jobs.push(item.check(&mut check));
        errors.extend(check.take());
    }
    if !errors.is_empty() {
        errors.truncate(MAX_REPORTED_ERRORS);
        return Err(AppError::Invalid(errors));
    }
    if jobs.is_empty() {
        return Ok(Vec::new());
    }
    let mut uow = ctx.services()?.writer.begin(ctx.db()?).await?;
    let created =
        db::jobs::insert_many(uow.db(), viewer.team_id, Some(viewer.user_id), &jobs).await?;
    // One entry per mutation: a single job is `job.created`; a bulk call is
    // one `job.bulk_created` event naming every job it added, so an import
    // of 1,000 jobs reads as one event and costs one log row.
    let entry = match created.as_slice() {
        [job] if !bulk => Entry::info(
            viewer.team_id,
            viewer.user_id,
            "job.created",
            format!("added {} at {}", job.title, job.company),
        )
        .with_metadata(json!({ "jobId": job.id })),
        jobs => Entry::info(
            viewer.team_id,
            viewer.user_id,
            "job.bulk_created",
            format!("added {} jobs", jobs.len()),
        )
        .with_metadata(json!({
            "count": jobs.len(),
            "jobIds": jobs.iter().map(|j| j.id).collect::<Vec<_>>(),
        })),
    };
    uow.log(entry);
    // A `job(id:)` answer is never cached while the job does not exist, so
    // new jobs touch only the team-wide namespace.
    uow.touch(viewer.team_id, &[Dep::Jobs]);
    for job in &created {
        uow.publish(Event::Job {
            team_id: viewer.team_id,
            job_id: job.id,
            change: JobChange::Created,
            status: Some(job.status),
        });
    }
    uow.commit().await?;
    Ok(created.into_iter().map(Job).collect())
}
