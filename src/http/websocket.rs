//! Subscriptions (and queries and mutations) over WebSocket with the
//! graphql-transport-ws protocol, on `GET /graphql` with
//! `Sec-WebSocket-Protocol: graphql-transport-ws` — what the `graphql-ws`
//! client and Apollo Client's `GraphQLWsLink` speak.
//!
//! The token comes in `connection_init`'s payload (`{"Authorization":
//! "Bearer …"}`) or the upgrade request's `Authorization` header. Close
//! codes: the protocol's own (4400 bad message, 4401 subscribe before the
//! ack, 4403 refused or revoked token, 4406 wrong subprotocol, 4408 no
//! `connection_init` in time, 4409 an id in use, 4429 a second
//! `connection_init`, 4500 the service failed), and 4001 idle (nothing
//! from the client for `WS_IDLE_TIMEOUT_MS`), 4002 slow consumer (events
//! lost, or a message not taken within `SUBSCRIPTION_SEND_TIMEOUT_MS`),
//! 4003 too many connections for the user, 1001 the replica is shutting
//! down, 1013 the service cannot check tokens right now.

use std::{collections::HashMap, net::IpAddr, time::Instant};

use axum::{
    extract::{
        FromRequestParts,
        ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade},
    },
    http::{header, request::Parts},
    response::{IntoResponse, Response},
};
use futures::{SinkExt, StreamExt, stream::SplitSink};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::{sync::mpsc, task::JoinHandle};

use super::{
    AppState,
    live::{Caller, Refused},
};
use crate::{error::ErrorCode, graphql::execution::Delivery};

/// The one subprotocol spoken (the `graphql-ws` library's; the older
/// subscriptions-transport-ws is not).
pub const PROTOCOL: &str = "graphql-transport-ws";

/// Close codes: the protocol's own (44xx), this service's (40xx) and the
/// standard ones; clients switch on them, so they are fixed.
pub mod close {
    pub const BAD_MESSAGE: u16 = 4400;
    pub const UNAUTHORIZED: u16 = 4401;
    pub const FORBIDDEN: u16 = 4403;
    pub const SUBPROTOCOL: u16 = 4406;
    pub const INIT_TIMEOUT: u16 = 4408;
    pub const ID_IN_USE: u16 = 4409;
    pub const TOO_MANY_INITS: u16 = 4429;
    pub const INTERNAL: u16 = 4500;
    pub const IDLE: u16 = 4001;
    pub const SLOW_CONSUMER: u16 = 4002;
    pub const TOO_MANY_CONNECTIONS: u16 = 4003;
    pub const GOING_AWAY: u16 = 1001;
    pub const TRY_AGAIN_LATER: u16 = 1013;
}

/// Whether a GET asks to become a WebSocket.
pub fn is_upgrade(parts: &Parts) -> bool {
    parts
        .headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// Upgrades the connection (the HTTP side of the handshake).
pub async fn upgrade(state: AppState, mut parts: Parts, client: Option<IpAddr>) -> Response {
    let ws = match WebSocketUpgrade::from_request_parts(&mut parts, &state).await {
        Ok(ws) => ws,
        Err(rejection) => return rejection.into_response(),
    };
    let header_token = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let max = state.config().limits.max_body_bytes;
    let ws = ws
        .protocols([PROTOCOL])
        .max_message_size(max)
        .max_frame_size(max);
    let speaks_protocol = ws.selected_protocol().is_some();
    ws.on_failed_upgrade(|error| tracing::debug!(%error, "a WebSocket upgrade failed"))
        .on_upgrade(move |socket| async move {
            if speaks_protocol {
                serve(state, socket, header_token, client).await;
            } else {
                close_socket(
                    socket,
                    close::SUBPROTOCOL,
                    "Subprotocol not acceptable: use graphql-transport-ws",
                )
                .await;
            }
        })
}

async fn close_socket(mut socket: WebSocket, code: u16, reason: &str) {
    let _ = socket.send(close_message(code, reason)).await;
}

fn close_message(code: u16, reason: &str) -> Message {
    // A close reason is at most 123 bytes.
    let mut reason = reason.to_owned();
    while reason.len() > 123 {
        reason.pop();
    }
    Message::Close(Some(CloseFrame {
        code,
        reason: Utf8Bytes::from(reason),
    }))
}

/// A message from the client.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ClientMessage {
    ConnectionInit {
        #[serde(default)]
        payload: Option<Value>,
    },
    Ping {
        #[serde(default)]
        payload: Option<Value>,
    },
    Pong {},
    Subscribe {
        id: String,
        payload: Box<async_graphql::Request>,
    },
    Complete {
        id: String,
    },
}

/// What an operation's task hands to the connection.
enum Outgoing {
    Send(Message),
    /// The operation ended (its `complete` or `error` was sent).
    Done(String),
    /// It lost events: the connection closes.
    SlowConsumer,
}

