//! Typed settings, read once from the environment at start-up and passed
//! down. One file per section (`database`, `cache`, `tasks`, …), each with
//! the variables it reads; nothing here imports the modules that use them.
//!
//! Every variable has a safe default for the embedded setup (SQLite file,
//! in-process cache, outbox folder, local resume writer) or fails start-up
//! with a message that names the variable.

mod abuse;
mod cache;
mod database;
mod env;
mod http;
mod limits;
mod live;
mod mail;
mod model;
mod tasks;
mod telemetry;

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use anyhow::bail;

use self::env::{Env, parse};
pub use self::{
    abuse::{AbuseSettings, Cidr, Limit},
    cache::{CacheSettings, CacheTtls},
    database::{DEFAULT_DATABASE_URL, DatabaseSettings},
    http::HttpSettings,
    limits::{Limits, QueryLimits},
    live::LiveSettings,
    mail::MailSettings,
    model::ModelSettings,
    tasks::TaskSettings,
    telemetry::{Root, Sampler, TelemetrySettings},
};
use crate::secret::Secret;

/// Where the service keeps its data and which limits it enforces.
#[derive(Debug, Clone)]
pub struct Config {
    /// `BIND_ADDR`: where the HTTP server listens (default `127.0.0.1:8000`).
    pub bind_addr: SocketAddr,
    /// The database and its pools (`DATABASE_*`, `DB_*`, `STATEMENT_TIMEOUT_MS`).
    pub database: DatabaseSettings,
    /// `JWT_SECRET`: HS256 signing key. Without it the embedded default keeps a
    /// generated key in `JWT_SECRET_FILE` (default `jobgraph.secret`).
    pub jwt_secret: Option<Secret>,
    /// `JWT_SECRET_FILE`: where the generated embedded-default key lives.
    pub jwt_secret_file: PathBuf,
    /// `JWT_TTL_SECONDS`: lifetime of issued tokens (default 86400).
    pub jwt_ttl: Duration,
    /// `AUTO_MIGRATE`: apply pending migrations in `serve` (default: on for SQLite).
    pub auto_migrate: bool,
    /// Limits on everything a client controls.
    pub limits: Limits,
    /// Timeouts and back-pressure of the HTTP server.
    pub http: HttpSettings,
    /// Rate limits, quotas, password hashing, trusted proxies.
    pub abuse: AbuseSettings,
    /// `GRAPHQL_INTROSPECTION`: answer `__schema`/`__type` (default true;
    /// switch off in production to hide the schema and field suggestions).
    pub introspection: bool,
    /// `PERSISTED_QUERIES_MANIFEST`: a JSON file of trusted documents,
    /// `{"<sha256>": "<document>"}` as graphql-codegen's client preset
    /// writes it (default none).
    pub persisted_queries_manifest: Option<PathBuf>,
    /// `PERSISTED_QUERIES_ONLY`: run only the manifest's documents (default
    /// false; needs a manifest).
    pub persisted_queries_only: bool,
    /// `LOG_FORMAT`: `text` (default) or `json`.
    pub log_json: bool,
    /// The response cache (`REDIS_URL`, `CACHE_*`).
    pub cache: CacheSettings,
    /// Background workers (`WORKER_CONCURRENCY`, `TASK_*`, `LOG_RETENTION_*`).
    pub tasks: TaskSettings,
    /// E-mail (`SMTP_URL`, `SMTP_FROM`, `OUTBOX_DIR`).
    pub mail: MailSettings,
    /// The resume model (`OPENAI_*`).
    pub model: ModelSettings,
    /// Traces and the slow-statement log (`OTEL_*`, `SLOW_QUERY_MS`).
    pub telemetry: TelemetrySettings,
    /// Subscriptions (`SUBSCRIPTION_*`, `WS_*`).
    pub live: LiveSettings,
}

impl Config {
    /// The embedded default: what `jobgraph serve` uses with no environment.
    pub fn embedded() -> Self {
        Self {
            bind_addr: SocketAddr::from(([127, 0, 0, 1], 8000)),
            database: DatabaseSettings::default(),
            jwt_secret: None,
            jwt_secret_file: PathBuf::from("jobgraph.secret"),
            jwt_ttl: Duration::from_secs(86_400),
            auto_migrate: true,
            limits: Limits::default(),
            http: HttpSettings::default(),
            abuse: AbuseSettings::default(),
            introspection: true,
            persisted_queries_manifest: None,
            persisted_queries_only: false,
            log_json: false,
            cache: CacheSettings::default(),
            tasks: TaskSettings::default(),
            mail: MailSettings::default(),
            model: ModelSettings::default(),
            telemetry: TelemetrySettings::default(),
            live: LiveSettings::default(),
        }
    }

