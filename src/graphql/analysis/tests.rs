use async_graphql::parser::parse_query;
use serde_json::json;

use super::*;
use crate::graphql::ids::{self, Kind as IdKind};

fn analyzer() -> Analyzer {
    crate::graphql::analyzer(&Limits::default(), true).expect("the schema's SDL parses")
}

fn analyse_as(
    query: &str,
    variables: serde_json::Value,
    caller: Caller,
) -> Result<Analysis, Refusal> {
    let analyzer = analyzer();
    let tokens = analyzer.check_text(query, caller)?;
    let doc = parse_query(query).expect("parses");
    analyzer.analyse(&doc, None, &Variables::from_json(variables), caller, tokens)
}

fn analyse(query: &str) -> Result<Analysis, Refusal> {
    analyse_as(query, json!({}), Caller::Authenticated)
}

fn code(query: &str) -> &'static str {
    match analyse(query) {
        Ok(a) => panic!("{query} should be refused, got {a:?}"),
        Err(r) => r.code.as_str(),
    }
}

fn cached(query: &str) -> CachePlan {
    match analyse(query).expect("accepted").plan {
        Plan::Cache(p) => p,
        Plan::Bypass => panic!("{query} should be cacheable"),
    }
}

#[test]
fn every_field_of_the_schema_declares_its_cost_and_dependencies() {
    let analyzer = analyzer();
    let (missing, stale) = analyzer.table().undeclared();
    assert!(
        missing.is_empty(),
        "fields without a declaration in analysis/catalog.rs: {missing:?}"
    );
    assert!(
        stale.is_empty(),
        "declarations that name no field of the schema: {stale:?}"
    );
    // A field returning a connection must be priced as one.
    for (ty, fields) in &analyzer.table().objects {
        for (name, field) in fields {
            if field.ty.named().ends_with("Connection") {
                assert_eq!(
                    field.rule.map(|r| r.cost),
                    Some(Cost::Connection),
                    "{ty}.{name}"
                );
            }
        }
    }
}

#[test]
fn the_introspection_queries_of_graphiql_and_graphql_js_pass_for_everyone() {
    for query in [
        include_str!("testdata/introspection_default.graphql"),
        include_str!("testdata/introspection_all_options.graphql"),
    ] {
        for caller in [Caller::Authenticated, Caller::Anonymous] {
            let a = analyse_as(query, json!({}), caller).unwrap_or_else(|r| panic!("{r:?}"));
            assert!(a.introspection);
            assert_eq!(a.plan, Plan::Bypass);
        }
    }
}

#[test]
fn introspection_can_be_switched_off() {
    let analyzer = crate::graphql::analyzer(&Limits::default(), false).unwrap();
    let doc = parse_query("{ __schema { queryType { name } } }").unwrap();
    let refused = analyzer
        .analyse(&doc, None, &Variables::default(), Caller::Authenticated, 1)
        .unwrap_err();
    assert_eq!(refused.code, "INTROSPECTION_DISABLED");
    let doc = parse_query("{ __typename }").unwrap();
    assert!(
        analyzer
            .analyse(&doc, None, &Variables::default(), Caller::Authenticated, 1)
            .is_ok()
    );
}

/// 40 fragments, each spreading the next one twice: 2^40 fields expanded.
fn exponential_fragments(n: usize) -> String {
    let mut doc = String::from("query { ...F0 }\n");
    for i in 0..n {
        doc.push_str(&format!(
            "fragment F{i} on Query {{ ...F{next} ...F{next} }}\n",
            next = i + 1
        ));
    }
    doc.push_str(&format!(
        "fragment F{n} on Query {{ jobs {{ totalCount }} }}\n"
    ));
    doc
}

#[test]
fn fragments_spread_exponentially_are_measured_once_and_refused() {
    let doc = exponential_fragments(40);
    assert!(doc.len() < 2_500);
    let refused = analyse(&doc).unwrap_err();
    assert_eq!(refused.code, "TOO_MANY_SELECTIONS", "{refused:?}");
    let (limit, value) = refused.limit.unwrap();
    assert_eq!(limit, QueryLimits::AUTHENTICATED.max_selections);
    assert!(value > 1 << 39, "{value}");
}

