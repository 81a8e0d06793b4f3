//! `jobStats`: counts by status, top companies, the last seven days.

use super::*;

#[tokio::test]
async fn job_stats_count_every_status_the_top_companies_and_the_last_seven_days() {
    // The test backdates a job behind the service's back, which no cached
    // answer can know of: the background refresh after `createJobs` (or the
    // sign-up's, still queued) may cache the stats before the backdating
    // commits. What is tested here is the counting, so without the cache.
    let app = TestApp::spawn_with(|c| c.cache.enabled = false).await;
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
