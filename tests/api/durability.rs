//! Nothing accepted is lost: the real binary is killed or stopped with
//! tasks in flight, started again, and every task completes exactly once.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use crate::common::{fresh_config, process::Proc};
use jobgraph::{config::Config, db::entities::task, metrics::Metrics};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use wiremock::{Mock, MockServer, ResponseTemplate, matchers::method};

const KEY: &str = "sk-durability-secret-4242";

/// The real binary with a stand-in model API and short task timings.
fn spawn(config: &Config, dir: &Path, model: &str, extra: &[(&str, &str)]) -> Proc {
    let mut env = vec![
        ("OPENAI_API_KEY", KEY.to_owned()),
        ("OPENAI_BASE_URL", model.to_owned()),
        ("OPENAI_TIMEOUT_SECS", "60".to_owned()),
        ("WORKER_CONCURRENCY", "2".to_owned()),
        ("TASK_LEASE_SECS", "2".to_owned()),
        ("TASK_POLL_MS", "50".to_owned()),
        ("TASK_BACKOFF_MS", "100".to_owned()),
        ("OUTBOX_DIR", dir.join("outbox").display().to_string()),
        ("RUST_LOG", "debug,sqlx=warn,hyper=info,h2=info".to_owned()),
    ];
    env.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
    Proc::spawn(config, dir, &env)
}

async fn database(config: &Config) -> DatabaseConnection {
    jobgraph::db::connect_pool(
        &config.database,
        Some(2),
        &std::sync::Arc::new(Metrics::new()),
        "requests",
    )
    .await
    .unwrap()
}

async fn resume_tasks(db: &DatabaseConnection) -> Vec<task::Model> {
    task::Entity::find()
        .filter(task::Column::Kind.eq("resume.generate"))
        .all(db)
        .await
        .unwrap()
}

async fn wait_for(what: &str, secs: u64, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until `n` resume tasks are held by a worker.
async fn wait_running(db: &DatabaseConnection, n: usize, what: &str) {
    wait_for(what, 20, async || {
        resume_tasks(db)
            .await
            .iter()
            .filter(|t| t.status == "running")
            .count()
            == n
    })
    .await;
}

fn completion(delay: Duration) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .set_body_json(
            json!({ "model": "stand-in", "choices": [{ "message": { "content": "Written." } }] }),
        )
        .set_delay(delay)
}

/// Signs up and asks for `n` resumes; returns the token.
async fn ask_for_resumes(proc: &Proc, n: usize) -> String {
    let data = proc
        .gql(
            None,
            "mutation { signup(input: {teamName: \"Durable\", name: \"Ada\", email: \"ada@example.com\", password: \"password-123\"}) { token } }",
            json!({}),
        )
        .await;
    let token = data["signup"]["token"].as_str().unwrap().to_owned();
    let jobs: Vec<Value> = (0..n)
        .map(|i| json!({ "title": format!("Role {i}"), "company": "Acme" }))
        .collect();
    let created = proc
        .gql(
            Some(&token),
            "mutation($i: [CreateJobInput!]!) { createJobs(input: $i) { id } }",
            json!({ "i": jobs }),
        )
        .await;
    for job in created["createJobs"].as_array().unwrap() {
        let data = proc
            .gql(
                Some(&token),
                "mutation($id: ID!) { generateResume(jobId: $id) { status } }",
                json!({ "id": job["id"] }),
            )
            .await;
        assert_eq!(data["generateResume"]["status"], "PENDING");
    }
    token
}

