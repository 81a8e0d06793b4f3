//! Tokens and accounts: a password change, deactivation or role change
//! refuses earlier tokens at once on every replica; changing one's own
//! password or e-mail needs the current one; a team always keeps an active
//! admin, even under concurrent changes; no usable secret is shipped.

use crate::common;

use crate::common::{PASSWORD, TestApp};
use serde_json::json;

const UPDATE: &str =
    "mutation($id: ID!, $i: UpdateUserInput!) { updateUser(id: $id, input: $i) { id } }";

/// Two replicas on one database and one Redis.
async fn two_replicas() -> (common::redis::RedisServer, TestApp, TestApp) {
    let redis = common::redis::RedisServer::start();
    let url = redis.url();
    let first = TestApp::spawn_with(move |c| {
        c.cache.redis_url = Some(jobgraph::secret::Secret::new(url));
    })
    .await;
    let second = TestApp::start(tempfile::tempdir().unwrap(), first.config.clone()).await;
    (redis, first, second)
}

async fn status_of(app: &TestApp, token: &str) -> (u16, String) {
    let (status, body) = app.post(Some(token), "{ viewer { id } }", json!({})).await;
    let code = body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    (status, code)
}

#[tokio::test]
async fn a_password_change_refuses_earlier_tokens_on_every_replica_at_once() {
    let (_redis, first, second) = two_replicas().await;
    let (admin, _) = first.signup("Acme", "ada@example.com").await;
    let (member, member_id) = first.add_user(&admin, "mel@example.com", "MEMBER").await;
    // The member's identity is cached on both replicas.
    assert_eq!(status_of(&second, &member).await.0, 200);
    assert_eq!(status_of(&first, &member).await.0, 200);
    first
        .ok(
            &member,
            UPDATE,
            json!({ "id": member_id, "i": { "password": "a-new-long-password", "currentPassword": PASSWORD } }),
        )
        .await;
    // No waiting: the very next request on the other replica is refused.
    assert_eq!(
        status_of(&second, &member).await,
        (401, "UNAUTHENTICATED".into())
    );
    assert_eq!(status_of(&first, &member).await.0, 401);
    // A new sign-in works everywhere.
    let (status, body) = second
        .post(
            None,
            "mutation { login(email: \"mel@example.com\", password: \"a-new-long-password\") { token } }",
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let fresh = body["data"]["login"]["token"].as_str().unwrap();
    assert_eq!(status_of(&first, fresh).await.0, 200);
}

#[tokio::test]
async fn deactivation_and_role_changes_take_effect_on_every_replica_at_once() {
    let (_redis, first, second) = two_replicas().await;
    let (admin, _) = first.signup("Acme", "ada@example.com").await;
    let (member, member_id) = first.add_user(&admin, "mel@example.com", "MEMBER").await;
    let (viewer_token, viewer_id) = first.add_user(&admin, "vic@example.com", "VIEWER").await;
    assert_eq!(status_of(&second, &member).await.0, 200);
    assert_eq!(status_of(&second, &viewer_token).await.0, 200);
    first
        .ok(
            &admin,
            "mutation($id: ID!) { deactivateUser(id: $id) { id } }",
            json!({ "id": member_id }),
        )
        .await;
    assert_eq!(status_of(&second, &member).await.0, 401);
    first
        .ok(
            &admin,
            UPDATE,
            json!({ "id": viewer_id, "i": { "role": "ADMIN" } }),
        )
        .await;
    assert_eq!(status_of(&second, &viewer_token).await.0, 401);
}

#[tokio::test]
async fn changing_ones_own_password_or_email_needs_the_current_password() {
    let app = TestApp::spawn().await;
    let (admin, admin_id) = app.signup("Acme", "ada@example.com").await;
    for input in [
        json!({ "password": "another-long-password" }),
        json!({ "email": "new@example.com" }),
        json!({ "email": "new@example.com", "currentPassword": "not-my-password" }),
    ] {
        let error = app
            .fails(
                Some(&admin),
                UPDATE,
                json!({ "id": admin_id, "i": input }),
                "BAD_USER_INPUT",
            )
            .await;
        assert_eq!(
            error["extensions"]["fields"][0]["field"], "input.currentPassword",
            "{error}"
        );
    }
    // A name needs nothing more; the right current password is enough.
    app.ok(
        &admin,
        UPDATE,
        json!({ "id": admin_id, "i": { "name": "Ada L." } }),
    )
    .await;
    app.ok(
        &admin,
        UPDATE,
        json!({ "id": admin_id, "i": { "email": "new@example.com", "currentPassword": PASSWORD } }),
    )
    .await;
    // An e-mail change does not revoke the session.
    assert_eq!(status_of(&app, &admin).await.0, 200);
}

#[tokio::test]
async fn addresses_with_display_names_or_brackets_are_not_e_mails() {
    let app = TestApp::spawn().await;
    for email in [
        "Ada <ada@example.com>",
        "<ada@example.com>",
        "ada@example.com>",
        "\"ada\"@example.com",
    ] {
        let error = app
            .fails(
                None,
                "mutation($i: SignupInput!) { signup(input: $i) { token } }",
                json!({ "i": { "teamName": "Acme", "name": "Ada", "email": email, "password": PASSWORD } }),
                "BAD_USER_INPUT",
            )
            .await;
        assert_eq!(
            error["extensions"]["fields"][0]["field"], "input.email",
            "{email}"
        );
    }
}

#[tokio::test]
async fn two_admins_deactivating_each_other_at_once_leave_one_active() {
    let app = TestApp::spawn().await;
    let deactivate = "mutation($id: ID!) { deactivateUser(id: $id) { id } }";
    for round in 0..10 {
        let (a, a_id) = app
            .signup(&format!("Team {round}"), &format!("a{round}@example.com"))
            .await;
        let (b, b_id) = app
            .add_user(&a, &format!("b{round}@example.com"), "ADMIN")
            .await;
        let (by_a, by_b) = tokio::join!(
            app.post(Some(&a), deactivate, json!({ "id": b_id })),
            app.post(Some(&b), deactivate, json!({ "id": a_id })),
        );
        let succeeded: Vec<&str> = [("a", &by_a), ("b", &by_b)]
            .into_iter()
            .filter(|(_, (_, body))| body.get("errors").is_none())
            .map(|(who, _)| who)
            .collect();
        assert_eq!(succeeded.len(), 1, "round {round}: {by_a:?} / {by_b:?}");
        let survivor = if succeeded[0] == "a" { &a } else { &b };
        let data = app
            .ok(
                survivor,
                "{ users(filter: { isActive: true }) { nodes { role } } }",
                json!({}),
            )
            .await;
        assert_eq!(
            data["users"]["nodes"].as_array().unwrap().len(),
            1,
            "round {round}"
        );
        assert_eq!(data["users"]["nodes"][0]["role"], "ADMIN");
    }
}

#[test]
fn docker_compose_ships_no_usable_signing_key() {
    let compose =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docker-compose.yml"))
            .unwrap();
    let line = compose
        .lines()
        .find(|l| l.trim_start().starts_with("JWT_SECRET:"))
        .expect("the service's JWT_SECRET");
    assert!(
        line.contains("${JWT_SECRET:?"),
        "compose must refuse to start without a key of the operator's: {line}"
    );
}
