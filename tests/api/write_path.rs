//! Every write goes through the unit of work, and every table a write
//! changes maps to a cache namespace it made stale: a mutation (or the
//! background work it starts) that changed rows without declaring it would
//! serve stale answers, and fails here.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};

use crate::common::{PASSWORD, TestApp};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::json;

/// A fingerprint per table: rows and their last change.
async fn fingerprints(app: &TestApp) -> BTreeMap<&'static str, String> {
    let db = app.state.db();
    let mut out = BTreeMap::new();
    for (table, sql) in [
        ("teams", "SELECT COUNT(*) || '' AS f FROM teams"),
        (
            "users",
            "SELECT COUNT(*) || '/' || COALESCE(MAX(updated_at) || '', '') AS f FROM users",
        ),
        (
            "jobs",
            "SELECT COUNT(*) || '/' || COALESCE(MAX(updated_at) || '', '') AS f FROM jobs",
        ),
        ("logs", "SELECT COUNT(*) || '' AS f FROM logs"),
        (
            "resumes",
            "SELECT COUNT(*) || '/' || COUNT(completed_at) || '/' || SUM(CASE WHEN status = 'generating' THEN 1 ELSE 0 END) AS f FROM resumes",
        ),
    ] {
        let row = db
            .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
            .await
            .unwrap()
            .unwrap();
        let f: Option<String> = row.try_get("", "f").unwrap();
        out.insert(table, f.unwrap_or_default());
    }
    out
}

/// Generation bumps so far, by namespace.
async fn bumps(app: &TestApp) -> BTreeMap<String, f64> {
    app.metrics_text()
        .await
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("jobgraph_cache_invalidations_total{namespace=\"")?;
            let (ns, value) = rest.split_once("\"} ")?;
            Some((ns.to_owned(), value.parse().ok()?))
        })
        .collect()
}

/// The namespaces a change to a table must bump. New rows of `jobs` only
/// make the team's lists stale (no answer about a job that did not exist
/// was cached); a changed or deleted job also makes its own detail stale,
/// and any resume change shows in its job's detail and the team's lists.
fn required(table: &str, grew: bool) -> &'static [&'static str] {
    match table {
        "jobs" if grew => &["jobs"],
        "jobs" => &["jobs", "job"],
        "resumes" => &["resumes", "job"],
        "users" | "teams" => &["users"],
        "logs" => &["logs"],
        _ => &[],
    }
}

/// The tables and bumps before a change.
struct Before {
    name: String,
    tables: BTreeMap<&'static str, String>,
    bumps: BTreeMap<String, f64>,
}

async fn before(app: &TestApp, name: &str) -> Before {
    Before {
        name: name.to_owned(),
        tables: fingerprints(app).await,
        bumps: bumps(app).await,
    }
}

