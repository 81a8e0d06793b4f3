//! Team isolation: team A never sees team B's rows on any read path and gets
//! FORBIDDEN on every write to them, which leaves B's rows as they were.

use crate::common::TestApp;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde_json::{Value, json};

/// One team's people and rows.
struct Team {
    admin: String,
    admin_id: String,
    member: String,
    member_id: String,
    jobs: Vec<String>,
    resume: String,
    company: String,
}

/// A team whose admin and member each add jobs, and whose member asks for a
/// resume (so the log holds entries by both).
async fn team(app: &TestApp, name: &str) -> Team {
    let lower = name.to_lowercase();
    let (admin, admin_id) = app.signup(name, &format!("admin@{lower}.example")).await;
    let (member, member_id) = app
        .add_user(&admin, &format!("member@{lower}.example"), "MEMBER")
        .await;
    let company = format!("{name} Only Corp");
    let mut jobs = Vec::new();
    for (token, title) in [(&admin, "by admin"), (&member, "by member")] {
        let data = app
            .ok(
                token,
                "mutation($i: [CreateJobInput!]!) { createJobs(input: $i) { id } }",
                json!({ "i": [
                    { "title": format!("{name} {title} 0"), "company": company },
                    { "title": format!("{name} {title} 1"), "company": company, "status": "APPLIED" },
                ] }),
            )
            .await;
        for job in data["createJobs"].as_array().unwrap() {
            jobs.push(job["id"].as_str().unwrap().to_owned());
        }
    }
    let resume = app
        .ok(
            &member,
            "mutation($id: ID!) { generateResume(jobId: $id) { id } }",
            json!({ "id": jobs[0] }),
        )
        .await["generateResume"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    Team {
        admin,
        admin_id,
        member,
        member_id,
        jobs,
        resume,
        company,
    }
}

fn ids(list: &Value) -> Vec<String> {
    let mut out: Vec<String> = list
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|n| n["id"].as_str().unwrap().to_owned())
        .collect();
    out.sort();
    out
}

fn sorted(list: &[&String]) -> Vec<String> {
    let mut out: Vec<String> = list.iter().map(|s| s.to_string()).collect();
    out.sort();
    out
}

/// B's rows as B sees them, to compare before and after A's attempts.
async fn snapshot(app: &TestApp, b: &Team) -> Value {
    app.ok(
        &b.admin,
        "query($j: ID!, $u: ID!, $m: ID!) {
           job(id: $j) { title company status location salaryMin updatedAt resumes { id status } }
           admin: user(id: $u) { name email role isActive updatedAt }
           member: user(id: $m) { name email role isActive updatedAt }
           jobs(first: 100) { totalCount nodes { id title updatedAt } }
           logs(first: 100) { totalCount }
         }",
        json!({ "j": b.jobs[0], "u": b.admin_id, "m": b.member_id }),
    )
    .await
}

#[tokio::test]
async fn another_teams_job_user_and_resume_read_as_null() {
    let app = TestApp::spawn().await;
    let a = team(&app, "Alpha").await;
    let b = team(&app, "Beta").await;
    for token in [&a.admin, &a.member] {
        let data = app
            .ok(
                token,
                "query($j: ID!, $u: ID!, $m: ID!, $r: ID!) { job(id: $j) { id } admin: user(id: $u) { id } member: user(id: $m) { id } resume(id: $r) { id } }",
                json!({ "j": b.jobs[0], "u": b.admin_id, "m": b.member_id, "r": b.resume }),
            )
            .await;
        assert_eq!(
            data,
            json!({ "job": null, "admin": null, "member": null, "resume": null })
        );
    }
    // B still reads its own.
    let data = app
        .ok(
            &b.member,
            "query($j: ID!, $r: ID!) { job(id: $j) { id } resume(id: $r) { id } }",
            json!({ "j": b.jobs[0], "r": b.resume }),
        )
        .await;
    assert_eq!(data["job"]["id"], b.jobs[0].as_str());
    assert_eq!(data["resume"]["id"], b.resume.as_str());
}

