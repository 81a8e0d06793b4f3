//! Typed settings, read once from the environment at start-up and passed down.
//!
//! Every variable has a safe default for the embedded setup (SQLite file,
//! in-process cache, outbox folder, local resume writer) or fails start-up
//! with a message that names the variable.

use std::{fmt, net::SocketAddr, path::PathBuf, str::FromStr, time::Duration};

use anyhow::{Context, bail};

use crate::{
    cache::{CacheKind, CacheSettings},
    email::MailSettings,
    resume_writer::ModelSettings,
    tasks::TaskSettings,
    throttle::Limit,
};

/// A string that never prints: `Debug` and `Display` show `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself; call sites are easy to audit with grep.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

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
}

/// Bounds on client-controlled sizes; each is an environment variable.
#[derive(Debug, Clone)]
pub struct Limits {
    /// `MAX_PAGE_SIZE`: largest `first`/`last`/`pageSize` (default 100).
    pub max_page_size: u32,
    /// `MAX_PAGE_OFFSET`: deepest row `jobsPage` will skip to (default 10000).
    pub max_page_offset: u64,
    /// `MAX_BULK_JOBS`: largest `createJobs` input, and largest list any
    /// argument may hold (default 1000).
    pub max_bulk_jobs: usize,
    /// `MAX_BATCH_OPERATIONS`: operations in one batched HTTP request (default 10).
    pub max_batch_operations: usize,
    /// `MAX_BODY_BYTES`: largest request body (default 2 MiB).
    pub max_body_bytes: usize,
    /// `MAX_RESPONSE_BYTES`: largest answer built (default 4 MiB).
    pub max_response_bytes: usize,
    /// Limits on the documents of signed-in callers (`MAX_QUERY_*`).
    pub query: QueryLimits,
    /// The tighter limits for callers without a token
    /// (`ANONYMOUS_MAX_QUERY_*`): they can only sign in, sign up and
    /// introspect.
    pub anonymous: QueryLimits,
}

/// Limits on one GraphQL document, checked before anything runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryLimits {
    /// `MAX_QUERY_DEPTH`: deepest nesting of fields (default 12).
    pub max_depth: u64,
    /// `MAX_QUERY_COMPLEXITY`: the cost budget; a connection counts
    /// `first` times its items, a list its cap (default 100000).
    pub max_cost: u64,
    /// `MAX_QUERY_ALIASES` (default 50).
    pub max_aliases: u64,
    /// `MAX_QUERY_ROOT_FIELDS` (default 20).
    pub max_root_fields: u64,
    /// `MAX_QUERY_TOKENS`: counted before parsing (default 5000).
    pub max_tokens: u64,
    /// `MAX_QUERY_SELECTIONS`: fields with every fragment expanded
    /// (default 2000).
    pub max_selections: u64,
    /// `MAX_QUERY_DIRECTIVES`: directives on one selection (default 4).
    pub max_directives: u64,
    /// `MAX_DOCUMENT_BYTES`: the query text's size (default 65536).
    pub max_document_bytes: u64,
}

impl QueryLimits {
    /// What a signed-in caller may send.
    pub const AUTHENTICATED: QueryLimits = QueryLimits {
        max_depth: 12,
        max_cost: 100_000,
        max_aliases: 50,
        max_root_fields: 20,
        max_tokens: 5_000,
        max_selections: 2_000,
        max_directives: 4,
        max_document_bytes: 64 * 1024,
    };

    /// What a caller without a token may send: enough for `signup`,
    /// `login` and GraphiQL's introspection query, little more.
    pub const ANONYMOUS: QueryLimits = QueryLimits {
        max_depth: 6,
        max_cost: 500,
        max_aliases: 5,
        max_root_fields: 3,
        max_tokens: 2_000,
        max_selections: 600,
        max_directives: 2,
        max_document_bytes: 16 * 1024,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_page_size: 100,
            max_page_offset: 10_000,
            max_bulk_jobs: 1_000,
            max_batch_operations: 10,
            max_body_bytes: 2 * 1024 * 1024,
            max_response_bytes: 4 * 1024 * 1024,
            query: QueryLimits::AUTHENTICATED,
            anonymous: QueryLimits::ANONYMOUS,
        }
    }
}

