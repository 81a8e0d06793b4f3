//! Database access: connection set-up, entities and the query functions
//! resolvers call. Query functions take `&impl ConnectionTrait` so the same
//! code runs on the pool and inside a transaction.

pub mod activity;
pub mod entities;
pub mod enums;
pub mod jobs;
pub mod keyset;
pub mod logs;
pub mod resumes;
pub mod seed;
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
    config::Config,
    metrics::{Metrics, PoolLabels},
};

/// Opens the request pool; every statement is counted in `metrics`.
///
/// The metric callback is installed before the connection is cloned anywhere
/// (sea-orm copies it into clones and transactions, not back).
pub async fn connect(
    config: &Config,
    metrics: &Arc<Metrics>,
) -> anyhow::Result<DatabaseConnection> {
    connect_url(
        config.database_url.expose(),
        config.db_max_connections,
        config.database_schema.as_deref(),
        metrics,
        "requests",
    )
    .await
}

/// A small pool of its own for background workers, so they never take a
/// connection a request waits for.
pub async fn connect_tasks(
    config: &Config,
    metrics: &Arc<Metrics>,
) -> anyhow::Result<DatabaseConnection> {
    let size = (config.tasks.concurrency as u32 + 1).clamp(2, 8);
    connect_url(
        config.database_url.expose(),
        Some(size),
        config.database_schema.as_deref(),
        metrics,
        "tasks",
    )
    .await
}

/// Like [`connect`], with an explicit PostgreSQL `search_path` (tests give
/// each test its own schema).
pub async fn connect_url(
    url: &str,
    max_connections: Option<u32>,
    search_path: Option<&str>,
    metrics: &Arc<Metrics>,
    pool: &'static str,
) -> anyhow::Result<DatabaseConnection> {
    let sqlite = url.starts_with("sqlite:");
    let mut opts = ConnectOptions::new(url.to_owned());
    opts.max_connections(max_connections.unwrap_or(if sqlite { 4 } else { 16 }))
        .min_connections(if sqlite { 1 } else { 2 })
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(5))
        .sqlx_logging(false);
    if let Some(schema) = search_path {
        opts.set_schema_search_path(schema.to_owned());
    }
    // WAL lets readers run beside the single writer; a busy writer makes
    // others wait instead of failing with "database is locked".
    opts.map_sqlx_sqlite_opts(|o| {
        o.journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
    });
    let mut db = sea_orm::Database::connect(opts)
        .await
        .context("cannot connect to the database (check DATABASE_URL)")?;
    let metrics = Arc::clone(metrics);
    let labels = PoolLabels { pool };
    db.set_metric_callback(move |info| {
        metrics.sql_statements.get_or_create(&labels).inc();
        if info.failed {
            metrics.sql_failures.get_or_create(&labels).inc();
        }
        metrics
            .sql_duration
            .get_or_create(&labels)
            .observe(info.elapsed.as_secs_f64());
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

/// A cheap round trip for readiness checks.
pub async fn ping(db: &impl ConnectionTrait) -> Result<(), sea_orm::DbErr> {
    db.execute_unprepared("SELECT 1").await.map(|_| ())
}

/// Now, at the precision both databases store (microseconds), so values read
/// back compare equal to the ones written and cursors round-trip exactly.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}
