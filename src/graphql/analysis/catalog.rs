//! What every field of the schema costs and what its answer depends on.
//!
//! The cost model and the response cache both need to know, per field,
//! how much work it makes and which data can change its value. Both are
//! declared here, once, for every field of every object type; a test walks
//! the exported schema and fails when a field is missing, so a new field
//! cannot silently be free or silently serve stale answers.

use crate::cache::{CacheKind, Dep};

/// How a field's cost is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cost {
    /// A value read from the parent's row: 1.
    Leaf,
    /// One related object (a DataLoader batch): 1 + its selection.
    Object,
    /// A connection: `first`/`last` (default 20) times its items.
    Connection,
    /// `edges`/`nodes`/`items` of a connection or page: counted once per
    /// item of the enclosing connection.
    Items,
    /// `jobsPage`: `pageSize` (default 20) times its items.
    Page,
    /// A list of at most this many entries, each costing its selection.
    List(u64),
    /// A list whose length is an argument (`topCompanies(limit:)`),
    /// or the length of a list argument (`createJobs(input:)`).
    ListArg(&'static str, u64),
    /// A statement of its own (`totalCount`, an aggregate): 5.
    Aggregate,
}

/// What a field's answer depends on, beyond the row of its parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depends {
    /// Nothing more than whatever fetched its parent.
    Parent,
    /// A namespace of the team's data.
    On(Dep),
    /// `logs` and `User.logs`: the team's log, and who asks.
    LogsOfCaller,
    /// `Job.resumes`: covered by `Dep::Job(id)` directly under `job(id:)`,
    /// by `Dep::Resumes` anywhere else.
    ResumesOfJob,
    /// A root field whose answer is cached as this kind.
    Root(CacheKind, Dep),
    /// `job(id:)`: cached as a detail under `Dep::Job(id)`.
    RootJob,
    /// Never cached (mutations, the viewer, single users and resumes).
    Uncacheable,
}

/// One field's declaration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldRule {
    pub cost: Cost,
    pub depends: Depends,
}

const fn rule(cost: Cost, depends: Depends) -> FieldRule {
    FieldRule { cost, depends }
}

const LEAF: FieldRule = rule(Cost::Leaf, Depends::Parent);

/// The fields of one object type: `row` lists scalars read from the
/// type's own row (they depend on whatever fetched it); `fields` declares
/// everything else.
struct TypeRules {
    name: &'static str,
    row: &'static [&'static str],
    fields: &'static [(&'static str, FieldRule)],
}

/// Most resumes `Job.resumes` returns (its cost multiplier).
pub const RESUMES_PER_JOB: u64 = 100;

const CONNECTION_FIELDS: &[(&str, FieldRule)] = &[
    ("edges", rule(Cost::Items, Depends::Parent)),
    ("nodes", rule(Cost::Items, Depends::Parent)),
    ("pageInfo", rule(Cost::Object, Depends::Parent)),
    ("totalCount", rule(Cost::Aggregate, Depends::Parent)),
];

const EDGE_FIELDS: &[(&str, FieldRule)] = &[("node", rule(Cost::Object, Depends::Parent))];

const UNCACHED_OBJECT: FieldRule = rule(Cost::Object, Depends::Uncacheable);

