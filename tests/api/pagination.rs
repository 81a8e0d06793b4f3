//! Relay cursor connections on `jobs`, `users`, `logs` and the nested
//! connections: walking forwards and backwards, page info at both ends,
//! empty pages, `totalCount`, and every refused argument combination.

use crate::common::TestApp;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde_json::{Value, json};

/// One page: (node ids, cursors, pageInfo, totalCount).
struct Page {
    ids: Vec<String>,
    cursors: Vec<String>,
    info: Value,
    total: Value,
}

fn page_of(connection: &Value) -> Page {
    let edges = connection["edges"]
        .as_array()
        .unwrap_or_else(|| panic!("no edges in {connection}"));
    let page = Page {
        ids: edges
            .iter()
            .map(|e| e["node"]["id"].as_str().unwrap().to_owned())
            .collect(),
        cursors: edges
            .iter()
            .map(|e| e["cursor"].as_str().unwrap().to_owned())
            .collect(),
        info: connection["pageInfo"].clone(),
        total: connection["totalCount"].clone(),
    };
    // `nodes` are the edges' nodes, and the page info's cursors are the
    // first and last edges' cursors (null on an empty page).
    let node_ids: Vec<&str> = connection["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap())
        .collect();
    assert_eq!(node_ids, page.ids, "{connection}");
    assert_eq!(
        page.info["startCursor"].as_str(),
        page.cursors.first().map(String::as_str),
        "{connection}"
    );
    assert_eq!(
        page.info["endCursor"].as_str(),
        page.cursors.last().map(String::as_str),
        "{connection}"
    );
    page
}

const CONNECTION: &str = "totalCount edges { cursor node { id } } nodes { id } pageInfo { hasNextPage hasPreviousPage startCursor endCursor }";

/// Runs `query` (which takes `$first`/`$after` or `$last`/`$before`) and
/// returns the connection found at `pointer` in `data`.
async fn fetch(app: &TestApp, token: &str, query: &str, pointer: &str, vars: Value) -> Page {
    let data = app.ok(token, query, vars).await;
    page_of(
        data.pointer(pointer)
            .unwrap_or_else(|| panic!("nothing at {pointer} in {data}")),
    )
}

/// Walks a connection with `first: size` and `after`, checking the page info
/// of every page; returns every node id and cursor in order.
async fn walk_forward(
    app: &TestApp,
    token: &str,
    query: &str,
    pointer: &str,
    size: usize,
    total: usize,
) -> (Vec<String>, Vec<String>) {
    let (mut ids, mut cursors) = (Vec::new(), Vec::new());
    let mut after = Value::Null;
    loop {
        let page = fetch(
            app,
            token,
            query,
            pointer,
            json!({ "first": size, "after": after }),
        )
        .await;
        assert_eq!(page.total, total, "{query}");
        assert_eq!(page.info["hasPreviousPage"], !after.is_null(), "{query}");
        let more = ids.len() + page.ids.len() < total;
        assert_eq!(
            page.info["hasNextPage"],
            more,
            "{query} after {}",
            ids.len()
        );
        assert_eq!(page.ids.len(), size.min(total - ids.len()));
        ids.extend(page.ids);
        cursors.extend(page.cursors);
        if !more {
            break;
        }
        after = page.info["endCursor"].clone();
    }
    (ids, cursors)
}

fn assert_distinct(ids: &[String]) {
    let mut sorted = ids.to_vec();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), ids.len(), "duplicates in {ids:?}");
}

/// 25 jobs made in two bulk calls and ten single ones, so some share a
/// creation time (the id breaks the tie) and some do not. They leave 12 log
/// entries: one per bulk call, one per single job.
async fn twenty_five_jobs(app: &TestApp, token: &str) -> Vec<String> {
    let mut ids = app.create_jobs(token, "A", 10).await;
    ids.extend(app.create_jobs(token, "B", 5).await);
    for i in 0..10 {
        let data = app
            .ok(
                token,
                "mutation($t: String!, $c: String!) { createJob(input: { title: $t, company: $c }) { id } }",
                json!({ "t": format!("C {i}"), "c": format!("Co {}", i % 3) }),
            )
            .await;
        ids.push(data["createJob"]["id"].as_str().unwrap().to_owned());
    }
    ids.reverse(); // newest first
    ids
}

