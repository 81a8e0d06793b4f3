//! Resumes for a job, and the activity log every change writes.

use super::*;

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
