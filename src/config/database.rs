//! `DATABASE_*`, `DB_*`, `STATEMENT_TIMEOUT_MS`: where the data lives and how
//! its pools behave.

use std::time::Duration;

use anyhow::bail;

use super::env::Env;
use crate::secret::Secret;

/// The embedded default database: a SQLite file in the working folder.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://jobgraph.db?mode=rwc";

/// Where the data lives and how its pools behave.
#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    /// `DATABASE_URL`: `sqlite://…` or `postgres://…` (default `sqlite://jobgraph.db`).
    pub url: Secret,
    /// `DATABASE_SCHEMA`: PostgreSQL schema to use (`search_path`), if not the default.
    pub schema: Option<String>,
    /// `DB_MAX_CONNECTIONS`: request pool size (default 16 on PostgreSQL, 4 on SQLite).
    pub max_connections: Option<u32>,
    /// `STATEMENT_TIMEOUT_MS`: PostgreSQL `statement_timeout` on every
    /// connection (default 5000).
    pub statement_timeout: Duration,
    /// `DB_ACQUIRE_TIMEOUT_MS`: longest a request waits for a pooled
    /// connection; then 503 with `Retry-After` (default 2000).
    pub acquire_timeout: Duration,
    /// `DATABASE_READ_URLS`: comma-separated PostgreSQL streaming replicas
    /// for reads (default none; ignored, with a warning, on SQLite).
    pub read_urls: Vec<Secret>,
    /// `READ_REPLICA_MAX_LAG_MS`: a replica further behind the primary is
    /// skipped (default 5000).
    pub replica_max_lag: Duration,
    /// `READ_REPLICA_CHECK_MS`: how often each replica's replay position
    /// is read (default 100).
    pub replica_check: Duration,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: Secret::new(DEFAULT_DATABASE_URL),
            schema: None,
            max_connections: None,
            statement_timeout: Duration::from_secs(5),
            acquire_timeout: Duration::from_secs(2),
            read_urls: Vec::new(),
            replica_max_lag: Duration::from_secs(5),
            replica_check: Duration::from_millis(100),
        }
    }
}

impl DatabaseSettings {
    /// Whether the database is the embedded SQLite file.
    pub fn is_sqlite(&self) -> bool {
        self.url.expose().starts_with("sqlite:")
    }

    pub(super) fn read(&mut self, env: &Env) -> anyhow::Result<()> {
        if let Some(url) = env.get("DATABASE_URL") {
            let url = normalize_sqlite_url(&url);
            if !(url.starts_with("sqlite:") || url.starts_with("postgres")) {
                bail!("DATABASE_URL must start with sqlite:// or postgres://");
            }
            self.url = Secret::new(url);
        }
        if let Some(schema) = env.get("DATABASE_SCHEMA") {
            if !schema
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                bail!("DATABASE_SCHEMA may hold only letters, digits and underscores");
            }
            self.schema = Some(schema);
        }
        if let Some(n) = env.range("DB_MAX_CONNECTIONS", 1, 1000)? {
            self.max_connections = Some(n);
        }
        if let Some(d) = env.millis("STATEMENT_TIMEOUT_MS", 10, 3_600_000)? {
            self.statement_timeout = d;
        }
        if let Some(d) = env.millis("DB_ACQUIRE_TIMEOUT_MS", 10, 600_000)? {
            self.acquire_timeout = d;
        }
        if let Some(urls) = env.get("DATABASE_READ_URLS") {
            self.read_urls = Vec::new();
            for url in urls.split(',').map(str::trim).filter(|u| !u.is_empty()) {
                if !url.starts_with("postgres") {
                    bail!("DATABASE_READ_URLS holds postgres:// URLs of streaming replicas");
                }
                self.read_urls.push(Secret::new(url));
            }
        }
        if let Some(d) = env.millis("READ_REPLICA_MAX_LAG_MS", 1, 3_600_000)? {
            self.replica_max_lag = d;
        }
        if let Some(d) = env.millis("READ_REPLICA_CHECK_MS", 10, 60_000)? {
            self.replica_check = d;
        }
        Ok(())
    }
}

/// `sqlite://path` opens read-write but does not create the file unless
/// `mode=rwc` is given; the embedded default must work on a fresh folder.
pub(super) fn normalize_sqlite_url(url: &str) -> String {
    if url.starts_with("sqlite:") && !url.contains("mode=") && !url.contains(":memory:") {
        let sep = if url.contains('?') { '&' } else { '?' };
        format!("{url}{sep}mode=rwc")
    } else {
        url.to_owned()
    }
}
