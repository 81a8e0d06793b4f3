use async_graphql::{Context, ID, Object};
use chrono::{DateTime, Utc};

use super::{Job, User};
use crate::{
    db::{entities::team, jobs::JobParent, keyset::Sort},
    error::AppResult,
    graphql::{
        context::ContextExt,
        ids::{self, Kind},
        inputs::{JobFilterInput, UserFilterInput},
        loaders::{JobPageKey, MemberPageKey},
        pagination::{
            JobConnection, TotalCount, UserConnection, connection_complexity, page_request,
        },
    },
};

/// A team: the unit that owns jobs and the activity log.
#[derive(Clone)]
pub struct Team(pub team::Model);

#[Object]
impl Team {
    async fn id(&self) -> ID {
        ids::encode(Kind::Team, self.0.id)
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    async fn slug(&self) -> &str {
        &self.0.slug
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// The team's users, newest first.
    #[graphql(complexity = "connection_complexity(child_complexity, first, None)")]
    async fn members(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<UserFilterInput>,
    ) -> AppResult<UserConnection> {
        let limits = &ctx.services()?.config.limits;
        let page = page_request(
            first,
            after,
            None,
            None,
            Sort::NEWEST_FIRST,
            limits.max_page_size,
        )?;
        let filter = filter.unwrap_or_default().validate()?;
        let key = MemberPageKey {
            team_id: self.0.id,
            filter: filter.clone(),
            page,
        };
        let rows = ctx
            .loaders()?
            .member_pages
            .load_one(key)
            .await?
            .unwrap_or_default();
        let total = TotalCount::Users {
            team_id: self.0.id,
            filter,
        };
        Ok(UserConnection::from_page(
            rows,
            Sort::NEWEST_FIRST,
            total,
            User,
        ))
    }

    /// The team's jobs, newest first.
    #[graphql(complexity = "connection_complexity(child_complexity, first, None)")]
    async fn jobs(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<JobFilterInput>,
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
        let filter = filter.unwrap_or_default().validate()?;
        let key = JobPageKey {
            parent: JobParent::Team,
            parent_id: self.0.id,
            filter: filter.clone(),
            page,
        };
        let rows = ctx
            .loaders()?
            .job_pages
            .load_one(key)
            .await?
            .unwrap_or_default();
        let total = TotalCount::JobsOf {
            parent: JobParent::Team,
            parent_id: self.0.id,
            filter,
        };
        Ok(JobConnection::from_page(
            rows,
            Sort::NEWEST_FIRST,
            total,
            Job,
        ))
    }
}
