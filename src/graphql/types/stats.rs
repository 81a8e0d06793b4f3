use async_graphql::{Context, Object, SimpleObject};
use sea_orm::Iterable;
use tokio::sync::OnceCell;

use crate::{
    db::{self, enums::JobStatus},
    error::{AppError, AppResult},
    graphql::context::ContextExt,
};

/// How many jobs have one status.
#[derive(SimpleObject, Clone)]
pub struct StatusCount {
    pub status: JobStatus,
    pub count: u64,
}

/// How many jobs name one company.
#[derive(SimpleObject, Clone)]
pub struct CompanyCount {
    pub company: String,
    pub count: u64,
}

/// Aggregates over the caller's team's jobs. Each field runs its own
/// aggregate only when selected; `total` and `byStatus` share one.
pub struct JobStats {
    team_id: i64,
    by_status: OnceCell<Vec<StatusCount>>,
}

impl JobStats {
    pub fn new(team_id: i64) -> Self {
        Self {
            team_id,
            by_status: OnceCell::new(),
        }
    }

    async fn status_counts(&self, ctx: &Context<'_>) -> AppResult<&Vec<StatusCount>> {
        self.by_status
            .get_or_try_init(|| async {
                let counts = db::jobs::count_by_status(ctx.db()?, self.team_id).await?;
                Ok::<_, AppError>(
                    JobStatus::iter()
                        .map(|status| StatusCount {
                            status,
                            count: counts
                                .iter()
                                .find(|(s, _)| *s == status)
                                .map_or(0, |(_, n)| *n),
                        })
                        .collect(),
                )
            })
            .await
    }
}

#[Object]
impl JobStats {
    /// All jobs of the team.
    async fn total(&self, ctx: &Context<'_>) -> AppResult<u64> {
        Ok(self.status_counts(ctx).await?.iter().map(|c| c.count).sum())
    }

    /// Every status, with 0 where no job has it.
    async fn by_status(&self, ctx: &Context<'_>) -> AppResult<Vec<StatusCount>> {
        Ok(self.status_counts(ctx).await?.clone())
    }

    /// Companies with the most jobs (`limit` between 1 and 100; `null`
    /// means 10).
    // Nullable (`Int = 10`, as the contract says), so an omitted
    // `$limit: Int` variable means the default instead of an error.
    async fn top_companies(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 10)] limit: Option<i32>,
    ) -> AppResult<Vec<CompanyCount>> {
        let limit = limit.unwrap_or(10);
        if !(1..=100).contains(&limit) {
            return Err(AppError::invalid("limit", "must be between 1 and 100"));
        }
        let rows = db::jobs::top_companies(ctx.db()?, self.team_id, limit as u64).await?;
        Ok(rows
            .into_iter()
            .map(|(company, count)| CompanyCount { company, count })
            .collect())
    }

    /// Jobs created in the last seven days.
    async fn created_last_7_days(&self, ctx: &Context<'_>) -> AppResult<u64> {
        Ok(db::jobs::count_created_since(ctx.db()?, self.team_id, 7).await?)
    }
}
