//! Rate limits and quotas: fixed-window counters keyed by what is limited
//! (an e-mail, a client address, a team). With Redis configured the
//! counters live there, so every replica counts the same attempts; without
//! it (or while it is unreachable) each replica counts its own.
//!
//! A limit is written `N/WINDOW`: `10/15m`, `50/1h`, `200/1d`; `0` turns
//! it off.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use anyhow::{Context, bail};

use crate::cache::ResponseCache;

/// At most `max` events per `window`; `max == 0` is no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub max: u64,
    pub window: Duration,
}

impl Limit {
    pub const OFF: Limit = Limit {
        max: 0,
        window: Duration::from_secs(1),
    };

    pub const fn new(max: u64, window_secs: u64) -> Self {
        Self {
            max,
            window: Duration::from_secs(window_secs),
        }
    }

    /// Reads `N/WINDOW` (`s`, `m`, `h`, `d`), or `0`.
    pub fn parse(raw: &str) -> anyhow::Result<Self> {
        let raw = raw.trim();
        if raw == "0" {
            return Ok(Self::OFF);
        }
        let (max, window) = raw
            .split_once('/')
            .context("write a limit as N/WINDOW, such as 10/15m (0 turns it off)")?;
        let max: u64 = max.trim().parse().context("N must be a whole number")?;
        let window = window.trim();
        let (n, unit) = window.split_at(window.len().saturating_sub(1));
        let n: u64 = if n.is_empty() {
            1
        } else {
            n.parse().context("bad window")?
        };
        let secs = match unit {
            "s" => n,
            "m" => n * 60,
            "h" => n * 3600,
            "d" => n * 86_400,
            _ => bail!("the window ends in s, m, h or d"),
        };
        if secs == 0 || secs > 30 * 86_400 {
            bail!("the window must be between 1s and 30d");
        }
        Ok(Self::new(max, secs))
    }

    pub fn is_off(&self) -> bool {
        self.max == 0
    }
}

/// Refused: try again after this long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exceeded {
    pub retry_after: Duration,
}

/// Counts events against limits.
pub struct Throttle {
    cache: Arc<ResponseCache>,
    local: moka::sync::Cache<String, Arc<AtomicU64>>,
}

impl Throttle {
    pub fn new(cache: Arc<ResponseCache>) -> Self {
        Self {
            cache,
            local: moka::sync::Cache::builder()
                .max_capacity(200_000)
                .time_to_live(Duration::from_secs(31 * 86_400))
                .build(),
        }
    }

    /// Counts one event of `what` for `who` against `limit`.
    pub async fn hit(&self, what: &str, who: &str, limit: Limit) -> Result<(), Exceeded> {
        if limit.is_off() {
            return Ok(());
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let window = limit.window.as_secs().max(1);
        let slot = now.as_secs() / window;
        let retry_after = Duration::from_secs(window - now.as_secs() % window);
        // Hashed: an e-mail address never appears in a Redis key.
        let who = xxhash_rust::xxh3::xxh3_64(who.as_bytes());
        // Outside the cache's key space (`rl:` first), so cache sweeps and
        // key audits never meet them.
        let key = format!(
            "rl:{}:{{{what}:{who:016x}}}:{window}:{slot}",
            self.cache.key_prefix()
        );
        let shared = match self.cache.shared_store() {
            Some(store) => self
                .cache
                .within_timeout(store.count_in_window(key.clone(), limit.window))
                .await
                .ok(),
            None => None,
        };
        let count = match shared {
            Some(n) => n,
            None => {
                self.local
                    .get_with(key, || Arc::new(AtomicU64::new(0)))
                    .fetch_add(1, Ordering::Relaxed)
                    + 1
            }
        };
        if count > limit.max {
            Err(Exceeded { retry_after })
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_read_as_count_per_window() {
        assert_eq!(Limit::parse("10/15m").unwrap(), Limit::new(10, 900));
        assert_eq!(Limit::parse("5/s").unwrap(), Limit::new(5, 1));
        assert_eq!(Limit::parse("200/1d").unwrap(), Limit::new(200, 86_400));
        assert!(Limit::parse("0").unwrap().is_off());
        for bad in ["10", "x/1m", "10/0m", "10/1y", "10/45d"] {
            assert!(Limit::parse(bad).is_err(), "{bad}");
        }
    }
}
