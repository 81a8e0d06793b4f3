//! Job queries and writes. Every function takes the caller's `team_id`, so a
//! job of another team is invisible here, not filtered later.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use sea_orm::{
    ActiveModelTrait,
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, FromQueryResult, IntoActiveModel,
    QueryFilter, QueryOrder, QuerySelect, QueryTrait, Select,
    sea_query::{Expr, Order, Query},
};

use super::{
    along::{Along, Alongside, Joins},
    entities::job::{Column, Entity as Jobs, Model},
    enums::JobStatus,
    keyset::{self, Keyed, Page, PageRequest, Rows, SortKey, SortValue},
};

/// The most bind parameters one statement may carry (SQLite allows 32766,
/// PostgreSQL 65535); multi-row inserts are chunked under it.
pub const MAX_BIND_PARAMS: usize = 30_000;

impl Keyed for Model {
    fn id(&self) -> i64 {
        self.id
    }

    fn sort_value(&self, key: SortKey) -> SortValue {
        match key {
            SortKey::CreatedAt => SortValue::Time(self.created_at),
            SortKey::UpdatedAt => SortValue::Time(self.updated_at),
            SortKey::Company => SortValue::Text(self.company.clone()),
        }
    }
}

fn sort_column(key: SortKey) -> Column {
    match key {
        SortKey::CreatedAt => Column::CreatedAt,
        SortKey::UpdatedAt => Column::UpdatedAt,
        SortKey::Company => Column::Company,
    }
}

/// Validated list filter (see `JobFilter` in the GraphQL schema).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct JobFilter {
    pub status: Option<JobStatus>,
    pub status_in: Option<Vec<JobStatus>>,
    pub company: Option<String>,
    pub search: Option<String>,
    pub created_after: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
}

fn filtered(team_id: i64, filter: &JobFilter) -> Select<Jobs> {
    Jobs::find()
        .filter(Column::TeamId.eq(team_id))
        .apply_if(filter.status, |q, s| q.filter(Column::Status.eq(s)))
        .apply_if(filter.status_in.clone(), |q, list| {
            q.filter(Column::Status.is_in(list))
        })
        .apply_if(filter.company.clone(), |q, c| {
            q.filter(Column::Company.eq(c))
        })
        .apply_if(filter.search.as_deref(), |q, term| {
            q.filter(keyset::search_condition(
                &[Column::Title, Column::Company],
                term,
            ))
        })
        .apply_if(filter.created_after, |q, t| {
            q.filter(Column::CreatedAt.gte(t))
        })
        .apply_if(filter.created_before, |q, t| {
            q.filter(Column::CreatedAt.lt(t))
        })
}

/// One job of the team, or `None` (also for another team's job).
pub async fn find(
    db: &impl ConnectionTrait,
    team_id: i64,
    id: i64,
) -> Result<Option<Model>, DbErr> {
    Jobs::find_by_id(id)
        .filter(Column::TeamId.eq(team_id))
        .one(db)
        .await
}

/// One job, whatever the team (background work only).
pub async fn find_any(db: &impl ConnectionTrait, id: i64) -> Result<Option<Model>, DbErr> {
    Jobs::find_by_id(id).one(db).await
}

/// Titles of the newest other jobs a user added (context for resumes).
pub async fn recent_titles_by_creator(
    db: &impl ConnectionTrait,
    team_id: i64,
    user_id: i64,
    except: i64,
    limit: u64,
) -> Result<Vec<String>, DbErr> {
    Jobs::find()
        .filter(Column::TeamId.eq(team_id))
        .filter(Column::CreatedById.eq(user_id))
        .filter(Column::Id.ne(except))
        .select_only()
        .column(Column::Title)
        .order_by(Column::CreatedAt, Order::Desc)
        .limit(limit)
        .into_tuple()
        .all(db)
        .await
}

/// The owner team of a job, whatever team asks (to tell FORBIDDEN from NOT_FOUND).
pub async fn team_of(db: &impl ConnectionTrait, id: i64) -> Result<Option<i64>, DbErr> {
    Jobs::find_by_id(id)
        .select_only()
        .column(Column::TeamId)
        .into_tuple()
        .one(db)
        .await
}