#[test]
fn fragments_no_operation_uses_count_toward_the_total_of_selections() {
    let fields = "id ".repeat(400);
    let mut doc = format!("{{ viewer {{ id }} }}\nfragment Big on Job {{ {fields} }}\n");
    for i in 0..10 {
        doc.push_str(&format!("fragment U{i} on Job {{ ...Big }}\n"));
    }
    let refused = analyse(&doc).unwrap_err();
    assert_eq!(refused.code, "TOO_MANY_SELECTIONS", "{refused:?}");
}

#[test]
fn fragment_cycles_are_refused_without_looping() {
    let refused =
        analyse("query { ...A } fragment A on Query { ...B } fragment B on Query { ...A }")
            .unwrap_err();
    assert_eq!(refused.code, "GRAPHQL_VALIDATION_FAILED");
}

#[test]
fn aliases_root_fields_and_tokens_are_bounded() {
    let aliases: String = (0..60).map(|i| format!("a{i}: __typename ")).collect();
    assert_eq!(
        code(&format!("{{ team {{ {aliases} }} }}")),
        "TOO_MANY_ALIASES"
    );
    let stats: String = (0..21)
        .map(|i| format!("s{i}: jobStats {{ total }} "))
        .collect();
    assert_eq!(code(&format!("{{ {stats} }}")), "TOO_MANY_ROOT_FIELDS");
    let typenames: String = (0..3_000).map(|i| format!("t{i}: __typename ")).collect();
    let refused = analyzer()
        .check_text(&format!("{{ {typenames} }}"), Caller::Authenticated)
        .unwrap_err();
    assert_eq!(refused.code, "TOO_MANY_TOKENS");
    let big = format!("{{ __typename }} # {}", "x".repeat(70_000));
    let refused = analyzer()
        .check_text(&big, Caller::Authenticated)
        .unwrap_err();
    assert_eq!(refused.code, "DOCUMENT_TOO_LARGE");
}

#[test]
fn depth_counts_fields_and_follows_fragments() {
    let mut q = String::from("{ viewer ");
    for _ in 0..6 {
        q.push_str("{ team { members { nodes ");
    }
    q.push_str("{ id }");
    for _ in 0..6 {
        q.push_str(" } } }");
    }
    q.push_str(" }");
    assert_eq!(code(&q), "QUERY_TOO_DEEP");
    let a = analyse("query { ...F } fragment F on Query { viewer { team { name } } }").unwrap();
    assert_eq!(a.depth, 3);
}

#[test]
fn cost_multiplies_pages_and_counts_lists_at_their_cap() {
    let refused = analyse(
        "{ users(first: 100) { nodes { jobs(first: 100) { nodes { team { jobs(first: 100) { nodes { id } } } } } } } }",
    )
    .unwrap_err();
    assert_eq!(refused.code, "QUERY_TOO_COMPLEX");
    let small = analyse(
        "{ users(first: 5) { nodes { jobs(first: 5) { nodes { team { jobs(first: 5) { nodes { id } } } } } } } }",
    )
    .unwrap();
    assert!(small.cost < 1000, "{}", small.cost);
    // A page of 20 (the default) vs 100 items: the items cost scales.
    let twenty = analyse("{ jobs { nodes { id title } } }").unwrap().cost;
    let hundred = analyse("{ jobs(first: 100) { nodes { id title } } }")
        .unwrap()
        .cost;
    assert!(hundred > 4 * twenty, "{twenty} → {hundred}");
    // `Job.resumes` counts at its cap of 100 per job.
    let with = analyse("{ jobs(first: 100) { nodes { resumes { status } } } }")
        .unwrap()
        .cost;
    assert!(with > 100 * 100, "{with}");
    // Variables drive page sizes too.
    let via_var = analyse_as(
        "query($n: Int) { jobs(first: $n) { nodes { id title } } }",
        json!({ "n": 100 }),
        Caller::Authenticated,
    )
    .unwrap()
    .cost;
    assert_eq!(via_var, hundred);
    // `totalCount` is a statement of its own: a thousand of them do not fit.
    let counts: String = (0..40)
        .map(|i| format!("c{i}: jobs(first: 0) {{ totalCount }} "))
        .collect();
    let a = analyse(&format!("{{ {counts} }}"));
    assert!(a.is_err(), "{a:?}");
}

