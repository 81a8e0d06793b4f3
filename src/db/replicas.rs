//! Reads from PostgreSQL streaming replicas, without ever reading one's own
//! writes stale (`DATABASE_READ_URLS`).
//!
//! Every commit records the primary's WAL position for the teams it
//! touched ([`WritePositions`]: in Redis when configured, so every jobgraph
//! replica knows it, in process otherwise) *before* it makes cached answers
//! stale. A query of a team runs on a replica only if that replica has
//! replayed at least the team's last recorded position and lags the primary
//! by no more than `READ_REPLICA_MAX_LAG_MS`; otherwise, or when the
//! position cannot be read, on the primary. Since the cache lookup reads
//! the generations before the position is read, an answer computed on a
//! replica reflects every write whose generation the lookup saw: it is
//! never stored under generations it does not reflect.
//!
//! A monitor reads each replica's replay position every
//! `READ_REPLICA_CHECK_MS` and the primary's current position, and derives
//! the lag from when the primary was first seen past the replica's
//! position. A replica that does not answer is skipped until it does.

use std::{
    collections::VecDeque,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};

use crate::{
    cache::ResponseCache,
    config::DatabaseSettings,
    metrics::{Metrics, PoolLabels, ReasonLabels},
};

/// How long a team's write position is kept in Redis: far beyond any lag a
/// replica is allowed.
const POSITION_TTL: Duration = Duration::from_secs(3600);

/// One read replica and what the monitor last saw of it.
pub struct Replica {
    pub name: &'static str,
    pub db: DatabaseConnection,
    replayed: AtomicU64,
    lag_ms: AtomicU64,
    up: AtomicBool,
}

/// Where a query runs.
pub struct Route<'a> {
    pub db: &'a DatabaseConnection,
    /// The replica's name, or `None` for the primary.
    pub replica: Option<&'static str>,
}

/// The read replicas of a replica set, and the write positions they are
/// compared with.
pub struct ReadReplicas {
    replicas: Vec<Replica>,
    positions: Arc<WritePositions>,
    max_lag: Duration,
    next: AtomicUsize,
    metrics: Arc<Metrics>,
}

impl ReadReplicas {
    /// Opens a lazy pool per replica and starts the monitor; `None` when no
    /// replica is configured (or on SQLite, with a warning).
    pub async fn start(
        settings: &DatabaseSettings,
        primary: &DatabaseConnection,
        positions: Arc<WritePositions>,
        metrics: &Arc<Metrics>,
    ) -> anyhow::Result<Option<Arc<Self>>> {
        if settings.read_urls.is_empty() {
            return Ok(None);
        }
        if settings.is_sqlite() {
            tracing::warn!("DATABASE_READ_URLS is ignored: the database is SQLite");
            return Ok(None);
        }
        let mut replicas = Vec::new();
        for (i, url) in settings.read_urls.iter().enumerate() {
            let name: &'static str = Box::leak(format!("replica{i}").into_boxed_str());
            let mut replica_settings = settings.clone();
            replica_settings.url = url.clone();
            let db = super::connect_replica(&replica_settings, metrics, name).await?;
            metrics
                .db_replica_up
                .get_or_create(&PoolLabels { pool: name })
                .set(0);
            replicas.push(Replica {
                name,
                db,
                replayed: AtomicU64::new(0),
                lag_ms: AtomicU64::new(u64::MAX),
                up: AtomicBool::new(false),
            });
        }
        tracing::info!(replicas = replicas.len(), "read replicas configured");
        let set = Arc::new(Self {
            replicas,
            positions,
            max_lag: settings.replica_max_lag,
            next: AtomicUsize::new(0),
            metrics: Arc::clone(metrics),
        });
        tokio::spawn(monitor(
            Arc::downgrade(&set),
            primary.clone(),
            settings.replica_check,
        ));
        Ok(Some(set))
    }

