use async_graphql::{Context, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::{Job, Log, Team};
use crate::{
    db::{
        entities::user,
        enums::Role,
        jobs::{JobFilter, JobParent},
        keyset::Sort,
    },
    error::{AppError, AppResult},
    graphql::{
        context::ContextExt,
        ids::{self, Kind},
        loaders::{JobPageKey, LogPageKey},
        pagination::{
            JobConnection, LogConnection, TotalCount, connection_complexity, page_request,
        },
    },
};

/// A member of a team.
#[derive(Clone)]
pub struct User(pub user::Model);

#[Object]
impl User {
    async fn id(&self) -> ID {
        ids::encode(Kind::User, self.0.id)
    }

    async fn email(&self) -> &str {
        &self.0.email
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    async fn role(&self) -> Role {
        self.0.role
    }

    async fn is_active(&self) -> bool {
        self.0.is_active
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }

    async fn team(&self, ctx: &Context<'_>) -> AppResult<Team> {
        ctx.loaders()?
            .teams
            .load_one(self.0.team_id)
            .await?
            .map(Team)
            .ok_or_else(|| AppError::internal(anyhow::anyhow!("user {} has no team", self.0.id)))
    }

    /// Jobs this user added, newest first.
    #[graphql(complexity = "connection_complexity(child_complexity, first, None)")]
    async fn jobs(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> AppResult<JobConnection> {
        let limits = &ctx.services()?.config.limits;
        let page = page_request(
            first,
            after,
            None,
            None,
            Sort::NEWEST_FIRST,
            limits.max_page_size,
        )?;
        let key = JobPageKey {
            parent: JobParent::Creator,
            parent_id: self.0.id,
            filter: JobFilter::default(),
            page,
        };
        let rows = ctx
            .loaders()?
            .job_pages
            .load_one(key)
            .await?
            .unwrap_or_default();
        let total = TotalCount::JobsOf {
            parent: JobParent::Creator,
            parent_id: self.0.id,
            filter: JobFilter::default(),
        };
        Ok(JobConnection::from_page(
            rows,
            Sort::NEWEST_FIRST,
            total,
            Job,
        ))
    }

    /// This user's activity, newest first. Admins may read anyone's; others
    /// only their own.
    #[graphql(complexity = "connection_complexity(child_complexity, first, None)")]
    async fn logs(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> AppResult<LogConnection> {
        let viewer = ctx.viewer()?;
        if !viewer.role.is_admin() && viewer.user_id != self.0.id {
            return Err(AppError::forbidden(
                "only an admin can read another user's log",
            ));
        }
        let limits = &ctx.services()?.config.limits;
        let page = page_request(
            first,
            after,
            None,
            None,
            Sort::NEWEST_FIRST,
            limits.max_page_size,
        )?;
        let key = LogPageKey {
            user_id: self.0.id,
            page,
        };
        let rows = ctx
            .loaders()?
            .log_pages
            .load_one(key)
            .await?
            .unwrap_or_default();
        let total = TotalCount::LogsOfUser { user_id: self.0.id };
        Ok(LogConnection::from_page(
            rows,
            Sort::NEWEST_FIRST,
            total,
            Log,
        ))
    }
}

/// A token and the user it belongs to.
#[derive(SimpleObject)]
pub struct AuthPayload {
    /// Send as `Authorization: Bearer <token>`.
    pub token: String,
    pub user: User,
}
