//! `POST /graphql` and `GET /graphql` per the GraphQL-over-HTTP spec.
//!
//! async-graphql-axum's stock extractor runs mutations sent over GET, answers
//! parse and validation failures with 200, ignores `Accept` and takes
//! unbounded batches. This thin layer fixes all four: 405 + `Allow: POST` for
//! a GET mutation, 400 for an unparseable request, 422 for a document that
//! fails validation, 406/415 from content negotiation, and a cap on batch
//! size and body size.

use async_graphql::{
    BatchRequest, BatchResponse, ParseRequestError, Request as GqlRequest, Response as GqlResponse,
    ServerError,
    http::parse_query_string,
    parser::types::{DocumentOperations, OperationType},
};
use async_graphql_axum::GraphQLBatchRequest;
use axum::{
    body::{Body, Bytes},
    extract::{FromRequest, RawQuery, Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::json;

use super::graphiql;
use crate::{
    app::AppState,
    auth::{AuthResolveError, Viewer},
    cache::{self, CacheKind, Computed, Lookup, Plan, Purpose, Scope, WarmSpec},
    graphql::context::Session,
};

/// The two response media types of the spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaType {
    GraphqlResponse,
    Json,
}

impl MediaType {
    fn header(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            Self::GraphqlResponse => "application/graphql-response+json; charset=utf-8",
            Self::Json => "application/json; charset=utf-8",
        })
    }
}

/// Picks the response media type from `Accept` (q-values honoured). No
/// `Accept` means `application/json`, as the spec asks for legacy clients.
pub fn negotiate(headers: &HeaderMap) -> Option<MediaType> {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Some(MediaType::Json);
    };
    if accept.trim().is_empty() {
        return Some(MediaType::Json);
    }
    let mut best: Option<(f32, u8, MediaType)> = None;
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let mime = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        if q <= 0.0 {
            continue;
        }
        // Prefer the spec's own type when the client is indifferent.
        let candidate = match mime.as_str() {
            "application/graphql-response+json" => (2, MediaType::GraphqlResponse),
            "application/json" => (1, MediaType::Json),
            "*/*" | "application/*" => (0, MediaType::GraphqlResponse),
            _ => continue,
        };
        let better = match best {
            None => true,
            Some((bq, bp, _)) => q > bq || (q == bq && candidate.0 > bp),
        };
        if better {
            best = Some((q, candidate.0, candidate.1));
        }
    }
    best.map(|(_, _, m)| m)
}

/// A request-level error: `{"errors":[{"message","extensions":{"code"}}]}`.
pub fn error_response(status: StatusCode, media: MediaType, code: &str, message: &str) -> Response {
    respond(status, media, error_body(code, message), None)
}

/// A GraphQL response; `X-Cache` says HIT, MISS or BYPASS on cacheable requests.
fn respond(
    status: StatusCode,
    media: MediaType,
    body: Bytes,
    cache: Option<&'static str>,
) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, media.header());
    // Answers depend on the caller's token: no shared cache may keep them.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::VARY,
        HeaderValue::from_static("Accept, Authorization"),
    );
    if let Some(cache) = cache {
        headers.insert("x-cache", HeaderValue::from_static(cache));
    }
    response
}

fn not_acceptable() -> Response {
    let mut response = error_response(
        StatusCode::NOT_ACCEPTABLE,
        MediaType::Json,
        "NOT_ACCEPTABLE",
        "Accept must allow application/graphql-response+json or application/json",
    );
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, MediaType::Json.header());
    response
}

