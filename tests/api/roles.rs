//! Roles: VIEWER reads, MEMBER writes jobs, ADMIN manages users and reads
//! the whole team's log; a team always keeps an active admin.

use crate::common::{PASSWORD, TestApp};
use serde_json::{Value, json};

const CREATE_JOB: &str = "mutation { createJob(input: { title: \"T\", company: \"C\" }) { id } }";
const CREATE_JOBS: &str =
    "mutation { createJobs(input: [{ title: \"T\", company: \"C\" }]) { id } }";
const UPDATE_JOB: &str =
    "mutation($id: ID!) { updateJob(id: $id, input: { status: APPLIED }) { id } }";
const DELETE_JOB: &str = "mutation($id: ID!) { deleteJob(id: $id) }";
const GENERATE_RESUME: &str = "mutation($id: ID!) { generateResume(jobId: $id) { id } }";
const CREATE_USER: &str = "mutation($e: String!, $r: Role! = MEMBER) { createUser(input: { name: \"New\", email: $e, role: $r }) { id } }";
const UPDATE_USER: &str = "mutation($id: ID!, $i: UpdateUserInput!) { updateUser(id: $id, input: $i) { id name role isActive } }";
const DEACTIVATE_USER: &str = "mutation($id: ID!) { deactivateUser(id: $id) { id isActive } }";

async fn login_with(app: &TestApp, email: &str, password: &str) -> (u16, Value) {
    app.post(
        None,
        "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }",
        json!({ "e": email, "p": password }),
    )
    .await
}

async fn team_state(app: &TestApp, admin: &str) -> Value {
    app.ok(
        admin,
        "{ jobs(first: 100) { totalCount nodes { id status updatedAt resumes { id } } } users(first: 100) { totalCount nodes { id name role isActive } } }",
        json!({}),
    )
    .await
}

#[tokio::test]
async fn a_viewer_reads_jobs_and_stats_but_every_write_is_forbidden() {
    let app = TestApp::spawn().await;
    let (admin, admin_id) = app.signup("Acme", "ada@example.com").await;
    let (viewer, viewer_id) = app.add_user(&admin, "vic@example.com", "VIEWER").await;
    let jobs = app.create_jobs(&admin, "Job", 3).await;

    let data = app
        .ok(
            &viewer,
            "query($id: ID!) { job(id: $id) { title } jobs { totalCount } jobsPage { total } jobStats { total topCompanies { company } } team { name } users { totalCount } viewer { role } }",
            json!({ "id": jobs[0] }),
        )
        .await;
    assert_eq!(data["job"]["title"], "Job 0");
    assert_eq!(data["jobs"]["totalCount"], 3);
    assert_eq!(data["jobsPage"]["total"], 3);
    assert_eq!(data["jobStats"]["total"], 3);
    assert_eq!(data["users"]["totalCount"], 2);
    assert_eq!(data["viewer"]["role"], "VIEWER");

    let before = team_state(&app, &admin).await;
    for (q, vars) in [
        (CREATE_JOB, json!({})),
        (CREATE_JOBS, json!({})),
        (UPDATE_JOB, json!({ "id": jobs[0] })),
        (DELETE_JOB, json!({ "id": jobs[0] })),
        (GENERATE_RESUME, json!({ "id": jobs[0] })),
        (CREATE_USER, json!({ "e": "new@example.com" })),
        (DEACTIVATE_USER, json!({ "id": admin_id })),
        (UPDATE_USER, json!({ "id": admin_id, "i": { "name": "x" } })),
        (
            UPDATE_USER,
            json!({ "id": viewer_id, "i": { "role": "MEMBER" } }),
        ),
    ] {
        app.fails(Some(&viewer), q, vars, "FORBIDDEN").await;
    }
    assert_eq!(team_state(&app, &admin).await, before);
    // A viewer may still change their own name.
    let data = app
        .ok(
            &viewer,
            UPDATE_USER,
            json!({ "id": viewer_id, "i": { "name": "Victoria" } }),
        )
        .await;
    assert_eq!(data["updateUser"]["name"], "Victoria");
    assert_eq!(data["updateUser"]["role"], "VIEWER");
}

