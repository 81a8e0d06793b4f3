//! Activity-log reads. Admins read the whole team's log; everyone else reads
//! their own entries (`only_user`).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QuerySelect, QueryTrait, Select,
    sea_query::Expr,
};

use super::{
    along::{Along, Alongside, Joins},
    entities::log::{Column, Entity as Logs, Model},
    enums::LogLevel,
    keyset::{self, Keyed, Page, PageRequest, Rows, SortKey, SortValue},
};

impl Keyed for Model {
    fn id(&self) -> i64 {
        self.id
    }

    fn sort_value(&self, _key: SortKey) -> SortValue {
        SortValue::Time(self.created_at)
    }
}

/// Validated `LogFilter`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct LogFilter {
    pub level: Option<LogLevel>,
    pub action: Option<String>,
    pub user_id: Option<i64>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

fn filtered(team_id: i64, filter: &LogFilter) -> Select<Logs> {
    Logs::find()
        .filter(Column::TeamId.eq(team_id))
        .apply_if(filter.level, |q, l| q.filter(Column::Level.eq(l)))
        .apply_if(filter.action.clone(), |q, a| q.filter(Column::Action.eq(a)))
        .apply_if(filter.user_id, |q, u| q.filter(Column::UserId.eq(u)))
        .apply_if(filter.since, |q, t| q.filter(Column::CreatedAt.gte(t)))
        .apply_if(filter.until, |q, t| q.filter(Column::CreatedAt.lt(t)))
}

/// One keyset page of the team's log, newest first, with the entries'
/// users, the team and the total read in the same statement when asked.
pub async fn list_along(
    db: &impl ConnectionTrait,
    team_id: i64,
    filter: &LogFilter,
    page: &PageRequest,
    along: Along,
) -> Result<(Page<Model>, Alongside), DbErr> {
    let total = along.total.then(|| {
        super::counters::logs_matching_select(team_id, filter).unwrap_or_else(|| {
            filtered(team_id, filter)
                .select_only()
                .expr(Expr::cust("COUNT(*)"))
                .into_query()
        })
    });
    let (page, mut alongside) = super::along::page(
        db,
        Rows::of_parent_or(
            Column::TeamId,
            team_id,
            (*filter != LogFilter::default()).then(|| filtered(team_id, filter)),
        ),
        (Column::CreatedAt, Column::Id),
        page,
        Joins {
            team_id,
            user: Column::UserId,
            team: Column::TeamId,
        },
        along,
        total,
    )
    .await?;
    if along.total && alongside.total.is_none() {
        alongside.total = Some(count(db, team_id, filter).await?);
    }
    Ok((page, alongside))
}

/// How many entries match: from the counters for the whole team's log (at
/// most a level), else counted from the rows.
pub async fn count(
    db: &impl ConnectionTrait,
    team_id: i64,
    filter: &LogFilter,
) -> Result<u64, DbErr> {
    match super::counters::logs_matching(db, team_id, filter).await? {
        Some(n) => Ok(n),
        None => keyset::count(db, filtered(team_id, filter)).await,
    }
}

/// The first page of each user's entries, in one statement.
pub async fn pages_by_user(
    db: &impl ConnectionTrait,
    team_id: i64,
    user_ids: &[i64],
    page: &PageRequest,
) -> Result<HashMap<i64, Page<Model>>, DbErr> {
    keyset::fetch_pages_by_parent(
        db,
        filtered(team_id, &LogFilter::default()),
        Column::UserId,
        user_ids,
        |log| log.user_id,
        Column::CreatedAt,
        Column::Id,
        page,
    )
    .await
}

/// Entry counts per user, in one statement.
pub async fn counts_by_user(
    db: &impl ConnectionTrait,
    team_id: i64,
    user_ids: &[i64],
) -> Result<HashMap<i64, u64>, DbErr> {
    let select = filtered(team_id, &LogFilter::default())
        .filter(Column::UserId.is_in(user_ids.iter().copied()));
    keyset::count_by_parent(db, select, Column::UserId).await
}

/// Deletes up to `limit` entries older than `before` in one short statement;
/// returns the team of each deleted row.
pub async fn delete_older_than(
    db: &impl ConnectionTrait,
    before: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<Option<i64>>, DbErr> {
    use sea_orm::{
        QueryOrder, QuerySelect,
        sea_query::{ExprTrait, Query},
    };
    let oldest = Logs::find()
        .select_only()
        .column(Column::Id)
        .filter(Column::CreatedAt.lt(before))
        .order_by_asc(Column::CreatedAt)
        .limit(limit)
        .into_query();
    let stmt = Query::delete()
        .from_table(Logs)
        .and_where(sea_orm::sea_query::Expr::col(Column::Id).in_subquery(oldest))
        .returning_col(Column::TeamId)
        .to_owned();
    let rows = db.query_all(&stmt).await?;
    rows.iter()
        .map(|r| r.try_get::<Option<i64>>("", "team_id"))
        .collect()
}
