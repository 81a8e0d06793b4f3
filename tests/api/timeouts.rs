//! Timeouts and back-pressure: no client holds the server for long, excess
//! load is refused at once, and a database that cannot serve is a clean 503.

use std::time::Duration;

use crate::common::{TestApp, postgres_url};
use sea_orm::{ConnectionTrait, TransactionTrait};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Takes the database's write lock (SQLite) or the jobs table's (PostgreSQL)
/// on a connection of its own until dropped, so writers queue behind it.
async fn hold_write_lock(
    app: &TestApp,
) -> (sea_orm::DatabaseConnection, sea_orm::DatabaseTransaction) {
    let db = jobgraph::db::connect_pool(
        &app.config.database,
        Some(1),
        &std::sync::Arc::new(jobgraph::metrics::Metrics::new()),
        "test",
    )
    .await
    .unwrap();
    let txn = jobgraph::db::begin_write(&db).await.unwrap();
    if postgres_url().is_some() {
        txn.execute_unprepared("LOCK TABLE jobs IN ACCESS EXCLUSIVE MODE")
            .await
            .unwrap();
    } else {
        // BEGIN IMMEDIATE took the write lock; make it real with a write.
        txn.execute_unprepared("UPDATE teams SET name = name WHERE id = -1")
            .await
            .unwrap();
    }
    (db, txn)
}

const CREATE: &str = "mutation { createJob(input: { title: \"Stuck\", company: \"Co\" }) { id } }";

#[tokio::test]
async fn a_request_running_past_the_timeout_is_a_504_and_its_write_is_rolled_back() {
    let app = TestApp::spawn_with(|c| c.http.request_timeout = Duration::from_millis(300)).await;
    let (token, _) = app.signup("Acme", "ada@example.com").await;
    let (_db, txn) = hold_write_lock(&app).await;
    let (status, body) = app.post(Some(&token), CREATE, json!({})).await;
    assert_eq!(status, 504, "{body}");
    assert_eq!(body["errors"][0]["extensions"]["code"], "TIMEOUT");
    txn.rollback().await.unwrap();
    let data = app.ok(&token, "{ jobs { totalCount } }", json!({})).await;
    assert_eq!(
        data["jobs"]["totalCount"], 0,
        "the cut-off write never committed"
    );
}

#[tokio::test]
async fn a_body_that_trickles_in_is_cut_off_with_408() {
    let app = TestApp::spawn_with(|c| c.http.body_read_timeout = Duration::from_millis(200)).await;
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    stream
        .write_all(b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"query\":")
        .await
        .unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer))
        .await
        .expect("the server answers and closes")
        .unwrap();
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("REQUEST_TIMEOUT"), "{text}");
}

#[tokio::test]
async fn headers_that_never_finish_lose_their_connection() {
    let app =
        TestApp::spawn_with(|c| c.http.header_read_timeout = Duration::from_millis(200)).await;
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    stream
        .write_all(b"POST /graphql HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer))
        .await
        .expect("the server closes the connection")
        .ok();
    // hyper answers 408 or just closes; either way the slot is free again.
    let text = String::from_utf8_lossy(&answer);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 408"),
        "{text}"
    );
}

#[tokio::test]
async fn requests_beyond_the_in_flight_limit_are_shed_with_503() {
    let app = TestApp::spawn_with(|c| {
        c.http.max_in_flight = 1;
        c.http.in_flight_wait = Duration::from_millis(100);
    })
    .await;
    let (token, _) = app.signup("Acme", "ada@example.com").await;
    let (_db, txn) = hold_write_lock(&app).await;
    let stuck = {
        let client = app.client.clone();
        let url = app.url("/graphql");
        let token = token.clone();
        tokio::spawn(async move {
            client
                .post(url)
                .bearer_auth(token)
                .json(&json!({ "query": CREATE }))
                .send()
                .await
        })
    };
    // Wait until the first request holds the only slot.
    app.eventually(5, "the first request to hold the slot", || async {
        app.metric("jobgraph_http_requests_in_flight").await == 1.0
    })
    .await;
    let res = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(&token)
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
    assert_eq!(res.headers()["retry-after"], "1");
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "OVERLOADED");
    // Operator endpoints are not counted.
    let health = app.client.get(app.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    txn.rollback().await.unwrap();
    assert_eq!(stuck.await.unwrap().unwrap().status(), 200);
}

