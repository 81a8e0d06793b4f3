//! Reads from a real streaming replica that lags on purpose
//! (`recovery_min_apply_delay`), made by the test on spare ports: a write
//! through one jobgraph replica is read back at once through another, most
//! reads still go to the replica, and losing the replica fails no request.

use std::time::Duration;

use serde_json::json;

use crate::common::{self, TestApp, postgres::PgServer};

/// Every kind of read a write can change, with nested fields.
const READS: &[(&str, &str)] = &[
    (
        "list",
        "{ jobs(first: 50) { totalCount nodes { title createdBy { name } team { name } } } }",
    ),
    ("stats", "{ jobStats { total byStatus { status count } } }"),
    (
        "logs",
        "{ logs(first: 50) { totalCount nodes { action } } }",
    ),
];
const DETAIL: &str = "query($id: ID!) { job(id: $id) { title status createdBy { name } } }";

async fn replicas_on(
    primary: &PgServer,
    replica: &PgServer,
    redis: Option<String>,
    cache: bool,
) -> (TestApp, TestApp) {
    let primary_url = primary.url();
    let replica_url = replica.url();
    let one = TestApp::spawn_with(move |c| {
        c.database.url = jobgraph::secret::Secret::new(primary_url);
        c.database.schema = None;
        c.database.max_connections = Some(5);
        c.database.read_urls = vec![jobgraph::secret::Secret::new(replica_url)];
        c.database.replica_max_lag = Duration::from_secs(10);
        c.database.replica_check = Duration::from_millis(50);
        c.cache.redis_url = redis.map(jobgraph::secret::Secret::new);
        c.cache.enabled = cache;
    })
    .await;
    let two = TestApp::start(tempfile::tempdir().unwrap(), one.config.clone()).await;
    (one, two)
}

fn reads_by(metrics: &str, pool: &str) -> f64 {
    let prefix = format!("jobgraph_db_reads_total{{pool=\"{pool}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

async fn wait_until_caught_up(app: &TestApp) {
    for _ in 0..100 {
        let ready = app.ready().await;
        if ready["replicas"][0]["up"] == true && ready["replicas"][0]["lagMs"] == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the replica never caught up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_is_read_back_at_once_through_another_replica_while_the_replica_lags() {
    let primary = PgServer::start_with(&["wal_level = replica", "max_wal_senders = 10"]);
    let replica = PgServer::replica_of(&primary, "1s");
    let redis = common::redis::RedisServer::start();
    for cache in [true, false] {
        let (one, two) = replicas_on(&primary, &replica, Some(redis.url()), cache).await;
        let email = format!("ada-{cache}@example.com");
        let (token, _) = one.signup(&format!("Replicated {cache}"), &email).await;
        let mut stale = Vec::new();
        for round in 0..5 {
            // Write through one, read through two at once: the replica is a
            // second behind, so these must come from the primary.
            let title = format!("Job {round}");
            let id = one
                .ok(&token, "mutation($t: String!) { createJob(input: {title: $t, company: \"C\"}) { id } }", json!({ "t": title }))
                .await["createJob"]["id"]
                .as_str()
                .unwrap()
                .to_owned();
            let detail = two.ok(&token, DETAIL, json!({ "id": id })).await;
            if detail["job"]["title"] != title.as_str() {
                stale.push(format!("detail {round}: {detail}"));
            }
            for (name, query) in READS {
                let data = two.ok(&token, query, json!({})).await;
                let text = data.to_string();
                let expected = match *name {
                    "list" => data["jobs"]["totalCount"] == round + 1 && text.contains(&title),
                    "stats" => data["jobStats"]["total"] == round + 1,
                    _ => data["logs"]["totalCount"].as_i64().unwrap_or(0) > round,
                };
                if !expected {
                    stale.push(format!("{name} {round}: {text}"));
                }
            }
        }
        assert!(stale.is_empty(), "cache {cache}: stale reads: {stale:#?}");

        // Once the replica has replayed the team's writes, reads go there.
        wait_until_caught_up(&two).await;
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let before = reads_by(&two.metrics_text().await, "replica0");
        for _ in 0..10 {
            for (_, query) in READS {
                // Distinct variables: past the response cache every time.
                let _ = two
                    .post(Some(&token), query, json!({ "n": rand_suffix() }))
                    .await;
            }
        }
        let metrics = two.metrics_text().await;
        let on_replica = reads_by(&metrics, "replica0") - before;
        assert!(
            on_replica >= 25.0,
            "cache {cache}: only {on_replica} of 30 reads on the replica\n{metrics}"
        );
    }
}

fn rand_suffix() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_the_replica_mid_run_fails_no_request() {
    let primary = PgServer::start_with(&["wal_level = replica", "max_wal_senders = 10"]);
    let mut replica = PgServer::replica_of(&primary, "0");
    let (one, two) = replicas_on(&primary, &replica, None, false).await;
    let (token, _) = one.signup("Survives", "ada@example.com").await;
    one.create_jobs(&token, "Job", 3).await;
    wait_until_caught_up(&one).await;
    let reads = async {
        let mut failed = Vec::new();
        for i in 0..200 {
            let (status, body) = one.post(Some(&token), READS[0].1, json!({ "i": i })).await;
            if status != 200
                || body.get("errors").is_some()
                || body["data"]["jobs"]["totalCount"] != 3
            {
                failed.push(format!("{status} {body}"));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        failed
    };
    let stop = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        replica.stop();
    };
    let (failed, ()) = tokio::join!(reads, stop);
    assert!(
        failed.is_empty(),
        "{} failed requests: {:?}",
        failed.len(),
        &failed[..failed.len().min(3)]
    );
    let ready = one.ready().await;
    assert_eq!(
        ready["status"], "ready",
        "a lost replica does not make a replica unready"
    );
    assert_eq!(ready["replicas"][0]["up"], false, "{ready}");
    drop(two);
}