#[tokio::test]
async fn first_and_after_walk_every_job_once_in_order_without_gaps() {
    let app = TestApp::spawn().await;
    let (token, _) = app.signup("Acme", "ada@example.com").await;
    let expected = twenty_five_jobs(&app, &token).await;
    let q = format!(
        "query($first: Int, $after: String) {{ jobs(first: $first, after: $after) {{ {CONNECTION} }} }}"
    );
    for size in [1, 7, 10, 25] {
        let (ids, cursors) = walk_forward(&app, &token, &q, "/jobs", size, 25).await;
        assert_eq!(ids, expected, "first: {size}");
        assert_distinct(&cursors);
    }
    // One page holding everything has nothing on either side.
    let all = fetch(&app, &token, &q, "/jobs", json!({ "first": 100 })).await;
    assert_eq!(all.ids, expected);
    assert_eq!(all.info["hasNextPage"], false);
    assert_eq!(all.info["hasPreviousPage"], false);
    // Without `first` the page holds 20.
    let default = fetch(&app, &token, &q, "/jobs", json!({})).await;
    assert_eq!(default.ids, expected[..20]);
    assert_eq!(default.info["hasNextPage"], true);
}

#[tokio::test]
async fn last_and_before_walk_backwards_from_the_end() {
    let app = TestApp::spawn().await;
    let (token, _) = app.signup("Acme", "ada@example.com").await;
    let expected = twenty_five_jobs(&app, &token).await;
    let q = format!(
        "query($last: Int, $before: String) {{ jobs(last: $last, before: $before) {{ {CONNECTION} }} }}"
    );
    let mut pages: Vec<Vec<String>> = Vec::new();
    let mut before = Value::Null;
    let mut seen = 0;
    loop {
        let page = fetch(
            &app,
            &token,
            &q,
            "/jobs",
            json!({ "last": 6, "before": before }),
        )
        .await;
        assert_eq!(page.total, 25);
        // Each page is in list order and ends where the previous began.
        let end = expected.len() - seen;
        let start = end.saturating_sub(6);
        assert_eq!(page.ids, expected[start..end], "before {seen}");
        assert_eq!(page.info["hasNextPage"], !before.is_null());
        assert_eq!(page.info["hasPreviousPage"], start > 0);
        seen += page.ids.len();
        pages.push(page.ids);
        if start == 0 {
            break;
        }
        before = page.info["startCursor"].clone();
    }
    let walked: Vec<String> = pages.into_iter().rev().flatten().collect();
    assert_eq!(walked, expected);

    // A cursor from a forward page works backwards and vice versa.
    let fq = format!(
        "query($first: Int, $after: String) {{ jobs(first: $first, after: $after) {{ {CONNECTION} }} }}"
    );
    let forward = fetch(&app, &token, &fq, "/jobs", json!({ "first": 10 })).await;
    let back = fetch(
        &app,
        &token,
        &q,
        "/jobs",
        json!({ "last": 3, "before": forward.cursors[9] }),
    )
    .await;
    assert_eq!(back.ids, expected[6..9]);
    assert_eq!(back.info["hasPreviousPage"], true);
    assert_eq!(back.info["hasNextPage"], true);
    let back_to_start = fetch(
        &app,
        &token,
        &q,
        "/jobs",
        json!({ "last": 50, "before": forward.cursors[2] }),
    )
    .await;
    assert_eq!(back_to_start.ids, expected[..2]);
    assert_eq!(back_to_start.info["hasPreviousPage"], false);
}

