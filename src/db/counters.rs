//! Aggregates read from the counters the database keeps (see the counters
//! migration): jobs per team and status, per team and company, log entries
//! per team and level. Each read is one primary-key or index range lookup,
//! whatever the team's size; filters the counters cannot answer are counted
//! the ordinary way by the caller.

use sea_orm::{
    ActiveEnum, ConnectionTrait, DatabaseBackend, DbErr, Statement, Value,
    sea_query::{Alias, Expr, ExprTrait, Query, SelectStatement},
};

use super::{enums::JobStatus, jobs::JobFilter, logs::LogFilter};

/// Rows of `sql` as `(key, n)`.
async fn pairs(
    db: &impl ConnectionTrait,
    sql: &str,
    values: Vec<Value>,
) -> Result<Vec<(String, i64)>, DbErr> {
    let backend = db.get_database_backend();
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            backend,
            placeholders(backend, sql),
            values,
        ))
        .await?;
    rows.iter()
        .map(|row| Ok((row.try_get_by_index(0)?, row.try_get_by_index(1)?)))
        .collect()
}

/// `?` placeholders as the backend spells them (`$1`, `$2`, … on PostgreSQL).
fn placeholders(backend: DatabaseBackend, sql: &str) -> String {
    if backend != DatabaseBackend::Postgres {
        return sql.to_owned();
    }
    let mut out = String::with_capacity(sql.len() + 8);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push_str(&format!("${n}"));
        } else {
            out.push(c);
        }
    }
    out
}

fn count(n: i64) -> u64 {
    n.clamp(0, i64::MAX) as u64
}

/// A team's jobs per status (statuses without a job are absent).
pub async fn jobs_by_status(
    db: &impl ConnectionTrait,
    team_id: i64,
) -> Result<Vec<(JobStatus, u64)>, DbErr> {
    let rows = pairs(
        db,
        "SELECT status, n FROM job_counts WHERE team_id = ? AND n > 0",
        vec![team_id.into()],
    )
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(status, n)| Some((JobStatus::try_from_value(&status).ok()?, count(n))))
        .collect())
}

/// The companies with the most jobs, ties broken by name (an index range).
pub async fn top_companies(
    db: &impl ConnectionTrait,
    team_id: i64,
    limit: u64,
) -> Result<Vec<(String, u64)>, DbErr> {
    let rows = pairs(
        db,
        "SELECT company, n FROM company_counts WHERE team_id = ? AND n > 0 \
         ORDER BY n DESC, company ASC LIMIT ?",
        vec![team_id.into(), (limit as i64).into()],
    )
    .await?;
    Ok(rows.into_iter().map(|(c, n)| (c, count(n))).collect())
}

/// The counter query for how many of a team's jobs match `filter`, when
/// the counters can tell: no filter, a status, a set of statuses, or a
/// company alone. `None` for any other filter (a search or a date range is
/// counted from the rows). Also used as a subquery beside a page.
pub fn jobs_matching_select(team_id: i64, filter: &JobFilter) -> Option<SelectStatement> {
    let JobFilter {
        status,
        status_in,
        company,
        search: None,
        created_after: None,
        created_before: None,
    } = filter
    else {
        return None;
    };
    let mut q = Query::select();
    q.expr(Expr::cust("CAST(COALESCE(SUM(n), 0) AS BIGINT)"));
    match (status, status_in, company) {
        (None, None, None) => q.from(Alias::new("job_counts")),
        (Some(s), None, None) => q
            .from(Alias::new("job_counts"))
            .and_where(Expr::col(Alias::new("status")).eq(s.to_value())),
        (None, Some(list), None) => q
            .from(Alias::new("job_counts"))
            .and_where(Expr::col(Alias::new("status")).is_in(list.iter().map(|s| s.to_value()))),
        (None, None, Some(c)) => q
            .from(Alias::new("company_counts"))
            .and_where(Expr::col(Alias::new("company")).eq(c.clone())),
        _ => return None,
    };
    q.and_where(Expr::col(Alias::new("team_id")).eq(team_id));
    Some(q)
}

