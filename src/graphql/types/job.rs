use async_graphql::{Context, ID, Object};
use chrono::{DateTime, Utc};

use super::{Resume, Team, User};
use crate::{
    db::{entities::job, enums::JobStatus},
    error::{AppError, AppResult},
    graphql::{
        context::ContextExt,
        ids::{self, Kind},
    },
};

/// A job opening the team tracks.
#[derive(Clone)]
pub struct Job(pub job::Model);

#[Object]
impl Job {
    async fn id(&self) -> ID {
        ids::encode(Kind::Job, self.0.id)
    }

    async fn title(&self) -> &str {
        &self.0.title
    }

    async fn company(&self) -> &str {
        &self.0.company
    }

    async fn location(&self) -> Option<&str> {
        self.0.location.as_deref()
    }

    async fn url(&self) -> Option<&str> {
        self.0.url.as_deref()
    }

    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }

    async fn salary_min(&self) -> Option<i64> {
        self.0.salary_min
    }

    async fn salary_max(&self) -> Option<i64> {
        self.0.salary_max
    }

    async fn status(&self) -> JobStatus {
        self.0.status
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }

    /// The team that tracks this job.
    async fn team(&self, ctx: &Context<'_>) -> AppResult<Team> {
        ctx.loaders()?
            .teams
            .load_one(self.0.team_id)
            .await?
            .map(Team)
            .ok_or_else(|| AppError::internal(anyhow::anyhow!("job {} has no team", self.0.id)))
    }

    /// Who added the job; `null` once that user is deleted.
    async fn created_by(&self, ctx: &Context<'_>) -> AppResult<Option<User>> {
        let Some(id) = self.0.created_by_id else {
            return Ok(None);
        };
        Ok(ctx.loaders()?.users.load_one(id).await?.map(User))
    }

    /// Resumes generated for this job, newest first (at most 100).
    async fn resumes(&self, ctx: &Context<'_>) -> AppResult<Vec<Resume>> {
        let list = ctx.loaders()?.resumes_by_job.load_one(self.0.id).await?;
        Ok(list.unwrap_or_default().into_iter().map(Resume).collect())
    }
}
