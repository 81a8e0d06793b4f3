//! The in-process fan-out: one bounded broadcast per team with
//! subscribers. The first subscriber of a team makes the relay listen to
//! the team's channel, the last one leaving stops it.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use tokio::sync::{broadcast, mpsc};

use super::Event;

/// Events buffered per team for its slowest subscriber.
pub const DEFAULT_BUFFER: usize = 256;

/// What the relay is asked to listen to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interest {
    Listen(i64),
    Stop(i64),
}

/// Per-team broadcasts.
pub struct Hub {
    teams: Mutex<HashMap<i64, broadcast::Sender<Arc<Event>>>>,
    buffer: usize,
    interest: Mutex<Option<mpsc::UnboundedSender<Interest>>>,
}

impl Hub {
    /// `buffer` events per team: how far its slowest subscriber may lag.
    pub fn new(buffer: usize) -> Arc<Self> {
        Arc::new(Self {
            teams: Mutex::new(HashMap::new()),
            buffer: buffer.max(1),
            interest: Mutex::new(None),
        })
    }

    /// Where changes of interest go (the relay); returns the teams already
    /// listened to, so a relay (re)starting can subscribe to them.
    pub fn watch_interest(&self, tx: mpsc::UnboundedSender<Interest>) -> Vec<i64> {
        let teams = self.teams.lock().unwrap_or_else(|e| e.into_inner());
        if let Ok(mut slot) = self.interest.lock() {
            *slot = Some(tx);
        }
        teams.keys().copied().collect()
    }

    fn tell(&self, interest: Interest) {
        if let Ok(slot) = self.interest.lock()
            && let Some(tx) = slot.as_ref()
        {
            let _ = tx.send(interest);
        }
    }

    /// Hands an event to the team's subscribers on this replica.
    pub fn dispatch(&self, event: &Arc<Event>) {
        let teams = self.teams.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(tx) = teams.get(&event.team_id()) {
            let _ = tx.send(Arc::clone(event));
        }
    }

    /// The team's events from now on; the first subscriber of a team makes
    /// the relay listen to it.
    pub fn subscribe(self: &Arc<Self>, team_id: i64) -> TeamEvents {
        let mut teams = self.teams.lock().unwrap_or_else(|e| e.into_inner());
        let rx = match teams.get(&team_id) {
            Some(tx) => tx.subscribe(),
            None => {
                let (tx, rx) = broadcast::channel(self.buffer);
                teams.insert(team_id, tx);
                self.tell(Interest::Listen(team_id));
                rx
            }
        };
        TeamEvents {
            rx: Some(rx),
            hub: Arc::clone(self),
            team_id,
        }
    }

    fn leave(&self, team_id: i64) {
        let mut teams = self.teams.lock().unwrap_or_else(|e| e.into_inner());
        if teams
            .get(&team_id)
            .is_some_and(|tx| tx.receiver_count() == 0)
        {
            teams.remove(&team_id);
            self.tell(Interest::Stop(team_id));
        }
    }

    /// Teams with subscribers here (for metrics and tests).
    pub fn teams(&self) -> usize {
        self.teams.lock().map_or(0, |t| t.len())
    }
}

/// Why a subscriber gets no more events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// It fell more than the buffer behind: `missed` events are lost.
    Lagged { missed: u64 },
    /// The bus is gone (shutdown).
    Closed,
}

/// One subscriber's view of its team's events.
pub struct TeamEvents {
    rx: Option<broadcast::Receiver<Arc<Event>>>,
    hub: Arc<Hub>,
    team_id: i64,
}

impl TeamEvents {
    /// The team listened to (each event is checked against it again).
    pub fn team_id(&self) -> i64 {
        self.team_id
    }

    /// The next event, or why there will be none.
    pub async fn next(&mut self) -> Result<Arc<Event>, Ended> {
        let Some(rx) = self.rx.as_mut() else {
            return Err(Ended::Closed);
        };
        match rx.recv().await {
            Ok(event) => Ok(event),
            Err(broadcast::error::RecvError::Lagged(missed)) => Err(Ended::Lagged { missed }),
            Err(broadcast::error::RecvError::Closed) => Err(Ended::Closed),
        }
    }
}

impl Drop for TeamEvents {
    fn drop(&mut self) {
        drop(self.rx.take());
        self.hub.leave(self.team_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(team_id: i64, job_id: i64) -> Arc<Event> {
        Arc::new(Event::Job {
            team_id,
            job_id,
            change: super::super::JobChange::Created,
            status: None,
        })
    }

    #[tokio::test]
    async fn a_subscriber_gets_its_teams_events_only_and_the_relay_follows_interest() {
        let hub = Hub::new(4);
        let (tx, mut interest) = mpsc::unbounded_channel();
        assert!(hub.watch_interest(tx).is_empty());
        let mut one = hub.subscribe(1);
        let mut also_one = hub.subscribe(1);
        let mut two = hub.subscribe(2);
        assert_eq!(interest.recv().await, Some(Interest::Listen(1)));
        assert_eq!(interest.recv().await, Some(Interest::Listen(2)));
        hub.dispatch(&job(2, 20));
        hub.dispatch(&job(1, 10));
        assert_eq!(one.next().await.unwrap(), job(1, 10));
        assert_eq!(also_one.next().await.unwrap(), job(1, 10));
        assert_eq!(two.next().await.unwrap(), job(2, 20));
        drop(one);
        assert_eq!(hub.teams(), 2, "team 1 still has a subscriber");
        drop(also_one);
        assert_eq!(interest.recv().await, Some(Interest::Stop(1)));
        assert_eq!(hub.teams(), 1);
    }

    #[tokio::test]
    async fn a_subscriber_further_behind_than_the_buffer_is_told_so() {
        let hub = Hub::new(4);
        let mut slow = hub.subscribe(1);
        for id in 0..10 {
            hub.dispatch(&job(1, id));
        }
        assert_eq!(slow.next().await, Err(Ended::Lagged { missed: 6 }));
    }
}
