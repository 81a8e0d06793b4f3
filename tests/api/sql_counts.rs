//! A nested page costs a constant handful of SQL statements, whatever its
//! size: every relation is fetched one batch per level.

use crate::common::TestApp;
use sea_orm::ConnectionTrait;
use serde_json::json;

const NESTED: &str = r#"query($n: Int!) {
  jobs(first: $n) {
    nodes {
      id title
      team { name }
      createdBy { name team { slug } }
      resumes { status }
    }
  }
  users(first: 10) {
    nodes {
      name
      jobs(first: 5) { totalCount nodes { title createdBy { email } } }
      logs(first: 3) { nodes { action user { name } } }
    }
  }
}"#;

async fn statements_for(app: &TestApp, token: &str, n: usize) -> f64 {
    let before = app.sql_statements().await;
    let data = app.ok(token, NESTED, json!({ "n": n })).await;
    let after = app.sql_statements().await;
    assert_eq!(data["jobs"]["nodes"].as_array().unwrap().len(), n);
    for job in data["jobs"]["nodes"].as_array().unwrap() {
        assert!(job["createdBy"]["name"].is_string(), "{job}");
        assert_eq!(job["team"]["name"], "Counted");
    }
    after - before
}

#[tokio::test]
async fn a_nested_page_of_100_costs_no_more_statements_than_a_page_of_10() {
    // Measure the resolvers, not the response cache.
    let app = TestApp::spawn_with(|c| c.cache.enabled = false).await;
    let (admin, _) = app.signup("Counted", "admin@example.com").await;
    let (member, _) = app.add_user(&admin, "member@example.com", "MEMBER").await;
    app.create_jobs(&admin, "Admin job", 60).await;
    app.create_jobs(&member, "Member job", 60).await;
    // Warm the identity cache so both measurements see the same state.
    app.ok(&admin, "{ viewer { id } }", json!({})).await;

    // Loads of one relation from different levels of the tree may share a
    // batch or not, depending on timing (each level waits ~1 ms for keys),
    // so a count can move by a statement or two between runs; one query
    // per row would add ninety.
    let mut small = Vec::new();
    let mut large = Vec::new();
    for _ in 0..3 {
        small.push(statements_for(&app, &admin, 10).await);
        large.push(statements_for(&app, &admin, 100).await);
    }
    println!("statements per request: page of 10 {small:?}, page of 100 {large:?}");
    let max = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
    let min = |v: &[f64]| v.iter().copied().fold(f64::MAX, f64::min);
    assert!(
        max(&large) <= 12.0,
        "a nested page of 100 took {large:?} statements"
    );
    assert!(
        max(&small) <= 12.0,
        "a nested page of 10 took {small:?} statements"
    );
    assert!(
        max(&large) <= min(&small) + 2.0,
        "statements grew with the page size: {small:?} → {large:?}"
    );
}

#[tokio::test]
async fn metrics_count_every_statement() {
    let app = TestApp::spawn_with(|c| c.cache.enabled = false).await;
    let (admin, _) = app.signup("Counted", "admin@example.com").await;
    // The first request loads the caller's identity; later ones reuse it.
    app.ok(&admin, "{ viewer { id } }", json!({})).await;
    let before = app.sql_statements().await;
    app.ok(
        &admin,
        "{ jobStats { total topCompanies { company } createdLast7Days } }",
        json!({}),
    )
    .await;
    let after = app.sql_statements().await;
    // by-status, top companies, last seven days (the identity is cached).
    assert_eq!(after - before, 3.0);
}

/// Statements one request runs, the caller's identity already known.
async fn statements_of(
    app: &TestApp,
    token: &str,
    query: &str,
    variables: serde_json::Value,
) -> (f64, serde_json::Value) {
    let before = app.sql_statements().await;
    let data = app.ok(token, query, variables).await;
    (app.sql_statements().await - before, data)
}

