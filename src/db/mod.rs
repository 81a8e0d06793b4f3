//! Database access: connection set-up, entities and the query functions
//! resolvers call. Query functions take `&impl ConnectionTrait` so the same
//! code runs on the pool and inside a transaction.

pub mod activity;
pub mod along;
pub mod counters;
pub mod entities;
pub mod enums;
pub mod jobs;
pub mod keyset;
pub mod logs;
pub mod queue;
pub mod replicas;
pub mod resumes;
pub mod shape;

pub mod teams;
pub mod users;

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use chrono::{DateTime, SubsecRound, Utc};
use migration::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectOptions, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    SqliteTransactionMode, TransactionOptions, TransactionTrait,
    sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous},
};

use crate::{
    config::DatabaseSettings,
    metrics::{Metrics, PoolLabels, StatementLabels},
};

/// Opens the request pool; every statement is counted in `metrics`.
pub async fn connect(
    settings: &DatabaseSettings,
    metrics: &Arc<Metrics>,
) -> anyhow::Result<DatabaseConnection> {
    connect_pool(settings, settings.max_connections, metrics, "requests").await
}

/// A small pool of its own for `workers` background workers, so they never
/// take a connection a request waits for.
pub async fn connect_tasks(
    settings: &DatabaseSettings,
    workers: usize,
    metrics: &Arc<Metrics>,
) -> anyhow::Result<DatabaseConnection> {
    let size = (workers as u32 + 1).clamp(2, 8);
    connect_pool(settings, Some(size), metrics, "tasks").await
}

/// Opens a pool named `pool` (the metrics label) of at most
/// `max_connections`. On PostgreSQL every connection carries
/// `statement_timeout` (and a bound on idling inside a transaction), on
/// SQLite the same bound on waiting for the write lock, so no statement can
/// hold a connection for long.
///
/// The metric callback is installed before the connection is cloned anywhere
/// (sea-orm copies it into clones and transactions, not back).
pub async fn connect_pool(
    settings: &DatabaseSettings,
    max_connections: Option<u32>,
    metrics: &Arc<Metrics>,
    pool: &'static str,
) -> anyhow::Result<DatabaseConnection> {
    open_pool(settings, max_connections, metrics, pool, false).await
}

/// A read replica's pool, named `pool`: connected on first use, so a
/// replica that is down at start-up is skipped, not a failed start.
pub async fn connect_replica(
    settings: &DatabaseSettings,
    metrics: &Arc<Metrics>,
    pool: &'static str,
) -> anyhow::Result<DatabaseConnection> {
    open_pool(settings, settings.max_connections, metrics, pool, true).await
}

/// How long a pooled PostgreSQL connection may sit idle before its next
/// checkout pings it first.
const CHECKOUT_PING_AFTER_IDLE: Duration = Duration::from_secs(1);

async fn open_pool(
    settings: &DatabaseSettings,
    max_connections: Option<u32>,
    metrics: &Arc<Metrics>,
    pool: &'static str,
    lazy: bool,
) -> anyhow::Result<DatabaseConnection> {
    let sqlite = settings.is_sqlite();
    let mut opts = ConnectOptions::new(settings.url.expose().to_owned());
    let max = max_connections.unwrap_or(if sqlite { 4 } else { 16 });
    let min = if lazy {
        0
    } else {
        max.min(if sqlite { 1 } else { 2 })
    };
    opts.max_connections(max)
        .min_connections(min)
        .connect_lazy(lazy)
        .connect_timeout(settings.acquire_timeout.max(Duration::from_secs(1)))
        .acquire_timeout(settings.acquire_timeout)
        .sqlx_logging(false);
    // sqlx pings a connection on every checkout by default: a round trip to
    // the database before each statement (PostgreSQL then answers three
    // messages per read instead of two, counting the ping sqlx sends when
    // the connection comes back). A connection used within the last second
    // is alive as far as a ping can tell; one idle longer (the server, a
    // proxy or a restart may have dropped it) is still pinged. SQLite's
    // connections live in this process and cannot be dropped under it.
    if sqlite {
        opts.test_before_acquire(false);
    } else {
        opts.test_before_acquire_if_idle_for(CHECKOUT_PING_AFTER_IDLE);
    }
    if let Some(schema) = &settings.schema {
        opts.set_schema_search_path(schema.to_owned());
    }
    // WAL lets readers run beside the single writer; a busy writer makes
    // others wait instead of failing with "database is locked" — for as
    // long as a PostgreSQL statement may run, no longer.
    let busy = settings.statement_timeout;
    opts.map_sqlx_sqlite_opts(move |o| {
        o.journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(busy)
            .foreign_keys(true)
    });
    let statement_ms = settings.statement_timeout.as_millis().to_string();
    let idle_ms = (settings.statement_timeout * 6).as_millis().to_string();
    opts.map_sqlx_postgres_opts(move |o| {
        o.options([
            ("statement_timeout", statement_ms.as_str()),
            ("idle_in_transaction_session_timeout", idle_ms.as_str()),
        ])
    });
    let mut db = sea_orm::Database::connect(opts)
        .await
        .context("cannot connect to the database (check DATABASE_URL)")?;
    let metrics = Arc::clone(metrics);
    let labels = PoolLabels { pool };
    let backend = if sqlite { "sqlite" } else { "postgresql" };
    db.set_metric_callback(move |info| {
        crate::telemetry::count_sql_statement();
        metrics.sql_statements.get_or_create(&labels).inc();
        if info.failed {
            metrics.sql_failures.get_or_create(&labels).inc();
        }
        let sql = &info.statement.sql;
        let labels = StatementLabels {
            pool,
            statement: crate::telemetry::statement_kind(sql),
        };
        metrics
            .sql_duration
            .get_or_create(&labels)
            .observe(info.elapsed.as_secs_f64());
        if crate::telemetry::sql_statement(sql, info.elapsed, info.failed, backend) {
            metrics.sql_slow.get_or_create(&labels).inc();
        }
    });
    Ok(db)
}

