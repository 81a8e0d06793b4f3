//! What browsers and HTTP caches see: `ETag`/`If-None-Match` revalidation
//! of cached GET answers across replicas, `no-store` for everything else,
//! compression as `Accept-Encoding` asks, and CORS for listed origins only.

use std::io::Read;

use reqwest::{
    Method, Response,
    header::{
        ACCEPT, ACCEPT_ENCODING, AUTHORIZATION, CONTENT_ENCODING, ETAG, IF_NONE_MATCH, ORIGIN,
    },
};
use serde_json::{Value, json};

use crate::common::{self, GRAPHQL_RESPONSE, TestApp};

const LIST: &str = "{ jobs(first: 5) { totalCount nodes { id title } } }";

fn header(res: &Response, name: &str) -> String {
    res.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

async fn get(app: &TestApp, token: &str, query: &str, if_none_match: Option<&str>) -> Response {
    let mut req = app
        .client
        .get(app.url("/graphql"))
        .query(&[("query", query)])
        .header(ACCEPT, GRAPHQL_RESPONSE)
        .header(AUTHORIZATION, format!("Bearer {token}"));
    if let Some(tag) = if_none_match {
        req = req.header(IF_NONE_MATCH, tag);
    }
    req.send().await.unwrap()
}

fn max_age(cache_control: &str) -> u64 {
    cache_control
        .split(',')
        .find_map(|d| d.trim().strip_prefix("max-age="))
        .unwrap_or_else(|| panic!("no max-age in {cache_control:?}"))
        .parse()
        .unwrap()
}

#[tokio::test]
async fn a_cached_get_answer_is_revalidated_with_its_etag_on_every_replica() {
    let (_redis, one, two) = common::two_replicas().await;
    let (token, _) = one.signup("Etags", "admin@example.com").await;
    let ids = one.create_jobs(&token, "Job", 2).await;

    // The first read stores the answer: it comes with a tag and its lifetime.
    let res = get(&one, &token, LIST, None).await;
    assert_eq!(res.status(), 200);
    let etag = header(&res, "etag");
    let control = header(&res, "cache-control");
    assert!(etag.starts_with("W/\""), "{etag}");
    assert!(control.starts_with("private, max-age="), "{control}");
    let lifetime = one.config.cache.ttl.jobs_list.as_secs();
    assert!(max_age(&control) <= lifetime, "{control} vs {lifetime} s");
    assert!(header(&res, "vary").contains("Authorization"));
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["data"]["jobs"]["totalCount"], 2);

    // The same tag on either replica: 304, no body, no execution.
    for app in [&one, &two] {
        // Signed in on this replica first (reading the identity is SQL).
        app.ok(&token, "{ viewer { id } }", json!({})).await;
        let before = app.sql_statements().await;
        let res = get(app, &token, LIST, Some(&etag)).await;
        assert_eq!(res.status(), 304);
        assert_eq!(header(&res, "etag"), etag);
        assert_eq!(header(&res, "x-cache"), "HIT");
        assert!(header(&res, "cache-control").starts_with("private, max-age="));
        assert!(res.bytes().await.unwrap().is_empty());
        assert_eq!(app.sql_statements().await, before, "a 304 ran SQL");
    }
    // Another tag is not current: the answer, with the current tag.
    let res = get(&two, &token, LIST, Some("W/\"0123\"")).await;
    assert_eq!(res.status(), 200);
    assert_eq!(header(&res, "etag"), etag);

    // A write on replica one makes the tag stale on replica two at once.
    let update = "mutation($id: ID!) { updateJob(id: $id, input: {title: \"Renamed\"}) { id } }";
    one.ok(&token, update, json!({ "id": ids[0] })).await;
    let res = get(&two, &token, LIST, Some(&etag)).await;
    assert_eq!(res.status(), 200, "a write must fail the old tag");
    let fresh = header(&res, "etag");
    assert_ne!(fresh, etag);
    let body: Value = res.json().await.unwrap();
    assert!(body.to_string().contains("Renamed"), "{body}");
    let res = get(&one, &token, LIST, Some(&fresh)).await;
    assert_eq!(res.status(), 304);

    // Tags name the caller's entry: another team's tag never matches.
    let (other, _) = one.signup("Others", "other@example.com").await;
    let res = get(&one, &other, LIST, Some(&fresh)).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["data"]["jobs"]["totalCount"], 0);
}

#[tokio::test]
async fn posts_mutations_and_uncached_reads_are_no_store() {
    let app = TestApp::spawn().await;
    let (token, _) = app.signup("NoStore", "admin@example.com").await;
    // POST: not cacheable by HTTP, even when the service cached it.
    for _ in 0..2 {
        let res = app
            .client
            .post(app.url("/graphql"))
            .header(AUTHORIZATION, format!("Bearer {token}"))
            .json(&json!({ "query": LIST }))
            .send()
            .await
            .unwrap();
        assert_eq!(header(&res, "cache-control"), "no-store");
        assert!(res.headers().get(ETAG).is_none());
    }
    // Personal data over GET (never cached by the service): no-store.
    let res = get(&app, &token, "{ viewer { email } }", None).await;
    assert_eq!(res.status(), 200);
    assert_eq!(header(&res, "cache-control"), "no-store");
    assert!(res.headers().get(ETAG).is_none());
    // A mutation over GET is refused, and not stored either.
    let res = get(
        &app,
        &token,
        "mutation { createJob(input: {title: \"T\", company: \"C\"}) { id } }",
        None,
    )
    .await;
    assert_eq!(res.status(), 405);
    assert_eq!(header(&res, "cache-control"), "no-store");
}

