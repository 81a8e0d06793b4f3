//! The counters behind `totalCount` and `jobStats` equal a recount of the
//! rows after any mix of writes — concurrent ones included — and after
//! writes made around the service; `repair` recomputes them.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use crate::common::TestApp;
use rand::{Rng, SeedableRng, rngs::StdRng};
use sea_orm::{ConnectionTrait, TransactionTrait};
use serde_json::json;

const STATUSES: [&str; 6] = [
    "SAVED",
    "APPLIED",
    "INTERVIEWING",
    "OFFER",
    "REJECTED",
    "ARCHIVED",
];
const COMPANIES: [&str; 4] = ["Acme", "Globex", "Initech", "Umbrella"];

/// One writer: random creates, bulk creates, status and company changes and
/// deletes on the team's jobs.
async fn writer(app: &TestApp, token: String, seed: u64, ids: Arc<Mutex<Vec<String>>>) {
    let mut rng = StdRng::seed_from_u64(seed);
    for _ in 0..30 {
        let status = STATUSES[rng.random_range(0..STATUSES.len())];
        let company = COMPANIES[rng.random_range(0..COMPANIES.len())];
        let pick = |rng: &mut StdRng| {
            let ids = ids.lock().unwrap();
            (!ids.is_empty()).then(|| ids[rng.random_range(0..ids.len())].clone())
        };
        let (query, variables) = match rng.random_range(0..10) {
            0..=3 => (
                "mutation($s: JobStatus!, $c: String!) { createJob(input: { title: \"T\", company: $c, status: $s }) { id } }",
                json!({ "s": status, "c": company }),
            ),
            4 => (
                "mutation($s: JobStatus!, $c: String!) { createJobs(input: [{ title: \"A\", company: $c, status: $s }, { title: \"B\", company: \"Acme\" }, { title: \"C\", company: $c }]) { id } }",
                json!({ "s": status, "c": company }),
            ),
            5..=7 => match pick(&mut rng) {
                Some(id) => (
                    "mutation($id: ID!, $s: JobStatus!, $c: String!) { updateJob(id: $id, input: { status: $s, company: $c }) { id } }",
                    json!({ "id": id, "s": status, "c": company }),
                ),
                None => continue,
            },
            _ => match pick(&mut rng) {
                Some(id) => (
                    "mutation($id: ID!) { deleteJob(id: $id) }",
                    json!({ "id": id }),
                ),
                None => continue,
            },
        };
        let (_, body) = app.post(Some(&token), query, variables).await;
        let data = &body["data"];
        let mut ids = ids.lock().unwrap();
        if let Some(id) = data["createJob"]["id"].as_str() {
            ids.push(id.to_owned());
        }
        for job in data["createJobs"].as_array().into_iter().flatten() {
            ids.push(job["id"].as_str().unwrap().to_owned());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn counters_equal_a_recount_after_concurrent_random_writes() {
    let app = TestApp::spawn_with(|c| c.cache.enabled = false).await;
    let (a, _) = app.signup("Alpha", "a@example.com").await;
    let (b, _) = app.signup("Beta", "b@example.com").await;
    let ids_a = Arc::new(Mutex::new(Vec::new()));
    let ids_b = Arc::new(Mutex::new(Vec::new()));
    let writers: Vec<_> = (0..8u64)
        .map(|w| {
            let (token, ids) = if w % 2 == 0 {
                (a.clone(), Arc::clone(&ids_a))
            } else {
                (b.clone(), Arc::clone(&ids_b))
            };
            writer(&app, token, w, ids)
        })
        .collect();
    futures::future::join_all(writers).await;

    let drift = jobgraph::db::counters::drift(app.state.db()).await.unwrap();
    assert!(drift.is_empty(), "counters drifted: {drift:?}");
    // And the API answers from them agree with a recount.
    for token in [&a, &b] {
        let data = app
            .ok(
                token,
                "{ jobs(first: 0) { totalCount } applied: jobs(first: 0, filter: { status: APPLIED }) { totalCount } acme: jobs(first: 0, filter: { company: \"Acme\" }) { totalCount } searched: jobs(first: 0, filter: { search: \"\" }) { totalCount } jobStats { total byStatus { status count } topCompanies(limit: 4) { company count } } logs(first: 0) { totalCount } }",
                json!({}),
            )
            .await;
        let total = data["jobs"]["totalCount"].as_u64().unwrap();
        assert_eq!(data["searched"]["totalCount"].as_u64().unwrap(), total);
        assert_eq!(data["jobStats"]["total"].as_u64().unwrap(), total);
        let by_status: u64 = data["jobStats"]["byStatus"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["count"].as_u64().unwrap())
            .sum();
        assert_eq!(by_status, total);
        let by_company: u64 = data["jobStats"]["topCompanies"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["count"].as_u64().unwrap())
            .sum();
        assert_eq!(by_company, total, "four companies in all");
        let applied = data["jobStats"]["byStatus"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["status"] == "APPLIED")
            .unwrap()["count"]
            .clone();
        assert_eq!(data["applied"]["totalCount"], applied);
        assert!(total > 0);
    }
    let written = ids_a.lock().unwrap().len() + ids_b.lock().unwrap().len();
    println!("counters: {written} jobs written by 8 concurrent writers, 0 drift");
}

#[tokio::test]
async fn writes_around_the_service_are_counted_and_repair_recomputes() {
    let app = TestApp::spawn().await;
    let (token, _) = app.signup("Alpha", "a@example.com").await;
    app.create_jobs(&token, "Job", 5).await;
    let db = app.state.db();
    // A bulk load with plain SQL (as a migration script or a restore would
    // do) is counted by the database itself.
    db.execute_unprepared(
        "INSERT INTO jobs (team_id, title, company, status, created_at, updated_at) \
         SELECT team_id, 'Loaded', 'Hooli', 'offer', created_at, updated_at FROM jobs",
    )
    .await
    .unwrap();
    db.execute_unprepared(
        "UPDATE jobs SET status = 'rejected' WHERE title = 'Loaded' AND id % 2 = 0",
    )
    .await
    .unwrap();
    db.execute_unprepared("DELETE FROM logs WHERE action = 'team.created'")
        .await
        .unwrap();
    let drift = jobgraph::db::counters::drift(db).await.unwrap();
    assert!(drift.is_empty(), "{drift:?}");
    let data = app
        .ok(
            &token,
            "{ jobStats { total topCompanies(limit: 1) { company count } } }",
            json!({}),
        )
        .await;
    assert_eq!(data["jobStats"]["total"], 10);
    assert_eq!(data["jobStats"]["topCompanies"][0]["company"], "Hooli");
    assert_eq!(data["jobStats"]["topCompanies"][0]["count"], 5);

    // Counters damaged behind the triggers' back are found and repaired.
    db.execute_unprepared("UPDATE job_counts SET n = n + 7")
        .await
        .unwrap();
    assert!(!jobgraph::db::counters::drift(db).await.unwrap().is_empty());
    jobgraph::db::counters::repair(db).await.unwrap();
    assert!(jobgraph::db::counters::drift(db).await.unwrap().is_empty());
}

/// On PostgreSQL, an app with a team of one job and its admin's token;
/// `None` on SQLite (the PostgreSQL pass of `.ci/run` runs these tests:
/// README, tests).
async fn postgres_team_with_a_job(team: &str, email: &str) -> Option<(TestApp, String)> {
    crate::common::postgres_url()?;
    let app = TestApp::spawn().await;
    let (token, _) = app.signup(team, email).await;
    app.create_jobs(&token, "Job", 1).await;
    Some((app, token))
}

/// The one number `sql` selects.
async fn scalar(db: &impl ConnectionTrait, sql: &str) -> i64 {
    db.query_one_raw(sea_orm::Statement::from_string(
        db.get_database_backend(),
        sql,
    ))
    .await
    .unwrap()
    .unwrap()
    .try_get_by_index(0)
    .unwrap()
}

#[tokio::test]
async fn a_writer_with_an_open_transaction_does_not_hold_up_its_teams_other_writers() {
    // SQLite has one writer at a time by design (BEGIN IMMEDIATE).
    let Some((app, token)) = postgres_team_with_a_job("Busy", "busy@example.com").await else {
        return;
    };
    let db = app.state.db();
    let team = scalar(db, "SELECT team_id FROM jobs LIMIT 1").await;
    // A transaction that inserted a job (and a log entry) of the team and
    // has not committed yet: it changes the same counters as the writes below.
    let open = db.begin().await.unwrap();
    open.execute_unprepared(&format!(
        "INSERT INTO jobs (team_id, title, company, status, created_at, updated_at) \
         VALUES ({team}, 'Open', 'Acme', 'saved', now(), now())"
    ))
    .await
    .unwrap();
    open.execute_unprepared(&format!(
        "INSERT INTO logs (team_id, action, level, message, created_at) \
         VALUES ({team}, 'job.created', 'info', 'open', now())"
    ))
    .await
    .unwrap();
    // The service's writes of the same team, status, company and log level
    // commit meanwhile: the counters are locked only while a transaction
    // commits, not from its first write to its COMMIT.
    let mutation = "mutation { createJob(input: { title: \"Next\", company: \"Acme\" }) { id } }";
    for _ in 0..3 {
        let answer = tokio::time::timeout(
            Duration::from_secs(3),
            app.post(Some(&token), mutation, json!({})),
        )
        .await
        .expect("a write waited for another transaction's COMMIT");
        assert_eq!(answer.0, 200, "{}", answer.1);
    }
    open.commit().await.unwrap();
    let drift = jobgraph::db::counters::drift(db).await.unwrap();
    assert!(drift.is_empty(), "{drift:?}");
    let data = app.ok(&token, "{ jobStats { total } }", json!({})).await;
    assert_eq!(data["jobStats"]["total"], 5);
}

/// PostgreSQL folds a transaction's counter deltas once, at COMMIT, however
/// many statements wrote them — also when the transaction applied them
/// early (`SET CONSTRAINTS ALL IMMEDIATE`) and wrote more afterwards, or
/// rolled a savepoint back. (Folding once per delta row made a transaction
/// of many distinct companies cost the square of their number at COMMIT.)
#[tokio::test]
async fn one_transactions_deltas_are_folded_once_whatever_it_did_in_between() {
    // SQLite counts in row triggers, with nothing deferred.
    let Some((app, token)) = postgres_team_with_a_job("Bulk", "bulk@example.com").await else {
        return;
    };
    let db = app.state.db();
    // Three statements of 1,000 jobs, each with a company of its own.
    let insert = |tag: &str| {
        format!(
            "INSERT INTO jobs (team_id, created_by_id, title, company, status, created_at, updated_at) \
             SELECT team_id, created_by_id, 'Bulk', '{tag}-' || g, status, now(), now() \
             FROM jobs, generate_series(1, 1000) g WHERE id = (SELECT min(id) FROM jobs)"
        )
    };
    let txn = db.begin().await.unwrap();
    for sql in [
        insert("first"),
        "SET CONSTRAINTS ALL IMMEDIATE".into(),
        "SET CONSTRAINTS ALL DEFERRED".into(),
        insert("second"),
        "SAVEPOINT undone".into(),
        insert("undone"),
        "ROLLBACK TO SAVEPOINT undone".into(),
        insert("third"),
        "UPDATE jobs SET status = 'applied' WHERE company LIKE 'second-%'".into(),
        "DELETE FROM jobs WHERE company LIKE 'third-1%'".into(),
    ] {
        txn.execute_unprepared(&sql).await.unwrap();
    }
    txn.commit().await.unwrap();

    assert!(
        jobgraph::db::counters::drift(db).await.unwrap().is_empty(),
        "counters differ from a recount"
    );
    for table in ["count_deltas", "count_delta_txs"] {
        let left = scalar(db, &format!("SELECT COUNT(*) FROM {table}")).await;
        assert_eq!(left, 0, "{table} keeps rows after COMMIT");
    }
    let data = app
        .ok(
            &token,
            "{ jobs(first: 1) { totalCount } applied: jobs(first: 1, filter: { status: APPLIED }) { totalCount } }",
            json!({}),
        )
        .await;
    // 1 + 3 × 1,000 − the 112 deleted (third-1, -10…19, -100…199, -1000).
    assert_eq!(data["jobs"]["totalCount"], 2889, "{data}");
    assert_eq!(data["applied"]["totalCount"], 1000, "{data}");
}