/// Starts a transaction that will write. On SQLite it is `BEGIN IMMEDIATE`:
/// a deferred transaction that reads first and then writes fails with
/// "database is locked" when another writer committed in between, and no
/// busy timeout helps; taking the write lock up front makes writers queue.
/// PostgreSQL ignores the mode.
pub async fn begin_write(db: &DatabaseConnection) -> Result<DatabaseTransaction, sea_orm::DbErr> {
    db.begin_with_options(TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..Default::default()
    })
    .await
}

/// Applies every pending migration.
pub async fn migrate(db: &DatabaseConnection) -> anyhow::Result<()> {
    Migrator::up(db, None)
        .await
        .context("applying database migrations failed")
}

/// Whether migrations are pending (for `/ready` and start-up checks).
pub async fn pending_migrations(db: &DatabaseConnection) -> anyhow::Result<usize> {
    Ok(Migrator::get_pending_migrations(db).await?.len())
}

/// This database's random instance id (see the instance-id migration).
pub async fn instance_id(db: &impl ConnectionTrait) -> anyhow::Result<String> {
    let stmt = sea_orm::Statement::from_string(
        db.get_database_backend(),
        "SELECT id FROM jobgraph_instance LIMIT 1",
    );
    let row = db
        .query_one_raw(stmt)
        .await?
        .context("the database has no instance id: run `jobgraph migrate`")?;
    Ok(row.try_get::<String>("", "id")?)
}

/// Whether an error means the database cannot serve right now — down,
/// restarting, unreachable, its pool exhausted, a statement cut off by
/// `statement_timeout`, SQLite busy — rather than a fault in the request:
/// such errors are answered 503 with `Retry-After`, not 500.
pub fn is_unavailable(err: &sea_orm::DbErr) -> bool {
    use sea_orm::{DbErr, RuntimeErr};
    let sqlx = match err {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => return true,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => e,
        _ => return false,
    };
    use sea_orm::sqlx::Error as E;
    match sqlx.as_ref() {
        E::Io(_)
        | E::Tls(_)
        | E::PoolTimedOut
        | E::PoolClosed
        | E::WorkerCrashed
        | E::Protocol(_) => true,
        E::Database(db) => {
            let code = db.code().unwrap_or_default();
            // PostgreSQL: 08 connection exception, 40 transaction rollback, 53 insufficient resources,
            // 57 operator intervention (shutdown, query_canceled); SQLite: 5
            // SQLITE_BUSY, 6 SQLITE_LOCKED.
            // 40: a serialization failure or deadlock, retried by the client.
            code.starts_with("08")
                || code.starts_with("40")
                || code.starts_with("53")
                || code.starts_with("57")
                || code == "5"
                || code == "6"
        }
        _ => false,
    }
}

/// A cheap round trip for readiness checks.
pub async fn ping(db: &impl ConnectionTrait) -> Result<(), sea_orm::DbErr> {
    db.execute_unprepared("SELECT 1").await.map(|_| ())
}

/// Now, at the precision both databases store (microseconds), so values read
/// back compare equal to the ones written and cursors round-trip exactly.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}