/// `POST /graphql`: a JSON body holding one request or a batch.
pub async fn post(State(state): State<AppState>, request: Request) -> Response {
    let Some(media) = negotiate(request.headers()) else {
        return not_acceptable();
    };
    if !is_json(request.headers()) {
        return error_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            media,
            "UNSUPPORTED_MEDIA_TYPE",
            "the body must be application/json",
        );
    }
    let (parts, body) = request.into_parts();
    let limit = state.config().limits.max_body_bytes;
    let bytes: Bytes = match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return error_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                media,
                "PAYLOAD_TOO_LARGE",
                &format!("the body is larger than {limit} bytes"),
            );
        }
    };
    let viewer = match authenticate(&state, &parts.headers, media).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    let source = Source::Body(bytes, parts.headers);
    if let Some(viewer) = viewer
        && state.cache().enabled()
        && source.is_single()
    {
        return cached(&state, source, viewer, media, Purpose::Client).await;
    }
    let batch = match source.decode_batch().await {
        Ok(batch) => batch,
        Err(message) => {
            return error_response(StatusCode::BAD_REQUEST, media, "BAD_REQUEST", &message);
        }
    };
    match batch {
        BatchRequest::Single(request) => {
            execute_single(&state, request, viewer, media, false).await
        }
        BatchRequest::Batch(requests) => {
            let max = state.config().limits.max_batch_operations;
            if requests.is_empty() || requests.len() > max {
                return error_response(
                    StatusCode::BAD_REQUEST,
                    media,
                    "BATCH_LIMIT",
                    &format!(
                        "a batch holds 1 to {max} operations, not {}",
                        requests.len()
                    ),
                );
            }
            let mut responses = Vec::with_capacity(requests.len());
            for request in requests {
                let (_, response) = run(&state, request, viewer).await;
                responses.push(response);
            }
            let body = serde_json::to_vec(&BatchResponse::Batch(responses)).unwrap_or_default();
            respond(StatusCode::OK, media, body.into(), None)
        }
    }
}

/// Why async-graphql-axum could not decode a body.
struct BodyRejection(ParseRequestError);

impl From<ParseRequestError> for BodyRejection {
    fn from(err: ParseRequestError) -> Self {
        Self(err)
    }
}

impl IntoResponse for BodyRejection {
    fn into_response(self) -> Response {
        error_response(
            StatusCode::BAD_REQUEST,
            MediaType::Json,
            "BAD_REQUEST",
            &self.0.to_string(),
        )
    }
}

/// A request as it arrived: a POST body or a GET query string. Its raw
/// bytes are the cache key, so a cache hit never even decodes the JSON.
enum Source {
    Body(Bytes, HeaderMap),
    Query(String),
}

impl Source {
    fn raw(&self) -> &[u8] {
        match self {
            Self::Body(bytes, _) => bytes,
            Self::Query(query) => query.as_bytes(),
        }
    }

    /// The raw bytes, owned (a body is shared, not copied).
    fn raw_bytes(&self) -> Bytes {
        match self {
            Self::Body(bytes, _) => bytes.clone(),
            Self::Query(query) => Bytes::copy_from_slice(query.as_bytes()),
        }
    }