#[tokio::test]
async fn an_exhausted_pool_is_a_503_with_retry_after() {
    let app = TestApp::spawn_with(|c| {
        c.database.max_connections = Some(1);
        c.database.acquire_timeout = Duration::from_millis(500);
    })
    .await;
    let (token, _) = app.signup("Acme", "ada@example.com").await;
    // Hold the pool's only connection.
    let held = app.state.db().begin().await.unwrap();
    let res = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(&token)
        .json(&json!({ "query": "{ jobs { totalCount } }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
    assert_eq!(res.headers()["retry-after"], "1");
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "SERVICE_UNAVAILABLE",
        "{body}"
    );
    assert!(!body.to_string().to_lowercase().contains("pool"), "{body}");
    held.rollback().await.unwrap();
    app.ok(&token, "{ jobs { totalCount } }", json!({})).await;
}

#[tokio::test]
async fn a_statement_past_the_statement_timeout_is_a_503_with_retry_after() {
    let app = TestApp::spawn_with(|c| {
        c.database.statement_timeout = Duration::from_millis(300);
        c.http.request_timeout = Duration::from_secs(20);
    })
    .await;
    let (token, _) = app.signup("Acme", "ada@example.com").await;
    // The write waits for a lock another connection holds: PostgreSQL cuts
    // the statement off at `statement_timeout`, SQLite stops waiting for
    // its write lock after the same time.
    let (_db, txn) = hold_write_lock(&app).await;
    let started = std::time::Instant::now();
    let res = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(&token)
        .json(&json!({ "query": CREATE }))
        .send()
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(res.status(), 503);
    assert_eq!(res.headers()["retry-after"], "1");
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "SERVICE_UNAVAILABLE",
        "{body}"
    );
    txn.rollback().await.unwrap();
    let data = app.ok(&token, "{ jobs { totalCount } }", json!({})).await;
    assert_eq!(
        data["jobs"]["totalCount"], 0,
        "the cut-off write never committed"
    );
}

#[tokio::test]
async fn slow_bodies_hold_no_in_flight_slot() {
    let app = TestApp::spawn_with(|c| {
        c.http.max_in_flight = 1;
        c.http.in_flight_wait = Duration::from_millis(100);
        c.http.body_read_timeout = Duration::from_secs(30);
    })
    .await;
    let (token, _) = app.signup("Acme", "ada@example.com").await;
    // More senders than slots, each stuck half-way through its body.
    let mut trickling = Vec::new();
    for _ in 0..4 {
        let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
        stream
            .write_all(b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"query\":")
            .await
            .unwrap();
        trickling.push(stream);
    }
    // Nothing shows that a body is being waited for (that is the point):
    // give the server a moment to reach the body of each, then check that
    // none of them took a slot.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.metric("jobgraph_http_requests_in_flight").await, 0.0);
    let (status, body) = app.post(Some(&token), "{ viewer { id } }", json!({})).await;
    assert_eq!(status, 200, "{body}");
    drop(trickling);
}

#[tokio::test]
async fn every_postgresql_connection_carries_a_statement_timeout() {
    let app =
        TestApp::spawn_with(|c| c.database.statement_timeout = Duration::from_millis(1234)).await;
    if postgres_url().is_none() {
        // SQLite has no statement timeout; its busy timeout bounds lock waits.
        return;
    }
    let row = app
        .state
        .db()
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DatabaseBackend::Postgres,
            "SHOW statement_timeout",
        ))
        .await
        .unwrap()
        .unwrap();
    let value: String = row.try_get("", "statement_timeout").unwrap();
    assert_eq!(value, "1234ms");
}
