//! `MAX_*`: bounds on everything a client controls.

use super::env::Env;

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

impl Limits {
    pub(super) fn read(&mut self, env: &Env) -> anyhow::Result<()> {
        if let Some(n) = env.range("MAX_PAGE_SIZE", 1, 10_000)? {
            self.max_page_size = n;
        }
        if let Some(n) = env.range("MAX_PAGE_OFFSET", 0, 100_000_000)? {
            self.max_page_offset = n;
        }
        if let Some(n) = env.range("MAX_BULK_JOBS", 1, 100_000)? {
            self.max_bulk_jobs = n;
        }
        if let Some(n) = env.range("MAX_BATCH_OPERATIONS", 1, 1_000)? {
            self.max_batch_operations = n;
        }
        if let Some(n) = env.range("MAX_BODY_BYTES", 1024, 1 << 30)? {
            self.max_body_bytes = n;
        }
        if let Some(n) = env.range("MAX_RESPONSE_BYTES", 1024, 1 << 30)? {
            self.max_response_bytes = n;
        }
        self.query.read(env, "")?;
        self.anonymous.read(env, "ANONYMOUS_")
    }
}

impl QueryLimits {
    /// `MAX_QUERY_*` (or `ANONYMOUS_MAX_QUERY_*` with `prefix`).
    fn read(&mut self, env: &Env, prefix: &str) -> anyhow::Result<()> {
        let fields: [(&str, &mut u64, u64, u64); 8] = [
            ("MAX_QUERY_DEPTH", &mut self.max_depth, 2, 100),
            ("MAX_QUERY_COMPLEXITY", &mut self.max_cost, 10, 100_000_000),
            ("MAX_QUERY_ALIASES", &mut self.max_aliases, 0, 100_000),
            (
                "MAX_QUERY_ROOT_FIELDS",
                &mut self.max_root_fields,
                1,
                10_000,
            ),
            ("MAX_QUERY_TOKENS", &mut self.max_tokens, 100, 1_000_000),
            (
                "MAX_QUERY_SELECTIONS",
                &mut self.max_selections,
                10,
                1_000_000,
            ),
            ("MAX_QUERY_DIRECTIVES", &mut self.max_directives, 0, 100),
            (
                "MAX_DOCUMENT_BYTES",
                &mut self.max_document_bytes,
                1024,
                1 << 30,
            ),
        ];
        for (name, slot, min, max) in fields {
            if let Some(v) = env.range(&format!("{prefix}{name}"), min, max)? {
                *slot = v;
            }
        }
        Ok(())
    }
}
