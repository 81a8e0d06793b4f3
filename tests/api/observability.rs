//! What an operator sees: traces over OTLP that continue the caller's
//! trace (HTTP, operation, cache, DataLoader and SQL spans in order, a task
//! linked to the request that enqueued it), slow statements in the log, and
//! dashboards and alert rules that name only metrics `/metrics` exports.

use std::{
    collections::{BTreeSet, HashMap},
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{Router, body::Bytes, extract::State, routing::post};
use opentelemetry_proto::tonic::{
    collector::trace::v1::ExportTraceServiceRequest, trace::v1::Span,
};
use prost::Message;
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

use crate::common::{TestApp, fresh_config, process::Proc};

/// An OTLP/HTTP receiver: every span any export sent to it.
struct Collector {
    addr: SocketAddr,
    spans: Arc<Mutex<Vec<Span>>>,
}

impl Collector {
    async fn start() -> Self {
        let spans = Arc::new(Mutex::new(Vec::new()));
        async fn export(State(spans): State<Arc<Mutex<Vec<Span>>>>, body: Bytes) -> Vec<u8> {
            let request = ExportTraceServiceRequest::decode(body).expect("an OTLP protobuf body");
            let mut spans = spans.lock().unwrap();
            for resource in request.resource_spans {
                for scope in resource.scope_spans {
                    spans.extend(scope.spans);
                }
            }
            Vec::new()
        }
        let router = Router::new()
            .route("/v1/traces", post(export))
            .with_state(Arc::clone(&spans));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self { addr, spans }
    }

    fn spans(&self) -> Vec<Span> {
        self.spans.lock().unwrap().clone()
    }

    async fn until(&self, what: &str, done: impl Fn(&[Span]) -> bool) -> Vec<Span> {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let spans = self.spans();
            if done(&spans) {
                return spans;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for {what}; spans: {:?}",
                spans.iter().map(|s| &s.name).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn post_traced(proc: &Proc, token: &str, traceparent: &str, query: &str) -> Value {
    let res = reqwest::Client::new()
        .post(format!("{}/graphql", proc.url))
        .bearer_auth(token)
        .header("traceparent", traceparent)
        .json(&json!({ "query": query }))
        .send()
        .await
        .unwrap();
    let body: Value = res.json().await.unwrap();
    assert!(body.get("errors").is_none(), "{body}");
    body
}

#[tokio::test]
async fn a_missed_request_is_one_trace_continuing_the_callers_with_its_parts_in_order() {
    let collector = Collector::start().await;
    let model = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(200).set_body_json(json!({
            "model": "stand-in",
            "choices": [{ "index": 0, "message": { "role": "assistant", "content": "A resume." } }]
        })))
        .mount(&model)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let config = fresh_config(&dir).await;
    let mut proc = Proc::spawn(
        &config,
        dir.path(),
        &[
            ("OPENAI_API_KEY", "sk-test-0123456789".to_owned()),
            ("OPENAI_BASE_URL", model.uri()),
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                format!("http://{}", collector.addr),
            ),
            ("OTEL_SERVICE_NAME", "jobgraph-under-test".to_owned()),
            ("OTEL_BSP_SCHEDULE_DELAY", "100".to_owned()),
            ("RUST_LOG", "info,jobgraph=debug".to_owned()),
            ("CACHE_REFRESH_DELAY_MS", "50".to_owned()),
        ],
    );
    jobgraph::app::install_crypto_provider();
    let token = proc.signup("Traced", "ada@example.com").await;

    // A write that starts background work: the task's span must link back
    // to it.
    let job = proc
        .gql(
            Some(&token),
            "mutation { createJob(input: { title: \"Traced\", company: \"Co\" }) { id } }",
            json!({}),
        )
        .await;
    let write_trace = "0af7651916cd43dd8448eb211c80319c";
    post_traced(
        &proc,
        &token,
        &format!("00-{write_trace}-b7ad6b7169203331-01"),
        &format!(
            "mutation Write {{ generateResume(jobId: \"{}\") {{ id }} }}",
            job["createJob"]["id"].as_str().unwrap()
        ),
    )
    .await;
    // A read that misses the cache, reads creators and the team with its
    // page, and loads resumes in a batch.
    let read_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    post_traced(
        &proc,
        &token,
        &format!("00-{read_trace}-{caller_span}-01"),
        "query Recent { jobs(first: 5) { nodes { title createdBy { name } team { name } resumes { status } } } }",
    )
    .await;

    let spans = collector
        .until("the read's spans and the linked task", |spans| {
            let read = spans
                .iter()
                .filter(|s| hex(&s.trace_id) == read_trace)
                .count();
            // The HTTP span ends last and may come in a later export batch
            // than its children.
            let read_ended = spans
                .iter()
                .any(|s| hex(&s.trace_id) == read_trace && s.name == "POST /graphql");
            let linked = spans.iter().any(|s| {
                s.name == "task resume.generate"
                    && s.links.iter().any(|l| hex(&l.trace_id) == write_trace)
            });
            read >= 5 && read_ended && linked
        })
        .await;
    let read: Vec<&Span> = spans
        .iter()
        .filter(|s| hex(&s.trace_id) == read_trace)
        .collect();
    let by_id: HashMap<String, &Span> = read.iter().map(|s| (hex(&s.span_id), *s)).collect();
    let named = |name: &str| -> Vec<&Span> {
        read.iter()
            .filter(|s| s.name.as_str() == name)
            .copied()
            .collect()
    };
    let parent_of = |s: &Span| by_id.get(&hex(&s.parent_span_id)).copied();
    let ancestors = |s: &Span| {
        let mut out = Vec::new();
        let mut at = parent_of(s);
        while let Some(p) = at {
            out.push(p.name.clone());
            at = parent_of(p);
        }
        out
    };
    let names: BTreeSet<&str> = read.iter().map(|s| s.name.as_str()).collect();

    // The HTTP span continues the caller's span.
    let http = named("POST /graphql");
    assert_eq!(http.len(), 1, "{names:?}");
    assert_eq!(hex(&http[0].parent_span_id), caller_span);
    // The operation is its child; the cache lookup happened in the request.
    let operation = named("query Recent");
    assert_eq!(operation.len(), 1, "{names:?}");
    assert_eq!(parent_of(operation[0]).unwrap().name, "POST /graphql");
    assert!(
        named("cache lookup")
            .iter()
            .all(|s| ancestors(s).contains(&"POST /graphql".to_owned())),
        "{names:?}"
    );
    // The resumes' loader batch, under the operation (creators and team
    // came with the page: no batch for them).
    let batches = named("dataloader ResumesByJobLoader");
    assert!(!batches.is_empty(), "no resumes batch: {names:?}");
    assert!(
        ancestors(batches[0]).contains(&"query Recent".to_owned()),
        "the batch is not under the operation"
    );
    // SQL statements, each with the statement and no values, under the
    // operation (directly or in a batch).
    let statements: Vec<&&Span> = read
        .iter()
        .filter(|s| s.name.starts_with("SELECT "))
        .collect();
    assert!(statements.len() >= 2, "{names:?}");
    for statement in &statements {
        assert!(
            ancestors(statement).contains(&"query Recent".to_owned()),
            "{} outside the operation",
            statement.name
        );
        let attrs: HashMap<&str, String> = statement
            .attributes
            .iter()
            .map(|a| (a.key.as_str(), format!("{:?}", a.value)))
            .collect();
        assert!(attrs.contains_key("db.system"), "{attrs:?}");
        assert!(attrs["db.statement"].contains("SELECT"), "{attrs:?}");
        assert!(!attrs["db.statement"].contains("Traced"), "no values");
    }
    // The model API call carried the task's trace (the task's span links
    // to the write): its client span is the parent the API was given.
    let task = spans
        .iter()
        .find(|s| {
            s.name == "task resume.generate"
                && s.links.iter().any(|l| hex(&l.trace_id) == write_trace)
        })
        .unwrap();
    let calls = model.received_requests().await.unwrap();
    assert_eq!(calls.len(), 1);
    let sent = calls[0].headers["traceparent"].to_str().unwrap().to_owned();
    assert!(sent.contains(&hex(&task.trace_id)), "{sent}");
    let spans = collector
        .until("the model call's span", |spans| {
            spans
                .iter()
                .any(|s| s.name == "POST chat/completions" && sent.contains(&hex(&s.span_id)))
        })
        .await;
    let call = spans
        .iter()
        .find(|s| s.name == "POST chat/completions")
        .unwrap();
    assert_eq!(call.trace_id, task.trace_id);
    proc.terminate();
    proc.wait_exit(Duration::from_secs(10));
    // Log lines inside a traced request carry its trace id.
    assert!(proc.log().contains(read_trace), "{}", proc.log());
}

#[tokio::test]
async fn a_statement_slower_than_the_threshold_is_logged_with_its_text_and_request() {
    let dir = tempfile::tempdir().unwrap();
    let config = fresh_config(&dir).await;
    let mut proc = Proc::spawn(
        &config,
        dir.path(),
        &[
            ("LOG_FORMAT", "json".to_owned()),
            ("RUST_LOG", "info".to_owned()),
            ("SLOW_QUERY_MS", "1".to_owned()),
        ],
    );
    let token = proc.signup("Slow", "ada@example.com").await;
    // Enough rows that a search scanning them all takes well over 1 ms.
    let db = jobgraph::db::connect_pool(
        &config.database,
        Some(1),
        &Arc::new(jobgraph::metrics::Metrics::new()),
        "test",
    )
    .await
    .unwrap();
    db.execute_unprepared(
        "INSERT INTO jobs (team_id, title, company, status, created_at, updated_at) \
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 50000) \
         SELECT (SELECT id FROM teams LIMIT 1), 'Job ' || i, 'Company ' || (i % 97), 'saved', \
                CURRENT_TIMESTAMP, CURRENT_TIMESTAMP FROM n",
    )
    .await
    .unwrap();
    let res = reqwest::Client::new()
        .post(format!("{}/graphql", proc.url))
        .bearer_auth(&token)
        .header("x-request-id", "slow-one")
        .json(&json!({ "query": "query Search($s: String!) { jobs(filter: { search: $s }) { totalCount } }", "variables": { "s": "secret-term" } }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    proc.terminate();
    proc.wait_exit(Duration::from_secs(10));
    let slow: Vec<Value> = proc
        .log()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["message"] == "slow SQL statement" && l["span"]["id"] == "slow-one")
        .collect();
    // The search's count (statements before the operation is known, such
    // as the token's identity, may be slow too on a loaded machine).
    let line = slow
        .iter()
        .find(|l| l["statement"].as_str().unwrap_or("").contains("jobs"))
        .unwrap_or_else(|| panic!("{}", proc.log()));
    assert_eq!(line["level"], "WARN");
    assert_eq!(line["span"]["operation"], "Search");
    let statement = line["statement"].as_str().unwrap();
    assert!(statement.contains("jobs"), "{statement}");
    assert!(
        !statement.contains("secret-term"),
        "values never reach the log: {statement}"
    );
    assert!(line["ms"].as_f64().unwrap() >= 1.0);
}

/// Metric names a dashboard or rule file mentions (`jobgraph_…`).
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("jobgraph_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.insert(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}

#[tokio::test]
async fn dashboards_and_alert_rules_name_only_metrics_that_are_exported() {
    let app = TestApp::spawn().await;
    let (token, _) = app.signup("Acme", "ada@example.com").await;
    app.ok(&token, "query Seen { jobs { totalCount } }", json!({}))
        .await;
    let exported = app.metrics_text().await;
    // A family's samples: the name itself, or with the suffixes of its type.
    let mut samples = BTreeSet::new();
    for line in exported.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split_whitespace();
            let (Some(name), Some(kind)) = (parts.next(), parts.next()) else {
                continue;
            };
            let suffixes: &[&str] = match kind {
                "counter" => &["_total", "_created"],
                "histogram" => &["_bucket", "_sum", "_count", "_created"],
                _ => &[""],
            };
            for suffix in suffixes {
                samples.insert(format!("{name}{suffix}"));
            }
        }
    }
    let root = env!("CARGO_MANIFEST_DIR");
    let mut checked = 0;
    for file in [
        "deploy/grafana/dashboards/jobgraph.json",
        "deploy/prometheus/alerts.yml",
    ] {
        let text = std::fs::read_to_string(format!("{root}/{file}")).unwrap();
        let names = metric_names(&text);
        assert!(!names.is_empty(), "{file} names no metric");
        let unknown: Vec<&String> = names.iter().filter(|n| !samples.contains(*n)).collect();
        assert!(
            unknown.is_empty(),
            "{file} names metrics /metrics does not export: {unknown:?}"
        );
        checked += names.len();
    }
    // The per-operation and slow-statement families exist, labelled.
    assert!(
        exported.contains("jobgraph_graphql_requests_total{operation=\"Seen\",code=\"ok\"}"),
        "{exported}"
    );
    assert!(exported.contains("# TYPE jobgraph_sql_slow_statements counter"));
    assert!(exported.contains("statement=\"SELECT\""), "{exported}");
    println!("dashboards and rules: {checked} metric names, all exported");
}
