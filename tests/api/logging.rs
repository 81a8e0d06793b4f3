//! Log lines carry their request: an internal error in the log names the
//! request id the client got back in `X-Request-Id`; logs written to a file
//! hold no colour codes.

use std::time::Duration;

use crate::common::{fresh_config, process::Proc};
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

#[tokio::test]
async fn an_internal_error_in_the_log_names_its_request() {
    let dir = tempfile::tempdir().unwrap();
    let config = fresh_config(&dir).await;
    let mut proc = Proc::spawn(
        &config,
        dir.path(),
        &[
            ("LOG_FORMAT", "json".to_owned()),
            ("RUST_LOG", "info".to_owned()),
        ],
    );
    let url = format!("{}/graphql", proc.url);
    jobgraph::app::install_crypto_provider();
    let client = reqwest::Client::new();
    let token = proc.signup("Logs", "ada@example.com").await;
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
        .get(format!("{}/health", proc.url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"].len(), 16);

    proc.terminate();
    proc.wait_exit(Duration::from_secs(10));
    let text = proc.log();
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
