//! Log lines carry their request: an internal error in the log names the
//! request id the client got back in `X-Request-Id`; logs written to a file
//! hold no colour codes.

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use crate::common::{fresh_config, redis::free_port};
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

#[tokio::test]
async fn an_internal_error_in_the_log_names_its_request() {
    let dir = tempfile::tempdir().unwrap();
    let config = fresh_config(&dir).await;
    let port = free_port();
    let log = dir.path().join("jobgraph.log");
    let file = std::fs::File::create(&log).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_jobgraph"));
    cmd.arg("serve")
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("BIND_ADDR", format!("127.0.0.1:{port}"))
        .env("DATABASE_URL", config.database.url.expose())
        .env("JWT_SECRET", config.jwt_secret.as_ref().unwrap().expose())
        .env("AUTO_MIGRATE", "true")
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .stdout(Stdio::from(file.try_clone().unwrap()))
        .stderr(Stdio::from(file));
    if let Some(schema) = &config.database.schema {
        cmd.env("DATABASE_SCHEMA", schema);
    }
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "jobgraph did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let url = format!("http://127.0.0.1:{port}/graphql");
    jobgraph::app::install_crypto_provider();
    let client = reqwest::Client::new();
    let body: Value = client
        .post(&url)
        .json(&json!({ "query": "mutation { signup(input: {teamName: \"Logs\", name: \"Ada\", email: \"ada@example.com\", password: \"password-123\"}) { token } }" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = body["data"]["signup"]["token"].as_str().unwrap().to_owned();
    // Break the database under the service: the resolver's SQL fails.
    let db = jobgraph::db::connect_pool(
        &config.database,
        Some(1),
        &std::sync::Arc::new(jobgraph::metrics::Metrics::new()),
        "test",
    )
    .await
    .unwrap();
    db.execute_unprepared("DROP TABLE resumes").await.unwrap();
    client
        .post(&url)
        .bearer_auth(&token)
        .json(&json!({ "query": "mutation { createJob(input: { title: \"T\", company: \"C\" }) { id } }" }))
        .send()
        .await
        .unwrap();
    let res = client
        .post(&url)
        .bearer_auth(&token)
        .header("x-request-id", "trace-me-42")
        .json(&json!({ "query": "query Broken { jobs { nodes { resumes { id } } } }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "trace-me-42");
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "INTERNAL",
        "{body}"
    );
    // A request without an id gets one.
    let res = client
        .get(format!("http://127.0.0.1:{port}/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"].len(), 16);

    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains('\u{1b}'), "no colour codes in a log file");
    let errors: Vec<Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["level"] == "ERROR")
        .collect();
    assert_eq!(errors.len(), 1, "the failure is logged once: {errors:?}");
    let span = &errors[0]["span"];
    assert_eq!(span["id"], "trace-me-42", "{}", errors[0]);
    assert_eq!(span["operation"], "Broken", "{}", errors[0]);
    assert!(span["team"].is_number(), "{}", errors[0]);
    // The request's summary line (INFO: it answered with an error) adds
    // the cache outcome, the error count and the SQL statements it ran.
    let summary = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["span"]["id"] == "trace-me-42" && l["message"] == "request finished")
        .expect("a summary line for the failed request");
    assert_eq!(summary["level"], "INFO", "{summary}");
    assert_eq!(summary["status"], 200, "{summary}");
    assert_eq!(summary["span"]["cache"], "MISS", "{summary}");
    assert_eq!(summary["span"]["errors"], 1, "{summary}");
    assert!(summary["span"]["sql"].as_u64().unwrap() >= 1, "{summary}");
}