#[tokio::test]
async fn a_member_writes_jobs_but_cannot_manage_users_or_their_own_role() {
    let app = TestApp::spawn().await;
    let (admin, admin_id) = app.signup("Acme", "ada@example.com").await;
    let (member, member_id) = app.add_user(&admin, "bob@example.com", "MEMBER").await;
    let (_, other_id) = app.add_user(&admin, "carol@example.com", "MEMBER").await;
    let admin_jobs = app.create_jobs(&admin, "Admin job", 2).await;

    // Jobs: create, bulk-create, update (anyone's in the team), resume, delete.
    let id = app.ok(&member, CREATE_JOB, json!({})).await["createJob"]["id"].clone();
    app.ok(&member, CREATE_JOBS, json!({})).await;
    let data = app
        .ok(&member, UPDATE_JOB, json!({ "id": admin_jobs[0] }))
        .await;
    assert_eq!(data["updateJob"]["id"], admin_jobs[0].as_str());
    app.ok(&member, GENERATE_RESUME, json!({ "id": id })).await;
    assert_eq!(
        app.ok(&member, DELETE_JOB, json!({ "id": admin_jobs[1] }))
            .await["deleteJob"],
        true
    );

    let before = team_state(&app, &admin).await;
    for (q, vars) in [
        (CREATE_USER, json!({ "e": "new@example.com" })),
        (DEACTIVATE_USER, json!({ "id": other_id })),
        (DEACTIVATE_USER, json!({ "id": member_id })),
        (UPDATE_USER, json!({ "id": other_id, "i": { "name": "x" } })),
        (
            UPDATE_USER,
            json!({ "id": admin_id, "i": { "role": "VIEWER" } }),
        ),
        (
            UPDATE_USER,
            json!({ "id": member_id, "i": { "role": "ADMIN" } }),
        ),
        (
            UPDATE_USER,
            json!({ "id": member_id, "i": { "name": "Bob", "role": "MEMBER" } }),
        ),
        (
            UPDATE_USER,
            json!({ "id": member_id, "i": { "isActive": false } }),
        ),
    ] {
        app.fails(Some(&member), q, vars.clone(), "FORBIDDEN").await;
    }
    assert_eq!(team_state(&app, &admin).await, before);
}

#[tokio::test]
async fn a_user_may_change_their_own_name_and_password_and_log_in_with_the_new_one() {
    let app = TestApp::spawn().await;
    let (admin, _) = app.signup("Acme", "ada@example.com").await;
    let (member, member_id) = app.add_user(&admin, "bob@example.com", "MEMBER").await;
    let data = app
        .ok(
            &member,
            UPDATE_USER,
            json!({ "id": member_id, "i": { "name": "Robert", "password": "a-brand-new-secret", "currentPassword": PASSWORD } }),
        )
        .await;
    assert_eq!(data["updateUser"]["name"], "Robert");
    assert_eq!(data["updateUser"]["role"], "MEMBER");
    // The old token went with the old password.
    app.fails(
        Some(&member),
        "{ viewer { id } }",
        json!({}),
        "UNAUTHENTICATED",
    )
    .await;

    let (status, body) = login_with(&app, "bob@example.com", "a-brand-new-secret").await;
    assert_eq!(status, 200, "{body}");
    let token = body["data"]["login"]["token"].as_str().expect("a token");
    let data = app.ok(token, "{ viewer { name } }", json!({})).await;
    assert_eq!(data["viewer"]["name"], "Robert");
    let (_, body) = login_with(&app, "bob@example.com", PASSWORD).await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
        "{body}"
    );

    // A too-short password is refused and changes nothing.
    let err = app
        .fails(
            Some(token),
            UPDATE_USER,
            json!({ "id": member_id, "i": { "password": "short", "currentPassword": "a-brand-new-secret" } }),
            "BAD_USER_INPUT",
        )
        .await;
    assert_eq!(err["extensions"]["fields"][0]["field"], "input.password");
    let (status, body) = login_with(&app, "bob@example.com", "a-brand-new-secret").await;
    assert_eq!(status, 200);
    assert!(body["data"]["login"]["token"].is_string(), "{body}");
}

