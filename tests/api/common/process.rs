//! The real `jobgraph serve` binary as a child process, for what only a
//! process shows: signals, exit, its log output, its exported traces.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use jobgraph::config::Config;
use serde_json::{Value, json};

use super::redis::free_port;

pub struct Proc {
    pub child: Child,
    pub url: String,
    log: PathBuf,
}

impl Proc {
    /// Starts `serve` in `dir` on a free port against `config`'s database,
    /// with nothing but `env` (and the database, key and address) set;
    /// stdout and stderr go to a log file. Returns once it accepts
    /// connections.
    pub fn spawn(config: &Config, dir: &Path, env: &[(&str, String)]) -> Self {
        let port = free_port();
        let log = dir.join(format!("jobgraph-{port}.log"));
        let file = std::fs::File::create(&log).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_jobgraph"));
        cmd.arg("serve")
            .current_dir(dir)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("BIND_ADDR", format!("127.0.0.1:{port}"))
            .env("DATABASE_URL", config.database.url.expose())
            .env("JWT_SECRET", config.jwt_secret.as_ref().unwrap().expose())
            .env("AUTO_MIGRATE", "true")
            .stdout(Stdio::from(file.try_clone().unwrap()))
            .stderr(Stdio::from(file));
        if let Some(schema) = &config.database.schema {
            cmd.env("DATABASE_SCHEMA", schema);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().unwrap();
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "jobgraph did not start: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { child, url, log }
    }

    /// A GraphQL request that must succeed; its `data`.
    pub async fn gql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        jobgraph::app::install_crypto_provider();
        let mut req = reqwest::Client::new()
            .post(format!("{}/graphql", self.url))
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let body: Value = req.send().await.unwrap().json().await.unwrap();
        assert!(body.get("errors").is_none(), "{body}");
        body["data"].clone()
    }

    /// Signs up a team's first admin; the token.
    pub async fn signup(&self, team: &str, email: &str) -> String {
        let data = self
            .gql(
                None,
                "mutation($i: SignupInput!) { signup(input: $i) { token } }",
                json!({ "i": { "teamName": team, "name": "Ada", "email": email, "password": "password-123" } }),
            )
            .await;
        data["signup"]["token"].as_str().unwrap().to_owned()
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
    }

    /// Waits for the exit, at most `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "jobgraph did not exit within {limit:?}: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Everything it wrote so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
