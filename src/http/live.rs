//! What WebSocket and SSE connections share: who may open one (a token the
//! service still honours), how many one user may hold open, and watching
//! for the caller's access to change while it is open.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use crate::{
    auth::{TokenSubject, Viewer},
    events::{Event, TeamEvents, hub::Ended},
};

use super::AppState;

/// Open live connections per user on this replica.
#[derive(Default)]
pub struct Connections {
    per_user: Mutex<HashMap<i64, usize>>,
}

impl Connections {
    /// A slot for one more connection of `user_id`, or `None` beyond
    /// `SUBSCRIPTION_CONNECTIONS_PER_USER`.
    pub fn open(self: &Arc<Self>, user_id: i64, max: usize) -> Option<ConnectionSlot> {
        let mut per_user = self.per_user.lock().unwrap_or_else(|e| e.into_inner());
        let open = per_user.entry(user_id).or_default();
        if *open >= max {
            return None;
        }
        *open += 1;
        Some(ConnectionSlot {
            connections: Arc::clone(self),
            user_id,
        })
    }
}

/// Held for as long as the connection is open.
pub struct ConnectionSlot {
    connections: Arc<Connections>,
    user_id: i64,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut per_user = self
            .connections
            .per_user
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(open) = per_user.get_mut(&self.user_id) {
            *open -= 1;
            if *open == 0 {
                per_user.remove(&self.user_id);
            }
        }
    }
}

/// Why a connection may not open or must close.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// No token, a bad one, or one the service no longer honours.
    Forbidden(String),
    /// `SUBSCRIPTION_CONNECTIONS_PER_USER` reached.
    TooManyConnections(usize),
    /// The database could not check the token.
    Unavailable,
}

/// A signed-in caller of a live connection, with what it needs to notice
/// that its access changed.
pub struct Caller {
    pub subject: TokenSubject,
    pub viewer: Viewer,
    _slot: ConnectionSlot,
    /// The team's events, read for `Users` changes only.
    watch: Option<TeamEvents>,
}

impl Caller {
    /// Checks an `Authorization` value (`Bearer …`) and takes a slot.
    pub async fn sign_in(state: &AppState, authorization: Option<&str>) -> Result<Self, Refused> {
        let subject = match state.auth().verify(authorization) {
            Ok(Some(subject)) => subject,
            Ok(None) => {
                return Err(Refused::Forbidden(
                    "sign in first: send `Authorization: Bearer <token>`".into(),
                ));
            }
            Err(reason) => return Err(Refused::Forbidden(reason.to_string())),
        };
        let viewer = current(state, subject).await?;
        let max = state.config().live.max_connections_per_user;
        let slot = state
            .live_connections()
            .open(viewer.user_id, max)
            .ok_or(Refused::TooManyConnections(max))?;
        let watch = state.events().team(viewer.team_id);
        Ok(Self {
            subject,
            viewer,
            _slot: slot,
            watch: Some(watch),
        })
    }

    /// A task that ends when the caller's access changed: its token
    /// revoked, its account deactivated, its role or team changed. It
    /// checks again after every change of the team's members.
    pub fn watch_access(&mut self, state: &AppState) -> tokio::task::JoinHandle<Refused> {
        let state = state.clone();
        let subject = self.subject;
        let viewer = self.viewer;
        let watch = self.watch.take();
        tokio::spawn(async move {
            let Some(mut watch) = watch else {
                return Refused::Unavailable;
            };
            loop {
                match watch.next().await {
                    Ok(event) if !matches!(*event, Event::Users { .. }) => continue,
                    // A member changed, or events were missed: check again.
                    Ok(_) | Err(Ended::Lagged { .. }) => {}
                    Err(Ended::Closed) => return Refused::Unavailable,
                }
                match current(&state, subject).await {
                    Ok(now) if now == viewer => continue,
                    Ok(_) => {
                        return Refused::Forbidden("your access changed: connect again".into());
                    }
                    Err(refused) => return refused,
                }
            }
        })
    }
}

async fn current(state: &AppState, subject: TokenSubject) -> Result<Viewer, Refused> {
    match state.executor().viewer_of(subject).await {
        Ok(viewer) => Ok(viewer),
        Err(answer) => match answer.outcome {
            crate::graphql::execution::Outcome::Unavailable => Err(Refused::Unavailable),
            _ => Err(Refused::Forbidden(
                "your token is no longer valid: sign in again".into(),
            )),
        },
    }
}
