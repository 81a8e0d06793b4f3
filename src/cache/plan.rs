//! What a cacheable answer is: its kinds (each with its own lifetime) and
//! the namespaces of the team's data whose change makes it stale. The
//! schema's analysis (`graphql::analysis`) produces the plan; the cache
//! only reads it. The mapping over-approximates on purpose: an extra
//! dependency costs a miss, a missing one would serve stale data.

use std::collections::BTreeSet;

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

impl Dep {
    /// The namespace's kind, without the job id (a metric label).
    pub fn kind_name(self) -> &'static str {
        match self {
            Dep::Jobs => "jobs",
            Dep::Job(_) => "job",
            Dep::Users => "users",
            Dep::Logs => "logs",
            Dep::Resumes => "resumes",
        }
    }
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
