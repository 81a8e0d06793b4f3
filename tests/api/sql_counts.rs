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
