//! `RATE_LIMIT_*`, `QUOTA_*`, `PASSWORD_HASH_*`, `TRUSTED_PROXIES`: what one
//! client, account or team may do how often.

use std::time::Duration;

use anyhow::{Context, bail};

use super::env::Env;

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

/// What one client, account or team may do how often.
#[derive(Debug, Clone)]
pub struct AbuseSettings {
    /// `RATE_LIMIT_LOGIN_PER_EMAIL`: sign-in attempts per account
    /// (default `10/15m`).
    pub login_per_email: Limit,
    /// `RATE_LIMIT_LOGIN_PER_ADDRESS`: sign-in attempts per client address
    /// (default `100/15m`).
    pub login_per_address: Limit,
    /// `RATE_LIMIT_SIGNUP_PER_ADDRESS`: new teams per client address
    /// (default `20/1h`).
    pub signup_per_address: Limit,
    /// `QUOTA_RESUMES_PER_TEAM`: `generateResume` calls per team
    /// (default `500/1d`).
    pub resumes_per_team: Limit,
    /// `QUOTA_MAILS_PER_TEAM`: mails sent for a team (default `1000/1d`).
    pub mails_per_team: Limit,
    /// `PASSWORD_HASH_CONCURRENCY`: password hashes computed at once
    /// (default: the number of CPUs); each takes ~19 MiB.
    pub hash_concurrency: usize,
    /// `PASSWORD_HASH_WAIT_MS`: how long a sign-in waits for a hashing slot
    /// before it is answered 503 (default 2000).
    pub hash_wait: Duration,
    /// `TRUSTED_PROXIES`: addresses or CIDR ranges of proxies whose
    /// `X-Forwarded-For` is believed (default none: the socket's address).
    pub trusted_proxies: Vec<Cidr>,
}

impl Default for AbuseSettings {
    fn default() -> Self {
        Self {
            login_per_email: Limit::new(10, 15 * 60),
            login_per_address: Limit::new(100, 15 * 60),
            signup_per_address: Limit::new(20, 3600),
            resumes_per_team: Limit::new(500, 86_400),
            mails_per_team: Limit::new(1000, 86_400),
            hash_concurrency: std::thread::available_parallelism().map_or(2, |n| n.get()),
            hash_wait: Duration::from_secs(2),
            trusted_proxies: Vec::new(),
        }
    }
}

/// An address range (`10.0.0.0/8`, `::1`, `192.168.1.7`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: std::net::IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn parse(raw: &str) -> anyhow::Result<Self> {
        let (addr, prefix) = match raw.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (raw.trim(), None),
        };
        let addr: std::net::IpAddr = addr
            .parse()
            .with_context(|| format!("`{raw}` is not an address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .with_context(|| format!("`{raw}` has a bad prefix length"))?,
            None => max,
        };
        Ok(Self { addr, prefix })
    }

    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        use std::net::IpAddr;
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl AbuseSettings {
    pub(super) fn read(&mut self, env: &Env) -> anyhow::Result<()> {
        for (name, slot) in [
            ("RATE_LIMIT_LOGIN_PER_EMAIL", &mut self.login_per_email),
            ("RATE_LIMIT_LOGIN_PER_ADDRESS", &mut self.login_per_address),
            (
                "RATE_LIMIT_SIGNUP_PER_ADDRESS",
                &mut self.signup_per_address,
            ),
            ("QUOTA_RESUMES_PER_TEAM", &mut self.resumes_per_team),
            ("QUOTA_MAILS_PER_TEAM", &mut self.mails_per_team),
        ] {
            if let Some(v) = env.get(name) {
                *slot = Limit::parse(&v).with_context(|| format!("{name}: `{v}`"))?;
            }
        }
        if let Some(n) = env.range("PASSWORD_HASH_CONCURRENCY", 1usize, 256)? {
            self.hash_concurrency = n;
        }
        if let Some(d) = env.millis("PASSWORD_HASH_WAIT_MS", 0, 60_000)? {
            self.hash_wait = d;
        }
        if let Some(v) = env.get("TRUSTED_PROXIES") {
            self.trusted_proxies = v
                .split(',')
                .filter(|p| !p.trim().is_empty())
                .map(Cidr::parse)
                .collect::<anyhow::Result<_>>()
                .context("TRUSTED_PROXIES")?;
        }
        Ok(())
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