/// Timeouts and back-pressure: no client can hold the server's resources
/// for long, and excess load is refused quickly instead of queued.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// `REQUEST_TIMEOUT_MS`: longest a GraphQL request may run; then 504
    /// (default 15000).
    pub request_timeout: Duration,
    /// `BODY_READ_TIMEOUT_MS`: longest a request body may take to arrive;
    /// then 408 (default 10000).
    pub body_read_timeout: Duration,
    /// `HEADER_READ_TIMEOUT_MS`: longest the request line and headers may
    /// take; then the connection is closed (default 10000).
    pub header_read_timeout: Duration,
    /// `MAX_IN_FLIGHT_REQUESTS`: GraphQL requests running at once (default
    /// 512); one more waits at most `IN_FLIGHT_WAIT_MS` for a slot, then is
    /// answered 503.
    pub max_in_flight: usize,
    /// `IN_FLIGHT_WAIT_MS`: how long a request beyond the limit may wait,
    /// which absorbs a burst without queueing without bound (default 1000).
    pub in_flight_wait: Duration,
    /// `MAX_CONNECTIONS`: open client connections; more wait in the
    /// kernel's accept queue (default 4096).
    pub max_connections: usize,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(15),
            body_read_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(10),
            max_in_flight: 512,
            in_flight_wait: Duration::from_secs(1),
            max_connections: 4096,
        }
    }
}

/// What one client, account or team may do how often.
#[derive(Debug, Clone)]
pub struct AbuseSettings {
    /// `RATE_LIMIT_LOGIN_PER_EMAIL`: sign-in attempts per account
    /// (default `10/15m`).
    pub login_per_email: Limit,
    /// `RATE_LIMIT_LOGIN_PER_ADDRESS`: sign-in attempts per client address
    /// (default `100/15m`).
    pub login_per_address: Limit,
    /// `RATE_LIMIT_SIGNUP_PER_ADDRESS`: new teams per client address
    /// (default `20/1h`).
    pub signup_per_address: Limit,
    /// `QUOTA_RESUMES_PER_TEAM`: `generateResume` calls per team
    /// (default `500/1d`).
    pub resumes_per_team: Limit,
    /// `QUOTA_MAILS_PER_TEAM`: mails sent for a team (default `1000/1d`).
    pub mails_per_team: Limit,
    /// `PASSWORD_HASH_CONCURRENCY`: password hashes computed at once
    /// (default: the number of CPUs); each takes ~19 MiB.
    pub hash_concurrency: usize,
    /// `PASSWORD_HASH_WAIT_MS`: how long a sign-in waits for a hashing slot
    /// before it is answered 503 (default 2000).
    pub hash_wait: Duration,
    /// `TRUSTED_PROXIES`: addresses or CIDR ranges of proxies whose
    /// `X-Forwarded-For` is believed (default none: the socket's address).
    pub trusted_proxies: Vec<Cidr>,
}

impl Default for AbuseSettings {
    fn default() -> Self {
        Self {
            login_per_email: Limit::new(10, 15 * 60),
            login_per_address: Limit::new(100, 15 * 60),
            signup_per_address: Limit::new(20, 3600),
            resumes_per_team: Limit::new(500, 86_400),
            mails_per_team: Limit::new(1000, 86_400),
            hash_concurrency: std::thread::available_parallelism().map_or(2, |n| n.get()),
            hash_wait: Duration::from_secs(2),
            trusted_proxies: Vec::new(),
        }
    }
}

