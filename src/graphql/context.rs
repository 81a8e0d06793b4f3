//! What resolvers reach through the async-graphql `Context`: the shared
//! services (schema data) and the per-request viewer and loaders.

use std::{
    net::IpAddr,
    sync::{Arc, OnceLock},
};

use async_graphql::Context;
use sea_orm::DatabaseConnection;

use super::loaders::Loaders;
use crate::{
    auth::{Authenticator, Viewer},
    config::Config,
    error::{AppError, AppResult},
    throttle::Throttle,
    unit_of_work::Writer,
};

/// Long-lived services, put into the schema once.
#[derive(Clone)]
pub struct Services {
    pub db: DatabaseConnection,
    pub config: Arc<Config>,
    pub auth: Arc<Authenticator>,
    /// Every mutation writes through it (see [`crate::unit_of_work`]).
    pub writer: Writer,
    /// Rate limits and quotas.
    pub throttle: Arc<Throttle>,
}

/// One request's identity and loaders. `signup` and `login` sign the
/// session in, so the payload they return can be read with the new
/// identity (`login { user { team { name } } }`).
pub struct Session {
    db: DatabaseConnection,
    viewer: OnceLock<Viewer>,
    loaders: OnceLock<Loaders>,
    client: Option<IpAddr>,
}

impl Session {
    /// `client` is the caller's address (for rate limits); `None` for work
    /// the service does itself.
    pub fn new(db: DatabaseConnection, viewer: Option<Viewer>, client: Option<IpAddr>) -> Self {
        let cell = OnceLock::new();
        if let Some(v) = viewer {
            let _ = cell.set(v);
        }
        Self {
            db,
            viewer: cell,
            loaders: OnceLock::new(),
            client,
        }
    }

    pub fn viewer(&self) -> Option<Viewer> {
        self.viewer.get().copied()
    }

    /// Adopts the identity that just signed in, if the request had none.
    pub fn sign_in(&self, viewer: Viewer) {
        let _ = self.viewer.set(viewer);
    }

    /// The loaders, created on first use and scoped to the viewer's team.
    pub fn loaders(&self) -> Option<&Loaders> {
        let viewer = self.viewer()?;
        Some(
            self.loaders
                .get_or_init(|| Loaders::new(self.db.clone(), viewer.team_id)),
        )
    }
}

/// Typed access to the context's data; never panics.
pub trait ContextExt {
    fn services(&self) -> AppResult<&Services>;
    /// The authenticated caller, or UNAUTHENTICATED.
    fn viewer(&self) -> AppResult<Viewer>;
    /// The request's loaders (present whenever there is a viewer).
    fn loaders(&self) -> AppResult<&Loaders>;

    /// The pool this request runs on (the request pool, or the workers'
    /// pool for a background refresh).
    fn db(&self) -> AppResult<&DatabaseConnection>;

    /// The caller's address, as `TRUSTED_PROXIES` lets it be known.
    fn client_addr(&self) -> Option<IpAddr>;
}

impl ContextExt for Context<'_> {
    fn services(&self) -> AppResult<&Services> {
        self.data_opt::<Services>()
            .ok_or_else(|| AppError::internal(anyhow::anyhow!("schema built without services")))
    }

    fn viewer(&self) -> AppResult<Viewer> {
        self.data_opt::<Session>()
            .and_then(Session::viewer)
            .ok_or_else(unauthenticated)
    }

    fn loaders(&self) -> AppResult<&Loaders> {
        self.data_opt::<Session>()
            .and_then(Session::loaders)
            .ok_or_else(unauthenticated)
    }

    fn client_addr(&self) -> Option<IpAddr> {
        self.data_opt::<Session>().and_then(|s| s.client)
    }

    fn db(&self) -> AppResult<&DatabaseConnection> {
        match self.data_opt::<Session>() {
            Some(session) => Ok(&session.db),
            None => Ok(&self.services()?.db),
        }
    }
}

fn unauthenticated() -> AppError {
    AppError::Unauthenticated("sign in: send `Authorization: Bearer <token>`".into())
}