fn decode(encoding: &str, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match encoding {
        "gzip" => {
            flate2::read::GzDecoder::new(bytes)
                .read_to_end(&mut out)
                .unwrap();
        }
        "br" => brotli::BrotliDecompress(&mut &bytes[..], &mut out).unwrap(),
        "zstd" => out = zstd::stream::decode_all(bytes).unwrap(),
        other => panic!("unexpected encoding {other}"),
    }
    out
}

#[tokio::test]
async fn answers_and_assets_are_compressed_as_accept_encoding_asks() {
    let app = TestApp::spawn().await;
    let (token, _) = app.signup("Squeeze", "admin@example.com").await;
    app.create_jobs(&token, "A rather long job title to list", 20)
        .await;
    let query = "{ jobs(first: 20) { nodes { id title company status createdAt team { name } createdBy { name email } } } }";
    let plain = get(&app, &token, query, None).await.bytes().await.unwrap();
    let mut sizes = Vec::new();
    for (accept, expected) in [
        ("gzip", "gzip"),
        ("br", "br"),
        ("zstd", "zstd"),
        ("gzip, deflate, br, zstd", "zstd"),
        ("gzip, br;q=0.9", "gzip"),
    ] {
        for _ in 0..2 {
            // Twice: the second answer is a cache hit, compressed from the memo.
            let res = app
                .client
                .get(app.url("/graphql"))
                .query(&[("query", query)])
                .header(AUTHORIZATION, format!("Bearer {token}"))
                .header(ACCEPT_ENCODING, accept)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
            assert_eq!(header(&res, "content-encoding"), expected, "{accept}");
            assert!(header(&res, "vary").contains("Accept-Encoding"));
            let packed = res.bytes().await.unwrap();
            assert!(
                packed.len() * 3 < plain.len(),
                "{accept}: {} of {}",
                packed.len(),
                plain.len()
            );
            assert_eq!(decode(expected, &packed), plain, "{accept}");
            sizes.push(format!("{expected} {}", packed.len()));
        }
    }
    sizes.dedup();
    println!(
        "compression: a 20-job list of {} bytes → {}",
        plain.len(),
        sizes.join(", ")
    );
    // Small answers and clients that ask for nothing stay plain.
    let res = app
        .client
        .get(app.url("/graphql"))
        .query(&[("query", "{ __typename }")])
        .header(ACCEPT_ENCODING, "gzip")
        .send()
        .await
        .unwrap();
    assert!(res.headers().get(CONTENT_ENCODING).is_none());
    let res = get(&app, &token, query, None).await;
    assert!(res.headers().get(CONTENT_ENCODING).is_none());
    assert!(header(&res, "vary").contains("Accept-Encoding"));
    // GraphiQL's bundle.
    let res = app
        .client
        .get(app.url("/graphiql/graphiql.min.js"))
        .header(ACCEPT_ENCODING, "br")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&res, "content-encoding"), "br");
    // Health and metrics are not GraphQL: left alone.
    let res = app
        .client
        .get(app.url("/health"))
        .header(ACCEPT_ENCODING, "gzip")
        .send()
        .await
        .unwrap();
    assert!(res.headers().get(CONTENT_ENCODING).is_none());
}

#[tokio::test]
async fn cross_origin_calls_are_allowed_only_for_listed_origins() {
    let allowed = "https://app.example.com";
    let app = TestApp::spawn_with(|c| {
        c.http.cors_allowed_origins = vec![allowed.to_owned()];
    })
    .await;
    let preflight = |origin: &'static str| {
        app.client
            .request(Method::OPTIONS, app.url("/graphql"))
            .header(ORIGIN, origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type",
            )
            .send()
    };
    let res = preflight(allowed).await.unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    assert_eq!(header(&res, "access-control-allow-origin"), allowed);
    assert_eq!(header(&res, "access-control-allow-credentials"), "true");
    let headers = header(&res, "access-control-allow-headers").to_ascii_lowercase();
    assert!(headers.contains("authorization") && headers.contains("content-type"));
    assert!(header(&res, "access-control-allow-methods").contains("POST"));

    let res = preflight("https://evil.example.net").await.unwrap();
    assert!(res.headers().get("access-control-allow-origin").is_none());

    // The actual request: the origin is echoed, the cache header exposed.
    let res = app
        .client
        .post(app.url("/graphql"))
        .header(ORIGIN, allowed)
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(header(&res, "access-control-allow-origin"), allowed);
    assert!(header(&res, "access-control-expose-headers").contains("x-request-id"));
    let res = app
        .client
        .post(app.url("/graphql"))
        .header(ORIGIN, "https://evil.example.net")
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .unwrap();
    assert!(res.headers().get("access-control-allow-origin").is_none());

    // By default no origin is allowed: no CORS headers at all.
    let closed = TestApp::spawn().await;
    let res = closed
        .client
        .post(closed.url("/graphql"))
        .header(ORIGIN, allowed)
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .unwrap();
    assert!(res.headers().get("access-control-allow-origin").is_none());
}