/// An address range (`10.0.0.0/8`, `::1`, `192.168.1.7`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: std::net::IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn parse(raw: &str) -> anyhow::Result<Self> {
        let (addr, prefix) = match raw.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (raw.trim(), None),
        };
        let addr: std::net::IpAddr = addr
            .parse()
            .with_context(|| format!("`{raw}` is not an address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .with_context(|| format!("`{raw}` has a bad prefix length"))?,
            None => max,
        };
        Ok(Self { addr, prefix })
    }

    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        use std::net::IpAddr;
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// Where the data lives and how its pools behave.
#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    /// `DATABASE_URL`: `sqlite://…` or `postgres://…` (default `sqlite://jobgraph.db`).
    pub url: Secret,
    /// `DATABASE_SCHEMA`: PostgreSQL schema to use (`search_path`), if not the default.
    pub schema: Option<String>,
    /// `DB_MAX_CONNECTIONS`: request pool size (default 16 on PostgreSQL, 4 on SQLite).
    pub max_connections: Option<u32>,
    /// `STATEMENT_TIMEOUT_MS`: PostgreSQL `statement_timeout` on every
    /// connection (default 5000).
    pub statement_timeout: Duration,
    /// `DB_ACQUIRE_TIMEOUT_MS`: longest a request waits for a pooled
    /// connection; then 503 with `Retry-After` (default 2000).
    pub acquire_timeout: Duration,
}

impl DatabaseSettings {
    /// The embedded default: a SQLite file in the working folder.
    pub fn embedded() -> Self {
        Self {
            url: Secret::new(DEFAULT_DATABASE_URL),
            schema: None,
            max_connections: None,
            statement_timeout: Duration::from_secs(5),
            acquire_timeout: Duration::from_secs(2),
        }
    }

    /// Whether the database is the embedded SQLite file.
    pub fn is_sqlite(&self) -> bool {
        self.url.expose().starts_with("sqlite:")
    }
}

/// The embedded default database: a SQLite file in the working folder.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://jobgraph.db?mode=rwc";

impl Config {
    /// The embedded default: what `jobgraph serve` uses with no environment.
    pub fn embedded() -> Self {
        Self {
            bind_addr: SocketAddr::from(([127, 0, 0, 1], 8000)),
            database: DatabaseSettings::embedded(),
            jwt_secret: None,
            jwt_secret_file: PathBuf::from("jobgraph.secret"),
            jwt_ttl: Duration::from_secs(86_400),
            auto_migrate: true,
            limits: Limits::default(),
            http: HttpSettings::default(),
            abuse: AbuseSettings::default(),
            introspection: true,
            log_json: false,
            cache: CacheSettings::default(),
            tasks: TaskSettings::default(),
            mail: MailSettings::default(),
            model: ModelSettings::default(),
        }
    }