/// Which of `ids` are jobs of the team (one indexed statement).
pub async fn existing_ids(
    db: &impl ConnectionTrait,
    team_id: i64,
    ids: &[i64],
) -> Result<Vec<i64>, DbErr> {
    Jobs::find()
        .select_only()
        .column(Column::Id)
        .filter(Column::TeamId.eq(team_id))
        .filter(Column::Id.is_in(ids.iter().copied()))
        .into_tuple()
        .all(db)
        .await
}

/// Jobs by id in one statement, restricted to the team.
pub async fn by_ids(
    db: &impl ConnectionTrait,
    team_id: i64,
    ids: &[i64],
) -> Result<Vec<Model>, DbErr> {
    Jobs::find()
        .filter(Column::TeamId.eq(team_id))
        .filter(Column::Id.is_in(ids.iter().copied()))
        .all(db)
        .await
}

/// One keyset page of the team's jobs and, in the same statement, what the
/// request selects beside it: creators, the team, and `totalCount` (from
/// the counters when the filter allows, else counted in a subquery). One
/// round trip for a list page with its team and creators.
pub async fn list_along(
    db: &impl ConnectionTrait,
    team_id: i64,
    filter: &JobFilter,
    page: &PageRequest,
    along: Along,
) -> Result<(Page<Model>, Alongside), DbErr> {
    let total = along.total.then(|| {
        super::counters::jobs_matching_select(team_id, filter).unwrap_or_else(|| {
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
            (*filter != JobFilter::default()).then(|| filtered(team_id, filter)),
        ),
        (sort_column(page.sort.key), Column::Id),
        page,
        Joins {
            team_id,
            user: Column::CreatedById,
            team: Column::TeamId,
        },
        along,
        total,
    )
    .await?;
    // An empty page has no row to carry the total.
    if along.total && alongside.total.is_none() {
        alongside.total = Some(count(db, team_id, filter).await?);
    }
    Ok((page, alongside))
}

/// One job of the team with its creator and team, in one statement.
pub async fn find_along(
    db: &impl ConnectionTrait,
    team_id: i64,
    id: i64,
    along: Along,
) -> Result<Option<(Model, Alongside)>, DbErr> {
    super::along::one(
        db,
        "jobs.find_along",
        &[id, team_id],
        |args| {
            let (id, team_id) = (args[0], args[1]);
            (
                Jobs::find_by_id(id).filter(Column::TeamId.eq(team_id)),
                Joins {
                    team_id,
                    user: Column::CreatedById,
                    team: Column::TeamId,
                },
            )
        },
        along,
    )
    .await
}

/// How many of the team's jobs match: from the counters when the filter
/// allows (O(1)), else counted from the rows.
pub async fn count(
    db: &impl ConnectionTrait,
    team_id: i64,
    filter: &JobFilter,
) -> Result<u64, DbErr> {
    match super::counters::jobs_matching(db, team_id, filter).await? {
        Some(n) => Ok(n),
        None => keyset::count(db, filtered(team_id, filter)).await,
    }
}

/// A page-numbered slice, newest first (`jobsPage`); the offset is bounded by
/// the caller.
pub async fn list_offset(
    db: &impl ConnectionTrait,
    team_id: i64,
    filter: &JobFilter,
    offset: u64,
    limit: u64,
) -> Result<Vec<Model>, DbErr> {
    filtered(team_id, filter)
        .order_by(Column::CreatedAt, Order::Desc)
        .order_by(Column::Id, Order::Desc)
        .offset(offset)
        .limit(limit)
        .all(db)
        .await
}

/// Which parent a nested job connection hangs off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobParent {
    /// `Team.jobs`
    Team,
    /// `User.jobs` (jobs the user created)
    Creator,
}

impl JobParent {
    fn column(self) -> Column {
        match self {
            Self::Team => Column::TeamId,
            Self::Creator => Column::CreatedById,
        }
    }

    fn of(self, job: &Model) -> Option<i64> {
        match self {
            Self::Team => Some(job.team_id),
            Self::Creator => job.created_by_id,
        }
    }
}

/// The first page of jobs under each parent, in one statement.
pub async fn pages_by_parent(
    db: &impl ConnectionTrait,
    team_id: i64,
    parent: JobParent,
    parent_ids: &[i64],
    filter: &JobFilter,
    page: &PageRequest,
) -> Result<HashMap<i64, Page<Model>>, DbErr> {
    keyset::fetch_pages_by_parent(
        db,
        filtered(team_id, filter),
        parent.column(),
        parent_ids,
        |job| parent.of(job),
        sort_column(page.sort.key),
        Column::Id,
        page,
    )
    .await
}

/// Job counts under each parent, in one statement (the team's own count
/// from the counters).
pub async fn counts_by_parent(
    db: &impl ConnectionTrait,
    team_id: i64,
    parent: JobParent,
    parent_ids: &[i64],
    filter: &JobFilter,
) -> Result<HashMap<i64, u64>, DbErr> {
    if parent == JobParent::Team
        && parent_ids == [team_id]
        && let Some(n) = super::counters::jobs_matching(db, team_id, filter).await?
    {
        return Ok(HashMap::from([(team_id, n)]));
    }
    let select =
        filtered(team_id, filter).filter(parent.column().is_in(parent_ids.iter().copied()));
    keyset::count_by_parent(db, select, parent.column()).await
}

/// A job to insert; validated by the caller.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub title: String,
    pub company: String,
    pub location: Option<String>,
    pub url: Option<String>,
    pub description: Option<String>,
    pub salary_min: Option<i64>,
    pub salary_max: Option<i64>,
    pub status: JobStatus,
    /// Set by the seeder for a realistic history; `None` means now.
    pub created_at: Option<DateTime<Utc>>,
}

