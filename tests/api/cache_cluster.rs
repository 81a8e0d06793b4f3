//! The cache on a 3-primary Redis Cluster the test starts itself: a team's
//! keys share one slot, lookups and bumps never hit CROSSSLOT, and pattern
//! clearing finds the keys on whichever node owns the team's slot.

use std::time::Duration;

use crate::common::{TestApp, redis::RedisCluster};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_works_on_a_cluster_and_clears_only_stale_keys_of_one_slot() {
    let cluster = RedisCluster::start();
    let url = cluster.url();
    let app = TestApp::spawn_with(move |c| {
        c.cache.redis_url = Some(jobgraph::secret::Secret::new(url));
        c.cache.sweep_delay = Duration::from_millis(100);
        // No background refresh: what the sweeps clear is what the write
        // made stale, nothing recomputed in between.
        c.tasks.concurrency = 0;
    })
    .await;
    let prefix = app.config.cache.key_prefix.clone();
    let mut teams = Vec::new();
    for t in 0..4 {
        let (token, _) = app
            .signup(&format!("Team {t}"), &format!("t{t}@example.com"))
            .await;
        let ids = app.create_jobs(&token, &format!("T{t} job"), 3).await;
        teams.push((token, ids));
    }
    app.sweeps_done().await;
    let detail = "query($id: ID!) { job(id: $id) { title } }";
    let list = "{ jobs { nodes { title createdBy { name } } } jobStats { total } }";
    for (token, ids) in &teams {
        for query_vars in [
            (list, json!({})),
            (detail, json!({ "id": ids[0] })),
            (detail, json!({ "id": ids[1] })),
        ] {
            assert_eq!(
                app.cached(token, query_vars.0, query_vars.1.clone())
                    .await
                    .0,
                "MISS"
            );
            assert_eq!(app.cached(token, query_vars.0, query_vars.1).await.0, "HIT");
        }
    }
    // Concurrent hits of teams whose slots sit on different nodes share one
    // pipeline of lookups; every answer is its own team's.
    let concurrent = teams
        .iter()
        .cycle()
        .take(40)
        .map(|(token, _)| app.cached(token, list, json!({})));
    for (n, (state, data)) in futures::future::join_all(concurrent)
        .await
        .into_iter()
        .enumerate()
    {
        assert_eq!(state, "HIT");
        assert!(
            data.to_string().contains(&format!("T{} job", n % 4)),
            "{data}"
        );
    }
    let all = cluster.keys(&format!("{prefix}:*:r:*"));
    assert_eq!(all.len(), 12, "{all:?}");

    // Teams spread over the nodes, each team's keys on one node.
    let mut nodes_used = std::collections::BTreeSet::new();
    for t in 1..=4 {
        let mut nodes = std::collections::BTreeSet::new();
        for port in &cluster.ports {
            let out = std::process::Command::new("redis-cli")
                .args([
                    "-p",
                    &port.to_string(),
                    "--scan",
                    "--pattern",
                    &format!("{prefix}:*{{t{t}}}:*"),
                ])
                .output()
                .unwrap();
            if !String::from_utf8_lossy(&out.stdout).trim().is_empty() {
                nodes.insert(*port);
            }
        }
        assert_eq!(nodes.len(), 1, "team {t}'s keys sit on {nodes:?}");
        nodes_used.extend(nodes);
    }

    // Write to team 0's first job: its list and that job's detail go, the
    // rest stays, on every node.
    let (token, ids) = &teams[0];
    app.ok(
        token,
        "mutation($id: ID!) { updateJob(id: $id, input: {title: \"Changed\"}) { id } }",
        json!({ "id": ids[0] }),
    )
    .await;
    app.sweeps_done().await;
    let left = cluster.keys(&format!("{prefix}:*:r:*"));
    let team0: Vec<&String> = left.iter().filter(|k| k.contains("{t1}")).collect();
    // Team 0 keeps the untouched second job's detail and, at most, the list
    // the background refresh recomputed; the first job's old detail is gone.
    let first_job = format!(
        ":r:job:{}:",
        jobgraph::graphql::ids::decode(
            jobgraph::graphql::ids::Kind::Job,
            &ids[0].as_str().into(),
            "id",
        )
        .unwrap()
    );
    assert!(!team0.iter().any(|k| k.contains(&first_job)), "{team0:?}");
    assert!(team0.len() <= 2, "{team0:?}");
    if team0.iter().any(|k| k.contains(":r:mix:")) {
        let (state, data) = app.cached(token, list, json!({})).await;
        assert_eq!(state, "HIT");
        assert!(data.to_string().contains("Changed"), "{data}");
    }
    assert_eq!(
        left.len() - team0.len(),
        9,
        "other teams' keys must stay: {left:?}"
    );
    assert_eq!(
        app.cached(token, detail, json!({ "id": ids[1] })).await.0,
        "HIT"
    );
    let (state, data) = app.cached(token, detail, json!({ "id": ids[0] })).await;
    assert_eq!(
        (state.as_str(), &data["job"]["title"]),
        ("MISS", &json!("Changed"))
    );
    assert!(app.metric("jobgraph_cache_keys_removed_total").await >= 1.0);
    assert_eq!(app.metric("jobgraph_cache_sweep_failures_total").await, 0.0);
    assert_eq!(
        app.metric("jobgraph_cache_errors_total{kind=\"job_detail\"}")
            .await,
        0.0
    );
}

/// Live events travel over sharded pub/sub: each team's channel lives on
/// the shard of its slot, and a write on one replica reaches a subscriber
/// on the other whichever node that is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_events_cross_replicas_on_a_cluster() {
    use crate::common::live::WsClient;
    let cluster = RedisCluster::start();
    let url = cluster.url();
    let one = TestApp::spawn_with(move |c| {
        c.cache.redis_url = Some(jobgraph::secret::Secret::new(url));
    })
    .await;
    let two = TestApp::start(tempfile::tempdir().unwrap(), one.config.clone()).await;
    let create = "mutation($t: String!) { createJob(input: {title: $t, company: \"C\"}) { id } }";
    // Several teams, so their channels fall on different nodes.
    for t in 0..4 {
        let (token, _) = one
            .signup(&format!("Live {t}"), &format!("live{t}@example.com"))
            .await;
        let mut ws = WsClient::connect(&two, &token).await;
        ws.subscribe(
            "s",
            "subscription { jobEvents { job { title } } }",
            json!({}),
        )
        .await;
        let mut heard = None;
        for attempt in 0..50 {
            let title = format!("T{t}-{attempt}");
            one.ok(&token, create, json!({ "t": title })).await;
            if let Some(Ok(message)) = ws.recv_within(Duration::from_millis(200)).await {
                heard = Some(message);
                break;
            }
        }
        let message = heard.expect("no event crossed the cluster");
        let title = message["payload"]["data"]["jobEvents"]["job"]["title"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(title.starts_with(&format!("T{t}-")), "{message}");
    }
}
