//! Per-request DataLoaders: every nested relation is fetched one batch per
//! level (`WHERE id IN (…)`, or one windowed statement for per-parent
//! connections), never one query per row. Each loader carries the caller's
//! team and filters by it in SQL, so nothing of another team can be loaded.

use std::{collections::HashMap, hash::Hash, sync::Arc};

use async_graphql::dataloader::{DataLoader, HashMapCache, Loader};
use sea_orm::{DatabaseConnection, DbErr};
use tracing::Instrument;

use crate::db::{
    self,
    entities::{job, log, resume, team, user},
    jobs::{JobFilter, JobParent},
    keyset::{Page, PageRequest},
    users::UserFilter,
};

type LoadResult<K, V> = Result<HashMap<K, V>, Arc<DbErr>>;

/// A batch that failed is logged here, once; every field that waited for
/// it gets the same error without logging it again.
fn failed(err: DbErr) -> Arc<DbErr> {
    if crate::db::is_unavailable(&err) {
        tracing::warn!(error = %err, "a batched query could not reach the database");
    } else {
        tracing::error!(error = %err, "a batched query failed");
    }
    Arc::new(err)
}

/// Shared by every loader of one request.
#[derive(Clone)]
pub struct Scope {
    db: DatabaseConnection,
    team_id: i64,
}

/// Groups keys by their non-parent part so each distinct set of arguments
/// costs one statement.
fn group_by_args<K, A: Hash + Eq + Clone>(
    keys: &[K],
    split: impl Fn(&K) -> (A, i64),
) -> HashMap<A, Vec<i64>> {
    let mut groups: HashMap<A, Vec<i64>> = HashMap::new();
    for key in keys {
        let (args, parent) = split(key);
        groups.entry(args).or_default().push(parent);
    }
    groups
}

pub struct TeamLoader(Scope);

impl Loader<i64> for TeamLoader {
    type Value = team::Model;
    type Error = Arc<DbErr>;

    async fn load(&self, keys: &[i64]) -> LoadResult<i64, team::Model> {
        // Only the caller's own team is ever visible.
        let mut out = HashMap::new();
        if keys.contains(&self.0.team_id)
            && let Some(team) = db::teams::find(&self.0.db, self.0.team_id)
                .await
                .map_err(failed)?
        {
            out.insert(team.id, team);
        }
        Ok(out)
    }
}

pub struct UserLoader(Scope);

impl Loader<i64> for UserLoader {
    type Value = user::Model;
    type Error = Arc<DbErr>;

    async fn load(&self, keys: &[i64]) -> LoadResult<i64, user::Model> {
        let rows = db::users::by_ids(&self.0.db, self.0.team_id, keys)
            .await
            .map_err(failed)?;
        Ok(rows.into_iter().map(|u| (u.id, u)).collect())
    }
}

pub struct JobLoader(Scope);

impl Loader<i64> for JobLoader {
    type Value = job::Model;
    type Error = Arc<DbErr>;

    async fn load(&self, keys: &[i64]) -> LoadResult<i64, job::Model> {
        let rows = db::jobs::by_ids(&self.0.db, self.0.team_id, keys)
            .await
            .map_err(failed)?;
        Ok(rows.into_iter().map(|j| (j.id, j)).collect())
    }
}

/// Resumes of a job (callers pass only ids of jobs already in the team).
pub struct ResumesByJobLoader(Scope);

impl Loader<i64> for ResumesByJobLoader {
    type Value = Vec<resume::Model>;
    type Error = Arc<DbErr>;

    async fn load(&self, keys: &[i64]) -> LoadResult<i64, Vec<resume::Model>> {
        db::resumes::by_jobs(&self.0.db, keys).await.map_err(failed)
    }
}

/// A page of jobs under one parent (`Team.jobs`, `User.jobs`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct JobPageKey {
    pub parent: JobParent,
    pub parent_id: i64,
    pub filter: JobFilter,
    pub page: PageRequest,
}

pub struct JobPagesLoader(Scope);

impl Loader<JobPageKey> for JobPagesLoader {
    type Value = Page<job::Model>;
    type Error = Arc<DbErr>;