#[tokio::test]
async fn a_list_page_a_detail_and_a_log_page_with_what_they_nest_are_one_statement_each() {
    let app = TestApp::spawn_with(|c| c.cache.enabled = false).await;
    let (admin, _) = app.signup("Counted", "admin@example.com").await;
    let (member, _) = app.add_user(&admin, "member@example.com", "MEMBER").await;
    let ids = app.create_jobs(&admin, "Admin job", 30).await;
    app.create_jobs(&member, "Member job", 30).await;
    app.ok(&admin, "{ viewer { id } }", json!({})).await;

    // The list page with team, creators and totalCount (from the counters).
    let (n, data) = statements_of(
        &app,
        &admin,
        "{ jobs(first: 20) { totalCount pageInfo { hasNextPage endCursor } nodes { id title team { id name } createdBy { id name email } } } }",
        json!({}),
    )
    .await;
    assert_eq!(n, 1.0, "list page");
    assert_eq!(data["jobs"]["totalCount"], 60);
    assert_eq!(data["jobs"]["nodes"].as_array().unwrap().len(), 20);
    let creators: std::collections::BTreeSet<&str> = data["jobs"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["createdBy"]["email"].as_str().unwrap())
        .collect();
    assert!(creators.contains("member@example.com"), "{creators:?}");
    assert_eq!(data["jobs"]["nodes"][0]["team"]["name"], "Counted");

    // A filter the counters cannot answer is counted in the same statement.
    let (n, data) = statements_of(
        &app,
        &admin,
        "{ jobs(first: 5, filter: { search: \"member\" }) { totalCount nodes { createdBy { name } } } }",
        json!({}),
    )
    .await;
    assert_eq!(n, 1.0, "filtered list page");
    assert_eq!(data["jobs"]["totalCount"], 30);

    // The detail with team and creator.
    let (n, data) = statements_of(
        &app,
        &admin,
        "query($id: ID!) { job(id: $id) { id title status team { id name } createdBy { id name email } } }",
        json!({ "id": ids[0] }),
    )
    .await;
    assert_eq!(n, 1.0, "detail");
    assert_eq!(data["job"]["createdBy"]["email"], "admin@example.com");
    assert_eq!(data["job"]["team"]["name"], "Counted");

    // A page of the log with each entry's user and the total.
    let (n, data) = statements_of(
        &app,
        &admin,
        "{ logs(first: 20, filter: { level: INFO }) { totalCount nodes { action user { id name } } } }",
        json!({}),
    )
    .await;
    assert_eq!(n, 1.0, "log page");
    assert!(data["logs"]["totalCount"].as_u64().unwrap() >= 3);
    assert!(data["logs"]["nodes"][0]["user"]["name"].is_string());
}

/// PostgreSQL keeps one plan for a team's unfiltered list page (first page
/// and later pages) instead of planning it again on every call: the plan
/// (a third of a millisecond) cost more than running it.
#[tokio::test]
async fn postgres_plans_the_unfiltered_list_page_once_per_connection() {
    if crate::common::postgres_url().is_none() {
        // Plan caching is PostgreSQL's; the PostgreSQL pass of `.ci/run`
        // runs this (README, tests).
        return;
    }
    // One connection, so the statistics read below are the requests'.
    let app = TestApp::spawn_with(|c| {
        c.cache.enabled = false;
        c.database.max_connections = Some(1);
    })
    .await;
    let (admin, _) = app.signup("Planned", "admin@example.com").await;
    app.create_jobs(&admin, "Job", 30).await;
    let (other, _) = app.signup("Small", "small@example.com").await;
    app.create_jobs(&other, "Job", 2).await;
    // Ten teams, nine of them large and written to at the same times, and
    // statistics that tell them apart: with the list written as
    // `team_id = $1 … LIMIT $2`, a plan made with a large team's values
    // looks cheaper than any one plan for every team, and PostgreSQL
    // planned every call (as on the bench data).
    let db = app.state.db();
    for sql in [
        "INSERT INTO jobs (team_id, created_by_id, title, company, status, created_at, updated_at) \
         SELECT team_id, created_by_id, 'Older', company, status, \
                created_at - g * interval '1 minute', updated_at - g * interval '1 minute' \
         FROM jobs, generate_series(1, 3000) g WHERE id = (SELECT min(id) FROM jobs)",
        "INSERT INTO teams (name, slug, created_at) \
         SELECT 'Busy ' || g, 'busy-' || g, now() FROM generate_series(1, 8) g",
        "INSERT INTO jobs (team_id, created_by_id, title, company, status, created_at, updated_at) \
         SELECT t.id, (SELECT min(id) FROM users), 'Busy', 'Acme', 'SAVED', \
                now() - g * interval '1 minute', now() \
         FROM teams t, generate_series(1, 3000) g WHERE t.slug LIKE 'busy-%'",
        "ANALYZE",
    ] {
        db.execute_unprepared(sql).await.unwrap();
    }

    const PAGE: &str = "query($after: String) { jobs(first: 5, after: $after) { totalCount pageInfo { endCursor } nodes { title createdBy { name } team { name } } } }";
    for round in 0..8 {
        for token in [&admin, &other] {
            let first = app.ok(token, PAGE, json!({ "after": null })).await;
            let cursor = first["jobs"]["pageInfo"]["endCursor"].clone();
            let next = app.ok(token, PAGE, json!({ "after": cursor })).await;
            let (n, more) = if token == &admin { (3030, 5) } else { (2, 0) };
            assert_eq!(first["jobs"]["totalCount"], n, "round {round}");
            assert_eq!(next["jobs"]["nodes"].as_array().unwrap().len(), more);
        }
    }
    let rows = db
        .query_all_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements \
             WHERE statement LIKE '%jg_page%' AND statement LIKE '%FROM \"jobs\"%' \
             AND statement NOT LIKE '%pg_prepared_statements%'",
        ))
        .await
        .unwrap();
    let plans: Vec<(String, i64, i64)> = rows
        .iter()
        .map(|r| {
            (
                r.try_get_by_index(0).unwrap(),
                r.try_get_by_index(1).unwrap(),
                r.try_get_by_index(2).unwrap(),
            )
        })
        .collect();
    // The first page and the page after a cursor: 16 runs each.
    assert_eq!(plans.len(), 2, "{plans:#?}");
    for (statement, generic, custom) in &plans {
        assert!(
            *custom <= 5 && *generic >= 11,
            "planned {custom} times with the values, ran the kept plan {generic} times: {statement}"
        );
    }
}
