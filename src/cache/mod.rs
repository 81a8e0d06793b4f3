//! The response cache: whole GraphQL responses kept in Redis (or in
//! process), keyed by the request's bytes and the caller's team, and made
//! unreachable by writes before the writing mutation returns.
//!
//! # Design
//!
//! * **Keys.** Every key of team 42 carries the hash tag `{t42}`, so all of
//!   a team's keys live in one cluster slot: multi-key commands never hit
//!   CROSSSLOT and a pattern sweep touches one node.
//!   `P:{t42}:r:<class>:<hash>` holds a response; `P:{t42}:g:<namespace>`
//!   holds the namespace's current *generation*, a random 64-bit value.
//! * **Generations.** A response records the generations of the namespaces
//!   it depends on ([`plan::Dep`]), read *before* its SQL ran. It is
//!   served only while all of them are unchanged, checked in the same
//!   `MGET` that fetches it: a hit is one round trip. A mutation, after its
//!   transaction commits and before it returns, sets fresh generations for
//!   what it changed; from then on every older response is unreachable, on
//!   every replica, including one that a read which started before the
//!   write stores afterwards. A missing generation (evicted, expired, new
//!   Redis) counts as a miss and is re-created with a fresh random value,
//!   so a value can never come back and revive an old entry.
//! * **Clearing.** Unreachable entries are deleted in the background by a
//!   sweeper that coalesces bursts of writes per team and clears them with
//!   bounded `SCAN MATCH` + `UNLINK` passes (see [`sweeper`]).
//! * **Stampedes.** Concurrent misses for the same key and the same
//!   generations run the request once ([`flight`]); lifetimes carry up to
//!   10% jitter.
//! * **Failure.** Any cache error or timeout falls back to the database.
//!   A generation bump that fails is retried until it succeeds, and until
//!   then this replica bypasses the cache for that team.

mod entry;
mod flight;
pub mod metrics;
mod near;
pub mod plan;
pub mod store;
mod sweeper;

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU8, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use tokio::sync::mpsc;
use tracing::Instrument;

use metrics::CacheMetrics;
pub use plan::{CacheKind, CachePlan, Dep, Plan};
use store::{MemoryStore, RedisStore, Store, StoreError};
use sweeper::{Class, Sweeper};

use crate::{config::CacheSettings, db::enums::Role};

/// Bump this when the meaning of keys or values changes between releases.
const KEY_VERSION: &[u8; 3] = b"JG3";

/// Generations outlive every response (a lost one only costs misses).
const GENERATION_TTL: Duration = Duration::from_secs(24 * 3600);

/// Who asks: the parts of the caller that can change an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scope {
    pub team_id: i64,
    pub role: Role,
    pub user_id: i64,
}

/// Who looks up: a client's request, or the background refresh replaying
/// one (which must not skew the hit rate).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Client,
    Refresh,
}

/// The outcome of a lookup.
pub enum Lookup {
    /// Not cached: execute normally.
    Bypass,
    /// The stored response.
    Hit(Hit),
    /// Execute through [`ResponseCache::fill`] with this ticket.
    Miss(Ticket),
}

/// A stored answer.
pub struct Hit {
    pub body: Bytes,
    pub validator: Validator,
}

/// What HTTP revalidation needs of a stored answer: a tag that names its
/// entry (the request and who asks) and the generations it was made under
/// — a write anywhere changes the generations, so an older tag no longer
/// matches on any replica — and when the entry expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validator {
    pub tag: u128,
    /// Unix time in milliseconds.
    pub expires_ms: u64,
}

impl Validator {
    fn of(key: &str, generations: &[u64], expires_ms: u64) -> Self {
        let mut hasher = xxhash_rust::xxh3::Xxh3::new();
        hasher.update(key.as_bytes());
        for generation in generations {
            hasher.update(&generation.to_be_bytes());
        }
        Self {
            tag: hasher.digest128(),
            expires_ms,
        }
    }

    /// Whole seconds of lifetime left.
    pub fn remaining_secs(&self) -> u64 {
        self.expires_ms.saturating_sub(unix_ms()) / 1000
    }
}

