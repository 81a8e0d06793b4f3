//! Faults under load: PostgreSQL stopped and started again, Redis killed,
//! SIGTERM in the middle of writes. Clean 503s while the database is away,
//! recovery without a restart, no failed request for a cache outage, a
//! bounded shutdown, and every acknowledged write present afterwards.

use crate::common;

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use crate::common::TestApp;
use serde_json::{Value, json};

const CREATE: &str =
    "mutation($t: String!) { createJob(input: { title: $t, company: \"Load\" }) { id } }";
const LIST: &str = "{ jobs(first: 5) { totalCount nodes { id title } } }";

/// What the load saw: every status, and the jobs whose creation was
/// acknowledged.
#[derive(Default)]
struct Seen {
    statuses: Vec<Status>,
    acknowledged: Vec<String>,
}

fn record(seen: &Mutex<Seen>, started: Instant, status: u16, code: String, created: Option<Value>) {
    let mut seen = seen.lock().unwrap();
    if let Some(value) = created
        && code.is_empty()
    {
        seen.acknowledged.push(
            value["data"]["createJob"]["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    seen.statuses.push((started, status, code));
}

/// When a request was sent, and how it was answered.
type Status = (Instant, u16, String);

/// Waits (polling, at most `secs`) until what the load saw satisfies `done`.
async fn until(seen: &Mutex<Seen>, secs: u64, what: &str, done: impl Fn(&[Status]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if done(&seen.lock().unwrap().statuses) {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Requests sent after `at` and answered.
fn sent_after(statuses: &[Status], at: Instant) -> impl Iterator<Item = &Status> {
    statuses.iter().filter(move |(sent, ..)| *sent > at)
}

fn snapshot(seen: &Mutex<Seen>) -> (Vec<Status>, Vec<String>) {
    let seen = seen.lock().unwrap();
    (seen.statuses.clone(), seen.acknowledged.clone())
}

/// Writers and readers hitting `url` until `stop` is set.
fn load(
    url: String,
    token: String,
    workers: usize,
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Seen>>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..workers)
        .map(|w| {
            let (url, token, stop, seen) = (
                url.clone(),
                token.clone(),
                Arc::clone(&stop),
                Arc::clone(&seen),
            );
            tokio::spawn(async move {
                let client = reqwest::Client::builder()
                    .timeout(Duration::from_secs(10))
                    .build()
                    .unwrap();
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let title = format!("w{w}-{n}");
                    let body = if n % 2 == 0 {
                        json!({ "query": CREATE, "variables": { "t": title } })
                    } else {
                        json!({ "query": LIST })
                    };
                    let started = Instant::now();
                    let sent = client
                        .post(&url)
                        .bearer_auth(&token)
                        .json(&body)
                        .send()
                        .await;
                    let (status, value) = match sent {
                        Ok(res) => (
                            res.status().as_u16(),
                            res.json::<Value>().await.unwrap_or(Value::Null),
                        ),
                        // The server going away (SIGTERM) is the only way here.
                        Err(_) => (0, Value::Null),
                    };
                    let code = value["errors"][0]["extensions"]["code"]
                        .as_str()
                        .unwrap_or("")
                        .to_owned();
                    record(
                        &seen,
                        started,
                        status,
                        code,
                        (status == 200 && n % 2 == 0).then_some(value),
                    );
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
        })
        .collect()
}

/// Jobs of the caller's team that exist now, by id.
async fn existing(app: &TestApp, token: &str) -> std::collections::HashSet<String> {
    let mut ids = std::collections::HashSet::new();
    let mut after: Option<String> = None;
    loop {
        let data = app
            .ok(token, "query($a: String) { jobs(first: 100, after: $a) { nodes { id } pageInfo { hasNextPage endCursor } } }", json!({ "a": after }))
            .await;
        for node in data["jobs"]["nodes"].as_array().unwrap() {
            ids.insert(node["id"].as_str().unwrap().to_owned());
        }
        if data["jobs"]["pageInfo"]["hasNextPage"] != true {
            return ids;
        }
        after = data["jobs"]["pageInfo"]["endCursor"]
            .as_str()
            .map(str::to_owned);
    }
}

#[tokio::test]
async fn a_postgresql_outage_is_answered_503_and_recovered_from_without_a_restart() {
    let mut pg = common::postgres::PgServer::start();
    let url = pg.url();
    let app = TestApp::spawn_with(move |c| {
        c.database.url = jobgraph::secret::Secret::new(url);
        c.database.schema = None;
        c.database.max_connections = Some(8);
        c.database.acquire_timeout = Duration::from_millis(500);
    })
    .await;
    let (token, _) = app.signup("Acme", "ada@example.com").await;
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(Seen::default()));
    let workers = load(
        app.url("/graphql"),
        token.clone(),
        6,
        Arc::clone(&stop),
        Arc::clone(&seen),
    );
    until(&seen, 20, "the load to be under way", |s| s.len() >= 20).await;
    pg.stop();
    let down_at = Instant::now();
    until(&seen, 20, "the outage to be answered 503", |s| {
        sent_after(s, down_at)
            .filter(|(_, st, _)| *st == 503)
            .count()
            >= 10
    })
    .await;
    pg.restart();
    let up_at = Instant::now();
    until(&seen, 30, "a request to succeed after the restart", |s| {
        sent_after(s, up_at).any(|(_, st, _)| *st == 200)
    })
    .await;
    let recovered_at = Instant::now();
    until(&seen, 30, "the load to go on after recovery", |s| {
        sent_after(s, recovered_at).count() >= 40
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    let (statuses, acknowledged) = snapshot(&seen);
    let unexpected: Vec<_> = statuses
        .iter()
        .filter(|(_, status, code)| {
            !(*status == 200 && code.is_empty() || *status == 503 && code == "SERVICE_UNAVAILABLE")
        })
        .collect();
    assert!(
        unexpected.is_empty(),
        "only clean 503s while the database is away: {unexpected:?}"
    );
    let outage = statuses.iter().filter(|(_, s, _)| *s == 503).count();
    assert!(outage > 0, "the outage was seen");
    // Recovered for good: once one request succeeded after the restart,
    // every request sent afterwards succeeded.
    let late_failures: Vec<_> = sent_after(&statuses, recovered_at)
        .filter(|(_, s, _)| *s != 200)
        .collect();
    assert!(
        late_failures.is_empty(),
        "recovery without a restart: {late_failures:?}"
    );
    let present = existing(&app, &token).await;
    let lost: Vec<_> = acknowledged
        .iter()
        .filter(|id| !present.contains(*id))
        .collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged writes lost: {lost:?}",
        lost.len()
    );
    assert!(acknowledged.len() > 10);
    println!(
        "PostgreSQL outage: {outage} clean 503s, {} writes acknowledged, 0 lost",
        acknowledged.len()
    );
}

#[tokio::test]
async fn a_redis_outage_under_load_fails_no_request() {
    let mut redis = common::redis::RedisServer::start();
    let url = redis.url();
    let app = TestApp::spawn_with(move |c| {
        c.cache.redis_url = Some(jobgraph::secret::Secret::new(url));
    })
    .await;
    let (token, _) = app.signup("Acme", "ada@example.com").await;
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(Seen::default()));
    let workers = load(
        app.url("/graphql"),
        token.clone(),
        6,
        Arc::clone(&stop),
        Arc::clone(&seen),
    );
    until(&seen, 20, "the load to be under way", |s| s.len() >= 20).await;
    let mut redis = tokio::task::spawn_blocking(move || {
        redis.stop();
        redis
    })
    .await
    .unwrap();
    app.eventually(20, "the cache to report itself degraded", || async {
        app.metric("jobgraph_cache_degraded").await == 1.0
    })
    .await;
    let down_at = Instant::now();
    until(&seen, 20, "requests during the outage", |s| {
        sent_after(s, down_at).count() >= 40
    })
    .await;
    let _redis = tokio::task::spawn_blocking(move || {
        redis.restart();
        redis
    })
    .await
    .unwrap();
    app.eventually(20, "the cache to recover", || async {
        app.metric("jobgraph_cache_degraded").await == 0.0
    })
    .await;
    let up_at = Instant::now();
    until(&seen, 20, "requests after the outage", |s| {
        sent_after(s, up_at).count() >= 40
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    let (statuses, acknowledged) = snapshot(&seen);
    let failed: Vec<_> = statuses
        .iter()
        .filter(|(_, status, code)| *status != 200 || !code.is_empty())
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} requests failed: {failed:?}",
        failed.len(),
        statuses.len()
    );
    assert!(statuses.len() > 50);
    let present = existing(&app, &token).await;
    assert!(acknowledged.iter().all(|id| present.contains(id)));
    println!(
        "Redis outage: 0 failed requests, {} writes acknowledged, 0 lost",
        acknowledged.len()
    );
}
