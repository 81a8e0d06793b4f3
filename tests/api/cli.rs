//! The command line: migrate, seed (deterministic, bulk), token.

use std::process::{Command, Output};

use crate::common::{TestApp, fresh_config};
use jobgraph::config::Config;
use serde_json::json;

/// Runs the binary against `config`'s database from `dir`.
fn jobgraph(config: &Config, dir: &std::path::Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_jobgraph"));
    cmd.args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", config.database.url.expose())
        .env("JWT_SECRET", config.jwt_secret.as_ref().unwrap().expose())
        .env("RUST_LOG", "warn");
    if let Some(schema) = &config.database.schema {
        cmd.env("DATABASE_SCHEMA", schema);
    }
    cmd.output().expect("run the jobgraph binary")
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "jobgraph failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn line_after<'a>(text: &'a str, prefix: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no `{prefix}` line in:\n{text}"))
        .trim()
}

#[tokio::test]
async fn seed_fills_a_fresh_database_and_prints_a_working_demo_token() {
    let dir = tempfile::tempdir().unwrap();
    let config = fresh_config(&dir).await;
    stdout(&jobgraph(&config, dir.path(), &["migrate"]));
    let tokens = dir.path().join("tokens.json");
    let out = stdout(&jobgraph(
        &config,
        dir.path(),
        &[
            "seed",
            "--teams",
            "2",
            "--users",
            "6",
            "--jobs",
            "500",
            "--logs",
            "300",
            "--tokens-file",
            tokens.to_str().unwrap(),
        ],
    ));
    assert!(
        out.contains("seeded 2 teams, 6 users, 500 jobs, 300 log entries"),
        "{out}"
    );
    let token = line_after(&out, "demo token:").to_owned();
    let team_tokens: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&tokens).unwrap()).unwrap();
    assert_eq!(team_tokens.as_array().unwrap().len(), 2);

    // Seeding twice is refused rather than duplicating data.
    let again = jobgraph(&config, dir.path(), &["seed"]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds data"));

    let app = TestApp::start(dir, config.clone()).await;
    let data = app.ok(&token, "{ viewer { email role } jobs { totalCount } users { totalCount } logs { totalCount } }", json!({})).await;
    assert_eq!(data["viewer"]["email"], "demo@jobgraph.dev");
    assert_eq!(data["viewer"]["role"], "ADMIN");
    assert_eq!(data["jobs"]["totalCount"], 250);
    assert_eq!(data["users"]["totalCount"], 3);
    assert_eq!(data["logs"]["totalCount"], 150);
    // The printed password works too.
    let login = app
        .post(None, "mutation { login(email: \"demo@jobgraph.dev\", password: \"jobgraph-demo\") { token } }", json!({}))
        .await;
    assert!(login.1["data"]["login"]["token"].is_string(), "{}", login.1);

    let other = team_tokens[1]["token"].as_str().unwrap();
    let data = app.ok(other, "{ jobs { totalCount } }", json!({})).await;
    assert_eq!(data["jobs"]["totalCount"], 250);
}

#[tokio::test]
async fn seeding_is_deterministic() {
    let mut firsts = Vec::new();
    for _ in 0..2 {
        let dir = tempfile::tempdir().unwrap();
        let config = fresh_config(&dir).await;
        let out = stdout(&jobgraph(
            &config,
            dir.path(),
            &[
                "seed", "--teams", "2", "--users", "4", "--jobs", "50", "--logs", "10",
            ],
        ));
        let token = line_after(&out, "demo token:").to_owned();
        let app = TestApp::start(dir, config).await;
        let data = app
            .ok(&token, "{ jobs(first: 50, orderBy: {field: COMPANY, direction: ASC}) { nodes { title company status salaryMin } } }", json!({}))
            .await;
        firsts.push(data["jobs"]["nodes"].clone());
    }
    assert_eq!(firsts[0], firsts[1]);
}

#[tokio::test]
async fn token_mints_a_token_for_an_existing_user_only() {
    let dir = tempfile::tempdir().unwrap();
    let config = fresh_config(&dir).await;
    stdout(&jobgraph(
        &config,
        dir.path(),
        &[
            "seed", "--teams", "1", "--users", "2", "--jobs", "3", "--logs", "0",
        ],
    ));
    let token = stdout(&jobgraph(
        &config,
        dir.path(),
        &["token", "--email", "DEMO@jobgraph.dev"],
    ))
    .trim()
    .to_owned();
    let missing = jobgraph(
        &config,
        dir.path(),
        &["token", "--email", "nobody@example.com"],
    );
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no active user"));
    let app = TestApp::start(dir, config).await;
    let data = app.ok(&token, "{ jobs { totalCount } }", json!({})).await;
    assert_eq!(data["jobs"]["totalCount"], 3);
}

#[test]
fn a_bad_setting_is_a_clear_start_up_error() {
    let output = Command::new(env!("CARGO_BIN_EXE_jobgraph"))
        .arg("serve")
        .env_clear()
        .env("MAX_PAGE_SIZE", "0")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("MAX_PAGE_SIZE"));
}

#[tokio::test]
async fn migrate_and_export_schema_need_no_signing_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = fresh_config(&dir).await;
    for args in [&["migrate"][..], &["export-schema"][..]] {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_jobgraph"));
        cmd.args(args)
            .current_dir(dir.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", config.database.url.expose())
            .env("RUST_LOG", "warn");
        if let Some(schema) = &config.database.schema {
            cmd.env("DATABASE_SCHEMA", schema);
        }
        let out = stdout(&cmd.output().unwrap());
        if args == ["export-schema"] {
            assert!(out.contains("type Query"), "{out}");
        }
    }
    // No key file was made either.
    assert!(!dir.path().join("jobgraph.secret").exists());
}
