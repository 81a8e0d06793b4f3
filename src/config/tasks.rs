//! `WORKER_CONCURRENCY`, `TASK_*`, `LOG_RETENTION_*`, `SHUTDOWN_GRACE_SECS`,
//! `CACHE_REFRESH_DELAY_MS`: the background workers and their schedule.

use std::time::Duration;

use super::env::Env;

/// Worker and schedule settings (see the README's configuration table).
#[derive(Debug, Clone)]
pub struct TaskSettings {
    /// `WORKER_CONCURRENCY` (default 4; 0 runs no workers in this process).
    pub concurrency: usize,
    /// `TASK_POLL_MS` (default 500): how often idle workers look for work
    /// enqueued by other replicas (local writes wake them at once).
    pub poll: Duration,
    /// `TASK_LEASE_SECS` (default 300): how long a claim lasts; a task whose
    /// worker died is claimed again after it.
    pub lease: Duration,
    /// `TASK_MAX_ATTEMPTS` (default 5).
    pub max_attempts: i32,
    /// `TASK_BACKOFF_MS` (default 2000): the first retry delay, doubled per
    /// attempt up to five minutes.
    pub backoff: Duration,
    /// `SHUTDOWN_GRACE_SECS` (default 20): the one shutdown deadline: in-flight
    /// requests and running tasks may finish within it; then connections are
    /// closed and unfinished tasks handed back to the queue.
    pub shutdown_grace: Duration,
    /// `LOG_RETENTION_DAYS` (default 90).
    pub retention_days: i64,
    /// `LOG_RETENTION_INTERVAL_SECS` (default 3600).
    pub retention_interval: Duration,
    /// `CACHE_REFRESH_DELAY_MS` (default 50): writes within this window
    /// share one refresh of the team's recent reads.
    pub refresh_delay: Duration,
}

impl Default for TaskSettings {
    fn default() -> Self {
        Self {
            concurrency: 4,
            poll: Duration::from_millis(500),
            lease: Duration::from_secs(300),
            max_attempts: 5,
            backoff: Duration::from_secs(2),
            shutdown_grace: Duration::from_secs(20),
            retention_days: 90,
            retention_interval: Duration::from_secs(3600),
            refresh_delay: Duration::from_millis(50),
        }
    }
}

impl TaskSettings {
    pub(super) fn read(&mut self, env: &Env) -> anyhow::Result<()> {
        if let Some(n) = env.range("WORKER_CONCURRENCY", 0usize, 256)? {
            self.concurrency = n;
        }
        if let Some(d) = env.millis("TASK_POLL_MS", 10, 60_000)? {
            self.poll = d;
        }
        if let Some(d) = env.secs("TASK_LEASE_SECS", 1, 86_400)? {
            self.lease = d;
        }
        if let Some(n) = env.range("TASK_MAX_ATTEMPTS", 1i32, 100)? {
            self.max_attempts = n;
        }
        if let Some(d) = env.millis("TASK_BACKOFF_MS", 1, 3_600_000)? {
            self.backoff = d;
        }
        if let Some(d) = env.secs("SHUTDOWN_GRACE_SECS", 0, 3600)? {
            self.shutdown_grace = d;
        }
        if let Some(n) = env.range("LOG_RETENTION_DAYS", 1i64, 36_500)? {
            self.retention_days = n;
        }
        if let Some(d) = env.secs("LOG_RETENTION_INTERVAL_SECS", 1, 604_800)? {
            self.retention_interval = d;
        }
        if let Some(d) = env.millis("CACHE_REFRESH_DELAY_MS", 0, 600_000)? {
            self.refresh_delay = d;
        }
        Ok(())
    }
}