#[tokio::test]
async fn empty_pages_have_no_cursors_and_say_what_lies_beyond() {
    let app = TestApp::spawn().await;
    let (token, _) = app.signup("Acme", "ada@example.com").await;
    let q = format!(
        "query($first: Int, $after: String, $last: Int, $before: String) {{ jobs(first: $first, after: $after, last: $last, before: $before) {{ {CONNECTION} }} }}"
    );
    // An empty list.
    let none = fetch(&app, &token, &q, "/jobs", json!({ "first": 5 })).await;
    assert!(none.ids.is_empty());
    assert_eq!(none.total, 0);
    assert_eq!(none.info["hasNextPage"], false);
    assert_eq!(none.info["hasPreviousPage"], false);

    let expected = twenty_five_jobs(&app, &token).await;
    // `first: 0` returns no edges but still says more exist (Relay:
    // hasNextPage is whether the list holds more than `first` items).
    let zero = fetch(&app, &token, &q, "/jobs", json!({ "first": 0 })).await;
    assert!(zero.ids.is_empty());
    assert_eq!(zero.total, 25);
    assert_eq!(zero.info["hasNextPage"], true);
    assert_eq!(zero.info["hasPreviousPage"], false);
    let zero_back = fetch(&app, &token, &q, "/jobs", json!({ "last": 0 })).await;
    assert!(zero_back.ids.is_empty());
    assert_eq!(zero_back.info["hasPreviousPage"], true);
    assert_eq!(zero_back.info["hasNextPage"], false);

    // After the last cursor there is nothing, and something before it.
    let all = fetch(&app, &token, &q, "/jobs", json!({ "first": 25 })).await;
    assert_eq!(all.ids, expected);
    let after_end = fetch(
        &app,
        &token,
        &q,
        "/jobs",
        json!({ "first": 5, "after": all.cursors[24] }),
    )
    .await;
    assert!(after_end.ids.is_empty());
    assert_eq!(after_end.total, 25);
    assert_eq!(after_end.info["hasNextPage"], false);
    assert_eq!(after_end.info["hasPreviousPage"], true);
    // Before the first cursor, likewise.
    let before_start = fetch(
        &app,
        &token,
        &q,
        "/jobs",
        json!({ "last": 5, "before": all.cursors[0] }),
    )
    .await;
    assert!(before_start.ids.is_empty());
    assert_eq!(before_start.info["hasPreviousPage"], false);
    assert_eq!(before_start.info["hasNextPage"], true);
}

#[tokio::test]
async fn total_count_counts_the_whole_filtered_list_on_every_page() {
    let app = TestApp::spawn().await;
    let (token, _) = app.signup("Acme", "ada@example.com").await;
    twenty_five_jobs(&app, &token).await;
    // Companies go `Co 0`, `Co 1`, `Co 2` in turn: 3 + 2 + 3 of `Co 1`.
    let q = format!(
        "query($first: Int, $after: String) {{ jobs(first: $first, after: $after, filter: {{ company: \"Co 1\" }}) {{ {CONNECTION} }} }}"
    );
    let (ids, _) = walk_forward(&app, &token, &q, "/jobs", 2, 8).await;
    assert_eq!(ids.len(), 8);
}

#[tokio::test]
async fn users_and_logs_connections_walk_without_duplicates_or_gaps() {
    let app = TestApp::spawn().await;
    let (admin, _) = app.signup("Acme", "ada@example.com").await;
    for i in 0..9 {
        app.ok(
            &admin,
            "mutation($e: String!) { createUser(input: { name: \"U\", email: $e }) { id } }",
            json!({ "e": format!("user{i}@example.com") }),
        )
        .await;
    }
    twenty_five_jobs(&app, &admin).await;

    let uq = format!(
        "query($first: Int, $after: String) {{ users(first: $first, after: $after) {{ {CONNECTION} }} }}"
    );
    let all_users = fetch(&app, &admin, &uq, "/users", json!({ "first": 100 })).await;
    assert_eq!(all_users.ids.len(), 10);
    let (users, _) = walk_forward(&app, &admin, &uq, "/users", 3, 10).await;
    assert_eq!(users, all_users.ids);
    assert_distinct(&users);

    // team.created, 9 × user.created, 12 entries for the 25 jobs.
    let lq = format!(
        "query($first: Int, $after: String) {{ logs(first: $first, after: $after) {{ {CONNECTION} }} }}"
    );
    let all_logs = fetch(&app, &admin, &lq, "/logs", json!({ "first": 100 })).await;
    assert_eq!(all_logs.ids.len(), 22);
    let (logs, _) = walk_forward(&app, &admin, &lq, "/logs", 4, 22).await;
    assert_eq!(logs, all_logs.ids);
    assert_distinct(&logs);
}

