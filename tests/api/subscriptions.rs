//! Live updates from a real client over real sockets: graphql-transport-ws
//! and SSE, across replicas through Redis, only ever for the caller's
//! team, with every limit a subscriber can reach.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{
    self, TestApp,
    live::{Closed, SseReader, WsClient},
};

const JOB_EVENTS: &str = "subscription($job: ID) { jobEvents(jobId: $job) { kind jobId status job { title team { name } createdBy { name } } } }";
const CREATE: &str =
    "mutation($t: String!) { createJob(input: {title: $t, company: \"C\"}) { id } }";
const SET_STATUS: &str =
    "mutation($id: ID!) { updateJob(id: $id, input: {status: INTERVIEWING}) { id } }";
const DELETE: &str = "mutation($id: ID!) { deleteJob(id: $id) }";

async fn next_event(client: &mut WsClient, id: &str) -> Value {
    let message = client.recv().await.expect("an event, not a close");
    assert_eq!(message["type"], "next", "{message}");
    assert_eq!(message["id"], id, "{message}");
    message["payload"]["data"]["jobEvents"].clone()
}

#[tokio::test]
async fn a_write_on_one_replica_reaches_a_subscriber_on_the_other_and_never_another_team() {
    let (_redis, one, two) = common::two_replicas().await;
    let (alice, _) = one.signup("Team A", "alice@example.com").await;
    let (bob, _) = one.signup("Team B", "bob@example.com").await;
    let mut a = WsClient::connect(&two, &alice).await;
    a.subscribe("a", JOB_EVENTS, json!({})).await;
    let mut b = WsClient::connect(&two, &bob).await;
    b.subscribe("b", JOB_EVENTS, json!({})).await;
    // The subscriptions are listening once the replica listens to the
    // teams' channels; a write to each team proves both are.
    let mut ready = false;
    for attempt in 0..50 {
        one.ok(&alice, CREATE, json!({ "t": format!("Warm-up {attempt}") }))
            .await;
        if let Some(Ok(event)) = a.recv_within(Duration::from_millis(200)).await {
            assert_eq!(event["type"], "next", "{event}");
            ready = true;
            break;
        }
    }
    assert!(ready, "no event reached replica two");
    assert_eq!(two.ready().await["liveEvents"], "redis");
    while a.recv_within(Duration::from_millis(200)).await.is_some() {}

    // Created, status changed, deleted — written on one, seen on two.
    let id = one
        .ok(&alice, CREATE, json!({ "t": "Platform engineer" }))
        .await["createJob"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let created = next_event(&mut a, "a").await;
    assert_eq!(created["kind"], "CREATED");
    assert_eq!(created["jobId"], id);
    assert_eq!(created["job"]["title"], "Platform engineer");
    assert_eq!(created["job"]["team"]["name"], "Team A");
    assert_eq!(created["job"]["createdBy"]["name"], "Admin");
    one.ok(&alice, SET_STATUS, json!({ "id": id })).await;
    let changed = next_event(&mut a, "a").await;
    assert_eq!(changed["kind"], "STATUS_CHANGED");
    assert_eq!(changed["status"], "INTERVIEWING");
    assert_eq!(changed["job"]["status"], Value::Null, "not selected");
    one.ok(&alice, DELETE, json!({ "id": id })).await;
    let deleted = next_event(&mut a, "a").await;
    assert_eq!(deleted["kind"], "DELETED");
    assert_eq!(deleted["job"], Value::Null);

    // Team B heard none of it; its own write reaches it, not team A.
    assert!(
        b.recv_within(Duration::from_millis(300)).await.is_none(),
        "team B received team A's events"
    );
    one.ok(&bob, CREATE, json!({ "t": "B's job" })).await;
    let theirs = next_event(&mut b, "b").await;
    assert_eq!(theirs["job"]["title"], "B's job");
    assert!(a.recv_within(Duration::from_millis(300)).await.is_none());

    // A filter by job: only that job's events.
    let x = one.ok(&alice, CREATE, json!({ "t": "X" })).await["createJob"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let _ = next_event(&mut a, "a").await;
    a.subscribe("only-x", JOB_EVENTS, json!({ "job": x })).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let y = one.ok(&alice, CREATE, json!({ "t": "Y" })).await["createJob"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let _ = next_event(&mut a, "a").await;
    one.ok(&alice, SET_STATUS, json!({ "id": x })).await;
    let mut seen = Vec::new();
    for _ in 0..2 {
        let message = a.recv().await.unwrap();
        seen.push((
            message["id"].as_str().unwrap().to_owned(),
            message["payload"]["data"]["jobEvents"]["jobId"]
                .as_str()
                .unwrap()
                .to_owned(),
        ));
    }
    seen.sort();
    assert_eq!(
        seen,
        [
            ("a".to_owned(), x.clone()),
            ("only-x".to_owned(), x.clone())
        ]
    );
    assert_ne!(x, y);
    // `complete` from the client stops one subscription only.
    a.send(json!({ "type": "complete", "id": "only-x" })).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    one.ok(&alice, SET_STATUS, json!({ "id": x })).await;
    let message = a.recv().await.unwrap();
    assert_eq!(message["id"], "a");
    assert!(a.recv_within(Duration::from_millis(300)).await.is_none());
}

#[tokio::test]
async fn queries_mutations_and_errors_over_websocket_follow_the_protocol() {
    let app = TestApp::spawn().await;
    let (token, _) = app.signup("Proto", "admin@example.com").await;
    let mut ws = WsClient::connect(&app, &token).await;
    // A query: one `next`, then `complete`.
    ws.subscribe("q", "{ viewer { email } }", json!({})).await;
    let next = ws.recv().await.unwrap();
    assert_eq!(next["type"], "next");
    assert_eq!(
        next["payload"]["data"]["viewer"]["email"],
        "admin@example.com"
    );
    assert_eq!(
        ws.recv().await.unwrap(),
        json!({ "type": "complete", "id": "q" })
    );
    // A document that fails validation: one `error` with the errors.
    ws.subscribe("bad", "subscription { nope }", json!({}))
        .await;
    let error = ws.recv().await.unwrap();
    assert_eq!(error["type"], "error", "{error}");
    assert_eq!(
        error["payload"][0]["extensions"]["code"],
        "GRAPHQL_VALIDATION_FAILED"
    );
    // Limits apply as over HTTP.
    let deep = format!(
        "subscription {{ jobEvents {{ job {{ {} id {} }} }} }}",
        "team { members(first: 1) { nodes { jobs(first: 1) { nodes { ".repeat(3),
        "} } } } }".repeat(3)
    );
    ws.subscribe("deep", &deep, json!({})).await;
    let error = ws.recv().await.unwrap();
    assert_eq!(error["type"], "error", "{error}");
    // A protocol ping gets a pong.
    ws.send(json!({ "type": "ping" })).await;
    assert_eq!(ws.recv().await.unwrap(), json!({ "type": "pong" }));
    // An id in use closes the connection (4409).
    ws.subscribe("s", JOB_EVENTS, json!({})).await;
    ws.subscribe("s", JOB_EVENTS, json!({})).await;
    assert_eq!(ws.closed().await.code, 4409);
}

#[tokio::test]
async fn sse_streams_events_and_refuses_what_fails_before_running() {
    let app = TestApp::spawn().await;
    let (token, _) = app.signup("Sse", "admin@example.com").await;
    // In process on the embedded default; through Redis on the suite's
    // second pass (REDIS_URL).
    let expected = if app.config.cache.redis_url.is_some() {
        "redis"
    } else {
        "in-process"
    };
    // (the subscriber connection comes up a moment after start)
    let mut seen = Value::Null;
    for _ in 0..50 {
        seen = app.ready().await["liveEvents"].clone();
        if seen == expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(seen, expected);
    let (status, mut events) = SseReader::open(&app, &token, JOB_EVENTS).await;
    assert_eq!(status, 200);
    // The stream is open (its first comment came) before any event.
    tokio::time::sleep(Duration::from_millis(100)).await;
    app.ok(&token, CREATE, json!({ "t": "Over SSE" })).await;
    let (event, data) = events.next().await.unwrap();
    assert_eq!(event, "next");
    let data: Value = serde_json::from_str(&data).unwrap();
    assert_eq!(data["data"]["jobEvents"]["job"]["title"], "Over SSE");

    // A query: one result, then `complete`.
    let (status, mut query) = SseReader::open(&app, &token, "{ jobs { totalCount } }").await;
    assert_eq!(status, 200);
    let (event, data) = query.next().await.unwrap();
    assert_eq!(event, "next");
    assert!(data.contains("\"totalCount\":1"), "{data}");
    assert_eq!(query.next().await.unwrap().0, "complete");

    // Invalid: a plain 400 answer; no token: 401.
    let (status, invalid) = SseReader::open(&app, &token, "subscription { nope }").await;
    assert_eq!(status, 400);
    let body: Value = invalid.into_response().json().await.unwrap();
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        "GRAPHQL_VALIDATION_FAILED"
    );
    let (status, _) = SseReader::open(&app, "not-a-token", JOB_EVENTS).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn a_deactivated_users_subscriptions_are_closed_at_once() {
    let app = TestApp::spawn().await;
    let (admin, _) = app.signup("Revoke", "admin@example.com").await;
    let (member, member_id) = app.add_user(&admin, "mel@example.com", "MEMBER").await;
    let mut ws = WsClient::connect(&app, &member).await;
    ws.subscribe("s", JOB_EVENTS, json!({})).await;
    let (status, mut sse) = SseReader::open(&app, &member, JOB_EVENTS).await;
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_millis(100)).await;
    app.ok(
        &admin,
        "mutation($id: ID!) { deactivateUser(id: $id) { id } }",
        json!({ "id": member_id }),
    )
    .await;
    let closed = ws.closed().await;
    assert_eq!(closed.code, 4403, "{closed:?}");
    assert!(sse.next().await.is_none(), "the SSE stream must end");
    // And a new connection with the old token is refused.
    let mut again = WsClient::open(&app).await;
    again
        .send(json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {member}") } }))
        .await;
    assert_eq!(again.closed().await.code, 4403);
}

#[tokio::test]
async fn every_limit_a_subscriber_can_reach_closes_it_clearly() {
    let app = TestApp::spawn_with(|c| {
        c.live.max_per_connection = 2;
        c.live.max_connections_per_user = 2;
        c.live.buffer_events = 2;
        c.live.init_timeout = Duration::from_millis(300);
        c.live.ping_interval = Duration::from_millis(100);
        c.live.idle_timeout = Duration::from_millis(400);
    })
    .await;
    let (token, _) = app.signup("Limits", "admin@example.com").await;

    // No connection_init in time: 4408. Subscribe before it: 4401.
    let mut slow = WsClient::open(&app).await;
    assert_eq!(slow.closed().await.code, 4408);
    let mut eager = WsClient::open(&app).await;
    eager.subscribe("s", JOB_EVENTS, json!({})).await;
    assert_eq!(eager.closed().await.code, 4401);
    // No token: 4403.
    let mut anonymous = WsClient::open(&app).await;
    anonymous.send(json!({ "type": "connection_init" })).await;
    assert_eq!(anonymous.closed().await.code, 4403);

    // Two connections per user; a third is closed with 4003.
    let mut first = WsClient::connect(&app, &token).await;
    let mut second = WsClient::connect(&app, &token).await;
    let mut third = WsClient::open(&app).await;
    third
        .send(json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } }))
        .await;
    let closed = third.closed().await;
    assert_eq!(closed.code, 4003, "{closed:?}");
    let (status, _) = SseReader::open(&app, &token, JOB_EVENTS).await;
    assert_eq!(status, 429, "an SSE stream counts as a connection");

    // Two operations per connection; a third gets an error, not a close.
    first.subscribe("1", JOB_EVENTS, json!({})).await;
    first.subscribe("2", JOB_EVENTS, json!({})).await;
    first.subscribe("3", JOB_EVENTS, json!({})).await;
    let error = first.recv().await.unwrap();
    assert_eq!(error["type"], "error");
    assert_eq!(error["id"], "3");
    assert_eq!(
        error["payload"][0]["extensions"]["code"],
        "TOO_MANY_SUBSCRIPTIONS"
    );

    // A client that answers nothing (not even pings) is closed as idle:
    // tungstenite answers pings only while it is read, so `second` idles.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let closed = second.closed().await;
    assert_eq!(closed.code, 4001, "{closed:?}");
    drop(first);

    // A burst of more events than the buffer holds: the subscriber that
    // cannot keep up is told why, then closed with 4002.
    let mut behind = WsClient::connect(&app, &token).await;
    behind.subscribe("s", JOB_EVENTS, json!({})).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let many: Vec<Value> = (0..40)
        .map(|i| json!({ "title": format!("Bulk {i}"), "company": "C" }))
        .collect();
    app.ok(
        &token,
        "mutation($i: [CreateJobInput!]!) { createJobs(input: $i) { id } }",
        json!({ "i": many }),
    )
    .await;
    let mut slow_consumer = false;
    let closed = loop {
        match behind.recv().await {
            Ok(message) => {
                if message["payload"]["errors"][0]["extensions"]["code"] == "SLOW_CONSUMER" {
                    slow_consumer = true;
                }
            }
            Err(closed) => break closed,
        }
    };
    assert!(slow_consumer, "no SLOW_CONSUMER error before the close");
    assert_eq!(closed.code, 4002, "{closed:?}");
}

#[tokio::test]
async fn live_connections_close_with_going_away_when_the_replica_stops() {
    let app = TestApp::spawn().await;
    let (token, _) = app.signup("Stop", "admin@example.com").await;
    let mut ws = WsClient::connect(&app, &token).await;
    ws.subscribe("s", JOB_EVENTS, json!({})).await;
    let (_, mut sse) = SseReader::open(&app, &token, JOB_EVENTS).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    app.state.stopping().cancel();
    assert_eq!(
        ws.closed().await,
        Closed {
            code: 1001,
            reason: "the server is restarting".into()
        }
    );
    assert!(sse.next().await.is_none());
}

#[tokio::test]
async fn a_resume_reaching_ready_is_announced_with_the_resume() {
    let app = TestApp::spawn().await;
    let (token, _) = app.signup("Resumes", "admin@example.com").await;
    let job = app.create_jobs(&token, "Writer", 1).await.remove(0);
    let mut ws = WsClient::connect(&app, &token).await;
    ws.subscribe(
        "r",
        "subscription($job: ID) { resumeUpdates(jobId: $job) { resumeId jobId status resume { status content } } }",
        json!({ "job": job }),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let resume = app
        .ok(
            &token,
            "mutation($id: ID!) { generateResume(jobId: $id) { id } }",
            json!({ "id": job }),
        )
        .await["generateResume"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let message = ws.recv().await.unwrap();
    let update = &message["payload"]["data"]["resumeUpdates"];
    assert_eq!(update["resumeId"], resume, "{message}");
    assert_eq!(update["jobId"], job);
    assert_eq!(update["status"], "READY");
    assert_eq!(update["resume"]["status"], "READY");
    assert!(
        update["resume"]["content"]
            .as_str()
            .is_some_and(|c| !c.is_empty())
    );
}
