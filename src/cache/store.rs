//! Where cache entries live: Redis through fred (standalone or cluster), or
//! an in-process moka cache with the same operations and semantics for the
//! embedded default. Every operation the cache layer needs touches keys of
//! one team only, and a team's keys share one hash tag, so each is a single
//! round trip to a single cluster node.

use std::time::Duration;

use bytes::Bytes;
use fred::{
    prelude::{
        ClientLike, Config as RedisConfig, EventInterface, KeysInterface, LuaInterface, Pool,
        PubsubInterface, ReconnectPolicy, TcpConfig,
    },
    types::{Expiration, SetOptions, scan::Scanner},
};
use futures::StreamExt;
use moka::{Expiry, sync::Cache as Moka};
use tokio::sync::{mpsc, oneshot};

/// A cache operation that failed; the caller serves from the database.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the cache is not connected")]
    Unavailable,
    #[error("cache command failed: {0}")]
    Redis(#[from] fred::error::Error),
}

#[derive(Clone)]
struct MemEntry {
    value: Bytes,
    ttl: Option<Duration>,
}

struct PerEntryTtl;

impl Expiry<String, MemEntry> for PerEntryTtl {
    fn expire_after_create(
        &self,
        _key: &String,
        value: &MemEntry,
        _now: std::time::Instant,
    ) -> Option<Duration> {
        value.ttl
    }

    fn expire_after_update(
        &self,
        _key: &String,
        value: &MemEntry,
        _now: std::time::Instant,
        _current: Option<Duration>,
    ) -> Option<Duration> {
        value.ttl
    }
}

/// The in-process store: bounded by bytes (keys and values), per-entry
/// lifetimes, prefix deletes.
#[derive(Clone)]
pub struct MemoryStore {
    entries: Moka<String, MemEntry>,
}

impl MemoryStore {
    pub fn new(max_bytes: u64) -> Self {
        Self {
            entries: Moka::builder()
                .max_capacity(max_bytes)
                .weigher(|key: &String, entry: &MemEntry| {
                    // Bookkeeping per entry is about a hundred bytes.
                    u32::try_from(key.len() + entry.value.len() + 100).unwrap_or(u32::MAX)
                })
                .expire_after(PerEntryTtl)
                .build(),
        }
    }
}

/// Redis through a small fred pool.
#[derive(Clone)]
pub struct RedisStore {
    pool: Pool,
    lookups: mpsc::UnboundedSender<PendingGet>,
}

type GetResult = Result<Vec<Option<Bytes>>, StoreError>;

/// One `MGET` waiting to be sent with others.
struct PendingGet {
    keys: Vec<String>,
    reply: oneshot::Sender<GetResult>,
}

/// The most `MGET`s sent in one pipeline.
const MAX_PIPELINE: usize = 256;

impl RedisStore {
    /// Builds the pool and starts connecting in the background: an
    /// unreachable Redis at start-up is a degraded cache, not a failed start.
    /// fred reconnects by itself (exponential back-off, forever).
    pub fn connect(
        url: &str,
        command_timeout: Duration,
        pool_size: usize,
    ) -> Result<Self, fred::error::Error> {
        let mut config = RedisConfig::from_url(url)?;
        // Keep trying when Redis is unreachable at start-up, too.
        config.fail_fast = false;
        let pool = fred::types::Builder::from_config(config)
            .with_performance_config(|p| {
                p.default_command_timeout = command_timeout;
            })
            .with_connection_config(|c| {
                c.connection_timeout = Duration::from_secs(2);
                c.internal_command_timeout = Duration::from_secs(2);
                c.max_command_attempts = 1;
                c.tcp = TcpConfig {
                    nodelay: Some(true),
                    ..Default::default()
                };
            })
            .set_policy(ReconnectPolicy::new_exponential(0, 50, 2_000, 2))
            .build_pool(pool_size)?;
        for client in pool.clients() {
            let _errors = client.on_error(|(error, server)| async move {
                tracing::warn!(%error, server = ?server, "redis connection error");
                Ok(())
            });
            let _reconnects = client.on_reconnect(|server| async move {
                tracing::info!(%server, "redis connection (re-)established");
                Ok(())
            });
        }
        let _ = pool.connect_pool();
        let (lookups, rx) = mpsc::unbounded_channel();
        tokio::spawn(pipeline_lookups(pool.clone(), rx));
        Ok(Self { pool, lookups })
    }

