//! `REQUEST_TIMEOUT_MS` and friends: timeouts and back-pressure of the HTTP
//! server.

use std::time::Duration;

use super::env::Env;

/// Timeouts and back-pressure: no client can hold the server's resources
/// for long, and excess load is refused quickly instead of queued.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// `REQUEST_TIMEOUT_MS`: longest a GraphQL request may run; then 504
    /// (default 15000).
    pub request_timeout: Duration,
    /// `BODY_READ_TIMEOUT_MS`: longest a request body may take to arrive;
    /// then 408 (default 10000).
    pub body_read_timeout: Duration,
    /// `HEADER_READ_TIMEOUT_MS`: longest the request line and headers may
    /// take; then the connection is closed (default 10000).
    pub header_read_timeout: Duration,
    /// `MAX_IN_FLIGHT_REQUESTS`: GraphQL requests running at once (default
    /// 512); one more waits at most `IN_FLIGHT_WAIT_MS` for a slot, then is
    /// answered 503.
    pub max_in_flight: usize,
    /// `IN_FLIGHT_WAIT_MS`: how long a request beyond the limit may wait,
    /// which absorbs a burst without queueing without bound (default 1000).
    pub in_flight_wait: Duration,
    /// `MAX_CONNECTIONS`: open client connections; more wait in the
    /// kernel's accept queue (default 4096).
    pub max_connections: usize,
    /// `CORS_ALLOWED_ORIGINS`: comma-separated origins (`https://app.example.com`)
    /// whose pages may call the API from a browser, with credentials
    /// (default none: no cross-origin access at all).
    pub cors_allowed_origins: Vec<String>,
    /// `COMPRESSION_MIN_BYTES`: answers at least this large are compressed
    /// (zstd, brotli or gzip, as `Accept-Encoding` allows); 0 turns
    /// compression off (default 1024: smaller bodies gain little).
    pub compression_min_bytes: usize,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(15),
            body_read_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(10),
            max_in_flight: 512,
            in_flight_wait: Duration::from_secs(1),
            max_connections: 4096,
            cors_allowed_origins: Vec::new(),
            compression_min_bytes: 1024,
        }
    }
}

impl HttpSettings {
    pub(super) fn read(&mut self, env: &Env) -> anyhow::Result<()> {
        for (name, slot, min) in [
            ("REQUEST_TIMEOUT_MS", &mut self.request_timeout, 100),
            ("BODY_READ_TIMEOUT_MS", &mut self.body_read_timeout, 100),
            ("HEADER_READ_TIMEOUT_MS", &mut self.header_read_timeout, 100),
            ("IN_FLIGHT_WAIT_MS", &mut self.in_flight_wait, 0),
        ] {
            if let Some(d) = env.millis(name, min, 3_600_000)? {
                *slot = d;
            }
        }
        if let Some(n) = env.range("MAX_IN_FLIGHT_REQUESTS", 1usize, 1_000_000)? {
            self.max_in_flight = n;
        }
        if let Some(n) = env.range("MAX_CONNECTIONS", 1usize, 1_000_000)? {
            self.max_connections = n;
        }
        if let Some(n) = env.range("COMPRESSION_MIN_BYTES", 0usize, 1 << 30)? {
            self.compression_min_bytes = n;
        }
        if let Some(v) = env.get("CORS_ALLOWED_ORIGINS") {
            self.cors_allowed_origins = parse_origins(&v)?;
        }
        Ok(())
    }
}

/// `scheme://host[:port]`, as a browser sends it in `Origin`: no path, no
/// wildcard (a wildcard with credentials is what CORS exists to prevent).
fn parse_origins(value: &str) -> anyhow::Result<Vec<String>> {
    let mut origins = Vec::new();
    for origin in value.split(',').map(str::trim).filter(|o| !o.is_empty()) {
        let rest = origin
            .strip_prefix("https://")
            .or_else(|| origin.strip_prefix("http://"));
        let valid = rest.is_some_and(|host| {
            !host.is_empty()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
        });
        if !valid {
            anyhow::bail!(
                "CORS_ALLOWED_ORIGINS: {origin:?} is not an origin like https://app.example.com \
                 (scheme and host, optional port, no path, no wildcard)"
            );
        }
        origins.push(origin.to_ascii_lowercase());
    }
    Ok(origins)
}

#[cfg(test)]
mod tests {
    use super::parse_origins;

    #[test]
    fn origins_are_scheme_and_host_only() {
        assert_eq!(
            parse_origins(" https://app.example.com, http://localhost:5173 ,").unwrap(),
            ["https://app.example.com", "http://localhost:5173"]
        );
        for bad in [
            "*",
            "app.example.com",
            "https://a.com/path",
            "https://*.a.com",
            "https://",
        ] {
            assert!(parse_origins(bad).is_err(), "{bad}");
        }
    }
}