    /// Where a query of `team_id` runs: a replica that has replayed the
    /// team's last write and is not lagging, else the primary.
    pub async fn route<'a>(&'a self, team_id: i64, primary: &'a DatabaseConnection) -> Route<'a> {
        let fallback = |reason: &'static str| {
            self.metrics
                .db_read_fallbacks
                .get_or_create(&ReasonLabels { reason })
                .inc();
            Route {
                db: primary,
                replica: None,
            }
        };
        let Some(needed) = self.positions.get(team_id).await else {
            return fallback("position_unknown");
        };
        let max_lag = u64::try_from(self.max_lag.as_millis()).unwrap_or(u64::MAX);
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let mut reason = "down";
        for i in 0..self.replicas.len() {
            let replica = &self.replicas[(start + i) % self.replicas.len()];
            if !replica.up.load(Ordering::Acquire) {
                continue;
            }
            if replica.lag_ms.load(Ordering::Acquire) > max_lag {
                reason = "lagging";
                continue;
            }
            if replica.replayed.load(Ordering::Acquire) < needed {
                reason = "behind_write";
                continue;
            }
            return Route {
                db: &replica.db,
                replica: Some(replica.name),
            };
        }
        fallback(reason)
    }

    /// Counts a query by the pool that ran it (`None`: the primary).
    pub fn count_read(&self, replica: Option<&'static str>) {
        self.metrics
            .db_reads
            .get_or_create(&PoolLabels {
                pool: replica.unwrap_or("primary"),
            })
            .inc();
    }

    /// A replica that failed a query is skipped until the monitor sees it
    /// answer again.
    pub fn failed(&self, name: &str) {
        if let Some(replica) = self.replicas.iter().find(|r| r.name == name) {
            replica.up.store(false, Ordering::Release);
            self.metrics
                .db_replica_up
                .get_or_create(&PoolLabels { pool: replica.name })
                .set(0);
        }
    }

    /// `(name, up, lag in ms)` of each replica, for `/ready`.
    pub fn status(&self) -> Vec<(&'static str, bool, u64)> {
        self.replicas
            .iter()
            .map(|r| {
                (
                    r.name,
                    r.up.load(Ordering::Acquire),
                    r.lag_ms.load(Ordering::Acquire),
                )
            })
            .collect()
    }
}

/// Reads positions until the replica set is dropped.
async fn monitor(set: std::sync::Weak<ReadReplicas>, primary: DatabaseConnection, every: Duration) {
    // When the primary was first seen at each position (newest last).
    let mut seen: VecDeque<(u64, Instant)> = VecDeque::new();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(set) = set.upgrade() else { return };
        if let Ok(Some(now)) = position(&primary, "SELECT pg_current_wal_lsn()::text").await
            && seen.back().is_none_or(|(last, _)| now > *last)
        {
            seen.push_back((now, Instant::now()));
        }
        for replica in &set.replicas {
            let replayed = tokio::time::timeout(
                every.max(Duration::from_millis(500)),
                position(&replica.db, "SELECT pg_last_wal_replay_lsn()::text"),
            )
            .await;
            let labels = PoolLabels { pool: replica.name };
            match replayed {
                Ok(Ok(Some(replayed))) => {
                    replica.replayed.store(replayed, Ordering::Release);
                    // Behind since the primary first passed its position.
                    let lag = seen
                        .iter()
                        .find(|(lsn, _)| *lsn > replayed)
                        .map_or(0, |(_, at)| at.elapsed().as_millis() as u64);
                    replica.lag_ms.store(lag, Ordering::Release);
                    replica.up.store(true, Ordering::Release);
                    set.metrics.db_replica_up.get_or_create(&labels).set(1);
                    set.metrics
                        .db_replica_lag_ms
                        .get_or_create(&labels)
                        .set(i64::try_from(lag).unwrap_or(i64::MAX));
                }
                // Not a replica (no replay position), or not answering.
                _ => {
                    if replica.up.swap(false, Ordering::AcqRel) {
                        tracing::warn!(
                            replica = replica.name,
                            "read replica unavailable: reads go to the primary"
                        );
                    }
                    set.metrics.db_replica_up.get_or_create(&labels).set(0);
                }
            }
        }
        // Keep what can still matter: positions no replica has passed.
        let slowest = set
            .replicas
            .iter()
            .map(|r| r.replayed.load(Ordering::Acquire))
            .min()
            .unwrap_or(0);
        while seen.len() > 1 && seen.get(1).is_some_and(|(lsn, _)| *lsn <= slowest) {
            seen.pop_front();
        }
        while seen.len() > 10_000 {
            seen.pop_front();
        }
    }
}