    /// Waits (bounded) for the first connection, so a normal start serves
    /// its first requests from a connected cache.
    pub async fn wait_connected(&self, limit: Duration) -> bool {
        tokio::time::timeout(limit, self.pool.wait_for_connect())
            .await
            .is_ok_and(|r| r.is_ok())
    }

    fn client(&self) -> Result<&fred::clients::Client, StoreError> {
        let client = self.pool.next_connected();
        if client.is_connected() {
            Ok(client)
        } else {
            Err(StoreError::Unavailable)
        }
    }
}

/// The store behind the cache.
#[derive(Clone)]
pub enum Store {
    Redis(RedisStore),
    Memory(MemoryStore),
}

impl Store {
    /// For the start-up log line and `/ready`.
    pub fn backend(&self) -> &'static str {
        match self {
            Self::Redis(_) => "redis",
            Self::Memory(_) => "in-process",
        }
    }

    /// Whether commands can be sent now (false while Redis is away).
    pub fn is_up(&self) -> bool {
        match self {
            Self::Redis(r) => r.pool.clients().iter().any(|c| c.is_connected()),
            Self::Memory(_) => true,
        }
    }

    /// `MGET`: values in key order.
    pub async fn mget(&self, keys: Vec<String>) -> Result<Vec<Option<Bytes>>, StoreError> {
        match self {
            Self::Redis(r) => {
                r.client()?;
                let (reply, rx) = oneshot::channel();
                r.lookups
                    .send(PendingGet { keys, reply })
                    .map_err(|_| StoreError::Unavailable)?;
                rx.await.map_err(|_| StoreError::Unavailable)?
            }
            Self::Memory(m) => Ok(keys
                .iter()
                .map(|k| m.entries.get(k).map(|e| e.value))
                .collect()),
        }
    }

    /// Raises the number at `key` to `value` unless it already holds more
    /// (a position that only moves forward, whatever order concurrent
    /// writers arrive in) and gives it `ttl` again. In process: nothing
    /// (positions are kept by their owner there).
    pub async fn raise(&self, key: String, value: u64, ttl: Duration) -> Result<(), StoreError> {
        const RAISE: &str = "local cur = tonumber(redis.call('GET', KEYS[1]) or '0') \
            if tonumber(ARGV[1]) > cur then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) \
            else redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 1";
        match self {
            Self::Redis(r) => {
                let ttl_ms = ttl.as_millis().max(1) as u64;
                r.client()?
                    .eval::<i64, _, _, _>(
                        RAISE,
                        vec![key],
                        vec![value.to_string(), ttl_ms.to_string()],
                    )
                    .await?;
                Ok(())
            }
            Self::Memory(_) => Ok(()),
        }
    }

    /// `SPUBLISH`: a message on a sharded channel (on Redis Cluster, the
    /// channel's hash tag picks the shard). Nothing to do in process.
    pub async fn spublish(&self, channel: String, message: Bytes) -> Result<(), StoreError> {
        match self {
            Self::Redis(r) => {
                r.client()?.spublish::<i64, _, _>(channel, message).await?;
                Ok(())
            }
            Self::Memory(_) => Ok(()),
        }
    }

    /// `SET … PX` (or no expiry).
    pub async fn set(
        &self,
        key: String,
        value: Bytes,
        ttl: Option<Duration>,
    ) -> Result<(), StoreError> {
        match self {
            Self::Redis(r) => {
                let expire = ttl.map(|t| Expiration::PX(t.as_millis().max(1) as i64));
                r.client()?
                    .set::<(), _, _>(key, value, expire, None, false)
                    .await?;
                Ok(())
            }
            Self::Memory(m) => {
                m.entries.insert(key, MemEntry { value, ttl });
                Ok(())
            }
        }
    }

    /// Sets several keys (of one team) in one round trip. With `only_new`,
    /// keys that exist keep their value (`SET NX`).
    pub async fn set_many(
        &self,
        pairs: Vec<(String, Bytes)>,
        ttl: Duration,
        only_new: bool,
    ) -> Result<(), StoreError> {
        match self {
            Self::Redis(r) => {
                let pipeline = r.client()?.pipeline();
                let options = only_new.then_some(SetOptions::NX);
                for (key, value) in pairs {
                    let expire = Some(Expiration::PX(ttl.as_millis().max(1) as i64));
                    pipeline
                        .set::<(), _, _>(key, value, expire, options.clone(), false)
                        .await?;
                }
                let _: Vec<fred::types::Value> = pipeline.all().await?;
                Ok(())
            }
            Self::Memory(m) => {
                for (key, value) in pairs {
                    let entry = MemEntry {
                        value,
                        ttl: Some(ttl),
                    };
                    if only_new {
                        m.entries.entry(key).or_insert(entry);
                    } else {
                        m.entries.insert(key, entry);
                    }
                }
                Ok(())
            }
        }
    }

    /// Keys matching `prefix*`, found with `SCAN … MATCH` in pages of
    /// `page_size`, at most `max_pages` pages (never `KEYS`). The prefix
    /// carries the team's hash tag, so on a cluster fred sends the SCAN to
    /// the one node that owns the slot.
    pub async fn scan_prefix(
        &self,
        prefix: &str,
        page_size: u32,
        max_pages: usize,
    ) -> Result<Vec<String>, StoreError> {
        match self {
            Self::Redis(r) => {
                let client = r.client()?;
                let pattern = format!("{}*", escape_glob(prefix));
                let mut pages = client.scan(pattern, Some(page_size), None);
                let mut keys = Vec::new();
                let mut seen = 0usize;
                while let Some(page) = pages.next().await {
                    let mut page = page?;
                    if let Some(found) = page.take_results() {
                        keys.extend(found.into_iter().filter_map(|k| k.into_string()));
                    }
                    seen += 1;
                    if seen >= max_pages {
                        page.cancel();
                        break;
                    }
                    page.next();
                }
                Ok(keys)
            }
            Self::Memory(m) => Ok(m
                .entries
                .iter()
                .map(|(k, _)| k.as_ref().clone())
                .filter(|k| k.starts_with(prefix))
                .take(page_size as usize * max_pages)
                .collect()),
        }
    }

    /// The first `len` bytes of each value (`GETRANGE`, pipelined): enough
    /// to read an entry's header without its body.
    pub async fn heads(
        &self,
        keys: &[String],
        len: usize,
    ) -> Result<Vec<Option<Bytes>>, StoreError> {
        match self {
            Self::Redis(r) => {
                let pipeline = r.client()?.pipeline();
                for key in keys {
                    pipeline
                        .getrange::<(), _>(key.as_str(), 0, len.saturating_sub(1))
                        .await?;
                }
                let values: Vec<fred::types::Value> = pipeline.all().await?;
                Ok(values
                    .into_iter()
                    .map(|v| {
                        v.as_bytes()
                            .filter(|b| !b.is_empty())
                            .map(Bytes::copy_from_slice)
                    })
                    .collect())
            }
            Self::Memory(m) => Ok(keys
                .iter()
                .map(|k| {
                    m.entries
                        .get(k)
                        .map(|e| e.value.slice(..e.value.len().min(len)))
                })
                .collect()),
        }
    }

    /// `UNLINK` (all keys of one team: one slot).
    pub async fn unlink(&self, keys: Vec<String>) -> Result<u64, StoreError> {
        if keys.is_empty() {
            return Ok(0);
        }
        match self {
            Self::Redis(r) => Ok(r.client()?.unlink::<u64, _>(keys).await?),
            Self::Memory(m) => {
                let mut removed = 0;
                for key in keys {
                    if m.entries.remove(&key).is_some() {
                        removed += 1;
                    }
                }
                Ok(removed)
            }
        }
    }

    /// Counts one more event in a fixed window (`INCR`, and `PEXPIRE NX`
    /// so the window ends `window` after its first event), in one round
    /// trip; Redis only (the in-process limiter keeps its own counters).
    pub async fn count_in_window(&self, key: String, window: Duration) -> Result<u64, StoreError> {
        match self {
            Self::Redis(r) => {
                let pipeline = r.client()?.pipeline();
                pipeline.incr::<(), _>(key.as_str()).await?;
                pipeline
                    .pexpire::<(), _>(
                        key.as_str(),
                        window.as_millis().max(1) as i64,
                        Some(fred::types::ExpireOptions::NX),
                    )
                    .await?;
                let (count, _): (u64, i64) = pipeline.all().await?;
                Ok(count)
            }
            Self::Memory(_) => Err(StoreError::Unavailable),
        }
    }

    /// A round trip for `/ready`.
    pub async fn ping(&self) -> Result<(), StoreError> {
        match self {
            Self::Redis(r) => {
                r.client()?.ping::<()>(None).await?;
                Ok(())
            }
            Self::Memory(_) => Ok(()),
        }
    }
}

