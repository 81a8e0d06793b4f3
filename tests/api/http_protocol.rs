//! GraphQL over HTTP: methods, status codes, media types, batches, limits,
//! the GraphiQL page and its assets, the operator endpoints, and errors that
//! never carry SQL or driver text.

use crate::common::TestApp;
use reqwest::{
    Response,
    header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE},
};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn header(res: &Response, name: &str) -> String {
    res.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// POSTs a raw body with the given content type and accept header.
async fn post_raw(
    app: &TestApp,
    content_type: &str,
    accept: &str,
    body: impl Into<reqwest::Body>,
) -> Response {
    app.client
        .post(app.url("/graphql"))
        .header(CONTENT_TYPE, content_type)
        .header(ACCEPT, accept)
        .body(body)
        .send()
        .await
        .unwrap()
}

/// Status, content type and JSON body of a response.
async fn parts(res: Response) -> (u16, String, Value) {
    let status = res.status().as_u16();
    let content_type = header(&res, "content-type");
    let body = res.json::<Value>().await.unwrap_or(Value::Null);
    (status, content_type, body)
}

/// Text that must never reach a client: SQL, driver and database names.
fn assert_no_internals(body: &str) {
    let lower = body.to_lowercase();
    for word in [
        "select ",
        "insert ",
        "sqlx",
        "sqlite",
        "postgres",
        "syntax error",
        "relation ",
        "constraint",
        "sea_orm",
        "dberr",
        "panicked",
    ] {
        assert!(!lower.contains(word), "`{word}` leaked in {body}");
    }
}

#[tokio::test]
async fn get_runs_a_query_from_the_url() {
    let app = TestApp::spawn().await;
    let (token, _) = app.signup("Acme", "ada@example.com").await;
    let res = app
        .client
        .get(app.url("/graphql"))
        .query(&[("query", "{ __typename }")])
        .header(ACCEPT, "application/json")
        .send()
        .await
        .unwrap();
    let (status, content_type, body) = parts(res).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    assert_eq!(body, json!({ "data": { "__typename": "Query" } }));

    let res = app
        .client
        .get(app.url("/graphql"))
        .query(&[
            (
                "query",
                "query($n: Int) { viewer { email } jobs(first: $n) { totalCount } }",
            ),
            ("variables", r#"{"n": 1}"#),
        ])
        .header(ACCEPT, "application/json")
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    let (status, _, body) = parts(res).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["viewer"]["email"], "ada@example.com");
    assert_eq!(body["data"]["jobs"]["totalCount"], 0);
}

#[tokio::test]
async fn get_with_a_mutation_is_405_with_allow_post_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let (token, _) = app.signup("Acme", "ada@example.com").await;
    for (query, operation) in [
        (
            "mutation { createJob(input: { title: \"T\", company: \"C\" }) { id } }",
            None,
        ),
        (
            "query Q { __typename } mutation M { createJob(input: { title: \"T\", company: \"C\" }) { id } }",
            Some("M"),
        ),
    ] {
        let mut params = vec![("query", query)];
        if let Some(name) = operation {
            params.push(("operationName", name));
        }
        let res = app
            .client
            .get(app.url("/graphql"))
            .query(&params)
            .header(ACCEPT, "application/json")
            .header(AUTHORIZATION, format!("Bearer {token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 405);
        assert_eq!(header(&res, "allow"), "POST");
        let (_, _, body) = parts(res).await;
        assert_eq!(
            body["errors"][0]["extensions"]["code"],
            "METHOD_NOT_ALLOWED"
        );
    }
    let data = app.ok(&token, "{ jobs { totalCount } }", json!({})).await;
    assert_eq!(data["jobs"]["totalCount"], 0);
    // Naming the query of the same document runs it.
    let res = app
        .client
        .get(app.url("/graphql"))
        .query(&[
            (
                "query",
                "query Q { __typename } mutation M { createJob(input: { title: \"T\", company: \"C\" }) { id } }",
            ),
            ("operationName", "Q"),
        ])
        .header(ACCEPT, "application/json")
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    let (status, _, body) = parts(res).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["__typename"], "Query");
}

#[tokio::test]
async fn an_unparseable_document_is_400_with_no_data() {
    let app = TestApp::spawn().await;
    let res = post_raw(
        &app,
        "application/json",
        "application/graphql-response+json",
        r#"{"query":"{ jobs { "}"#,
    )
    .await;
    let (status, _, body) = parts(res).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        "GRAPHQL_PARSE_FAILED"
    );
    assert!(body.get("data").is_none(), "{body}");
    // Over GET as well.
    let res = app
        .client
        .get(app.url("/graphql"))
        .query(&[("query", "{ jobs { ")])
        .header(ACCEPT, "application/graphql-response+json")
        .send()
        .await
        .unwrap();
    let (status, _, body) = parts(res).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        "GRAPHQL_PARSE_FAILED"
    );
    assert!(body.get("data").is_none(), "{body}");
}