/// A WAL position from a `…::text` query (`16/B374D848`).
async fn position(db: &DatabaseConnection, sql: &str) -> Result<Option<u64>, sea_orm::DbErr> {
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await?;
    Ok(row
        .and_then(|r| r.try_get_by_index::<Option<String>>(0).ok().flatten())
        .and_then(|text| parse_lsn(&text)))
}

/// `X/Y` (two hexadecimal halves) as one number.
pub fn parse_lsn(text: &str) -> Option<u64> {
    let (high, low) = text.trim().split_once('/')?;
    let high = u64::from_str_radix(high, 16).ok()?;
    let low = u64::from_str_radix(low, 16).ok()?;
    Some((high << 32) | low)
}

/// The primary's WAL position after each team's last write.
pub struct WritePositions {
    local: Mutex<std::collections::HashMap<i64, u64>>,
    cache: Option<Arc<ResponseCache>>,
}

impl WritePositions {
    /// In Redis when the cache has one (every jobgraph replica then sees
    /// every write), in process otherwise.
    pub fn new(cache: &Arc<ResponseCache>) -> Self {
        Self {
            local: Mutex::default(),
            cache: cache.shared_store().map(|_| Arc::clone(cache)),
        }
    }

    fn key(cache: &ResponseCache, team_id: i64) -> String {
        format!("{}:{{t{team_id}}}:lsn", cache.key_prefix())
    }

    /// Reads the primary's position (after a commit) and records it for
    /// these teams.
    pub async fn record_after_commit(&self, db: &DatabaseConnection, teams: &[i64]) {
        if teams.is_empty() {
            return;
        }
        let lsn = match position(db, "SELECT pg_current_wal_lsn()::text").await {
            Ok(Some(lsn)) => lsn,
            Ok(None) => return,
            Err(error) => {
                // Readers of these teams find the old position: a replica
                // that has not replayed this write may serve them until
                // the next write. Logged, since it weakens read-your-writes.
                tracing::warn!(%error, "reading the write position after a commit failed");
                return;
            }
        };
        for team in teams {
            self.raise_local(*team, lsn);
            if let Some(cache) = &self.cache
                && let Some(store) = cache.shared_store()
                && let Err(error) = cache
                    .within_timeout(
                        "EVAL",
                        store.raise(Self::key(cache, *team), lsn, POSITION_TTL),
                    )
                    .await
            {
                tracing::warn!(%error, team, "recording a write position in Redis failed");
            }
        }
    }

    fn raise_local(&self, team_id: i64, lsn: u64) {
        let mut local = self.local.lock().unwrap_or_else(|e| e.into_inner());
        let entry = local.entry(team_id).or_default();
        *entry = (*entry).max(lsn);
    }

    /// The team's last write position (0: none known), or `None` when it
    /// cannot be known (Redis unreachable): then only the primary will do.
    pub async fn get(&self, team_id: i64) -> Option<u64> {
        let local = self
            .local
            .lock()
            .map_or(0, |l| l.get(&team_id).copied().unwrap_or(0));
        let Some(cache) = &self.cache else {
            return Some(local);
        };
        let store = cache.shared_store()?;
        let values = cache
            .within_timeout("GET", store.mget(vec![Self::key(cache, team_id)]))
            .await
            .ok()?;
        let shared = values
            .first()
            .cloned()
            .flatten()
            .and_then(|v| std::str::from_utf8(&v).ok()?.parse::<u64>().ok())
            .unwrap_or(0);
        Some(local.max(shared))
    }
}

#[cfg(test)]
mod tests {
    use super::parse_lsn;

    #[test]
    fn wal_positions_compare_as_numbers() {
        assert_eq!(parse_lsn("0/0"), Some(0));
        assert_eq!(parse_lsn("16/B374D848"), Some((0x16 << 32) | 0xB374_D848));
        assert!(parse_lsn("1/0") > parse_lsn("0/FFFFFFFF"));
        assert_eq!(parse_lsn("junk"), None);
    }
}