    /// A JSON object, not a batch array.
    fn is_single(&self) -> bool {
        match self {
            Self::Body(bytes, _) => bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{'),
            Self::Query(_) => true,
        }
    }

    /// Decodes with async-graphql-axum; our layer has already checked the
    /// method, media types and size around it.
    async fn decode_batch(&self) -> Result<BatchRequest, String> {
        match self {
            Self::Body(bytes, headers) => {
                let mut request = Request::new(Body::from(bytes.clone()));
                *request.method_mut() = axum::http::Method::POST;
                if let Some(ct) = headers.get(header::CONTENT_TYPE) {
                    request
                        .headers_mut()
                        .insert(header::CONTENT_TYPE, ct.clone());
                }
                GraphQLBatchRequest::<BodyRejection>::from_request(request, &())
                    .await
                    .map(GraphQLBatchRequest::into_inner)
                    .map_err(|BodyRejection(e)| format!("the body is not a GraphQL request: {e}"))
            }
            Self::Query(query) => {
                let mut request = parse_query_string(query)
                    .map_err(|e| format!("the query string is not a GraphQL request: {e}"))?;
                if request.operation_name.is_none() {
                    request.operation_name = operation_name_param(query);
                }
                Ok(BatchRequest::Single(request))
            }
        }
    }

    async fn decode(&self) -> Result<GqlRequest, String> {
        match self.decode_batch().await? {
            BatchRequest::Single(request) => Ok(request),
            BatchRequest::Batch(_) => Err("expected one request, not a batch".to_owned()),
        }
    }
}

/// `GET /graphql`: a query in the URL, or GraphiQL for a browser.
pub async fn get(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let query = query.unwrap_or_default();
    if wants_html(&headers) && !query.split('&').any(|kv| kv.starts_with("query=")) {
        return graphiql::page();
    }
    let Some(media) = negotiate(&headers) else {
        return not_acceptable();
    };
    let viewer = match authenticate(&state, &headers, media).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    let source = Source::Query(query);
    if let Some(viewer) = viewer
        && state.cache().enabled()
    {
        return cached(&state, source, viewer, media, Purpose::Client).await;
    }
    match source.decode().await {
        Ok(request) => execute_single(&state, request, viewer, media, true).await,
        Err(message) => error_response(StatusCode::BAD_REQUEST, media, "BAD_REQUEST", &message),
    }
}

/// The cache path for one authenticated request: plan (once per distinct
/// request), one round trip to look up, and on a miss one execution shared
/// by every concurrent identical request.
async fn cached(
    state: &AppState,
    source: Source,
    viewer: Viewer,
    media: MediaType,
    purpose: Purpose,
) -> Response {
    let over_get = matches!(source, Source::Query(_));
    let cache = state.cache();
    let hash = cache::request_hash(source.raw());
    let mut decoded: Option<GqlRequest> = None;
    let bad_request =
        |message: String| error_response(StatusCode::BAD_REQUEST, media, "BAD_REQUEST", &message);
    let plan = match cache.known_plan(hash) {
        Some(plan) => plan,
        None => {
            let mut request = match source.decode().await {
                Ok(request) => request,
                Err(message) => return bad_request(message),
            };
            let operation = request.operation_name.take();
            let variables = std::mem::take(&mut request.variables);
            let plan = match request.parsed_query() {
                Ok(doc) => cache::analysis::plan(doc, operation.as_deref(), &variables),
                Err(_) => Plan::Bypass,
            };
            request.operation_name = operation;
            request.variables = variables;
            decoded = Some(request);
            cache.remember_plan(hash, plan)
        }
    };
    let decode = |decoded: Option<GqlRequest>| async {
        match decoded {
            Some(request) => Ok(request),
            None => source.decode().await,
        }
    };
    let Plan::Cache(plan) = &*plan else {
        return match decode(decoded).await {
            Ok(request) => execute_single(state, request, Some(viewer), media, over_get).await,
            Err(message) => bad_request(message),
        };
    };
    let scope = Scope {
        team_id: viewer.team_id,
        role: viewer.role,
        user_id: viewer.user_id,
    };
    match cache.lookup(hash, plan, &scope, purpose).await {
        Lookup::Hit(body) => respond(StatusCode::OK, media, body, Some("HIT")),
        Lookup::Bypass => match decode(decoded).await {
            Ok(request) => {
                let (status, body, _) = execute(state, request, Some(viewer), over_get).await;
                respond(status, media, body, Some("BYPASS"))
            }
            Err(message) => bad_request(message),
        },
        Lookup::Miss(ticket) => {
            // Team-wide reads are worth recomputing after a write; one job's
            // detail is not (a write to another job leaves it valid).
            if purpose == Purpose::Client && !plan.kinds.contains(&CacheKind::JobDetail) {
                cache.note_warmable(WarmSpec {
                    raw: source.raw_bytes(),
                    over_get,
                    scope,
                });
            }
            let request = match decode(decoded).await {
                Ok(request) => request,
                Err(message) => return bad_request(message),
            };
            let computed = cache
                .fill(ticket, || async {
                    let (status, body, clean) =
                        execute(state, request, Some(viewer), over_get).await;
                    Computed {
                        status: status.as_u16(),
                        body,
                        cacheable: clean,
                    }
                })
                .await;
            let status = StatusCode::from_u16(computed.status).unwrap_or(StatusCode::OK);
            respond(status, media, computed.body.clone(), Some("MISS"))
        }
    }
}

/// Replays a team's recent team-wide reads (`jobStats`, lists, the log)
/// through the cache so the next read after a write is a hit; returns how
/// many were recomputed.
pub async fn warm_team(state: &AppState, team_id: i64) -> usize {
    let mut warmed = 0;
    for spec in state.cache().warmable(team_id) {
        let viewer = Viewer {
            user_id: spec.scope.user_id,
            team_id: spec.scope.team_id,
            role: spec.scope.role,
        };
        let source = if spec.over_get {
            Source::Query(String::from_utf8_lossy(&spec.raw).into_owned())
        } else {
            let mut headers = HeaderMap::new();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            Source::Body(spec.raw, headers)
        };
        let response = cached(state, source, viewer, MediaType::Json, Purpose::Refresh).await;
        if response
            .headers()
            .get("x-cache")
            .is_some_and(|v| v == "MISS")
        {
            warmed += 1;
        }
    }
    warmed
}

/// The `operationName` URL parameter of the GraphQL-over-HTTP spec.
#[derive(serde::Deserialize)]
struct OperationNameParam {
    #[serde(rename = "operationName")]
    operation_name: Option<String>,
}

/// async-graphql's `parse_query_string` reads only `operation_name`, so a GET
/// naming one of several operations the spec's way was refused as if it
/// named none; read `operationName` here.
fn operation_name_param(query: &str) -> Option<String> {
    let uri: axum::http::Uri = format!("/?{query}").parse().ok()?;
    axum::extract::Query::<OperationNameParam>::try_from_uri(&uri)
        .ok()?
        .0
        .operation_name
        .filter(|name| !name.is_empty())
}

fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let mut parts = value.split(';');
    let mime = parts.next().unwrap_or("").trim();
    let charset_ok = parts
        .filter_map(|p| {
            p.trim()
                .to_ascii_lowercase()
                .strip_prefix("charset=")
                .map(str::to_owned)
        })
        .all(|c| c.trim_matches('"') == "utf-8");
    mime.eq_ignore_ascii_case("application/json") && charset_ok
}

fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"))
}

/// Resolves the bearer token; a refused token is a 401, not an anonymous call.
async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    media: MediaType,
) -> Result<Option<Viewer>, Response> {
    let header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match state.auth().authenticate(state.db(), header).await {
        Ok(viewer) => Ok(viewer),
        Err(AuthResolveError::Refused(reason)) => {
            let mut response = error_response(
                StatusCode::UNAUTHORIZED,
                media,
                "UNAUTHENTICATED",
                &reason.to_string(),
            );
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            Err(response)
        }
        Err(AuthResolveError::Database(e)) => {
            tracing::error!(
                error = format!("{e:#}"),
                "checking a token against the database failed"
            );
            Err(error_response(
                StatusCode::SERVICE_UNAVAILABLE,
                media,
                "INTERNAL",
                "the service cannot check your token right now",
            ))
        }
    }
}

/// How a single request ended, for the status code.
enum Outcome {
    /// Executed (possibly with field errors): 200.
    Executed,
    /// The document did not parse: 400.
    ParseFailed,
    /// The document failed validation (or named no runnable operation): 422.
    Invalid,
}

async fn execute_single(
    state: &AppState,
    request: GqlRequest,
    viewer: Option<Viewer>,
    media: MediaType,
    over_get: bool,
) -> Response {
    let (status, body, _) = execute(state, request, viewer, over_get).await;
    let mut response = respond(status, media, body, None);
    if status == StatusCode::METHOD_NOT_ALLOWED {
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
    }
    response
}