/// The token from `connection_init`'s payload: `Authorization`,
/// `authorization`, `headers.Authorization`, or `token`.
fn payload_token(payload: Option<&Value>) -> Option<String> {
    let payload = payload?;
    let direct = ["Authorization", "authorization"]
        .iter()
        .find_map(|k| payload.get(*k))
        .or_else(|| {
            payload.get("headers").and_then(|h| {
                ["Authorization", "authorization"]
                    .iter()
                    .find_map(|k| h.get(*k))
            })
        })
        .and_then(Value::as_str)
        .map(str::to_owned);
    direct.or_else(|| {
        payload
            .get("token")
            .and_then(Value::as_str)
            .map(|t| format!("Bearer {t}"))
    })
}

type Sink = SplitSink<WebSocket, Message>;

/// Sends within `SUBSCRIPTION_SEND_TIMEOUT_MS`; `false` when the client did
/// not take it (or is gone).
async fn send(sink: &mut Sink, state: &AppState, message: Message) -> bool {
    matches!(
        tokio::time::timeout(state.config().live.send_timeout, sink.send(message)).await,
        Ok(Ok(()))
    )
}

/// One connection, from `connection_init` to its close.
async fn serve(
    state: AppState,
    socket: WebSocket,
    header_token: Option<String>,
    client: Option<IpAddr>,
) {
    let live = state.config().live.clone();
    let (mut sink, mut incoming) = socket.split();
    // 1. `connection_init`, in time.
    let init = tokio::time::timeout(live.init_timeout, async {
        loop {
            match incoming.next().await {
                Some(Ok(Message::Text(text))) => break Some(text),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                _ => break None,
            }
        }
    })
    .await;
    let text = match init {
        Err(_) => {
            let _ = sink
                .send(close_message(
                    close::INIT_TIMEOUT,
                    "Connection initialisation timeout",
                ))
                .await;
            return;
        }
        Ok(None) => return,
        Ok(Some(text)) => text,
    };
    let payload = match serde_json::from_str::<ClientMessage>(&text) {
        Ok(ClientMessage::ConnectionInit { payload }) => payload,
        Ok(ClientMessage::Subscribe { .. }) => {
            let _ = sink
                .send(close_message(close::UNAUTHORIZED, "Unauthorized"))
                .await;
            return;
        }
        _ => {
            let _ = sink
                .send(close_message(
                    close::BAD_MESSAGE,
                    "expected connection_init",
                ))
                .await;
            return;
        }
    };
    let token = payload_token(payload.as_ref()).or(header_token);
    let mut caller = match Caller::sign_in(&state, token.as_deref()).await {
        Ok(caller) => caller,
        Err(refused) => {
            let _ = sink.send(refusal(&refused)).await;
            return;
        }
    };
    if !send(
        &mut sink,
        &state,
        Message::text(r#"{"type":"connection_ack"}"#),
    )
    .await
    {
        return;
    }

    // 2. Operations until either side ends it.
    let mut access = caller.watch_access(&state);
    let (out_tx, mut out_rx) = mpsc::channel::<Outgoing>(64);
    let mut operations: HashMap<String, JoinHandle<()>> = HashMap::new();
    let mut last_heard = Instant::now();
    let mut ping = tokio::time::interval(live.ping_interval);
    ping.reset();
    let stopping = state.stopping().clone();
    let mut client_closed = false;
    let end: Message = loop {
        tokio::select! {
            () = stopping.cancelled() => break close_message(close::GOING_AWAY, "the server is restarting"),
            refused = &mut access => match refused {
                Ok(refused) => break refusal(&refused),
                Err(_) => break close_message(close::INTERNAL, "internal error"),
            },
            _ = ping.tick() => {
                if last_heard.elapsed() >= live.idle_timeout {
                    break close_message(close::IDLE, "idle: nothing received in time");
                }
                if !send(&mut sink, &state, Message::Ping(Default::default())).await {
                    break close_message(close::SLOW_CONSUMER, "slow consumer");
                }
            }
            out = out_rx.recv() => match out {
                Some(Outgoing::Send(message)) => {
                    if !send(&mut sink, &state, message).await {
                        break close_message(close::SLOW_CONSUMER, "slow consumer: a message was not taken in time");
                    }
                }
                Some(Outgoing::Done(id)) => { operations.remove(&id); }
                Some(Outgoing::SlowConsumer) => {
                    break close_message(close::SLOW_CONSUMER, "slow consumer: events were lost");
                }
                None => break close_message(close::INTERNAL, "internal error"),
            },
            message = incoming.next() => {
                let Some(Ok(message)) = message else {
                    client_closed = true;
                    break Message::Close(None);
                };
                last_heard = Instant::now();
                let text = match message {
                    Message::Text(text) => text,
                    Message::Binary(_) => break close_message(close::BAD_MESSAGE, "binary messages are not part of the protocol"),
                    Message::Close(_) => {
                        client_closed = true;
                        break Message::Close(None);
                    }
                    Message::Ping(_) | Message::Pong(_) => continue,
                };
                match serde_json::from_str::<ClientMessage>(&text) {
                    Ok(ClientMessage::ConnectionInit { .. }) => {
                        break close_message(close::TOO_MANY_INITS, "Too many initialisation requests");
                    }
                    Ok(ClientMessage::Ping { payload }) => {
                        let pong = match payload {
                            Some(p) => json!({ "type": "pong", "payload": p }),
                            None => json!({ "type": "pong" }),
                        };
                        if !send(&mut sink, &state, Message::text(pong.to_string())).await {
                            break close_message(close::SLOW_CONSUMER, "slow consumer");
                        }
                    }
                    Ok(ClientMessage::Pong {}) => {}
                    Ok(ClientMessage::Complete { id }) => {
                        if let Some(task) = operations.remove(&id) {
                            task.abort();
                        }
                    }
                    Ok(ClientMessage::Subscribe { id, payload }) => {
                        if operations.contains_key(&id) {
                            break close_message(close::ID_IN_USE, &format!("Subscriber for {id} already exists"));
                        }
                        if operations.len() >= live.max_per_connection {
                            let error = json!({
                                "type": "error",
                                "id": id,
                                "payload": [{
                                    "message": format!("at most {} operations may run on one connection (SUBSCRIPTIONS_PER_CONNECTION)", live.max_per_connection),
                                    "extensions": { "code": ErrorCode::TooManySubscriptions.as_str() }
                                }]
                            });
                            if !send(&mut sink, &state, Message::text(error.to_string())).await {
                                break close_message(close::SLOW_CONSUMER, "slow consumer");
                            }
                            continue;
                        }
                        let task = tokio::spawn(run_operation(
                            state.clone(),
                            id.clone(),
                            *payload,
                            caller.viewer,
                            client,
                            out_tx.clone(),
                        ));
                        operations.insert(id, task);
                    }
                    Err(error) => {
                        break close_message(close::BAD_MESSAGE, &format!("invalid message: {error}"));
                    }
                }
            }
        }
    };
    access.abort();
    for (_, task) in operations.drain() {
        task.abort();
    }
    let _ = tokio::time::timeout(live.send_timeout, sink.send(end)).await;
    // The closing handshake: read (and drop) what the client still sends
    // until its own close, briefly, so the socket is not reset under
    // unread data and the client reads the close code.
    let wait = if client_closed {
        std::time::Duration::ZERO
    } else {
        CLOSE_WAIT
    };
    let _ = tokio::time::timeout(wait, async {
        while let Some(Ok(message)) = incoming.next().await {
            if matches!(message, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
    let _ = tokio::time::timeout(live.send_timeout, sink.close()).await;
}

/// How long a closing connection waits for the client's close frame.
const CLOSE_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

fn refusal(refused: &Refused) -> Message {
    match refused {
        Refused::Forbidden(reason) => {
            close_message(close::FORBIDDEN, &format!("Forbidden: {reason}"))
        }
        Refused::TooManyConnections(max) => close_message(
            close::TOO_MANY_CONNECTIONS,
            &format!(
                "too many connections: at most {max} per user (SUBSCRIPTION_CONNECTIONS_PER_USER)"
            ),
        ),
        Refused::Unavailable => close_message(
            close::TRY_AGAIN_LATER,
            "the service cannot check tokens right now",
        ),
    }
}

/// Runs one operation and forwards its results as `next`, then
/// `complete` (or one `error`).
async fn run_operation(
    state: AppState,
    id: String,
    request: async_graphql::Request,
    viewer: crate::auth::Viewer,
    client: Option<IpAddr>,
    out: mpsc::Sender<Outgoing>,
) {
    let executor = std::sync::Arc::clone(state.executor());
    let mut results = executor.stream(request, viewer, client).await;
    let id_json = serde_json::to_string(&id).unwrap_or_else(|_| "\"\"".into());
    let frame = |kind: &str, payload: &[u8]| {
        let mut text = format!(r#"{{"type":"{kind}","id":{id_json},"payload":"#);
        text.push_str(std::str::from_utf8(payload).unwrap_or("null"));
        text.push('}');
        Message::text(text)
    };
    while let Some(delivery) = results.next().await {
        let (message, last) = match &delivery {
            Delivery::Next(body) => (frame("next", body), false),
            Delivery::Error(errors) => (frame("error", errors), true),
            Delivery::SlowConsumer(body) => {
                let _ = out.send(Outgoing::Send(frame("next", body))).await;
                let _ = out.send(Outgoing::SlowConsumer).await;
                return;
            }
        };
        if out.send(Outgoing::Send(message)).await.is_err() {
            return;
        }
        if last {
            let _ = out.send(Outgoing::Done(id)).await;
            return;
        }
    }
    let complete = format!(r#"{{"type":"complete","id":{id_json}}}"#);
    let _ = out.send(Outgoing::Send(Message::text(complete))).await;
    let _ = out.send(Outgoing::Done(id)).await;
}