/// Now, in Unix milliseconds.
fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A miss, with the generations read before executing.
pub struct Ticket {
    key: String,
    purpose: Purpose,
    deps: Vec<Dep>,
    generations: Vec<u64>,
    ttl: Duration,
    kind: CacheKind,
    /// Jobs whose generation does not exist yet: made only for jobs that
    /// exist in the team (see [`ResponseCache::verify`]), so made-up ids
    /// cannot fill the store with generation keys.
    unverified: Vec<i64>,
    /// False when a generation could not be made: execute, do not store.
    storable: bool,
}

impl Ticket {
    /// Job ids whose generation waits for [`ResponseCache::verify`].
    pub fn unverified_jobs(&self) -> &[i64] {
        &self.unverified
    }
}

/// What [`ResponseCache::fill`] gets back from executing a request.
pub struct Computed {
    /// The HTTP status of the answer (followers of a flight reuse it).
    pub status: u16,
    pub body: Bytes,
    /// Only error-free answers are stored.
    pub cacheable: bool,
    /// Set by [`ResponseCache::fill`] when the answer was stored.
    pub validator: Option<Validator>,
}

/// A team-wide read (a list, `jobStats`, the log) seen recently, replayed
/// after the team's writes so its entry is fresh before the next read.
#[derive(Debug, Clone)]
pub struct WarmSpec {
    pub raw: Bytes,
    pub over_get: bool,
    pub scope: Scope,
}

/// A remembered read, and how many refreshes replayed it since a client
/// last read it: a read nobody asks for again is not worth recomputing
/// after every write.
struct Warm {
    spec: WarmSpec,
    hash: u128,
    unread_replays: AtomicU8,
}

/// Refreshes that may replay a read no client has asked for since. Two
/// lowered the hit rate of `k6/mix.js` (92.7 % -> 88.4 %): there a team's
/// list variants and hot details are read about as often as the team
/// writes, so a burst of writes dropped reads that were still wanted. Eight
/// keeps those, and still stops replaying a read nobody asks for again
/// after a few writes.
const WARM_UNREAD_REPLAYS: u8 = 8;

/// Requests kept per team for warming, their bytes per team, the largest
/// one kept, and the bytes kept for all teams together.
const WARM_PER_TEAM: usize = 32;
const WARM_BYTES_PER_TEAM: usize = 64 * 1024;
const WARM_MAX_REQUEST_BYTES: usize = 16 * 1024;
const WARM_BYTES_TOTAL: u64 = 16 * 1024 * 1024;

/// Failed generation bumps awaiting a retry, by team.
#[derive(Default)]
struct Pending {
    any: AtomicBool,
    teams: Mutex<BTreeMap<i64, BTreeSet<Dep>>>,
}

/// The response cache shared by every request of one replica.
pub struct ResponseCache {
    settings: CacheSettings,
    store: Store,
    flights: flight::Flights,
    metrics: Arc<CacheMetrics>,
    sweeper: mpsc::Sender<(i64, Class)>,
    pending: Pending,
    warmable: moka::sync::Cache<i64, Arc<Vec<Arc<Warm>>>>,
    /// Near copies of Redis entries (see [`near`]); `None` without Redis.
    near: Option<near::Near>,
}

impl ResponseCache {
    /// Builds the cache and starts its background tasks (sweeper, retries).
    pub async fn start(
        settings: CacheSettings,
        metrics: Arc<CacheMetrics>,
    ) -> anyhow::Result<Arc<Self>> {
        let store = match &settings.redis_url {
            Some(url) => {
                let redis = RedisStore::connect(
                    url.expose(),
                    settings.command_timeout,
                    settings.redis_pool_size,
                )
                .map_err(|e| anyhow::anyhow!("REDIS_URL is not usable: {e}"))?;
                if !redis.wait_connected(Duration::from_secs(2)).await {
                    tracing::warn!(
                        "Redis is unreachable: serving from the database until it connects"
                    );
                }
                Store::Redis(redis)
            }
            None => Store::Memory(MemoryStore::new(settings.memory_max_bytes)),
        };
        let (tx, rx) = mpsc::channel(10_000);
        let near = match store {
            Store::Redis(_) => near::Near::new(settings.near_max_bytes, settings.near_ttl),
            Store::Memory(_) => None,
        };
        let cache = Arc::new(Self {
            near,
            flights: flight::Flights::default(),
            sweeper: tx,
            pending: Pending::default(),
            warmable: moka::sync::Cache::builder()
                .max_capacity(WARM_BYTES_TOTAL)
                .weigher(|_, specs: &Arc<Vec<Arc<Warm>>>| {
                    u32::try_from(specs.iter().map(|w| w.spec.raw.len() + 96).sum::<usize>())
                        .unwrap_or(u32::MAX)
                })
                .build(),
            store,
            metrics,
            settings,
        });
        tracing::info!(
            backend = cache.store.backend(),
            enabled = cache.settings.enabled,
            "response cache ready"
        );
        Sweeper {
            store: cache.store.clone(),
            metrics: Arc::clone(&cache.metrics),
            prefix: cache.settings.key_prefix.clone(),
            delay: cache.settings.sweep_delay,
            max_pages: cache.settings.sweep_max_pages,
        }
        .spawn(rx);
        tokio::spawn(retry_pending(Arc::downgrade(&cache)));
        Ok(cache)
    }

