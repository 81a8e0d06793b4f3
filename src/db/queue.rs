//! The `tasks` table as a queue. Enqueueing takes any connection, so a
//! mutation adds its task inside its own transaction: the task exists if and
//! only if the change committed. Claiming takes a time-limited lease
//! (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so replicas never claim the same
//! row; SQLite serialises writers, so one `UPDATE … RETURNING` is atomic).
//! A lease that runs out (its worker crashed) makes the task claimable again.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use sea_orm::{
    ConnectionTrait, DatabaseBackend, DbErr, EntityTrait, FromQueryResult, QueryFilter, Statement,
    sea_query::{ExprTrait, OnConflict, Query},
};
use serde_json::Value as Json;
use tokio::sync::Notify;

use crate::db::{self, entities::task};

/// Task kinds.
pub const RESUME: &str = "resume.generate";
pub const EMAIL: &str = "email.send";
pub const RETENTION: &str = "logs.retention";
pub const REFRESH: &str = "cache.refresh";

/// A cheap handle for code that enqueues: makes tasks with the configured
/// attempts and wakes this replica's workers.
#[derive(Clone)]
pub struct TaskHandle {
    wake: Arc<Notify>,
    refresh_delay: Duration,
    max_attempts: i32,
}

impl TaskHandle {
    /// A handle for workers that try `max_attempts` times and gather a
    /// team's writes for `refresh_delay` before refreshing its cached reads.
    pub fn new(max_attempts: i32, refresh_delay: Duration) -> Self {
        Self {
            wake: Arc::new(Notify::new()),
            refresh_delay,
            max_attempts,
        }
    }

    /// The signal that wakes this replica's workers.
    pub fn wake_signal(&self) -> Arc<Notify> {
        Arc::clone(&self.wake)
    }

    /// A task with the configured number of attempts.
    pub fn task(&self, kind: &'static str, payload: Json) -> NewTask {
        NewTask {
            max_attempts: self.max_attempts,
            ..NewTask::new(kind, payload)
        }
    }

    /// Call after the transaction that enqueued work committed.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// The coalesced refresh of one team's hot cached reads.
    pub fn cache_refresh(&self, team_id: i64) -> NewTask {
        self.task(REFRESH, serde_json::json!({ "teamId": team_id }))
            .dedup(format!("{REFRESH}:{team_id}"))
            .after(self.refresh_delay)
    }
}

/// A task waiting to be written.
#[derive(Debug, Clone)]
pub struct NewTask {
    pub kind: &'static str,
    pub payload: Json,
    /// While a task with this key is queued, enqueueing another is a no-op.
    pub dedup_key: Option<String>,
    /// Not before this long from now.
    pub delay: Duration,
    pub max_attempts: i32,
    /// The trace it is enqueued in (its run links back to it).
    pub trace_context: Option<String>,
}

impl NewTask {
    pub fn new(kind: &'static str, payload: Json) -> Self {
        Self {
            kind,
            payload,
            dedup_key: None,
            delay: Duration::ZERO,
            max_attempts: 5,
            trace_context: None,
        }
    }

