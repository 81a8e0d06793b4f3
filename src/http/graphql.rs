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

/// A request-level error body: `{"errors":[{"message","extensions":{"code"}}]}`.
pub fn error_response(status: StatusCode, media: MediaType, code: &str, message: &str) -> Response {
    let body = json!({ "errors": [{ "message": message, "extensions": { "code": code } }] });
    json_response(status, media, body.to_string().into_bytes())
}

fn json_response(status: StatusCode, media: MediaType, body: Vec<u8>) -> Response {
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
    // async-graphql-axum does the decoding; our layer has already checked
    // the method, media types and size around it.
    let headers = parts.headers.clone();
    let request = Request::from_parts(parts, Body::from(bytes));
    let batch = match GraphQLBatchRequest::<BodyRejection>::from_request(request, &()).await {
        Ok(batch) => batch.into_inner(),
        Err(BodyRejection(e)) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                media,
                "BAD_REQUEST",
                &format!("the body is not a GraphQL request: {e}"),
            );
        }
    };
    let viewer = match authenticate(&state, &headers, media).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
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
            json_response(StatusCode::OK, media, body)
        }
    }
}

/// Why async-graphql-axum could not decode a body (answered as a JSON 400).
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
    let mut request = match parse_query_string(&query) {
        Ok(request) => request,
        Err(e) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                media,
                "BAD_REQUEST",
                &format!("the query string is not a GraphQL request: {e}"),
            );
        }
    };
    if request.operation_name.is_none() {
        request.operation_name = operation_name_param(&query);
    }
    let viewer = match authenticate(&state, &headers, media).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    execute_single(&state, request, viewer, media, true).await
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
    let mut request = request;
    if over_get {
        match operation_type(&mut request) {
            Ok(Some(OperationType::Mutation)) => {
                let mut response = error_response(
                    StatusCode::METHOD_NOT_ALLOWED,
                    media,
                    "METHOD_NOT_ALLOWED",
                    "mutations must be sent with POST",
                );
                response
                    .headers_mut()
                    .insert(header::ALLOW, HeaderValue::from_static("POST"));
                return response;
            }
            Ok(_) => {}
            Err(e) => {
                return request_error(StatusCode::BAD_REQUEST, media, "GRAPHQL_PARSE_FAILED", e);
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
        let body = json!({ "errors": response.errors });
        return json_response(status, media, body.to_string().into_bytes());
    }
    let body = serde_json::to_vec(&response).unwrap_or_default();
    json_response(status, media, body)
}

fn request_error(
    status: StatusCode,
    media: MediaType,
    code: &str,
    mut error: ServerError,
) -> Response {
    tag(&mut error, code);
    let body = json!({ "errors": [error] });
    json_response(status, media, body.to_string().into_bytes())
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