    pub fn enabled(&self) -> bool {
        self.settings.enabled
    }

    pub fn backend(&self) -> &'static str {
        self.store.backend()
    }

    /// The shared Redis, if one is configured (rate limits live there too,
    /// so every replica counts the same attempts).
    pub fn shared_store(&self) -> Option<Store> {
        match &self.store {
            Store::Redis(_) => Some(self.store.clone()),
            Store::Memory(_) => None,
        }
    }

    /// The key prefix of this service's keys (and its database instance).
    pub fn key_prefix(&self) -> &str {
        &self.settings.key_prefix
    }

    /// Bounds a store command by `CACHE_TIMEOUT_MS`.
    pub async fn within_timeout<T>(
        &self,
        command: &'static str,
        op: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        self.timed(command, op).await
    }

    /// Whether the store answers and no invalidation is waiting to be
    /// applied (for `/ready`).
    pub async fn healthy(&self) -> bool {
        !self.pending.any.load(Ordering::Acquire)
            && tokio::time::timeout(self.settings.command_timeout * 5, self.store.ping())
                .await
                .is_ok_and(|r| r.is_ok())
    }

    /// The current generation of a team's `users` namespace, which every
    /// user change bumps: the authenticator trusts an identity it read under
    /// it. `None` when it cannot be known for sure (the store does not
    /// answer, or a bump for the team is still pending).
    pub async fn users_generation(&self, team_id: i64) -> Option<u64> {
        if self.has_pending(team_id) {
            return None;
        }
        let found = self
            .timed(
                "MGET",
                self.store.mget(vec![self.gen_key(team_id, Dep::Users)]),
            )
            .await
            .ok()?;
        let found: Vec<Option<u64>> = found
            .iter()
            .map(|v| v.as_deref().and_then(parse_gen))
            .collect();
        let generations = self
            .complete_generations(team_id, &[Dep::Users], found, |_| true)
            .await?;
        generations.first().copied().filter(|g| *g != 0)
    }

    /// Whether a generation key exists for `dep` of `team_id` (operators
    /// and tests: made-up job ids must not create any).
    pub async fn has_generation(&self, team_id: i64, dep: Dep) -> bool {
        matches!(
            self.timed("MGET", self.store.mget(vec![self.gen_key(team_id, dep)]))
                .await
                .as_deref(),
            Ok([Some(_)])
        )
    }

    fn gen_key(&self, team_id: i64, dep: Dep) -> String {
        entry::gen_key(&self.settings.key_prefix, team_id, &dep.name())
    }

    fn entry_key(&self, request_hash: u128, plan: &CachePlan, scope: &Scope) -> String {
        let who: i64 = match (plan.per_user, scope.role) {
            (false, _) => 0,
            (true, Role::Admin) => -1,
            (true, _) => scope.user_id,
        };
        let mut seed = [0u8; 16 + 8 + 3];
        seed[..16].copy_from_slice(&request_hash.to_le_bytes());
        seed[16..24].copy_from_slice(&who.to_le_bytes());
        seed[24..].copy_from_slice(KEY_VERSION);
        let hash = xxhash_rust::xxh3::xxh3_128(&seed);
        let class = Class::of(plan).segment();
        format!(
            "{}:{{t{}}}:r:{class}:{hash:032x}",
            self.settings.key_prefix, scope.team_id
        )
    }

    /// The kind with the shortest lifetime among a plan's, and that lifetime.
    fn ttl_of(&self, plan: &CachePlan) -> (CacheKind, Duration) {
        let ttl = &self.settings.ttl;
        plan.kinds
            .iter()
            .map(|k| {
                let lifetime = match k {
                    CacheKind::JobsList => ttl.jobs_list,
                    CacheKind::JobDetail => ttl.job_detail,
                    CacheKind::JobStats => ttl.job_stats,
                    CacheKind::Logs => ttl.logs,
                };
                (*k, lifetime)
            })
            .min_by_key(|(_, lifetime)| *lifetime)
            .unwrap_or((CacheKind::JobsList, ttl.jobs_list))
    }

    /// Looks a request up: one `MGET` of its generations and its entry.
    pub async fn lookup(
        &self,
        request_hash: u128,
        plan: &CachePlan,
        scope: &Scope,
        purpose: Purpose,
    ) -> Lookup {
        self.lookup_reading(request_hash, plan, scope, purpose, false)
            .await
            .0
    }

    /// [`Self::lookup`], also reading the team's current `users` generation
    /// in the same round trip (`None` when it is not known for sure): the
    /// authenticator trusts a remembered identity only under it, so a
    /// signed-in hit costs one round trip, not two.
    pub async fn lookup_checking_users(
        &self,
        request_hash: u128,
        plan: &CachePlan,
        scope: &Scope,
        purpose: Purpose,
    ) -> (Lookup, Option<u64>) {
        self.lookup_reading(request_hash, plan, scope, purpose, true)
            .await
    }

    async fn lookup_reading(
        &self,
        request_hash: u128,
        plan: &CachePlan,
        scope: &Scope,
        purpose: Purpose,
        read_users: bool,
    ) -> (Lookup, Option<u64>) {
        let counted = purpose == Purpose::Client;
        let (kind, ttl) = self.ttl_of(plan);
        if !self.settings.enabled || self.has_pending(scope.team_id) {
            if counted {
                self.metrics.bypass(kind);
            }
            return (Lookup::Bypass, None);
        }
        let key = self.entry_key(request_hash, plan, scope);
        let mut keys: Vec<String> = plan
            .deps
            .iter()
            .map(|d| self.gen_key(scope.team_id, *d))
            .collect();
        let users_at = match plan.deps.iter().position(|d| *d == Dep::Users) {
            Some(at) => Some(at),
            None if read_users => {
                keys.push(self.gen_key(scope.team_id, Dep::Users));
                Some(keys.len() - 1)
            }
            None => None,
        };
        // With a near copy, only the generations are read.
        let near = self.near.as_ref().and_then(|n| n.get(&key));
        let read = keys.len() + usize::from(near.is_none());
        if near.is_none() {
            keys.push(key.clone());
        }
        let mut values = match self.timed("MGET", self.store.mget(keys)).await {
            Ok(values) if values.len() == read => values,
            Ok(_) | Err(_) => {
                self.metrics.error(kind);
                return (Lookup::Bypass, None);
            }
        };
        let mut entry = if near.is_none() {
            values.pop().flatten()
        } else {
            None
        };
        let mut generations: Vec<Option<u64>> = values
            .iter()
            .map(|v| v.as_deref().and_then(parse_gen))
            .collect();
        let users = users_at
            .filter(|_| read_users)
            .and_then(|at| generations[at])
            .filter(|g| *g != 0);
        generations.truncate(plan.deps.len());
        let current = generations.iter().all(Option::is_some);
        if let Some(near) = &near {
            if current
                && near
                    .generations
                    .iter()
                    .copied()
                    .map(Some)
                    .eq(generations.iter().copied())
            {
                if counted {
                    self.metrics.hit(kind);
                }
                let hit = Hit {
                    body: near.body.clone(),
                    validator: Validator::of(&key, &near.generations, near.expires_ms),
                };
                return (Lookup::Hit(hit), users);
            }
            // Outdated here; another replica may have stored a current one.
            if let Some(n) = &self.near {
                n.forget(&key);
            }
            if current {
                entry = match self.timed("GET", self.store.mget(vec![key.clone()])).await {
                    Ok(mut values) => values.pop().flatten(),
                    Err(_) => None,
                };
            }
        }
        if let Some(entry) = entry
            && current
            && let Some((body, expires_ms)) = entry::decode(&entry, &plan.deps, &generations)
        {
            if counted {
                self.metrics.hit(kind);
            }
            let generations: Vec<u64> = generations.iter().map(|g| g.unwrap_or(0)).collect();
            let validator = Validator::of(&key, &generations, expires_ms);
            if let Some(n) = &self.near {
                n.keep(key, generations, body.clone(), expires_ms, ttl);
            }
            return (Lookup::Hit(Hit { body, validator }), users);
        }
        if counted {
            self.metrics.miss(kind);
        }
        let unverified: Vec<i64> = plan
            .deps
            .iter()
            .zip(&generations)
            .filter_map(|(dep, g)| match (dep, g) {
                (Dep::Job(id), None) => Some(*id),
                _ => None,
            })
            .collect();
        let team_wide = |d: &Dep| !matches!(d, Dep::Job(_));
        let Some(generations) = self
            .complete_generations(scope.team_id, &plan.deps, generations, team_wide)
            .await
        else {
            self.metrics.error(kind);
            return (Lookup::Bypass, None);
        };
        let ticket = Lookup::Miss(Ticket {
            key,
            purpose,
            deps: plan.deps.clone(),
            generations,
            ttl,
            kind,
            unverified,
            storable: true,
        });
        (ticket, users)
    }

    /// Creates the missing generations that `create` allows (fresh random
    /// values, `SET NX`) and reads back what won; the others stay 0 (not a
    /// generation: an entry is never stored under them).
    async fn complete_generations(
        &self,
        team_id: i64,
        deps: &[Dep],
        found: Vec<Option<u64>>,
        create: impl Fn(&Dep) -> bool,
    ) -> Option<Vec<u64>> {
        let missing: Vec<(String, Bytes)> = deps
            .iter()
            .zip(&found)
            .filter(|(d, g)| g.is_none() && create(d))
            .map(|(d, _)| (self.gen_key(team_id, *d), fresh_generation()))
            .collect();
        if missing.is_empty() {
            return Some(found.into_iter().map(|g| g.unwrap_or(0)).collect());
        }
        // Boxed: fred's pipelined SET is a future of kilobytes, and this
        // branch is rare (a team's first read after a flush); every lookup
        // would otherwise carry it.
        self.timed(
            "SET",
            Box::pin(self.store.set_many(missing, GENERATION_TTL, true)),
        )
        .await
        .ok()?;
        let keys = deps.iter().map(|d| self.gen_key(team_id, *d)).collect();
        let values = self.timed("MGET", self.store.mget(keys)).await.ok()?;
        Some(
            values
                .iter()
                .map(|v| v.as_deref().and_then(parse_gen).unwrap_or(0))
                .collect(),
        )
    }

    /// Makes the generations of the ticket's unverified jobs that `existing`
    /// names (jobs found in the caller's team); a job not there leaves the
    /// ticket unstorable: its answer is computed, never kept.
    pub async fn verify(&self, ticket: &mut Ticket, team_id: i64, existing: &[i64]) {
        if ticket.unverified.iter().any(|id| !existing.contains(id)) {
            ticket.storable = false;
            return;
        }
        let found = ticket
            .deps
            .iter()
            .zip(&ticket.generations)
            .map(|(dep, g)| match dep {
                Dep::Job(id) if ticket.unverified.contains(id) => None,
                _ => Some(*g),
            })
            .collect();
        match self
            .complete_generations(team_id, &ticket.deps, found, |_| true)
            .await
        {
            Some(generations) if generations.iter().all(|g| *g != 0) => {
                ticket.generations = generations;
                ticket.unverified.clear();
            }
            _ => ticket.storable = false,
        }
    }

    /// Runs `compute` once for all concurrent misses of the same key and
    /// generations. The leader stores a cacheable answer before the flight
    /// ends, so a request arriving later either joins the flight or hits.
    pub async fn fill<F, Fut>(self: &Arc<Self>, ticket: Ticket, compute: F) -> Arc<Computed>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Computed>,
    {
        let flight_key = flight::key(&ticket.key, &ticket.generations);
        let Ticket {
            key,
            purpose,
            deps,
            generations,
            ttl,
            kind,
            unverified: _,
            storable,
        } = ticket;
        let max_entry = self.settings.max_entry_bytes;
        let (computed, leader) = self
            .flights
            .run(flight_key, || async {
                let mut computed = compute().await;
                if computed.cacheable && storable && computed.body.len() <= max_entry {
                    let lifetime = jitter(ttl);
                    let expires_ms =
                        unix_ms().saturating_add(u64::try_from(lifetime.as_millis()).unwrap_or(0));
                    let value = entry::encode(&deps, &generations, expires_ms, &computed.body);
                    computed.validator = Some(Validator::of(&key, &generations, expires_ms));
                    if let Some(n) = &self.near {
                        n.keep(
                            key.clone(),
                            generations.clone(),
                            computed.body.clone(),
                            expires_ms,
                            lifetime,
                        );
                    }
                    if self
                        .timed("SET", self.store.set(key, value, Some(lifetime)))
                        .await
                        .is_err()
                    {
                        self.metrics.error(kind);
                    }
                }
                computed
            })
            .await;
        if !leader && purpose == Purpose::Client {
            self.metrics.coalesced(kind);
        }
        computed
    }

    /// Remembers a read that missed (and so passed every limit), so the
    /// background refresh after the team's next writes can recompute it:
    /// newest first, a few per team, within a byte budget per team and for
    /// all teams.
    pub fn note_warmable(&self, spec: WarmSpec) {
        if spec.raw.len() > WARM_MAX_REQUEST_BYTES {
            return;
        }
        let team_id = spec.scope.team_id;
        let current = self.warmable.get(&team_id).unwrap_or_default();
        let mut specs = Vec::with_capacity(WARM_PER_TEAM);
        let mut bytes = spec.raw.len();
        specs.push(Arc::new(Warm {
            hash: request_hash(&spec.raw),
            spec,
            unread_replays: AtomicU8::new(0),
        }));
        for old in current.iter() {
            if old.spec.raw == specs[0].spec.raw {
                continue;
            }
            if specs.len() == WARM_PER_TEAM || bytes + old.spec.raw.len() > WARM_BYTES_PER_TEAM {
                break;
            }
            bytes += old.spec.raw.len();
            specs.push(Arc::clone(old));
        }
        self.warmable.insert(team_id, Arc::new(specs));
    }

    /// A client read a cached answer: if it is one the refresh replays,
    /// it is still wanted. (On the hit path: one map read and a scan of at
    /// most [`WARM_PER_TEAM`] hashes.)
    pub fn note_read(&self, team_id: i64, request_hash: u128) {
        if let Some(current) = self.warmable.get(&team_id)
            && let Some(warm) = current.iter().find(|w| w.hash == request_hash)
        {
            warm.unread_replays.store(0, Ordering::Relaxed);
        }
    }

    /// The reads to replay for a team now: those a client read since one of
    /// the last [`WARM_UNREAD_REPLAYS`] replays. The others are forgotten
    /// (a client who reads one again misses once and it is noted anew).
    pub fn take_replays(&self, team_id: i64) -> Vec<WarmSpec> {
        let Some(current) = self.warmable.get(&team_id) else {
            return Vec::new();
        };
        let (wanted, unread): (Vec<&Arc<Warm>>, Vec<&Arc<Warm>>) = current
            .iter()
            .partition(|w| w.unread_replays.fetch_add(1, Ordering::Relaxed) < WARM_UNREAD_REPLAYS);
        if !unread.is_empty() {
            self.warmable.insert(
                team_id,
                Arc::new(wanted.iter().map(|w| Arc::clone(w)).collect()),
            );
        }
        wanted.into_iter().map(|w| w.spec.clone()).collect()
    }

    /// The reads remembered for a team (operators and tests).
    pub fn warmable(&self, team_id: i64) -> Vec<WarmSpec> {
        self.warmable
            .get(&team_id)
            .map(|current| current.iter().map(|w| w.spec.clone()).collect())
            .unwrap_or_default()
    }

    /// Stops replaying a read (its caller is gone or changed role).
    pub fn forget_warmable(&self, team_id: i64, raw: &[u8]) {
        if let Some(current) = self.warmable.get(&team_id) {
            let kept: Vec<Arc<Warm>> = current
                .iter()
                .filter(|w| w.spec.raw != raw)
                .cloned()
                .collect();
            self.warmable.insert(team_id, Arc::new(kept));
        }
    }

    /// Makes every response that depends on `deps` of `team_id` unreachable:
    /// call after the transaction commits and before the mutation returns.
    ///
    /// Generations are bumped even with `CACHE_ENABLED=false`: the
    /// authenticator checks identities against the `users` generation.
    pub async fn invalidate(&self, team_id: i64, deps: &[Dep]) {
        if deps.is_empty() {
            return;
        }
        for dep in deps {
            self.metrics
                .invalidations
                .get_or_create(&metrics::NamespaceLabel {
                    namespace: dep.kind_name(),
                })
                .inc();
        }
        if let Err(error) = self.bump(team_id, deps).await {
            tracing::warn!(%error, team_id, "cache invalidation failed; retrying in the background");
            self.add_pending(team_id, deps);
        }
        if !self.settings.enabled {
            return;
        }
        for class in deps.iter().flat_map(|d| Class::cleared_by(*d)) {
            // A full queue only delays memory reuse: lifetimes still expire.
            self.metrics.sweeps_pending.inc();
            if self.sweeper.try_send((team_id, class)).is_err() {
                self.metrics.sweeps_pending.dec();
            }
        }
    }

    async fn bump(&self, team_id: i64, deps: &[Dep]) -> Result<(), StoreError> {
        let pairs = deps
            .iter()
            .map(|d| (self.gen_key(team_id, *d), fresh_generation()))
            .collect();
        self.timed("SET", self.store.set_many(pairs, GENERATION_TTL, false))
            .await
    }

    fn has_pending(&self, team_id: i64) -> bool {
        self.pending.any.load(Ordering::Acquire)
            && self
                .pending
                .teams
                .lock()
                .map(|t| t.contains_key(&team_id))
                .unwrap_or(true)
    }

    fn add_pending(&self, team_id: i64, deps: &[Dep]) {
        if let Ok(mut teams) = self.pending.teams.lock() {
            teams
                .entry(team_id)
                .or_default()
                .extend(deps.iter().copied());
            self.pending.any.store(true, Ordering::Release);
        }
    }

    /// Bounds every command by `CACHE_TIMEOUT_MS` (fred also times out, but
    /// not while it is reconnecting and queueing), in a client span named
    /// after the command (for traces).
    async fn timed<T>(
        &self,
        command: &'static str,
        op: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let span = crate::telemetry::inner_span(|| {
            tracing::debug_span!(
                "cache.command",
                otel.name = command,
                otel.kind = "client",
                otel.status_code = tracing::field::Empty,
                db.system = self.store.backend(),
                db.operation = command,
            )
        });
        let result = match tokio::time::timeout(self.settings.command_timeout, op)
            .instrument(span.clone())
            .await
        {
            Ok(result) => result,
            Err(_) => Err(StoreError::Unavailable),
        };
        if result.is_err() {
            span.record("otel.status_code", "ERROR");
        }
        result
    }
}

