//! One error type for every resolver, mapped to a stable `extensions.code`.
//!
//! Internal causes (driver errors, SQL text, I/O) are logged once, with their
//! whole chain, where they become a client error; the client only ever sees
//! "internal error" and the code `INTERNAL`.

use async_graphql::ErrorExtensions;
use sea_orm::DbErr;

/// The stable codes clients can switch on (`extensions.code`): every error
/// the service sends carries one of these, and only these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// No, a bad, an expired or a revoked token (HTTP 401 at request level).
    Unauthenticated,
    /// The caller's role or team does not allow it.
    Forbidden,
    /// The id names nothing.
    NotFound,
    /// An input value is invalid; `extensions.fields` lists every one.
    BadUserInput,
    /// The database cannot serve the request right now (HTTP 503).
    Unavailable,
    /// Too much work at once: retry shortly (HTTP 503).
    Overloaded,
    /// A rate limit was reached (HTTP 429 with `Retry-After`).
    RateLimited,
    /// A team's quota was used up (HTTP 429 with `Retry-After`).
    QuotaExceeded,
    /// A fault of the service; the cause is logged, never sent.
    Internal,
    /// The document does not parse (HTTP 400).
    GraphqlParseFailed,
    /// A persisted query's hash is not known here: send the text with it
    /// (Apollo's automatic persisted queries retry so on their own).
    PersistedQueryNotFound,
    /// Only listed documents run (`PERSISTED_QUERIES_ONLY`): this one is not.
    PersistedQueryNotAllowed,
    /// A subscriber fell further behind than its buffer: its events were
    /// dropped and its connection is closed.
    SlowConsumer,
    /// A WebSocket already runs `SUBSCRIPTIONS_PER_CONNECTION` operations.
    TooManySubscriptions,
    /// The document fails validation or its variables do not coerce (HTTP
    /// 400; 200 for `application/json` clients).
    GraphqlValidationFailed,
    /// The body or query string is not a GraphQL request (HTTP 400).
    BadRequest,
    /// A batch holds no operation or more than `MAX_BATCH_OPERATIONS`.
    BatchLimit,
    /// The body is larger than `MAX_BODY_BYTES` (HTTP 413).
    PayloadTooLarge,
    /// The body did not arrive within `BODY_READ_TIMEOUT_MS` (HTTP 408).
    RequestTimeout,
    /// The request ran past `REQUEST_TIMEOUT_MS` (HTTP 504).
    Timeout,
    /// `Accept` allows no type this server sends (HTTP 406).
    NotAcceptable,
    /// The body is not `application/json` (HTTP 415).
    UnsupportedMediaType,
    /// A mutation over GET (HTTP 405).
    MethodNotAllowed,
    /// The query text is longer than `MAX_DOCUMENT_BYTES`.
    DocumentTooLarge,
    /// The query text holds more than `MAX_QUERY_TOKENS`.
    TooManyTokens,
    /// More fields than `MAX_QUERY_SELECTIONS`, fragments expanded.
    TooManySelections,
    /// More aliases than `MAX_QUERY_ALIASES`.
    TooManyAliases,
    /// More root fields than `MAX_QUERY_ROOT_FIELDS`.
    TooManyRootFields,
    /// Nested deeper than `MAX_QUERY_DEPTH`.
    QueryTooDeep,
    /// Costs more than `MAX_QUERY_COMPLEXITY`.
    QueryTooComplex,
    /// More directives on one selection than `MAX_QUERY_DIRECTIVES`.
    TooManyDirectives,
    /// A list longer than its type (or `MAX_BULK_JOBS`) allows.
    ListTooLong,
    /// The request's JSON nests deeper than inputs need.
    TooDeeplyNested,
    /// More than one `login`, `signup` or `createUser` in a document or batch.
    TooManySignIns,
    /// `__schema`/`__type` with `GRAPHQL_INTROSPECTION=false`.
    IntrospectionDisabled,
    /// The answer would be larger than `MAX_RESPONSE_BYTES`.
    ResponseTooLarge,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 36] = [
        Self::Unauthenticated,
        Self::Forbidden,
        Self::NotFound,
        Self::BadUserInput,
        Self::Unavailable,
        Self::Overloaded,
        Self::RateLimited,
        Self::QuotaExceeded,
        Self::Internal,
        Self::GraphqlParseFailed,
        Self::GraphqlValidationFailed,
        Self::BadRequest,
        Self::BatchLimit,
        Self::PayloadTooLarge,
        Self::RequestTimeout,
        Self::Timeout,
        Self::NotAcceptable,
        Self::UnsupportedMediaType,
        Self::MethodNotAllowed,
        Self::DocumentTooLarge,
        Self::TooManyTokens,
        Self::TooManySelections,
        Self::TooManyAliases,
        Self::TooManyRootFields,
        Self::QueryTooDeep,
        Self::QueryTooComplex,
        Self::TooManyDirectives,
        Self::ListTooLong,
        Self::TooDeeplyNested,
        Self::TooManySignIns,
        Self::IntrospectionDisabled,
        Self::ResponseTooLarge,
        Self::PersistedQueryNotFound,
        Self::PersistedQueryNotAllowed,
        Self::SlowConsumer,
        Self::TooManySubscriptions,
    ];

    /// The code a client saw, if it is one of ours (a bounded label).
    pub fn known(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == code)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::Forbidden => "FORBIDDEN",
            Self::NotFound => "NOT_FOUND",
            Self::BadUserInput => "BAD_USER_INPUT",
            Self::Unavailable => "SERVICE_UNAVAILABLE",
            Self::Overloaded => "OVERLOADED",
            Self::RateLimited => "RATE_LIMITED",
            Self::QuotaExceeded => "QUOTA_EXCEEDED",
            Self::Internal => "INTERNAL",
            Self::GraphqlParseFailed => "GRAPHQL_PARSE_FAILED",
            Self::GraphqlValidationFailed => "GRAPHQL_VALIDATION_FAILED",
            Self::BadRequest => "BAD_REQUEST",
            Self::BatchLimit => "BATCH_LIMIT",
            Self::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            Self::RequestTimeout => "REQUEST_TIMEOUT",
            Self::Timeout => "TIMEOUT",
            Self::NotAcceptable => "NOT_ACCEPTABLE",
            Self::UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            Self::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            Self::DocumentTooLarge => "DOCUMENT_TOO_LARGE",
            Self::TooManyTokens => "TOO_MANY_TOKENS",
            Self::TooManySelections => "TOO_MANY_SELECTIONS",
            Self::TooManyAliases => "TOO_MANY_ALIASES",
            Self::TooManyRootFields => "TOO_MANY_ROOT_FIELDS",
            Self::QueryTooDeep => "QUERY_TOO_DEEP",
            Self::QueryTooComplex => "QUERY_TOO_COMPLEX",
            Self::TooManyDirectives => "TOO_MANY_DIRECTIVES",
            Self::ListTooLong => "LIST_TOO_LONG",
            Self::TooDeeplyNested => "TOO_DEEPLY_NESTED",
            Self::TooManySignIns => "TOO_MANY_SIGN_INS",
            Self::IntrospectionDisabled => "INTROSPECTION_DISABLED",
            Self::ResponseTooLarge => "RESPONSE_TOO_LARGE",
            Self::PersistedQueryNotFound => "PERSISTED_QUERY_NOT_FOUND",
            Self::PersistedQueryNotAllowed => "PERSISTED_QUERY_NOT_ALLOWED",
            Self::SlowConsumer => "SLOW_CONSUMER",
            Self::TooManySubscriptions => "TOO_MANY_SUBSCRIPTIONS",
        }
    }
}

