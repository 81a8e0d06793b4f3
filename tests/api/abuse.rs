//! Abuse controls: sign-in and sign-up rate limits (shared by replicas
//! through Redis), bounded password hashing, team quotas, and client
//! addresses that only trusted proxies can set.

use crate::common;

use crate::common::{PASSWORD, TestApp};
use jobgraph::config::Limit;
use serde_json::{Value, json};

const LOGIN: &str =
    "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }";

async fn login_as(
    app: &TestApp,
    email: &str,
    password: &str,
    xff: Option<&str>,
) -> reqwest::Response {
    let mut req = app
        .client
        .post(app.url("/graphql"))
        .json(&json!({ "query": LOGIN, "variables": { "e": email, "p": password } }));
    if let Some(xff) = xff {
        req = req.header("x-forwarded-for", xff);
    }
    req.send().await.unwrap()
}

async fn outcome(res: reqwest::Response) -> (u16, Option<String>, String) {
    let status = res.status().as_u16();
    let retry = res
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let body: Value = res.json().await.unwrap();
    let code = body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    (status, retry, code)
}

#[tokio::test]
async fn sign_ins_are_limited_per_account_even_with_the_right_password() {
    let app = TestApp::spawn_with(|c| c.abuse.login_per_email = Limit::new(3, 900)).await;
    app.signup("Acme", "ada@example.com").await;
    for _ in 0..3 {
        let (status, _, code) =
            outcome(login_as(&app, "ada@example.com", "wrong-password", None).await).await;
        assert_eq!((status, code.as_str()), (200, "UNAUTHENTICATED"));
    }
    let (status, retry, code) =
        outcome(login_as(&app, "ADA@example.com", PASSWORD, None).await).await;
    assert_eq!(status, 429);
    assert_eq!(code, "RATE_LIMITED");
    let secs: u64 = retry.expect("Retry-After").parse().unwrap();
    assert!((1..=900).contains(&secs), "{secs}");
    // Another account is not affected.
    app.signup("Beta", "bob@example.com").await;
    let (status, _, _) = outcome(login_as(&app, "bob@example.com", PASSWORD, None).await).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn sign_ins_and_sign_ups_are_limited_per_client_address() {
    let app = TestApp::spawn_with(|c| {
        c.abuse.login_per_address = Limit::new(2, 900);
        c.abuse.signup_per_address = Limit::new(2, 3600);
    })
    .await;
    for (i, expect) in [(0, 200), (1, 200), (2, 429)] {
        let (status, body) = app
            .post(
                None,
                "mutation($i: SignupInput!) { signup(input: $i) { token } }",
                json!({ "i": { "teamName": format!("T{i}"), "name": "A", "email": format!("a{i}@example.com"), "password": PASSWORD } }),
            )
            .await;
        assert_eq!(status, expect, "{body}");
    }
    for (email, expect) in [
        ("x@example.com", 200),
        ("y@example.com", 200),
        ("z@example.com", 429),
    ] {
        let (status, _, _) = outcome(login_as(&app, email, "whatever-1", None).await).await;
        assert_eq!(status, expect, "{email}");
    }
}

#[tokio::test]
async fn registered_e_mails_cannot_be_probed_faster_than_sign_ups_are_allowed() {
    let limited = TestApp::spawn_with(|c| c.abuse.signup_per_address = Limit::new(2, 3600)).await;
    limited.signup("Acme", "ada@example.com").await;
    let mut statuses = Vec::new();
    for i in 0..3 {
        let (status, body) = limited
            .post(
                None,
                "mutation($i: SignupInput!) { signup(input: $i) { token } }",
                json!({ "i": { "teamName": format!("T{i}"), "name": "A", "email": "ada@example.com", "password": PASSWORD } }),
            )
            .await;
        statuses.push((status, body["errors"][0]["extensions"]["code"].clone()));
    }
    // The first sign-up used one of the two; one probe is answered, the
    // next is refused before the e-mail is looked up.
    assert_eq!(statuses[0], (200, json!("BAD_USER_INPUT")), "{statuses:?}");
    assert_eq!(statuses[1], (429, json!("RATE_LIMITED")), "{statuses:?}");
    assert_eq!(statuses[2], (429, json!("RATE_LIMITED")), "{statuses:?}");
}

#[tokio::test]
async fn forwarded_addresses_count_only_behind_a_trusted_proxy() {
    let untrusted = TestApp::spawn_with(|c| c.abuse.login_per_address = Limit::new(2, 900)).await;
    // Claiming other addresses does not help a client that is no proxy.
    for (xff, expect) in [("1.1.1.1", 200), ("2.2.2.2", 200), ("3.3.3.3", 429)] {
        let (status, _, _) =
            outcome(login_as(&untrusted, "a@example.com", "whatever-1", Some(xff)).await).await;
        assert_eq!(status, expect, "{xff}");
    }
    let behind_proxy = TestApp::spawn_with(|c| {
        c.abuse.login_per_address = Limit::new(2, 900);
        c.abuse.login_per_email = Limit::OFF;
        c.abuse.trusted_proxies = vec![jobgraph::config::Cidr::parse("127.0.0.0/8").unwrap()];
    })
    .await;
    for (xff, expect) in [
        ("1.1.1.1", 200),
        ("1.1.1.1", 200),
        ("1.1.1.1", 429),
        ("2.2.2.2", 200),
    ] {
        let (status, _, _) =
            outcome(login_as(&behind_proxy, "a@example.com", "whatever-1", Some(xff)).await).await;
        assert_eq!(status, expect, "{xff}");
    }
}

#[tokio::test]
async fn replicas_share_their_counts_through_redis() {
    let redis = common::redis::RedisServer::start();
    let url = redis.url();
    let first = TestApp::spawn_with(|c| {
        c.cache.redis_url = Some(jobgraph::secret::Secret::new(url.clone()));
        c.abuse.login_per_email = Limit::new(3, 900);
    })
    .await;
    first.signup("Acme", "ada@example.com").await;
    let dir = tempfile::tempdir().unwrap();
    let second = TestApp::start(dir, first.config.clone()).await;
    for app in [&first, &second, &first] {
        let (status, _, _) =
            outcome(login_as(app, "ada@example.com", "wrong-password", None).await).await;
        assert_eq!(status, 200);
    }
    let (status, _, code) =
        outcome(login_as(&second, "ada@example.com", PASSWORD, None).await).await;
    assert_eq!((status, code.as_str()), (429, "RATE_LIMITED"));
}

#[tokio::test]
async fn a_refused_sign_in_writes_the_same_whether_or_not_the_account_exists() {
    let app = TestApp::spawn().await;
    let (token, _) = app.signup("Acme", "ada@example.com").await;
    let count = |app: &TestApp| {
        let db = app.state.db().clone();
        async move {
            use sea_orm::{EntityTrait, PaginatorTrait};
            jobgraph::db::entities::log::Entity::find()
                .count(&db)
                .await
                .unwrap()
        }
    };
    let before = count(&app).await;
    let (status, _, c) =
        outcome(login_as(&app, "ada@example.com", "wrong-password", None).await).await;
    assert_eq!((status, c.as_str()), (200, "UNAUTHENTICATED"));
    let after_known = count(&app).await;
    let (status, _, c) =
        outcome(login_as(&app, "nobody@example.com", "wrong-password", None).await).await;
    assert_eq!((status, c.as_str()), (200, "UNAUTHENTICATED"));
    let after_unknown = count(&app).await;
    assert_eq!(after_known - before, 1);
    assert_eq!(after_unknown - after_known, 1);
    // The team's admin sees the attempt on their account, not the other.
    app.eventually(5, "the failed sign-in in the team's log", || async {
        let data = app
            .ok(
                &token,
                "{ logs(filter: { action: \"user.login_failed\" }) { totalCount } }",
                json!({}),
            )
            .await;
        data["logs"]["totalCount"] == 1
    })
    .await;
}

#[tokio::test]
async fn password_hashing_beyond_its_slots_is_refused_cleanly() {
    let app = TestApp::spawn_with(|c| {
        c.abuse.hash_concurrency = 1;
        c.abuse.hash_wait = std::time::Duration::ZERO;
        c.abuse.login_per_email = Limit::OFF;
        c.abuse.login_per_address = Limit::OFF;
    })
    .await;
    let attempts: Vec<_> = (0..8)
        .map(|i| {
            let client = app.client.clone();
            let url = app.url("/graphql");
            tokio::spawn(async move {
                client
                    .post(url)
                    .json(&json!({ "query": LOGIN, "variables": { "e": format!("u{i}@example.com"), "p": "whatever-1" } }))
                    .send()
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for attempt in attempts {
        let (status, retry, code) = outcome(attempt.await.unwrap()).await;
        if status == 503 {
            assert_eq!(code, "OVERLOADED");
            assert_eq!(retry.as_deref(), Some("1"));
        }
        statuses.push(status);
    }
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 503),
        "{statuses:?}"
    );
    assert!(
        statuses.contains(&503),
        "one slot and no wait cannot hash 8 at once: {statuses:?}"
    );
}

#[tokio::test]
async fn a_team_has_quotas_for_resumes_and_mail() {
    let app = TestApp::spawn_with(|c| {
        c.abuse.resumes_per_team = Limit::new(2, 86_400);
        c.abuse.mails_per_team = Limit::new(1, 86_400);
    })
    .await;
    let (admin, _) = app.signup("Acme", "ada@example.com").await;
    let job = app.create_jobs(&admin, "Job", 1).await.remove(0);
    let generate = "mutation($id: ID!) { generateResume(jobId: $id) { id } }";
    for _ in 0..2 {
        app.ok(&admin, generate, json!({ "id": job })).await;
    }
    let res = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(&admin)
        .json(&json!({ "query": generate, "variables": { "id": job } }))
        .send()
        .await
        .unwrap();
    let (status, retry, c) = outcome(res).await;
    assert_eq!((status, c.as_str()), (429, "QUOTA_EXCEEDED"));
    assert!(retry.is_some());
    // The sign-up's welcome mail used the mail quota: later mails of the
    // team fail for good instead of being sent.
    app.add_user(&admin, "mel@example.com", "MEMBER").await;
    app.eventually(10, "the invitation to fail on the quota", || async {
        app.metric("jobgraph_tasks_failed_total{kind=\"email.send\"}")
            .await
            >= 1.0
    })
    .await;
    let sent = app.outbox();
    assert!(
        sent.iter().all(|m| !m.contains("mel@example.com")),
        "{sent:?}"
    );
}
