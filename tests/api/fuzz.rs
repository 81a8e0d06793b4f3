//! A seeded fuzzer through the real router: documents built from the
//! schema (random selections, named and inline fragments, spreads and
//! cycles, aliases, variables, directives, cursors, ids, filters, bulk
//! inputs), the same with their bytes mutated, and malformed requests.
//! Every answer must come within the timeout, never be a 5xx other than
//! the documented 503/504, and a refused request must not have written.
//!
//! `FUZZ_INPUTS` (default 20000) and `FUZZ_SEED` (default 7) set the run;
//! the count is printed.

use std::{collections::HashMap, fmt::Write as _, time::Duration};

use crate::common::TestApp;
use axum::body::Body;
use jobgraph::graphql::{
    analysis::types::{TypeRef, TypeTable},
    ids::{Kind, encode},
};
use rand::{Rng, SeedableRng, rngs::StdRng, seq::IndexedRandom};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};
use tower::ServiceExt;

/// Builds random documents and inputs for the schema in `table`.
struct Gen<'a> {
    rng: StdRng,
    table: &'a TypeTable,
    /// Real ids the documents may mention.
    ids: Vec<String>,
    /// Fragments defined for the document being built.
    fragments: Vec<(String, String, String)>,
    variables: serde_json::Map<String, Value>,
    definitions: Vec<String>,
}