fn outbox_ready_mails(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir.join("outbox"))
        .map(|entries| {
            entries
                .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
                .filter(|m| m.contains("Subject: Your resume for"))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_process_finishes_its_pending_tasks_after_restart_each_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let config = fresh_config(&dir).await;
    let model = MockServer::start().await;
    // The first process's model calls never come back.
    Mock::given(method("POST"))
        .respond_with(completion(Duration::from_secs(120)))
        .mount(&model)
        .await;
    let mut first = spawn(&config, dir.path(), &model.uri(), &[]);
    ask_for_resumes(&first, 10).await;
    let db = database(&config).await;
    wait_running(&db, 2, "two tasks in flight").await;
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    let first_log = first.log();

    model.reset().await;
    Mock::given(method("POST"))
        .respond_with(completion(Duration::ZERO))
        .mount(&model)
        .await;
    let second = spawn(&config, dir.path(), &model.uri(), &[]);
    wait_for("every task to finish", 30, async || {
        resume_tasks(&db).await.iter().all(|t| t.status == "done")
    })
    .await;

    let tasks = resume_tasks(&db).await;
    assert_eq!(tasks.len(), 10);
    let retried = tasks.iter().filter(|t| t.attempts == 2).count();
    let once = tasks.iter().filter(|t| t.attempts == 1).count();
    assert_eq!(
        (retried, once),
        (2, 8),
        "the two claimed by the killed process ran again after their lease"
    );
    assert_eq!(
        model.received_requests().await.unwrap().len(),
        10,
        "each resume written exactly once after restart"
    );
    wait_for("the ready mails, and no mail task left", 20, async || {
        let pending = task::Entity::find()
            .filter(task::Column::Kind.eq("email.send"))
            .filter(task::Column::Status.is_in(["queued", "running"]))
            .all(&db)
            .await
            .unwrap();
        outbox_ready_mails(dir.path()).len() >= 10 && pending.is_empty()
    })
    .await;
    let mails = outbox_ready_mails(dir.path());
    assert_eq!(mails.len(), 10, "one mail per resume");
    let mut ids: Vec<&str> = mails
        .iter()
        .filter_map(|m| m.lines().find(|l| l.starts_with("Message-ID:")))
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 10);
    for log in [first_log, second.log()] {
        assert!(!log.contains(KEY), "the API key leaked into the log");
        assert!(log.contains("background workers started"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_running_tasks_finish_or_hands_them_back_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let config = fresh_config(&dir).await;
    let model = MockServer::start().await;
    let db = database(&config).await;

    // Tasks shorter than the grace period finish before the process exits.
    Mock::given(method("POST"))
        .respond_with(completion(Duration::from_millis(800)))
        .mount(&model)
        .await;
    let mut proc = spawn(
        &config,
        dir.path(),
        &model.uri(),
        &[("SHUTDOWN_GRACE_SECS", "10")],
    );
    let token = ask_for_resumes(&proc, 2).await;
    wait_running(&db, 2, "two tasks in flight").await;
    proc.terminate();
    let status = proc.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "{status:?}: {}", proc.log());
    let tasks = resume_tasks(&db).await;
    assert!(
        tasks.iter().all(|t| t.status == "done"),
        "{tasks:?}\n{}",
        proc.log()
    );

    // Tasks longer than the grace period go back to the queue untouched.
    model.reset().await;
    Mock::given(method("POST"))
        .respond_with(completion(Duration::from_secs(60)))
        .mount(&model)
        .await;
    let mut proc = spawn(
        &config,
        dir.path(),
        &model.uri(),
        &[("SHUTDOWN_GRACE_SECS", "1")],
    );
    let jobs = proc
        .gql(Some(&token), "mutation { createJobs(input: [{title: \"A\", company: \"B\"}, {title: \"C\", company: \"D\"}]) { id } }", json!({}))
        .await;
    for job in jobs["createJobs"].as_array().unwrap() {
        proc.gql(
            Some(&token),
            "mutation($id: ID!) { generateResume(jobId: $id) { id } }",
            json!({ "id": job["id"] }),
        )
        .await;
    }
    wait_running(&db, 2, "two new tasks in flight").await;
    let started = Instant::now();
    proc.terminate();
    let status = proc.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "{status:?}: {}", proc.log());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "shutdown took {:?}",
        started.elapsed()
    );
    let tasks = resume_tasks(&db).await;
    let queued: Vec<&task::Model> = tasks.iter().filter(|t| t.status == "queued").collect();
    assert_eq!(queued.len(), 2, "{tasks:?}");
    assert!(
        queued
            .iter()
            .all(|t| t.attempts == 0 && t.locked_by.is_none()),
        "{queued:?}"
    );
    assert!(proc.log().contains("handed back to the queue"));

    // The next start finishes them.
    model.reset().await;
    Mock::given(method("POST"))
        .respond_with(completion(Duration::ZERO))
        .mount(&model)
        .await;
    let _proc = spawn(&config, dir.path(), &model.uri(), &[]);
    wait_for("the handed-back tasks", 20, async || {
        resume_tasks(&db).await.iter().all(|t| t.status == "done")
    })
    .await;
    assert_eq!(resume_tasks(&db).await.len(), 4);
}