    /// Reads every setting from the environment, failing on the first bad one.
    pub fn from_env() -> anyhow::Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Same as [`Config::from_env`] with an injectable lookup, for tests.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let mut config = Self::embedded();
        if let Some(addr) = get("BIND_ADDR") {
            config.bind_addr = parse("BIND_ADDR", &addr)?;
        }
        if let Some(url) = get("DATABASE_URL") {
            let url = normalize_sqlite_url(&url);
            if !(url.starts_with("sqlite:") || url.starts_with("postgres")) {
                bail!("DATABASE_URL must start with sqlite:// or postgres://");
            }
            config.database.url = Secret::new(url);
        }
        if let Some(schema) = get("DATABASE_SCHEMA") {
            if !schema
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                bail!("DATABASE_SCHEMA may hold only letters, digits and underscores");
            }
            config.database.schema = Some(schema);
        }
        if let Some(n) = get("DB_MAX_CONNECTIONS") {
            config.database.max_connections = Some(parse_range("DB_MAX_CONNECTIONS", &n, 1, 1000)?);
        }
        config.jwt_secret = get("JWT_SECRET").map(Secret::new);
        if let Some(secret) = &config.jwt_secret {
            if secret.expose().len() < 32 {
                bail!("JWT_SECRET must be at least 32 characters long");
            }
            if let Some(why) = placeholder(secret.expose()) {
                bail!(
                    "JWT_SECRET looks like a placeholder ({why}): anyone who has read it can sign \
                     tokens. Set 32+ random characters, e.g. `openssl rand -base64 48`"
                );
            }
        }
        if let Some(path) = get("JWT_SECRET_FILE") {
            config.jwt_secret_file = PathBuf::from(path);
        }
        if config.jwt_secret.is_none() && !config.is_sqlite() {
            bail!(
                "JWT_SECRET is required with a PostgreSQL DATABASE_URL: replicas must share one \
                 signing key (set 32+ random characters)"
            );
        }
        if let Some(ttl) = get("JWT_TTL_SECONDS") {
            config.jwt_ttl =
                Duration::from_secs(parse_range("JWT_TTL_SECONDS", &ttl, 60, 31_536_000)?);
        }
        config.auto_migrate = match get("AUTO_MIGRATE") {
            Some(v) => parse_bool("AUTO_MIGRATE", &v)?,
            None => config.is_sqlite(),
        };
        let l = &mut config.limits;
        if let Some(v) = get("MAX_PAGE_SIZE") {
            l.max_page_size = parse_range("MAX_PAGE_SIZE", &v, 1, 10_000)?;
        }
        if let Some(v) = get("MAX_PAGE_OFFSET") {
            l.max_page_offset = parse_range("MAX_PAGE_OFFSET", &v, 0, 100_000_000)?;
        }
        if let Some(v) = get("MAX_BULK_JOBS") {
            l.max_bulk_jobs = parse_range("MAX_BULK_JOBS", &v, 1, 100_000)?;
        }
        if let Some(v) = get("MAX_BATCH_OPERATIONS") {
            l.max_batch_operations = parse_range("MAX_BATCH_OPERATIONS", &v, 1, 1_000)?;
        }
        if let Some(v) = get("MAX_BODY_BYTES") {
            l.max_body_bytes = parse_range("MAX_BODY_BYTES", &v, 1024, 1 << 30)?;
        }
        if let Some(v) = get("MAX_RESPONSE_BYTES") {
            l.max_response_bytes = parse_range("MAX_RESPONSE_BYTES", &v, 1024, 1 << 30)?;
        }
        read_query_limits(&get, "", &mut l.query)?;
        read_query_limits(&get, "ANONYMOUS_", &mut l.anonymous)?;
        config.introspection = match get("GRAPHQL_INTROSPECTION") {
            Some(v) => parse_bool("GRAPHQL_INTROSPECTION", &v)?,
            None => true,
        };
        read_http_settings(&get, &mut config.http)?;
        read_abuse_settings(&get, &mut config.abuse)?;
        if let Some(v) = get("STATEMENT_TIMEOUT_MS") {
            config.database.statement_timeout =
                Duration::from_millis(parse_range("STATEMENT_TIMEOUT_MS", &v, 10u64, 3_600_000)?);
        }
        if let Some(v) = get("DB_ACQUIRE_TIMEOUT_MS") {
            config.database.acquire_timeout =
                Duration::from_millis(parse_range("DB_ACQUIRE_TIMEOUT_MS", &v, 10u64, 600_000)?);
        }
        read_cache_settings(&get, &mut config.cache)?;
        read_background_settings(&get, &mut config)?;
        config.log_json = match get("LOG_FORMAT").as_deref() {
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
}

fn read_http_settings(
    get: &impl Fn(&str) -> Option<String>,
    http: &mut HttpSettings,
) -> anyhow::Result<()> {
    let millis = |name: &str, min: u64, max: u64| -> anyhow::Result<Option<Duration>> {
        get(name)
            .map(|v| parse_range(name, &v, min, max).map(Duration::from_millis))
            .transpose()
    };
    if let Some(d) = millis("REQUEST_TIMEOUT_MS", 100, 3_600_000)? {
        http.request_timeout = d;
    }
    if let Some(d) = millis("BODY_READ_TIMEOUT_MS", 100, 3_600_000)? {
        http.body_read_timeout = d;
    }
    if let Some(d) = millis("HEADER_READ_TIMEOUT_MS", 100, 3_600_000)? {
        http.header_read_timeout = d;
    }
    if let Some(d) = millis("IN_FLIGHT_WAIT_MS", 0, 60_000)? {
        http.in_flight_wait = d;
    }

    if let Some(v) = get("MAX_IN_FLIGHT_REQUESTS") {
        http.max_in_flight = parse_range("MAX_IN_FLIGHT_REQUESTS", &v, 1usize, 1_000_000)?;
    }
    if let Some(v) = get("MAX_CONNECTIONS") {
        http.max_connections = parse_range("MAX_CONNECTIONS", &v, 1usize, 1_000_000)?;
    }
    Ok(())
}

