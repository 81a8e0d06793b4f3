//! Background clearing of unreachable entries. Writes only announce what
//! they made stale; the sweeper gathers announcements for a short delay,
//! merges them per team (a burst of 1,000 writes becomes one pass), finds
//! candidates with bounded `SCAN MATCH` passes under the team's hash tag —
//! never `KEYS`, never an unbounded scan — reads each candidate's header
//! (`GETRANGE`), and `UNLINK`s only those made under an old generation, so
//! an entry filled after the write survives the sweep.

use std::{
    collections::{BTreeSet, HashMap},
    sync::Arc,
    time::Duration,
};

use tokio::sync::mpsc;

use super::{
    CacheKind, CachePlan, Dep, entry,
    metrics::CacheMetrics,
    store::{Store, StoreError},
};

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
                let mut announced = 1;
                while let Ok(next) = rx.try_recv() {
                    batch.insert(next);
                    announced += 1;
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
                self.metrics.sweeps_pending.dec_by(announced);
            }
        });
    }

    /// Deletes the entries under one class of one team whose recorded
    /// generations are no longer current; fresh entries stay.
    async fn sweep(&self, team: i64, class: Class) {
        let prefix = match class {
            Class::All => format!("{}:{{t{team}}}:r:", self.prefix),
            other => format!("{}:{{t{team}}}:r:{}:", self.prefix, other.segment()),
        };
        match self.clear_stale(team, &prefix).await {
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

    async fn clear_stale(&self, team: i64, prefix: &str) -> Result<u64, StoreError> {
        const PAGE: usize = 500;
        let keys = self
            .store
            .scan_prefix(prefix, PAGE as u32, self.max_pages)
            .await?;
        let mut current: HashMap<String, Option<u64>> = HashMap::new();
        let mut removed = 0;
        for chunk in keys.chunks(PAGE) {
            let heads = self.store.heads(chunk, entry::HEADER_PROBE).await?;
            let headers: Vec<Option<Vec<(String, u64)>>> = heads
                .iter()
                .map(|h| h.as_deref().and_then(entry::header).map(|(deps, _)| deps))
                .collect();
            let unknown: Vec<String> = headers
                .iter()
                .flatten()
                .flatten()
                .map(|(name, _)| name.clone())
                .filter(|name| !current.contains_key(name))
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            if !unknown.is_empty() {
                let gen_keys = unknown
                    .iter()
                    .map(|n| entry::gen_key(&self.prefix, team, n))
                    .collect();
                let values = self.store.mget(gen_keys).await?;
                for (name, value) in unknown.into_iter().zip(values) {
                    let generation = value
                        .as_deref()
                        .and_then(|v| std::str::from_utf8(v).ok()?.parse().ok());
                    current.insert(name, generation);
                }
            }
            let stale: Vec<String> = chunk
                .iter()
                .zip(&heads)
                .zip(&headers)
                .filter_map(|((key, head), header)| match (head, header) {
                    // Expired since the scan: nothing to do.
                    (None, _) => None,
                    // Not an entry this version can read: it can never hit.
                    (Some(_), None) => Some(key.clone()),
                    (Some(_), Some(deps)) => deps
                        .iter()
                        .any(|(name, generation)| {
                            current.get(name).copied().flatten() != Some(*generation)
                        })
                        .then(|| key.clone()),
                })
                .collect();
            removed += self.store.unlink(stale).await?;
        }
        Ok(removed)
    }
}