const INSERT_COLUMNS: [Column; 12] = [
    Column::TeamId,
    Column::CreatedById,
    Column::Title,
    Column::Company,
    Column::Location,
    Column::Url,
    Column::Description,
    Column::SalaryMin,
    Column::SalaryMax,
    Column::Status,
    Column::CreatedAt,
    Column::UpdatedAt,
];

/// Rows per multi-row INSERT: under every database's bind-parameter limit.
const INSERT_CHUNK: usize = {
    let by_params = MAX_BIND_PARAMS / INSERT_COLUMNS.len();
    if by_params < 1000 { by_params } else { 1000 }
};

/// One multi-row `INSERT INTO jobs` for `(team, creator, job)` rows.
fn insert_statement<'a>(
    rows: impl Iterator<Item = (i64, Option<i64>, &'a NewJob)>,
    now: DateTime<Utc>,
) -> Result<sea_orm::sea_query::InsertStatement, DbErr> {
    let mut stmt = Query::insert();
    stmt.into_table(Jobs).columns(INSERT_COLUMNS);
    for (team_id, created_by, job) in rows {
        let created = job.created_at.unwrap_or(now);
        stmt.values([
            team_id.into(),
            created_by.into(),
            job.title.clone().into(),
            job.company.clone().into(),
            job.location.clone().into(),
            job.url.clone().into(),
            job.description.clone().into(),
            job.salary_min.into(),
            job.salary_max.into(),
            job.status.into(),
            created.into(),
            created.into(),
        ])
        .map_err(|e| DbErr::Custom(e.to_string()))?;
    }
    Ok(stmt)
}