impl<'a> Gen<'a> {
    fn pick<'b, T>(&mut self, items: &'b [T]) -> &'b T {
        items.choose(&mut self.rng).unwrap()
    }

    fn chance(&mut self, p: f64) -> bool {
        self.rng.random_bool(p)
    }

    /// A document and its variables.
    fn document(&mut self) -> (String, Value) {
        self.fragments.clear();
        self.variables.clear();
        self.definitions.clear();
        let (keyword, root) = if self.chance(0.75) {
            ("query", self.table.query.clone())
        } else {
            ("mutation", self.table.mutation.clone().unwrap())
        };
        let depth = self.rng.random_range(1..=6);
        let body = self.selection(&root, depth, true);
        let mut doc = String::new();
        let directive = if self.chance(0.03) { " @live" } else { "" };
        let vars = self.definitions.join(", ");
        let vars = if vars.is_empty() {
            String::new()
        } else {
            format!("({vars})")
        };
        let _ = write!(doc, "{keyword} Op{vars}{directive} {body}");
        for (name, on, body) in self.fragments.clone() {
            let _ = write!(doc, "\nfragment {name} on {on} {body}");
        }
        if self.chance(0.05) {
            // A fragment nobody spreads, or one spreading itself.
            let _ = write!(doc, "\nfragment Loose on Query {{ ...Loose }}");
        }
        (doc, Value::Object(self.variables.clone()))
    }

    fn selection(&mut self, ty: &str, depth: u32, root: bool) -> String {
        let table = self.table;
        let Some(fields) = table.objects.get(ty) else {
            return "{ __typename }".to_owned();
        };
        let mut names: Vec<&String> = fields.keys().collect();
        names.sort();
        let n = self.rng.random_range(1..=if root { 3 } else { 5 });
        let mut out = String::from("{ ");
        for i in 0..n {
            if self.chance(0.08) {
                out.push_str("__typename ");
                continue;
            }
            if depth > 1 && self.chance(0.12) {
                let inner = self.selection(ty, depth - 1, root);
                if self.chance(0.5) {
                    out.push_str(&format!("... on {ty} {inner} "));
                } else {
                    let name = format!("F{}", self.fragments.len());
                    self.fragments.push((name.clone(), ty.to_owned(), inner));
                    out.push_str(&format!("...{name} "));
                    if self.chance(0.1) {
                        out.push_str(&format!("...{name} "));
                    }
                }
                continue;
            }
            let name = (*self.pick(&names)).clone();
            let info = &fields[&name];
            if self.chance(0.15) {
                out.push_str(&format!("a{i}: "));
            }
            out.push_str(&name);
            let mut args: Vec<(&String, &TypeRef)> = info.args.iter().collect();
            args.sort();
            let mut chosen = Vec::new();
            for (arg, arg_ty) in args {
                if self.chance(0.7) {
                    chosen.push(format!("{arg}: {}", self.argument(arg, arg_ty)));
                }
            }
            if !chosen.is_empty() {
                out.push_str(&format!("({})", chosen.join(", ")));
            }
            if self.chance(0.08) {
                let directive = *self.pick(&[
                    " @skip(if: false)",
                    " @include(if: true)",
                    " @skip(if: \"yes\")",
                    " @include",
                    " @cached(ttl: 5)",
                    " @skip(if: $flag)",
                ]);
                out.push_str(directive);
                if !self.variables.contains_key("flag") {
                    self.variables.insert("flag".into(), json!(false));
                    self.definitions.push("$flag: Boolean!".into());
                }
            }
            let named = info.ty.named().to_owned();
            if table.objects.contains_key(&named) {
                if depth > 1 {
                    out.push(' ');
                    out.push_str(&self.selection(&named, depth - 1, false));
                } else {
                    out.push_str(" { __typename }");
                }
            }
            out.push(' ');
        }
        out.push('}');
        out
    }

    /// An argument value: usually of the right type, sometimes not, as a
    /// literal or through a variable.
    fn argument(&mut self, name: &str, ty: &TypeRef) -> String {
        if self.chance(0.25) {
            let var = format!("v{}", self.variables.len());
            let value = self.json_value(ty, 0);
            self.variables.insert(var.clone(), value);
            let required = self.chance(0.5);
            self.definitions
                .push(format!("${var}: {}", graphql_type(ty, required)));
            return format!("${var}");
        }
        let _ = name;
        self.literal(ty, 0)
    }

    fn literal(&mut self, ty: &TypeRef, depth: u32) -> String {
        let table = self.table;
        if self.chance(0.04) {
            return self
                .pick(&["null", "\"\"", "-1", "1e400", "[]", "{}", "\"\\u0000\""])
                .to_string();
        }
        match ty {
            TypeRef::List(inner) => {
                let n = if self.chance(0.05) {
                    12
                } else {
                    self.rng.random_range(0..4)
                };
                let items: Vec<String> = (0..n).map(|_| self.literal(inner, depth + 1)).collect();
                format!("[{}]", items.join(", "))
            }
            TypeRef::Named(named) => {
                if let Some(values) = table.enums.get(named) {
                    return if self.chance(0.9) {
                        self.pick(values).clone()
                    } else {
                        "NOT_A_VALUE".into()
                    };
                }
                if let Some(fields) = table.inputs.get(named) {
                    if depth > 3 {
                        return "{}".into();
                    }
                    let mut names: Vec<(&String, &TypeRef)> = fields.iter().collect();
                    names.sort();
                    let mut parts = Vec::new();
                    for (f, t) in names {
                        if self.chance(0.6) {
                            parts.push(format!("{f}: {}", self.literal(t, depth + 1)));
                        }
                    }
                    return format!("{{ {} }}", parts.join(", "));
                }
                serde_json::to_string(&self.scalar(named))
                    .unwrap()
                    .replace("\\u0000", "")
            }
        }
    }

    fn json_value(&mut self, ty: &TypeRef, depth: u32) -> Value {
        let table = self.table;
        if self.chance(0.05) {
            return self
                .pick(&[
                    json!(null),
                    json!(true),
                    json!("x"),
                    json!([1]),
                    json!({ "a": 1 }),
                ])
                .clone();
        }
        match ty {
            TypeRef::List(inner) => {
                let n = match self.rng.random_range(0..20) {
                    0 => 1001,
                    1 => 7,
                    _ => self.rng.random_range(0..4),
                };
                Value::Array((0..n).map(|_| self.json_value(inner, depth + 1)).collect())
            }
            TypeRef::Named(named) => {
                if let Some(values) = table.enums.get(named) {
                    return json!(self.pick(values));
                }
                if let Some(fields) = table.inputs.get(named) {
                    let mut names: Vec<(&String, &TypeRef)> = fields.iter().collect();
                    names.sort();
                    let mut map = serde_json::Map::new();
                    for (f, t) in names {
                        if depth < 4 && self.rng.random_bool(0.6) {
                            map.insert(f.clone(), self.json_value(t, depth + 1));
                        }
                    }
                    return Value::Object(map);
                }
                self.scalar(named)
            }
        }
    }

    fn scalar(&mut self, named: &str) -> Value {
        match named {
            "Int" => json!(*self.pick(&[0i64, 1, 5, 20, 100, 101, -3, 2_147_483_647, 10_000])),
            "Float" => json!(self.rng.random_range(-1e6..1e6)),
            "Boolean" => json!(self.chance(0.5)),
            "ID" => {
                if !self.ids.is_empty() && self.chance(0.6) {
                    let ids = self.ids.clone();
                    json!(self.pick(&ids))
                } else {
                    let kind =
                        *self.pick(&[Kind::Job, Kind::User, Kind::Team, Kind::Resume, Kind::Log]);
                    let n = *self.pick(&[1i64, 2, 999_999, i64::MAX, 0, -1]);
                    json!(self.pick(&[encode(kind, n).0, "bogus".into(), "Sm9iOg".into()]))
                }
            }
            "DateTime" => json!(self.pick(&[
                "2026-01-01T00:00:00Z",
                "not a date",
                "9999-12-31T23:59:59+14:00",
                "1970-01-01T00:00:00Z"
            ])),
            "JSON" => json!({ "k": [1, "two", null] }),
            _ => {
                let len = *self.pick(&[0usize, 1, 8, 40, 250]);
                let text: String = (0..len)
                    .map(|_| {
                        *self.pick(&[
                            'a', 'Z', ' ', '%', '_', 'é', '漢', '@', '.', '\'', '"', '\\',
                        ])
                    })
                    .collect();
                if self.chance(0.1) {
                    json!(format!("{text}@example.com"))
                } else {
                    json!(text)
                }
            }
        }
    }

    /// The bytes of a request, mutated.
    fn mutate(&mut self, mut bytes: Vec<u8>) -> Vec<u8> {
        for _ in 0..self.rng.random_range(1..6) {
            if bytes.is_empty() {
                break;
            }
            let at = self.rng.random_range(0..bytes.len());
            match self.rng.random_range(0..4) {
                0 => bytes[at] = self.rng.random(),
                1 => {
                    bytes.remove(at);
                }
                2 => bytes.insert(at, *self.pick(b"{}[]()\":,.$@!\\#\n")),
                _ => {
                    let end = (at + self.rng.random_range(1..20)).min(bytes.len());
                    let copy = bytes[at..end].to_vec();
                    bytes.splice(at..at, copy);
                }
            }
        }
        bytes
    }
}

