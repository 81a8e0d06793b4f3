//! Job queries and mutations: create (one and bulk), update, delete, the
//! `job`, `jobs`, `jobsPage` and `jobStats` reads, filters, orderings,
//! resume requests and the activity-log entry each change writes.

// Helpers outside `#[test]` functions unwrap too: a panic is a test failure.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use common::TestApp;
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

#[tokio::test]
async fn create_job_defaults_to_saved_round_trips_every_field_and_records_the_caller() {
    let app = TestApp::spawn().await;
    let (token, user_id) = app.signup("Acme", "ada@example.com").await;

    let minimal = create_job(
        &app,
        &token,
        json!({ "title": "Engineer", "company": "Initech" }),
    )
    .await;
    assert_eq!(minimal["status"], "SAVED");
    assert_eq!(minimal["createdBy"]["id"], user_id.as_str());
    assert_eq!(minimal["team"]["name"], "Acme");
    for field in ["location", "url", "description", "salaryMin", "salaryMax"] {
        assert_eq!(minimal[field], Value::Null, "{field} of {minimal}");
    }
    assert_eq!(minimal["createdAt"], minimal["updatedAt"]);

    let full = create_job(
        &app,
        &token,
        json!({
            "title": "  Staff Engineer  ",
            "company": "Globex",
            "location": "Remote",
            "url": "https://globex.example/jobs/1",
            "description": "Build things.",
            "salaryMin": 100000,
            "salaryMax": 150000,
            "status": "INTERVIEWING"
        }),
    )
    .await;
    assert_eq!(full["title"], "Staff Engineer", "titles are trimmed");
    assert_eq!(full["company"], "Globex");
    assert_eq!(full["location"], "Remote");
    assert_eq!(full["url"], "https://globex.example/jobs/1");
    assert_eq!(full["description"], "Build things.");
    assert_eq!(full["salaryMin"], 100000);
    assert_eq!(full["salaryMax"], 150000);
    assert_eq!(full["status"], "INTERVIEWING");

    // What was written is what is read back.
    let q = format!("query($id: ID!) {{ job(id: $id) {{ {JOB_FIELDS} }} }}");
    let read = app.ok(&token, &q, json!({ "id": full["id"] })).await;
    assert_eq!(read["job"], full);
}

#[tokio::test]
async fn create_job_reports_every_invalid_field() {
    let app = TestApp::spawn().await;
    let (token, _) = app.signup("Acme", "ada@example.com").await;
    let err = app
        .fails(
            Some(&token),
            "mutation($i: CreateJobInput!) { createJob(input: $i) { id } }",
            json!({ "i": { "title": " ", "company": "", "url": "ftp://x", "salaryMin": -1 } }),
            "BAD_USER_INPUT",
        )
        .await;
    assert_eq!(
        field_paths(&err),
        [
            "input.salaryMin",
            "input.title",
            "input.company",
            "input.url"
        ]
    );
    assert_eq!(total_jobs(&app, &token).await, 0);
}

#[tokio::test]
async fn create_jobs_returns_the_jobs_in_input_order() {
    let app = TestApp::spawn().await;
    let (token, user_id) = app.signup("Acme", "ada@example.com").await;
    let input: Vec<Value> = ["Zulu", "Alpha", "Mike", "Bravo", "Yankee"]
        .iter()
        .map(|t| json!({ "title": t, "company": format!("{t} Co"), "status": "APPLIED" }))
        .collect();
    let data = app
        .ok(
            &token,
            "mutation($i: [CreateJobInput!]!) { createJobs(input: $i) { id title company status createdBy { id } } }",
            json!({ "i": input }),
        )
        .await;
    let jobs = data["createJobs"].as_array().unwrap();
    assert_eq!(
        titles(&data["createJobs"]),
        ["Zulu", "Alpha", "Mike", "Bravo", "Yankee"]
    );
    for job in jobs {
        assert_eq!(
            job["company"],
            format!("{} Co", job["title"].as_str().unwrap())
        );
        assert_eq!(job["status"], "APPLIED");
        assert_eq!(job["createdBy"]["id"], user_id.as_str());
    }
    let mut ids: Vec<&str> = jobs.iter().map(|j| j["id"].as_str().unwrap()).collect();
    ids.dedup();
    assert_eq!(ids.len(), 5);
    assert_eq!(total_jobs(&app, &token).await, 5);
}

#[tokio::test]
async fn create_jobs_validates_every_item_first_and_writes_nothing_when_any_is_invalid() {
    let app = TestApp::spawn().await;
    let (token, _) = app.signup("Acme", "ada@example.com").await;
    let err = app
        .fails(
            Some(&token),
            "mutation($i: [CreateJobInput!]!) { createJobs(input: $i) { id } }",
            json!({ "i": [
                { "title": "Fine", "company": "Co" },
                { "title": "   ", "company": "Co" },
                { "title": "Also fine", "company": "Co" },
                { "title": "Bad link", "company": "Co", "url": "javascript:alert(1)" },
                { "title": "Fine too", "company": "Co" },
            ] }),
            "BAD_USER_INPUT",
        )
        .await;
    assert_eq!(field_paths(&err), ["input[1].title", "input[3].url"]);
    assert_eq!(total_jobs(&app, &token).await, 0);
    assert!(log_entries(&app, &token, "job.created").await.is_empty());
}

