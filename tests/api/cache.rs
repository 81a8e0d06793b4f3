//! The response cache against a real Redis: the shared one when `REDIS_URL`
//! is set (each test under a key prefix of its own), otherwise a server the
//! test starts itself.

use std::{sync::Arc, time::Duration};

use crate::common::{TestApp, redis::RedisServer};
use jobgraph::{
    cache::{self, Computed, Lookup, Plan, Purpose, Scope},
    config::Config,
    db::enums::Role,
    graphql::ids::{self, Kind},
};
use serde_json::{Value, json};

/// Redis for one test: `REDIS_URL`, or a server of the test's own.
fn redis() -> (String, Option<RedisServer>) {
    match std::env::var("REDIS_URL").ok().filter(|u| !u.is_empty()) {
        Some(url) => (url, None),
        None => {
            let server = RedisServer::start();
            (server.url(), Some(server))
        }
    }
}

async fn app_on(url: &str, adjust: impl FnOnce(&mut Config)) -> TestApp {
    let url = url.to_owned();
    TestApp::spawn_with(move |c| {
        c.cache.redis_url = Some(jobgraph::secret::Secret::new(url));
        c.cache.sweep_delay = Duration::from_millis(50);
        adjust(c);
    })
    .await
}

fn redis_cli(url: &str, args: &[&str]) -> String {
    let out = std::process::Command::new("redis-cli")
        .arg("-u")
        .arg(url)
        .args(args)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Keys of this app's cache (its prefix) matching `suffix`.
fn keys(app: &TestApp, url: &str, suffix: &str) -> Vec<String> {
    let pattern = format!("{}:*{suffix}", app.config.cache.key_prefix);
    let mut keys: Vec<String> = redis_cli(url, &["--scan", "--pattern", &pattern])
        .lines()
        .map(str::to_owned)
        .filter(|l| !l.is_empty())
        .collect();
    keys.sort();
    keys
}

const JOB_DETAIL: &str =
    "query($id: ID!) { job(id: $id) { title status createdBy { name } resumes { status } } }";
const JOBS_LIST: &str =
    "{ jobs(first: 5) { totalCount nodes { title createdBy { name } team { name } } } }";

#[tokio::test]
async fn every_cached_kind_misses_once_then_hits_with_the_same_answer() {
    let (url, _server) = redis();
    let app = app_on(&url, |_| {}).await;
    let (token, _) = app.signup("Cached", "admin@example.com").await;
    let ids = app.create_jobs(&token, "Job", 3).await;
    let cases: Vec<(&str, &str, Value)> = vec![
        ("jobs_list", JOBS_LIST, json!({})),
        (
            "jobs_list",
            "{ jobsPage(page: 1, pageSize: 2) { total items { title } } }",
            json!({}),
        ),
        ("job_detail", JOB_DETAIL, json!({ "id": ids[0] })),
        (
            "job_stats",
            "{ jobStats { total byStatus { status count } topCompanies { company count } } }",
            json!({}),
        ),
        (
            "logs",
            "{ logs(first: 3) { totalCount nodes { action user { name } } } }",
            json!({}),
        ),
    ];
    for (kind, query, vars) in &cases {
        let (first, miss) = app.cached(&token, query, vars.clone()).await;
        let (second, hit) = app.cached(&token, query, vars.clone()).await;
        assert_eq!(
            (first.as_str(), second.as_str()),
            ("MISS", "HIT"),
            "{kind}: {query}"
        );
        assert_eq!(miss, hit, "{query}");
        let hits = app
            .metric(&format!("jobgraph_cache_hits_total{{kind=\"{kind}\"}}"))
            .await;
        assert!(hits >= 1.0, "{kind} hits: {hits}");
    }
    // Mutations and uncached fields never touch the cache.
    for query in ["{ viewer { name } }", "{ users { totalCount } }"] {
        let (state, _) = app.cached(&token, query, json!({})).await;
        assert_eq!(state, "", "{query}");
    }
    let metrics = app.metrics_text().await;
    assert!(
        metrics.contains("jobgraph_cache_hit_rate{kind=\"job_stats\"} 0.5"),
        "{metrics}"
    );
}

#[tokio::test]
async fn entries_live_as_long_as_their_kind_says_with_a_little_jitter() {
    let (url, _server) = redis();
    let app = app_on(&url, |c| {
        c.cache.ttl.jobs_list = Duration::from_secs(1);
        c.cache.ttl.job_detail = Duration::from_secs(40);
    })
    .await;
    let (token, _) = app.signup("Ttl", "admin@example.com").await;
    let ids = app.create_jobs(&token, "Job", 1).await;
    app.cached(&token, JOBS_LIST, json!({})).await;
    app.cached(&token, JOB_DETAIL, json!({ "id": ids[0] }))
        .await;
    let list = keys(&app, &url, ":r:list:*");
    let detail = keys(&app, &url, ":r:job:*");
    assert_eq!((list.len(), detail.len()), (1, 1), "{list:?} {detail:?}");
    let pttl = |key: &str| redis_cli(&url, &["pttl", key]).parse::<i64>().unwrap();
    assert!((800..=1000).contains(&pttl(&list[0])), "{}", pttl(&list[0]));
    assert!(
        (35_000..=40_000).contains(&pttl(&detail[0])),
        "{}",
        pttl(&detail[0])
    );
    assert_eq!(app.cached(&token, JOBS_LIST, json!({})).await.0, "HIT");
    // The one-second entry expires: the first read after it misses.
    app.eventually(5, "the list entry to expire", || async {
        app.cached(&token, JOBS_LIST, json!({})).await.0 == "MISS"
    })
    .await;
}

#[tokio::test]
async fn a_warm_entry_of_one_team_is_never_served_to_another() {
    let (url, _server) = redis();
    let app = app_on(&url, |_| {}).await;
    let (a, _) = app.signup("Team A", "a@example.com").await;
    let (b, _) = app.signup("Team B", "b@example.com").await;
    app.create_jobs(&a, "Alpha", 2).await;
    app.create_jobs(&b, "Beta", 2).await;
    let query = "{ jobs { nodes { title } } jobStats { total } }";
    app.cached(&a, query, json!({})).await;
    let (state, a_data) = app.cached(&a, query, json!({})).await;
    assert_eq!(state, "HIT");
    let (state, b_data) = app.cached(&b, query, json!({})).await;
    assert_eq!(
        state, "MISS",
        "team B must not be answered from team A's entry"
    );
    assert!(a_data.to_string().contains("Alpha") && !a_data.to_string().contains("Beta"));
    assert!(
        b_data.to_string().contains("Beta") && !b_data.to_string().contains("Alpha"),
        "{b_data}"
    );
    // Every key of a team shares its hash tag (one cluster slot).
    for key in keys(&app, &url, "") {
        assert!(key.contains(":{t1}:") || key.contains(":{t2}:"), "{key}");
    }
}

#[tokio::test]
async fn members_read_their_own_log_from_the_cache_and_admins_the_whole_team() {
    let (url, _server) = redis();
    let app = app_on(&url, |_| {}).await;
    let (admin, _) = app.signup("Logs", "admin@example.com").await;
    let (m1, _) = app.add_user(&admin, "m1@example.com", "MEMBER").await;
    let (m2, _) = app.add_user(&admin, "m2@example.com", "MEMBER").await;
    app.create_jobs(&m1, "One", 1).await;
    app.create_jobs(&m2, "Two", 1).await;
    let query = "{ logs { totalCount nodes { message user { email } } } }";
    for token in [&admin, &m1, &m2] {
        app.cached(token, query, json!({})).await;
    }
    let emails = |data: &Value| -> Vec<String> {
        let mut e: Vec<String> = data["logs"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["user"]["email"].as_str().unwrap().to_owned())
            .collect();
        e.dedup();
        e.sort();
        e.dedup();
        e
    };
    let (state, d1) = app.cached(&m1, query, json!({})).await;
    assert_eq!(state, "HIT");
    assert_eq!(emails(&d1), ["m1@example.com"]);
    let (state, d2) = app.cached(&m2, query, json!({})).await;
    assert_eq!(state, "HIT");
    assert_eq!(emails(&d2), ["m2@example.com"]);
    let (_, all) = app.cached(&admin, query, json!({})).await;
    assert_eq!(emails(&all).len(), 3);
}

#[tokio::test]
async fn writes_are_read_back_at_once_on_another_replica_sharing_the_redis() {
    let (url, _server) = redis();
    let one = app_on(&url, |_| {}).await;
    let two = TestApp::start(tempfile::tempdir().unwrap(), one.config.clone()).await;
    let (token, _) = one.signup("Replicas", "admin@example.com").await;
    let ids = one.create_jobs(&token, "Job", 2).await;
    let update =
        "mutation($id: ID!, $t: String!) { updateJob(id: $id, input: {title: $t}) { title } }";
    let mut stale = 0;
    let mut hits = 0;
    for i in 0..200 {
        // Warm replica two, write on replica one, read on replica two.
        two.cached(&token, JOB_DETAIL, json!({ "id": ids[0] }))
            .await;
        two.cached(&token, JOBS_LIST, json!({})).await;
        let title = format!("Title {i}");
        one.ok(&token, update, json!({ "id": ids[0], "t": title }))
            .await;
        let (s1, detail) = two
            .cached(&token, JOB_DETAIL, json!({ "id": ids[0] }))
            .await;
        let (s2, list) = two.cached(&token, JOBS_LIST, json!({})).await;
        stale += (detail["job"]["title"] != title) as u32;
        stale += !list["jobs"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["title"] == title) as u32;
        hits += (s1 == "HIT") as u32 + (s2 == "HIT") as u32;
    }
    assert_eq!(stale, 0, "stale reads after a write on the other replica");
    // A read right after a write hits only when the background refresh has
    // already recomputed it (checked fresh above); most miss.
    assert!(hits < 200, "{hits} of 400 reads after writes hit");
    // The other job's detail entry survived all 200 writes to the first.
    two.cached(&token, JOB_DETAIL, json!({ "id": ids[1] }))
        .await;
    for i in 0..5 {
        one.ok(
            &token,
            update,
            json!({ "id": ids[0], "t": format!("again {i}") }),
        )
        .await;
    }
    assert_eq!(
        two.cached(&token, JOB_DETAIL, json!({ "id": ids[1] }))
            .await
            .0,
        "HIT"
    );
}

#[tokio::test]
async fn a_read_that_started_before_a_write_cannot_publish_its_stale_answer() {
    let (url, _server) = redis();
    // No background refresh within the test: one that replayed the detail
    // after the last write would store the new answer, and the final read
    // would be a (correct) hit instead of the miss this test looks for.
    let app = app_on(&url, |c| c.tasks.refresh_delay = Duration::from_secs(600)).await;
    let (token, _) = app.signup("Race", "admin@example.com").await;
    let ids = app.create_jobs(&token, "Old title", 1).await;
    let who = app
        .ok(&token, "{ viewer { id team { id } } }", json!({}))
        .await;
    let scope = Scope {
        team_id: ids::decode(
            Kind::Team,
            &who["viewer"]["team"]["id"].as_str().unwrap().into(),
            "t",
        )
        .unwrap(),
        user_id: ids::decode(
            Kind::User,
            &who["viewer"]["id"].as_str().unwrap().into(),
            "u",
        )
        .unwrap(),
        role: Role::Admin,
    };
    let body =
        serde_json::to_vec(&json!({ "query": JOB_DETAIL, "variables": { "id": ids[0] } })).unwrap();
    let (_, _, before) = app.post_raw(&token, body.clone()).await;
    assert_eq!(before["data"]["job"]["title"], "Old title 0");

    // A reader looks the request up exactly as the HTTP layer does and
    // reads its generations before its SQL...
    let cache: Arc<cache::ResponseCache> = Arc::clone(app.state.cache());
    let hash = cache::request_hash(&body);
    let Plan::Cache(plan) = app.state.executor().known_plan(&body).unwrap() else {
        panic!("cacheable")
    };
    // (the first request stored an entry; make this reader miss)
    let Lookup::Hit(_) = cache.lookup(hash, &plan, &scope, Purpose::Client).await else {
        panic!("warm entry expected")
    };
    app.ok(
        &token,
        "mutation($id: ID!) { updateJob(id: $id, input: {status: APPLIED}) { id } }",
        json!({ "id": ids[0] }),
    )
    .await;
    let Lookup::Miss(ticket) = cache.lookup(hash, &plan, &scope, Purpose::Client).await else {
        panic!("the write must cause a miss")
    };

    // ...then a write commits and returns...
    app.ok(
        &token,
        "mutation($id: ID!) { updateJob(id: $id, input: {title: \"New title\"}) { id } }",
        json!({ "id": ids[0] }),
    )
    .await;

    // ...and only then does the slow reader store what it read before.
    let stale =
        serde_json::to_vec(&json!({ "data": { "job": { "title": "Old title 0" } } })).unwrap();
    cache
        .fill(ticket, || async {
            Computed {
                status: 200,
                body: stale.into(),
                cacheable: true,
                validator: None,
            }
        })
        .await;

    let (_, state, after) = app.post_raw(&token, body).await;
    assert_eq!(state, "MISS", "the stale entry must be unreachable");
    assert_eq!(after["data"]["job"]["title"], "New title");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_concurrent_misses_run_the_query_once() {
    let (url, _server) = redis();
    let app = Arc::new(app_on(&url, |_| {}).await);
    let (token, _) = app.signup("Stampede", "admin@example.com").await;
    for round in 0..3 {
        app.create_jobs(&token, &format!("Round {round}"), 1000)
            .await;
    }
    // Open the client's connections first so the 100 requests arrive together.
    let warm: Vec<_> = (0..100)
        .map(|_| app.client.get(app.url("/health")).send())
        .collect();
    futures::future::join_all(warm).await;
    let query = |pad: &str| {
        format!(
            "{{ jobStats {{ total byStatus {{ status count }} topCompanies {{ company count }} }} }}{pad}"
        )
    };

    // One execution of this query costs this many statements (the
    // identity check is warmed first so it is not counted).
    app.ok(&token, "{ viewer { id } }", json!({})).await;
    let before = app.sql_statements().await;
    app.cached(&token, &query(" "), json!({})).await;
    let one_execution = app.sql_statements().await - before;
    assert!(one_execution >= 2.0);

    app.ok(&token, "{ viewer { id } }", json!({})).await;
    let before = app.sql_statements().await;
    let body = serde_json::to_vec(&json!({ "query": query("  "), "variables": {} })).unwrap();
    let requests: Vec<_> = (0..100)
        .map(|_| {
            let app = Arc::clone(&app);
            let token = token.clone();
            let body = body.clone();
            tokio::spawn(async move { app.post_raw(&token, body).await })
        })
        .collect();
    let mut states = Vec::new();
    for r in futures::future::join_all(requests).await {
        let (status, state, body) = r.unwrap();
        assert_eq!(status, 200);
        assert_eq!(body["data"]["jobStats"]["total"], 3000);
        states.push(state);
    }
    let spent = app.sql_statements().await - before;
    let misses = states.iter().filter(|s| *s == "MISS").count();
    assert_eq!(
        spent,
        one_execution,
        "100 concurrent misses ran the SQL {} times ({misses} MISS)",
        spent / one_execution
    );
    let coalesced = app
        .metric("jobgraph_cache_coalesced_total{kind=\"job_stats\"}")
        .await;
    let hits = states.iter().filter(|s| *s == "HIT").count() as f64;
    assert_eq!(coalesced + hits, 99.0, "{states:?}");
}

#[tokio::test]
async fn a_burst_of_writes_is_cleared_by_a_few_coalesced_sweeps_that_spare_other_entries() {
    let (url, _server) = redis();
    let app = app_on(&url, |c| {
        c.cache.sweep_delay = Duration::from_millis(1000);
        // No background refresh: what the sweeps clear is what the writes
        // made stale, nothing recomputed in between.
        c.tasks.concurrency = 0;
    })
    .await;
    let (token, _) = app.signup("Sweep", "admin@example.com").await;
    let (other, _) = app.signup("Other", "other@example.com").await;
    let ids = app.create_jobs(&token, "Job", 2).await;
    app.create_jobs(&other, "Theirs", 1).await;
    // Let the sweeps announced by these writes pass first.
    app.sweeps_done().await;
    app.cached(&token, JOBS_LIST, json!({})).await;
    app.cached(&token, "{ jobStats { total } }", json!({}))
        .await;
    app.cached(&token, JOB_DETAIL, json!({ "id": ids[0] }))
        .await;
    app.cached(&token, JOB_DETAIL, json!({ "id": ids[1] }))
        .await;
    app.cached(&other, JOBS_LIST, json!({})).await;
    assert_eq!(keys(&app, &url, ":r:*").len(), 5);
    let sweeps_before = app.metric("jobgraph_cache_sweeps_total").await;

    let update =
        "mutation($id: ID!, $t: String!) { updateJob(id: $id, input: {title: $t}) { id } }";
    for i in 0..50 {
        app.ok(
            &token,
            update,
            json!({ "id": ids[0], "t": format!("v{i}") }),
        )
        .await;
    }
    app.sweeps_done().await;
    let left = keys(&app, &url, ":r:*");
    let job = |n: usize| {
        format!(
            ":r:job:{}:",
            ids::decode(Kind::Job, &ids[n].as_str().into(), "id").unwrap()
        )
    };
    // Stale: the first job's old detail is gone (details are not refreshed).
    assert!(!left.iter().any(|k| k.contains(&job(0))), "{left:?}");
    // The list, if still there, is the background refresh's fresh one.
    if left.iter().any(|k| k.contains(":{t1}:r:list:")) {
        let (state, data) = app.cached(&token, JOBS_LIST, json!({})).await;
        assert_eq!(state, "HIT");
        assert!(data.to_string().contains("v49"), "{data}");
    }
    // Untouched: the second job's detail and the other team's list stay.
    assert!(left.iter().any(|k| k.contains(&job(1))), "{left:?}");
    assert!(left.iter().any(|k| k.contains(":{t2}:r:list:")), "{left:?}");
    // The stats entry, if any, is the background refresh's fresh one.
    if left.iter().any(|k| k.contains(":{t1}:r:stats:")) {
        let (state, data) = app
            .cached(&token, "{ jobStats { total } }", json!({}))
            .await;
        assert_eq!(
            (state.as_str(), &data["jobStats"]["total"]),
            ("HIT", &json!(2))
        );
    }
    let sweeps = app.metric("jobgraph_cache_sweeps_total").await - sweeps_before;
    // 50 writes × 6 announcements, merged per window into one pass per
    // class (list, stats, mixed, this job, logs): 5, or 10 if the burst
    // straddled two windows, instead of 300.
    assert!(sweeps <= 10.0, "{sweeps} sweeps for one burst");
    assert!(app.metric("jobgraph_cache_keys_removed_total").await >= 1.0);
    assert_eq!(
        app.cached(&token, JOB_DETAIL, json!({ "id": ids[1] }))
            .await
            .0,
        "HIT"
    );
}

#[tokio::test]
async fn cache_enabled_false_switches_the_cache_off() {
    let (url, _server) = redis();
    let app = app_on(&url, |c| c.cache.enabled = false).await;
    let (token, _) = app.signup("Off", "admin@example.com").await;
    for _ in 0..2 {
        assert_eq!(app.cached(&token, JOBS_LIST, json!({})).await.0, "");
    }
    // No answer is stored (the users generation that identities are
    // checked against still exists).
    assert!(
        keys(&app, &url, "").iter().all(|k| !k.contains(":r:")),
        "{:?}",
        keys(&app, &url, "")
    );
    let ready = app.ready().await;
    assert_eq!(ready["cache"]["state"], "disabled");
}

#[tokio::test]
async fn after_a_write_the_teams_recent_reads_are_recomputed_in_the_background() {
    let (url, _server) = redis();
    let app = app_on(&url, |_| {}).await;
    let (token, _) = app.signup("Warm", "admin@example.com").await;
    let ids = app.create_jobs(&token, "Job", 2).await;
    // Read a list, the stats and both details once: they are remembered.
    for (query, variables) in [
        (JOBS_LIST, json!({})),
        ("{ jobStats { total } }", json!({})),
        (JOB_DETAIL, json!({ "id": ids[0] })),
        (JOB_DETAIL, json!({ "id": ids[1] })),
    ] {
        app.cached(&token, query, variables).await;
    }
    app.ok(
        &token,
        "mutation($id: ID!) { updateJob(id: $id, input: { title: \"Renamed\" }) { id } }",
        json!({ "id": ids[0] }),
    )
    .await;
    // The refresh runs after the write; once it has, every read hits
    // (nobody read in between) and shows the write.
    // (Refreshes coalesce: the one that covers the write may have been
    // queued before it, so wait for a refresh that finished after it.)
    let written = jobgraph::db::now();
    app.eventually(10, "a refresh that finished after the write", || async {
        use jobgraph::db::entities::task;
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
        use std::ops::Not;
        task::Entity::find()
            .filter(task::Column::Kind.eq("cache.refresh"))
            .all(app.state.db())
            .await
            .unwrap()
            .iter()
            .all(|t| t.status == "done")
            && task::Entity::find()
                .filter(task::Column::Kind.eq("cache.refresh"))
                .filter(task::Column::FinishedAt.gt(written))
                .all(app.state.db())
                .await
                .unwrap()
                .is_empty()
                .not()
    })
    .await;
    let (state, data) = app
        .cached(&token, JOB_DETAIL, json!({ "id": ids[0] }))
        .await;
    assert_eq!(
        (state.as_str(), &data["job"]["title"]),
        ("HIT", &json!("Renamed"))
    );
    let (state, data) = app.cached(&token, JOBS_LIST, json!({})).await;
    assert_eq!(state, "HIT");
    assert!(data.to_string().contains("Renamed"), "{data}");
    assert_eq!(
        app.cached(&token, "{ jobStats { total } }", json!({}))
            .await
            .0,
        "HIT"
    );
    assert_eq!(
        app.cached(&token, JOB_DETAIL, json!({ "id": ids[1] }))
            .await
            .0,
        "HIT"
    );
}
