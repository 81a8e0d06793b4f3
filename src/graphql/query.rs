//! The root `Query` type. Every field requires a viewer and reads only the
//! viewer's team.

use async_graphql::{Context, ID, Lookahead, Object, SimpleObject};

use super::{
    context::ContextExt,
    ids::{self, Kind},
    inputs::{JobFilterInput, JobOrder, LogFilterInput, UserFilterInput},
    pagination::{
        JobConnection, LogConnection, TotalCount, UserConnection, connection_complexity,
        page_request,
    },
    types::{Job, JobStats, Log, Resume, Team, User},
};
use crate::{
    db::{self, along::Along, keyset::Sort},
    error::{AppError, AppResult},
};

/// A page-numbered slice of jobs, for UIs with numbered pages.
#[derive(SimpleObject)]
pub struct JobPage {
    pub items: Vec<Job>,
    pub total: u64,
    pub page: i32,
    pub page_size: i32,
    pub total_pages: u64,
    pub has_next: bool,
    pub has_prev: bool,
}

#[derive(Default)]
pub struct Query;

/// What to read in the same statement as jobs, from the fields selected on
/// them (`jobs`' `nodes` and `edges.node`, or `job` itself).
fn along(jobs: &[Lookahead<'_>], total: bool) -> Along {
    Along {
        users: jobs.iter().any(|j| j.field("createdBy").exists()),
        team: jobs.iter().any(|j| j.field("team").exists()),
        total,
    }
}

#[Object]
impl Query {
    /// The signed-in user; `null` without a token.
    async fn viewer(&self, ctx: &Context<'_>) -> AppResult<Option<User>> {
        let Ok(viewer) = ctx.viewer() else {
            return Ok(None);
        };
        Ok(ctx
            .loaders()?
            .users
            .load_one(viewer.user_id)
            .await?
            .map(User))
    }

    /// One job of the caller's team; `null` if it does not exist or belongs
    /// to another team.
    async fn job(&self, ctx: &Context<'_>, id: ID) -> AppResult<Option<Job>> {
        let viewer = ctx.viewer()?;
        let id = ids::decode(Kind::Job, &id, "id")?;
        let along = along(&[ctx.look_ahead()], false);
        let Some((job, alongside)) =
            db::jobs::find_along(ctx.db()?, viewer.team_id, id, along).await?
        else {
            return Ok(None);
        };
        ctx.loaders()?.prime(alongside).await;
        Ok(Some(Job(job)))
    }

    /// The team's jobs as a cursor connection (newest first unless `orderBy`).
    #[graphql(complexity = "connection_complexity(child_complexity, first, last)")]
    async fn jobs(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        filter: Option<JobFilterInput>,
        order_by: Option<JobOrder>,
    ) -> AppResult<JobConnection> {
        let viewer = ctx.viewer()?;
        let sort = Sort::from(order_by);
        let limits = &ctx.services()?.config.limits;
        let page = page_request(first, after, last, before, sort, limits.max_page_size)?;
        let filter = filter.unwrap_or_default().validate()?;
        let look = ctx.look_ahead();
        let along = along(
            &[look.field("nodes"), look.field("edges").field("node")],
            look.field("totalCount").exists(),
        );
        let (rows, alongside) =
            db::jobs::list_along(ctx.db()?, viewer.team_id, &filter, &page, along).await?;
        let total = match alongside.total {
            Some(n) => TotalCount::Known(n),
            None => TotalCount::Jobs {
                team_id: viewer.team_id,
                filter,
            },
        };
        ctx.loaders()?.prime(alongside).await;
        Ok(JobConnection::from_page(rows, sort, total, Job))
    }

    /// The team's jobs by page number, newest first. Deep pages cost an
    /// offset scan, so `page × pageSize` is bounded; use `jobs` to walk far.
    /// `null` means the default.
    // Nullable arguments (`Int = 1`, as the contract says): a client that
    // declares `$page: Int` and omits the variable gets the default, where
    // `Int! = 1` made async-graphql fail the request.
    #[graphql(
        complexity = "(page_size.unwrap_or(20).max(1) as usize).saturating_mul(child_complexity)"
    )]
    async fn jobs_page(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 1)] page: Option<i32>,
        #[graphql(default = 20)] page_size: Option<i32>,
        filter: Option<JobFilterInput>,
    ) -> AppResult<JobPage> {
        let page = page.unwrap_or(1);
        let page_size = page_size.unwrap_or(20);
        let viewer = ctx.viewer()?;
        let limits = &ctx.services()?.config.limits;
        if page < 1 {
            return Err(AppError::invalid("page", "must be at least 1"));
        }
        if page_size < 1 || page_size as u32 > limits.max_page_size {
            return Err(AppError::invalid(
                "pageSize",
                format!("must be between 1 and {}", limits.max_page_size),
            ));
        }
        let offset = (page as u64 - 1) * page_size as u64;
        if offset > limits.max_page_offset {
            return Err(AppError::invalid(
                "page",
                format!(
                    "is too deep (more than {} rows to skip); use the `jobs` connection with cursors",
                    limits.max_page_offset
                ),
            ));
        }
        let filter = filter.unwrap_or_default().validate()?;
        let db = ctx.db()?;
        let (rows, total) = tokio::try_join!(
            db::jobs::list_offset(db, viewer.team_id, &filter, offset, page_size as u64),
            db::jobs::count(db, viewer.team_id, &filter),
        )?;
        let total_pages = total.div_ceil(page_size as u64);
        Ok(JobPage {
            items: rows.into_iter().map(Job).collect(),
            total,
            page,
            page_size,
            total_pages,
            has_next: (page as u64) < total_pages,
            has_prev: page > 1,
        })
    }

    /// Aggregates over the team's jobs.
    async fn job_stats(&self, ctx: &Context<'_>) -> AppResult<JobStats> {
        Ok(JobStats::new(ctx.viewer()?.team_id))
    }

    /// One user of the caller's team; `null` otherwise.
    async fn user(&self, ctx: &Context<'_>, id: ID) -> AppResult<Option<User>> {
        let viewer = ctx.viewer()?;
        let id = ids::decode(Kind::User, &id, "id")?;
        Ok(ctx
            .loaders()?
            .users
            .load_one(id)
            .await?
            .filter(|u| u.team_id == viewer.team_id)
            .map(User))
    }

    /// The team's users, newest first.
    #[graphql(complexity = "connection_complexity(child_complexity, first, None)")]
    async fn users(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<UserFilterInput>,
    ) -> AppResult<UserConnection> {
        let viewer = ctx.viewer()?;
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
        let rows = db::users::list(ctx.db()?, viewer.team_id, &filter, &page).await?;
        let total = TotalCount::Users {
            team_id: viewer.team_id,
            filter,
        };
        Ok(UserConnection::from_page(
            rows,
            Sort::NEWEST_FIRST,
            total,
            User,
        ))
    }

    /// The caller's team.
    async fn team(&self, ctx: &Context<'_>) -> AppResult<Team> {
        let viewer = ctx.viewer()?;
        ctx.loaders()?
            .teams
            .load_one(viewer.team_id)
            .await?
            .map(Team)
            .ok_or_else(|| AppError::not_found("your team no longer exists"))
    }

    /// The activity log, newest first. Admins read the whole team's log;
    /// everyone else reads their own entries.
    #[graphql(complexity = "connection_complexity(child_complexity, first, None)")]
    async fn logs(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<LogFilterInput>,
    ) -> AppResult<LogConnection> {
        let viewer = ctx.viewer()?;
        let limits = &ctx.services()?.config.limits;
        let page = page_request(
            first,
            after,
            None,
            None,
            Sort::NEWEST_FIRST,
            limits.max_page_size,
        )?;
        let mut filter = filter.unwrap_or_default().validate()?;
        if !viewer.role.is_admin() {
            match filter.user_id {
                Some(id) if id != viewer.user_id => {
                    return Err(AppError::forbidden(
                        "only an admin can read another user's log",
                    ));
                }
                _ => filter.user_id = Some(viewer.user_id),
            }
        }
        let look = ctx.look_ahead();
        let entries = [look.field("nodes"), look.field("edges").field("node")];
        let along = Along {
            users: entries.iter().any(|e| e.field("user").exists()),
            team: entries.iter().any(|e| e.field("team").exists()),
            total: look.field("totalCount").exists(),
        };
        let (rows, alongside) =
            db::logs::list_along(ctx.db()?, viewer.team_id, &filter, &page, along).await?;
        let total = match alongside.total {
            Some(n) => TotalCount::Known(n),
            None => TotalCount::Logs {
                team_id: viewer.team_id,
                filter,
            },
        };
        ctx.loaders()?.prime(alongside).await;
        Ok(LogConnection::from_page(
            rows,
            Sort::NEWEST_FIRST,
            total,
            Log,
        ))
    }

    /// One resume of the caller's team; `null` otherwise.
    async fn resume(&self, ctx: &Context<'_>, id: ID) -> AppResult<Option<Resume>> {
        let viewer = ctx.viewer()?;
        let id = ids::decode(Kind::Resume, &id, "id")?;
        Ok(db::resumes::find(ctx.db()?, viewer.team_id, id)
            .await?
            .map(Resume))
    }
}
