//! Test harness: every test starts the real application on a random port
//! with its own fresh database and talks to it over HTTP.
//!
//! The database is a SQLite file in a temporary folder, or, when
//! `DATABASE_URL` points at PostgreSQL, a fresh schema in that database
//! (`.ci/run` creates a throwaway database per run and drops it after).

pub mod live;
pub mod postgres;
pub mod process;
pub mod proxy;
pub mod redis;
pub mod smtp;

use std::{net::SocketAddr, path::PathBuf};

use jobgraph::{app::Application, config::Config, http::AppState, secret::Secret, tasks::Handlers};
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::sync::oneshot;

/// What current clients (Apollo, urql, graphql-request) ask for: request
/// errors then come with 4xx statuses rather than the legacy 200.
pub const GRAPHQL_RESPONSE: &str = "application/graphql-response+json, application/json;q=0.9";

pub const PASSWORD: &str = "correct-horse-battery";

/// A running application and a client for it.
pub struct TestApp {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub state: AppState,
    /// The app's folder (its SQLite file, key and outbox), kept while it runs.
    _dir: TempDir,
    pub config: Config,
    /// Dropped with the app, which then shuts down gracefully.
    _shutdown: oneshot::Sender<()>,
}

/// Whether the suite runs against PostgreSQL (`DATABASE_URL=postgres://…`).
pub fn postgres_url() -> Option<String> {
    std::env::var("DATABASE_URL")
        .ok()
        .filter(|u| u.starts_with("postgres"))
}