/// Retries failed generation bumps until they land, and keeps the
/// `cache_degraded` gauge current.
async fn retry_pending(cache: std::sync::Weak<ResponseCache>) {
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        tick.tick().await;
        let Some(cache) = cache.upgrade() else {
            return;
        };
        let pending = cache.pending.any.load(Ordering::Acquire);
        let degraded = cache.settings.enabled && (pending || !cache.store.is_up());
        cache.metrics.degraded.set(i64::from(degraded));
        if !pending {
            continue;
        }
        let snapshot: Vec<(i64, Vec<Dep>)> = match cache.pending.teams.lock() {
            Ok(teams) => teams
                .iter()
                .map(|(t, d)| (*t, d.iter().copied().collect()))
                .collect(),
            Err(_) => continue,
        };
        for (team_id, deps) in snapshot {
            if cache.bump(team_id, &deps).await.is_ok()
                && let Ok(mut teams) = cache.pending.teams.lock()
            {
                teams.remove(&team_id);
                if teams.is_empty() {
                    cache.pending.any.store(false, Ordering::Release);
                }
                tracing::info!(team_id, "deferred cache invalidation applied");
            }
        }
    }
}

/// A new random generation, as decimal text (readable in `redis-cli`).
fn fresh_generation() -> Bytes {
    Bytes::from(rand::random::<u64>().to_string())
}