fn read_abuse_settings(
    get: &impl Fn(&str) -> Option<String>,
    abuse: &mut AbuseSettings,
) -> anyhow::Result<()> {
    for (name, slot) in [
        ("RATE_LIMIT_LOGIN_PER_EMAIL", &mut abuse.login_per_email),
        ("RATE_LIMIT_LOGIN_PER_ADDRESS", &mut abuse.login_per_address),
        (
            "RATE_LIMIT_SIGNUP_PER_ADDRESS",
            &mut abuse.signup_per_address,
        ),
        ("QUOTA_RESUMES_PER_TEAM", &mut abuse.resumes_per_team),
        ("QUOTA_MAILS_PER_TEAM", &mut abuse.mails_per_team),
    ] {
        if let Some(v) = get(name) {
            *slot = Limit::parse(&v).with_context(|| format!("{name}: `{v}`"))?;
        }
    }
    if let Some(v) = get("PASSWORD_HASH_CONCURRENCY") {
        abuse.hash_concurrency = parse_range("PASSWORD_HASH_CONCURRENCY", &v, 1usize, 256)?;
    }
    if let Some(v) = get("PASSWORD_HASH_WAIT_MS") {
        abuse.hash_wait =
            Duration::from_millis(parse_range("PASSWORD_HASH_WAIT_MS", &v, 0u64, 60_000)?);
    }
    if let Some(v) = get("TRUSTED_PROXIES") {
        abuse.trusted_proxies = v
            .split(',')
            .filter(|p| !p.trim().is_empty())
            .map(Cidr::parse)
            .collect::<anyhow::Result<_>>()
            .context("TRUSTED_PROXIES")?;
    }
    Ok(())
}

/// `MAX_QUERY_*` (or `ANONYMOUS_MAX_QUERY_*` with `prefix`).
fn read_query_limits(
    get: &impl Fn(&str) -> Option<String>,
    prefix: &str,
    limits: &mut QueryLimits,
) -> anyhow::Result<()> {
    let fields: [(&str, &mut u64, u64, u64); 8] = [
        ("MAX_QUERY_DEPTH", &mut limits.max_depth, 2, 100),
        (
            "MAX_QUERY_COMPLEXITY",
            &mut limits.max_cost,
            10,
            100_000_000,
        ),
        ("MAX_QUERY_ALIASES", &mut limits.max_aliases, 0, 100_000),
        (
            "MAX_QUERY_ROOT_FIELDS",
            &mut limits.max_root_fields,
            1,
            10_000,
        ),
        ("MAX_QUERY_TOKENS", &mut limits.max_tokens, 100, 1_000_000),
        (
            "MAX_QUERY_SELECTIONS",
            &mut limits.max_selections,
            10,
            1_000_000,
        ),
        ("MAX_QUERY_DIRECTIVES", &mut limits.max_directives, 0, 100),
        (
            "MAX_DOCUMENT_BYTES",
            &mut limits.max_document_bytes,
            1024,
            1 << 30,
        ),
    ];
    for (name, slot, min, max) in fields {
        let name = format!("{prefix}{name}");
        if let Some(v) = get(&name) {
            *slot = parse_range(&name, &v, min, max)?;
        }
    }
    Ok(())
}

