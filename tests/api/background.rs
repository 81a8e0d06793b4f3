//! Background work with real peers: a stand-in model API (wiremock, with
//! 429, 500, slow and refused answers), a real SMTP server on loopback, the
//! outbox folder, log retention and the stats refresh.

use std::time::{Duration, Instant};

use crate::common::{TestApp, smtp::SmtpServer};
use jobgraph::secret::Secret;
use sea_orm::{ActiveModelTrait, ActiveValue::Set};
use serde_json::{Value, json};
use wiremock::{
    Mock, MockServer, Request, ResponseTemplate,
    matchers::{header, method, path},
};

const GENERATE: &str =
    "mutation($id: ID!) { generateResume(jobId: $id) { id status content completedAt } }";
const RESUME: &str =
    "query($id: ID!) { resume(id: $id) { status content model error completedAt } }";

fn completion(text: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "id": "chatcmpl-test",
        "model": "stand-in-model",
        "choices": [{ "index": 0, "message": { "role": "assistant", "content": text }, "finish_reason": "stop" }]
    }))
}

async fn app_with_model(
    server: &MockServer,
    adjust: impl FnOnce(&mut jobgraph::config::Config),
) -> TestApp {
    let url = server.uri();
    TestApp::spawn_with(move |c| {
        c.model.api_key = Some(Secret::new("sk-test-do-not-log-0123456789"));
        c.model.base_url = url;
        c.model.model = "stand-in-model".into();
        c.model.timeout = Duration::from_secs(2);
        adjust(c);
    })
    .await
}

/// Creates a job and asks for a resume; returns the resume id.
async fn request_resume(app: &TestApp, token: &str) -> String {
    let ids = app.create_jobs(token, "Senior Rust Engineer", 1).await;
    let data = app.ok(token, GENERATE, json!({ "id": ids[0] })).await;
    assert_eq!(data["generateResume"]["status"], "PENDING");
    assert!(data["generateResume"]["content"].is_null());
    data["generateResume"]["id"].as_str().unwrap().to_owned()
}

/// Polls the resume until it is READY or FAILED.
async fn settled(app: &TestApp, token: &str, id: &str, secs: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let data = app.ok(token, RESUME, json!({ "id": id })).await;
        let status = data["resume"]["status"].as_str().unwrap().to_owned();
        if status == "READY" || status == "FAILED" {
            return data["resume"].clone();
        }
        assert!(Instant::now() < deadline, "the resume is still {status}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn without_a_key_the_local_writer_makes_the_resume_ready_and_mails_the_outbox() {
    let app = TestApp::spawn().await;
    let (token, _) = app.signup("Local", "ada@example.com").await;
    let id = request_resume(&app, &token).await;
    let resume = settled(&app, &token, &id, 10).await;
    assert_eq!(resume["status"], "READY", "{resume}");
    assert_eq!(resume["model"], "local-template-v1");
    assert!(
        resume["content"]
            .as_str()
            .unwrap()
            .contains("Senior Rust Engineer 0")
    );
    assert!(resume["completedAt"].is_string());
    let logs = app
        .ok(
            &token,
            "{ logs(filter: {action: \"resume.ready\"}) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(logs["logs"]["totalCount"], 1);
    app.eventually(10, "the ready mail in the outbox", || async {
        app.outbox()
            .iter()
            .any(|m| m.contains("is ready") && m.contains("ada@example.com"))
    })
    .await;
    // The welcome mail of the sign-up went the same way.
    assert!(
        app.outbox()
            .iter()
            .any(|m| m.contains("Welcome to jobgraph"))
    );
}

#[tokio::test]
async fn with_a_key_the_model_api_writes_the_resume_from_the_job() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/chat/completions"))
        .and(header(
            "authorization",
            "Bearer sk-test-do-not-log-0123456789",
        ))
        .respond_with(completion("A tailored resume."))
        .expect(1)
        .mount(&server)
        .await;
    let app = app_with_model(&server, |_| {}).await;
    let (token, _) = app.signup("Model", "ada@example.com").await;
    let id = request_resume(&app, &token).await;
    let resume = settled(&app, &token, &id, 10).await;
    assert_eq!(
        (resume["status"].as_str(), resume["content"].as_str()),
        (Some("READY"), Some("A tailored resume."))
    );
    assert_eq!(resume["model"], "stand-in-model");
    let requests: Vec<Request> = server.received_requests().await.unwrap();
    let body: Value = serde_json::from_slice(&requests[0].body).unwrap();
    assert_eq!(body["model"], "stand-in-model");
    let prompt = body["messages"][1]["content"].as_str().unwrap();
    assert!(
        prompt.contains("Senior Rust Engineer 0") && prompt.contains("ada@example.com"),
        "{prompt}"
    );
}

#[tokio::test]
async fn a_429_is_retried_after_its_retry_after() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "1"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(completion("After the wait."))
        .mount(&server)
        .await;
    let app = app_with_model(&server, |_| {}).await;
    let (token, _) = app.signup("Limited", "ada@example.com").await;
    let started = Instant::now();
    let id = request_resume(&app, &token).await;
    let resume = settled(&app, &token, &id, 10).await;
    assert_eq!(resume["content"], "After the wait.");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "retried before Retry-After: {:?}",
        started.elapsed()
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
    assert_eq!(
        app.metric("jobgraph_tasks_retried_total{kind=\"resume.generate\"}")
            .await,
        1.0
    );
}

