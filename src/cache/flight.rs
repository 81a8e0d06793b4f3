//! Single-flight: concurrent misses for the same entry *and the same
//! generations* share one execution. Requests that saw different
//! generations never share (a reader that started after a write must not
//! receive an answer computed before it). A finished flight stays joinable
//! for a moment: a request whose lookup raced the leader's store still
//! saw the same generations, so the leader's answer is as fresh as its own.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use std::time::Duration;

use tokio::sync::OnceCell;

/// How long a finished flight can still be joined.
const GRACE: Duration = Duration::from_millis(500);

use super::Computed;

/// The key of a flight: the entry key and the generations it was read under.
pub fn key(entry_key: &str, generations: &[u64]) -> u128 {
    let mut bytes = Vec::with_capacity(entry_key.len() + generations.len() * 8);
    bytes.extend_from_slice(entry_key.as_bytes());
    for g in generations {
        bytes.extend_from_slice(&g.to_le_bytes());
    }
    xxhash_rust::xxh3::xxh3_128(&bytes)
}

type Cell = Arc<OnceCell<Arc<Computed>>>;

/// Flights in progress.
#[derive(Default)]
pub struct Flights {
    running: Arc<Mutex<HashMap<u128, Cell>>>,
}

impl Flights {
    /// Runs `compute` unless a flight with this key is already running, in
    /// which case its result is shared. Returns the result and whether this
    /// call was the one that computed it.
    pub async fn run<F, Fut>(&self, key: u128, compute: F) -> (Arc<Computed>, bool)
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Computed>,
    {
        let cell = match self.running.lock() {
            Ok(mut running) => Arc::clone(running.entry(key).or_default()),
            // A poisoned map only loses coalescing, never correctness.
            Err(_) => Arc::new(OnceCell::new()),
        };
        let mut led = false;
        let computed = cell
            .get_or_init(|| {
                led = true;
                async move { Arc::new(compute().await) }
            })
            .await
            .clone();
        if led {
            let running = Arc::clone(&self.running);
            tokio::spawn(async move {
                tokio::time::sleep(GRACE).await;
                if let Ok(mut running) = running.lock()
                    && running.get(&key).is_some_and(|c| Arc::ptr_eq(c, &cell))
                {
                    running.remove(&key);
                }
            });
        }
        (computed, led)
    }
}

#[cfg(test)]
mod tests {
    use std::{
        sync::atomic::{AtomicUsize, Ordering},
        time::Duration,
    };

    use bytes::Bytes;

    use super::*;

    #[tokio::test]
    async fn concurrent_calls_share_one_computation() {
        let flights = Arc::new(Flights::default());
        let runs = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..100 {
            let flights = Arc::clone(&flights);
            let runs = Arc::clone(&runs);
            tasks.push(tokio::spawn(async move {
                flights
                    .run(7, || async {
                        runs.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Computed {
                            status: 200,
                            body: Bytes::from_static(b"x"),
                            cacheable: true,
                            validator: None,
                        }
                    })
                    .await
            }));
        }
        let mut leaders = 0;
        for task in tasks {
            let (computed, led) = task.await.unwrap();
            assert_eq!(computed.body, "x");
            leaders += led as usize;
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(leaders, 1);
        tokio::time::sleep(GRACE * 2).await;
        assert!(flights.running.lock().unwrap().is_empty());
    }

    #[test]
    fn different_generations_make_different_flights() {
        assert_ne!(key("k", &[1]), key("k", &[2]));
        assert_eq!(key("k", &[1, 2]), key("k", &[1, 2]));
    }
}