static CATALOG: &[TypeRules] = &[
    TypeRules {
        name: "Query",
        row: &[],
        fields: &[
            ("viewer", UNCACHED_OBJECT),
            ("job", rule(Cost::Object, Depends::RootJob)),
            (
                "jobs",
                rule(
                    Cost::Connection,
                    Depends::Root(CacheKind::JobsList, Dep::Jobs),
                ),
            ),
            (
                "jobsPage",
                rule(Cost::Page, Depends::Root(CacheKind::JobsList, Dep::Jobs)),
            ),
            (
                "jobStats",
                rule(Cost::Object, Depends::Root(CacheKind::JobStats, Dep::Jobs)),
            ),
            ("user", UNCACHED_OBJECT),
            ("users", rule(Cost::Connection, Depends::Uncacheable)),
            ("team", UNCACHED_OBJECT),
            (
                "logs",
                rule(Cost::Connection, Depends::Root(CacheKind::Logs, Dep::Logs)),
            ),
            ("resume", UNCACHED_OBJECT),
        ],
    },
    TypeRules {
        name: "Mutation",
        row: &[],
        fields: &[
            ("signup", UNCACHED_OBJECT),
            ("login", UNCACHED_OBJECT),
            ("createJob", UNCACHED_OBJECT),
            (
                "createJobs",
                rule(Cost::ListArg("input", 1), Depends::Uncacheable),
            ),
            ("updateJob", UNCACHED_OBJECT),
            ("deleteJob", rule(Cost::Leaf, Depends::Uncacheable)),
            ("createUser", UNCACHED_OBJECT),
            ("updateUser", UNCACHED_OBJECT),
            ("deactivateUser", UNCACHED_OBJECT),
            ("generateResume", UNCACHED_OBJECT),
        ],
    },
    TypeRules {
        // Subscriptions run outside the response cache, one result per event.
        name: "Subscription",
        row: &[],
        fields: &[
            ("jobEvents", UNCACHED_OBJECT),
            ("resumeUpdates", UNCACHED_OBJECT),
        ],
    },
    TypeRules {
        name: "JobEvent",
        row: &["kind", "jobId", "status"],
        fields: &[("job", UNCACHED_OBJECT)],
    },
    TypeRules {
        name: "ResumeUpdate",
        row: &["resumeId", "jobId", "status"],
        fields: &[("resume", UNCACHED_OBJECT)],
    },
    TypeRules {
        name: "AuthPayload",
        row: &["token"],
        fields: &[("user", rule(Cost::Object, Depends::Parent))],
    },
    TypeRules {
        name: "Job",
        row: &[
            "id",
            "title",
            "company",
            "location",
            "url",
            "description",
            "salaryMin",
            "salaryMax",
            "status",
            "createdAt",
            "updatedAt",
        ],
        fields: &[
            // Teams never change after sign-up; their lists declare their own.
            ("team", rule(Cost::Object, Depends::Parent)),
            ("createdBy", rule(Cost::Object, Depends::On(Dep::Users))),
            (
                "resumes",
                rule(Cost::List(RESUMES_PER_JOB), Depends::ResumesOfJob),
            ),
        ],
    },
    TypeRules {
        name: "JobConnection",
        row: &[],
        fields: CONNECTION_FIELDS,
    },
    TypeRules {
        name: "JobEdge",
        row: &["cursor"],
        fields: EDGE_FIELDS,
    },
    TypeRules {
        name: "JobPage",
        row: &["page", "pageSize", "totalPages", "hasNext", "hasPrev"],
        fields: &[
            ("items", rule(Cost::Items, Depends::Parent)),
            ("total", rule(Cost::Aggregate, Depends::Parent)),
        ],
    },
    TypeRules {
        name: "JobStats",
        row: &[],
        fields: &[
            ("total", rule(Cost::Aggregate, Depends::Parent)),
            ("byStatus", rule(Cost::List(6), Depends::Parent)),
            (
                "topCompanies",
                rule(Cost::ListArg("limit", 10), Depends::Parent),
            ),
            ("createdLast7Days", rule(Cost::Aggregate, Depends::Parent)),
        ],
    },
    TypeRules {
        name: "StatusCount",
        row: &["status", "count"],
        fields: &[],
    },
    TypeRules {
        name: "CompanyCount",
        row: &["company", "count"],
        fields: &[],
    },
    TypeRules {
        name: "Log",
        row: &["id", "action", "level", "message", "metadata", "createdAt"],
        fields: &[
            ("user", rule(Cost::Object, Depends::On(Dep::Users))),
            ("team", rule(Cost::Object, Depends::Parent)),
        ],
    },
    TypeRules {
        name: "LogConnection",
        row: &[],
        fields: CONNECTION_FIELDS,
    },
    TypeRules {
        name: "LogEdge",
        row: &["cursor"],
        fields: EDGE_FIELDS,
    },
    TypeRules {
        name: "PageInfo",
        row: &["hasNextPage", "hasPreviousPage", "startCursor", "endCursor"],
        fields: &[],
    },
    TypeRules {
        name: "Resume",
        row: &[
            "id",
            "status",
            "content",
            "model",
            "error",
            "createdAt",
            "completedAt",
        ],
        fields: &[
            ("job", rule(Cost::Object, Depends::On(Dep::Jobs))),
            ("user", rule(Cost::Object, Depends::On(Dep::Users))),
        ],
    },
    TypeRules {
        name: "Team",
        row: &["id", "name", "slug", "createdAt"],
        fields: &[
            ("members", rule(Cost::Connection, Depends::On(Dep::Users))),
            ("jobs", rule(Cost::Connection, Depends::On(Dep::Jobs))),
        ],
    },
    TypeRules {
        name: "User",
        row: &[
            "id",
            "email",
            "name",
            "role",
            "isActive",
            "createdAt",
            "updatedAt",
        ],
        fields: &[
            ("team", rule(Cost::Object, Depends::Parent)),
            ("jobs", rule(Cost::Connection, Depends::On(Dep::Jobs))),
            ("logs", rule(Cost::Connection, Depends::LogsOfCaller)),
        ],
    },
    TypeRules {
        name: "UserConnection",
        row: &[],
        fields: CONNECTION_FIELDS,
    },
    TypeRules {
        name: "UserEdge",
        row: &["cursor"],
        fields: EDGE_FIELDS,
    },
];

/// The declaration of `type_name.field`, if there is one.
pub fn field_rule(type_name: &str, field: &str) -> Option<FieldRule> {
    let rules = CATALOG.iter().find(|t| t.name == type_name)?;
    if rules.row.contains(&field) {
        return Some(LEAF);
    }
    rules
        .fields
        .iter()
        .find(|(name, _)| *name == field)
        .map(|(_, rule)| *rule)
}

/// Every declared `(type, field)`, for the test that holds the catalog
/// against the schema.
pub fn declared() -> Vec<(&'static str, &'static str)> {
    CATALOG
        .iter()
        .flat_map(|t| {
            t.row
                .iter()
                .map(move |f| (t.name, *f))
                .chain(t.fields.iter().map(move |(f, _)| (t.name, *f)))
        })
        .collect()
}
