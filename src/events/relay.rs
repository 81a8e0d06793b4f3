//! Events between replicas: `SPUBLISH` of every committed event on its
//! team's sharded channel (`<prefix>:{t<team>}:live`: the hash tag puts it
//! on the shard of the team's cache keys on Redis Cluster), and a
//! subscriber connection that listens to the channels of the teams this
//! replica has subscribers for. A replica hands its own events to its own
//! subscribers directly and ignores their echo; Redis being down costs
//! other replicas' subscribers those events, never a write.

use std::{collections::BTreeSet, sync::Arc, time::Duration};

use bytes::Bytes;
use fred::{
    clients::SubscriberClient,
    prelude::{
        ClientLike, Config as RedisConfig, EventInterface, PubsubInterface, ReconnectPolicy,
    },
};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::{
    Event,
    hub::{Hub, Interest},
};
use crate::cache::store::Store;

/// Events waiting to be published; beyond this, events are dropped (and
/// counted in the log) rather than queued without bound while Redis is slow.
const OUTBOX: usize = 10_000;

/// Where the relay connects.
pub struct RelayConfig {
    pub redis_url: String,
    pub key_prefix: String,
    /// The cache's store: events are published through its pool.
    pub store: Store,
}

/// On the wire: the publishing replica and the event.
#[derive(Deserialize)]
struct Envelope {
    origin: u64,
    event: Event,
}

/// [`Envelope`] as it is sent (the event borrowed, not copied).
#[derive(Serialize)]
struct Outgoing<'a> {
    origin: u64,
    event: &'a Event,
}

#[derive(Clone)]
pub struct Relay {
    outbox: mpsc::Sender<Arc<Event>>,
    /// The subscriber connection (its state, for `/ready`).
    listener: SubscriberClient,
}

impl Relay {
    /// Connects in the background (Redis down at start-up is not a failed
    /// start) and hands what arrives to `hub`.
    pub fn start(config: RelayConfig, hub: Arc<Hub>) -> anyhow::Result<Self> {
        let mut redis = RedisConfig::from_url(&config.redis_url)?;
        redis.fail_fast = false;
        let client = fred::types::Builder::from_config(redis)
            .with_connection_config(|c| {
                c.connection_timeout = Duration::from_secs(2);
                c.internal_command_timeout = Duration::from_secs(2);
            })
            .set_policy(ReconnectPolicy::new_exponential(0, 50, 2_000, 2))
            .build_subscriber_client()?;
        let origin = rand::random::<u64>();
        let (outbox, pending) = mpsc::channel(OUTBOX);
        let channels = Channels {
            prefix: config.key_prefix,
        };
        tokio::spawn(publish(pending, config.store, channels.clone(), origin));
        tokio::spawn(listen(client.clone(), hub, channels, origin));
        Ok(Self {
            outbox,
            listener: client,
        })
    }

    /// Queues an event for the other replicas.
    pub fn send(&self, event: Arc<Event>) {
        if self.outbox.try_send(event).is_err() {
            tracing::warn!("live events are not reaching Redis fast enough: one was dropped");
        }
    }

    /// Whether the subscriber connection is up (for `/ready`).
    pub fn is_up(&self) -> bool {
        self.listener.is_connected()
    }
}

#[derive(Clone)]
struct Channels {
    prefix: String,
}

impl Channels {
    fn of(&self, team_id: i64) -> String {
        format!("{}:{{t{team_id}}}:live", self.prefix)
    }
}

async fn publish(
    mut pending: mpsc::Receiver<Arc<Event>>,
    store: Store,
    channels: Channels,
    origin: u64,
) {
    while let Some(event) = pending.recv().await {
        let envelope = Outgoing {
            origin,
            event: &event,
        };
        let Ok(payload) = serde_json::to_vec(&envelope) else {
            continue;
        };
        let channel = channels.of(event.team_id());
        if let Err(error) = store.spublish(channel, Bytes::from(payload)).await {
            tracing::debug!(%error, "publishing a live event to Redis failed");
        }
    }
}

/// Keeps the subscriber connection listening to the teams the hub wants
/// (again after every reconnection) and hands what arrives to the hub.
async fn listen(client: SubscriberClient, hub: Arc<Hub>, channels: Channels, origin: u64) {
    let (tx, mut interest) = mpsc::unbounded_channel();
    let mut wanted: BTreeSet<i64> = hub.watch_interest(tx).into_iter().collect();
    let mut messages = client.message_rx();
    let mut reconnects = client.reconnect_rx();
    let _connection = client.connect();
    if client.wait_for_connect().await.is_ok() {
        for team in &wanted {
            subscribe(&client, &channels, *team).await;
        }
    }
    let mut errors = client.error_rx();
    loop {
        tokio::select! {
            change = interest.recv() => match change {
                Some(Interest::Listen(team)) => {
                    wanted.insert(team);
                    subscribe(&client, &channels, team).await;
                }
                Some(Interest::Stop(team)) => {
                    wanted.remove(&team);
                    if let Err(error) = client.sunsubscribe(channels.of(team)).await {
                        tracing::debug!(%error, team, "leaving a team's live channel failed");
                    }
                }
                None => break,
            },
            reconnected = reconnects.recv() => {
                if reconnected.is_err() {
                    continue;
                }
                for team in &wanted {
                    subscribe(&client, &channels, *team).await;
                }
            }
            error = errors.recv() => {
                if let Ok((error, _)) = error {
                    tracing::warn!(%error, "live events: Redis subscriber connection error");
                }
            }
            message = messages.recv() => {
                let message = match message {
                    Ok(message) => message,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "live events from Redis arrived faster than handled");
                        continue;
                    }
                    Err(_) => break,
                };
                let Some(bytes) = message.value.as_bytes() else { continue };
                match serde_json::from_slice::<Envelope>(bytes) {
                    Ok(envelope) if envelope.origin != origin => {
                        hub.dispatch(&Arc::new(envelope.event));
                    }
                    Ok(_) => {}
                    Err(error) => tracing::debug!(%error, "an unreadable live event was ignored"),
                }
            }
        }
    }
}

async fn subscribe(client: &SubscriberClient, channels: &Channels, team: i64) {
    if let Err(error) = client.ssubscribe(channels.of(team)).await {
        // Retried at the next reconnection.
        tracing::warn!(%error, team, "listening to a team's live channel failed");
    }
}