#[tokio::test]
async fn server_errors_are_retried_with_backoff() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(completion("Third time."))
        .mount(&server)
        .await;
    let app = app_with_model(&server, |_| {}).await;
    let (token, _) = app.signup("Flaky", "ada@example.com").await;
    let id = request_resume(&app, &token).await;
    let resume = settled(&app, &token, &id, 10).await;
    assert_eq!(resume["content"], "Third time.");
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
}

#[tokio::test]
async fn a_model_api_that_stays_too_slow_fails_the_resume_with_a_readable_error() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(completion("Too late.").set_delay(Duration::from_secs(5)))
        .mount(&server)
        .await;
    let app = app_with_model(&server, |c| {
        c.model.timeout = Duration::from_millis(300);
        c.tasks.max_attempts = 2;
    })
    .await;
    let (token, _) = app.signup("Slow", "ada@example.com").await;
    let id = request_resume(&app, &token).await;
    let resume = settled(&app, &token, &id, 15).await;
    assert_eq!(resume["status"], "FAILED");
    assert_eq!(resume["error"], "the model API did not answer in time");
    assert!(resume["content"].is_null());
    let logs = app
        .ok(
            &token,
            "{ logs(filter: {action: \"resume.failed\"}) { nodes { level message } } }",
            json!({}),
        )
        .await;
    assert_eq!(logs["logs"]["nodes"][0]["level"], "ERROR");
    assert_eq!(
        app.metric("jobgraph_tasks_failed_total{kind=\"resume.generate\"}")
            .await,
        1.0
    );
}

