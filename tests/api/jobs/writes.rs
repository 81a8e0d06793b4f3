//! Creating, bulk-creating, updating and deleting jobs.

use super::*;

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
