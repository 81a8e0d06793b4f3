//! The near copy of answers kept in Redis: with Redis as the store, each
//! replica also keeps the answers it read or stored, with the generations
//! they were made under. A lookup that finds a near copy asks Redis only
//! for the current generations (a few bytes instead of the answer) and
//! serves the copy when they match — the same check a Redis entry passes,
//! so read-your-writes across replicas holds as before. Copies live a short
//! time and are weighed by their bytes.

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use moka::{Expiry, sync::Cache};

/// An answer and the generations it was made under.
pub struct NearEntry {
    pub generations: Vec<u64>,
    pub body: Bytes,
    /// When the Redis entry it copies expires (Unix milliseconds).
    pub expires_ms: u64,
    ttl: Duration,
}

struct OwnTtl;

impl Expiry<String, Arc<NearEntry>> for OwnTtl {
    fn expire_after_create(
        &self,
        _key: &String,
        value: &Arc<NearEntry>,
        _now: std::time::Instant,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

/// Near copies by entry key.
pub struct Near {
    entries: Cache<String, Arc<NearEntry>>,
    ttl: Duration,
}

impl Near {
    /// `None` when `max_bytes` is 0 (off).
    pub fn new(max_bytes: u64, ttl: Duration) -> Option<Self> {
        (max_bytes > 0).then(|| Self {
            entries: Cache::builder()
                .max_capacity(max_bytes)
                .weigher(|key: &String, entry: &Arc<NearEntry>| {
                    u32::try_from(key.len() + entry.body.len() + 8 * entry.generations.len() + 96)
                        .unwrap_or(u32::MAX)
                })
                .expire_after(OwnTtl)
                .build(),
            ttl,
        })
    }

    pub fn get(&self, key: &str) -> Option<Arc<NearEntry>> {
        self.entries.get(key)
    }

    /// Keeps a copy for at most the near lifetime and at most `lifetime`
    /// (the kind's).
    pub fn keep(
        &self,
        key: String,
        generations: Vec<u64>,
        body: Bytes,
        expires_ms: u64,
        lifetime: Duration,
    ) {
        let ttl = self.ttl.min(lifetime);
        self.entries.insert(
            key,
            Arc::new(NearEntry {
                generations,
                body,
                expires_ms,
                ttl,
            }),
        );
    }

    pub fn forget(&self, key: &str) {
        self.entries.invalidate(key);
    }
}
