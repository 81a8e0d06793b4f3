//! `POST /graphql` and `GET /graphql` per the GraphQL-over-HTTP spec: the
//! protocol only. Content negotiation (406/415), the body limit (413),
//! the token (401), and the mapping of an [`Answer`] to a status: 405 +
//! `Allow: POST` for a GET mutation, 400 for a request that is not
//! GraphQL; for `application/graphql-response+json`, 400 for a document
//! that does not parse, validate or coerce its variables and 422 for one
//! beyond a limit — all three 200 for `application/json` clients, as the
//! spec asks for legacy clients. What runs in between is
//! [`crate::graphql::execution`].

use std::net::{IpAddr, SocketAddr};

use axum::{
    body::{Body, Bytes},
    extract::{ConnectInfo, Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::Response,
};

use super::{client_addr, graphiql, sse, state::AppState, websocket};
use crate::{
    auth::TokenSubject,
    error::ErrorCode,
    graphql::execution::{Answer, Outcome, Source, error_body},
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
    for (mime, q) in super::weighted::items(accept) {
        if q <= 0.0 {
            continue;
        }
        // Prefer the spec's own type when the client is indifferent.
        let candidate = match mime.as_str() {
            "application/graphql-response+json" => (2, MediaType::GraphqlResponse),
            "application/json" => (1, MediaType::Json),
            // An indifferent client is taken for a legacy one (the spec's
            // SHOULD): it gets `application/json`.
            "*/*" | "application/*" => (0, MediaType::Json),
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
pub fn error_response(
    status: StatusCode,
    media: MediaType,
    code: ErrorCode,
    message: &str,
) -> Response {
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
    // Accept-Encoding too: the compression layer may encode the body.
    headers.insert(
        header::VARY,
        HeaderValue::from_static("Accept, Authorization, Accept-Encoding"),
    );
    if let Some(cache) = cache {
        headers.insert("x-cache", HeaderValue::from_static(cache));
    }
    response
}

/// Whether an answer may be kept by the browser: only a query sent over
/// GET, with the `If-None-Match` it came with.
#[derive(Debug, Clone, Copy)]
enum Conditional<'a> {
    No,
    Get { if_none_match: Option<&'a str> },
}

/// The HTTP form of an answer.
fn answer_response(answer: Answer, media: MediaType) -> Response {
    conditional_response(answer, media, Conditional::No)
}

/// [`answer_response`] for a GET: a stored answer gets
/// `Cache-Control: private, max-age=<lifetime left>` and a weak `ETag`
/// naming its entry and generations; `If-None-Match` with a current tag
/// gets a 304 without a body.
fn conditional_response(answer: Answer, media: MediaType, conditional: Conditional) -> Response {
    let validator = match conditional {
        Conditional::Get { if_none_match } if answer.outcome == Outcome::Executed => answer
            .validator
            .map(|v| (v, if_none_match))
            .filter(|(v, _)| v.remaining_secs() > 0),
        _ => None,
    };
    let legacy = media == MediaType::Json;
    let status = match answer.outcome {
        Outcome::Executed => StatusCode::OK,
        // GraphQL request errors: a legacy client reads them from the body.
        Outcome::ParseFailed | Outcome::Invalid | Outcome::Refused if legacy => StatusCode::OK,
        Outcome::BadRequest | Outcome::ParseFailed | Outcome::Invalid => StatusCode::BAD_REQUEST,
        Outcome::Refused => StatusCode::UNPROCESSABLE_ENTITY,
        Outcome::MutationOverGet => StatusCode::METHOD_NOT_ALLOWED,
        Outcome::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Outcome::Limited(_) => StatusCode::TOO_MANY_REQUESTS,
        Outcome::Unauthenticated => StatusCode::UNAUTHORIZED,
    };
    let cache = answer.cache.map(|c| c.label());
    if let Some((validator, if_none_match)) = validator {
        let etag = HeaderValue::from_str(&format!("W/\"{:032x}\"", validator.tag))
            .unwrap_or_else(|_| HeaderValue::from_static("W/\"0\""));
        let control =
            HeaderValue::from_str(&format!("private, max-age={}", validator.remaining_secs()))
                .unwrap_or_else(|_| HeaderValue::from_static("no-store"));
        let body = if if_none_match.is_some_and(|tags| etag_matches(tags, &etag)) {
            None
        } else {
            Some(answer.body)
        };
        let mut response = match body {
            Some(body) => respond(status, media, body, cache),
            None => {
                let mut response = respond(StatusCode::NOT_MODIFIED, media, Bytes::new(), cache);
                response.headers_mut().remove(header::CONTENT_TYPE);
                response
            }
        };
        let headers = response.headers_mut();
        headers.insert(header::ETAG, etag);
        headers.insert(header::CACHE_CONTROL, control);
        return response;
    }
    let mut response = respond(status, media, answer.body, cache);
    if answer.errors > 0 {
        response.extensions_mut().insert(super::AnsweredWithErrors);
    }
    match answer.outcome {
        Outcome::MutationOverGet => {
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("POST"));
        }
        Outcome::Unavailable => {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        Outcome::Limited(secs) => {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        Outcome::Unauthenticated => {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        _ => {}
    }
    response
}

fn not_acceptable() -> Response {
    error_response(
        StatusCode::NOT_ACCEPTABLE,
        MediaType::Json,
        ErrorCode::NotAcceptable,
        "Accept must allow application/graphql-response+json or application/json",
    )
}

/// `POST /graphql`: a JSON body holding one request or a batch.
pub async fn post(State(state): State<AppState>, request: Request) -> Response {
    // `Accept: text/event-stream`: the answer is a stream (SSE).
    let events = sse::wants_events(request.headers());
    let media = match negotiate(request.headers()) {
        Some(media) => media,
        None if events => MediaType::GraphqlResponse,
        None => return not_acceptable(),
    };
    if !is_json(request.headers()) {
        return error_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            media,
            ErrorCode::UnsupportedMediaType,
            "the body must be application/json",
        );
    }
    let (parts, body) = request.into_parts();
    let limit = state.config().limits.max_body_bytes;
    let read_timeout = state.config().http.body_read_timeout;
    let bytes: Bytes =
        match tokio::time::timeout(read_timeout, axum::body::to_bytes(body, limit)).await {
            Ok(Ok(bytes)) => bytes,
            Ok(Err(_)) => {
                return error_response(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    media,
                    ErrorCode::PayloadTooLarge,
                    &format!("the body is larger than {limit} bytes"),
                );
            }
            Err(_) => {
                let mut response = error_response(
                    StatusCode::REQUEST_TIMEOUT,
                    media,
                    ErrorCode::RequestTimeout,
                    &format!(
                        "the body did not arrive within {} ms (BODY_READ_TIMEOUT_MS)",
                        read_timeout.as_millis()
                    ),
                );
                response
                    .headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
                return response;
            }
        };
    if events {
        let client = client_of(&state, &parts);
        return sse::respond(state.clone(), &parts.headers, bytes, client).await;
    }
    let token = match verify_token(&state, &parts.headers, media) {
        Ok(token) => token,
        Err(response) => return *response,
    };
    admitted(&state, async {
        let client = client_of(&state, &parts);
        run(
            &state,
            Source::Body(bytes),
            token,
            client,
            media,
            Conditional::No,
        )
        .await
    })
    .await
}

/// Sheds load: beyond `MAX_IN_FLIGHT_REQUESTS` GraphQL requests running at
/// once, the next waits a bounded time for a slot and is then answered 503,
/// rather than queued without bound. A slot is taken only once the body has
/// arrived, so clients that send slowly cannot hold the slots of others.
async fn admitted(state: &AppState, work: impl Future<Output = Response>) -> Response {
    let Some(permit) = state.admit().await else {
        return overloaded();
    };
    let _counted = InFlight::enter(&state.metrics().http_in_flight);
    let response = work.await;
    drop(permit);
    response
}

/// Counts a running request for as long as it lives (also when its future
/// is dropped half-way).
struct InFlight<'a>(&'a prometheus_client::metrics::gauge::Gauge);

impl<'a> InFlight<'a> {
    fn enter(gauge: &'a prometheus_client::metrics::gauge::Gauge) -> Self {
        gauge.inc();
        Self(gauge)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Whether `If-None-Match` names `etag` (weak comparison, `*` for any).
fn etag_matches(if_none_match: &str, etag: &HeaderValue) -> bool {
    let opaque = |tag: &str| -> String { tag.trim().trim_start_matches("W/").to_owned() };
    let ours = opaque(etag.to_str().unwrap_or_default());
    if_none_match
        .split(',')
        .any(|tag| tag.trim() == "*" || opaque(tag) == ours)
}

/// Runs a request within `REQUEST_TIMEOUT_MS` (504 after it).
async fn run(
    state: &AppState,
    source: Source,
    token: Option<TokenSubject>,
    client: Option<IpAddr>,
    media: MediaType,
    conditional: Conditional<'_>,
) -> Response {
    let limit = state.config().http.request_timeout;
    match tokio::time::timeout(limit, state.executor().run(source, token, client)).await {
        Ok(answer) => conditional_response(answer, media, conditional),
        Err(_) => error_response(
            StatusCode::GATEWAY_TIMEOUT,
            media,
            ErrorCode::Timeout,
            &format!(
                "the request did not finish within {} ms (REQUEST_TIMEOUT_MS)",
                limit.as_millis()
            ),
        ),
    }
}

/// 503 for a request beyond `MAX_IN_FLIGHT_REQUESTS`.
pub fn overloaded() -> Response {
    unavailable(
        MediaType::Json,
        ErrorCode::Overloaded,
        "the service is at capacity: retry shortly",
    )
}

/// 503 with `Retry-After`.
fn unavailable(media: MediaType, code: ErrorCode, message: &str) -> Response {
    let mut response = error_response(StatusCode::SERVICE_UNAVAILABLE, media, code, message);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

/// `GET /graphql`: a query in the URL, or GraphiQL for a browser.
pub async fn get(State(state): State<AppState>, request: Request) -> Response {
    let (parts, _) = request.into_parts();
    if websocket::is_upgrade(&parts) {
        let client = client_of(&state, &parts);
        return websocket::upgrade(state, parts, client).await;
    }
    let headers = &parts.headers;
    let query = parts.uri.query().unwrap_or_default().to_owned();
    if wants_html(headers) && !query.split('&').any(|kv| kv.starts_with("query=")) {
        return graphiql::page();
    }
    let Some(media) = negotiate(headers) else {
        return not_acceptable();
    };
    let token = match verify_token(&state, headers, media) {
        Ok(token) => token,
        Err(response) => return *response,
    };
    let if_none_match = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok());
    admitted(&state, async {
        let client = client_of(&state, &parts);
        let conditional = Conditional::Get { if_none_match };
        run(
            &state,
            Source::Query(query),
            token,
            client,
            media,
            conditional,
        )
        .await
    })
    .await
}

/// The caller's address (the server puts the socket's peer into every
/// request; `TRUSTED_PROXIES` may let `X-Forwarded-For` refine it).
fn client_of(state: &AppState, parts: &axum::http::request::Parts) -> Option<IpAddr> {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    client_addr::resolve(peer, &parts.headers, &state.config().abuse.trusted_proxies)
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

/// Checks the bearer token's signature (no I/O: the executor resolves it
/// to a current viewer); a malformed or invalid token is a 401, not an
/// anonymous call.
fn verify_token(
    state: &AppState,
    headers: &HeaderMap,
    media: MediaType,
) -> Result<Option<TokenSubject>, Box<Response>> {
    let header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    state.auth().verify(header).map_err(|reason| {
        Box::new(answer_response(
            Answer::error(
                Outcome::Unauthenticated,
                ErrorCode::Unauthenticated,
                &reason.to_string(),
            ),
            media,
        ))
    })
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
        assert_eq!(negotiate(&accept("*/*")), Some(MediaType::Json));
        assert_eq!(
            negotiate(&accept("application/graphql-response+json, */*;q=0.5")),
            Some(MediaType::GraphqlResponse)
        );
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

#[cfg(test)]
mod etag_tests {
    use super::*;

    #[test]
    fn if_none_match_compares_weakly_and_takes_lists_and_any() {
        let etag = HeaderValue::from_static("W/\"abc\"");
        assert!(etag_matches("W/\"abc\"", &etag));
        assert!(etag_matches("\"abc\"", &etag));
        assert!(etag_matches("\"x\", W/\"abc\"", &etag));
        assert!(etag_matches("*", &etag));
        assert!(!etag_matches("W/\"abd\"", &etag));
        assert!(!etag_matches("", &etag));
    }
}
