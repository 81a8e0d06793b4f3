use async_graphql::{Context, ID, Json, Object};
use chrono::{DateTime, Utc};

use super::{Team, User};
use crate::{
    db::{entities::log, enums::LogLevel},
    error::AppResult,
    graphql::{
        context::ContextExt,
        ids::{self, Kind},
    },
};

/// One entry of the activity log.
#[derive(Clone)]
pub struct Log(pub log::Model);

#[Object]
impl Log {
    async fn id(&self) -> ID {
        ids::encode(Kind::Log, self.0.id)
    }

    /// What happened, such as `job.created`.
    async fn action(&self) -> &str {
        &self.0.action
    }

    async fn level(&self) -> LogLevel {
        self.0.level
    }

    async fn message(&self) -> &str {
        &self.0.message
    }

    /// Structured details (ids, changed fields).
    async fn metadata(&self) -> Option<Json<serde_json::Value>> {
        self.0.metadata.clone().map(Json)
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// Who did it; `null` for system entries or deleted users.
    async fn user(&self, ctx: &Context<'_>) -> AppResult<Option<User>> {
        let Some(id) = self.0.user_id else {
            return Ok(None);
        };
        Ok(ctx.loaders()?.users.load_one(id).await?.map(User))
    }

    async fn team(&self, ctx: &Context<'_>) -> AppResult<Option<Team>> {
        let Some(id) = self.0.team_id else {
            return Ok(None);
        };
        Ok(ctx.loaders()?.teams.load_one(id).await?.map(Team))
    }
}