#[tokio::test]
async fn a_document_that_fails_validation_is_400_with_no_data() {
    let app = TestApp::spawn().await;
    let (token, _) = app.signup("Acme", "ada@example.com").await;
    for query in [
        "{ noSuchField }",
        "{ jobs { nodes { salary } } }",
        "query($x: Int!) { jobs(first: $x) { totalCount } }",
        "{ jobs(first: \"ten\") { totalCount } }",
    ] {
        let (status, body) = app.post(Some(&token), query, json!({})).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "GRAPHQL_VALIDATION_FAILED",
            "{query}: {body}"
        );
        assert!(body.get("data").is_none(), "{query}: {body}");
    }
}

#[tokio::test]
async fn a_body_that_is_not_json_is_400_and_a_non_json_content_type_is_415() {
    let app = TestApp::spawn().await;
    for body in ["this is not json", "{\"query\": ", "42", "{\"query\": 7}"] {
        let res = post_raw(&app, "application/json", "application/json", body).await;
        let (status, _, json) = parts(res).await;
        assert_eq!(status, 400, "{body}: {json}");
        assert_eq!(
            json["errors"][0]["extensions"]["code"], "BAD_REQUEST",
            "{body}"
        );
        assert!(json.get("data").is_none());
    }
    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/json; charset=latin1",
    ] {
        let res = post_raw(
            &app,
            content_type,
            "application/json",
            r#"{"query":"{ __typename }"}"#,
        )
        .await;
        let (status, _, json) = parts(res).await;
        assert_eq!(status, 415, "{content_type}: {json}");
        assert_eq!(
            json["errors"][0]["extensions"]["code"],
            "UNSUPPORTED_MEDIA_TYPE"
        );
    }
    let res = app
        .client
        .post(app.url("/graphql"))
        .body(r#"{"query":"{ __typename }"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 415, "no content type at all");
    let res = post_raw(
        &app,
        "application/json; charset=utf-8",
        "application/json",
        r#"{"query":"{ __typename }"}"#,
    )
    .await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn accept_chooses_the_response_media_type() {
    let app = TestApp::spawn().await;
    let q = r#"{"query":"{ __typename }"}"#;
    let res = post_raw(&app, "application/json", "text/csv", q).await;
    let (status, content_type, body) = parts(res).await;
    assert_eq!(status, 406, "{body}");
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    assert_eq!(body["errors"][0]["extensions"]["code"], "NOT_ACCEPTABLE");

    let res = post_raw(
        &app,
        "application/json",
        "application/graphql-response+json",
        q,
    )
    .await;
    let (status, content_type, body) = parts(res).await;
    assert_eq!(status, 200);
    assert!(
        content_type.starts_with("application/graphql-response+json"),
        "{content_type}"
    );
    assert_eq!(body["data"]["__typename"], "Query");

    let res = post_raw(&app, "application/json", "application/json", q).await;
    assert!(header(&res, "content-type").starts_with("application/json"));
    let res = post_raw(
        &app,
        "application/json",
        "application/json;q=0.5, application/graphql-response+json",
        q,
    )
    .await;
    assert!(header(&res, "content-type").starts_with("application/graphql-response+json"));

    // GET with an unacceptable type is refused too.
    let res = app
        .client
        .get(app.url("/graphql"))
        .query(&[("query", "{ __typename }")])
        .header(ACCEPT, "text/csv")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 406);
}

#[tokio::test]
async fn no_accept_header_means_application_json() {
    let app = TestApp::spawn().await;
    // reqwest always sends `Accept: */*`; write the request by hand.
    let body = r#"{"query":"{ __typename }"}"#;
    let request = format!(
        "POST /graphql HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        app.addr,
        body.len()
    );
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let (head, payload) = response.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let content_type = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-type")
                .then(|| value.trim().to_owned())
        })
        .unwrap();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    assert!(payload.contains("\"__typename\":\"Query\""), "{payload}");
}