    pub fn dedup(mut self, key: impl Into<String>) -> Self {
        self.dedup_key = Some(key.into());
        self
    }

    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// Adds tasks; pass the mutation's transaction. Returns how many were
/// added: a task whose dedup key is already queued is not, and needs no
/// wake-up (the one queued has its own).
pub async fn enqueue(db: &impl ConnectionTrait, tasks: &[NewTask]) -> Result<u64, DbErr> {
    if tasks.is_empty() {
        return Ok(0);
    }
    let now = db::now();
    let mut stmt = Query::insert();
    stmt.into_table(task::Entity).columns([
        task::Column::Kind,
        task::Column::Payload,
        task::Column::Status,
        task::Column::Attempts,
        task::Column::MaxAttempts,
        task::Column::RunAt,
        task::Column::DedupKey,
        task::Column::CreatedAt,
        task::Column::UpdatedAt,
        task::Column::TraceContext,
    ]);
    for t in tasks {
        let run_at = now + chrono::Duration::from_std(t.delay).unwrap_or_default();
        stmt.values([
            t.kind.into(),
            t.payload.clone().into(),
            "queued".into(),
            0i32.into(),
            t.max_attempts.into(),
            run_at.into(),
            t.dedup_key.clone().into(),
            now.into(),
            now.into(),
            t.trace_context.clone().into(),
        ])
        .map_err(|e| DbErr::Custom(e.to_string()))?;
    }
    stmt.on_conflict(OnConflict::new().do_nothing().to_owned());
    Ok(db.execute(&stmt).await?.rows_affected())
}

/// Claims up to `limit` runnable tasks for `worker` for `lease`.
pub async fn claim(
    db: &impl ConnectionTrait,
    worker: &str,
    limit: u32,
    lease: Duration,
) -> Result<Vec<task::Model>, DbErr> {
    let now = db::now();
    let until = now + chrono::Duration::from_std(lease).unwrap_or_default();
    let backend = db.get_database_backend();
    let lock = if backend == DatabaseBackend::Postgres {
        "FOR UPDATE SKIP LOCKED"
    } else {
        ""
    };
    let (p1, p2, p3, p4) = placeholders(backend);
    let sql = format!(
        "UPDATE tasks SET status = 'running', attempts = attempts + 1, locked_by = {p1}, \
         locked_until = {p2}, updated_at = {p3} \
         WHERE id IN (SELECT id FROM tasks \
           WHERE (status = 'queued' AND run_at <= {p3}) \
              OR (status = 'running' AND locked_until < {p3} AND attempts < max_attempts) \
           ORDER BY run_at, id LIMIT {p4} {lock}) \
         RETURNING *"
    );
    let stmt = Statement::from_sql_and_values(
        backend,
        sql,
        [
            worker.into(),
            until.into(),
            now.into(),
            (limit as i64).into(),
        ],
    );
    task::Model::find_by_statement(stmt).all(db).await
}

fn placeholders(
    backend: DatabaseBackend,
) -> (&'static str, &'static str, &'static str, &'static str) {
    match backend {
        DatabaseBackend::Postgres => ("$1", "$2", "$3", "$4"),
        _ => ("?1", "?2", "?3", "?4"),
    }
}

/// Ends `worker`'s hold on a task, setting `status` and whatever `more`
/// adds; does nothing (returns false) if the lease passed to someone else.
async fn settle(
    db: &impl ConnectionTrait,
    id: i64,
    worker: &str,
    status: &str,
    more: impl FnOnce(sea_orm::UpdateMany<task::Entity>) -> sea_orm::UpdateMany<task::Entity>,
) -> Result<bool, DbErr> {
    let update = task::Entity::update_many()
        .col_expr(task::Column::Status, status.into())
        .col_expr(task::Column::UpdatedAt, db::now().into())
        .col_expr(task::Column::LockedBy, Option::<String>::None.into())
        .col_expr(
            task::Column::LockedUntil,
            Option::<DateTime<Utc>>::None.into(),
        );
    let res = more(update)
        .filter(id_and_holder(id, worker))
        .exec(db)
        .await?;
    Ok(res.rows_affected > 0)
}

/// Marks a task done, if `worker` still holds it.
pub async fn complete(db: &impl ConnectionTrait, id: i64, worker: &str) -> Result<bool, DbErr> {
    settle(db, id, worker, "done", |u| {
        u.col_expr(task::Column::FinishedAt, Some(db::now()).into())
    })
    .await
}

/// Puts a task back for another attempt at `run_at`, or fails it for good.
pub async fn retry_or_fail(
    db: &impl ConnectionTrait,
    id: i64,
    worker: &str,
    error: &str,
    run_at: Option<DateTime<Utc>>,
) -> Result<bool, DbErr> {
    let error = Some(error.to_owned());
    match run_at {
        Some(at) => {
            let requeued = settle(db, id, worker, "queued", |u| {
                u.col_expr(task::Column::LastError, error.into())
                    .col_expr(task::Column::RunAt, at.into())
            })
            .await;
            merge_if_duplicate(db, id, worker, requeued).await
        }
        None => {
            settle(db, id, worker, "failed", |u| {
                u.col_expr(task::Column::LastError, error.into())
                    .col_expr(task::Column::FinishedAt, Some(db::now()).into())
            })
            .await
        }
    }
}

/// Hands a task back untouched (shutdown): the attempt does not count.
pub async fn release(db: &impl ConnectionTrait, id: i64, worker: &str) -> Result<bool, DbErr> {
    let requeue = settle(db, id, worker, "queued", |u| {
        u.col_expr(task::Column::RunAt, db::now().into()).col_expr(
            task::Column::Attempts,
            sea_orm::sea_query::Expr::col(task::Column::Attempts).sub(1),
        )
    })
    .await;
    merge_if_duplicate(db, id, worker, requeue).await
}

/// Back in the queue would collide with a newer queued task of the same
/// dedup key (the unique index allows one): that one covers it, so this
/// one is done, not left running.
async fn merge_if_duplicate(
    db: &impl ConnectionTrait,
    id: i64,
    worker: &str,
    requeued: Result<bool, DbErr>,
) -> Result<bool, DbErr> {
    match requeued {
        Err(err)
            if matches!(
                err.sql_err(),
                Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
            ) =>
        {
            settle(db, id, worker, "done", |u| {
                u.col_expr(
                    task::Column::LastError,
                    Some("merged into a newer queued duplicate".to_owned()).into(),
                )
                .col_expr(task::Column::FinishedAt, Some(db::now()).into())
            })
            .await
        }
        other => other,
    }
}

/// Fails for good, and returns, running tasks whose lease ran out after
/// their last attempt.
pub async fn reap_exhausted(db: &impl ConnectionTrait) -> Result<Vec<task::Model>, DbErr> {
    let backend = db.get_database_backend();
    let p1 = if backend == DatabaseBackend::Postgres {
        "$1"
    } else {
        "?1"
    };
    let sql = format!(
        "UPDATE tasks SET status = 'failed', locked_by = NULL, locked_until = NULL, \
         finished_at = {p1}, updated_at = {p1}, \
         last_error = COALESCE(last_error, 'the lease ran out') || ' (lease expired on the last attempt)' \
         WHERE status = 'running' AND locked_until < {p1} AND attempts >= max_attempts \
         RETURNING *"
    );
    let stmt = Statement::from_sql_and_values(backend, sql, [db::now().into()]);
    task::Model::find_by_statement(stmt).all(db).await
}

fn id_and_holder(id: i64, worker: &str) -> sea_orm::Condition {
    use sea_orm::ColumnTrait;
    sea_orm::Condition::all()
        .add(task::Column::Id.eq(id))
        .add(task::Column::LockedBy.eq(worker))
}

/// Queued and running tasks per kind and status (for the depth gauges).
pub async fn depth(db: &impl ConnectionTrait) -> Result<Vec<(String, String, i64)>, DbErr> {
    use sea_orm::{ColumnTrait, QuerySelect};
    task::Entity::find()
        .filter(task::Column::Status.is_in(["queued", "running"]))
        .select_only()
        .column(task::Column::Kind)
        .column(task::Column::Status)
        .column_as(sea_orm::sea_query::Expr::cust("COUNT(*)"), "n")
        .group_by(task::Column::Kind)
        .group_by(task::Column::Status)
        .into_tuple()
        .all(db)
        .await
}

/// Deletes finished tasks older than `before`, at most `limit` rows.
pub async fn purge_finished(
    db: &impl ConnectionTrait,
    before: DateTime<Utc>,
    limit: u64,
) -> Result<u64, DbErr> {
    use sea_orm::{ColumnTrait, QuerySelect, QueryTrait};
    let ids = task::Entity::find()
        .select_only()
        .column(task::Column::Id)
        .filter(task::Column::Status.is_in(["done", "failed"]))
        .filter(task::Column::FinishedAt.lt(before))
        .limit(limit)
        .into_query();
    let res = task::Entity::delete_many()
        .filter(task::Column::Id.in_subquery(ids))
        .exec(db)
        .await?;
    Ok(res.rows_affected)
}
