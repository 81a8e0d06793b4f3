//! createJobs (one call, 1,000 jobs) against 1,000 single createJob calls,
//! over real HTTP against the real app, in one run.
//!
//!     cargo bench --bench create_jobs                      # SQLite
//!     DATABASE_URL=postgres://… cargo bench --bench create_jobs
//!
//! The PostgreSQL run uses a fresh schema in that database.

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use jobgraph::{app::Application, config::Config, secret::Secret};
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

const N: usize = 1000;

async fn post(
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    query: &str,
    variables: Value,
) -> Value {
    let mut req = client
        .post(url)
        .json(&json!({ "query": query, "variables": variables }));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let body: Value = req.send().await.unwrap().json().await.unwrap();
    assert!(body.get("errors").is_none(), "{body}");
    body["data"].clone()
}

fn job(i: usize) -> Value {
    json!({ "title": format!("Engineer {i}"), "company": format!("Company {}", i % 50), "location": "Remote", "salaryMin": 100000, "salaryMax": 150000 })
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::embedded();
    config.bind_addr = "127.0.0.1:0".parse().unwrap();
    // A random key: start-up refuses known placeholders.
    config.jwt_secret = Some(Secret::new(format!(
        "{:032x}{:032x}",
        rand::random::<u128>(),
        rand::random::<u128>()
    )));
    let backend = match std::env::var("DATABASE_URL")
        .ok()
        .filter(|u| u.starts_with("postgres"))
    {
        Some(url) => {
            let schema = format!("bench_{}", std::process::id());
            let admin = sea_orm::Database::connect(&url).await.unwrap();
            admin
                .execute_unprepared(&format!(
                    "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
                ))
                .await
                .unwrap();
            config.database.url = Secret::new(url);
            config.database.schema = Some(schema);
            "PostgreSQL"
        }
        None => {
            config.database.url = Secret::new(format!(
                "sqlite://{}?mode=rwc",
                dir.path().join("bench.db").display()
            ));
            "SQLite"
        }
    };
    let app = Application::build(config).await.unwrap();
    let url = format!("http://{}/graphql", app.local_addr().unwrap());
    tokio::spawn(app.run_until(std::future::pending()));
    let client = reqwest::Client::new();
    let signup = post(
        &client,
        &url,
        None,
        "mutation { signup(input: {teamName: \"Bench\", name: \"B\", email: \"bench@example.com\", password: \"bench-password\"}) { token } }",
        json!({}),
    )
    .await;
    let token = signup["signup"]["token"].as_str().unwrap().to_owned();

    let single = "mutation($i: CreateJobInput!) { createJob(input: $i) { id } }";
    let bulk = "mutation($i: [CreateJobInput!]!) { createJobs(input: $i) { id } }";
    // Warm up both paths.
    post(&client, &url, Some(&token), single, json!({ "i": job(0) })).await;
    post(&client, &url, Some(&token), bulk, json!({ "i": [job(0)] })).await;

    let started = Instant::now();
    for i in 0..N {
        post(&client, &url, Some(&token), single, json!({ "i": job(i) })).await;
    }
    let one_by_one = started.elapsed();

    let input: Vec<Value> = (0..N).map(job).collect();
    let mut bulk_runs: Vec<Duration> = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let data = post(&client, &url, Some(&token), bulk, json!({ "i": input })).await;
        bulk_runs.push(started.elapsed());
        assert_eq!(data["createJobs"].as_array().unwrap().len(), N);
    }
    bulk_runs.sort();
    let bulk_median = bulk_runs[bulk_runs.len() / 2];

    println!("createJobs benchmark on {backend} ({N} jobs, release build, one run)");
    println!(
        "  {N} × createJob : {:>9.1} ms ({:.2} ms per call)",
        ms(one_by_one),
        ms(one_by_one) / N as f64
    );
    println!(
        "  1 × createJobs  : {:>9.1} ms (median of 5)",
        ms(bulk_median)
    );
    println!(
        "  ratio           : {:>9.1}× faster in one call",
        one_by_one.as_secs_f64() / bulk_median.as_secs_f64()
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