#[tokio::test]
async fn an_admin_changes_roles_and_the_new_role_applies_at_once() {
    let app = TestApp::spawn().await;
    let (admin, _) = app.signup("Acme", "ada@example.com").await;
    let (member, member_id) = app.add_user(&admin, "bob@example.com", "MEMBER").await;
    app.ok(&member, CREATE_JOB, json!({})).await;

    let data = app
        .ok(
            &admin,
            UPDATE_USER,
            json!({ "id": member_id, "i": { "role": "VIEWER" } }),
        )
        .await;
    assert_eq!(data["updateUser"]["role"], "VIEWER");
    // A new role revokes the old token; signed in again, the role applies.
    app.fails(Some(&member), CREATE_JOB, json!({}), "UNAUTHENTICATED")
        .await;
    let member = app.login("bob@example.com").await;
    app.fails(Some(&member), CREATE_JOB, json!({}), "FORBIDDEN")
        .await;

    let data = app
        .ok(
            &admin,
            UPDATE_USER,
            json!({ "id": member_id, "i": { "role": "ADMIN" } }),
        )
        .await;
    assert_eq!(data["updateUser"]["role"], "ADMIN");
    let member = app.login("bob@example.com").await;
    // Now an admin: may create users.
    app.ok(
        &member,
        CREATE_USER,
        json!({ "e": "carol@example.com", "r": "VIEWER" }),
    )
    .await;
    let data = app
        .ok(
            &member,
            "{ users(filter: { search: \"carol\" }) { nodes { role } } }",
            json!({}),
        )
        .await;
    assert_eq!(data["users"]["nodes"], json!([{ "role": "VIEWER" }]));
    // And a user created without a role is a MEMBER.
    let data = app
        .ok(
            &admin,
            "mutation { createUser(input: { name: \"Dan\", email: \"dan@example.com\" }) { id } }",
            json!({}),
        )
        .await;
    let id = data["createUser"]["id"].clone();
    let data = app
        .ok(
            &admin,
            "query($id: ID!) { user(id: $id) { role isActive } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(data["user"], json!({ "role": "MEMBER", "isActive": true }));
}

#[tokio::test]
async fn the_last_active_admin_can_be_neither_demoted_nor_deactivated() {
    let app = TestApp::spawn().await;
    let (admin, admin_id) = app.signup("Acme", "ada@example.com").await;
    for (q, vars) in [
        (
            UPDATE_USER,
            json!({ "id": admin_id, "i": { "role": "MEMBER" } }),
        ),
        (
            UPDATE_USER,
            json!({ "id": admin_id, "i": { "role": "VIEWER" } }),
        ),
        (
            UPDATE_USER,
            json!({ "id": admin_id, "i": { "isActive": false } }),
        ),
        (DEACTIVATE_USER, json!({ "id": admin_id })),
    ] {
        let err = app.fails(Some(&admin), q, vars, "BAD_USER_INPUT").await;
        assert!(
            err["message"]
                .as_str()
                .unwrap()
                .contains("at least one active admin"),
            "{err}"
        );
    }
    // An inactive admin does not count.
    let (_, second_id) = app.add_user(&admin, "eve@example.com", "ADMIN").await;
    app.ok(&admin, DEACTIVATE_USER, json!({ "id": second_id }))
        .await;
    app.fails(
        Some(&admin),
        DEACTIVATE_USER,
        json!({ "id": admin_id }),
        "BAD_USER_INPUT",
    )
    .await;
    // Reactivated (and signed in again: deactivation revoked the token),
    // the second admin lets the first step down.
    app.ok(
        &admin,
        UPDATE_USER,
        json!({ "id": second_id, "i": { "isActive": true } }),
    )
    .await;
    let second = app.login("eve@example.com").await;
    let data = app
        .ok(
            &admin,
            UPDATE_USER,
            json!({ "id": admin_id, "i": { "role": "MEMBER" } }),
        )
        .await;
    assert_eq!(data["updateUser"]["role"], "MEMBER");
    // Now the second admin is the last one.
    app.fails(
        Some(&second),
        DEACTIVATE_USER,
        json!({ "id": second_id }),
        "BAD_USER_INPUT",
    )
    .await;
    app.fails(
        Some(&second),
        UPDATE_USER,
        json!({ "id": second_id, "i": { "role": "VIEWER" } }),
        "BAD_USER_INPUT",
    )
    .await;
    let data = app
        .ok(
            &second,
            "{ users(filter: { isActive: true }) { nodes { email role } } }",
            json!({}),
        )
        .await;
    let mut people: Vec<(String, String)> = data["users"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["email"].as_str().unwrap().into(),
                u["role"].as_str().unwrap().into(),
            )
        })
        .collect();
    people.sort();
    assert_eq!(
        people,
        [
            ("ada@example.com".to_owned(), "MEMBER".to_owned()),
            ("eve@example.com".to_owned(), "ADMIN".to_owned())
        ]
    );
}