fn parse_gen(raw: &[u8]) -> Option<u64> {
    std::str::from_utf8(raw).ok()?.parse().ok()
}

/// Up to 10% shorter, so entries filled together do not expire together.
fn jitter(ttl: Duration) -> Duration {
    let factor = 1.0 - rand::random::<f64>() * 0.1;
    ttl.mul_f64(factor).max(Duration::from_millis(1))
}

/// The hash of a request's bytes (query, variables, operation name).
pub fn request_hash(raw: &[u8]) -> u128 {
    xxhash_rust::xxh3::xxh3_128(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn warm(team_id: i64, user_id: i64, bytes: usize) -> WarmSpec {
        WarmSpec {
            raw: Bytes::from(format!("{user_id:08}").repeat(bytes / 8)),
            over_get: false,
            scope: Scope {
                team_id,
                role: crate::db::enums::Role::Member,
                user_id,
            },
        }
    }

    #[tokio::test]
    async fn the_refresh_keeps_a_few_recent_reads_per_team_within_byte_budgets() {
        let cache = ResponseCache::start(CacheSettings::default(), Arc::default())
            .await
            .unwrap();
        // Too large to replay at all.
        cache.note_warmable(warm(1, 1, WARM_MAX_REQUEST_BYTES + 8));
        assert!(cache.warmable(1).is_empty());
        // At most WARM_PER_TEAM, newest first.
        for user in 0..40 {
            cache.note_warmable(warm(1, user, 512));
        }
        let kept = cache.warmable(1);
        assert_eq!(kept.len(), WARM_PER_TEAM);
        assert_eq!(kept[0].scope.user_id, 39);
        // At most WARM_BYTES_PER_TEAM per team.
        for user in 0..20 {
            cache.note_warmable(warm(2, user, WARM_MAX_REQUEST_BYTES));
        }
        let bytes: usize = cache.warmable(2).iter().map(|s| s.raw.len()).sum();
        assert!(bytes <= WARM_BYTES_PER_TEAM, "{bytes}");
        // At most WARM_BYTES_TOTAL for every team together.
        for team in 0..2_000 {
            for user in 0..4 {
                cache.note_warmable(warm(team, user, WARM_MAX_REQUEST_BYTES));
            }
        }
        cache.warmable.run_pending_tasks();
        assert!(
            cache.warmable.weighted_size() <= WARM_BYTES_TOTAL,
            "{} bytes kept",
            cache.warmable.weighted_size()
        );
    }

    #[tokio::test]
    async fn the_refresh_replays_a_read_only_while_clients_still_read_it() {
        let cache = ResponseCache::start(CacheSettings::default(), Arc::default())
            .await
            .unwrap();
        let (read, unread) = (warm(1, 1, 64), warm(1, 2, 64));
        cache.note_warmable(unread.clone());
        cache.note_warmable(read.clone());
        let users =
            |specs: Vec<WarmSpec>| -> Vec<i64> { specs.iter().map(|s| s.scope.user_id).collect() };
        for _ in 0..WARM_UNREAD_REPLAYS {
            assert_eq!(users(cache.take_replays(1)), [1, 2]);
            cache.note_read(1, request_hash(&read.raw));
        }
        // Unread since the last replays: forgotten; the read one stays.
        assert_eq!(users(cache.take_replays(1)), [1]);
        assert_eq!(users(cache.warmable(1)), [1]);
        // A read of another team's request changes nothing here.
        cache.note_read(2, request_hash(&read.raw));
        for _ in 0..WARM_UNREAD_REPLAYS - 1 {
            assert_eq!(users(cache.take_replays(1)), [1]);
        }
        assert!(cache.take_replays(1).is_empty());
        // Missed again later: noted anew.
        cache.note_warmable(unread);
        assert_eq!(users(cache.take_replays(1)), [2]);
    }

    #[test]
    fn jitter_shortens_by_at_most_a_tenth() {
        for _ in 0..1000 {
            let t = jitter(Duration::from_secs(100));
            assert!(
                t <= Duration::from_secs(100) && t >= Duration::from_secs(90),
                "{t:?}"
            );
        }
    }
}
