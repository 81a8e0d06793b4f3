//! The yardstick for the cache-hit path: a bare axum handler returning a
//! fixed 1 KB JSON body, nothing else. Run it pinned to the same core as
//! jobgraph and compare with `k6/run-hit-path.sh`:
//!
//!     taskset -c 0 cargo run --release --example bare_axum -- 127.0.0.1:8099

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use axum::{Router, http::header, response::IntoResponse, routing::any};

fn body() -> &'static str {
    static BODY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BODY.get_or_init(|| {
        let mut s = String::from(r#"{"data":{"padding":""#);
        while s.len() < 1024 - 4 {
            s.push('x');
        }
        s.push_str(r#""}}"#);
        s
    })
}

async fn handler() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], body())
}

#[tokio::main]
async fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8099".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
    println!("bare axum on {addr}, body {} bytes", body().len());
    axum::serve(listener, Router::new().fallback(any(handler)))
        .await
        .unwrap();
}