#[tokio::test]
async fn admins_read_the_whole_team_log_and_members_only_their_own() {
    let app = TestApp::spawn().await;
    let (admin, admin_id) = app.signup("Acme", "ada@example.com").await;
    let (member, member_id) = app.add_user(&admin, "bob@example.com", "MEMBER").await;
    app.create_jobs(&admin, "Admin", 2).await;
    app.create_jobs(&member, "Member", 3).await;
    let q = "query($f: LogFilter) { logs(first: 100, filter: $f) { totalCount nodes { action user { id } } } }";
    let authors = |data: &Value| -> Vec<String> {
        let mut out: Vec<String> = data["logs"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["user"]["id"].as_str().unwrap().to_owned())
            .collect();
        out.sort();
        out.dedup();
        out
    };

    let all = app.ok(&admin, q, json!({ "f": null })).await;
    let mut both = vec![admin_id.clone(), member_id.clone()];
    both.sort();
    assert_eq!(authors(&all), both);

    let own = app.ok(&member, q, json!({ "f": null })).await;
    assert_eq!(authors(&own), [member_id.as_str()]);
    // bob's login and the one entry of his bulk call.
    assert_eq!(own["logs"]["totalCount"], 2, "{own}");
    let own_jobs = app
        .ok(&member, q, json!({ "f": { "action": "job.bulk_created" } }))
        .await;
    assert_eq!(own_jobs["logs"]["totalCount"], 1);
    let filtered_self = app
        .ok(&member, q, json!({ "f": { "userId": member_id } }))
        .await;
    assert_eq!(filtered_self["logs"]["totalCount"], 2);

    let err = app
        .fails(
            Some(&member),
            q,
            json!({ "f": { "userId": admin_id } }),
            "FORBIDDEN",
        )
        .await;
    assert!(err["message"].as_str().unwrap().contains("admin"), "{err}");

    let admin_on_member = app
        .ok(&admin, q, json!({ "f": { "userId": member_id } }))
        .await;
    assert_eq!(authors(&admin_on_member), [member_id.as_str()]);
    assert_eq!(admin_on_member["logs"]["totalCount"], 2);
}

#[tokio::test]
async fn user_logs_of_another_user_are_forbidden_for_a_member_but_not_for_an_admin() {
    let app = TestApp::spawn().await;
    let (admin, admin_id) = app.signup("Acme", "ada@example.com").await;
    let (member, member_id) = app.add_user(&admin, "bob@example.com", "MEMBER").await;
    app.create_jobs(&member, "Member", 2).await;
    let q = "query($id: ID!) { user(id: $id) { name logs { totalCount nodes { action } } } }";

    let (_, body) = app.post(Some(&member), q, json!({ "id": admin_id })).await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{body}"
    );
    assert_eq!(body["errors"][0]["path"], json!(["user", "logs"]));
    // Nothing of the admin's log is in the answer.
    assert_eq!(body["data"]["user"]["logs"], Value::Null, "{body}");

    // bob's login and the one entry of his bulk call.
    let own = app.ok(&member, q, json!({ "id": member_id })).await;
    assert_eq!(own["user"]["logs"]["totalCount"], 2);
    let viewer = app
        .ok(&member, "{ viewer { logs { totalCount } } }", json!({}))
        .await;
    assert_eq!(viewer["viewer"]["logs"]["totalCount"], 2);

    let by_admin = app.ok(&admin, q, json!({ "id": member_id })).await;
    assert_eq!(by_admin["user"]["logs"]["totalCount"], 2);
    // Listing users with their logs, a member is refused for everyone but themself.
    let (_, body) = app
        .post(
            Some(&member),
            "{ users { nodes { logs { totalCount } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{body}"
    );
}