    /// Reads every setting from the environment, failing on the first bad one.
    pub fn from_env() -> anyhow::Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Same as [`Config::from_env`] with an injectable lookup, for tests.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let env = Env::new(&lookup);
        let mut config = Self::embedded();
        if let Some(addr) = env.get("BIND_ADDR") {
            config.bind_addr = parse("BIND_ADDR", &addr)?;
        }
        config.database.read(&env)?;
        config.jwt_secret = env.get("JWT_SECRET").map(Secret::new);
        if let Some(path) = env.get("JWT_SECRET_FILE") {
            config.jwt_secret_file = PathBuf::from(path);
        }
        if let Some(d) = env.secs("JWT_TTL_SECONDS", 60, 31_536_000)? {
            config.jwt_ttl = d;
        }
        config.auto_migrate = env.bool("AUTO_MIGRATE")?.unwrap_or(config.is_sqlite());
        config.limits.read(&env)?;
        config.introspection = env.bool("GRAPHQL_INTROSPECTION")?.unwrap_or(true);
        config.persisted_queries_manifest =
            env.get("PERSISTED_QUERIES_MANIFEST").map(PathBuf::from);
        config.persisted_queries_only = env.bool("PERSISTED_QUERIES_ONLY")?.unwrap_or(false);
        if config.persisted_queries_only && config.persisted_queries_manifest.is_none() {
            bail!(
                "PERSISTED_QUERIES_ONLY=true needs PERSISTED_QUERIES_MANIFEST (the trusted documents)"
            );
        }
        config.http.read(&env)?;
        config.abuse.read(&env)?;
        config.cache.read(&env)?;
        config.tasks.read(&env)?;
        config.mail.read(&env)?;
        config.model.read(&env)?;
        config.telemetry.read(&env)?;
        config.live.read(&env)?;
        config.log_json = match env.get("LOG_FORMAT").as_deref() {
            None | Some("text") => false,
            Some("json") => true,
            Some(other) => bail!("LOG_FORMAT must be `text` or `json`, not `{other}`"),
        };
        Ok(config)
    }

    /// Whether the database is the embedded SQLite file.
    pub fn is_sqlite(&self) -> bool {
        self.database.is_sqlite()
    }

    /// Checks the signing key before anything signs or verifies a token
    /// (`serve`, `seed`, `token`; `migrate` and `export-schema` need none):
    /// `JWT_SECRET` is 32+ characters and no placeholder, and PostgreSQL
    /// needs one (every replica must share it).
    pub fn require_shared_signing_key(&self) -> anyhow::Result<()> {
        match &self.jwt_secret {
            Some(secret) => {
                if secret.expose().len() < 32 {
                    bail!("JWT_SECRET must be at least 32 characters long");
                }
                if let Some(why) = placeholder(secret.expose()) {
                    bail!(
                        "JWT_SECRET looks like a placeholder ({why}): anyone who has read it can \
                         sign tokens. Set 32+ random characters, e.g. `openssl rand -base64 48`"
                    );
                }
                Ok(())
            }
            None if !self.is_sqlite() => bail!(
                "JWT_SECRET is required with a PostgreSQL DATABASE_URL: replicas must share one \
                 signing key (set 32+ random characters)"
            ),
            None => Ok(()),
        }
    }
}

