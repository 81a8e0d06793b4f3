//! A graphql-transport-ws client over a real socket, and an SSE reader:
//! what the subscription tests speak to the service.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream, connect_async,
    tungstenite::{Message, client::IntoClientRequest, http::HeaderValue},
};

use super::TestApp;

type Socket = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// One WebSocket connection speaking graphql-transport-ws.
pub struct WsClient {
    socket: Socket,
}

/// How a connection ended: the close code and reason.
#[derive(Debug, PartialEq, Eq)]
pub struct Closed {
    pub code: u16,
    pub reason: String,
}

impl WsClient {
    /// Connects without sending anything.
    pub async fn open(app: &TestApp) -> Self {
        let url = app.url("/graphql").replacen("http", "ws", 1);
        let mut request = url.into_client_request().unwrap();
        request.headers_mut().insert(
            "sec-websocket-protocol",
            HeaderValue::from_static("graphql-transport-ws"),
        );
        let (socket, response) = connect_async(request).await.unwrap();
        assert_eq!(
            response.headers()["sec-websocket-protocol"],
            "graphql-transport-ws"
        );
        Self { socket }
    }

    /// Connects and initialises with the token; panics unless acknowledged.
    pub async fn connect(app: &TestApp, token: &str) -> Self {
        let mut client = Self::open(app).await;
        client
            .send(json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } }))
            .await;
        let ack = client.recv().await.expect("connection_ack");
        assert_eq!(ack["type"], "connection_ack", "{ack}");
        client
    }

    pub async fn send(&mut self, message: Value) {
        self.socket
            .send(Message::text(message.to_string()))
            .await
            .unwrap();
    }

    pub async fn subscribe(&mut self, id: &str, query: &str, variables: Value) {
        self.send(json!({ "type": "subscribe", "id": id, "payload": { "query": query, "variables": variables } }))
            .await;
    }

    /// The next protocol message (pings answered, pongs skipped), or the
    /// close as `Err`.
    pub async fn recv(&mut self) -> Result<Value, Closed> {
        self.recv_within(Duration::from_secs(10))
            .await
            .expect("no message within 10 s")
    }

    /// Like [`Self::recv`], `None` when nothing came within `limit`.
    pub async fn recv_within(&mut self, limit: Duration) -> Option<Result<Value, Closed>> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let message = tokio::time::timeout_at(deadline, self.socket.next())
                .await
                .ok()?;
            match message {
                Some(Ok(Message::Text(text))) => {
                    return Some(Ok(serde_json::from_str(&text).unwrap()));
                }
                Some(Ok(Message::Close(frame))) => {
                    return Some(Err(frame.map_or(
                        Closed {
                            code: 1005,
                            reason: String::new(),
                        },
                        |f| Closed {
                            code: f.code.into(),
                            reason: f.reason.to_string(),
                        },
                    )));
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => {
                    return Some(Err(Closed {
                        code: 1006,
                        reason: "connection dropped".into(),
                    }));
                }
            }
        }
    }

    /// Reads until the connection closes; its close.
    pub async fn closed(&mut self) -> Closed {
        loop {
            if let Err(closed) = self.recv().await {
                return closed;
            }
        }
    }
}

/// Reads the events of an SSE response: `(event, data)` pairs.
pub struct SseReader {
    response: reqwest::Response,
    buffer: String,
}

impl SseReader {
    pub async fn open(app: &TestApp, token: &str, query: &str) -> (u16, Self) {
        let response = app
            .client
            .post(app.url("/graphql"))
            .header("accept", "text/event-stream")
            .header("authorization", format!("Bearer {token}"))
            .json(&json!({ "query": query }))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (
            status,
            Self {
                response,
                buffer: String::new(),
            },
        )
    }

    /// The next event (comments skipped), `None` at the end of the stream.
    pub async fn next(&mut self) -> Option<(String, String)> {
        loop {
            if let Some(at) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..at + 2).collect();
                let mut event = String::new();
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim());
                    }
                }
                if event.is_empty() && data.is_empty() {
                    continue;
                }
                return Some((event, data));
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.response.chunk())
                .await
                .expect("no SSE data within 10 s")
                .ok()??;
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    pub fn into_response(self) -> reqwest::Response {
        self.response
    }
}