#[tokio::test]
async fn every_list_holds_only_the_callers_team() {
    let app = TestApp::spawn().await;
    let a = team(&app, "Alpha").await;
    let b = team(&app, "Beta").await;
    let a_jobs = sorted(&a.jobs.iter().collect::<Vec<_>>());
    let a_users = sorted(&[&a.admin_id, &a.member_id]);

    let data = app
        .ok(
            &a.admin,
            "{
               jobs(first: 100) { totalCount nodes { id team { name } createdBy { id } } }
               jobsPage(pageSize: 100) { total items { id } }
               users(first: 100) { totalCount nodes { id } }
               team { name members(first: 100) { totalCount nodes { id } } jobs(first: 100) { totalCount nodes { id } } }
               jobStats { total byStatus { status count } topCompanies { company count } createdLast7Days }
               logs(first: 100) { totalCount nodes { user { id } team { name } } }
               viewer { jobs(first: 100) { totalCount } logs(first: 100) { totalCount } }
             }",
            json!({}),
        )
        .await;
    assert_eq!(ids(&data["jobs"]["nodes"]), a_jobs);
    assert_eq!(data["jobs"]["totalCount"], 4);
    for job in data["jobs"]["nodes"].as_array().unwrap() {
        assert_eq!(job["team"]["name"], "Alpha");
        assert!(a_users.contains(&job["createdBy"]["id"].as_str().unwrap().to_owned()));
    }
    assert_eq!(ids(&data["jobsPage"]["items"]), a_jobs);
    assert_eq!(data["jobsPage"]["total"], 4);
    assert_eq!(ids(&data["users"]["nodes"]), a_users);
    assert_eq!(data["users"]["totalCount"], 2);
    assert_eq!(data["team"]["name"], "Alpha");
    assert_eq!(ids(&data["team"]["members"]["nodes"]), a_users);
    assert_eq!(data["team"]["members"]["totalCount"], 2);
    assert_eq!(ids(&data["team"]["jobs"]["nodes"]), a_jobs);
    assert_eq!(data["team"]["jobs"]["totalCount"], 4);
    let stats = &data["jobStats"];
    assert_eq!(stats["total"], 4);
    assert_eq!(stats["createdLast7Days"], 4);
    assert_eq!(
        stats["topCompanies"],
        json!([{ "company": a.company, "count": 4 }])
    );
    let by_status: u64 = stats["byStatus"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["count"].as_u64().unwrap())
        .sum();
    assert_eq!(by_status, 4);
    let logs = data["logs"]["nodes"].as_array().unwrap();
    assert!(!logs.is_empty());
    assert_eq!(data["logs"]["totalCount"].as_u64(), Some(logs.len() as u64));
    for entry in logs {
        assert_eq!(entry["team"]["name"], "Alpha", "{entry}");
        assert!(
            a_users.contains(&entry["user"]["id"].as_str().unwrap().to_owned()),
            "{entry}"
        );
    }
    assert_eq!(data["viewer"]["jobs"]["totalCount"], 2);

    // B's company, titles and people match nothing in A.
    let data = app
        .ok(
            &a.admin,
            "query($c: String!, $u: ID!) {
               byCompany: jobs(filter: { company: $c }) { totalCount nodes { id } }
               bySearch: jobs(filter: { search: \"Beta\" }) { totalCount nodes { id } }
               page: jobsPage(filter: { company: $c }) { total items { id } }
               people: users(filter: { search: \"beta\" }) { totalCount nodes { id } }
               byUser: logs(filter: { userId: $u }) { totalCount nodes { id } }
             }",
            json!({ "c": b.company, "u": b.member_id }),
        )
        .await;
    for (field, list) in [
        ("byCompany", "nodes"),
        ("bySearch", "nodes"),
        ("people", "nodes"),
        ("byUser", "nodes"),
    ] {
        assert_eq!(data[field]["totalCount"], 0, "{field}: {data}");
        assert_eq!(data[field][list], json!([]), "{field}: {data}");
    }
    assert_eq!(data["page"]["total"], 0);
    assert_eq!(data["page"]["items"], json!([]));
}

#[tokio::test]
async fn writes_to_another_teams_rows_are_forbidden_and_change_nothing() {
    // No background workers: resumes must not change state under the snapshot.
    let app = TestApp::spawn_with(|c| c.tasks.concurrency = 0).await;
    let a = team(&app, "Alpha").await;
    let b = team(&app, "Beta").await;
    let before = snapshot(&app, &b).await;
    let a_logs_before = app.ok(&a.admin, "{ logs { totalCount } }", json!({})).await;

    let writes = [
        (
            "mutation($id: ID!) { updateJob(id: $id, input: { title: \"stolen\", status: ARCHIVED }) { id } }",
            &b.jobs[0],
        ),
        ("mutation($id: ID!) { deleteJob(id: $id) }", &b.jobs[0]),
        ("mutation($id: ID!) { deleteJob(id: $id) }", &b.jobs[3]),
        (
            "mutation($id: ID!) { generateResume(jobId: $id) { id } }",
            &b.jobs[0],
        ),
        (
            "mutation($id: ID!) { updateUser(id: $id, input: { name: \"stolen\" }) { id } }",
            &b.member_id,
        ),
        (
            "mutation($id: ID!) { updateUser(id: $id, input: { role: VIEWER, isActive: false }) { id } }",
            &b.admin_id,
        ),
        (
            "mutation($id: ID!) { deactivateUser(id: $id) { id } }",
            &b.member_id,
        ),
        (
            "mutation($id: ID!) { deactivateUser(id: $id) { id } }",
            &b.admin_id,
        ),
    ];
    for (q, id) in writes {
        let err = app
            .fails(Some(&a.admin), q, json!({ "id": id }), "FORBIDDEN")
            .await;
        assert!(
            err["message"]
                .as_str()
                .unwrap()
                .contains("belongs to another team"),
            "{q}: {err}"
        );
    }
    // A's member is refused too (jobs: another team; users: not an admin).
    for (q, id) in &writes[..4] {
        app.fails(Some(&a.member), q, json!({ "id": id }), "FORBIDDEN")
            .await;
    }

    assert_eq!(snapshot(&app, &b).await, before);
    // B's member still works.
    app.ok(&b.member, "{ viewer { id } }", json!({})).await;
    // Refused writes left no trace in A's log either.
    assert_eq!(
        app.ok(&a.admin, "{ logs { totalCount } }", json!({})).await,
        a_logs_before
    );
}

#[tokio::test]
async fn writes_to_ids_that_do_not_exist_are_not_found() {
    let app = TestApp::spawn().await;
    let a = team(&app, "Alpha").await;
    let job = URL_SAFE_NO_PAD.encode("Job:987654");
    let user = URL_SAFE_NO_PAD.encode("User:987654");
    for (q, id) in [
        (
            "mutation($id: ID!) { updateJob(id: $id, input: { title: \"x\" }) { id } }",
            &job,
        ),
        ("mutation($id: ID!) { deleteJob(id: $id) }", &job),
        (
            "mutation($id: ID!) { generateResume(jobId: $id) { id } }",
            &job,
        ),
        (
            "mutation($id: ID!) { updateUser(id: $id, input: { name: \"x\" }) { id } }",
            &user,
        ),
        (
            "mutation($id: ID!) { deactivateUser(id: $id) { id } }",
            &user,
        ),
    ] {
        let err = app
            .fails(Some(&a.admin), q, json!({ "id": id }), "NOT_FOUND")
            .await;
        assert!(
            err["message"].as_str().unwrap().contains("no such"),
            "{q}: {err}"
        );
    }
}

#[tokio::test]
async fn a_team_can_not_reach_another_team_through_nested_fields() {
    let app = TestApp::spawn().await;
    let a = team(&app, "Alpha").await;
    let b = team(&app, "Beta").await;
    // B's resume is on a job A cannot see; its resumes list is A's only.
    let data = app
        .ok(
            &a.member,
            "{ jobs(first: 100) { nodes { resumes { id job { team { name } } user { id } } } } }",
            json!({}),
        )
        .await;
    let resumes: Vec<&Value> = data["jobs"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|j| j["resumes"].as_array().unwrap())
        .collect();
    assert_eq!(resumes.len(), 1);
    assert_eq!(resumes[0]["id"], a.resume.as_str());
    assert_eq!(resumes[0]["job"]["team"]["name"], "Alpha");
    assert_eq!(resumes[0]["user"]["id"], a.member_id.as_str());
    assert_ne!(resumes[0]["id"], b.resume.as_str());
    // The admin reading a member's log sees only that member's entries in A.
    let data = app
        .ok(
            &a.admin,
            "query($u: ID!) { user(id: $u) { logs(first: 100) { totalCount nodes { user { id } team { name } } } } }",
            json!({ "u": a.member_id }),
        )
        .await;
    let logs = data["user"]["logs"]["nodes"].as_array().unwrap();
    assert!(!logs.is_empty());
    for entry in logs {
        assert_eq!(entry["user"]["id"], a.member_id.as_str());
        assert_eq!(entry["team"]["name"], "Alpha");
    }
}
