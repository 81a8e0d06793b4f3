//! What every handler reaches: the shared, cheaply cloned state of one
//! running replica.

use std::sync::Arc;

use sea_orm::DatabaseConnection;

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
}

/// Shared, cheaply cloned state of the running service.
#[derive(Clone)]
pub struct AppState(Arc<Parts>);

impl AppState {
    pub fn new(parts: Parts) -> Self {
        Self(Arc::new(parts))
    }

    pub fn config(&self) -> &Config {
        &self.0.config
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.0.db
    }

    pub fn auth(&self) -> &Authenticator {
        &self.0.auth
    }

    pub fn executor(&self) -> &Arc<Executor> {
        &self.0.executor
    }

    pub fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }

    pub fn cache(&self) -> &Arc<ResponseCache> {
        &self.0.cache
    }

    pub fn tasks(&self) -> &Arc<TaskSystem> {
        &self.0.tasks
    }
}
