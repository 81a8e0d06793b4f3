//! What changed, for those who watch: every committed write announces its
//! events here after the commit (see [`crate::unit_of_work`]), and
//! subscriptions (see [`crate::graphql::subscription`]) receive them.
//!
//! Events are fanned out per team ([`hub`]): a subscriber receives only
//! its own team's events, from a bounded buffer — one that falls further
//! behind than the buffer holds is told so and disconnected, so a slow
//! consumer never grows memory. With Redis, events also travel to every
//! other replica over sharded pub/sub ([`relay`]: `SPUBLISH` on a channel
//! per team, which Redis Cluster keeps on the team's shard); a replica
//! listens only to the channels of teams it has subscribers for.

/// In-process fan-out per team.
pub mod hub;
/// Redis sharded pub/sub between replicas.
pub mod relay;

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::db::enums::{JobStatus, ResumeStatus};
pub use hub::TeamEvents;

/// What happened to a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobChange {
    Created,
    Updated,
    StatusChanged,
    Deleted,
}

/// One committed change of a team's data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    Job {
        team_id: i64,
        job_id: i64,
        change: JobChange,
        status: Option<JobStatus>,
    },
    Resume {
        team_id: i64,
        resume_id: i64,
        job_id: i64,
        status: ResumeStatus,
    },
    /// A member of the team changed (role, password, deactivation…):
    /// open subscriptions check their caller again.
    Users { team_id: i64 },
}

impl Event {
    /// Whose change it is: only that team's subscribers hear it.
    pub fn team_id(&self) -> i64 {
        match self {
            Self::Job { team_id, .. } | Self::Resume { team_id, .. } | Self::Users { team_id } => {
                *team_id
            }
        }
    }
}

/// Where events are published and subscribed to on this replica.
#[derive(Clone)]
pub struct EventBus {
    hub: Arc<hub::Hub>,
    relay: Option<relay::Relay>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new(hub::DEFAULT_BUFFER)
    }
}

impl EventBus {
    /// In process only; `buffer` events per team for slow subscribers.
    pub fn new(buffer: usize) -> Self {
        Self {
            hub: hub::Hub::new(buffer),
            relay: None,
        }
    }

    /// Also through Redis, to and from every replica.
    pub fn with_relay(buffer: usize, relay: relay::RelayConfig) -> anyhow::Result<Self> {
        let hub = hub::Hub::new(buffer);
        let relay = relay::Relay::start(relay, Arc::clone(&hub))?;
        Ok(Self {
            hub,
            relay: Some(relay),
        })
    }

    /// Announces committed changes: at once to this replica's subscribers,
    /// and through Redis to the others' (nobody listening is fine).
    pub fn publish(&self, events: Vec<Event>) {
        for event in events {
            let event = Arc::new(event);
            self.hub.dispatch(&event);
            if let Some(relay) = &self.relay {
                relay.send(event);
            }
        }
    }

    /// The team's events from now on.
    pub fn team(&self, team_id: i64) -> TeamEvents {
        self.hub.subscribe(team_id)
    }

    /// Whether Redis carries events between replicas, and whether it is
    /// listening right now (for `/ready`).
    pub fn relay_state(&self) -> Option<bool> {
        self.relay.as_ref().map(relay::Relay::is_up)
    }
}
