//! Which responses may be cached, for how long, and what makes them stale.
//!
//! A document is read once (per distinct request text, see `PlanCache`) and
//! turned into a [`Plan`]: the cached kinds its root fields belong to and the
//! namespaces ([`Dep`]) whose change must make the answer unreachable. The
//! mapping over-approximates on purpose: an extra dependency costs a miss,
//! a missing one would serve stale data.

use std::collections::BTreeSet;

use async_graphql::{
    Name, Positioned, Variables,
    parser::types::{
        DocumentOperations, ExecutableDocument, OperationType, Selection, SelectionSet,
    },
};

use crate::graphql::ids::{self, Kind as IdKind};

/// The cached kinds of response, each with its own lifetime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CacheKind {
    /// `jobs`, `jobsPage`
    JobsList,
    /// `job(id:)`
    JobDetail,
    /// `jobStats`
    JobStats,
    /// `logs`
    Logs,
}

impl CacheKind {
    pub const ALL: [CacheKind; 4] = [Self::JobsList, Self::JobDetail, Self::JobStats, Self::Logs];

    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Self::JobsList => "jobs_list",
            Self::JobDetail => "job_detail",
            Self::JobStats => "job_stats",
            Self::Logs => "logs",
        }
    }
}

/// A namespace of one team's data whose change invalidates answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dep {
    /// Any job of the team (lists, stats, nested job connections).
    Jobs,
    /// One job's own fields and resumes.
    Job(i64),
    /// Any user of the team (creators, log authors, members).
    Users,
    /// Any activity-log entry of the team.
    Logs,
    /// Any resume of the team.
    Resumes,
}

/// What to do with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Always executed (mutations, introspection, uncached fields).
    Bypass,
    Cache(CachePlan),
}

/// How a cacheable request is cached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachePlan {
    /// The kinds of its root fields; the shortest lifetime wins.
    pub kinds: BTreeSet<CacheKind>,
    /// Sorted, deduplicated dependencies.
    pub deps: Vec<Dep>,
    /// Its answer depends on who asks, not only on the team and role
    /// (a non-admin sees only their own log entries).
    pub per_user: bool,
}

/// How deep fragments may nest before the walk gives up (validation would
/// refuse such a document anyway).
const MAX_DEPTH: usize = 64;

/// Reads a parsed document. `operation_name` picks the operation as
/// execution would.
pub fn plan(doc: &ExecutableDocument, operation_name: Option<&str>, variables: &Variables) -> Plan {
    let operation = match (&doc.operations, operation_name) {
        (DocumentOperations::Single(op), _) => op,
        (DocumentOperations::Multiple(ops), Some(name)) => match ops.get(name) {
            Some(op) => op,
            None => return Plan::Bypass,
        },
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => match ops.values().next() {
            Some(op) => op,
            None => return Plan::Bypass,
        },
        _ => return Plan::Bypass,
    };
    if operation.node.ty != OperationType::Query {
        return Plan::Bypass;
    }
    let mut walk = Walk {
        doc,
        variables,
        kinds: BTreeSet::new(),
        deps: BTreeSet::new(),
        per_user: false,
    };
    if !walk.root(&operation.node.selection_set, 0) || walk.kinds.is_empty() {
        return Plan::Bypass;
    }
    Plan::Cache(CachePlan {
        kinds: walk.kinds,
        deps: walk.deps.into_iter().collect(),
        per_user: walk.per_user,
    })
}

struct Walk<'a> {
    doc: &'a ExecutableDocument,
    variables: &'a Variables,
    kinds: BTreeSet<CacheKind>,
    deps: BTreeSet<Dep>,
    per_user: bool,
}

impl<'a> Walk<'a> {
    /// Root fields; `false` means the document is not cacheable.
    fn root(&mut self, set: &Positioned<SelectionSet>, depth: usize) -> bool {
        if depth > MAX_DEPTH {
            return false;
        }
        for selection in &set.node.items {
            let ok = match &selection.node {
                Selection::Field(field) => {
                    let field = &field.node;
                    match field.name.node.as_str() {
                        "__typename" => true,
                        "jobs" | "jobsPage" => {
                            self.kinds.insert(CacheKind::JobsList);
                            self.deps.insert(Dep::Jobs);
                            self.nested(&field.selection_set, false, depth + 1)
                        }
                        "jobStats" => {
                            self.kinds.insert(CacheKind::JobStats);
                            self.deps.insert(Dep::Jobs);
                            true
                        }
                        "logs" => {
                            self.kinds.insert(CacheKind::Logs);
                            self.deps.insert(Dep::Logs);
                            self.per_user = true;
                            self.nested(&field.selection_set, false, depth + 1)
                        }
                        "job" => match self.job_id(field) {
                            Some(id) => {
                                self.kinds.insert(CacheKind::JobDetail);
                                self.deps.insert(Dep::Job(id));
                                self.nested(&field.selection_set, true, depth + 1)
                            }
                            None => false,
                        },
                        _ => false,
                    }
                }
                Selection::FragmentSpread(spread) => {
                    match self.fragment(&spread.node.fragment_name.node) {
                        Some(set) => self.root(set, depth + 1),
                        None => false,
                    }
                }
                Selection::InlineFragment(inline) => {
                    self.root(&inline.node.selection_set, depth + 1)
                }
            };
            if !ok {
                return false;
            }
        }
        true
    }

