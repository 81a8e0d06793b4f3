//! Reading jobs: one by id, by page number, filtered, searched and ordered.

use super::*;

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
