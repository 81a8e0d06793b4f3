//! Logging and request context: `RUST_LOG` filters, `LOG_FORMAT=json` for
//! machines, no colour codes unless writing to a terminal, and one span per
//! request whose fields (request id, operation, team, cache outcome, SQL
//! statements) every log line inside it carries.

use std::{
    future::Future,
    io::IsTerminal,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use tracing::Instrument;
use tracing_subscriber::{EnvFilter, fmt};

/// Installs the global subscriber once; later calls are no-ops (tests start
/// many apps in one process).
pub fn init(json: bool) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,sea_orm=warn,sea_orm_migration=warn"));
    let builder = fmt()
        .with_env_filter(filter)
        .with_target(true)
        .with_ansi(std::io::stdout().is_terminal());
    let _ = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init()
    } else {
        builder.try_init()
    };
}

/// What one request did, counted wherever its work runs.
#[derive(Debug, Default)]
pub struct RequestStats {
    sql: AtomicU64,
}

impl RequestStats {
    pub fn sql_statements(&self) -> u64 {
        self.sql.load(Ordering::Relaxed)
    }
}

tokio::task_local! {
    static REQUEST: Arc<RequestStats>;
}

/// Runs a request's future with its counters.
pub async fn with_request_stats<F: Future>(stats: Arc<RequestStats>, fut: F) -> F::Output {
    REQUEST.scope(stats, fut).await
}

/// Counts one SQL statement for the request this runs in, if any (called
/// from the database's metric callback).
pub fn count_sql_statement() {
    let _ = REQUEST.try_with(|stats| stats.sql.fetch_add(1, Ordering::Relaxed));
}

/// A future that carries the current span and request counters into a
/// spawned task (DataLoader batches run in tasks of their own).
pub fn carry<F: Future>(fut: F) -> impl Future<Output = F::Output> {
    let span = tracing::Span::current();
    let stats = REQUEST.try_with(Arc::clone).ok();
    async move {
        match stats {
            Some(stats) => REQUEST.scope(stats, fut.instrument(span)).await,
            None => fut.instrument(span).await,
        }
    }
}