impl PartialEq<&str> for ErrorCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// One invalid input field: `field` is a path such as `input[3].title`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// What a resolver can fail with. `Clone` because async-graphql needs it;
/// the internal cause is shared behind an `Arc`.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// The first problem is the message; every problem is in `extensions.fields`.
    #[error("{}", .0.first().map(|e| format!("{}: {}", e.field, e.message)).unwrap_or_default())]
    Invalid(Vec<FieldError>),
    /// A request-level input problem not tied to one input field.
    #[error("{0}")]
    BadInput(String),
    /// Too much work at once (password hashing slots taken).
    #[error("{0}")]
    Overloaded(String),
    /// Too many attempts: `retry_after` says when the window ends.
    #[error("{message}")]
    Limited {
        code: ErrorCode,
        message: String,
        retry_after: std::time::Duration,
    },
    /// The database is down, its pool exhausted or a statement timed out.
    #[error("the service cannot reach its database right now: retry shortly")]
    Unavailable(std::sync::Arc<DbErr>),
    #[error("internal error")]
    Internal(std::sync::Arc<anyhow::Error>),
    /// A subscriber fell `missed` events behind its buffer.
    #[error("you fell {0} events behind: subscribe again, and read events as they come")]
    SlowConsumer(u64),
    /// A DataLoader batch failed; the loader logged it once for all keys.
    #[error("internal error")]
    Batch(std::sync::Arc<DbErr>),
}