#[tokio::test]
async fn create_jobs_refuses_more_than_the_configured_maximum() {
    let app = TestApp::spawn_with(|c| c.limits.max_bulk_jobs = 5).await;
    let (token, _) = app.signup("Acme", "ada@example.com").await;
    let q = "mutation($i: [CreateJobInput!]!) { createJobs(input: $i) { id } }";
    let six: Vec<Value> = (0..6)
        .map(|i| json!({ "title": format!("Job {i}"), "company": "Co" }))
        .collect();
    let err = app
        .fails(Some(&token), q, json!({ "i": six }), "LIST_TOO_LONG")
        .await;
    assert!(
        err["message"].as_str().unwrap().contains("at most 5"),
        "{err}"
    );
    assert_eq!(total_jobs(&app, &token).await, 0);
    // Exactly the maximum is fine.
    let five = &six[..5];
    let data = app.ok(&token, q, json!({ "i": five })).await;
    assert_eq!(data["createJobs"].as_array().unwrap().len(), 5);
}

#[tokio::test]
async fn create_jobs_with_an_empty_list_returns_an_empty_list() {
    let app = TestApp::spawn().await;
    let (token, _) = app.signup("Acme", "ada@example.com").await;
    let data = app
        .ok(
            &token,
            "mutation { createJobs(input: []) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(data["createJobs"], json!([]));
    assert_eq!(total_jobs(&app, &token).await, 0);
}

#[tokio::test]
async fn update_job_changes_only_the_given_fields_and_moves_updated_at() {
    let app = TestApp::spawn().await;
    let (token, _) = app.signup("Acme", "ada@example.com").await;
    let job = create_job(
        &app,
        &token,
        json!({ "title": "Engineer", "company": "Initech", "location": "Berlin", "salaryMin": 10 }),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let updated = update_job(
        &app,
        &token,
        job["id"].as_str().unwrap(),
        json!({ "title": "Senior Engineer", "url": "https://initech.example/1", "status": "APPLIED" }),
    )
    .await;
    assert_eq!(updated["title"], "Senior Engineer");
    assert_eq!(updated["url"], "https://initech.example/1");
    assert_eq!(updated["status"], "APPLIED");
    assert_eq!(updated["company"], "Initech");
    assert_eq!(updated["location"], "Berlin");
    assert_eq!(updated["salaryMin"], 10);
    assert_eq!(updated["createdAt"], job["createdAt"]);
    assert!(
        time(&updated["updatedAt"]) > time(&job["updatedAt"]),
        "{updated}"
    );

    // An update that changes nothing is refused.
    app.fails(
        Some(&token),
        "mutation($id: ID!) { updateJob(id: $id, input: {}) { id } }",
        json!({ "id": job["id"] }),
        "BAD_USER_INPUT",
    )
    .await;
}

#[tokio::test]
async fn update_job_with_null_clears_optional_fields_and_absent_fields_stay() {
    let app = TestApp::spawn().await;
    let (token, _) = app.signup("Acme", "ada@example.com").await;
    let job = create_job(
        &app,
        &token,
        json!({
            "title": "Engineer", "company": "Initech", "location": "Berlin",
            "url": "https://x.example/1", "description": "d", "salaryMin": 1, "salaryMax": 2
        }),
    )
    .await;
    let id = job["id"].as_str().unwrap();
    let updated = update_job(
        &app,
        &token,
        id,
        json!({ "location": null, "description": null, "salaryMax": null }),
    )
    .await;
    assert_eq!(updated["location"], Value::Null);
    assert_eq!(updated["description"], Value::Null);
    assert_eq!(updated["salaryMax"], Value::Null);
    assert_eq!(updated["url"], "https://x.example/1");
    assert_eq!(updated["salaryMin"], 1);
    let q = "query($id: ID!) { job(id: $id) { location description salaryMax url } }";
    let read = app.ok(&token, q, json!({ "id": id })).await;
    assert_eq!(
        read["job"],
        json!({ "location": null, "description": null, "salaryMax": null, "url": "https://x.example/1" })
    );
    // Title and company are required: null is not a value for them.
    let (_, body) = app
        .post(
            Some(&token),
            "mutation($id: ID!) { updateJob(id: $id, input: { title: \"\" }) { id } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{body}"
    );
}

#[tokio::test]
async fn update_job_checks_the_salary_range_against_the_current_values() {
    let app = TestApp::spawn().await;
    let (token, _) = app.signup("Acme", "ada@example.com").await;
    let job = create_job(
        &app,
        &token,
        json!({ "title": "Engineer", "company": "Initech", "salaryMin": 100, "salaryMax": 200 }),
    )
    .await;
    let id = job["id"].as_str().unwrap();
    let q = "mutation($id: ID!, $i: UpdateJobInput!) { updateJob(id: $id, input: $i) { salaryMin salaryMax } }";
    let err = app
        .fails(
            Some(&token),
            q,
            json!({ "id": id, "i": { "salaryMin": 300 } }),
            "BAD_USER_INPUT",
        )
        .await;
    assert_eq!(field_paths(&err), ["input.salaryMax"]);
    let err = app
        .fails(
            Some(&token),
            q,
            json!({ "id": id, "i": { "salaryMax": 50 } }),
            "BAD_USER_INPUT",
        )
        .await;
    assert_eq!(field_paths(&err), ["input.salaryMax"]);
    // Nothing changed.
    let read = app
        .ok(
            &token,
            "query($id: ID!) { job(id: $id) { salaryMin salaryMax } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(read["job"], json!({ "salaryMin": 100, "salaryMax": 200 }));
    // Moving both together, or clearing the max, is fine.
    let data = app
        .ok(
            &token,
            q,
            json!({ "id": id, "i": { "salaryMin": 300, "salaryMax": 400 } }),
        )
        .await;
    assert_eq!(
        data["updateJob"],
        json!({ "salaryMin": 300, "salaryMax": 400 })
    );
    let data = app
        .ok(
            &token,
            q,
            json!({ "id": id, "i": { "salaryMin": 500, "salaryMax": null } }),
        )
        .await;
    assert_eq!(
        data["updateJob"],
        json!({ "salaryMin": 500, "salaryMax": null })
    );
}

#[tokio::test]
async fn a_status_change_is_logged_with_its_from_and_to_statuses() {
    let app = TestApp::spawn().await;
    let (token, user_id) = app.signup("Acme", "ada@example.com").await;
    let job = create_job(
        &app,
        &token,
        json!({ "title": "Engineer", "company": "Initech" }),
    )
    .await;
    let id = job["id"].as_str().unwrap();
    update_job(&app, &token, id, json!({ "status": "APPLIED" })).await;
    update_job(&app, &token, id, json!({ "title": "Engineer II" })).await;

    let entries = log_entries(&app, &token, "job.updated").await;
    assert_eq!(entries.len(), 2);
    // Newest first: the title change, then the status change.
    let title_change = &entries[0]["metadata"];
    assert!(title_change.get("statusFrom").is_none(), "{title_change}");
    assert!(title_change.get("statusTo").is_none(), "{title_change}");
    let status_change = &entries[1];
    assert_eq!(status_change["metadata"]["statusFrom"], "SAVED");
    assert_eq!(status_change["metadata"]["statusTo"], "APPLIED");
    assert_eq!(status_change["user"]["id"], user_id.as_str());
}

#[tokio::test]
async fn delete_job_removes_the_job_and_its_resumes() {
    let app = TestApp::spawn().await;
    let (token, _) = app.signup("Acme", "ada@example.com").await;
    let ids = app.create_jobs(&token, "Job", 2).await;
    let resume = app
        .ok(
            &token,
            "mutation($id: ID!) { generateResume(jobId: $id) { id } }",
            json!({ "id": ids[0] }),
        )
        .await["generateResume"]["id"]
        .clone();

    let data = app
        .ok(
            &token,
            "mutation($id: ID!) { deleteJob(id: $id) }",
            json!({ "id": ids[0] }),
        )
        .await;
    assert_eq!(data["deleteJob"], true);
    let read = app
        .ok(
            &token,
            "query($j: ID!, $r: ID!) { job(id: $j) { id } resume(id: $r) { id } jobs { totalCount nodes { id } } }",
            json!({ "j": ids[0], "r": resume }),
        )
        .await;
    assert_eq!(read["job"], Value::Null);
    assert_eq!(read["resume"], Value::Null);
    assert_eq!(read["jobs"]["totalCount"], 1);
    assert_eq!(read["jobs"]["nodes"][0]["id"], ids[1].as_str());
    // A second delete finds nothing.
    app.fails(
        Some(&token),
        "mutation($id: ID!) { deleteJob(id: $id) }",
        json!({ "id": ids[0] }),
        "NOT_FOUND",
    )
    .await;
}

#[tokio::test]
async fn job_is_null_for_an_unknown_id_and_refuses_malformed_or_wrongly_typed_ids() {
    let app = TestApp::spawn().await;
    let (token, user_id) = app.signup("Acme", "ada@example.com").await;
    let q = "query($id: ID!) { job(id: $id) { id } }";
    let data = app
        .ok(&token, q, json!({ "id": raw_id("Job", 987_654) }))
        .await;
    assert_eq!(data["job"], Value::Null);
    for bad in [
        "42".to_owned(),
        "not base64!".to_owned(),
        raw_id("Job", -1),
        raw_id("Job", 0),
        URL_SAFE_NO_PAD.encode("Job:abc"),
        user_id.clone(),
        "x".repeat(500),
    ] {
        let err = app
            .fails(Some(&token), q, json!({ "id": bad }), "BAD_USER_INPUT")
            .await;
        assert!(
            err["message"]
                .as_str()
                .unwrap()
                .contains("not a valid Job ID"),
            "{bad}: {err}"
        );
    }
}

#[tokio::test]
async fn jobs_page_numbers_the_pages_and_reports_the_totals() {
    let app = TestApp::spawn().await;
    let (token, _) = app.signup("Acme", "ada@example.com").await;
    app.create_jobs(&token, "Job", 7).await;
    let q = "query($p: Int, $s: Int) { jobsPage(page: $p, pageSize: $s) { items { title } total page pageSize totalPages hasNext hasPrev } }";

    let first = app.ok(&token, q, json!({ "p": 1, "s": 3 })).await["jobsPage"].clone();
    // Newest first: one bulk insert shares a timestamp, so the id decides.
    assert_eq!(titles(&first["items"]), ["Job 6", "Job 5", "Job 4"]);
    assert_eq!(first["total"], 7);
    assert_eq!(first["page"], 1);
    assert_eq!(first["pageSize"], 3);
    assert_eq!(first["totalPages"], 3);
    assert_eq!(
        (&first["hasNext"], &first["hasPrev"]),
        (&json!(true), &json!(false))
    );

    let middle = app.ok(&token, q, json!({ "p": 2, "s": 3 })).await["jobsPage"].clone();
    assert_eq!(titles(&middle["items"]), ["Job 3", "Job 2", "Job 1"]);
    assert_eq!(
        (&middle["hasNext"], &middle["hasPrev"]),
        (&json!(true), &json!(true))
    );

    let last = app.ok(&token, q, json!({ "p": 3, "s": 3 })).await["jobsPage"].clone();
    assert_eq!(titles(&last["items"]), ["Job 0"]);
    assert_eq!(
        (&last["hasNext"], &last["hasPrev"]),
        (&json!(false), &json!(true))
    );

    let beyond = app.ok(&token, q, json!({ "p": 4, "s": 3 })).await["jobsPage"].clone();
    assert_eq!(beyond["items"], json!([]));
    assert_eq!(beyond["total"], 7);
    assert_eq!(beyond["hasNext"], false);

    // Omitted or null: page 1 of 20.
    for vars in [json!({}), json!({ "p": null, "s": null })] {
        let defaults = app.ok(&token, q, vars).await["jobsPage"].clone();
        assert_eq!(
            (&defaults["page"], &defaults["pageSize"]),
            (&json!(1), &json!(20))
        );
        assert_eq!(defaults["items"].as_array().unwrap().len(), 7);
        assert_eq!(defaults["totalPages"], 1);
    }

    // Filters apply to items and totals alike.
    let q = "{ jobsPage(pageSize: 10, filter: { company: \"Co 0\" }) { items { company } total totalPages } }";
    let filtered = app.ok(&token, q, json!({})).await["jobsPage"].clone();
    assert_eq!(filtered["total"], 3);
    assert!(
        filtered["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|j| j["company"] == "Co 0"),
        "{filtered}"
    );
}

#[tokio::test]
async fn jobs_page_refuses_page_sizes_above_100_and_pages_below_1() {
    let app = TestApp::spawn().await;
    let (token, _) = app.signup("Acme", "ada@example.com").await;
    let q = "query($p: Int, $s: Int) { jobsPage(page: $p, pageSize: $s) { total } }";
    for (vars, field) in [
        (json!({ "s": 101 }), "pageSize"),
        (json!({ "s": 0 }), "pageSize"),
        (json!({ "s": -5 }), "pageSize"),
        (json!({ "p": 0 }), "page"),
        (json!({ "p": -1 }), "page"),
    ] {
        let err = app
            .fails(Some(&token), q, vars.clone(), "BAD_USER_INPUT")
            .await;
        assert_eq!(field_paths(&err), [field], "{vars}");
    }
    app.ok(&token, q, json!({ "s": 100 })).await;
}

#[tokio::test]
async fn jobs_page_refuses_pages_deeper_than_the_configured_offset() {
    let app = TestApp::spawn_with(|c| c.limits.max_page_offset = 10).await;
    let (token, _) = app.signup("Acme", "ada@example.com").await;
    app.create_jobs(&token, "Job", 12).await;
    let q = "query($p: Int, $s: Int) { jobsPage(page: $p, pageSize: $s) { items { title } } }";
    // Skipping exactly 10 rows is allowed.
    let data = app.ok(&token, q, json!({ "p": 3, "s": 5 })).await;
    assert_eq!(titles(&data["jobsPage"]["items"]), ["Job 1", "Job 0"]);
    let err = app
        .fails(Some(&token), q, json!({ "p": 4, "s": 5 }), "BAD_USER_INPUT")
        .await;
    assert!(
        err["message"].as_str().unwrap().contains("too deep"),
        "{err}"
    );
    app.fails(
        Some(&token),
        q,
        json!({ "p": 12, "s": 1 }),
        "BAD_USER_INPUT",
    )
    .await;
}

#[tokio::test]
async fn job_stats_count_every_status_the_top_companies_and_the_last_seven_days() {
    let app = TestApp::spawn().await;
    let (token, _) = app.signup("Acme", "ada@example.com").await;
    let q = "{ jobStats { total byStatus { status count } topCompanies { company count } createdLast7Days } }";

    let empty = app.ok(&token, q, json!({})).await["jobStats"].clone();
    assert_eq!(empty["total"], 0);
    assert_eq!(
        empty["byStatus"],
        json!([
            { "status": "SAVED", "count": 0 },
            { "status": "APPLIED", "count": 0 },
            { "status": "INTERVIEWING", "count": 0 },
            { "status": "OFFER", "count": 0 },
            { "status": "REJECTED", "count": 0 },
            { "status": "ARCHIVED", "count": 0 },
        ])
    );
    assert_eq!(empty["topCompanies"], json!([]));
    assert_eq!(empty["createdLast7Days"], 0);

    let input: Vec<Value> = [
        ("Zeta", "SAVED"),
        ("Zeta", "APPLIED"),
        ("Zeta", "APPLIED"),
        ("Beta", "OFFER"),
        ("Alpha", "SAVED"),
        ("Beta", "SAVED"),
        ("Alpha", "APPLIED"),
        ("Gamma", "APPLIED"),
    ]
    .iter()
    .enumerate()
    .map(|(i, (company, status))| {
        json!({ "title": format!("Job {i}"), "company": company, "status": status })
    })
    .collect();
    let created = app
        .ok(
            &token,
            "mutation($i: [CreateJobInput!]!) { createJobs(input: $i) { id } }",
            json!({ "i": input }),
        )
        .await;
    // Backdate one job so "last 7 days" differs from the total.
    let old_id: i64 = {
        let raw = created["createJobs"][7]["id"].as_str().unwrap();
        let text = String::from_utf8(URL_SAFE_NO_PAD.decode(raw).unwrap()).unwrap();
        text.strip_prefix("Job:").unwrap().parse().unwrap()
    };
    job::Entity::update_many()
        .col_expr(
            job::Column::CreatedAt,
            Expr::value(Utc::now() - chrono::Duration::days(10)),
        )
        .filter(job::Column::Id.eq(old_id))
        .exec(app.state.db())
        .await
        .unwrap();

    let stats = app.ok(&token, q, json!({})).await["jobStats"].clone();
    assert_eq!(stats["total"], 8);
    assert_eq!(
        stats["byStatus"],
        json!([
            { "status": "SAVED", "count": 3 },
            { "status": "APPLIED", "count": 4 },
            { "status": "INTERVIEWING", "count": 0 },
            { "status": "OFFER", "count": 1 },
            { "status": "REJECTED", "count": 0 },
            { "status": "ARCHIVED", "count": 0 },
        ])
    );
    assert_eq!(
        stats["topCompanies"],
        json!([
            { "company": "Zeta", "count": 3 },
            { "company": "Alpha", "count": 2 },
            { "company": "Beta", "count": 2 },
            { "company": "Gamma", "count": 1 },
        ])
    );
    assert_eq!(stats["createdLast7Days"], 7);

    let top = app
        .ok(
            &token,
            "{ jobStats { topCompanies(limit: 2) { company count } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        top["jobStats"]["topCompanies"],
        json!([{ "company": "Zeta", "count": 3 }, { "company": "Alpha", "count": 2 }])
    );
}

#[tokio::test]
async fn top_companies_refuses_a_limit_outside_1_to_100() {
    let app = TestApp::spawn().await;
    let (token, _) = app.signup("Acme", "ada@example.com").await;
    let q = "query($l: Int!) { jobStats { topCompanies(limit: $l) { company } } }";
    for limit in [0, -1, 101] {
        let err = app
            .fails(Some(&token), q, json!({ "l": limit }), "BAD_USER_INPUT")
            .await;
        assert_eq!(field_paths(&err), ["limit"], "{limit}");
    }
    for limit in [1, 100] {
        app.ok(&token, q, json!({ "l": limit })).await;
    }
    // An omitted or null `$limit: Int` means the default of 10.
    let jobs: Vec<Value> = (0..12)
        .map(|i| json!({ "title": "T", "company": format!("Company {i:02}") }))
        .collect();
    app.ok(
        &token,
        "mutation($i: [CreateJobInput!]!) { createJobs(input: $i) { id } }",
        json!({ "i": jobs }),
    )
    .await;
    let q = "query($l: Int) { jobStats { topCompanies(limit: $l) { company } } }";
    for vars in [json!({}), json!({ "l": null })] {
        let data = app.ok(&token, q, vars).await;
        assert_eq!(
            data["jobStats"]["topCompanies"].as_array().unwrap().len(),
            10
        );
    }
}

#[tokio::test]
async fn jobs_filter_by_status_status_list_and_exact_company() {
    let app = TestApp::spawn().await;
    let (token, _) = app.signup("Acme", "ada@example.com").await;
    let input = json!([
        { "title": "A", "company": "Initech", "status": "SAVED" },
        { "title": "B", "company": "Initech", "status": "APPLIED" },
        { "title": "C", "company": "Initech Labs", "status": "OFFER" },
        { "title": "D", "company": "Globex", "status": "REJECTED" },
    ]);
    app.ok(
        &token,
        "mutation($i: [CreateJobInput!]!) { createJobs(input: $i) { id } }",
        json!({ "i": input }),
    )
    .await;
    assert_eq!(
        filtered_titles(&app, &token, json!({ "status": "APPLIED" })).await,
        ["B"]
    );
    assert_eq!(
        filtered_titles(
            &app,
            &token,
            json!({ "statusIn": ["OFFER", "SAVED", "OFFER"] })
        )
        .await,
        ["C", "A"]
    );
    assert_eq!(
        filtered_titles(&app, &token, json!({ "company": "Initech" })).await,
        ["B", "A"]
    );
    assert_eq!(
        filtered_titles(
            &app,
            &token,
            json!({ "company": "Initech", "statusIn": ["SAVED", "OFFER"] })
        )
        .await,
        ["A"]
    );
    assert!(
        filtered_titles(&app, &token, json!({ "status": "ARCHIVED" }))
            .await
            .is_empty()
    );
    let err = app
        .fails(
            Some(&token),
            "{ jobs(filter: { statusIn: [] }) { totalCount } }",
            json!({}),
            "BAD_USER_INPUT",
        )
        .await;
    assert_eq!(field_paths(&err), ["filter.statusIn"]);
}

#[tokio::test]
async fn jobs_search_is_case_insensitive_and_matches_percent_and_underscore_literally() {
    let app = TestApp::spawn().await;
    let (token, _) = app.signup("Acme", "ada@example.com").await;
    let input = json!([
        { "title": "100% Remote", "company": "Initech" },
        { "title": "1000 remote", "company": "Globex" },
        { "title": "snake_case dev", "company": "Hooli" },
        { "title": "snakeXcase dev", "company": "Hooli" },
        { "title": "Plain", "company": "REMOTE First" },
        { "title": "back\\slash", "company": "Umbrella" },
    ]);
    app.ok(
        &token,
        "mutation($i: [CreateJobInput!]!) { createJobs(input: $i) { id } }",
        json!({ "i": input }),
    )
    .await;
    let search = |term: &str| filtered_titles(&app, &token, json!({ "search": term }));
    assert_eq!(
        search("rEmOtE").await,
        ["Plain", "1000 remote", "100% Remote"]
    );
    assert_eq!(search("0%").await, ["100% Remote"]);
    assert_eq!(search("%").await, ["100% Remote"]);
    assert_eq!(search("e_c").await, ["snake_case dev"]);
    assert_eq!(search("_").await, ["snake_case dev"]);
    assert_eq!(search("k\\s").await, ["back\\slash"]);
    assert_eq!(search("hooli").await, ["snakeXcase dev", "snake_case dev"]);
    assert!(search("nothing like this").await.is_empty());
    // A blank search is no search.
    assert_eq!(search("  ").await.len(), 6);
}

#[tokio::test]
async fn jobs_filter_by_creation_time_with_an_inclusive_start_and_an_exclusive_end() {
    let app = TestApp::spawn().await;
    let (token, _) = app.signup("Acme", "ada@example.com").await;
    let mut created = Vec::new();
    for title in ["Early", "Middle", "Late"] {
        created.push(create_job(&app, &token, json!({ "title": title, "company": "Co" })).await);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let middle_at = created[1]["createdAt"].clone();
    let late_at = created[2]["createdAt"].clone();
    assert_eq!(
        filtered_titles(&app, &token, json!({ "createdAfter": middle_at })).await,
        ["Late", "Middle"]
    );
    assert_eq!(
        filtered_titles(&app, &token, json!({ "createdBefore": middle_at })).await,
        ["Early"]
    );
    assert_eq!(
        filtered_titles(
            &app,
            &token,
            json!({ "createdAfter": middle_at, "createdBefore": late_at })
        )
        .await,
        ["Middle"]
    );
    // Any offset is understood as the same instant.
    let in_plus_two = time(&middle_at)
        .with_timezone(&chrono::FixedOffset::east_opt(2 * 3600).unwrap())
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, false);
    assert_eq!(
        filtered_titles(&app, &token, json!({ "createdAfter": in_plus_two })).await,
        ["Late", "Middle"]
    );
    app.fails(
        Some(&token),
        "{ jobs(filter: { createdAfter: \"yesterday\" }) { totalCount } }",
        json!({}),
        "BAD_USER_INPUT",
    )
    .await;
}

#[tokio::test]
async fn jobs_order_by_every_field_and_direction_and_page_through_each_ordering() {
    let app = TestApp::spawn().await;
    let (token, _) = app.signup("Acme", "ada@example.com").await;
    // Created one at a time so every creation time differs.
    let spec = [
        ("J0", "Delta"),
        ("J1", "Alpha"),
        ("J2", "Charlie"),
        ("J3", "Alpha"),
        ("J4", "Bravo"),
    ];
    let mut ids = Vec::new();
    for (title, company) in spec {
        let job = create_job(&app, &token, json!({ "title": title, "company": company })).await;
        ids.push(job["id"].as_str().unwrap().to_owned());
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    // Touch J1 then J3 so the update order differs from the creation order.
    for i in [1, 3] {
        tokio::time::sleep(Duration::from_millis(2)).await;
        update_job(&app, &token, &ids[i], json!({ "status": "APPLIED" })).await;
    }
    let cases = [
        ("CREATED_AT", "ASC", vec!["J0", "J1", "J2", "J3", "J4"]),
        ("CREATED_AT", "DESC", vec!["J4", "J3", "J2", "J1", "J0"]),
        ("UPDATED_AT", "ASC", vec!["J0", "J2", "J4", "J1", "J3"]),
        ("UPDATED_AT", "DESC", vec!["J3", "J1", "J4", "J2", "J0"]),
        ("COMPANY", "ASC", vec!["J1", "J3", "J4", "J2", "J0"]),
        ("COMPANY", "DESC", vec!["J0", "J2", "J4", "J3", "J1"]),
    ];
    let q = "query($o: JobOrder, $a: String) { jobs(first: 2, after: $a, orderBy: $o) { nodes { title } pageInfo { hasNextPage endCursor } } }";
    for (field, direction, expected) in cases {
        let order = json!({ "field": field, "direction": direction });
        let all = job_titles(
            &app,
            &token,
            &format!(", orderBy: {{ field: {field}, direction: {direction} }}"),
        )
        .await;
        assert_eq!(all, expected, "{field} {direction}");
        // Walking with cursors gives the same order.
        let mut walked = Vec::new();
        let mut after = Value::Null;
        loop {
            let data = app.ok(&token, q, json!({ "o": order, "a": after })).await;
            walked.extend(titles(&data["jobs"]["nodes"]));
            if data["jobs"]["pageInfo"]["hasNextPage"] != true {
                break;
            }
            after = data["jobs"]["pageInfo"]["endCursor"].clone();
        }
        assert_eq!(walked, expected, "walking {field} {direction}");
    }
    // The default is newest first.
    assert_eq!(
        job_titles(&app, &token, "").await,
        ["J4", "J3", "J2", "J1", "J0"]
    );
    // Only the field given: the direction defaults to DESC.
    assert_eq!(
        job_titles(&app, &token, ", orderBy: { field: COMPANY }").await,
        ["J0", "J2", "J4", "J3", "J1"]
    );
}

#[tokio::test]
async fn a_cursor_from_one_ordering_is_refused_under_another() {
    let app = TestApp::spawn().await;
    let (token, _) = app.signup("Acme", "ada@example.com").await;
    app.create_jobs(&token, "Job", 3).await;
    let data = app
        .ok(
            &token,
            "{ jobs(first: 1, orderBy: { field: COMPANY, direction: ASC }) { pageInfo { endCursor } } }",
            json!({}),
        )
        .await;
    let cursor = data["jobs"]["pageInfo"]["endCursor"].clone();
    let q = "query($a: String, $o: JobOrder) { jobs(first: 1, after: $a, orderBy: $o) { nodes { title } } }";
    for other in [
        Value::Null,
        json!({ "field": "COMPANY", "direction": "DESC" }),
        json!({ "field": "UPDATED_AT", "direction": "ASC" }),
        json!({ "field": "CREATED_AT", "direction": "ASC" }),
    ] {
        let err = app
            .fails(
                Some(&token),
                q,
                json!({ "a": cursor, "o": other }),
                "BAD_USER_INPUT",
            )
            .await;
        assert!(
            err["message"]
                .as_str()
                .unwrap()
                .contains("different ordering"),
            "{other}: {err}"
        );
    }
    app.ok(
        &token,
        q,
        json!({ "a": cursor, "o": { "field": "COMPANY", "direction": "ASC" } }),
    )
    .await;
}

#[tokio::test]
async fn generate_resume_returns_a_pending_resume_that_the_job_and_resume_queries_list() {
    let app = TestApp::spawn().await;
    let (token, user_id) = app.signup("Acme", "ada@example.com").await;
    let ids = app.create_jobs(&token, "Job", 2).await;
    let q = "mutation($id: ID!) { generateResume(jobId: $id) { id status content completedAt createdAt job { id } user { id } } }";
    let first = app.ok(&token, q, json!({ "id": ids[0] })).await["generateResume"].clone();
    assert_eq!(first["status"], "PENDING");
    assert_eq!(first["job"]["id"], ids[0].as_str());
    assert_eq!(first["user"]["id"], user_id.as_str());
    assert_eq!(first["completedAt"], Value::Null);
    tokio::time::sleep(Duration::from_millis(2)).await;
    let second = app.ok(&token, q, json!({ "id": ids[0] })).await["generateResume"].clone();
    assert_ne!(first["id"], second["id"]);

    let data = app
        .ok(
            &token,
            "query($j: ID!, $k: ID!, $r: ID!) { job(id: $j) { resumes { id } } other: job(id: $k) { resumes { id } } resume(id: $r) { id job { id } } }",
            json!({ "j": ids[0], "k": ids[1], "r": first["id"] }),
        )
        .await;
    assert_eq!(
        data["job"]["resumes"],
        json!([{ "id": second["id"] }, { "id": first["id"] }]),
        "newest first"
    );
    assert_eq!(data["other"]["resumes"], json!([]));
    assert_eq!(data["resume"]["id"], first["id"]);
    assert_eq!(data["resume"]["job"]["id"], ids[0].as_str());

    let unknown = app
        .ok(
            &token,
            "query($r: ID!) { resume(id: $r) { id } }",
            json!({ "r": raw_id("Resume", 987_654) }),
        )
        .await;
    assert_eq!(unknown["resume"], Value::Null);
    app.fails(
        Some(&token),
        "mutation($id: ID!) { generateResume(jobId: $id) { id } }",
        json!({ "id": raw_id("Job", 987_654) }),
        "NOT_FOUND",
    )
    .await;
}

#[tokio::test]
async fn every_mutation_writes_exactly_one_activity_log_entry_per_change() {
    let app = TestApp::spawn().await;
    let (admin, admin_id) = app.signup("Acme", "ada@example.com").await;
    let job = create_job(&app, &admin, json!({ "title": "One", "company": "Co" })).await;
    let bulk = app.create_jobs(&admin, "Bulk", 3).await;
    update_job(
        &app,
        &admin,
        job["id"].as_str().unwrap(),
        json!({ "title": "Uno" }),
    )
    .await;
    app.ok(
        &admin,
        "mutation($id: ID!) { deleteJob(id: $id) }",
        json!({ "id": bulk[0] }),
    )
    .await;
    app.ok(
        &admin,
        "mutation($id: ID!) { generateResume(jobId: $id) { id } }",
        json!({ "id": bulk[1] }),
    )
    .await;
    let user = app
        .ok(
            &admin,
            "mutation { createUser(input: { name: \"Bob\", email: \"bob@example.com\", role: MEMBER }) { id } }",
            json!({}),
        )
        .await["createUser"]["id"]
        .clone();
    app.ok(
        &admin,
        "mutation($id: ID!) { updateUser(id: $id, input: { name: \"Robert\" }) { id } }",
        json!({ "id": user }),
    )
    .await;
    app.ok(
        &admin,
        "mutation($id: ID!) { deactivateUser(id: $id) { id } }",
        json!({ "id": user }),
    )
    .await;
    // Failed mutations write nothing.
    app.fails(
        Some(&admin),
        "mutation($id: ID!) { updateJob(id: $id, input: { title: \"\" }) { id } }",
        json!({ "id": job["id"] }),
        "BAD_USER_INPUT",
    )
    .await;
    app.fails(
        Some(&admin),
        "mutation($id: ID!) { deleteJob(id: $id) }",
        json!({ "id": bulk[0] }),
        "NOT_FOUND",
    )
    .await;

    for (action, n) in [
        ("job.created", 1),
        ("job.bulk_created", 1),
        ("job.updated", 1),
        ("job.deleted", 1),
        ("resume.requested", 1),
        ("user.created", 1),
        ("user.updated", 1),
        ("user.deactivated", 1),
    ] {
        let entries = log_entries(&app, &admin, action).await;
        assert_eq!(entries.len(), n, "{action}: {entries:?}");
        for entry in &entries {
            assert_eq!(entry["action"], action);
            assert_eq!(entry["user"]["id"], admin_id.as_str(), "{action}");
            assert!(entry["metadata"].is_object(), "{action}: {entry}");
        }
    }
    // The bulk call's one entry names every job it added.
    let bulk_entry = &log_entries(&app, &admin, "job.bulk_created").await[0];
    assert_eq!(bulk_entry["metadata"]["count"], 3);
    let job_ids: Vec<i64> = bulk_entry["metadata"]["jobIds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id.as_i64().unwrap())
        .collect();
    assert_eq!(job_ids.len(), 3);
}