/// Waits (the steps after a commit run just after it) until every table
/// changed since `before` has every namespace it requires bumped; fails
/// with what is missing otherwise, or when nothing changed at all.
async fn assert_declared(app: &TestApp, before: Before) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let tables = fingerprints(app).await;
        let bumped: BTreeSet<String> = bumps(app)
            .await
            .into_iter()
            .filter(|(ns, n)| before.bumps.get(ns).copied().unwrap_or(0.0) < *n)
            .map(|(ns, _)| ns)
            .collect();
        let changed: Vec<(&str, bool)> = tables
            .iter()
            .filter(|(t, f)| before.tables.get(*t) != Some(*f))
            .map(|(t, f)| {
                let rows = |f: &str| f.split('/').next().unwrap_or("").parse::<u64>().ok();
                let grew = rows(f) > before.tables.get(t).and_then(|b| rows(b));
                (*t, grew)
            })
            .collect();
        let missing: Vec<String> = changed
            .iter()
            .flat_map(|(table, grew)| {
                required(table, *grew)
                    .iter()
                    .filter(|ns| !bumped.contains(**ns))
                    .map(move |ns| format!("{table} → {ns}"))
            })
            .collect();
        if !changed.is_empty() && missing.is_empty() {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{}: changed {changed:?} but did not bump {missing:?} (bumped {bumped:?})",
            before.name
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn every_mutation_declares_what_each_table_it_changed_makes_stale() {
    // No workers: what a mutation's background work writes is audited on
    // its own (below), not credited to the mutation.
    let app = TestApp::spawn_with(|c| c.tasks.concurrency = 0).await;
    let mut covered = BTreeSet::new();
    // Each step: a mutation, then the tables it changed against the
    // namespaces it bumped.
    async fn step(
        app: &TestApp,
        covered: &mut BTreeSet<&'static str>,
        name: &'static str,
        token: Option<&str>,
        query: &str,
        variables: serde_json::Value,
    ) -> serde_json::Value {
        let before = before(app, name).await;
        let (status, body) = app.post(token, query, variables).await;
        assert_eq!(status, 200, "{name}: {body}");
        assert!(body.get("errors").is_none(), "{name}: {body}");
        assert_declared(app, before).await;
        covered.insert(name);
        body["data"].clone()
    }
    let data = step(&app, &mut covered, "signup", None,
        "mutation($i: SignupInput!) { signup(input: $i) { token } }",
        json!({ "i": { "teamName": "Acme", "name": "Ada", "email": "ada@example.com", "password": PASSWORD } })).await;
    let admin = data["signup"]["token"].as_str().unwrap().to_owned();
    step(
        &app,
        &mut covered,
        "login",
        None,
        "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }",
        json!({ "e": "ada@example.com", "p": PASSWORD }),
    )
    .await;
    let data = step(
        &app,
        &mut covered,
        "createJob",
        Some(&admin),
        "mutation { createJob(input: { title: \"One\", company: \"Co\" }) { id } }",
        json!({}),
    )
    .await;
    let job = data["createJob"]["id"].as_str().unwrap().to_owned();
    step(&app, &mut covered, "createJobs", Some(&admin),
        "mutation { createJobs(input: [{ title: \"Two\", company: \"Co\" }, { title: \"Three\", company: \"Co\" }]) { id } }", json!({})).await;
    step(
        &app,
        &mut covered,
        "updateJob",
        Some(&admin),
        "mutation($id: ID!) { updateJob(id: $id, input: { status: APPLIED }) { id } }",
        json!({ "id": job }),
    )
    .await;
    step(
        &app,
        &mut covered,
        "generateResume",
        Some(&admin),
        "mutation($id: ID!) { generateResume(jobId: $id) { id } }",
        json!({ "id": job }),
    )
    .await;
    let data = step(&app, &mut covered, "createUser", Some(&admin),
        "mutation { createUser(input: { name: \"Mel\", email: \"mel@example.com\", role: MEMBER, password: \"correct-horse-battery\" }) { id } }", json!({})).await;
    let mel = data["createUser"]["id"].as_str().unwrap().to_owned();
    step(
        &app,
        &mut covered,
        "updateUser",
        Some(&admin),
        "mutation($id: ID!) { updateUser(id: $id, input: { name: \"Melanie\" }) { id } }",
        json!({ "id": mel }),
    )
    .await;
    step(
        &app,
        &mut covered,
        "deactivateUser",
        Some(&admin),
        "mutation($id: ID!) { deactivateUser(id: $id) { id } }",
        json!({ "id": mel }),
    )
    .await;
    step(
        &app,
        &mut covered,
        "deleteJob",
        Some(&admin),
        "mutation($id: ID!) { deleteJob(id: $id) }",
        json!({ "id": job }),
    )
    .await;

    // Every mutation of the schema was exercised.
    let table = app.state.executor().analyzer().table();
    let all: BTreeSet<&str> = table.objects["Mutation"]
        .keys()
        .map(String::as_str)
        .collect();
    let missing: Vec<_> = all.difference(&covered).collect();
    assert!(
        missing.is_empty(),
        "mutations not covered by this test: {missing:?}"
    );
}

/// What the background handlers write (a resume written, a resume failed
/// for good, log retention) declares what it makes stale, audited apart
/// from the mutations that started them: the requests go to a replica
/// without workers, the background work runs on a second replica started
/// afterwards, and only the second replica's bumps count. The model API
/// answers each resume after a pause of its own, so each handler write
/// lands in an audit window of its own.
#[tokio::test]
async fn every_background_write_declares_what_it_makes_stale() {
    use wiremock::{
        Mock, MockServer, ResponseTemplate,
        matchers::{body_string_contains, method},
    };
    let model = MockServer::start().await;
    let answer = |status: u16, pause_ms: u64| {
        ResponseTemplate::new(status)
            .set_delay(std::time::Duration::from_millis(pause_ms))
            .set_body_json(if status == 200 {
                json!({
                    "id": "chatcmpl-test",
                    "model": "stand-in-model",
                    "choices": [{ "index": 0, "message": { "role": "assistant", "content": "A resume." }, "finish_reason": "stop" }]
                })
            } else {
                json!({ "error": { "message": "bad request" } })
            })
    };
    Mock::given(method("POST"))
        .and(body_string_contains("Job: Fortunate"))
        .respond_with(answer(200, 300))
        .mount(&model)
        .await;
    Mock::given(method("POST"))
        .and(body_string_contains("Job: Doomed"))
        .respond_with(answer(400, 2000))
        .mount(&model)
        .await;
    let url = model.uri();
    let app = TestApp::spawn_with(move |c| {
        c.model.api_key = Some(jobgraph::secret::Secret::new("sk-test-0123456789"));
        c.model.base_url = url;
        c.model.model = "stand-in-model".into();
        c.tasks.retention_days = 30;
        c.tasks.retention_interval = std::time::Duration::from_millis(300);
        c.tasks.concurrency = 0;
    })
    .await;
    let (token, _) = app.signup("Acme", "ada@example.com").await;
    let generate = "mutation($id: ID!) { generateResume(jobId: $id) { id } }";
    let mut resumes = Vec::new();
    for title in ["Fortunate", "Doomed"] {
        let job = app.create_jobs(&token, title, 1).await.remove(0);
        let data = app.ok(&token, generate, json!({ "id": job })).await;
        resumes.push(data["generateResume"]["id"].clone());
    }
    let status_of = |resume: &serde_json::Value| {
        let (app, token, resume) = (&app, &token, resume.clone());
        async move {
            let data = app
                .ok(
                    token,
                    "query($id: ID!) { resume(id: $id) { status } }",
                    json!({ "id": resume }),
                )
                .await;
            data["resume"]["status"].as_str().unwrap().to_owned()
        }
    };

    // The worker replica: everything it bumps, its handlers bumped.
    let generating = Before {
        name: "the resume handler (GENERATING)".into(),
        tables: fingerprints(&app).await,
        bumps: BTreeMap::new(),
    };
    let mut config = app.config.clone();
    config.tasks.concurrency = 4;
    let worker = TestApp::start(tempfile::tempdir().unwrap(), config).await;
    app.eventually(10, "both resumes to be GENERATING", || async {
        status_of(&resumes[0]).await == "GENERATING" && status_of(&resumes[1]).await == "GENERATING"
    })
    .await;
    assert_declared(&worker, generating).await;
    for (resume, settles_as) in resumes.iter().zip(["READY", "FAILED"]) {
        let audit = before(&worker, &format!("the resume handler ({settles_as})")).await;
        app.eventually(20, &format!("a resume to be {settles_as}"), || async {
            status_of(resume).await == settles_as
        })
        .await;
        assert_declared(&worker, audit).await;
    }
    let app = worker;

    // Retention: old entries appear (written by the test, behind the
    // service's back), then the retention handler deletes them.
    let team_id: i64 = {
        let db = app.state.db();
        let row = db
            .query_one_raw(Statement::from_string(
                db.get_database_backend(),
                "SELECT team_id FROM users WHERE email = 'ada@example.com'",
            ))
            .await
            .unwrap()
            .unwrap();
        row.try_get("", "team_id").unwrap()
    };
    let old_entries = || async {
        let db = app.state.db();
        let row = db
            .query_one_raw(Statement::from_string(
                db.get_database_backend(),
                "SELECT COUNT(*) AS n FROM logs WHERE action = 'old.entry'",
            ))
            .await
            .unwrap()
            .unwrap();
        row.try_get::<i64>("", "n").unwrap()
    };
    let audit = loop {
        let old = chrono::Utc::now() - chrono::Duration::days(45);
        let entries = (0..5)
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
        let audit = before(&app, "log retention").await;
        // Retention may have run in between: then the audit would start
        // after the deletion; write them again.
        if old_entries().await == 5 {
            break audit;
        }
    };
    app.eventually(20, "retention to delete the old entries", || async {
        old_entries().await == 0
    })
    .await;
    assert_declared(&app, audit).await;
}

/// How a write is abandoned half-way.
#[derive(Clone, Copy, PartialEq)]
enum Cut {
    /// The server gives up on the request (its future is dropped).
    ServerTimeout,
    /// The client closes its connection without waiting for the answer.
    ClientDisconnect,
}

/// A write abandoned right after its commit, while the generation bump
/// waits for a Redis that swallows everything: once Redis answers again, no
/// stale answer is served.
async fn write_cut_off_after_commit(cut: Cut) {
    let redis = common::redis::RedisServer::start();
    let proxy = common::proxy::Proxy::start(([127, 0, 0, 1], redis.port).into()).await;
    let url = format!("redis://{}", proxy.addr);
    let app = TestApp::spawn_with(move |c| {
        c.cache.redis_url = Some(jobgraph::secret::Secret::new(url));
        c.cache.command_timeout = std::time::Duration::from_secs(2);
        // Checking the token asks Redis too (and waits out the 2 s command
        // timeout): the cut comes 1 s into the bump after the commit.
        c.http.request_timeout = match cut {
            Cut::ServerTimeout => std::time::Duration::from_secs(3),
            Cut::ClientDisconnect => std::time::Duration::from_secs(30),
        };
    })
    .await;
    let (token, _) = app.signup("Acme", "ada@example.com").await;
    let ids = app.create_jobs(&token, "Old title", 1).await;
    let list = "{ jobs(first: 5) { nodes { title } } }";
    app.cached(&token, list, json!({})).await;
    assert_eq!(app.cached(&token, list, json!({})).await.0, "HIT");

    // The network to Redis swallows everything: the bump after the commit
    // is sent into the void and its answer never comes.
    proxy.swallow(true);
    let update = json!({
        "query": "mutation($id: ID!) { updateJob(id: $id, input: { title: \"New title\" }) { id } }",
        "variables": { "id": ids[0] },
    });
    let impatient = reqwest::Client::builder()
        .timeout(match cut {
            Cut::ServerTimeout => std::time::Duration::from_secs(10),
            Cut::ClientDisconnect => std::time::Duration::from_secs(3),
        })
        .build()
        .unwrap();
    let sent = impatient
        .post(app.url("/graphql"))
        .bearer_auth(&token)
        .json(&update)
        .send()
        .await;
    match cut {
        Cut::ServerTimeout => assert_eq!(sent.unwrap().status(), 504),
        Cut::ClientDisconnect => assert!(sent.unwrap_err().is_timeout()),
    }
    // The commit landed (the bump is what is still waiting).
    app.eventually(10, "the change to be committed", || async {
        let db = app.state.db();
        let row = db
            .query_one_raw(Statement::from_string(
                db.get_database_backend(),
                "SELECT COUNT(*) AS n FROM jobs WHERE title = 'New title'",
            ))
            .await
            .unwrap()
            .unwrap();
        row.try_get::<i64>("", "n").unwrap() == 1
    })
    .await;
    proxy.swallow(false);
    proxy.cut();

    app.eventually(15, "the committed change to be visible", || async {
        let (status, body) = app.post(Some(&token), list, json!({})).await;
        status == 200 && body["data"]["jobs"]["nodes"][0]["title"] == "New title"
    })
    .await;
    // It stays visible once the bumps have landed: no stale entry comes back.
    app.eventually(15, "the cache to serve the new title", || async {
        let (state, data) = app.cached(&token, list, json!({})).await;
        assert_eq!(data["jobs"]["nodes"][0]["title"], "New title");
        state == "HIT"
    })
    .await;
}

#[tokio::test]
async fn a_write_cut_off_by_the_request_timeout_still_makes_old_answers_unreachable() {
    write_cut_off_after_commit(Cut::ServerTimeout).await;
}

#[tokio::test]
async fn a_write_whose_client_disconnects_still_makes_old_answers_unreachable() {
    write_cut_off_after_commit(Cut::ClientDisconnect).await;
}