#[tokio::test]
async fn nested_team_jobs_members_and_viewer_logs_walk_like_the_top_level_lists() {
    let app = TestApp::spawn().await;
    let (admin, _) = app.signup("Acme", "ada@example.com").await;
    let expected = twenty_five_jobs(&app, &admin).await;

    let tq = format!(
        "query($first: Int, $after: String) {{ team {{ jobs(first: $first, after: $after) {{ {CONNECTION} }} }} }}"
    );
    let (jobs, cursors) = walk_forward(&app, &admin, &tq, "/team/jobs", 6, 25).await;
    assert_eq!(jobs, expected);
    // Nested and top-level cursors are the same positions in the same order.
    let top = format!(
        "query($first: Int, $after: String) {{ jobs(first: $first, after: $after) {{ {CONNECTION} }} }}"
    );
    let resumed = fetch(
        &app,
        &admin,
        &top,
        "/jobs",
        json!({ "first": 5, "after": cursors[9] }),
    )
    .await;
    assert_eq!(resumed.ids, expected[10..15]);

    let vq = format!(
        "query($first: Int, $after: String) {{ viewer {{ logs(first: $first, after: $after) {{ {CONNECTION} }} }} }}"
    );
    // team.created and the 12 entries of the 25 jobs, all by the admin.
    let (logs, _) = walk_forward(&app, &admin, &vq, "/viewer/logs", 4, 13).await;
    assert_distinct(&logs);
    let lq = format!(
        "query($first: Int, $after: String) {{ logs(first: $first, after: $after) {{ {CONNECTION} }} }}"
    );
    let top_logs = fetch(&app, &admin, &lq, "/logs", json!({ "first": 100 })).await;
    assert_eq!(logs, top_logs.ids);

    for i in 0..4 {
        app.ok(
            &admin,
            "mutation($e: String!) { createUser(input: { name: \"U\", email: $e }) { id } }",
            json!({ "e": format!("user{i}@example.com") }),
        )
        .await;
    }
    let mq = format!(
        "query($first: Int, $after: String) {{ team {{ members(first: $first, after: $after) {{ {CONNECTION} }} }} }}"
    );
    let (members, _) = walk_forward(&app, &admin, &mq, "/team/members", 2, 5).await;
    let uq = format!(
        "query($first: Int, $after: String) {{ users(first: $first, after: $after) {{ {CONNECTION} }} }}"
    );
    let users = fetch(&app, &admin, &uq, "/users", json!({ "first": 100 })).await;
    assert_eq!(members, users.ids);
}

