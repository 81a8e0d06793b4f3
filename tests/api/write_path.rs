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

/// The namespaces whose change makes a table's rows stale in answers.
fn namespaces_of(table: &str) -> &'static [&'static str] {
    match table {
        "jobs" => &["jobs", "job"],
        "resumes" => &["resumes", "job"],
        "users" | "teams" => &["users"],
        "logs" => &["logs"],
        _ => &[],
    }
}

#[tokio::test]
async fn every_mutation_declares_what_each_table_it_changed_makes_stale() {
    let app = TestApp::spawn().await;
    let mut covered = BTreeSet::new();
    // Each step: a mutation (and, for generateResume, the background work it
    // starts), then the tables it changed against the namespaces it bumped.
    async fn step(
        app: &TestApp,
        covered: &mut BTreeSet<&'static str>,
        name: &'static str,
        token: Option<&str>,
        query: &str,
        variables: serde_json::Value,
    ) -> serde_json::Value {
        let tables_before = fingerprints(app).await;
        let bumps_before = bumps(app).await;
        let (status, body) = app.post(token, query, variables).await;
        assert_eq!(status, 200, "{name}: {body}");
        assert!(body.get("errors").is_none(), "{name}: {body}");
        if name == "generateResume" {
            let id = body["data"]["generateResume"]["id"].clone();
            app.eventually(20, "the resume to be written", || async {
                let data = app
                    .ok(
                        token.unwrap(),
                        "query($id: ID!) { resume(id: $id) { status } }",
                        json!({ "id": id }),
                    )
                    .await;
                data["resume"]["status"] == "READY"
            })
            .await;
        }
        let tables_after = fingerprints(app).await;
        let bumps_after = bumps(app).await;
        let bumped: BTreeSet<String> = bumps_after
            .iter()
            .filter(|(ns, n)| bumps_before.get(*ns).copied().unwrap_or(0.0) < **n)
            .map(|(ns, _)| ns.clone())
            .collect();
        let changed: Vec<&str> = tables_after
            .iter()
            .filter(|(t, f)| tables_before.get(*t) != Some(*f))
            .map(|(t, _)| *t)
            .collect();
        assert!(!changed.is_empty(), "{name} changed nothing");
        for table in changed {
            assert!(
                namespaces_of(table).iter().any(|ns| bumped.contains(*ns)),
                "{name} changed `{table}` but bumped only {bumped:?}"
            );
        }
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

#[tokio::test]
async fn a_write_cut_off_right_after_its_commit_still_makes_old_answers_unreachable() {
    let redis = common::redis::RedisServer::start();
    let proxy = common::proxy::Proxy::start(([127, 0, 0, 1], redis.port).into()).await;
    let url = format!("redis://{}", proxy.addr);
    let app = TestApp::spawn_with(move |c| {
        c.cache.redis_url = Some(jobgraph::secret::Secret::new(url));
        c.cache.command_timeout = std::time::Duration::from_secs(2);
        // The server gives up on the request: its future is dropped right
        // after the commit, while the generation bump waits for Redis.
        c.http.request_timeout = std::time::Duration::from_millis(300);
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
    let (status, _) = app
        .post(
            Some(&token),
            "mutation($id: ID!) { updateJob(id: $id, input: { title: \"New title\" }) { id } }",
            json!({ "id": ids[0] }),
        )
        .await;
    assert_eq!(status, 504);
    // The client disconnects, too.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    proxy.swallow(false);
    proxy.cut();

    app.eventually(15, "the committed change to be visible", || async {
        let (status, body) = app.post(Some(&token), list, json!({})).await;
        status == 200 && body["data"]["jobs"]["nodes"][0]["title"] == "New title"
    })
    .await;
    // It stays visible once Redis is back: no stale entry comes back.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let (_, data) = app.cached(&token, list, json!({})).await;
    assert_eq!(data["jobs"]["nodes"][0]["title"], "New title");
}