#[tokio::test]
async fn create_user_refuses_a_taken_email_in_any_team_and_any_case() {
    let app = TestApp::spawn().await;
    let (admin, _) = app.signup("Acme", "ada@example.com").await;
    app.signup("Other", "zed@example.com").await;
    app.ok(&admin, CREATE_USER, json!({ "e": "bob@example.com" }))
        .await;
    for taken in [
        "bob@example.com",
        "BOB@Example.com",
        " ada@example.com ",
        "zed@example.com",
    ] {
        let err = app
            .fails(
                Some(&admin),
                CREATE_USER,
                json!({ "e": taken }),
                "BAD_USER_INPUT",
            )
            .await;
        assert_eq!(
            err["message"], "input.email: is already registered",
            "{taken}"
        );
    }
    let data = app.ok(&admin, "{ users { totalCount } }", json!({})).await;
    assert_eq!(data["users"]["totalCount"], 2);
    // Changing an e-mail to a taken one is refused the same way.
    let me = app.ok(&admin, "{ viewer { id } }", json!({})).await["viewer"]["id"].clone();
    let err = app
        .fails(
            Some(&admin),
            UPDATE_USER,
            json!({ "id": me, "i": { "email": "Zed@example.com", "currentPassword": PASSWORD } }),
            "BAD_USER_INPUT",
        )
        .await;
    assert_eq!(err["message"], "input.email: is already registered");
}

#[tokio::test]
async fn users_filter_by_active_flag_and_search_names_and_emails() {
    let app = TestApp::spawn().await;
    let (admin, _) = app.signup("Acme", "ada@example.com").await;
    let mut ids = Vec::new();
    for (name, email) in [
        ("Bob Builder", "bob@example.com"),
        ("Carol", "carol@builders.example"),
        ("Dan 100%", "dan@example.com"),
        ("Eve", "eve_x@example.com"),
        ("Zoe Xu", "zoe@example.com"),
    ] {
        let data = app
            .ok(
                &admin,
                "mutation($n: String!, $e: String!) { createUser(input: { name: $n, email: $e }) { id } }",
                json!({ "n": name, "e": email }),
            )
            .await;
        ids.push(data["createUser"]["id"].as_str().unwrap().to_owned());
    }
    app.ok(&admin, DEACTIVATE_USER, json!({ "id": ids[1] }))
        .await;
    let q = "query($f: UserFilter) { users(filter: $f) { totalCount nodes { name isActive } } }";
    let names = |data: &Value| -> Vec<String> {
        data["users"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let inactive = app
        .ok(&admin, q, json!({ "f": { "isActive": false } }))
        .await;
    assert_eq!(names(&inactive), ["Carol"]);
    assert_eq!(inactive["users"]["totalCount"], 1);
    let active = app
        .ok(&admin, q, json!({ "f": { "isActive": true } }))
        .await;
    assert_eq!(
        names(&active),
        ["Zoe Xu", "Eve", "Dan 100%", "Bob Builder", "Admin"]
    );
    assert_eq!(active["users"]["totalCount"], 5);

    let builders = app
        .ok(&admin, q, json!({ "f": { "search": "BUILDER" } }))
        .await;
    assert_eq!(names(&builders), ["Carol", "Bob Builder"]);
    let active_builders = app
        .ok(
            &admin,
            q,
            json!({ "f": { "search": "builder", "isActive": true } }),
        )
        .await;
    assert_eq!(names(&active_builders), ["Bob Builder"]);
    assert_eq!(active_builders["users"]["totalCount"], 1);
    let percent = app.ok(&admin, q, json!({ "f": { "search": "0%" } })).await;
    assert_eq!(names(&percent), ["Dan 100%"]);
    // `_` is no wildcard: "Zoe Xu" does not match.
    let underscore = app.ok(&admin, q, json!({ "f": { "search": "e_x" } })).await;
    assert_eq!(names(&underscore), ["Eve"]);
}