#[test]
fn list_arguments_hold_at_most_what_their_type_allows() {
    let statuses: Vec<&str> = std::iter::repeat_n("SAVED", 100_000).collect();
    let refused = analyse_as(
        "query($f: JobFilter) { jobs(filter: $f) { totalCount } }",
        json!({ "f": { "statusIn": statuses } }),
        Caller::Authenticated,
    )
    .unwrap_err();
    assert_eq!(refused.code, "LIST_TOO_LONG");
    assert_eq!(refused.limit, Some((6, 100_000)));
    assert_eq!(
        code(
            "{ jobs(filter: { statusIn: [SAVED, APPLIED, SAVED, OFFER, REJECTED, ARCHIVED, INTERVIEWING] }) { totalCount } }"
        ),
        "LIST_TOO_LONG"
    );
    assert!(analyse("{ jobs(filter: { statusIn: [SAVED, APPLIED] }) { totalCount } }").is_ok());
    let jobs: Vec<serde_json::Value> = (0..1001)
        .map(|i| json!({ "title": format!("t{i}"), "company": "c" }))
        .collect();
    let refused = analyse_as(
        "mutation($i: [CreateJobInput!]!) { createJobs(input: $i) { id } }",
        json!({ "i": jobs }),
        Caller::Authenticated,
    )
    .unwrap_err();
    assert_eq!(refused.code, "LIST_TOO_LONG");
}

#[test]
fn only_skip_and_include_with_a_boolean_are_accepted() {
    assert_eq!(
        code("{ jobs @cached { totalCount } }"),
        "GRAPHQL_VALIDATION_FAILED"
    );
    assert_eq!(
        code("{ jobs @skip(if: \"yes\") { totalCount } }"),
        "GRAPHQL_VALIDATION_FAILED"
    );
    assert_eq!(
        code("query($s: String) { jobs @skip(if: $s) { totalCount } }"),
        "GRAPHQL_VALIDATION_FAILED"
    );
    assert_eq!(
        code("query @live { jobs { totalCount } }"),
        "GRAPHQL_VALIDATION_FAILED"
    );
    assert_eq!(
        code(
            "{ jobs @skip(if: false) @include(if: true) @skip(if: false) @include(if: true) @skip(if: true) { totalCount } }"
        ),
        "TOO_MANY_DIRECTIVES"
    );
    assert!(analyse("query($s: Boolean!) { jobs @skip(if: $s) { totalCount } }").is_ok());
    assert!(analyse("{ jobs @include(if: true) { totalCount } }").is_ok());
}

#[test]
fn one_sign_in_per_document() {
    let logins = "mutation { a: login(email: \"a@x.io\", password: \"p\") { token } b: login(email: \"a@x.io\", password: \"q\") { token } }";
    assert_eq!(
        analyse_as(logins, json!({}), Caller::Anonymous)
            .unwrap_err()
            .code,
        "TOO_MANY_SIGN_INS"
    );
    let one = "mutation { login(email: \"a@x.io\", password: \"p\") { token user { name team { name } } } }";
    assert_eq!(
        analyse_as(one, json!({}), Caller::Anonymous)
            .unwrap()
            .sign_ins,
        1
    );
}

#[test]
fn anonymous_callers_get_tighter_limits() {
    let q = "{ jobs(first: 100) { nodes { id title company status createdAt } } }";
    assert!(analyse(q).is_ok());
    assert_eq!(
        analyse_as(q, json!({}), Caller::Anonymous)
            .unwrap_err()
            .code,
        "QUERY_TOO_COMPLEX"
    );
}

#[test]
fn lists_stats_logs_and_details_are_cacheable_with_their_dependencies() {
    let p = cached("{ jobs(first: 5) { nodes { title createdBy { name } team { name } } } }");
    assert_eq!(
        p.kinds.iter().copied().collect::<Vec<_>>(),
        [CacheKind::JobsList]
    );
    assert_eq!(p.deps, [Dep::Jobs, Dep::Users]);
    assert!(!p.per_user);

    let p = cached("{ jobStats { total } }");
    assert_eq!(p.deps, [Dep::Jobs]);

    let p = cached("{ logs { nodes { action } } }");
    assert_eq!(p.deps, [Dep::Logs]);
    assert!(p.per_user);

    let id = ids::encode(IdKind::Job, 7).0;
    let p = cached(&format!(
        "{{ job(id: \"{id}\") {{ title resumes {{ status }} }} }}"
    ));
    assert_eq!(p.deps, [Dep::Job(7)]);
    assert_eq!(
        p.kinds.iter().copied().collect::<Vec<_>>(),
        [CacheKind::JobDetail]
    );
}

