//! Subscriptions (and queries and mutations) over Server-Sent Events:
//! `POST /graphql` with `Accept: text/event-stream` and the usual JSON
//! body, the token in `Authorization` — the `graphql-sse` client's
//! distinct-connections mode. Results come as `event: next`, the end as
//! `event: complete`; a comment line keeps the stream alive every
//! `WS_PING_INTERVAL_MS`. A request that fails as a whole before any
//! result (parse, validation, a limit) is answered as a plain GraphQL
//! error response instead.

use std::{convert::Infallible, net::IpAddr, sync::Arc};

use axum::{
    body::{Body, Bytes},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::Response,
};
use futures::{FutureExt, StreamExt, stream};
use tokio::sync::mpsc;

use super::{
    AppState,
    graphql::{MediaType, error_response},
    live::{Caller, Refused},
};
use crate::{error::ErrorCode, graphql::execution::Delivery};

/// Whether the client asks for an event stream.
pub fn wants_events(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/event-stream"))
}

/// Answers a POST that asked for an event stream.
pub async fn respond(
    state: AppState,
    headers: &HeaderMap,
    body: Bytes,
    client: Option<IpAddr>,
) -> Response {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let mut caller = match Caller::sign_in(&state, authorization).await {
        Ok(caller) => caller,
        Err(refused) => return refused_response(&refused),
    };
    let request: async_graphql::Request = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(error) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                MediaType::GraphqlResponse,
                ErrorCode::BadRequest,
                &format!("the body is not a GraphQL request: {error}"),
            );
        }
    };
    let executor = Arc::clone(state.executor());
    let mut results = executor.stream(request, caller.viewer, client).await;
    // A request that fails as a whole fails at once: a plain answer.
    let first = match results.next().now_or_never() {
        Some(Some(Delivery::Error(errors))) => {
            let mut body = b"{\"errors\":".to_vec();
            body.extend_from_slice(&errors);
            body.push(b'}');
            let mut response = Response::new(Body::from(body));
            *response.status_mut() = StatusCode::BAD_REQUEST;
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/graphql-response+json; charset=utf-8"),
            );
            return response;
        }
        Some(Some(delivery)) => Some(delivery),
        // Nothing yet (a subscription waiting for its first event).
        _ => None,
    };
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    // A first comment, so the client (and any proxy) sees the stream open
    // before the first event.
    let _ = tx.try_send(Bytes::from_static(b":\n\n"));
    let live = state.config().live.clone();
    let stopping = state.stopping().clone();
    let mut access = caller.watch_access(&state);
    tokio::spawn(async move {
        // Held until the stream ends: counts against the user's connections.
        let _caller = caller;
        let send = |chunk: Bytes| {
            let tx = tx.clone();
            async move {
                matches!(
                    tokio::time::timeout(live.send_timeout, tx.send(chunk)).await,
                    Ok(Ok(()))
                )
            }
        };
        let mut pending = first;
        let mut keep_alive = tokio::time::interval(live.ping_interval);
        keep_alive.reset();
        loop {
            let delivery = match pending.take() {
                Some(delivery) => Some(delivery),
                None => tokio::select! {
                    () = stopping.cancelled() => break,
                    _ = &mut access => break,
                    _ = keep_alive.tick() => {
                        if !send(Bytes::from_static(b":\n\n")).await { break }
                        continue;
                    }
                    delivery = results.next() => delivery,
                },
            };
            let Some(delivery) = delivery else {
                let _ = send(Bytes::from_static(b"event: complete\ndata:\n\n")).await;
                break;
            };
            let (data, last) = match delivery {
                Delivery::Next(body) => (body, false),
                Delivery::SlowConsumer(body) => (body, true),
                Delivery::Error(errors) => {
                    let mut body = b"{\"errors\":".to_vec();
                    body.extend_from_slice(&errors);
                    body.push(b'}');
                    (Bytes::from(body), true)
                }
            };
            let mut chunk = b"event: next\ndata: ".to_vec();
            chunk.extend_from_slice(&data);
            chunk.extend_from_slice(b"\n\n");
            if !send(Bytes::from(chunk)).await || last {
                break;
            }
        }
        access.abort();
    });
    let body = stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|chunk| (Ok::<_, Infallible>(chunk), rx))
    });
    let mut response = Response::new(Body::from_stream(body));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

fn refused_response(refused: &Refused) -> Response {
    match refused {
        Refused::Forbidden(reason) => {
            let mut response = error_response(
                StatusCode::UNAUTHORIZED,
                MediaType::GraphqlResponse,
                ErrorCode::Unauthenticated,
                reason,
            );
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            response
        }
        Refused::TooManyConnections(max) => {
            let mut response = error_response(
                StatusCode::TOO_MANY_REQUESTS,
                MediaType::GraphqlResponse,
                ErrorCode::RateLimited,
                &format!(
                    "too many open streams: at most {max} per user (SUBSCRIPTION_CONNECTIONS_PER_USER)"
                ),
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            response
        }
        Refused::Unavailable => {
            let mut response = error_response(
                StatusCode::SERVICE_UNAVAILABLE,
                MediaType::GraphqlResponse,
                ErrorCode::Unavailable,
                "the service cannot check your token right now: retry shortly",
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            response
        }
    }
}