#[tokio::test]
async fn a_refused_request_fails_at_once_without_retrying() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(401).set_body_string("{\"error\":\"invalid api key\"}"))
        .mount(&server)
        .await;
    let app = app_with_model(&server, |_| {}).await;
    let (token, _) = app.signup("Refused", "ada@example.com").await;
    let id = request_resume(&app, &token).await;
    let resume = settled(&app, &token, &id, 10).await;
    assert_eq!(resume["status"], "FAILED");
    assert!(
        resume["error"].as_str().unwrap().contains("401"),
        "{resume}"
    );
    assert!(
        !resume["error"].as_str().unwrap().contains("sk-test"),
        "{resume}"
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn mail_goes_through_smtp_and_an_outage_delays_it_without_losing_any() {
    let smtp = SmtpServer::start().await;
    let url = smtp.url();
    let app = TestApp::spawn_with(move |c| c.mail.smtp_url = Some(Secret::new(url))).await;
    let (admin, _) = app.signup("Mail", "admin@example.com").await;
    app.eventually(10, "the welcome mail", || async {
        smtp.messages().len() == 1
    })
    .await;
    assert!(
        smtp.messages()[0].contains("To: admin@example.com"),
        "{:?}",
        smtp.messages()
    );

    smtp.set_refusing(true);
    for n in 0..3 {
        app.add_user(&admin, &format!("user{n}@example.com"), "MEMBER")
            .await;
    }
    app.eventually(10, "the refused mails to be retried", || async {
        app.metric("jobgraph_tasks_retried_total{kind=\"email.send\"}")
            .await
            >= 3.0
    })
    .await;
    assert_eq!(
        smtp.messages().len(),
        1,
        "nothing can be delivered during the outage"
    );
    smtp.set_refusing(false);
    app.eventually(15, "the delayed mails", || async {
        smtp.messages().len() == 4
    })
    .await;
    app.tasks_idle("email.send").await;
    let messages = smtp.messages();
    assert_eq!(messages.len(), 4, "each mail exactly once");
    for n in 0..3 {
        let to = format!("To: user{n}@example.com");
        assert_eq!(
            messages.iter().filter(|m| m.contains(&to)).count(),
            1,
            "{to}"
        );
    }
    assert!(
        messages.iter().all(|m| m.contains("Message-ID: <task-")),
        "{messages:?}"
    );
}

#[tokio::test]
async fn log_retention_deletes_old_entries_in_batches_and_keeps_recent_ones() {
    let app = TestApp::spawn_with(|c| {
        c.tasks.retention_days = 30;
        c.tasks.retention_interval = Duration::from_millis(300);
    })
    .await;
    let (token, _) = app.signup("Old", "admin@example.com").await;
    let who = app
        .ok(&token, "{ viewer { id team { id } } }", json!({}))
        .await;
    let team_id = jobgraph::graphql::ids::decode(
        jobgraph::graphql::ids::Kind::Team,
        &who["viewer"]["team"]["id"].as_str().unwrap().into(),
        "t",
    )
    .unwrap();
    let old = chrono::Utc::now() - chrono::Duration::days(45);
    let entries: Vec<(jobgraph::db::activity::Entry, _)> = (0..2500)
        .map(|i| {
            (
                jobgraph::db::activity::Entry {
                    team_id: Some(team_id),
                    user_id: None,
                    action: "old.entry",
                    level: jobgraph::db::enums::LogLevel::Info,
                    message: format!("old {i}"),
                    metadata: None,
                },
                old,
            )
        })
        .collect();
    jobgraph::db::activity::record_many_at(app.state.db(), entries)
        .await
        .unwrap();
    // One recent entry written the same way, to be kept.
    jobgraph::db::entities::log::ActiveModel {
        team_id: Set(Some(team_id)),
        action: Set("recent.entry".into()),
        level: Set(jobgraph::db::enums::LogLevel::Info),
        message: Set("recent".into()),
        created_at: Set(chrono::Utc::now() - chrono::Duration::days(29)),
        ..Default::default()
    }
    .insert(app.state.db())
    .await
    .unwrap();
    app.eventually(20, "retention to delete 2500 rows", || async {
        app.metric("jobgraph_logs_deleted_total").await >= 2500.0
    })
    .await;
    let data = app.ok(&token, "{ old: logs(filter: {action: \"old.entry\"}) { totalCount } recent: logs(filter: {action: \"recent.entry\"}) { totalCount } }", json!({})).await;
    assert_eq!(
        (
            data["old"]["totalCount"].as_u64(),
            data["recent"]["totalCount"].as_u64()
        ),
        (Some(0), Some(1))
    );
}

#[tokio::test]
async fn after_a_write_the_next_stats_read_is_a_hit_with_the_new_numbers() {
    use jobgraph::db::entities::task;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let app = TestApp::spawn().await;
    let (token, _) = app.signup("Stats", "admin@example.com").await;
    app.create_jobs(&token, "Job", 3).await;
    let query = "{ jobStats { total byStatus { status count } } }";
    assert_eq!(app.cached(&token, query, json!({})).await.0, "MISS");
    assert_eq!(app.cached(&token, query, json!({})).await.0, "HIT");
    let written = chrono::Utc::now();
    app.create_jobs(&token, "More", 2).await;
    // Wait for a refresh that finished after the write, with none pending.
    app.eventually(10, "the stats refresh after the write", || async {
        let refreshes = task::Entity::find()
            .filter(task::Column::Kind.eq("cache.refresh"))
            .all(app.state.db())
            .await
            .unwrap();
        let pending = refreshes
            .iter()
            .any(|t| t.status == "queued" || t.status == "running");
        let done_after = refreshes
            .iter()
            .any(|t| t.status == "done" && t.finished_at.is_some_and(|f| f > written));
        !pending && done_after
    })
    .await;
    let (state, data) = app.cached(&token, query, json!({})).await;
    assert_eq!(
        state, "HIT",
        "the refresh should have put the fresh answer in the cache"
    );
    assert_eq!(data["jobStats"]["total"], 5);
}

#[tokio::test]
async fn writes_that_find_their_refresh_already_queued_wake_no_worker() {
    // Slow polling and a late refresh: within the window below, the task
    // pool only works when a write wakes it.
    let app = TestApp::spawn_with(|c| {
        c.tasks.poll = Duration::from_secs(30);
        c.tasks.refresh_delay = Duration::from_secs(30);
    })
    .await;
    let (token, _) = app.signup("Quiet", "quiet@example.com").await;
    // Queues the team's refresh (due in 30 s) and wakes the workers once.
    app.create_jobs(&token, "First", 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = app
        .metric("jobgraph_sql_statements_total{pool=\"tasks\"}")
        .await;
    // Each of these finds the refresh queued: nothing added, nobody woken
    // (a wake-up costs a claim query on the tasks pool).
    for i in 0..20 {
        app.create_jobs(&token, &format!("More {i}"), 1).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = app
        .metric("jobgraph_sql_statements_total{pool=\"tasks\"}")
        .await;
    // A periodic gauge or reaper tick may fall in the window; 20 wake-ups
    // would be 20 claims.
    assert!(
        after - before < 5.0,
        "{} statements on the tasks pool for 20 writes",
        after - before
    );
}