fn read_cache_settings(
    get: &impl Fn(&str) -> Option<String>,
    cache: &mut CacheSettings,
) -> anyhow::Result<()> {
    if let Some(v) = get("CACHE_ENABLED") {
        cache.enabled = parse_bool("CACHE_ENABLED", &v)?;
    }
    if let Some(url) = get("REDIS_URL") {
        let scheme_ok = [
            "redis://",
            "rediss://",
            "redis-cluster://",
            "rediss-cluster://",
            "redis-sentinel://",
        ]
        .iter()
        .any(|s| url.starts_with(s));
        if !scheme_ok {
            bail!("REDIS_URL must start with redis://, rediss:// or redis-cluster://");
        }
        cache.redis_url = Some(Secret::new(url));
    }
    let default = get("CACHE_DEFAULT_EXPIRE")
        .map(|v| parse_range("CACHE_DEFAULT_EXPIRE", &v, 1u64, 86_400))
        .transpose()?
        .map(Duration::from_secs);
    cache.ttl = crate::cache::default_ttls(default);
    for (name, kind) in [
        ("CACHE_TTL_JOBS_LIST", CacheKind::JobsList),
        ("CACHE_TTL_JOB_DETAIL", CacheKind::JobDetail),
        ("CACHE_TTL_JOB_STATS", CacheKind::JobStats),
        ("CACHE_TTL_LOGS", CacheKind::Logs),
    ] {
        if let Some(v) = get(name) {
            cache.ttl.insert(
                kind,
                Duration::from_secs(parse_range(name, &v, 1u64, 86_400)?),
            );
        }
    }
    if let Some(v) = get("CACHE_TIMEOUT_MS") {
        cache.command_timeout =
            Duration::from_millis(parse_range("CACHE_TIMEOUT_MS", &v, 1u64, 60_000)?);
    }
    if let Some(v) = get("CACHE_KEY_PREFIX") {
        if v.is_empty() || v.len() > 64 || v.contains(['{', '}', '*', '?', '[', ']', ' ']) {
            bail!(
                "CACHE_KEY_PREFIX must be 1-64 characters without braces, glob characters or spaces"
            );
        }
        cache.key_prefix = v;
    }
    if let Some(v) = get("CACHE_SWEEP_DELAY_MS") {
        cache.sweep_delay =
            Duration::from_millis(parse_range("CACHE_SWEEP_DELAY_MS", &v, 0u64, 60_000)?);
    }
    if let Some(v) = get("CACHE_SWEEP_MAX_PAGES") {
        cache.sweep_max_pages = parse_range("CACHE_SWEEP_MAX_PAGES", &v, 1usize, 1_000_000)?;
    }
    if let Some(v) = get("CACHE_MEMORY_MAX_BYTES") {
        cache.memory_max_bytes = parse_range("CACHE_MEMORY_MAX_BYTES", &v, 1u64 << 20, 1u64 << 40)?;
    }
    if let Some(v) = get("CACHE_MAX_ENTRY_BYTES") {
        cache.max_entry_bytes = parse_range("CACHE_MAX_ENTRY_BYTES", &v, 1024usize, 1 << 30)?;
    }
    if let Some(v) = get("REDIS_POOL_SIZE") {
        cache.redis_pool_size = parse_range("REDIS_POOL_SIZE", &v, 1usize, 64)?;
    }
    Ok(())
}

fn read_background_settings(
    get: &impl Fn(&str) -> Option<String>,
    config: &mut Config,
) -> anyhow::Result<()> {
    let t = &mut config.tasks;
    if let Some(v) = get("WORKER_CONCURRENCY") {
        t.concurrency = parse_range("WORKER_CONCURRENCY", &v, 0usize, 256)?;
    }
    if let Some(v) = get("TASK_POLL_MS") {
        t.poll = Duration::from_millis(parse_range("TASK_POLL_MS", &v, 10u64, 60_000)?);
    }
    if let Some(v) = get("TASK_LEASE_SECS") {
        t.lease = Duration::from_secs(parse_range("TASK_LEASE_SECS", &v, 1u64, 86_400)?);
    }
    if let Some(v) = get("TASK_MAX_ATTEMPTS") {
        t.max_attempts = parse_range("TASK_MAX_ATTEMPTS", &v, 1i32, 100)?;
    }
    if let Some(v) = get("TASK_BACKOFF_MS") {
        t.backoff = Duration::from_millis(parse_range("TASK_BACKOFF_MS", &v, 1u64, 3_600_000)?);
    }
    if let Some(v) = get("SHUTDOWN_GRACE_SECS") {
        t.shutdown_grace = Duration::from_secs(parse_range("SHUTDOWN_GRACE_SECS", &v, 0u64, 3600)?);
    }
    if let Some(v) = get("LOG_RETENTION_DAYS") {
        t.retention_days = parse_range("LOG_RETENTION_DAYS", &v, 1i64, 36_500)?;
    }
    if let Some(v) = get("LOG_RETENTION_INTERVAL_SECS") {
        t.retention_interval = Duration::from_secs(parse_range(
            "LOG_RETENTION_INTERVAL_SECS",
            &v,
            1u64,
            604_800,
        )?);
    }
    if let Some(v) = get("CACHE_REFRESH_DELAY_MS") {
        t.refresh_delay =
            Duration::from_millis(parse_range("CACHE_REFRESH_DELAY_MS", &v, 0u64, 600_000)?);
    }
    let m = &mut config.mail;
    if let Some(url) = get("SMTP_URL") {
        if !(url.starts_with("smtp://") || url.starts_with("smtps://")) {
            bail!("SMTP_URL must start with smtp:// or smtps://");
        }
        m.smtp_url = Some(Secret::new(url));
    }
    if let Some(from) = get("SMTP_FROM") {
        m.from = from;
    }
    if let Some(dir) = get("OUTBOX_DIR") {
        m.outbox_dir = PathBuf::from(dir);
    }
    let model = &mut config.model;
    model.api_key = get("OPENAI_API_KEY").map(Secret::new);
    if let Some(url) = get("OPENAI_BASE_URL") {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            bail!("OPENAI_BASE_URL must be an http(s) URL");
        }
        model.base_url = url;
    }
    if let Some(name) = get("OPENAI_MODEL") {
        model.model = name;
    }
    if let Some(v) = get("OPENAI_TIMEOUT_SECS") {
        model.timeout = Duration::from_secs(parse_range("OPENAI_TIMEOUT_SECS", &v, 1u64, 600)?);
    }
    Ok(())
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

