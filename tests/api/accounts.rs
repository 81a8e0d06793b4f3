//! Tokens and accounts: a password change, deactivation or role change
//! refuses earlier tokens at once on every replica; changing one's own
//! password or e-mail needs the current one; a team always keeps an active
//! admin, even under concurrent changes; no usable secret is shipped.

use crate::common;

use crate::common::{PASSWORD, TestApp, postgres_url};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::json;

const UPDATE: &str =
    "mutation($id: ID!, $i: UpdateUserInput!) { updateUser(id: $id, input: $i) { id } }";

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
    let (_redis, first, second) = common::two_replicas().await;
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
    let (_redis, first, second) = common::two_replicas().await;
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

/// Holds every team's row lock (PostgreSQL) or the write lock (SQLite) on
/// a connection of its own, so the changes under test queue behind it.
async fn hold_teams(app: &TestApp) -> (sea_orm::DatabaseConnection, sea_orm::DatabaseTransaction) {
    let db = jobgraph::db::connect_pool(
        &app.config.database,
        Some(1),
        &std::sync::Arc::new(jobgraph::metrics::Metrics::new()),
        "test",
    )
    .await
    .unwrap();
    let txn = jobgraph::db::begin_write(&db).await.unwrap();
    let lock = if postgres_url().is_some() {
        "SELECT id FROM teams FOR UPDATE"
    } else {
        "UPDATE teams SET name = name WHERE id = -1"
    };
    txn.execute_unprepared(lock).await.unwrap();
    (db, txn)
}

/// PostgreSQL sessions waiting for a row lock on `teams`.
async fn waiting_for_teams(db: &sea_orm::DatabaseConnection) -> i64 {
    let row = db
        .query_one_raw(Statement::from_string(
            sea_orm::DatabaseBackend::Postgres,
            "SELECT COUNT(*) AS n FROM pg_stat_activity WHERE datname = current_database() \
             AND wait_event_type = 'Lock' AND query ILIKE '%FROM teams%FOR UPDATE%'",
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get("", "n").unwrap()
}

/// Both changes are held until each has checked its token and is about to
/// count the team's admins; then they race. On PostgreSQL (READ COMMITTED)
/// both would count two admins without the team's row lock; SQLite
/// serialises write transactions, so there the test shows the rule, not
/// the lock.
#[tokio::test]
async fn two_admins_deactivating_each_other_at_once_leave_one_active() {
    let app = TestApp::spawn().await;
    let deactivate = "mutation($id: ID!) { deactivateUser(id: $id) { id } }";
    for round in 0..5 {
        let (a, a_id) = app
            .signup(&format!("Team {round}"), &format!("a{round}@example.com"))
            .await;
        let (b, b_id) = app
            .add_user(&a, &format!("b{round}@example.com"), "ADMIN")
            .await;
        let (_held_db, held) = hold_teams(&app).await;
        let release = async {
            if postgres_url().is_some() {
                app.eventually(10, "both changes to wait for the team's lock", || async {
                    waiting_for_teams(app.state.db()).await == 2
                })
                .await;
            } else {
                app.eventually(10, "both changes to be running", || async {
                    app.metric("jobgraph_http_requests_in_flight").await == 2.0
                })
                .await;
            }
            held.rollback().await.unwrap();
        };
        let (by_a, by_b, ()) = tokio::join!(
            app.post(Some(&a), deactivate, json!({ "id": b_id })),
            app.post(Some(&b), deactivate, json!({ "id": a_id })),
            release,
        );
        let (won, lost): (Vec<_>, Vec<_>) = [("a", &by_a), ("b", &by_b)]
            .into_iter()
            .partition(|(_, (_, body))| body.get("errors").is_none());
        assert_eq!(won.len(), 1, "round {round}: {by_a:?} / {by_b:?}");
        let refusal = &lost[0].1.1["errors"][0];
        if postgres_url().is_some() {
            // Both were past their token check: only the admin rule can
            // have refused the second.
            assert_eq!(refusal["extensions"]["code"], "BAD_USER_INPUT", "{refusal}");
            assert!(
                refusal["message"]
                    .as_str()
                    .unwrap()
                    .contains("active admin"),
                "{refusal}"
            );
        }
        let survivor = if won[0].0 == "a" { &a } else { &b };
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
