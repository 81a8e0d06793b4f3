//! Documents an attacker would send: each is refused before anything runs,
//! with a stable code per limit, and nothing it asked for happens.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::TestApp;
use serde_json::{Value, json};

/// 40 fragments, each spreading the next one twice (2^40 fields expanded).
fn exponential_fragments() -> String {
    let mut doc = String::from("query { ...F0 }\n");
    for i in 0..40 {
        doc.push_str(&format!(
            "fragment F{i} on Query {{ ...F{} ...F{} }}\n",
            i + 1,
            i + 1
        ));
    }
    doc.push_str("fragment F40 on Query { jobs { totalCount } }\n");
    doc
}

async fn refused(app: &TestApp, token: Option<&str>, query: &str, variables: Value) -> Value {
    let (status, body) =
        tokio::time::timeout(Duration::from_secs(10), app.post(token, query, variables))
            .await
            .expect("answered, not wedged");
    assert_eq!(status, 422, "{body}");
    assert!(body.get("data").is_none(), "{body}");
    body["errors"][0].clone()
}

#[tokio::test]
async fn a_document_of_fragments_spreading_each_other_is_refused_at_once() {
    let app = TestApp::spawn().await;
    let (token, _) = app.signup("Acme", "ada@example.com").await;
    let doc = exponential_fragments();
    assert!(doc.len() < 2_500, "a small document: {} bytes", doc.len());
    let before = app.sql_statements().await;
    let error = refused(&app, Some(&token), &doc, json!({})).await;
    assert_eq!(
        error["extensions"]["code"], "TOO_MANY_SELECTIONS",
        "{error}"
    );
    assert!(app.sql_statements().await - before <= 1.0);
    // The server still answers everyone else.
    app.ok(&token, "{ viewer { id } }", json!({})).await;
}

#[tokio::test]
async fn thousands_of_aliases_are_refused() {
    let app = TestApp::spawn().await;
    let (token, _) = app.signup("Acme", "ada@example.com").await;
    let typenames: String = (0..10_000).map(|i| format!("t{i}:__typename ")).collect();
    let error = refused(&app, Some(&token), &format!("{{{typenames}}}"), json!({})).await;
    assert!(
        ["TOO_MANY_TOKENS", "DOCUMENT_TOO_LARGE"]
            .contains(&error["extensions"]["code"].as_str().unwrap()),
        "{error}"
    );
    let stats: String = (0..1000)
        .map(|i| format!("s{i}:jobStats{{total}} "))
        .collect();
    let before = app.sql_statements().await;
    let error = refused(&app, Some(&token), &format!("{{{stats}}}"), json!({})).await;
    assert_eq!(error["extensions"]["code"], "TOO_MANY_TOKENS", "{error}");
    let counts: String = (0..60)
        .map(|i| format!("c{i}: jobs(first: 0) {{ totalCount }} "))
        .collect();
    let error = refused(&app, Some(&token), &format!("{{{counts}}}"), json!({})).await;
    assert_eq!(error["extensions"]["code"], "TOO_MANY_ALIASES", "{error}");
    assert_eq!(error["extensions"]["limit"], 50);
    assert!(app.sql_statements().await - before <= 1.0);
}

#[tokio::test]
async fn list_arguments_longer_than_their_type_allows_are_refused() {
    let app = TestApp::spawn().await;
    let (token, _) = app.signup("Acme", "ada@example.com").await;
    let statuses: Vec<&str> = std::iter::repeat_n("SAVED", 100_000).collect();
    let error = refused(
        &app,
        Some(&token),
        "query($f: JobFilter) { jobs(filter: $f) { totalCount } }",
        json!({ "f": { "statusIn": statuses } }),
    )
    .await;
    assert_eq!(error["extensions"]["code"], "LIST_TOO_LONG", "{error}");
    assert_eq!(error["extensions"]["limit"], 6);
}

#[tokio::test]
async fn unknown_directives_and_wrongly_typed_directive_arguments_are_refused() {
    let app = TestApp::spawn().await;
    let (token, _) = app.signup("Acme", "ada@example.com").await;
    for query in [
        "{ jobs @cached(ttl: 5) { totalCount } }",
        "{ jobs @skip(if: \"yes\") { totalCount } }",
        "{ jobs @include { totalCount } }",
    ] {
        let error = refused(&app, Some(&token), query, json!({})).await;
        assert_eq!(
            error["extensions"]["code"], "GRAPHQL_VALIDATION_FAILED",
            "{query}: {error}"
        );
    }
    app.ok(
        &token,
        "{ jobs @skip(if: false) { totalCount } }",
        json!({}),
    )
    .await;
}

#[tokio::test]
async fn one_document_tries_at_most_one_password() {
    let app = TestApp::spawn().await;
    let (token, _) = app.signup("Acme", "ada@example.com").await;
    let logins: String = (0..50)
        .map(|i| {
            format!("a{i}: login(email: \"ada@example.com\", password: \"guess-{i}\") {{ token }} ")
        })
        .collect();
    let error = refused(&app, None, &format!("mutation {{ {logins} }}"), json!({})).await;
    assert_eq!(error["extensions"]["code"], "TOO_MANY_ALIASES", "{error}");
    let two = "mutation { a: login(email: \"ada@example.com\", password: \"x1234567\") { token } b: login(email: \"ada@example.com\", password: \"y1234567\") { token } }";
    let error = refused(&app, None, two, json!({})).await;
    assert_eq!(error["extensions"]["code"], "TOO_MANY_SIGN_INS", "{error}");
    // No attempt was made: the log holds no failed sign-in.
    let data = app
        .ok(
            &token,
            "{ logs(filter: { action: \"user.login_failed\" }) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(data["logs"]["totalCount"], 0);
}

#[tokio::test]
async fn the_introspection_queries_of_graphiql_and_codegen_tools_pass_without_a_token() {
    let app = TestApp::spawn().await;
    for query in [
        include_str!("../src/graphql/analysis/testdata/introspection_default.graphql"),
        include_str!("../src/graphql/analysis/testdata/introspection_all_options.graphql"),
    ] {
        let (status, body) = app.post(None, query, json!({})).await;
        assert_eq!(status, 200, "{body}");
        assert!(body.get("errors").is_none(), "{body}");
        let types = body["data"]["__schema"]["types"].as_array().unwrap();
        assert!(types.iter().any(|t| t["name"] == "Job"));
    }
}

#[tokio::test]
async fn introspection_can_be_switched_off_for_production() {
    let app = TestApp::spawn_with(|c| c.introspection = false).await;
    let error = refused(&app, None, "{ __schema { queryType { name } } }", json!({})).await;
    assert_eq!(error["extensions"]["code"], "INTROSPECTION_DISABLED");
    let (token, _) = app.signup("Acme", "ada@example.com").await;
    // Field suggestions go with it: a misspelt field names no real one.
    let (_, body) = app
        .post(Some(&token), "{ jbos { totalCount } }", json!({}))
        .await;
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(!message.contains("Did you mean"), "{message}");
}

#[tokio::test]
async fn anonymous_callers_get_tighter_limits() {
    let app = TestApp::spawn().await;
    let q = "{ jobs(first: 100) { nodes { id title company status createdAt } } }";
    let error = refused(&app, None, q, json!({})).await;
    assert_eq!(error["extensions"]["code"], "QUERY_TOO_COMPLEX", "{error}");
}
