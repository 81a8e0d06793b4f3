//! What every handler reaches: the shared, cheaply cloned state of one
//! running replica.

use std::sync::Arc;

use sea_orm::DatabaseConnection;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use tokio_util::sync::CancellationToken;

use super::{compression::Compressor, live::Connections};
use crate::{
    auth::Authenticator, cache::ResponseCache, config::Config, graphql::execution::Executor,
    metrics::Metrics, tasks::TaskSystem,
};

/// The parts of the service the HTTP layer uses.
pub struct Parts {
    pub config: Arc<Config>,
    pub db: DatabaseConnection,
    pub auth: Arc<Authenticator>,
    pub executor: Arc<Executor>,
    pub metrics: Arc<Metrics>,
    pub cache: Arc<ResponseCache>,
    pub tasks: Arc<TaskSystem>,
    pub events: crate::events::EventBus,
}

struct Shared {
    parts: Parts,
    compressor: Compressor,
    live_connections: Arc<Connections>,
    /// Cancelled when the replica starts shutting down: live connections
    /// (which outlive any request) close then.
    stopping: CancellationToken,
    /// One permit per GraphQL request running (`MAX_IN_FLIGHT_REQUESTS`).
    in_flight: Arc<Semaphore>,
}

/// Shared, cheaply cloned state of the running service.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(parts: Parts) -> Self {
        let in_flight = Arc::new(Semaphore::new(parts.config.http.max_in_flight));
        let compressor = Compressor::new(parts.config.http.compression_min_bytes);
        Self(Arc::new(Shared {
            parts,
            compressor,
            live_connections: Arc::default(),
            stopping: CancellationToken::new(),
            in_flight,
        }))
    }

    /// A slot for one more GraphQL request, waiting at most
    /// `IN_FLIGHT_WAIT_MS` while `MAX_IN_FLIGHT_REQUESTS` are running.
    pub async fn admit(&self) -> Option<OwnedSemaphorePermit> {
        let slots = Arc::clone(&self.0.in_flight);
        if let Ok(permit) = Arc::clone(&slots).try_acquire_owned() {
            return Some(permit);
        }
        tokio::time::timeout(self.config().http.in_flight_wait, slots.acquire_owned())
            .await
            .ok()?
            .ok()
    }

    pub fn config(&self) -> &Config {
        &self.0.parts.config
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.0.parts.db
    }

    pub fn auth(&self) -> &Authenticator {
        &self.0.parts.auth
    }

    pub fn executor(&self) -> &Arc<Executor> {
        &self.0.parts.executor
    }

    pub fn metrics(&self) -> &Metrics {
        &self.0.parts.metrics
    }

    pub fn cache(&self) -> &Arc<ResponseCache> {
        &self.0.parts.cache
    }

    pub fn live_connections(&self) -> &Arc<Connections> {
        &self.0.live_connections
    }

    pub fn stopping(&self) -> &CancellationToken {
        &self.0.stopping
    }

    pub fn events(&self) -> &crate::events::EventBus {
        &self.0.parts.events
    }

    pub fn compressor(&self) -> &Compressor {
        &self.0.compressor
    }

    pub fn tasks(&self) -> &Arc<TaskSystem> {
        &self.0.parts.tasks
    }
}