/// A configuration with a fresh, empty database of its own.
pub async fn fresh_config(dir: &TempDir) -> Config {
    let mut config = Config::embedded();
    config.bind_addr = "127.0.0.1:0".parse().unwrap();
    config.jwt_secret = Some(Secret::new("t9X2kQ7mLp4vR8sZw3YcN6bFh1JdE5uA"));
    config.jwt_secret_file = dir.path().join("jobgraph.secret");
    config.auto_migrate = true;
    config.mail.outbox_dir = dir.path().join("outbox");
    // Background work fast enough for tests.
    config.tasks.poll = std::time::Duration::from_millis(50);
    config.tasks.backoff = std::time::Duration::from_millis(100);
    config.tasks.refresh_delay = std::time::Duration::from_millis(50);
    config.tasks.shutdown_grace = std::time::Duration::from_secs(5);
    // A shared Redis (`REDIS_URL`, as `.ci/run`'s second pass sets) is used
    // with a key prefix of this test's own.
    config.cache.key_prefix = format!("test{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    config.cache.redis_url = std::env::var("REDIS_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .map(Secret::new);
    match postgres_url() {
        Some(url) => {
            let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
            let admin = sea_orm::Database::connect(&url)
                .await
                .expect("connect to DATABASE_URL");
            admin
                .execute_unprepared(&format!("CREATE SCHEMA {schema}"))
                .await
                .expect("create a test schema");
            admin.close().await.ok();
            config.database.url = Secret::new(url);
            config.database.schema = Some(schema);
            config.database.max_connections = Some(5);
        }
        None => {
            let path: PathBuf = dir.path().join("jobgraph.db");
            config.database.url = Secret::new(format!("sqlite://{}?mode=rwc", path.display()));
        }
    }
    config
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// Starts the app after `adjust` has changed its configuration.
    pub async fn spawn_with(adjust: impl FnOnce(&mut Config)) -> Self {
        Self::spawn_with_handlers(adjust, Handlers::new()).await
    }

    /// Starts the app with task handlers of more kinds.
    pub async fn spawn_with_handlers(adjust: impl FnOnce(&mut Config), handlers: Handlers) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = fresh_config(&dir).await;
        adjust(&mut config);
        Self::start_with(dir, config, handlers).await
    }

    /// Starts the app on an existing configuration (a second replica).
    pub async fn start(dir: TempDir, config: Config) -> Self {
        Self::start_with(dir, config, Handlers::new()).await
    }

    async fn start_with(dir: TempDir, config: Config, handlers: Handlers) -> Self {
        let app = Application::build_with(config.clone(), handlers)
            .await
            .expect("build the app");
        let addr = app.local_addr().unwrap();
        let state = app.state().clone();
        let (tx, rx) = oneshot::channel();
        tokio::spawn(app.run_until(async {
            let _ = rx.await;
        }));
        Self {
            addr,
            client: reqwest::Client::new(),
            state,
            _dir: dir,
            config,
            _shutdown: tx,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// POSTs a GraphQL request and returns the status and JSON body.
    pub async fn post(&self, token: Option<&str>, query: &str, variables: Value) -> (u16, Value) {
        let mut req = self
            .client
            .post(self.url("/graphql"))
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, GRAPHQL_RESPONSE)
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            req = req.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let body = res.json::<Value>().await.unwrap_or(Value::Null);
        (status, body)
    }

    /// POSTs exact body bytes; returns status, the `X-Cache` header and the body.
    pub async fn post_raw(&self, token: &str, body: Vec<u8>) -> (u16, String, Value) {
        let res = self
            .client
            .post(self.url("/graphql"))
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, GRAPHQL_RESPONSE)
            .header(AUTHORIZATION, format!("Bearer {token}"))
            .body(body)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let cache = res
            .headers()
            .get("x-cache")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        (
            status,
            cache,
            res.json::<Value>().await.unwrap_or(Value::Null),
        )
    }

    /// Like [`TestApp::ok`], also returning the `X-Cache` header.
    pub async fn cached(&self, token: &str, query: &str, variables: Value) -> (String, Value) {
        let body = serde_json::to_vec(&json!({ "query": query, "variables": variables })).unwrap();
        let (status, cache, body) = self.post_raw(token, body).await;
        assert_eq!(status, 200, "{body}");
        assert!(body.get("errors").is_none(), "unexpected errors: {body}");
        (cache, body["data"].clone())
    }

    /// A query that must succeed: returns `data`.
    pub async fn ok(&self, token: &str, query: &str, variables: Value) -> Value {
        let (status, body) = self.post(Some(token), query, variables).await;
        assert_eq!(status, 200, "{body}");
        assert!(body.get("errors").is_none(), "unexpected errors: {body}");
        body["data"].clone()
    }

    /// A query that must fail with `code`: returns the first error.
    pub async fn fails(
        &self,
        token: Option<&str>,
        query: &str,
        variables: Value,
        code: &str,
    ) -> Value {
        let (_, body) = self.post(token, query, variables).await;
        let error = body["errors"][0].clone();
        assert_eq!(error["extensions"]["code"], code, "{body}");
        error
    }

    /// Signs a new team up; returns the admin's token and user id.
    pub async fn signup(&self, team: &str, email: &str) -> (String, String) {
        let (status, body) = self
            .post(
                None,
                "mutation($i: SignupInput!) { signup(input: $i) { token user { id } } }",
                json!({ "i": { "teamName": team, "name": "Admin", "email": email, "password": PASSWORD } }),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let payload = &body["data"]["signup"];
        (
            payload["token"].as_str().unwrap().to_owned(),
            payload["user"]["id"].as_str().unwrap().to_owned(),
        )
    }

    /// Creates a user in the admin's team and logs them in; returns token and id.
    pub async fn add_user(&self, admin: &str, email: &str, role: &str) -> (String, String) {
        let data = self
            .ok(
                admin,
                "mutation($i: CreateUserInput!) { createUser(input: $i) { id } }",
                json!({ "i": { "name": email, "email": email, "role": role, "password": PASSWORD } }),
            )
            .await;
        let id = data["createUser"]["id"].as_str().unwrap().to_owned();
        (self.login(email).await, id)
    }

    pub async fn login(&self, email: &str) -> String {
        let (status, body) = self
            .post(
                None,
                "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }",
                json!({ "e": email, "p": PASSWORD }),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["data"]["login"]["token"]
            .as_str()
            .expect("a token")
            .to_owned()
    }

    /// Creates jobs `prefix 0..n` and returns their ids in order.
    pub async fn create_jobs(&self, token: &str, prefix: &str, n: usize) -> Vec<String> {
        let input: Vec<Value> = (0..n)
            .map(
                |i| json!({ "title": format!("{prefix} {i}"), "company": format!("Co {}", i % 3) }),
            )
            .collect();
        let data = self
            .ok(
                token,
                "mutation($i: [CreateJobInput!]!) { createJobs(input: $i) { id } }",
                json!({ "i": input }),
            )
            .await;
        data["createJobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["id"].as_str().unwrap().to_owned())
            .collect()
    }

    /// The JSON of `/ready`.
    pub async fn ready(&self) -> Value {
        self.client
            .get(self.url("/ready"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// The text of `/metrics`.
    pub async fn metrics_text(&self) -> String {
        let res = self.client.get(self.url("/metrics")).send().await.unwrap();
        res.text().await.unwrap()
    }

    /// The value of a metric line in `/metrics` (0 when absent).
    pub async fn metric(&self, name: &str) -> f64 {
        self.metrics_text()
            .await
            .lines()
            .filter(|l| !l.starts_with('#'))
            .find_map(|l| {
                let (key, value) = l.rsplit_once(' ')?;
                (key == name).then(|| value.parse().ok()).flatten()
            })
            .unwrap_or(0.0)
    }

    /// SQL statements this app has run so far.
    pub async fn sql_statements(&self) -> f64 {
        self.metric("jobgraph_sql_statements_total{pool=\"requests\"}")
            .await
    }

    /// Waits until `check` holds (polling), or panics after `secs` seconds.
    pub async fn eventually<F, Fut>(&self, secs: u64, what: &str, mut check: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        while !check().await {
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for {what}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// Waits until every clearing pass the cache was told about has run.
    pub async fn sweeps_done(&self) {
        self.eventually(15, "the announced cache sweeps", || async {
            self.metric("jobgraph_cache_sweeps_pending").await == 0.0
        })
        .await;
    }

    /// Waits until no task of `kind` is queued or running.
    pub async fn tasks_idle(&self, kind: &str) {
        use jobgraph::db::entities::task;
        use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
        self.eventually(20, &format!("no {kind} task left"), || async {
            task::Entity::find()
                .filter(task::Column::Kind.eq(kind))
                .filter(task::Column::Status.is_in(["queued", "running"]))
                .count(self.state.db())
                .await
                .unwrap()
                == 0
        })
        .await;
    }

    /// Files in the outbox folder, as text.
    pub fn outbox(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(&self.config.mail.outbox_dir) else {
            return Vec::new();
        };
        entries
            .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
            .collect()
    }
}

/// Two replicas on one database and a Redis server of their own.
pub async fn two_replicas() -> (redis::RedisServer, TestApp, TestApp) {
    let redis = redis::RedisServer::start();
    let url = redis.url();
    let first = TestApp::spawn_with(move |c| {
        c.cache.redis_url = Some(jobgraph::secret::Secret::new(url));
    })
    .await;
    let second = TestApp::start(tempfile::tempdir().unwrap(), first.config.clone()).await;
    (redis, first, second)
}
