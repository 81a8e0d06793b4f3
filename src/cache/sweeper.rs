//! Background clearing of unreachable entries. Writes only announce what
//! they made stale; the sweeper gathers announcements for a short delay,
//! merges them per team (a burst of 1,000 writes becomes one pass), and
//! deletes with bounded `SCAN MATCH` + `UNLINK` passes under the team's
//! hash tag — never `KEYS`, never an unbounded scan.

use std::{collections::BTreeSet, sync::Arc, time::Duration};

use tokio::sync::mpsc;

use super::{CacheKind, CachePlan, Dep, metrics::CacheMetrics, store::Store};

/// The part of the key space one entry lives in (`…:r:<segment>:…`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Class {
    List,
    Stats,
    Logs,
    Job(i64),
    /// Responses mixing several kinds.
    Mixed,
    /// Everything of the team.
    All,
}

impl Class {
    /// Where a plan's entry is filed.
    pub fn of(plan: &CachePlan) -> Class {
        let mut kinds = plan.kinds.iter();
        match (kinds.next(), kinds.next()) {
            (Some(CacheKind::JobsList), None) => Class::List,
            (Some(CacheKind::JobStats), None) => Class::Stats,
            (Some(CacheKind::Logs), None) => Class::Logs,
            (Some(CacheKind::JobDetail), None) => plan
                .deps
                .iter()
                .find_map(|d| match d {
                    Dep::Job(id) => Some(Class::Job(*id)),
                    _ => None,
                })
                .unwrap_or(Class::Mixed),
            _ => Class::Mixed,
        }
    }

    /// The classes a change of `dep` may leave stale entries in. Detail
    /// entries of other jobs are left alone unless users changed.
    pub fn cleared_by(dep: Dep) -> Vec<Class> {
        match dep {
            Dep::Jobs => vec![Class::List, Class::Stats, Class::Mixed],
            Dep::Job(id) => vec![Class::Job(id)],
            Dep::Users => vec![Class::All],
            Dep::Logs => vec![Class::Logs, Class::Mixed],
            Dep::Resumes => vec![Class::List, Class::Mixed],
        }
    }

    pub fn segment(self) -> String {
        match self {
            Class::List => "list".into(),
            Class::Stats => "stats".into(),
            Class::Logs => "logs".into(),
            Class::Job(id) => format!("job:{id}"),
            Class::Mixed => "mix".into(),
            Class::All => String::new(),
        }
    }
}

/// The background task's settings.
pub struct Sweeper {
    pub store: Store,
    pub metrics: Arc<CacheMetrics>,
    pub prefix: String,
    pub delay: Duration,
    pub max_pages: usize,
}

impl Sweeper {
    pub fn spawn(self, mut rx: mpsc::Receiver<(i64, Class)>) {
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                tokio::time::sleep(self.delay).await;
                let mut batch = BTreeSet::from([first]);
                while let Ok(next) = rx.try_recv() {
                    batch.insert(next);
                }
                let everything: BTreeSet<i64> = batch
                    .iter()
                    .filter(|(_, c)| *c == Class::All)
                    .map(|(t, _)| *t)
                    .collect();
                for (team, class) in batch {
                    if class != Class::All && everything.contains(&team) {
                        continue;
                    }
                    self.sweep(team, class).await;
                }
            }
        });
    }

    async fn sweep(&self, team: i64, class: Class) {
        let prefix = match class {
            Class::All => format!("{}:{{t{team}}}:r:", self.prefix),
            other => format!("{}:{{t{team}}}:r:{}:", self.prefix, other.segment()),
        };
        match self.store.delete_prefix(&prefix, 500, self.max_pages).await {
            Ok(removed) => {
                self.metrics.sweeps.inc();
                self.metrics.keys_removed.inc_by(removed);
                tracing::debug!(team, prefix, removed, "cache sweep");
            }
            Err(error) => {
                self.metrics.sweep_failures.inc();
                tracing::warn!(%error, team, prefix, "cache sweep failed; entries expire on their own");
            }
        }
    }
}