/// Why a signing key looks like one copied from documentation or a
/// template rather than generated: a telling word, or too few distinct
/// characters to be random.
fn placeholder(secret: &str) -> Option<&'static str> {
    const WORDS: [&str; 12] = [
        "change-me",
        "changeme",
        "change_me",
        "replace",
        "placeholder",
        "example",
        "secret",
        "password",
        "default",
        "insecure",
        "your-",
        "jobgraph",
    ];
    let lower = secret.to_ascii_lowercase();
    if let Some(word) = WORDS.into_iter().find(|w| lower.contains(w)) {
        return Some(word);
    }
    let distinct: std::collections::BTreeSet<char> = secret.chars().collect();
    (distinct.len() < 12).then_some("too few distinct characters")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(pairs: &[(&str, &str)]) -> anyhow::Result<Config> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn no_environment_gives_the_embedded_default() {
        let config = from(&[]).expect("defaults are valid");
        assert!(config.is_sqlite());
        assert!(config.auto_migrate);
        assert_eq!(config.bind_addr.to_string(), "127.0.0.1:8000");
        assert_eq!(config.limits.max_page_size, 100);
    }

    #[test]
    fn postgres_without_a_jwt_secret_is_refused_where_tokens_are_signed() {
        // `migrate` and `export-schema` read the configuration without a key.
        let config = from(&[("DATABASE_URL", "postgres://localhost/x")]).unwrap();
        let err = config.require_shared_signing_key().unwrap_err();
        assert!(err.to_string().contains("JWT_SECRET"), "{err}");
        assert!(Config::embedded().require_shared_signing_key().is_ok());
    }

    #[test]
    fn out_of_range_values_name_the_variable() {
        let err = from(&[("MAX_PAGE_SIZE", "0")]).unwrap_err();
        assert!(err.to_string().contains("MAX_PAGE_SIZE"), "{err}");
        let err = from(&[("BIND_ADDR", "nope")]).unwrap_err();
        assert!(err.to_string().contains("BIND_ADDR"), "{err}");
    }

    #[test]
    fn secrets_never_print() {
        let config = from(&[("JWT_SECRET", "0123456789abcdef0123456789abcdef")]).unwrap();
        let shown = format!("{config:?}");
        assert!(!shown.contains("0123456789abcdef"), "{shown}");
    }

    #[test]
    fn well_known_placeholder_secrets_are_refused() {
        for bad in [
            "change-me-change-me-change-me-change-me",
            "my-super-secret-jwt-key-for-production!!",
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "abababababababababababababababababababab",
            "replace-this-with-32-random-characters-now",
        ] {
            let config = from(&[("JWT_SECRET", bad)]).unwrap();
            let err = config.require_shared_signing_key().unwrap_err();
            assert!(err.to_string().contains("placeholder"), "{bad}: {err}");
        }
        let good = from(&[("JWT_SECRET", "pX8v2QmL7wRz9KcT4nYb6HsJ1dFgA3eU")]).unwrap();
        assert!(good.require_shared_signing_key().is_ok());
        let short = from(&[("JWT_SECRET", "short")]).unwrap();
        assert!(short.require_shared_signing_key().is_err());
    }

    #[test]
    fn cache_lifetimes_come_from_the_default_and_per_kind_variables() {
        let config = from(&[("CACHE_DEFAULT_EXPIRE", "10"), ("CACHE_TTL_LOGS", "3")]).unwrap();
        assert_eq!(config.cache.ttl.jobs_list, Duration::from_secs(10));
        assert_eq!(config.cache.ttl.logs, Duration::from_secs(3));
        let config = from(&[("CACHE_ENABLED", "false")]).unwrap();
        assert!(!config.cache.enabled);
        assert_eq!(config.cache.ttl.job_detail, Duration::from_secs(300));
        assert!(from(&[("REDIS_URL", "http://x")]).is_err());
        assert!(from(&[("CACHE_KEY_PREFIX", "a{b}")]).is_err());
    }

    #[test]
    fn trusted_proxies_are_addresses_or_ranges() {
        let config = from(&[("TRUSTED_PROXIES", "10.0.0.0/8, ::1,192.168.1.7")]).unwrap();
        let [net, one, host] = config.abuse.trusted_proxies.as_slice() else {
            panic!("three ranges")
        };
        assert!(net.contains("10.200.3.4".parse().unwrap()));
        assert!(!net.contains("11.0.0.1".parse().unwrap()));
        assert!(one.contains("::1".parse().unwrap()));
        assert!(host.contains("::ffff:192.168.1.7".parse().unwrap()));
        assert!(from(&[("TRUSTED_PROXIES", "10.0.0.0/33")]).is_err());
        assert!(from(&[("RATE_LIMIT_LOGIN_PER_EMAIL", "lots")]).is_err());
        let off = from(&[("RATE_LIMIT_LOGIN_PER_EMAIL", "0")]).unwrap();
        assert!(off.abuse.login_per_email.is_off());
    }

    #[test]
    fn sqlite_urls_create_the_file() {
        assert_eq!(
            database::normalize_sqlite_url("sqlite://x.db"),
            "sqlite://x.db?mode=rwc"
        );
        assert_eq!(
            database::normalize_sqlite_url("sqlite://x.db?mode=ro"),
            "sqlite://x.db?mode=ro"
        );
    }
}
