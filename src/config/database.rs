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
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: Secret::new(DEFAULT_DATABASE_URL),
            schema: None,
            max_connections: None,
            statement_timeout: Duration::from_secs(5),
            acquire_timeout: Duration::from_secs(2),
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