/// Auto-pipelining of lookups. Every request on the cache-hit path needs
/// one `MGET`; sent one by one, each costs a write and a read system call
/// here and in Redis. The batcher yields once before sending, so the
/// lookups of every request that became ready in the same scheduler turn go
/// out as one pipeline: one write, one read, however many requests. Batches
/// are sent concurrently, so a slow batch never holds back the next.
async fn pipeline_lookups(pool: Pool, mut rx: mpsc::UnboundedReceiver<PendingGet>) {
    while let Some(first) = rx.recv().await {
        tokio::task::yield_now().await;
        let mut batch = vec![first];
        while batch.len() < MAX_PIPELINE {
            match rx.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let client = pool.next_connected().clone();
        tokio::spawn(async move {
            let results = send_batch(&client, batch.iter().map(|p| p.keys.clone()).collect()).await;
            match results {
                Ok(values) => {
                    for (pending, value) in batch.into_iter().zip(values) {
                        let _ = pending.reply.send(Ok(value));
                    }
                }
                Err(error) => {
                    let message = error.to_string();
                    for pending in batch {
                        let _ =
                            pending
                                .reply
                                .send(Err(StoreError::Redis(fred::error::Error::new(
                                    fred::error::ErrorKind::IO,
                                    message.clone(),
                                ))));
                    }
                }
            }
        });
    }
}

/// The lookups of one batch as few `MGET`s as their slots allow, each key
/// read once. Concurrent requests for the same answer ask for the same
/// keys (its entry and its team's generations): merged, a hundred lookups
/// cost Redis one command instead of a hundred. Each lookup keys one team
/// (one hash tag, one slot), so merging by slot keeps every command within
/// a slot; fred routes each to its node. Every lookup in the batch was made
/// before the batch was sent, so each still reads what was written before
/// it was made.
async fn send_batch(
    client: &fred::clients::Client,
    batch: Vec<Vec<String>>,
) -> Result<Vec<Vec<Option<Bytes>>>, fred::error::Error> {
    let merged = MergedLookups::of(&batch);
    let replies: Vec<Vec<Option<Bytes>>> = if let [keys] = merged.commands.as_slice() {
        vec![client.mget(keys.clone()).await?]
    } else {
        let pipeline = client.pipeline();
        for keys in &merged.commands {
            pipeline.mget::<(), _>(keys.clone()).await?;
        }
        let replies: Vec<fred::types::Value> = pipeline.all().await?;
        replies
            .into_iter()
            .map(|reply| reply.convert::<Vec<Option<Bytes>>>())
            .collect::<Result<_, _>>()?
    };
    Ok(merged.split(&replies))
}

/// Lookups merged into one `MGET` per slot, and where each lookup's keys
/// landed.
struct MergedLookups {
    /// One command's distinct keys per slot.
    commands: Vec<Vec<String>>,
    /// Per lookup, per key: (command, position in it).
    places: Vec<Vec<(usize, usize)>>,
}

impl MergedLookups {
    fn of(batch: &[Vec<String>]) -> Self {
        let mut commands: Vec<Vec<String>> = Vec::new();
        let mut slots: Vec<u16> = Vec::new();
        let mut seen: std::collections::HashMap<&str, (usize, usize)> =
            std::collections::HashMap::new();
        let places = batch
            .iter()
            .map(|keys| {
                keys.iter()
                    .map(|key| {
                        if let Some(place) = seen.get(key.as_str()) {
                            return *place;
                        }
                        let slot = fred::util::redis_keyslot(key.as_bytes());
                        let command = match slots.iter().position(|s| *s == slot) {
                            Some(at) => at,
                            None => {
                                slots.push(slot);
                                commands.push(Vec::new());
                                commands.len() - 1
                            }
                        };
                        commands[command].push(key.clone());
                        let place = (command, commands[command].len() - 1);
                        seen.insert(key.as_str(), place);
                        place
                    })
                    .collect()
            })
            .collect();
        Self { commands, places }
    }

    /// Each lookup's values, in its keys' order.
    fn split(&self, replies: &[Vec<Option<Bytes>>]) -> Vec<Vec<Option<Bytes>>> {
        self.places
            .iter()
            .map(|places| {
                places
                    .iter()
                    .map(|(command, at)| {
                        replies
                            .get(*command)
                            .and_then(|values| values.get(*at))
                            .cloned()
                            .flatten()
                    })
                    .collect()
            })
            .collect()
    }
}

/// Escapes the glob characters SCAN MATCH understands.
fn escape_glob(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len() + 4);
    for c in raw.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_lookups_read_each_key_once_per_slot_and_split_back_in_order() {
        let batch = vec![
            vec!["jg:{t1}:gen:jobs".to_owned(), "jg:{t1}:e:1".to_owned()],
            vec!["jg:{t1}:gen:jobs".to_owned(), "jg:{t1}:e:1".to_owned()],
            vec!["jg:{t2}:gen:jobs".to_owned()],
            vec!["jg:{t1}:e:2".to_owned(), "jg:{t1}:gen:jobs".to_owned()],
        ];
        let merged = MergedLookups::of(&batch);
        // Two teams' hash tags, two slots: two commands, no key twice.
        assert_eq!(
            merged.commands,
            vec![
                vec!["jg:{t1}:gen:jobs", "jg:{t1}:e:1", "jg:{t1}:e:2"],
                vec!["jg:{t2}:gen:jobs"],
            ]
        );
        let replies = vec![
            vec![Some(Bytes::from("g1")), None, Some(Bytes::from("e2"))],
            vec![Some(Bytes::from("g2"))],
        ];
        assert_eq!(
            merged.split(&replies),
            vec![
                vec![Some(Bytes::from("g1")), None],
                vec![Some(Bytes::from("g1")), None],
                vec![Some(Bytes::from("g2"))],
                vec![Some(Bytes::from("e2")), Some(Bytes::from("g1"))],
            ]
        );
    }

    #[test]
    fn glob_characters_are_escaped() {
        assert_eq!(escape_glob("jg:{t1}:r:"), "jg:{t1}:r:");
        assert_eq!(escape_glob("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
    }

    #[tokio::test]
    async fn the_memory_store_scans_reads_heads_unlinks_and_honours_lifetimes() {
        let store = Store::Memory(MemoryStore::new(1 << 20));
        store
            .set("a:1".into(), Bytes::from_static(b"x-long"), None)
            .await
            .unwrap();
        store
            .set("a:2".into(), Bytes::from_static(b"y"), None)
            .await
            .unwrap();
        store
            .set(
                "b:1".into(),
                Bytes::from_static(b"z"),
                Some(Duration::from_millis(20)),
            )
            .await
            .unwrap();
        let mut keys = store.scan_prefix("a:", 100, 10).await.unwrap();
        keys.sort();
        assert_eq!(keys, ["a:1", "a:2"]);
        let heads = store.heads(&keys, 2).await.unwrap();
        assert_eq!(
            heads,
            [
                Some(Bytes::from_static(b"x-")),
                Some(Bytes::from_static(b"y"))
            ]
        );
        assert_eq!(store.unlink(keys).await.unwrap(), 2);
        let got = store.mget(vec!["a:1".into(), "b:1".into()]).await.unwrap();
        assert_eq!(got, [None, Some(Bytes::from_static(b"z"))]);
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert_eq!(store.mget(vec!["b:1".into()]).await.unwrap(), [None]);
    }

    #[tokio::test]
    async fn the_memory_store_holds_at_most_its_size_in_bytes() {
        let max = 1 << 20;
        let memory = MemoryStore::new(max);
        let store = Store::Memory(memory.clone());
        // 4 MiB of 64 KiB answers into a 1 MiB store.
        for i in 0..64 {
            store
                .set(format!("k:{i}"), Bytes::from(vec![b'x'; 64 * 1024]), None)
                .await
                .unwrap();
        }
        memory.entries.run_pending_tasks();
        assert!(
            memory.entries.weighted_size() <= max,
            "{} bytes held",
            memory.entries.weighted_size()
        );
        assert!(memory.entries.entry_count() <= 16);
    }

    #[tokio::test]
    async fn set_many_only_new_keeps_existing_values() {
        let store = Store::Memory(MemoryStore::new(1 << 20));
        store
            .set("g".into(), Bytes::from_static(b"1"), None)
            .await
            .unwrap();
        store
            .set_many(
                vec![
                    ("g".into(), Bytes::from_static(b"2")),
                    ("h".into(), Bytes::from_static(b"3")),
                ],
                Duration::from_secs(60),
                true,
            )
            .await
            .unwrap();
        let got = store.mget(vec!["g".into(), "h".into()]).await.unwrap();
        assert_eq!(
            got,
            [
                Some(Bytes::from_static(b"1")),
                Some(Bytes::from_static(b"3"))
            ]
        );
    }
}
