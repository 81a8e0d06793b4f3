//! How long the worst documents within the body limit take to be refused,
//! through the real router (JSON decode, token count, parse, analysis):
//! the median and the maximum of 50 runs each, in one run.
//!
//!     cargo bench --bench refusals

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use axum::body::Body;
use jobgraph::{app::Application, config::Config, secret::Secret};
use serde_json::{Value, json};
use tower::ServiceExt;

fn cases() -> Vec<(&'static str, Vec<u8>)> {
    let body = |query: String, variables: Value| {
        serde_json::to_vec(&json!({ "query": query, "variables": variables })).unwrap()
    };
    let mut fragments = String::from("query { ...F0 }\n");
    for i in 0..40 {
        fragments.push_str(&format!(
            "fragment F{i} on Query {{ ...F{} ...F{} }}\n",
            i + 1,
            i + 1
        ));
    }
    fragments.push_str("fragment F40 on Query { jobs { totalCount } }\n");
    let aliases: String = (0..4_900 / 3)
        .map(|i| format!("a{i}:__typename "))
        .collect();
    let tokens: String = (0..200_000).map(|_| "a ").collect();
    let nested = format!("{}{}", "{ a ".repeat(30_000), "}".repeat(30_000));
    let huge_var = "x".repeat(1_900_000);
    let statuses: Vec<&str> = std::iter::repeat_n("SAVED", 150_000).collect();
    vec![
        (
            "40 fragments spreading the next twice (2 KB)",
            body(fragments, json!({})),
        ),
        (
            "1,633 aliases of __typename within the token limit",
            body(format!("{{ {aliases} }}"), json!({})),
        ),
        (
            "400 KB of tokens (2 MB body limit)",
            body(format!("{{ {tokens} }}"), json!({})),
        ),
        ("30,000 nested selections", body(nested, json!({}))),
        (
            "statusIn with 150,000 values (1.2 MB of variables)",
            body(
                "query($f: JobFilter) { jobs(filter: $f) { totalCount } }".into(),
                json!({ "f": { "statusIn": statuses } }),
            ),
        ),
        (
            "a 1.9 MB string variable, a small valid query",
            body(
                "query($s: String) { jobs(filter: { search: $s }) { totalCount } }".into(),
                json!({ "s": huge_var }),
            ),
        ),
    ]
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::embedded();
    config.bind_addr = "127.0.0.1:0".parse().unwrap();
    config.jwt_secret = Some(Secret::new("pX8v2QmL7wRz9KcT4nYb6HsJ1dFgA3eU"));
    config.jwt_secret_file = dir.path().join("secret");
    config.database.url = Secret::new(format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("b.db").display()
    ));
    config.mail.outbox_dir = dir.path().join("outbox");
    config.tasks.concurrency = 0;
    let app = Application::build(config).await.unwrap();
    let router = jobgraph::http::router(app.state().clone());
    let signup = json!({ "query": "mutation { signup(input: { teamName: \"B\", name: \"B\", email: \"b@example.com\", password: \"password-123\" }) { token } }" });
    let res = router
        .clone()
        .oneshot(
            axum::http::Request::post("/graphql")
                .header("content-type", "application/json")
                .body(Body::from(serde_json::to_vec(&signup).unwrap()))
                .unwrap(),
        )
        .await
        .unwrap();
    let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .unwrap();
    let token = serde_json::from_slice::<Value>(&bytes).unwrap()["data"]["signup"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    println!("| document | body | answer | median | max |\n| --- | --: | --- | --: | --: |");
    for (name, body) in cases() {
        let mut times: Vec<Duration> = Vec::new();
        let mut answer = String::new();
        for _ in 0..50 {
            let request = axum::http::Request::post("/graphql")
                .header("content-type", "application/json")
                .header("authorization", format!("Bearer {token}"))
                .body(Body::from(body.clone()))
                .unwrap();
            let started = Instant::now();
            let res = router.clone().oneshot(request).await.unwrap();
            let status = res.status().as_u16();
            let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
                .await
                .unwrap();
            times.push(started.elapsed());
            let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            answer = format!(
                "{status} {}",
                value["errors"][0]["extensions"]["code"]
                    .as_str()
                    .unwrap_or("")
            );
        }
        times.sort();
        println!(
            "| {name} | {} KB | {answer} | {:.2} ms | {:.2} ms |",
            body.len() / 1024,
            times[times.len() / 2].as_secs_f64() * 1e3,
            times[times.len() - 1].as_secs_f64() * 1e3,
        );
    }
}