/// [`jobs_matching_select`], run.
pub async fn jobs_matching(
    db: &impl ConnectionTrait,
    team_id: i64,
    filter: &JobFilter,
) -> Result<Option<u64>, DbErr> {
    match jobs_matching_select(team_id, filter) {
        Some(select) => run_count(db, &select).await.map(Some),
        None => Ok(None),
    }
}

/// The counter query for how many of a team's log entries match `filter`,
/// when the counters can tell: the whole team's log (as an admin reads it),
/// at most filtered by level. `None` otherwise.
pub fn logs_matching_select(team_id: i64, filter: &LogFilter) -> Option<SelectStatement> {
    let LogFilter {
        level,
        action: None,
        user_id: None,
        since: None,
        until: None,
    } = filter
    else {
        return None;
    };
    let mut q = Query::select();
    q.expr(Expr::cust("CAST(COALESCE(SUM(n), 0) AS BIGINT)"))
        .from(Alias::new("log_counts"))
        .and_where(Expr::col(Alias::new("team_id")).eq(team_id));
    if let Some(level) = level {
        q.and_where(Expr::col(Alias::new("level")).eq(level.to_value()));
    }
    Some(q)
}

/// [`logs_matching_select`], run.
pub async fn logs_matching(
    db: &impl ConnectionTrait,
    team_id: i64,
    filter: &LogFilter,
) -> Result<Option<u64>, DbErr> {
    match logs_matching_select(team_id, filter) {
        Some(select) => run_count(db, &select).await.map(Some),
        None => Ok(None),
    }
}

async fn run_count(db: &impl ConnectionTrait, select: &SelectStatement) -> Result<u64, DbErr> {
    let n: i64 = match db.query_one(select).await? {
        Some(row) => row.try_get_by_index(0)?,
        None => 0,
    };
    Ok(count(n))
}

/// Recomputes every counter from the rows, with writers held off (a
/// PostgreSQL table lock that readers pass; SQLite's write lock): for data
/// written with the triggers disabled, or a restored backup.
pub async fn repair(db: &sea_orm::DatabaseConnection) -> Result<(), DbErr> {
    let txn = super::begin_write(db).await?;
    if db.get_database_backend() == DatabaseBackend::Postgres {
        txn.execute_unprepared("LOCK TABLE jobs, logs IN SHARE MODE")
            .await?;
    }
    for table in ["job_counts", "company_counts", "log_counts"] {
        txn.execute_unprepared(&format!("DELETE FROM {table}"))
            .await?;
    }
    for sql in migration::m20261207_000007_counters::BACKFILL {
        txn.execute_unprepared(sql).await?;
    }
    txn.commit().await
}

/// Whether the counters agree with a recount of the rows (tests, and
/// `repair-counters --check`): the differing `(table, team, key, counted,
/// kept)` rows.
pub async fn drift(
    db: &impl ConnectionTrait,
) -> Result<Vec<(String, i64, String, i64, i64)>, DbErr> {
    let mut out = Vec::new();
    for (table, key, source, filter) in [
        ("job_counts", "status", "jobs", ""),
        ("company_counts", "company", "jobs", ""),
        ("log_counts", "level", "logs", "WHERE team_id IS NOT NULL"),
    ] {
        let sql = format!(
            "SELECT COALESCE(c.team_id, k.team_id) AS team_id, COALESCE(c.k, k.{key}) AS k, \
                    COALESCE(c.n, 0) AS counted, COALESCE(k.n, 0) AS kept \
             FROM (SELECT team_id, {key} AS k, COUNT(*) AS n FROM {source} {filter} GROUP BY team_id, {key}) c \
             FULL OUTER JOIN {table} k ON k.team_id = c.team_id AND k.{key} = c.k \
             WHERE COALESCE(c.n, 0) <> COALESCE(k.n, 0)"
        );
        let rows = db
            .query_all_raw(Statement::from_string(db.get_database_backend(), sql))
            .await?;
        for row in rows {
            out.push((
                table.to_owned(),
                row.try_get("", "team_id")?,
                row.try_get("", "k")?,
                row.try_get("", "counted")?,
                row.try_get("", "kept")?,
            ));
        }
    }
    Ok(out)
}