/// Runs one request to its status and body. The flag says whether the
/// answer may be cached: executed without any error and without a `null`
/// root field (a job that does not exist yet must not be remembered).
async fn execute(
    state: &AppState,
    request: GqlRequest,
    viewer: Option<Viewer>,
    over_get: bool,
) -> (StatusCode, Bytes, bool) {
    let mut request = request;
    if over_get {
        match operation_type(&mut request) {
            Ok(Some(OperationType::Mutation)) => {
                let body = error_body("METHOD_NOT_ALLOWED", "mutations must be sent with POST");
                return (StatusCode::METHOD_NOT_ALLOWED, body, false);
            }
            Ok(_) => {}
            Err(mut e) => {
                tag(&mut e, "GRAPHQL_PARSE_FAILED");
                let body = json!({ "errors": [e] }).to_string().into_bytes().into();
                return (StatusCode::BAD_REQUEST, body, false);
            }
        }
    }
    let (outcome, response) = run(state, request, viewer).await;
    let status = match outcome {
        Outcome::Executed => StatusCode::OK,
        Outcome::ParseFailed => StatusCode::BAD_REQUEST,
        Outcome::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
    };
    if status != StatusCode::OK {
        // Request errors carry no `data` at all, per the spec.
        let body = json!({ "errors": response.errors })
            .to_string()
            .into_bytes()
            .into();
        return (status, body, false);
    }
    let null_root = match &response.data {
        async_graphql::Value::Object(fields) => {
            fields.values().any(|v| *v == async_graphql::Value::Null)
        }
        _ => true,
    };
    let clean = response.errors.is_empty() && !null_root;
    let body = serde_json::to_vec(&response).unwrap_or_default();
    (status, body.into(), clean)
}

fn error_body(code: &str, message: &str) -> Bytes {
    json!({ "errors": [{ "message": message, "extensions": { "code": code } }] })
        .to_string()
        .into_bytes()
        .into()
}

/// Gives an error a code unless it has one.
fn tag(error: &mut ServerError, code: &str) {
    let ext = error.extensions.get_or_insert_with(Default::default);
    if ext.get("code").is_none() {
        ext.set("code", code);
    }
}

/// The type of the operation the request will run, parsing it once.
fn operation_type(request: &mut GqlRequest) -> Result<Option<OperationType>, ServerError> {
    let name = request.operation_name.clone();
    let doc = request.parsed_query()?;
    Ok(match (&doc.operations, name) {
        (DocumentOperations::Single(op), _) => Some(op.node.ty),
        (DocumentOperations::Multiple(ops), Some(name)) => {
            ops.get(name.as_str()).map(|op| op.node.ty)
        }
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => {
            ops.values().next().map(|op| op.node.ty)
        }
        _ => None,
    })
}

/// Parses, attaches the viewer and a fresh set of loaders, and executes.
async fn run(
    state: &AppState,
    mut request: GqlRequest,
    viewer: Option<Viewer>,
) -> (Outcome, GqlResponse) {
    if let Err(mut error) = request.parsed_query().map(|_| ()) {
        tag(&mut error, "GRAPHQL_PARSE_FAILED");
        return (Outcome::ParseFailed, GqlResponse::from_errors(vec![error]));
    }
    request = request.data(Session::new(state.db().clone(), viewer));
    let mut response = state.schema().execute(request).await;
    let request_failed = !response.errors.is_empty()
        && response.data == async_graphql::Value::Null
        && response.errors.iter().all(|e| e.path.is_empty());
    if request_failed {
        for error in &mut response.errors {
            tag(error, "GRAPHQL_VALIDATION_FAILED");
        }
        return (Outcome::Invalid, response);
    }
    // Resolver errors always carry a code; the only ones without are
    // async-graphql's own argument coercion failures found while executing
    // (a `DateTime` literal that does not parse, say): the client's input.
    for error in &mut response.errors {
        tag(error, "BAD_USER_INPUT");
    }
    (Outcome::Executed, response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn accept_chooses_the_media_type() {
        assert_eq!(negotiate(&HeaderMap::new()), Some(MediaType::Json));
        assert_eq!(
            negotiate(&accept("application/json")),
            Some(MediaType::Json)
        );
        assert_eq!(negotiate(&accept("*/*")), Some(MediaType::GraphqlResponse));
        assert_eq!(
            negotiate(&accept(
                "application/graphql-response+json, application/json;q=0.9"
            )),
            Some(MediaType::GraphqlResponse)
        );
        assert_eq!(
            negotiate(&accept(
                "application/graphql-response+json;q=0.5, application/json"
            )),
            Some(MediaType::Json)
        );
        assert_eq!(negotiate(&accept("text/html")), None);
        assert_eq!(negotiate(&accept("application/json;q=0")), None);
    }
}