#[test]
fn job_ids_come_from_variables_too() {
    let id = ids::encode(IdKind::Job, 42).0;
    let a = analyse_as(
        "query($id: ID!) { job(id: $id) { title } }",
        json!({ "id": id }),
        Caller::Authenticated,
    )
    .unwrap();
    assert!(
        matches!(a.plan, Plan::Cache(ref c) if c.deps == [Dep::Job(42)]),
        "{a:?}"
    );
    let a = analyse_as(
        "query($id: ID!) { job(id: $id) { title } }",
        json!({}),
        Caller::Authenticated,
    )
    .unwrap();
    assert_eq!(a.plan, Plan::Bypass);
    assert_eq!(
        analyse("{ job(id: \"bogus\") { title } }").unwrap().plan,
        Plan::Bypass
    );
}

#[test]
fn fragments_are_followed_for_dependencies() {
    let p = cached(
        "query { ...F } fragment F on Query { jobs { nodes { ...J } } } fragment J on Job { resumes { status } }",
    );
    assert_eq!(p.deps, [Dep::Jobs, Dep::Resumes]);
    // The same fragment directly below `job(id:)` is covered by that job.
    let id = ids::encode(IdKind::Job, 3).0;
    let p = cached(&format!(
        "query {{ job(id: \"{id}\") {{ ...J }} jobs {{ nodes {{ ...J }} }} }} fragment J on Job {{ resumes {{ status }} }}"
    ));
    assert_eq!(p.deps, [Dep::Jobs, Dep::Job(3), Dep::Resumes]);
}

#[test]
fn mutations_introspection_and_other_roots_bypass_the_cache() {
    for query in [
        "mutation { deleteJob(id: \"x\") }",
        "{ __schema { types { name } } }",
        "{ viewer { id } }",
        "{ jobs { totalCount } users { totalCount } }",
        "{ __typename }",
    ] {
        assert_eq!(analyse(query).unwrap().plan, Plan::Bypass, "{query}");
    }
}

#[test]
fn mixed_roots_keep_every_kind() {
    let p = cached("{ jobs { totalCount } jobStats { total } logs { totalCount } }");
    assert_eq!(p.kinds.len(), 3);
    assert_eq!(p.deps, [Dep::Jobs, Dep::Logs]);
}

#[test]
fn every_operation_of_a_document_is_measured() {
    let mut doc = exponential_fragments(30);
    doc = doc.replacen("query {", "query A {", 1);
    doc.push_str("query B { __typename }");
    let analyzer = analyzer();
    let parsed = parse_query(&doc).unwrap();
    let refused = analyzer
        .analyse(
            &parsed,
            Some("B"),
            &Variables::default(),
            Caller::Authenticated,
            10,
        )
        .unwrap_err();
    assert_eq!(refused.code, "TOO_MANY_SELECTIONS");
}

#[test]
fn answers_that_could_pass_the_size_limit_are_measured_the_others_not() {
    let lean = analyse("{ jobs(first: 20) { totalCount nodes { id title company team { name } createdBy { name email } } } }").unwrap();
    assert!(!lean.needs_measure, "{lean:?}");
    // A bounded long field counts as many short ones: one job's
    // description is small, a hundred pages of them are not.
    let one = analyse("{ job(id: \"Sm9iOjE\") { title description } }").unwrap();
    assert!(!one.needs_measure, "{one:?}");
    let many =
        analyse("{ users(first: 100) { nodes { jobs(first: 40) { nodes { description } } } } }")
            .unwrap();
    assert!(many.needs_measure, "{many:?}");
    // A field without a bound, wherever it is.
    assert!(
        analyse("{ job(id: \"Sm9iOjE\") { resumes { content } } }")
            .unwrap()
            .needs_measure
    );
    // Enough fields that even short ones could add up past the limit.
    let wide = analyse("{ users(first: 100) { nodes { jobs(first: 100) { nodes { id title company location url } } } } }").unwrap();
    assert!(wide.needs_measure);
}