/// Inserts jobs with chunked multi-row `INSERT … RETURNING` statements and
/// returns them in input order. Run it inside a transaction for all-or-nothing.
pub async fn insert_many(
    db: &impl ConnectionTrait,
    team_id: i64,
    created_by: Option<i64>,
    jobs: &[NewJob],
) -> Result<Vec<Model>, DbErr> {
    let now = super::now();
    let mut out = Vec::with_capacity(jobs.len());
    for chunk in jobs.chunks(INSERT_CHUNK) {
        let mut stmt = insert_statement(chunk.iter().map(|j| (team_id, created_by, j)), now)?;
        stmt.returning_all();
        let built = db.get_database_backend().build(&stmt);
        let mut rows = Model::find_by_statement(built).all(db).await?;
        // Ids grow in VALUES order within one statement; RETURNING order is
        // not promised by SQLite, so order by id and check the pairing.
        rows.sort_by_key(|r| r.id);
        if rows.len() != chunk.len()
            || rows
                .iter()
                .zip(chunk)
                .any(|(row, job)| row.title != job.title || row.company != job.company)
        {
            return Err(DbErr::Custom(
                "bulk insert returned rows that do not match its input".into(),
            ));
        }
        out.extend(rows);
    }
    Ok(out)
}

/// Inserts `(team, creator, job)` rows without reading them back (seeding).
pub async fn insert_rows(
    db: &impl ConnectionTrait,
    rows: &[(i64, Option<i64>, NewJob)],
) -> Result<(), DbErr> {
    let now = super::now();
    for chunk in rows.chunks(INSERT_CHUNK) {
        let stmt = insert_statement(chunk.iter().map(|(t, c, j)| (*t, *c, j)), now)?;
        db.execute(&stmt).await?;
    }
    Ok(())
}

/// Changes to one job; `None` leaves a field alone, `Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct JobChanges {
    pub title: Option<String>,
    pub company: Option<String>,
    pub location: Option<Option<String>>,
    pub url: Option<Option<String>>,
    pub description: Option<Option<String>>,
    pub salary_min: Option<Option<i64>>,
    pub salary_max: Option<Option<i64>>,
    pub status: Option<JobStatus>,
}

/// Applies `changes` and bumps `updated_at`.
pub async fn update(
    db: &impl ConnectionTrait,
    job: Model,
    changes: JobChanges,
) -> Result<Model, DbErr> {
    let mut active = job.into_active_model();
    if let Some(v) = changes.title {
        active.title = Set(v);
    }
    if let Some(v) = changes.company {
        active.company = Set(v);
    }
    if let Some(v) = changes.location {
        active.location = Set(v);
    }
    if let Some(v) = changes.url {
        active.url = Set(v);
    }
    if let Some(v) = changes.description {
        active.description = Set(v);
    }
    if let Some(v) = changes.salary_min {
        active.salary_min = Set(v);
    }
    if let Some(v) = changes.salary_max {
        active.salary_max = Set(v);
    }
    if let Some(v) = changes.status {
        active.status = Set(v);
    }
    active.updated_at = Set(super::now());
    active.update(db).await
}

/// Deletes a job of the team; its resumes go with it (ON DELETE CASCADE).
pub async fn delete(db: &impl ConnectionTrait, team_id: i64, id: i64) -> Result<bool, DbErr> {
    let res = Jobs::delete_many()
        .filter(Column::Id.eq(id))
        .filter(Column::TeamId.eq(team_id))
        .exec(db)
        .await?;
    Ok(res.rows_affected > 0)
}

/// Jobs per status, for `jobStats` (statuses with no job are absent), from
/// the counters.
pub async fn count_by_status(
    db: &impl ConnectionTrait,
    team_id: i64,
) -> Result<Vec<(JobStatus, u64)>, DbErr> {
    super::counters::jobs_by_status(db, team_id).await
}

/// The companies with the most jobs, ties broken by name, from the counters.
pub async fn top_companies(
    db: &impl ConnectionTrait,
    team_id: i64,
    limit: u64,
) -> Result<Vec<(String, u64)>, DbErr> {
    super::counters::top_companies(db, team_id, limit).await
}

/// Jobs created in the last seven days.
pub async fn count_created_since(
    db: &impl ConnectionTrait,
    team_id: i64,
    days: i64,
) -> Result<u64, DbErr> {
    let since = super::now() - Duration::days(days);
    keyset::count(
        db,
        Jobs::find()
            .filter(Column::TeamId.eq(team_id))
            .filter(Column::CreatedAt.gte(since)),
    )
    .await
}