/// Resolver result.
pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Unauthenticated(_) => ErrorCode::Unauthenticated,
            Self::Forbidden(_) => ErrorCode::Forbidden,
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::Invalid(_) | Self::BadInput(_) => ErrorCode::BadUserInput,
            Self::Unavailable(_) => ErrorCode::Unavailable,
            Self::Overloaded(_) => ErrorCode::Overloaded,
            Self::Limited { code, .. } => *code,
            Self::SlowConsumer(_) => ErrorCode::SlowConsumer,
            Self::Internal(_) | Self::Batch(_) => ErrorCode::Internal,
        }
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::Forbidden(message.into())
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::NotFound(message.into())
    }

    pub fn bad_input(message: impl Into<String>) -> Self {
        Self::BadInput(message.into())
    }

    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid(vec![FieldError {
            field: field.into(),
            message: message.into(),
        }])
    }

    /// A rate limit (`RATE_LIMITED`) or quota (`QUOTA_EXCEEDED`) reached.
    pub fn limited(
        code: ErrorCode,
        message: impl Into<String>,
        retry_after: std::time::Duration,
    ) -> Self {
        Self::Limited {
            code,
            message: message.into(),
            retry_after,
        }
    }

    pub fn slow_consumer(missed: u64) -> Self {
        Self::SlowConsumer(missed)
    }

    pub fn internal(err: impl Into<anyhow::Error>) -> Self {
        Self::Internal(std::sync::Arc::new(err.into()))
    }
}

impl From<DbErr> for AppError {
    fn from(err: DbErr) -> Self {
        if crate::db::is_unavailable(&err) {
            Self::Unavailable(std::sync::Arc::new(err))
        } else {
            Self::internal(err)
        }
    }
}

/// DataLoaders share one error between every key of a batch (logged by
/// the loader).
impl From<std::sync::Arc<DbErr>> for AppError {
    fn from(err: std::sync::Arc<DbErr>) -> Self {
        if crate::db::is_unavailable(&err) {
            Self::Unavailable(err)
        } else {
            Self::Batch(err)
        }
    }
}

impl From<anyhow::Error> for AppError {
    fn from(err: anyhow::Error) -> Self {
        Self::internal(err)
    }
}

impl From<AppError> for async_graphql::Error {
    fn from(err: AppError) -> Self {
        let code = err.code();
        match &err {
            AppError::Internal(cause) => {
                tracing::error!(error = format!("{cause:#}"), "internal error in a resolver");
            }
            // Answered 503 and counted; a batch's cause is logged by its loader.
            AppError::Unavailable(cause) => {
                tracing::debug!(error = %cause, "the database could not serve a resolver");
            }
            _ => {}
        }
        let fields = match &err {
            AppError::Invalid(fields) => fields.clone(),
            _ => Vec::new(),
        };
        let retry_after = match &err {
            AppError::Limited { retry_after, .. } => Some(retry_after.as_secs().max(1)),
            _ => None,
        };
        async_graphql::Error::new(err.to_string()).extend_with(|_, ext| {
            ext.set("code", code.as_str());
            if let Some(secs) = retry_after {
                ext.set("retryAfter", secs);
            }
            if !fields.is_empty() {
                let list: Vec<async_graphql::Value> = fields
                    .iter()
                    .map(|f| {
                        let mut map = async_graphql::indexmap::IndexMap::new();
                        map.insert(
                            async_graphql::Name::new("field"),
                            async_graphql::Value::from(f.field.as_str()),
                        );
                        map.insert(
                            async_graphql::Name::new("message"),
                            async_graphql::Value::from(f.message.as_str()),
                        );
                        async_graphql::Value::Object(map)
                    })
                    .collect();
                ext.set("fields", async_graphql::Value::List(list));
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_screaming_snake_case() {
        let codes: std::collections::BTreeSet<&str> =
            ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(codes.len(), ErrorCode::ALL.len());
        assert!(
            codes
                .iter()
                .all(|c| c.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'))
        );
    }

    #[test]
    fn internal_errors_hide_their_cause_from_clients() {
        let err = AppError::from(DbErr::Custom("relation \"jobs\" does not exist".into()));
        let gql: async_graphql::Error = err.into();
        assert_eq!(gql.message, "internal error");
        let ext = format!("{:?}", gql.extensions);
        assert!(ext.contains("INTERNAL"), "{ext}");
        assert!(!ext.contains("relation"), "{ext}");
    }

    #[test]
    fn invalid_input_lists_every_field() {
        let err = AppError::Invalid(vec![
            FieldError {
                field: "input[0].title".into(),
                message: "must not be empty".into(),
            },
            FieldError {
                field: "input[2].url".into(),
                message: "must be http(s)".into(),
            },
        ]);
        assert_eq!(err.to_string(), "input[0].title: must not be empty");
        let gql: async_graphql::Error = err.into();
        let ext = format!("{:?}", gql.extensions);
        assert!(ext.contains("input[2].url"), "{ext}");
        assert!(ext.contains("BAD_USER_INPUT"), "{ext}");
    }
}