    /// Fields below a root field. `under_job` is true directly below
    /// `job(id:)`, whose `resumes` are covered by `Dep::Job`.
    fn nested(&mut self, set: &Positioned<SelectionSet>, under_job: bool, depth: usize) -> bool {
        if depth > MAX_DEPTH {
            return false;
        }
        for selection in &set.node.items {
            let ok = match &selection.node {
                Selection::Field(field) => {
                    let field = &field.node;
                    match field.name.node.as_str() {
                        "createdBy" | "user" | "members" | "users" => {
                            self.deps.insert(Dep::Users);
                        }
                        "resumes" if !under_job => {
                            self.deps.insert(Dep::Resumes);
                        }
                        "jobs" | "job" => {
                            self.deps.insert(Dep::Jobs);
                        }
                        "logs" => {
                            self.deps.insert(Dep::Logs);
                            self.per_user = true;
                        }
                        _ => {}
                    }
                    self.nested(&field.selection_set, false, depth + 1)
                }
                Selection::FragmentSpread(spread) => {
                    match self.fragment(&spread.node.fragment_name.node) {
                        Some(set) => self.nested(set, under_job, depth + 1),
                        None => false,
                    }
                }
                Selection::InlineFragment(inline) => {
                    self.nested(&inline.node.selection_set, under_job, depth + 1)
                }
            };
            if !ok {
                return false;
            }
        }
        true
    }

    /// A named fragment's selection set (cycles end at `MAX_DEPTH`).
    fn fragment(&self, name: &Name) -> Option<&'a Positioned<SelectionSet>> {
        Some(&self.doc.fragments.get(name)?.node.selection_set)
    }

    /// The job id of `job(id: …)`, literal or variable.
    fn job_id(&self, field: &async_graphql::parser::types::Field) -> Option<i64> {
        let value = field.get_argument("id")?;
        let value = value
            .node
            .clone()
            .into_const_with(|name| self.variables.get(&name).cloned().ok_or(()));
        match value.ok()? {
            async_graphql::Value::String(raw) => {
                ids::decode(IdKind::Job, &async_graphql::ID(raw), "id").ok()
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use async_graphql::parser::parse_query;

    use super::*;

    fn plan_of(query: &str, variables: serde_json::Value) -> Plan {
        let doc = parse_query(query).unwrap();
        let vars = Variables::from_json(variables);
        plan(&doc, None, &vars)
    }

    fn cached(query: &str) -> CachePlan {
        match plan_of(query, serde_json::json!({})) {
            Plan::Cache(p) => p,
            Plan::Bypass => panic!("{query} should be cacheable"),
        }
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
        let p = plan_of(
            "query($id: ID!) { job(id: $id) { title } }",
            serde_json::json!({ "id": id }),
        );
        assert!(
            matches!(p, Plan::Cache(ref c) if c.deps == [Dep::Job(42)]),
            "{p:?}"
        );
        assert_eq!(
            plan_of(
                "query($id: ID!) { job(id: $id) { title } }",
                serde_json::json!({})
            ),
            Plan::Bypass
        );
        assert_eq!(
            plan_of("{ job(id: \"bogus\") { title } }", serde_json::json!({})),
            Plan::Bypass
        );
    }

    #[test]
    fn fragments_are_followed() {
        let p = cached(
            "query { ...F } fragment F on Query { jobs { nodes { ...J } } } fragment J on Job { resumes { status } }",
        );
        assert_eq!(p.deps, [Dep::Jobs, Dep::Resumes]);
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
            assert_eq!(
                plan_of(query, serde_json::json!({})),
                Plan::Bypass,
                "{query}"
            );
        }
    }

    #[test]
    fn mixed_roots_keep_every_kind() {
        let p = cached("{ jobs { totalCount } jobStats { total } logs { totalCount } }");
        assert_eq!(p.kinds.len(), 3);
        assert_eq!(p.deps, [Dep::Jobs, Dep::Logs]);
    }
}