/// `sqlite://path` opens read-write but does not create the file unless
/// `mode=rwc` is given; the embedded default must work on a fresh folder.
fn normalize_sqlite_url(url: &str) -> String {
    if url.starts_with("sqlite:") && !url.contains("mode=") && !url.contains(":memory:") {
        let sep = if url.contains('?') { '&' } else { '?' };
        format!("{url}{sep}mode=rwc")
    } else {
        url.to_owned()
    }
}

fn parse<T: FromStr>(name: &str, value: &str) -> anyhow::Result<T>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    value
        .trim()
        .parse()
        .with_context(|| format!("{name}: cannot parse `{value}`"))
}

fn parse_range<T>(name: &str, value: &str, min: T, max: T) -> anyhow::Result<T>
where
    T: FromStr + PartialOrd + fmt::Display + Copy,
    T::Err: std::error::Error + Send + Sync + 'static,
{
    let v: T = parse(name, value)?;
    if v < min || v > max {
        bail!("{name} must be between {min} and {max}, not {v}");
    }
    Ok(v)
}

fn parse_bool(name: &str, value: &str) -> anyhow::Result<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => bail!("{name} must be true or false, not `{value}`"),
    }
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
    fn postgres_without_a_jwt_secret_is_a_clear_start_up_error() {
        let err = from(&[("DATABASE_URL", "postgres://localhost/x")]).unwrap_err();
        assert!(err.to_string().contains("JWT_SECRET"), "{err}");
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
            let err = from(&[("JWT_SECRET", bad)]).unwrap_err();
            assert!(err.to_string().contains("placeholder"), "{bad}: {err}");
        }
        assert!(from(&[("JWT_SECRET", "pX8v2QmL7wRz9KcT4nYb6HsJ1dFgA3eU")]).is_ok());
    }

    #[test]
    fn cache_lifetimes_come_from_the_default_and_per_kind_variables() {
        let config = from(&[("CACHE_DEFAULT_EXPIRE", "10"), ("CACHE_TTL_LOGS", "3")]).unwrap();
        assert_eq!(
            config.cache.ttl[&CacheKind::JobsList],
            Duration::from_secs(10)
        );
        assert_eq!(config.cache.ttl[&CacheKind::Logs], Duration::from_secs(3));
        let config = from(&[("CACHE_ENABLED", "false")]).unwrap();
        assert!(!config.cache.enabled);
        assert_eq!(
            config.cache.ttl[&CacheKind::JobDetail],
            Duration::from_secs(300)
        );
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
            normalize_sqlite_url("sqlite://x.db"),
            "sqlite://x.db?mode=rwc"
        );
        assert_eq!(
            normalize_sqlite_url("sqlite://x.db?mode=ro"),
            "sqlite://x.db?mode=ro"
        );
    }
}