#[tokio::test]
async fn a_batch_runs_every_operation_and_answers_with_an_array() {
    let app = TestApp::spawn().await;
    let (token, _) = app.signup("Acme", "ada@example.com").await;
    let batch = json!([
        { "query": "mutation { createJob(input: { title: \"T\", company: \"C\" }) { title } }" },
        { "query": "query($n: Int) { viewer { email } jobs(first: $n) { totalCount } }", "variables": { "n": 5 } },
    ]);
    let res = app
        .client
        .post(app.url("/graphql"))
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .json(&batch)
        .send()
        .await
        .unwrap();
    let (status, _, body) = parts(res).await;
    assert_eq!(status, 200, "{body}");
    let answers = body
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {body}"));
    assert_eq!(answers.len(), 2);
    assert_eq!(answers[0]["data"]["createJob"]["title"], "T");
    assert_eq!(answers[1]["data"]["viewer"]["email"], "ada@example.com");
    assert_eq!(
        answers[1]["data"]["jobs"]["totalCount"], 1,
        "operations run in order"
    );
}

#[tokio::test]
async fn a_batch_larger_than_the_limit_or_empty_is_400() {
    let app = TestApp::spawn_with(|c| c.limits.max_batch_operations = 2).await;
    let op = json!({ "query": "{ __typename }" });
    let res = app
        .client
        .post(app.url("/graphql"))
        .json(&json!([op, op, op]))
        .send()
        .await
        .unwrap();
    let (status, _, body) = parts(res).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["errors"][0]["extensions"]["code"], "BATCH_LIMIT");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("1 to 2"),
        "{body}"
    );
    let res = app
        .client
        .post(app.url("/graphql"))
        .json(&json!([]))
        .send()
        .await
        .unwrap();
    let (status, _, body) = parts(res).await;
    assert_eq!(status, 400, "{body}");
    let res = app
        .client
        .post(app.url("/graphql"))
        .json(&json!([op, op]))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn a_body_larger_than_the_limit_is_413() {
    let app = TestApp::spawn_with(|c| c.limits.max_body_bytes = 1024).await;
    let padding = " ".repeat(2000);
    let body = format!(r#"{{"query":"{{ __typename }}{padding}"}}"#);
    let res = post_raw(&app, "application/json", "application/json", body).await;
    let (status, _, json) = parts(res).await;
    assert_eq!(status, 413, "{json}");
    assert_eq!(json["errors"][0]["extensions"]["code"], "PAYLOAD_TOO_LARGE");
    let small = format!(r#"{{"query":"{{ __typename }}{}"}}"#, " ".repeat(900));
    let res = post_raw(&app, "application/json", "application/json", small).await;
    assert_eq!(res.status(), 200);
}

/// `{ viewer { team { jobs(first: 1) { nodes { team { … name } } } } } }`
/// with `levels` rounds of `team → jobs → nodes`.
fn nested(levels: usize) -> String {
    let mut q = String::from("{ viewer { ");
    for _ in 0..levels {
        q.push_str("team { jobs(first: 1) { nodes { ");
    }
    q.push_str("id ");
    for _ in 0..levels {
        q.push_str("} } } ");
    }
    q.push_str("} }");
    q
}

#[tokio::test]
async fn queries_deeper_than_the_limit_are_422() {
    let app = TestApp::spawn().await;
    let (token, _) = app.signup("Acme", "ada@example.com").await;
    // 1 + 3 × 3 + 1 = 11 levels: allowed by the default of 12.
    let (status, body) = app.post(Some(&token), &nested(3), json!({})).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = app.post(Some(&token), &nested(4), json!({})).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["errors"][0]["extensions"]["code"], "QUERY_TOO_DEEP");
    assert_eq!(body["errors"][0]["extensions"]["limit"], 12);
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("MAX_QUERY_DEPTH"),
        "{body}"
    );
    assert!(body.get("data").is_none());

    let shallow = TestApp::spawn_with(|c| c.limits.query.max_depth = 4).await;
    let (token, _) = shallow.signup("Acme", "ada@example.com").await;
    let (status, _) = shallow
        .post(Some(&token), "{ viewer { team { name } } }", json!({}))
        .await;
    assert_eq!(status, 200);
    let (status, body) = shallow.post(Some(&token), &nested(1), json!({})).await;
    assert_eq!(status, 422, "{body}");
}

