//! Persisted queries from the client's side: Apollo's automatic persisted
//! queries over POST and GET, shared by replicas through Redis, and the
//! trusted-documents lock-down.

use reqwest::header::{ACCEPT, AUTHORIZATION};
use serde_json::{Value, json};

use crate::common::{self, GRAPHQL_RESPONSE, TestApp};

const QUERY: &str = "query Jobs { jobs(first: 3) { totalCount nodes { title } } }";

fn sha256(text: &str) -> String {
    jobgraph::graphql::persisted::sha256_hex(text)
}

fn extensions(hash: &str) -> Value {
    json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } })
}

async fn post(app: &TestApp, token: &str, body: Value) -> (u16, Value) {
    let res = app
        .client
        .post(app.url("/graphql"))
        .header(ACCEPT, GRAPHQL_RESPONSE)
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap())
}

async fn get(app: &TestApp, token: &str, hash: &str) -> (u16, Value) {
    let res = app
        .client
        .get(app.url("/graphql"))
        .query(&[
            ("extensions", extensions(hash).to_string()),
            ("operationName", "Jobs".to_owned()),
        ])
        .header(ACCEPT, GRAPHQL_RESPONSE)
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap())
}

fn code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or("")
}

#[tokio::test]
async fn automatic_persisted_queries_register_once_and_then_run_by_hash_on_every_replica() {
    let (_redis, one, two) = common::two_replicas().await;
    let (token, _) = one.signup("Apq", "admin@example.com").await;
    one.create_jobs(&token, "Job", 2).await;
    let hash = sha256(QUERY);

    // Unknown hash: the client is told to send the text.
    let (status, body) = post(&one, &token, json!({ "extensions": extensions(&hash) })).await;
    assert_eq!(code(&body), "PERSISTED_QUERY_NOT_FOUND", "{body}");
    assert_eq!(body["errors"][0]["message"], "PersistedQueryNotFound");
    assert_eq!(status, 400);
    assert!(body.get("data").is_none());

    // A text that does not match its hash is refused and not registered.
    let (status, body) = post(
        &one,
        &token,
        json!({ "query": "{ __typename }", "extensions": extensions(&hash) }),
    )
    .await;
    assert_eq!((status, code(&body)), (400, "BAD_REQUEST"), "{body}");

    // Text and hash: runs and registers.
    let (status, body) = post(
        &one,
        &token,
        json!({ "query": QUERY, "extensions": extensions(&hash) }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["jobs"]["totalCount"], 2);

    // The hash alone now runs on both replicas, over POST and GET.
    for app in [&one, &two] {
        let body_only_hash = json!({ "extensions": extensions(&hash) });
        let (status, body) = post(app, &token, body_only_hash.clone()).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["jobs"]["totalCount"], 2);
        let (status, body) = get(app, &token, &hash).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["jobs"]["totalCount"], 2);
        // The analysed plan is remembered by the request's bytes: the next
        // request with this hash is neither parsed nor analysed.
        let raw = serde_json::to_vec(&body_only_hash).unwrap();
        assert!(
            app.state.executor().known_plan(&raw).is_some(),
            "no plan remembered for the hash-only request"
        );
    }

    // A malformed persisted query is a bad request.
    let (status, body) = post(
        &one,
        &token,
        json!({ "extensions": { "persistedQuery": { "version": 1, "sha256Hash": "abc" } } }),
    )
    .await;
    assert_eq!((status, code(&body)), (400, "BAD_REQUEST"), "{body}");
}

#[tokio::test]
async fn a_request_without_a_query_is_a_bad_request_for_every_client() {
    let app = TestApp::spawn().await;
    for accept in ["application/json", GRAPHQL_RESPONSE] {
        let res = app
            .client
            .post(app.url("/graphql"))
            .header(ACCEPT, accept)
            .json(&json!({ "qeury": "{ __typename }" }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{accept}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(code(&body), "BAD_REQUEST");
    }
}

#[tokio::test]
async fn with_trusted_documents_only_the_manifests_documents_run() {
    let listed = "query Jobs { jobs(first: 3) { totalCount } }";
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("persisted-documents.json");
    // The harness signs up with this document.
    let signup = "mutation($i: SignupInput!) { signup(input: $i) { token user { id } } }";
    std::fs::write(
        &manifest,
        json!({ sha256(listed): listed, sha256(signup): signup }).to_string(),
    )
    .unwrap();
    let app = TestApp::spawn_with(move |c| {
        c.persisted_queries_manifest = Some(manifest);
        c.persisted_queries_only = true;
    })
    .await;
    let (token, _) = app.signup("Locked", "admin@example.com").await;

    // By hash and as text: runs.
    let (status, body) = post(
        &app,
        &token,
        json!({ "extensions": extensions(&sha256(listed)) }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["jobs"]["totalCount"], 0);
    let (status, body) = post(&app, &token, json!({ "query": listed })).await;
    assert_eq!(status, 200, "{body}");

    // Anything else: refused before it is parsed, registration included.
    let other = "{ jobs(first: 50) { totalCount } }";
    for body in [
        json!({ "query": other }),
        json!({ "query": other, "extensions": extensions(&sha256(other)) }),
    ] {
        let (status, answer) = post(&app, &token, body).await;
        assert_eq!(
            (status, code(&answer)),
            (400, "PERSISTED_QUERY_NOT_ALLOWED"),
            "{answer}"
        );
    }
    let (_, answer) = post(
        &app,
        &token,
        json!({ "extensions": extensions(&sha256(other)) }),
    )
    .await;
    assert_eq!(code(&answer), "PERSISTED_QUERY_NOT_FOUND", "{answer}");
}

#[tokio::test]
async fn a_manifest_whose_hashes_do_not_match_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("m.json");
    std::fs::write(
        &manifest,
        json!({ "0".repeat(64): "{ __typename }" }).to_string(),
    )
    .unwrap();
    let error =
        jobgraph::graphql::persisted::PersistedQueries::read_manifest(&manifest).unwrap_err();
    assert!(error.to_string().contains("does not hash"), "{error}");
    let error = jobgraph::config::Config::from_lookup(|name| {
        (name == "PERSISTED_QUERIES_ONLY").then(|| "true".to_owned())
    })
    .unwrap_err();
    assert!(
        error.to_string().contains("PERSISTED_QUERIES_MANIFEST"),
        "{error}"
    );
}
