//! Job queries and mutations: create (one and bulk), update, delete, the
//! `job`, `jobs`, `jobsPage` and `jobStats` reads, filters, orderings,
//! resume requests and the activity-log entry each change writes.
//!
//! One file per area: writes (create, bulk create, update, delete), reads
//! (detail, page numbers, filters, search, orderings), stats, and resumes
//! with the activity log. The helpers below are shared by them.

mod reads;
mod resumes;
mod stats;
mod writes;

use std::time::Duration;

use crate::common::TestApp;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use jobgraph::db::entities::job;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
use serde_json::{Value, json};

const JOB_FIELDS: &str = "id title company location url description salaryMin salaryMax status createdAt updatedAt createdBy { id } team { name }";

/// An opaque ID of `kind` for row `n`, made the way the API makes them.
fn raw_id(kind: &str, n: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("{kind}:{n}"))
}

fn time(value: &Value) -> DateTime<Utc> {
    value
        .as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| panic!("not an RFC 3339 time: {value}"))
}

fn field_paths(error: &Value) -> Vec<String> {
    error["extensions"]["fields"]
        .as_array()
        .unwrap_or_else(|| panic!("no extensions.fields in {error}"))
        .iter()
        .map(|f| f["field"].as_str().unwrap().to_owned())
        .collect()
}

fn titles(nodes: &Value) -> Vec<String> {
    nodes
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {nodes}"))
        .iter()
        .map(|n| n["title"].as_str().unwrap().to_owned())
        .collect()
}

async fn create_job(app: &TestApp, token: &str, input: Value) -> Value {
    let q = format!("mutation($i: CreateJobInput!) {{ createJob(input: $i) {{ {JOB_FIELDS} }} }}");
    app.ok(token, &q, json!({ "i": input })).await["createJob"].clone()
}

async fn update_job(app: &TestApp, token: &str, id: &str, input: Value) -> Value {
    let q = format!(
        "mutation($id: ID!, $i: UpdateJobInput!) {{ updateJob(id: $id, input: $i) {{ {JOB_FIELDS} }} }}"
    );
    app.ok(token, &q, json!({ "id": id, "i": input })).await["updateJob"].clone()
}

async fn job_titles(app: &TestApp, token: &str, args: &str) -> Vec<String> {
    let q = format!(
        "query($f: JobFilter) {{ jobs(first: 100, filter: $f{args}) {{ nodes {{ title }} }} }}"
    );
    titles(&app.ok(token, &q, json!({ "f": null })).await["jobs"]["nodes"])
}

async fn filtered_titles(app: &TestApp, token: &str, filter: Value) -> Vec<String> {
    let q = "query($f: JobFilter) { jobs(first: 100, filter: $f) { totalCount nodes { title } } }";
    let data = app.ok(token, q, json!({ "f": filter })).await;
    let list = titles(&data["jobs"]["nodes"]);
    assert_eq!(
        data["jobs"]["totalCount"].as_u64(),
        Some(list.len() as u64),
        "totalCount must count the filtered list: {data}"
    );
    list
}

/// Entries of the team's log with `action`, newest first (read as an admin).
async fn log_entries(app: &TestApp, admin: &str, action: &str) -> Vec<Value> {
    let data = app
        .ok(
            admin,
            "query($a: String!) { logs(first: 100, filter: { action: $a }) { totalCount nodes { action metadata user { id } } } }",
            json!({ "a": action }),
        )
        .await;
    let nodes = data["logs"]["nodes"].as_array().unwrap().clone();
    assert_eq!(
        data["logs"]["totalCount"].as_u64(),
        Some(nodes.len() as u64)
    );
    nodes
}

async fn total_jobs(app: &TestApp, token: &str) -> u64 {
    app.ok(token, "{ jobs { totalCount } }", json!({})).await["jobs"]["totalCount"]
        .as_u64()
        .unwrap()
}
