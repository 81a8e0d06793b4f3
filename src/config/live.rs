//! `SUBSCRIPTION_*` and `WS_*`: what a subscriber may hold open and how
//! long a quiet or slow one is kept.

use std::time::Duration;

use super::env::Env;

/// Limits and timers of subscriptions (WebSocket and SSE).
#[derive(Debug, Clone)]
pub struct LiveSettings {
    /// `SUBSCRIPTIONS_PER_CONNECTION`: operations one WebSocket may run at
    /// once (default 32).
    pub max_per_connection: usize,
    /// `SUBSCRIPTION_CONNECTIONS_PER_USER`: WebSockets and SSE streams one
    /// user may hold open on one replica (default 8).
    pub max_connections_per_user: usize,
    /// `SUBSCRIPTION_BUFFER_EVENTS`: events kept per team for its slowest
    /// subscriber; one further behind is disconnected (default 256).
    pub buffer_events: usize,
    /// `SUBSCRIPTION_SEND_TIMEOUT_MS`: longest one message may wait for the
    /// client to take it; then the connection is closed (default 10000).
    pub send_timeout: Duration,
    /// `WS_CONNECTION_INIT_TIMEOUT_MS`: time to send `connection_init`
    /// (default 10000).
    pub init_timeout: Duration,
    /// `WS_PING_INTERVAL_MS`: how often the server pings a WebSocket and
    /// sends an SSE keep-alive comment (default 15000).
    pub ping_interval: Duration,
    /// `WS_IDLE_TIMEOUT_MS`: a WebSocket from which nothing (not even a
    /// pong) arrives this long is closed (default 60000).
    pub idle_timeout: Duration,
}

impl Default for LiveSettings {
    fn default() -> Self {
        Self {
            max_per_connection: 32,
            max_connections_per_user: 8,
            buffer_events: 256,
            send_timeout: Duration::from_secs(10),
            init_timeout: Duration::from_secs(10),
            ping_interval: Duration::from_secs(15),
            idle_timeout: Duration::from_secs(60),
        }
    }
}

impl LiveSettings {
    pub(super) fn read(&mut self, env: &Env) -> anyhow::Result<()> {
        if let Some(n) = env.range("SUBSCRIPTIONS_PER_CONNECTION", 1usize, 10_000)? {
            self.max_per_connection = n;
        }
        if let Some(n) = env.range("SUBSCRIPTION_CONNECTIONS_PER_USER", 1usize, 10_000)? {
            self.max_connections_per_user = n;
        }
        if let Some(n) = env.range("SUBSCRIPTION_BUFFER_EVENTS", 1usize, 1_000_000)? {
            self.buffer_events = n;
        }
        for (name, slot, min) in [
            ("SUBSCRIPTION_SEND_TIMEOUT_MS", &mut self.send_timeout, 100),
            ("WS_CONNECTION_INIT_TIMEOUT_MS", &mut self.init_timeout, 100),
            ("WS_PING_INTERVAL_MS", &mut self.ping_interval, 100),
            ("WS_IDLE_TIMEOUT_MS", &mut self.idle_timeout, 100),
        ] {
            if let Some(d) = env.millis(name, min, 3_600_000)? {
                *slot = d;
            }
        }
        anyhow::ensure!(
            self.idle_timeout > self.ping_interval,
            "WS_IDLE_TIMEOUT_MS must be longer than WS_PING_INTERVAL_MS (a client answering every ping would be cut off)"
        );
        Ok(())
    }
}
