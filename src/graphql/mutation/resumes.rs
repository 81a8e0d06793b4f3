use async_graphql::{Context, ID, Object};
use serde_json::json;

use super::job_for_write;
use crate::{
    cache::Dep,
    db::{self, activity::Entry},
    error::AppResult,
    graphql::{
        context::{ContextExt, invalidate},
        ids::{self, Kind},
        types::Resume,
    },
    tasks::{RESUME, queue},
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
        let db = ctx.db()?;
        let txn = crate::db::begin_write(db).await?;
        let job = job_for_write(&txn, viewer.team_id, job_id).await?;
        let resume = db::resumes::insert_pending(&txn, job.id, viewer.user_id).await?;
        db::activity::record(
            &txn,
            Entry::info(
                viewer.team_id,
                viewer.user_id,
                "resume.requested",
                format!("asked for a resume for {} at {}", job.title, job.company),
            )
            .with_metadata(json!({ "jobId": job.id, "resumeId": resume.id })),
        )
        .await?;
        let tasks = &ctx.services()?.tasks;
        queue::enqueue(
            &txn,
            &[tasks.task(RESUME, json!({ "resumeId": resume.id }))],
        )
        .await?;
        txn.commit().await?;
        let deps = [Dep::Resumes, Dep::Job(job.id), Dep::Logs];
        invalidate(ctx, viewer.team_id, &deps).await;
        tasks.wake();
        Ok(Resume(resume))
    }
}