#[tokio::test]
async fn nested_user_jobs_give_each_user_their_own_first_two_jobs() {
    let app = TestApp::spawn().await;
    let (admin, admin_id) = app.signup("Acme", "ada@example.com").await;
    let (member, member_id) = app.add_user(&admin, "bob@example.com", "MEMBER").await;
    let (_, idle_id) = app.add_user(&admin, "carol@example.com", "VIEWER").await;
    app.create_jobs(&admin, "Admin", 3).await;
    app.create_jobs(&member, "Member", 1).await;
    app.create_jobs(&admin, "Admin late", 1).await;

    let data = app
        .ok(
            &admin,
            "{ users { nodes { id jobs(first: 2) { totalCount nodes { title } pageInfo { hasNextPage hasPreviousPage endCursor } } } } }",
            json!({}),
        )
        .await;
    let by_user = |id: &str| -> Value {
        data["users"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["id"] == id)
            .unwrap_or_else(|| panic!("{id} missing from {data}"))["jobs"]
            .clone()
    };
    let admin_jobs = by_user(&admin_id);
    assert_eq!(admin_jobs["totalCount"], 4);
    assert_eq!(
        admin_jobs["nodes"],
        json!([{ "title": "Admin late 0" }, { "title": "Admin 2" }])
    );
    assert_eq!(admin_jobs["pageInfo"]["hasNextPage"], true);
    assert_eq!(admin_jobs["pageInfo"]["hasPreviousPage"], false);
    let member_jobs = by_user(&member_id);
    assert_eq!(member_jobs["totalCount"], 1);
    assert_eq!(member_jobs["nodes"], json!([{ "title": "Member 0" }]));
    assert_eq!(member_jobs["pageInfo"]["hasNextPage"], false);
    let idle_jobs = by_user(&idle_id);
    assert_eq!(idle_jobs["totalCount"], 0);
    assert_eq!(idle_jobs["nodes"], json!([]));
    assert_eq!(idle_jobs["pageInfo"]["hasNextPage"], false);
    assert_eq!(idle_jobs["pageInfo"]["endCursor"], Value::Null);

    // `first: 0` per user still says whether that user has any jobs.
    let zero = app
        .ok(
            &admin,
            "{ users { nodes { id jobs(first: 0) { nodes { id } pageInfo { hasNextPage endCursor } } } } }",
            json!({}),
        )
        .await;
    for user in zero["users"]["nodes"].as_array().unwrap() {
        assert_eq!(user["jobs"]["nodes"], json!([]));
        assert_eq!(user["jobs"]["pageInfo"]["endCursor"], Value::Null);
        assert_eq!(
            user["jobs"]["pageInfo"]["hasNextPage"],
            user["id"] != idle_id.as_str(),
            "{user}"
        );
    }

    // The admin's list continues from its own end cursor.
    let rest = app
        .ok(
            &admin,
            "query($id: ID!, $a: String) { user(id: $id) { jobs(first: 2, after: $a) { nodes { title } pageInfo { hasNextPage hasPreviousPage } } } }",
            json!({ "id": admin_id, "a": admin_jobs["pageInfo"]["endCursor"] }),
        )
        .await;
    assert_eq!(
        rest["user"]["jobs"]["nodes"],
        json!([{ "title": "Admin 1" }, { "title": "Admin 0" }])
    );
    assert_eq!(rest["user"]["jobs"]["pageInfo"]["hasNextPage"], false);
    assert_eq!(rest["user"]["jobs"]["pageInfo"]["hasPreviousPage"], true);
}

/// Every connection field, with `$first`, `$after` (and, for `jobs`,
/// `$last`/`$before`) passed through.
const CONNECTIONS: [(&str, &str); 6] = [
    (
        "jobs",
        "query($first: Int, $after: String, $last: Int, $before: String) { jobs(first: $first, after: $after, last: $last, before: $before) { totalCount } }",
    ),
    (
        "users",
        "query($first: Int, $after: String) { users(first: $first, after: $after) { totalCount } }",
    ),
    (
        "logs",
        "query($first: Int, $after: String) { logs(first: $first, after: $after) { totalCount } }",
    ),
    (
        "team.jobs",
        "query($first: Int, $after: String) { team { jobs(first: $first, after: $after) { totalCount } } }",
    ),
    (
        "users.jobs",
        "query($first: Int, $after: String) { users(first: 1) { nodes { jobs(first: $first, after: $after) { totalCount } } } }",
    ),
    (
        "viewer.logs",
        "query($first: Int, $after: String) { viewer { logs(first: $first, after: $after) { totalCount } } }",
    ),
];

#[tokio::test]
async fn invalid_cursors_are_refused_as_bad_input_on_every_connection() {
    let app = TestApp::spawn().await;
    let (token, _) = app.signup("Acme", "ada@example.com").await;
    app.create_jobs(&token, "Job", 2).await;
    for bad in [
        "garbage!!".to_owned(),
        URL_SAFE_NO_PAD.encode("hello world"),
        URL_SAFE_NO_PAD.encode("cd|notanumber|123"),
        URL_SAFE_NO_PAD.encode("cd|1|not-a-time"),
        URL_SAFE_NO_PAD.encode("zz|1|2"),
        URL_SAFE_NO_PAD.encode([0xff, 0xfe, 0x00]),
        "A".repeat(5000),
    ] {
        for (name, q) in CONNECTIONS {
            let err = app
                .fails(
                    Some(&token),
                    q,
                    json!({ "first": 1, "after": bad }),
                    "BAD_USER_INPUT",
                )
                .await;
            assert!(
                err["message"].as_str().unwrap().contains("invalid cursor"),
                "{name} {bad}: {err}"
            );
        }
    }
    let err = app
        .fails(
            Some(&token),
            CONNECTIONS[0].1,
            json!({ "last": 1, "before": "garbage!!" }),
            "BAD_USER_INPUT",
        )
        .await;
    assert_eq!(err["extensions"]["fields"][0]["field"], "before");
    // A company cursor holding NUL is malformed (PostgreSQL refuses NUL in text).
    let err = app
        .fails(
            Some(&token),
            "query($a: String) { jobs(first: 1, after: $a, orderBy: { field: COMPANY, direction: ASC }) { totalCount } }",
            json!({ "a": URL_SAFE_NO_PAD.encode("pa|1|Co\u{0}x") }),
            "BAD_USER_INPUT",
        )
        .await;
    assert!(
        err["message"].as_str().unwrap().contains("invalid cursor"),
        "{err}"
    );
}