#[tokio::test]
async fn a_nested_connection_above_the_complexity_limit_is_422() {
    let app = TestApp::spawn().await;
    let (token, _) = app.signup("Acme", "ada@example.com").await;
    let q = "{ users(first: 100) { nodes { jobs(first: 100) { nodes { team { jobs(first: 100) { nodes { id } } } } } } } }";
    let before = app.sql_statements().await;
    let (status, body) = app.post(Some(&token), q, json!({})).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["errors"][0]["extensions"]["code"], "QUERY_TOO_COMPLEX");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("MAX_QUERY_COMPLEXITY"),
        "{body}"
    );
    assert!(body.get("data").is_none());
    // Refused before any resolver ran (the token check is the only statement, if any).
    assert!(app.sql_statements().await - before <= 1.0);
    // The same shape with small pages is fine.
    let small = "{ users(first: 5) { nodes { jobs(first: 5) { nodes { team { jobs(first: 5) { nodes { id } } } } } } } }";
    let (status, body) = app.post(Some(&token), small, json!({})).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn a_browser_gets_graphiql_served_entirely_from_this_origin() {
    let app = TestApp::spawn().await;
    let res = app
        .client
        .get(app.url("/graphql"))
        .header(
            ACCEPT,
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(header(&res, "content-type").starts_with("text/html"));
    let csp = header(&res, "content-security-policy");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    let html = res.text().await.unwrap();
    assert!(html.contains("graphiql"), "{html}");
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "{html}"
    );

    let mut assets = Vec::new();
    for attr in ["src=\"", "href=\""] {
        for chunk in html.split(attr).skip(1) {
            let path = chunk.split('"').next().unwrap();
            // The favicon is an empty inline image (no request at all).
            if path != "data:," {
                assets.push(path.to_owned());
            }
        }
    }
    assert!(assets.len() >= 2, "{html}");
    for path in assets {
        assert!(path.starts_with("/graphiql/"), "{path}");
        let res = app.client.get(app.url(&path)).send().await.unwrap();
        assert_eq!(res.status(), 200, "{path}");
        let content_type = header(&res, "content-type");
        assert!(
            content_type.contains("javascript") || content_type.contains("css"),
            "{path}: {content_type}"
        );
        assert!(!res.bytes().await.unwrap().is_empty(), "{path}");
    }
    let res = app
        .client
        .get(app.url("/graphiql/nope.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}

#[tokio::test]
async fn health_ready_and_metrics_answer_for_operators() {
    let app = TestApp::spawn().await;
    let res = app.client.get(app.url("/health")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let res = app.client.get(app.url("/ready")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["database"], "ok", "{body}");

    app.post(None, "{ __typename }", json!({})).await;
    let res = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(header(&res, "content-type").starts_with("text/plain"));
    let text = res.text().await.unwrap();

    assert!(text.contains("jobgraph_sql_statements_total"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("jobgraph_http_requests_total{")
                && l.contains("route=\"/graphql\"")
                && l.contains("status=\"200\"")),
        "{text}"
    );
    assert!(app.sql_statements().await > 0.0);
}

#[tokio::test]
async fn no_response_carries_sql_or_driver_text() {
    let app = TestApp::spawn().await;
    let (token, _) = app.signup("Acme", "ada@example.com").await;
    let long = "x".repeat(100_000);
    let nul = "a\u{0}b";
    let cases = [
        (
            "query($s: String) { jobs(filter: { search: $s }) { totalCount } }",
            json!({ "s": long }),
        ),
        (
            "query($s: String) { users(filter: { search: $s }) { totalCount } }",
            json!({ "s": long }),
        ),
        (
            "query($s: String) { jobs(filter: { company: $s }) { totalCount } }",
            json!({ "s": long }),
        ),
        (
            "query($s: String) { logs(filter: { action: $s }) { totalCount } }",
            json!({ "s": long }),
        ),
        (
            "mutation($s: String!) { createJob(input: { title: $s, company: \"C\" }) { id } }",
            json!({ "s": long }),
        ),
        (
            "query($s: String) { jobs(filter: { search: $s }) { totalCount } }",
            json!({ "s": nul }),
        ),
        (
            "query($s: String) { users(filter: { search: $s }) { totalCount } }",
            json!({ "s": nul }),
        ),
        (
            "query($s: String) { jobs(filter: { company: $s }) { totalCount } }",
            json!({ "s": nul }),
        ),
        (
            "query($s: String) { logs(filter: { action: $s }) { totalCount } }",
            json!({ "s": nul }),
        ),
        (
            "mutation($s: String!) { createJob(input: { title: $s, company: \"C\" }) { id } }",
            json!({ "s": nul }),
        ),
        (
            "mutation($s: String!) { createJob(input: { title: \"T\", company: \"C\", description: $s }) { id } }",
            json!({ "s": nul }),
        ),
        (
            "mutation($s: String!) { createJob(input: { title: \"T\", company: \"C\", url: $s }) { id } }",
            json!({ "s": "https://x.example/\u{0}" }),
        ),
        (
            "mutation($s: String!) { createUser(input: { name: $s, email: \"n@example.com\" }) { id } }",
            json!({ "s": nul }),
        ),
        (
            "mutation($s: String!) { createUser(input: { name: \"N\", email: $s }) { id } }",
            json!({ "s": "a\u{0}@example.com" }),
        ),
    ];
    for (query, vars) in cases {
        let (status, body) = app.post(Some(&token), query, vars.clone()).await;
        assert_eq!(status, 200, "{query}");
        assert_eq!(
            body["errors"][0]["extensions"]["code"],
            "BAD_USER_INPUT",
            "{query} {}: {body}",
            vars.to_string().chars().take(40).collect::<String>()
        );
        assert_no_internals(&body.to_string());
    }
    // Anonymous paths too: a NUL or a huge e-mail is simply a refused login.
    for email in [
        nul.to_owned(),
        "a\u{0}@example.com".to_owned(),
        long.clone(),
    ] {
        let (status, body) = app
            .post(
                None,
                "mutation($e: String!) { login(email: $e, password: \"whatever-password\") { token } }",
                json!({ "e": email }),
            )
            .await;
        assert_eq!(status, 200);
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
            "{body}"
        );
        assert_no_internals(&body.to_string());
    }
    let (_, body) = app
        .post(
            None,
            "mutation($e: String!) { signup(input: { teamName: \"T\", name: \"N\", email: $e, password: \"long-enough-password\" }) { token } }",
            json!({ "e": "a\u{0}@example.com" }),
        )
        .await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{body}"
    );
    // Nothing was written by any of it.
    let data = app
        .ok(
            &token,
            "{ jobs { totalCount } users { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(data["jobs"]["totalCount"], 0);
    assert_eq!(data["users"]["totalCount"], 1);
}

/// GraphQL over HTTP's legacy rules: a client that accepts only
/// `application/json` (or anything, `*/*`) reads request errors from a 200
/// body; one that accepts `application/graphql-response+json` gets 4xx.
#[tokio::test]
async fn request_errors_are_200_for_application_json_and_4xx_for_graphql_response_json() {
    let app = TestApp::spawn().await;
    let (token, _) = app.signup("Acme", "ada@example.com").await;
    let deep = nested(4);
    let cases = [
        (json!({ "query": "{ jobs { " }), "GRAPHQL_PARSE_FAILED", 400),
        (
            json!({ "query": "{ noSuchField }" }),
            "GRAPHQL_VALIDATION_FAILED",
            400,
        ),
        (
            json!({ "query": "query($id: ID!) { __typename }", "variables": { "id": null } }),
            "GRAPHQL_VALIDATION_FAILED",
            400,
        ),
        (json!({ "query": deep }), "QUERY_TOO_DEEP", 422),
    ];
    for (request, code, strict_status) in cases {
        for (accept, status, media) in [
            ("application/json", 200, "application/json"),
            ("*/*", 200, "application/json"),
            (
                "application/graphql-response+json",
                strict_status,
                "application/graphql-response+json",
            ),
        ] {
            let res = app
                .client
                .post(app.url("/graphql"))
                .header(CONTENT_TYPE, "application/json")
                .header(ACCEPT, accept)
                .header(AUTHORIZATION, format!("Bearer {token}"))
                .body(request.to_string())
                .send()
                .await
                .unwrap();
            let (got, content_type, body) = parts(res).await;
            assert_eq!(got, status, "{accept} {request}: {body}");
            assert!(content_type.starts_with(media), "{accept}: {content_type}");
            assert_eq!(
                body["errors"][0]["extensions"]["code"], code,
                "{request}: {body}"
            );
            assert!(body.get("data").is_none(), "{body}");
        }
    }
    // A body that is not a GraphQL request is a 400 whatever the client accepts.
    let res = post_raw(&app, "application/json", "application/json", "{not json").await;
    assert_eq!(res.status(), 400);
}

/// A request's future lives on a worker thread's stack until it first
/// waits: it must stay far below the 2 MiB a thread has (a deep chain of
/// awaits once overflowed a debug build's stack).
#[tokio::test]
async fn a_request_future_stays_small() {
    let app = TestApp::spawn().await;
    let executor = app.state.executor();
    let future = executor.run(
        jobgraph::graphql::execution::Source::Query("query={__typename}".into()),
        None,
        None,
    );
    let size = std::mem::size_of_val(&future);
    println!("request future: {size} bytes");
    assert!(size < 64 * 1024, "the request future is {size} bytes");
    drop(future);
}
