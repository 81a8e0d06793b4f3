//! Sign-up, login, tokens and deactivation.

use crate::common::{PASSWORD, TestApp};
use serde_json::json;

#[tokio::test]
async fn signup_creates_a_team_and_its_admin_and_returns_a_working_token() {
    let app = TestApp::spawn().await;
    let (status, body) = app
        .post(
            None,
            "mutation($i: SignupInput!) { signup(input: $i) { token user { email role team { name slug } } } }",
            json!({ "i": { "teamName": "Acme Inc.", "name": "Ada", "email": "Ada@Example.com", "password": PASSWORD } }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let payload = &body["data"]["signup"];
    assert_eq!(payload["user"]["email"], "ada@example.com");
    assert_eq!(payload["user"]["role"], "ADMIN");
    assert_eq!(payload["user"]["team"]["slug"], "acme-inc");
    let token = payload["token"].as_str().unwrap();
    let data = app
        .ok(token, "{ viewer { email } team { name } }", json!({}))
        .await;
    assert_eq!(data["viewer"]["email"], "ada@example.com");
    assert_eq!(data["team"]["name"], "Acme Inc.");
}

#[tokio::test]
async fn signup_refuses_a_taken_email_and_bad_input() {
    let app = TestApp::spawn().await;
    app.signup("A", "ada@example.com").await;
    let q = "mutation($i: SignupInput!) { signup(input: $i) { token } }";
    let err = app
        .fails(
            None,
            q,
            json!({ "i": { "teamName": "B", "name": "Ada", "email": "ADA@example.com", "password": PASSWORD } }),
            "BAD_USER_INPUT",
        )
        .await;
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("already registered"),
        "{err}"
    );
    let err = app
        .fails(
            None,
            q,
            json!({ "i": { "teamName": " ", "name": "", "email": "nope", "password": "short" } }),
            "BAD_USER_INPUT",
        )
        .await;
    let fields: Vec<&str> = err["extensions"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "input.teamName",
            "input.name",
            "input.email",
            "input.password"
        ]
    );
}

#[tokio::test]
async fn teams_with_the_same_name_get_distinct_slugs() {
    let app = TestApp::spawn().await;
    let (a, _) = app.signup("Same Name", "a@example.com").await;
    let (b, _) = app.signup("Same Name", "b@example.com").await;
    let slug_a = app.ok(&a, "{ team { slug } }", json!({})).await["team"]["slug"].clone();
    let slug_b = app.ok(&b, "{ team { slug } }", json!({})).await["team"]["slug"].clone();
    assert_eq!(slug_a, "same-name");
    assert_eq!(slug_b, "same-name-2");
}

#[tokio::test]
async fn login_works_with_the_right_password_only_and_says_the_same_for_unknown_emails() {
    let app = TestApp::spawn().await;
    app.signup("A", "ada@example.com").await;
    let q = "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token user { email team { name } } } }";
    let data = app
        .post(None, q, json!({ "e": "ADA@example.com", "p": PASSWORD }))
        .await
        .1;
    assert_eq!(data["data"]["login"]["user"]["team"]["name"], "A", "{data}");
    let wrong = app
        .fails(
            None,
            q,
            json!({ "e": "ada@example.com", "p": "wrong-password" }),
            "UNAUTHENTICATED",
        )
        .await;
    let unknown = app
        .fails(
            None,
            q,
            json!({ "e": "nobody@example.com", "p": PASSWORD }),
            "UNAUTHENTICATED",
        )
        .await;
    assert_eq!(wrong["message"], unknown["message"]);
}

#[tokio::test]
async fn requests_without_a_token_are_refused_except_signup_login_and_introspection() {
    let app = TestApp::spawn().await;
    for query in [
        "{ jobs { totalCount } }",
        "{ team { name } }",
        "{ jobStats { total } }",
        "{ logs { totalCount } }",
    ] {
        app.fails(None, query, json!({}), "UNAUTHENTICATED").await;
    }
    let (status, body) = app.post(None, "{ viewer { id } }", json!({})).await;
    assert_eq!(
        (status, &body["data"]["viewer"]),
        (200, &serde_json::Value::Null),
        "{body}"
    );
    let (status, body) = app
        .post(None, "{ __schema { queryType { name } } }", json!({}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["__schema"]["queryType"]["name"], "Query");
}

#[tokio::test]
async fn a_bad_or_forged_token_is_a_401_and_a_bare_bearer_is_anonymous() {
    let app = TestApp::spawn().await;
    let (token, _) = app.signup("A", "ada@example.com").await;
    let forged = format!("{}x", &token[..token.len() - 1]);
    for header in [
        format!("Bearer {forged}"),
        "Basic abc".to_owned(),
        "Bearer not.a.jwt".to_owned(),
    ] {
        let res = app
            .client
            .post(app.url("/graphql"))
            .header("content-type", "application/json")
            .header("authorization", header)
            .body(r#"{"query":"{ viewer { id } }"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401);
        assert_eq!(res.headers()["www-authenticate"], "Bearer");
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    }
    let res = app
        .client
        .post(app.url("/graphql"))
        .header("content-type", "application/json")
        .header("authorization", "Bearer ")
        .body(r#"{"query":"{ viewer { id } }"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn a_deactivated_user_loses_access_at_once_and_cannot_log_in() {
    let app = TestApp::spawn().await;
    let (admin, _) = app.signup("A", "ada@example.com").await;
    let (member, member_id) = app.add_user(&admin, "bob@example.com", "MEMBER").await;
    app.ok(&member, "{ viewer { id } }", json!({})).await;
    let data = app
        .ok(
            &admin,
            "mutation($id: ID!) { deactivateUser(id: $id) { isActive } }",
            json!({ "id": member_id }),
        )
        .await;
    assert_eq!(data["deactivateUser"]["isActive"], false);
    let (status, _) = app
        .post(Some(&member), "{ viewer { id } }", json!({}))
        .await;
    assert_eq!(status, 401);
    app.fails(
        None,
        "mutation { login(email: \"bob@example.com\", password: \"correct-horse-battery\") { token } }",
        json!({}),
        "UNAUTHENTICATED",
    )
    .await;
}
