use async_graphql::{Context, ID, Object};
use chrono::{DateTime, Utc};

use super::{Job, User};
use crate::{
    db::{entities::resume, enums::ResumeStatus},
    error::{AppError, AppResult},
    graphql::{
        context::ContextExt,
        ids::{self, Kind},
    },
};

/// A resume written for a job by the language model, in the background.
#[derive(Clone)]
pub struct Resume(pub resume::Model);

#[Object]
impl Resume {
    async fn id(&self) -> ID {
        ids::encode(Kind::Resume, self.0.id)
    }

    async fn status(&self) -> ResumeStatus {
        self.0.status
    }

    /// The text, once READY.
    async fn content(&self) -> Option<&str> {
        self.0.content.as_deref()
    }

    /// Which model wrote it.
    async fn model(&self) -> Option<&str> {
        self.0.model.as_deref()
    }

    /// Why generation FAILED.
    async fn error(&self) -> Option<&str> {
        self.0.error.as_deref()
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    async fn completed_at(&self) -> Option<DateTime<Utc>> {
        self.0.completed_at
    }

    async fn job(&self, ctx: &Context<'_>) -> AppResult<Job> {
        ctx.loaders()?
            .jobs
            .load_one(self.0.job_id)
            .await?
            .map(Job)
            .ok_or_else(|| AppError::not_found("the job of this resume is gone"))
    }

    async fn user(&self, ctx: &Context<'_>) -> AppResult<User> {
        ctx.loaders()?
            .users
            .load_one(self.0.user_id)
            .await?
            .map(User)
            .ok_or_else(|| AppError::not_found("the author of this resume is gone"))
    }
}
