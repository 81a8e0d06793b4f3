//! `REDIS_URL` and `CACHE_*`: the response cache (see the README's
//! configuration table).

use std::time::Duration;

use anyhow::bail;

use super::env::Env;
use crate::secret::Secret;

/// Lifetimes of the cached kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheTtls {
    /// `CACHE_TTL_JOBS_LIST` (60 s): `jobs`, `jobsPage`.
    pub jobs_list: Duration,
    /// `CACHE_TTL_JOB_DETAIL` (300 s): `job(id:)`.
    pub job_detail: Duration,
    /// `CACHE_TTL_JOB_STATS` (120 s): `jobStats`.
    pub job_stats: Duration,
    /// `CACHE_TTL_LOGS` (30 s): `logs`.
    pub logs: Duration,
}

impl CacheTtls {
    /// The documented lifetimes (60/300/120/30 s), or `default` for every kind
    /// when given (`CACHE_DEFAULT_EXPIRE`).
    pub fn with_default(default: Option<Duration>) -> Self {
        let or = |secs| default.unwrap_or(Duration::from_secs(secs));
        Self {
            jobs_list: or(60),
            job_detail: or(300),
            job_stats: or(120),
            logs: or(30),
        }
    }
}

/// Cache settings.
#[derive(Debug, Clone)]
pub struct CacheSettings {
    /// `CACHE_ENABLED` (default true).
    pub enabled: bool,
    /// `REDIS_URL`: `redis://…` or `redis-cluster://…`; in-process without.
    pub redis_url: Option<Secret>,
    /// Lifetimes per kind; `CACHE_DEFAULT_EXPIRE` replaces the built-in
    /// default of every kind not set on its own.
    pub ttl: CacheTtls,
    /// `CACHE_TIMEOUT_MS`: the longest a cache command may take (default 100).
    pub command_timeout: Duration,
    /// `CACHE_KEY_PREFIX` (default `jg`): lets services or tests share a Redis.
    pub key_prefix: String,
    /// `CACHE_SWEEP_DELAY_MS`: how long the sweeper gathers writes before one
    /// clearing pass (default 500).
    pub sweep_delay: Duration,
    /// `CACHE_SWEEP_MAX_PAGES`: SCAN pages (of 500 keys) one pattern may take
    /// per pass (default 200).
    pub sweep_max_pages: usize,
    /// `CACHE_MEMORY_MAX_BYTES`: size of the in-process store, keys and
    /// values counted (default 256 MiB).
    pub memory_max_bytes: u64,
    /// `CACHE_MAX_ENTRY_BYTES`: larger answers are not stored (default 1 MiB).
    pub max_entry_bytes: usize,
    /// `REDIS_POOL_SIZE` (default 4).
    pub redis_pool_size: usize,
    /// `CACHE_NEAR_MAX_BYTES`: with Redis, the answers this replica read or
    /// stored are also kept in process, so a hit fetches only the
    /// generations from Redis, not the answer (default 64 MiB; 0: off).
    pub near_max_bytes: u64,
    /// `CACHE_NEAR_TTL_MS`: the longest an answer is kept near (default
    /// 10000); it is served only while its generations are current, and
    /// never longer than its kind's lifetime.
    pub near_ttl: Duration,
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            redis_url: None,
            ttl: CacheTtls::with_default(None),
            command_timeout: Duration::from_millis(100),
            key_prefix: "jg".to_owned(),
            sweep_delay: Duration::from_millis(500),
            sweep_max_pages: 200,
            memory_max_bytes: 256 * 1024 * 1024,
            max_entry_bytes: 1024 * 1024,
            redis_pool_size: 4,
            near_max_bytes: 64 * 1024 * 1024,
            near_ttl: Duration::from_secs(10),
        }
    }
}

impl CacheSettings {
    pub(super) fn read(&mut self, env: &Env) -> anyhow::Result<()> {
        if let Some(v) = env.bool("CACHE_ENABLED")? {
            self.enabled = v;
        }
        if let Some(url) = env.get("REDIS_URL") {
            let scheme_ok = [
                "redis://",
                "rediss://",
                "redis-cluster://",
                "rediss-cluster://",
                "redis-sentinel://",
            ]
            .iter()
            .any(|s| url.starts_with(s));
            if !scheme_ok {
                bail!("REDIS_URL must start with redis://, rediss:// or redis-cluster://");
            }
            self.redis_url = Some(Secret::new(url));
        }
        self.ttl = CacheTtls::with_default(env.secs("CACHE_DEFAULT_EXPIRE", 1, 86_400)?);
        for (name, slot) in [
            ("CACHE_TTL_JOBS_LIST", &mut self.ttl.jobs_list),
            ("CACHE_TTL_JOB_DETAIL", &mut self.ttl.job_detail),
            ("CACHE_TTL_JOB_STATS", &mut self.ttl.job_stats),
            ("CACHE_TTL_LOGS", &mut self.ttl.logs),
        ] {
            if let Some(d) = env.secs(name, 1, 86_400)? {
                *slot = d;
            }
        }
        if let Some(d) = env.millis("CACHE_TIMEOUT_MS", 1, 60_000)? {
            self.command_timeout = d;
        }
        if let Some(v) = env.get("CACHE_KEY_PREFIX") {
            if v.is_empty() || v.len() > 64 || v.contains(['{', '}', '*', '?', '[', ']', ' ']) {
                bail!(
                    "CACHE_KEY_PREFIX must be 1-64 characters without braces, glob characters or spaces"
                );
            }
            self.key_prefix = v;
        }
        if let Some(d) = env.millis("CACHE_SWEEP_DELAY_MS", 0, 60_000)? {
            self.sweep_delay = d;
        }
        if let Some(n) = env.range("CACHE_SWEEP_MAX_PAGES", 1usize, 1_000_000)? {
            self.sweep_max_pages = n;
        }
        if let Some(n) = env.range("CACHE_MEMORY_MAX_BYTES", 1u64 << 20, 1u64 << 40)? {
            self.memory_max_bytes = n;
        }
        if let Some(n) = env.range("CACHE_MAX_ENTRY_BYTES", 1024usize, 1 << 30)? {
            self.max_entry_bytes = n;
        }
        if let Some(n) = env.range("REDIS_POOL_SIZE", 1usize, 64)? {
            self.redis_pool_size = n;
        }
        if let Some(n) = env.range("CACHE_NEAR_MAX_BYTES", 0u64, 1u64 << 40)? {
            self.near_max_bytes = n;
        }
        if let Some(d) = env.millis("CACHE_NEAR_TTL_MS", 1, 86_400_000)? {
            self.near_ttl = d;
        }
        Ok(())
    }
}
