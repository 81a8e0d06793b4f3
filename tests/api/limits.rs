//! Documents an attacker would send: each is refused before anything runs,
//! with a stable code per limit, and nothing it asked for happens.

use std::time::Duration;

use crate::common::TestApp;
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
    // Refused before the body is even decoded: no list holds more.
    assert_eq!(error["extensions"]["limit"], 1000);
    // Within that, a list of statuses holds each status at most once.
    let seven = [
        "SAVED",
        "APPLIED",
        "INTERVIEWING",
        "OFFER",
        "REJECTED",
        "ARCHIVED",
        "SAVED",
    ];
    let error = refused(
        &app,
        Some(&token),
        "query($f: JobFilter) { jobs(filter: $f) { totalCount } }",
        json!({ "f": { "statusIn": seven } }),
    )
    .await;
    assert_eq!(error["extensions"]["code"], "LIST_TOO_LONG", "{error}");
    assert_eq!(error["extensions"]["limit"], 6);
}

#[tokio::test]
async fn a_cost_or_a_list_hidden_in_a_variable_default_is_measured_like_one_sent() {
    let app = TestApp::spawn().await;
    let (token, _) = app.signup("Acme", "ada@example.com").await;
    // Sent as `first: 100` this is far over the cost limit; the default
    // must count the same when the variable is left out.
    let nested = "query($n: Int = 100) { users(first: $n) { nodes { jobs(first: $n) { nodes { resumes { id } } } } } }";
    let sent = refused(&app, Some(&token), nested, json!({ "n": 100 })).await;
    assert_eq!(sent["extensions"]["code"], "QUERY_TOO_COMPLEX", "{sent}");
    let defaulted = refused(&app, Some(&token), nested, json!({})).await;
    assert_eq!(
        defaulted["extensions"]["code"], "QUERY_TOO_COMPLEX",
        "{defaulted}"
    );
    assert_eq!(
        defaulted["extensions"]["value"],
        sent["extensions"]["value"]
    );
    // A list of statuses in a default holds each status at most once, too.
    let error = refused(
        &app,
        Some(&token),
        "query($f: JobFilter = { statusIn: [SAVED, SAVED, SAVED, SAVED, SAVED, SAVED, SAVED] }) { jobs(filter: $f) { totalCount } }",
        json!({}),
    )
    .await;
    assert_eq!(error["extensions"]["code"], "LIST_TOO_LONG", "{error}");
    // A sent value still wins over the default.
    app.ok(
        &token,
        "query($n: Int = 100) { jobs(first: $n) { totalCount } }",
        json!({ "n": 5 }),
    )
    .await;
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
        include_str!("../../src/graphql/analysis/testdata/introspection_default.graphql"),
        include_str!("../../src/graphql/analysis/testdata/introspection_all_options.graphql"),
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

async fn team_id(app: &TestApp, token: &str) -> i64 {
    let data = app.ok(token, "{ team { id } }", json!({})).await;
    jobgraph::graphql::ids::decode(
        jobgraph::graphql::ids::Kind::Team,
        &data["team"]["id"].as_str().unwrap().into(),
        "id",
    )
    .unwrap()
}

#[tokio::test]
async fn an_answer_larger_than_the_limit_is_refused_not_sent() {
    let app = TestApp::spawn_with(|c| c.limits.max_response_bytes = 64 * 1024).await;
    let (token, _) = app.signup("Acme", "ada@example.com").await;
    let long = "x".repeat(10_000);
    let input: Vec<Value> = (0..20)
        .map(|i| json!({ "title": format!("Job {i}"), "company": "Co", "description": long }))
        .collect();
    // The mutation's own answer is not measured (its change committed).
    app.ok(
        &token,
        "mutation($i: [CreateJobInput!]!) { createJobs(input: $i) { id description } }",
        json!({ "i": input }),
    )
    .await;
    let error = refused(
        &app,
        Some(&token),
        "{ jobs(first: 20) { nodes { id description } } }",
        json!({}),
    )
    .await;
    assert_eq!(error["extensions"]["code"], "RESPONSE_TOO_LARGE", "{error}");
    // Small pages of the same data are fine.
    app.ok(
        &token,
        "{ jobs(first: 3) { nodes { id description } } }",
        json!({}),
    )
    .await;
}

#[tokio::test]
async fn entries_larger_than_the_limit_are_not_stored() {
    let app = TestApp::spawn_with(|c| c.cache.max_entry_bytes = 1024).await;
    let (token, _) = app.signup("Acme", "ada@example.com").await;
    app.create_jobs(&token, "A rather long job title to fill the answer", 30)
        .await;
    let big = "{ jobs(first: 30) { nodes { id title company } } }";
    assert_eq!(app.cached(&token, big, json!({})).await.0, "MISS");
    assert_eq!(app.cached(&token, big, json!({})).await.0, "MISS");
    let small = "{ jobs(first: 1) { nodes { id } } }";
    assert_eq!(app.cached(&token, small, json!({})).await.0, "MISS");
    assert_eq!(app.cached(&token, small, json!({})).await.0, "HIT");
}

#[tokio::test]
async fn made_up_job_ids_create_no_generation_keys() {
    use jobgraph::{
        cache::Dep,
        graphql::ids::{Kind, encode},
    };
    let app = TestApp::spawn().await;
    let (token, _) = app.signup("Acme", "ada@example.com").await;
    let (other, _) = app.signup("Other", "bob@example.com").await;
    let theirs = app.create_jobs(&other, "Theirs", 1).await;
    let team = team_id(&app, &token).await;
    let query = "query($id: ID!) { job(id: $id) { title } }";
    for n in [900_001i64, 900_002, 900_003] {
        let id = encode(Kind::Job, n);
        let (state, data) = app.cached(&token, query, json!({ "id": id })).await;
        assert_eq!(state, "MISS");
        assert!(data["job"].is_null());
        assert!(!app.state.cache().has_generation(team, Dep::Job(n)).await);
    }
    // Another team's job is as unknown as a made-up one.
    let (_, data) = app.cached(&token, query, json!({ "id": theirs[0] })).await;
    assert!(data["job"].is_null());
    let theirs_n =
        jobgraph::graphql::ids::decode(Kind::Job, &theirs[0].as_str().into(), "id").unwrap();
    assert!(
        !app.state
            .cache()
            .has_generation(team, Dep::Job(theirs_n))
            .await
    );
    // A real job gets its generation, and its detail is cached.
    let mine = app.create_jobs(&token, "Mine", 1).await;
    let mine_n = jobgraph::graphql::ids::decode(Kind::Job, &mine[0].as_str().into(), "id").unwrap();
    assert_eq!(
        app.cached(&token, query, json!({ "id": mine[0] })).await.0,
        "MISS"
    );
    assert!(
        app.state
            .cache()
            .has_generation(team, Dep::Job(mine_n))
            .await
    );
    assert_eq!(
        app.cached(&token, query, json!({ "id": mine[0] })).await.0,
        "HIT"
    );
}

#[tokio::test]
async fn the_background_refresh_replays_only_for_callers_who_still_may_read() {
    let app = TestApp::spawn().await;
    let (admin, _) = app.signup("Acme", "ada@example.com").await;
    let (member, member_id) = app.add_user(&admin, "mel@example.com", "MEMBER").await;
    let team = team_id(&app, &admin).await;
    let logs = "{ logs(first: 5) { nodes { action } } }";
    app.cached(&member, logs, json!({})).await;
    let noted = |app: &TestApp| app.state.cache().warmable(team).len();
    assert_eq!(noted(&app), 1);
    app.ok(
        &admin,
        "mutation($id: ID!) { deactivateUser(id: $id) { id } }",
        json!({ "id": member_id }),
    )
    .await;
    // A job write schedules the refresh; it drops the member's read.
    let tasks_before = app
        .metric("jobgraph_sql_statements_total{pool=\"tasks\"}")
        .await;
    app.create_jobs(&admin, "Job", 1).await;
    app.eventually(
        10,
        "the refresh to drop the deactivated member's read",
        || async { noted(&app) == 0 },
    )
    .await;
    // It ran on the workers' pool.
    assert!(
        app.metric("jobgraph_sql_statements_total{pool=\"tasks\"}")
            .await
            > tasks_before
    );
}
