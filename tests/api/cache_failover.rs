//! The cache fails open: with Redis down, unreachable at start, or too slow,
//! every request is answered from the database within the command timeout,
//! and the service reconnects by itself. Each test owns its Redis.

use std::time::{Duration, Instant};

use crate::common::{
    TestApp,
    redis::{RedisServer, free_port},
};
use serde_json::{Value, json};

const QUERY: &str = "{ jobs { totalCount nodes { title } } }";

async fn app_on(url: String) -> TestApp {
    TestApp::spawn_with(move |c| {
        c.cache.redis_url = Some(jobgraph::secret::Secret::new(url));
        c.cache.command_timeout = Duration::from_millis(100);
    })
    .await
}

async fn ready(app: &TestApp) -> Value {
    app.ready().await
}

/// Whether Redis on `port` answers a PING within 100 ms.
fn redis_answers(port: u16) -> bool {
    std::process::Command::new("timeout")
        .args(["0.1", "redis-cli", "-p", &port.to_string(), "ping"])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "PONG")
}

async fn wait_for_cache(app: &TestApp, state: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while ready(app).await["cache"]["state"] != state {
        assert!(Instant::now() < deadline, "the cache never became {state}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn requests_are_served_from_the_database_while_redis_is_down_and_cached_again_after() {
    let mut redis = RedisServer::start();
    let app = app_on(redis.url()).await;
    let (token, _) = app.signup("Failover", "admin@example.com").await;
    let ids = app.create_jobs(&token, "Job", 2).await;
    app.cached(&token, QUERY, json!({})).await;
    assert_eq!(app.cached(&token, QUERY, json!({})).await.0, "HIT");

    redis.stop();
    for i in 0..20 {
        let started = Instant::now();
        let (state, data) = app.cached(&token, QUERY, json!({})).await;
        assert_ne!(state, "HIT");
        assert_eq!(data["jobs"]["totalCount"], 2);
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "request {i} took {:?}",
            started.elapsed()
        );
    }
    // Writes still work, and are read back.
    app.ok(
        &token,
        "mutation($id: ID!) { updateJob(id: $id, input: {title: \"While down\"}) { id } }",
        json!({ "id": ids[0] }),
    )
    .await;
    let (_, data) = app.cached(&token, QUERY, json!({})).await;
    assert!(data.to_string().contains("While down"));
    let r = ready(&app).await;
    assert_eq!(
        (r["status"].as_str(), r["cache"]["state"].as_str()),
        (Some("ready"), Some("degraded")),
        "{r}"
    );
    assert!(
        app.metric("jobgraph_cache_errors_total{kind=\"jobs_list\"}")
            .await
            > 0.0
    );
    app.eventually(5, "/metrics to report the degraded cache", || async {
        app.metric("jobgraph_cache_degraded").await == 1.0
    })
    .await;

    redis.restart();
    wait_for_cache(&app, "ok").await;
    app.eventually(5, "/metrics to report the cache back", || async {
        app.metric("jobgraph_cache_degraded").await == 0.0
    })
    .await;
    // Deferred invalidations landed (degraded includes pending bumps).
    let (first, data) = app.cached(&token, QUERY, json!({})).await;
    assert_eq!(first, "MISS");
    assert!(data.to_string().contains("While down"));
    assert_eq!(app.cached(&token, QUERY, json!({})).await.0, "HIT");
}

#[tokio::test]
async fn a_redis_that_freezes_during_a_write_never_serves_the_old_answer_afterwards() {
    let redis = RedisServer::start();
    let app = app_on(redis.url()).await;
    let (token, _) = app.signup("Frozen", "admin@example.com").await;
    let ids = app.create_jobs(&token, "Before", 1).await;
    app.cached(&token, QUERY, json!({})).await;
    assert_eq!(app.cached(&token, QUERY, json!({})).await.0, "HIT");

    // Redis stops answering for two seconds but keeps its data.
    let port = redis.port;
    let sleeper = std::thread::spawn(move || {
        std::process::Command::new("redis-cli")
            .args(["-p", &port.to_string(), "debug", "sleep", "2"])
            .output()
            .unwrap();
    });
    // Wait until Redis really stops answering.
    let frozen_deadline = Instant::now() + Duration::from_secs(5);
    while redis_answers(port) {
        assert!(Instant::now() < frozen_deadline, "DEBUG SLEEP never took");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let started = Instant::now();
    app.ok(
        &token,
        "mutation($id: ID!) { updateJob(id: $id, input: {title: \"After\"}) { id } }",
        json!({ "id": ids[0] }),
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "the write waited {:?} for the cache",
        started.elapsed()
    );
    let started = Instant::now();
    let (state, data) = app.cached(&token, QUERY, json!({})).await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "the read waited {:?}",
        started.elapsed()
    );
    assert_eq!(state, "BYPASS", "an invalidation is pending for this team");
    assert!(data.to_string().contains("After"));
    sleeper.join().unwrap();

    // Once Redis answers again the pending bump lands; the old entry, still
    // in Redis, must never be served.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (state, data) = app.cached(&token, QUERY, json!({})).await;
        assert!(
            data.to_string().contains("After"),
            "stale answer served: {data}"
        );
        if state == "HIT" {
            break;
        }
        assert!(Instant::now() < deadline, "the cache never recovered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn starting_with_redis_unreachable_serves_from_the_database_and_connects_when_it_appears() {
    let port = free_port();
    let app = app_on(format!("redis://127.0.0.1:{port}")).await;
    let (token, _) = app.signup("Late", "admin@example.com").await;
    app.create_jobs(&token, "Job", 1).await;
    for _ in 0..3 {
        let (state, data) = app.cached(&token, QUERY, json!({})).await;
        assert_ne!(state, "HIT");
        assert_eq!(data["jobs"]["totalCount"], 1);
    }
    assert_eq!(ready(&app).await["cache"]["state"], "degraded");
    let mut redis = RedisServer::start_on(port);
    wait_for_cache(&app, "ok").await;
    app.cached(&token, QUERY, json!({})).await;
    assert_eq!(app.cached(&token, QUERY, json!({})).await.0, "HIT");
    redis.stop();
}