    async fn load(&self, keys: &[JobPageKey]) -> LoadResult<JobPageKey, Page<job::Model>> {
        let groups = group_by_args(keys, |k| {
            ((k.parent, k.filter.clone(), k.page.clone()), k.parent_id)
        });
        let mut out = HashMap::new();
        for ((parent, filter, page), ids) in groups {
            let mut pages =
                db::jobs::pages_by_parent(&self.0.db, self.0.team_id, parent, &ids, &filter, &page)
                    .await
                    .map_err(failed)?;
            for parent_id in ids {
                let key = JobPageKey {
                    parent,
                    parent_id,
                    filter: filter.clone(),
                    page: page.clone(),
                };
                out.insert(key, pages.remove(&parent_id).unwrap_or_default());
            }
        }
        Ok(out)
    }
}

/// `totalCount` of a per-parent job connection.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct JobCountKey {
    pub parent: JobParent,
    pub parent_id: i64,
    pub filter: JobFilter,
}

pub struct JobCountsLoader(Scope);

impl Loader<JobCountKey> for JobCountsLoader {
    type Value = u64;
    type Error = Arc<DbErr>;

    async fn load(&self, keys: &[JobCountKey]) -> LoadResult<JobCountKey, u64> {
        let groups = group_by_args(keys, |k| ((k.parent, k.filter.clone()), k.parent_id));
        let mut out = HashMap::new();
        for ((parent, filter), ids) in groups {
            let counts =
                db::jobs::counts_by_parent(&self.0.db, self.0.team_id, parent, &ids, &filter)
                    .await
                    .map_err(failed)?;
            for parent_id in ids {
                let n = counts.get(&parent_id).copied().unwrap_or(0);
                out.insert(
                    JobCountKey {
                        parent,
                        parent_id,
                        filter: filter.clone(),
                    },
                    n,
                );
            }
        }
        Ok(out)
    }
}

/// A page of a team's members (`Team.members`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MemberPageKey {
    pub team_id: i64,
    pub filter: UserFilter,
    pub page: PageRequest,
}

pub struct MemberPagesLoader(Scope);

impl Loader<MemberPageKey> for MemberPagesLoader {
    type Value = Page<user::Model>;
    type Error = Arc<DbErr>;

    async fn load(&self, keys: &[MemberPageKey]) -> LoadResult<MemberPageKey, Page<user::Model>> {
        let groups = group_by_args(keys, |k| ((k.filter.clone(), k.page.clone()), k.team_id));
        let mut out = HashMap::new();
        for ((filter, page), ids) in groups {
            // Only the caller's team has visible members.
            let mut pages = if ids.contains(&self.0.team_id) {
                db::users::pages_by_team(&self.0.db, self.0.team_id, &filter, &page)
                    .await
                    .map_err(failed)?
            } else {
                HashMap::new()
            };
            for team_id in ids {
                let key = MemberPageKey {
                    team_id,
                    filter: filter.clone(),
                    page: page.clone(),
                };
                out.insert(key, pages.remove(&team_id).unwrap_or_default());
            }
        }
        Ok(out)
    }
}

/// A page of one user's log entries (`User.logs`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LogPageKey {
    pub user_id: i64,
    pub page: PageRequest,
}

pub struct LogPagesLoader(Scope);

impl Loader<LogPageKey> for LogPagesLoader {
    type Value = Page<log::Model>;
    type Error = Arc<DbErr>;

    async fn load(&self, keys: &[LogPageKey]) -> LoadResult<LogPageKey, Page<log::Model>> {
        let groups = group_by_args(keys, |k| (k.page.clone(), k.user_id));
        let mut out = HashMap::new();
        for (page, ids) in groups {
            let mut pages = db::logs::pages_by_user(&self.0.db, self.0.team_id, &ids, &page)
                .await
                .map_err(failed)?;
            for user_id in ids {
                let key = LogPageKey {
                    user_id,
                    page: page.clone(),
                };
                out.insert(key, pages.remove(&user_id).unwrap_or_default());
            }
        }
        Ok(out)
    }
}

/// `totalCount` of `User.logs`, keyed by user id.
pub struct LogCountsLoader(Scope);

