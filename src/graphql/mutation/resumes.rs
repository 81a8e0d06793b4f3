use async_graphql::{Context, ID, Object};
use serde_json::json;

use super::job_for_write;
use crate::{
    cache::Dep,
    db::{self, activity::Entry},
    error::{AppError, AppResult, ErrorCode},
    events::Event,
    graphql::{
        context::ContextExt,
        ids::{self, Kind},
        types::Resume,
    },
    tasks::RESUME,
};

#[derive(Default)]
pub struct ResumeMutation;

#[Object]
impl ResumeMutation {
    /// Asks for a resume tailored to a job. Returns at once with status
    /// PENDING; the text is written in the background.
    async fn generate_resume(&self, ctx: &Context<'_>, job_id: ID) -> AppResult<Resume> {
        let viewer = ctx.viewer()?;
        viewer.require_writer()?;
        let job_id = ids::decode(Kind::Job, &job_id, "jobId")?;
        let services = ctx.services()?;
        services
            .throttle
            .hit(
                "resumes",
                &viewer.team_id.to_string(),
                services.config.abuse.resumes_per_team,
            )
            .await
            .map_err(|e| {
                AppError::limited(
                    ErrorCode::QuotaExceeded,
                    "the team's resume quota is used up (QUOTA_RESUMES_PER_TEAM)",
                    e.retry_after,
                )
            })?;
        let writer = &services.writer;
        let mut uow = writer.begin(ctx.db()?).await?;
        let job = job_for_write(uow.db(), viewer.team_id, job_id).await?;
        let resume = db::resumes::insert_pending(uow.db(), job.id, viewer.user_id).await?;
        uow.log(
            Entry::info(
                viewer.team_id,
                viewer.user_id,
                "resume.requested",
                format!("asked for a resume for {} at {}", job.title, job.company),
            )
            .with_metadata(json!({ "jobId": job.id, "resumeId": resume.id })),
        );
        uow.enqueue(
            writer
                .tasks()
                .task(RESUME, json!({ "resumeId": resume.id })),
        );
        uow.touch(viewer.team_id, &[Dep::Resumes, Dep::Job(job.id)]);
        uow.publish(Event::Resume {
            team_id: viewer.team_id,
            resume_id: resume.id,
            job_id: job.id,
            status: resume.status,
        });
        uow.commit().await?;
        Ok(Resume(resume))
    }
}
