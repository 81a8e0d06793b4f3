//! The one way data is written. A [`UnitOfWork`] wraps the transaction of
//! one change and collects, as the change is made, what must follow it:
//! activity-log entries and background tasks (written in the same
//! transaction, so they exist if and only if the change does), the cache
//! namespaces it touched, and the events it causes. [`UnitOfWork::commit`]
//! then commits and, in this order: makes every cached answer that depended
//! on the touched namespaces unreachable, wakes the workers, publishes the
//! events. Those steps run in a task of their own that is awaited but not
//! owned by the caller: a client that disconnects right after the commit
//! cannot leave stale answers behind.
//!
//! A write to a team's jobs, users, log or resumes also schedules the
//! coalesced refresh of the team's hot cached reads, whichever write it is.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
};

use sea_orm::{DatabaseConnection, DatabaseTransaction, DbErr};

use crate::{
    cache::{Dep, ResponseCache},
    db::{
        self,
        activity::Entry,
        queue::{NewTask, TaskHandle},
    },
    events::{Event, EventBus},
};

/// Starts units of work; shared by every request and worker of a replica.
#[derive(Clone)]
pub struct Writer {
    cache: Arc<ResponseCache>,
    tasks: TaskHandle,
    events: EventBus,
}

impl Writer {
    pub fn new(cache: Arc<ResponseCache>, tasks: TaskHandle, events: EventBus) -> Self {
        Self {
            cache,
            tasks,
            events,
        }
    }

    /// How tasks are made (attempts, delays).
    pub fn tasks(&self) -> &TaskHandle {
        &self.tasks
    }

    pub fn events(&self) -> &EventBus {
        &self.events
    }

    /// Opens a write transaction on `db` (`BEGIN IMMEDIATE` on SQLite).
    pub async fn begin(&self, db: &DatabaseConnection) -> Result<UnitOfWork, DbErr> {
        Ok(UnitOfWork {
            txn: db::begin_write(db).await?,
            writer: self.clone(),
            touched: BTreeMap::new(),
            entries: Vec::new(),
            tasks: Vec::new(),
            events: Vec::new(),
        })
    }
}

/// One change in the making. Dropped without [`commit`](Self::commit), it
/// rolls back and nothing follows.
pub struct UnitOfWork {
    txn: DatabaseTransaction,
    writer: Writer,
    touched: BTreeMap<i64, BTreeSet<Dep>>,
    entries: Vec<Entry>,
    tasks: Vec<NewTask>,
    events: Vec<Event>,
}

/// What a committed unit of work did, for tests and the write-path audit.
#[derive(Debug, Clone, Default)]
pub struct Committed {
    pub touched: BTreeMap<i64, BTreeSet<Dep>>,
    pub tasks: usize,
    pub events: usize,
}

impl UnitOfWork {
    /// The transaction, for the `db::*` functions that read and write.
    pub fn db(&self) -> &DatabaseTransaction {
        &self.txn
    }

    /// Declares that the change touches these namespaces of `team_id`.
    pub fn touch(&mut self, team_id: i64, deps: &[Dep]) {
        self.touched
            .entry(team_id)
            .or_default()
            .extend(deps.iter().copied());
    }

    /// Adds an activity-log entry (written at commit, in the transaction).
    pub fn log(&mut self, entry: Entry) {
        if let Some(team_id) = entry.team_id {
            self.touch(team_id, &[Dep::Logs]);
        }
        self.entries.push(entry);
    }

    /// Adds a background task (written at commit, in the transaction).
    pub fn enqueue(&mut self, task: NewTask) {
        self.tasks.push(task);
    }

    /// Adds an event, published once the change is committed.
    pub fn publish(&mut self, event: Event) {
        self.events.push(event);
    }

    /// Commits, then invalidates, wakes and publishes (see the module doc).
    pub async fn commit(self) -> Result<Committed, DbErr> {
        let (committed, after) = self.commit_only().await?;
        if let Err(error) = after.await {
            tracing::error!(%error, "the steps after a commit failed");
        }
        Ok(committed)
    }

    /// Commits and returns without waiting for what follows (it still runs
    /// to the end): for a refused sign-in, whose answer must take the same
    /// time whether or not the account exists.
    pub async fn commit_detached(self) -> Result<Committed, DbErr> {
        Ok(self.commit_only().await?.0)
    }

    async fn commit_only(mut self) -> Result<(Committed, tokio::task::JoinHandle<()>), DbErr> {
        let refreshes: Vec<NewTask> = self
            .touched
            .iter()
            .filter(|(_, deps)| deps.iter().any(|d| !matches!(d, Dep::Job(_))))
            .map(|(team, _)| self.writer.tasks.cache_refresh(*team))
            .collect();
        self.tasks.extend(refreshes);
        db::activity::record_all(&self.txn, std::mem::take(&mut self.entries)).await?;
        db::queue::enqueue(&self.txn, &self.tasks).await?;
        self.txn.commit().await?;
        let committed = Committed {
            touched: self.touched,
            tasks: self.tasks.len(),
            events: self.events.len(),
        };
        let writer = self.writer;
        let touched = committed.touched.clone();
        let wake = committed.tasks > 0;
        let events = self.events;
        // Not cancelled with the caller: the spawned task runs to the end
        // even if this future is dropped while awaiting it.
        let after = tokio::spawn(async move {
            for (team_id, deps) in &touched {
                let deps: Vec<Dep> = deps.iter().copied().collect();
                writer.cache.invalidate(*team_id, &deps).await;
            }
            if wake {
                writer.tasks.wake();
            }
            writer.events.publish(events);
        });
        Ok((committed, after))
    }
}