impl Loader<i64> for LogCountsLoader {
    type Value = u64;
    type Error = Arc<DbErr>;

    async fn load(&self, keys: &[i64]) -> LoadResult<i64, u64> {
        let counts = db::logs::counts_by_user(&self.0.db, self.0.team_id, keys)
            .await
            .map_err(failed)?;
        Ok(keys
            .iter()
            .map(|k| (*k, counts.get(k).copied().unwrap_or(0)))
            .collect())
    }
}

/// A loader whose batches are spans of their own (`dataloader <name>`, with
/// the number of keys), for traces.
pub struct Traced<L> {
    inner: L,
    name: &'static str,
}

impl<K, L> Loader<K> for Traced<L>
where
    K: Send + Sync + Hash + Eq + Clone + 'static,
    L: Loader<K>,
{
    type Value = L::Value;
    type Error = L::Error;

    async fn load(&self, keys: &[K]) -> Result<HashMap<K, Self::Value>, Self::Error> {
        let span = crate::telemetry::inner_span(|| {
            tracing::debug_span!(
                "dataloader.batch",
                otel.name = %format_args!("dataloader {}", self.name),
                loader = self.name,
                keys = keys.len(),
            )
        });
        self.inner.load(keys).instrument(span).await
    }
}

type Cached<L> = DataLoader<Traced<L>, HashMapCache>;

/// Every loader of one request. Created per request, never shared: a loader
/// with a cache on the schema would serve one caller's rows to another.
pub struct Loaders {
    pub teams: Cached<TeamLoader>,
    pub users: Cached<UserLoader>,
    pub jobs: Cached<JobLoader>,
    pub resumes_by_job: Cached<ResumesByJobLoader>,
    pub job_pages: Cached<JobPagesLoader>,
    pub job_counts: Cached<JobCountsLoader>,
    pub member_pages: Cached<MemberPagesLoader>,
    pub log_pages: Cached<LogPagesLoader>,
    pub log_counts: Cached<LogCountsLoader>,
}

/// Batches run in tasks of their own, carrying the request's span and
/// counters (their SQL statements count towards the request).
fn cached<L: Send + Sync + 'static>(loader: L) -> Cached<L> {
    let name = std::any::type_name::<L>()
        .rsplit("::")
        .next()
        .unwrap_or("loader");
    DataLoader::with_cache(
        Traced {
            inner: loader,
            name,
        },
        |batch| tokio::spawn(crate::telemetry::carry(batch)),
        HashMapCache::default(),
    )
}

impl Loaders {
    /// Drops everything the loaders remember: a subscription reads the
    /// current rows for each event, not those of the first one.
    pub fn forget(&self) {
        self.teams.clear::<i64>();
        self.users.clear::<i64>();
        self.jobs.clear::<i64>();
        self.resumes_by_job.clear::<i64>();
        self.job_pages.clear::<JobPageKey>();
        self.job_counts.clear::<JobCountKey>();
        self.member_pages.clear::<MemberPageKey>();
        self.log_pages.clear::<LogPageKey>();
        self.log_counts.clear::<i64>();
    }

    /// Hands rows read along with a page (one joined statement) to the
    /// loaders, so the nested fields asking for them run no SQL.
    pub async fn prime(&self, along: db::along::Alongside) {
        if !along.users.is_empty() {
            self.users
                .feed_many(along.users.into_iter().map(|u| (u.id, u)))
                .await;
        }
        if let Some(team) = along.team {
            self.teams.feed_one(team.id, team).await;
        }
    }

    pub fn new(db: DatabaseConnection, team_id: i64) -> Self {
        let scope = Scope { db, team_id };
        Self {
            teams: cached(TeamLoader(scope.clone())),
            users: cached(UserLoader(scope.clone())),
            jobs: cached(JobLoader(scope.clone())),
            resumes_by_job: cached(ResumesByJobLoader(scope.clone())),
            job_pages: cached(JobPagesLoader(scope.clone())),
            job_counts: cached(JobCountsLoader(scope.clone())),
            member_pages: cached(MemberPagesLoader(scope.clone())),
            log_pages: cached(LogPagesLoader(scope.clone())),
            log_counts: cached(LogCountsLoader(scope)),
        }
    }
}