#[tokio::test]
async fn sigterm_during_a_write_load_exits_within_the_deadline_and_keeps_every_acknowledged_write()
{
    use std::sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    };
    let dir = tempfile::tempdir().unwrap();
    let config = fresh_config(&dir).await;
    let mut proc = spawn(
        &config,
        dir.path(),
        "http://127.0.0.1:9",
        &[("SHUTDOWN_GRACE_SECS", "3")],
    );
    let data = proc
        .gql(
            None,
            "mutation { signup(input: {teamName: \"Load\", name: \"Ada\", email: \"ada@example.com\", password: \"password-123\"}) { token } }",
            json!({}),
        )
        .await;
    let token = data["signup"]["token"].as_str().unwrap().to_owned();
    let stop = Arc::new(AtomicBool::new(false));
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let (url, token, stop, acknowledged) = (
                format!("{}/graphql", proc.url),
                token.clone(),
                Arc::clone(&stop),
                Arc::clone(&acknowledged),
            );
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let body = json!({
                        "query": "mutation($t: String!) { createJob(input: { title: $t, company: \"Co\" }) { id } }",
                        "variables": { "t": format!("w{w}-{n}") },
                    });
                    let Ok(res) = client.post(&url).bearer_auth(&token).json(&body).send().await
                    else {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    };
                    if let Ok(value) = res.json::<Value>().await
                        && let Some(id) = value["data"]["createJob"]["id"].as_str()
                    {
                        acknowledged.lock().unwrap().push(id.to_owned());
                    }
                }
            })
        })
        .collect();
    wait_for("the write load to be under way", 10, async || {
        acknowledged.lock().unwrap().len() >= 100
    })
    .await;
    let before = acknowledged.lock().unwrap().len();
    assert!(before > 0, "the load is running");
    let sent = Instant::now();
    proc.terminate();
    let status = tokio::task::spawn_blocking(move || {
        let status = proc.wait_exit(Duration::from_secs(8));
        (status, proc)
    })
    .await
    .unwrap();
    let took = sent.elapsed();
    assert!(status.0.success(), "{}", status.1.log());
    assert!(
        took < Duration::from_secs(5),
        "exit took {took:?} (deadline 3 s)"
    );
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    let db = database(&config).await;
    use sea_orm::PaginatorTrait;
    let ids: Vec<i64> = acknowledged
        .iter()
        .map(|id| {
            jobgraph::graphql::ids::decode(
                jobgraph::graphql::ids::Kind::Job,
                &id.as_str().into(),
                "id",
            )
            .unwrap()
        })
        .collect();
    let present = jobgraph::db::entities::job::Entity::find()
        .filter(jobgraph::db::entities::job::Column::Id.is_in(ids.clone()))
        .count(&db)
        .await
        .unwrap();
    assert_eq!(
        present as usize,
        ids.len(),
        "every acknowledged write is there"
    );
    println!(
        "SIGTERM under load: exited in {took:?}, {} writes acknowledged ({} before the signal), 0 lost",
        ids.len(),
        before
    );
}

#[tokio::test]
async fn sigterm_with_a_request_stuck_in_flight_exits_at_the_deadline() {
    use sea_orm::ConnectionTrait;
    let dir = tempfile::tempdir().unwrap();
    let config = fresh_config(&dir).await;
    let mut proc = spawn(
        &config,
        dir.path(),
        "http://127.0.0.1:9",
        &[
            ("SHUTDOWN_GRACE_SECS", "2"),
            ("REQUEST_TIMEOUT_MS", "60000"),
            ("STATEMENT_TIMEOUT_MS", "60000"),
        ],
    );
    let data = proc
        .gql(
            None,
            "mutation { signup(input: {teamName: \"Stuck\", name: \"Ada\", email: \"ada@example.com\", password: \"password-123\"}) { token } }",
            json!({}),
        )
        .await;
    let token = data["signup"]["token"].as_str().unwrap().to_owned();
    // Another connection holds the lock a write needs, for as long as the
    // test likes: the write below waits on it, well past the deadline.
    let db = database(&config).await;
    let held = jobgraph::db::begin_write(&db).await.unwrap();
    let lock = if crate::common::postgres_url().is_some() {
        "LOCK TABLE jobs IN ACCESS EXCLUSIVE MODE"
    } else {
        "UPDATE teams SET name = name WHERE id = -1"
    };
    held.execute_unprepared(lock).await.unwrap();
    let stuck = tokio::spawn({
        let url = format!("{}/graphql", proc.url);
        async move {
            reqwest::Client::new()
                .post(url)
                .bearer_auth(token)
                .json(&json!({ "query": "mutation { createJob(input: { title: \"Stuck\", company: \"Co\" }) { id } }" }))
                .send()
                .await
        }
    });
    wait_for("the write to be running", 10, async || {
        let metrics = reqwest::get(format!("{}/metrics", proc.url))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        metrics.contains("jobgraph_http_requests_in_flight 1")
    })
    .await;
    let sent = Instant::now();
    proc.terminate();
    let (status, proc) = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(status) = proc.child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "no exit: {}", proc.log());
            std::thread::sleep(Duration::from_millis(20));
        };
        (status, proc)
    })
    .await
    .unwrap();
    let took = sent.elapsed();
    assert!(
        took < Duration::from_secs(4),
        "exit took {took:?} (deadline 2 s): {}",
        proc.log()
    );
    assert!(status.success(), "{}", proc.log());
    assert!(
        proc.log().contains("shutdown deadline reached"),
        "{}",
        proc.log()
    );
    // The client was not answered; its write never happened.
    assert!(stuck.await.unwrap().is_err());
    held.rollback().await.unwrap();
    use sea_orm::{EntityTrait, PaginatorTrait};
    let jobs = jobgraph::db::entities::job::Entity::find()
        .count(&db)
        .await
        .unwrap();
    assert_eq!(jobs, 0);
    println!("SIGTERM with a request stuck: exited in {took:?} (deadline 2 s)");
}