fn graphql_type(ty: &TypeRef, required: bool) -> String {
    let inner = match ty {
        TypeRef::List(inner) => format!("[{}]", graphql_type(inner, false)),
        TypeRef::Named(n) => n.clone(),
    };
    if required { format!("{inner}!") } else { inner }
}

/// Rows and last changes of every table a refused request must not touch.
async fn fingerprint(db: &sea_orm::DatabaseConnection) -> String {
    let sql = "SELECT (SELECT COUNT(*) FROM jobs) || '/' || (SELECT COUNT(*) FROM users) || '/' || \
               (SELECT COUNT(*) FROM logs) || '/' || (SELECT COUNT(*) FROM resumes) || '/' || \
               (SELECT COUNT(*) FROM tasks) || '/' || (SELECT COUNT(*) FROM teams) || '/' || \
               COALESCE((SELECT MAX(updated_at) FROM jobs) || '', '') || '/' || \
               COALESCE((SELECT MAX(updated_at) FROM users) || '', '') AS f";
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap()
        .unwrap();
    row.try_get::<String>("", "f").unwrap()
}

#[tokio::test]
async fn random_documents_and_bytes_never_break_the_service() {
    let inputs: usize = std::env::var("FUZZ_INPUTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let seed: u64 = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7);
    // No background workers: the only writes are the requests' own.
    let app = TestApp::spawn_with(|c| {
        c.tasks.concurrency = 0;
        c.http.request_timeout = Duration::from_secs(10);
    })
    .await;
    let (token, user) = app.signup("Fuzz", "ada@example.com").await;
    let mut ids = app.create_jobs(&token, "Job", 5).await;
    ids.push(user);
    let router = jobgraph::http::router(app.state.clone());
    let table = app.state.executor().analyzer().table();
    let mut g = Gen {
        rng: StdRng::seed_from_u64(seed),
        table,
        ids,
        fragments: Vec::new(),
        variables: serde_json::Map::new(),
        definitions: Vec::new(),
    };
    let mut statuses: HashMap<u16, usize> = HashMap::new();
    for i in 0..inputs {
        let (doc, variables) = g.document();
        let mut body =
            serde_json::to_vec(&json!({ "query": doc, "variables": variables })).unwrap();
        let shape = g.rng.random_range(0..100);
        let get = shape >= 95;
        if (80..90).contains(&shape) {
            body = g.mutate(body);
        } else if (90..93).contains(&shape) {
            body = format!(
                "[{}]",
                std::iter::repeat_n(String::from_utf8_lossy(&body), g.rng.random_range(0..13))
                    .collect::<Vec<_>>()
                    .join(",")
            )
            .into_bytes();
        } else if (93..95).contains(&shape) {
            body = g
                .pick(&[
                    b"null".to_vec(),
                    b"\"x\"".to_vec(),
                    b"{\"query\":1}".to_vec(),
                    vec![0xff, 0xfe],
                    b"{".repeat(200),
                ])
                .clone();
        }
        let mut request = if get {
            let query = serde_urlencoded::to_string([("query", doc.as_str())]).unwrap();
            axum::http::Request::get(format!("/graphql?{query}"))
                .body(Body::empty())
                .unwrap()
        } else {
            axum::http::Request::post("/graphql")
                .header("content-type", "application/json")
                .body(Body::from(body.clone()))
                .unwrap()
        };
        if g.chance(0.9) {
            request
                .headers_mut()
                .insert("authorization", format!("Bearer {token}").parse().unwrap());
        } else if g.chance(0.3) {
            request
                .headers_mut()
                .insert("authorization", "Bearer not.a.token".parse().unwrap());
        }
        let before = fingerprint(app.state.db()).await;
        let response =
            tokio::time::timeout(Duration::from_secs(12), router.clone().oneshot(request))
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "input {i} got no answer within 12 s (REQUEST_TIMEOUT_MS is 10 s): {doc}"
                    )
                })
                .unwrap();
        let status = response.status().as_u16();
        *statuses.entry(status).or_default() += 1;
        assert!(
            status < 500 || status == 503 || status == 504,
            "input {i} answered {status}: {}",
            String::from_utf8_lossy(&body)
        );
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        if status >= 400 {
            assert_eq!(
                fingerprint(app.state.db()).await,
                before,
                "refused input {i} ({status}) wrote: {}",
                String::from_utf8_lossy(&body)
            );
        }
        if status == 200 {
            let answer: Value =
                serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("input {i}: {e}"));
            // A single request refused field by field (every root field
            // null with an error) changed nothing either; a refused
            // sign-in writes its log entry by design.
            let refused_whole = answer.get("errors").is_some()
                && match &answer["data"] {
                    Value::Null => true,
                    Value::Object(fields) => fields.values().all(Value::is_null),
                    _ => false,
                };
            if refused_whole && !doc.contains("login") && !body.starts_with(b"[") {
                assert_eq!(
                    fingerprint(app.state.db()).await,
                    before,
                    "refused input {i} wrote: {doc} → {answer}"
                );
            }
            for error in answer["errors"].as_array().into_iter().flatten() {
                assert_ne!(
                    error["extensions"]["code"], "INTERNAL",
                    "input {i}: {doc} → {answer}"
                );
            }
        }
    }
    let mut summary: Vec<_> = statuses.into_iter().collect();
    summary.sort();
    println!("fuzz: {inputs} inputs (seed {seed}), statuses {summary:?}");
    // The service still serves ordinary requests.
    app.ok(&token, "{ viewer { id } }", json!({})).await;
}