#[tokio::test]
async fn first_above_100_is_a_clear_error_not_a_silent_truncation() {
    let app = TestApp::spawn().await;
    let (token, _) = app.signup("Acme", "ada@example.com").await;
    for (name, q) in CONNECTIONS {
        let err = app
            .fails(Some(&token), q, json!({ "first": 101 }), "BAD_USER_INPUT")
            .await;
        assert_eq!(err["message"], "first: must be at most 100", "{name}");
        assert_eq!(err["extensions"]["fields"][0]["field"], "first", "{name}");
        app.ok(&token, q, json!({ "first": 100 })).await;
    }
    let err = app
        .fails(
            Some(&token),
            CONNECTIONS[0].1,
            json!({ "last": 101 }),
            "BAD_USER_INPUT",
        )
        .await;
    assert_eq!(err["message"], "last: must be at most 100");
    // The cap is configurable.
    let small = TestApp::spawn_with(|c| c.limits.max_page_size = 10).await;
    let (token, _) = small.signup("Acme", "ada@example.com").await;
    let err = small
        .fails(
            Some(&token),
            CONNECTIONS[0].1,
            json!({ "first": 11 }),
            "BAD_USER_INPUT",
        )
        .await;
    assert_eq!(err["message"], "first: must be at most 10");
}

#[tokio::test]
async fn negative_first_or_last_is_refused() {
    let app = TestApp::spawn().await;
    let (token, _) = app.signup("Acme", "ada@example.com").await;
    for (name, q) in CONNECTIONS {
        let err = app
            .fails(Some(&token), q, json!({ "first": -1 }), "BAD_USER_INPUT")
            .await;
        assert_eq!(err["message"], "first: must not be negative", "{name}");
    }
    let err = app
        .fails(
            Some(&token),
            CONNECTIONS[0].1,
            json!({ "last": -3 }),
            "BAD_USER_INPUT",
        )
        .await;
    assert_eq!(err["message"], "last: must not be negative");
}

#[tokio::test]
async fn first_with_last_after_with_last_and_before_with_first_are_refused() {
    let app = TestApp::spawn().await;
    let (token, _) = app.signup("Acme", "ada@example.com").await;
    app.create_jobs(&token, "Job", 3).await;
    let cursor = app
        .ok(
            &token,
            "{ jobs(first: 1) { pageInfo { endCursor } } }",
            json!({}),
        )
        .await["jobs"]["pageInfo"]["endCursor"]
        .clone();
    let q = CONNECTIONS[0].1;
    for (vars, says) in [
        (json!({ "first": 1, "last": 1 }), "not both"),
        (json!({ "first": 0, "last": 0 }), "not both"),
        (
            json!({ "last": 1, "after": cursor }),
            "`after` goes with `first`",
        ),
        (
            json!({ "first": 1, "before": cursor }),
            "`before` goes with `last`",
        ),
        (json!({ "before": cursor }), "`before` goes with `last`"),
    ] {
        let err = app
            .fails(Some(&token), q, vars.clone(), "BAD_USER_INPUT")
            .await;
        assert!(
            err["message"].as_str().unwrap().contains(says),
            "{vars}: {err}"
        );
    }
}
