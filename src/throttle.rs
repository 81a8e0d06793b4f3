//! Rate limits and quotas: fixed-window counters keyed by what is limited
//! (an e-mail, a client address, a team). With Redis configured the
//! counters live there, so every replica counts the same attempts; without
//! it (or while it is unreachable) each replica counts its own.
//!
//! Limits ([`Limit`], `N/WINDOW`) are read with the rest of the settings.

use std::{
    net::IpAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use crate::{cache::ResponseCache, config::Limit};

/// What a client address is counted as: an IPv4 address on its own, an
/// IPv6 address by its /64 (one subscriber's network holds 2^64 addresses,
/// each of which would otherwise get limits of its own).
pub fn address_key(addr: IpAddr) -> String {
    match addr {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
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
                .within_timeout("INCR", store.count_in_window(key.clone(), limit.window))
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
    use super::address_key;

    #[test]
    fn ipv6_addresses_of_one_network_count_as_one_client() {
        let a = address_key("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = address_key("2001:db8:1:2:bbbb:cccc:dddd:eeee".parse().unwrap());
        assert_eq!(a, b);
        assert_eq!(a, "2001:db8:1:2::/64");
        assert_ne!(a, address_key("2001:db8:1:3::1".parse().unwrap()));
        assert_eq!(address_key("::ffff:10.0.0.1".parse().unwrap()), "10.0.0.1");
        assert_eq!(address_key("10.0.0.1".parse().unwrap()), "10.0.0.1");
    }
}
