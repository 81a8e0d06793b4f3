//! A nested page costs a constant handful of SQL statements, whatever its
//! size: every relation is fetched one batch per level.

use crate::common::TestApp;
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
