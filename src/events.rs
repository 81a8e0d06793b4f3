//! What changed, for those who watch: every committed write announces
//! its events here after the commit (see [`crate::unit_of_work`]).
//! Subscribers on this replica receive them from an in-process broadcast.

use tokio::sync::broadcast;

use crate::db::enums::{JobStatus, ResumeStatus};

/// What happened to a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobChange {
    Created,
    Updated,
    StatusChanged,
    Deleted,
}

/// One committed change of a team's data.
#[derive(Debug, Clone, PartialEq, Eq)]
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
}

impl Event {
    pub fn team_id(&self) -> i64 {
        match self {
            Self::Job { team_id, .. } | Self::Resume { team_id, .. } => *team_id,
        }
    }
}

/// Events published on this replica.
#[derive(Clone)]
pub struct EventBus {
    local: broadcast::Sender<Event>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}

impl EventBus {
    pub fn new() -> Self {
        let (local, _) = broadcast::channel(1024);
        Self { local }
    }

    /// Announces committed changes (nobody listening is fine).
    pub fn publish(&self, events: Vec<Event>) {
        for event in events {
            let _ = self.local.send(event);
        }
    }

    /// Every event from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.local.subscribe()
    }
}
