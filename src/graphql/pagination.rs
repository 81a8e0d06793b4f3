//! Relay cursor connections (`edges { cursor node }`, `pageInfo`) plus
//! `nodes` and a lazily computed `totalCount`.

use async_graphql::{ComplexObject, Context, SimpleObject};

use super::{
    context::ContextExt,
    loaders::JobCountKey,
    types::{Job, Log, User},
};
use crate::{
    db::{
        self,
        jobs::{JobFilter, JobParent},
        keyset::{Cursor, Keyed, Page, PageRequest, Sort},
        logs::LogFilter,
        users::UserFilter,
    },
    error::{AppError, AppResult},
};

/// Default page size when neither `first` nor `last` is given.
pub const DEFAULT_PAGE_SIZE: u64 = 20;

/// Relay's page information.
#[derive(SimpleObject, Clone, Debug)]
pub struct PageInfo {
    pub has_next_page: bool,
    pub has_previous_page: bool,
    pub start_cursor: Option<String>,
    pub end_cursor: Option<String>,
}

/// Where `totalCount` comes from; evaluated only when the field is selected.
#[derive(Clone, Debug)]
pub enum TotalCount {
    /// Read already, with the page.
    Known(u64),
    Jobs {
        team_id: i64,
        filter: JobFilter,
    },
    JobsOf {
        parent: JobParent,
        parent_id: i64,
        filter: JobFilter,
    },
    Users {
        team_id: i64,
        filter: UserFilter,
    },
    Logs {
        team_id: i64,
        filter: LogFilter,
    },
    LogsOfUser {
        user_id: i64,
    },
}

impl TotalCount {
    async fn resolve(&self, ctx: &Context<'_>) -> AppResult<u64> {
        let db = ctx.db()?;
        Ok(match self {
            Self::Known(n) => *n,
            Self::Jobs { team_id, filter } => db::jobs::count(db, *team_id, filter).await?,
            Self::JobsOf {
                parent,
                parent_id,
                filter,
            } => ctx
                .loaders()?
                .job_counts
                .load_one(JobCountKey {
                    parent: *parent,
                    parent_id: *parent_id,
                    filter: filter.clone(),
                })
                .await?
                .unwrap_or(0),
            Self::Users { team_id, filter } => db::users::count(db, *team_id, filter).await?,
            Self::Logs { team_id, filter } => db::logs::count(db, *team_id, filter).await?,
            Self::LogsOfUser { user_id } => ctx
                .loaders()?
                .log_counts
                .load_one(*user_id)
                .await?
                .unwrap_or(0),
        })
    }
}

/// Defines `<Name>Connection` and `<Name>Edge` for one node type. A macro
/// rather than generics: async-graphql's `concrete` types cannot nest.
macro_rules! connection {
    ($connection:ident, $edge:ident, $node:ty) => {
        /// One node and the cursor that points at it.
        #[derive(SimpleObject, Clone)]
        pub struct $edge {
            pub cursor: String,
            pub node: $node,
        }

        /// A page of a list, per the Relay cursor connection spec.
        #[derive(SimpleObject)]
        #[graphql(complex)]
        pub struct $connection {
            pub edges: Vec<$edge>,
            pub page_info: PageInfo,
            #[graphql(skip)]
            pub total: TotalCount,
        }

        #[ComplexObject]
        impl $connection {
            /// The nodes of `edges`, without cursors.
            async fn nodes(&self) -> Vec<$node> {
                self.edges.iter().map(|e| e.node.clone()).collect()
            }

            /// How many items the whole list holds (all pages, this filter).
            async fn total_count(&self, ctx: &Context<'_>) -> AppResult<u64> {
                self.total.resolve(ctx).await
            }
        }

        impl $connection {
            /// Wraps a page of rows, giving each its cursor in `sort`.
            pub fn from_page<M: Keyed>(
                page: Page<M>,
                sort: Sort,
                total: TotalCount,
                node: impl Fn(M) -> $node,
            ) -> Self {
                let edges: Vec<$edge> = page
                    .items
                    .into_iter()
                    .map(|row| $edge {
                        cursor: row.cursor(sort).encode(),
                        node: node(row),
                    })
                    .collect();
                Self {
                    page_info: PageInfo {
                        has_next_page: page.has_next,
                        has_previous_page: page.has_previous,
                        start_cursor: edges.first().map(|e| e.cursor.clone()),
                        end_cursor: edges.last().map(|e| e.cursor.clone()),
                    },
                    edges,
                    total,
                }
            }
        }
    };
}

connection!(JobConnection, JobEdge, Job);
connection!(UserConnection, UserEdge, User);
connection!(LogConnection, LogEdge, Log);

/// Validated `first`/`after`/`last`/`before`. Forward pages take
/// `first`/`after`, backward pages `last`/`before`; mixing them is refused
/// rather than guessed at.
pub fn page_request(
    first: Option<i32>,
    after: Option<String>,
    last: Option<i32>,
    before: Option<String>,
    sort: Sort,
    max: u32,
) -> AppResult<PageRequest> {
    let check = |name: &str, n: i32| -> AppResult<u64> {
        if n < 0 {
            return Err(AppError::invalid(name, "must not be negative"));
        }
        if n as u32 > max {
            return Err(AppError::invalid(name, format!("must be at most {max}")));
        }
        Ok(n as u64)
    };
    let cursor = |name: &str, raw: String| -> AppResult<Cursor> {
        Cursor::decode(&raw, sort).map_err(|e| AppError::invalid(name, e.to_string()))
    };
    match (first, last) {
        (Some(_), Some(_)) => Err(AppError::bad_input(
            "pass either `first` (with `after`) or `last` (with `before`), not both",
        )),
        (_, Some(n)) => {
            if after.is_some() {
                return Err(AppError::bad_input(
                    "`after` goes with `first`; use `before` with `last`",
                ));
            }
            let limit = check("last", n)?;
            let cursor = before.map(|b| cursor("before", b)).transpose()?;
            Ok(PageRequest {
                sort,
                direction: db::keyset::Direction::Backward,
                limit,
                cursor,
            })
        }
        (first, None) => {
            if before.is_some() {
                return Err(AppError::bad_input(
                    "`before` goes with `last`; use `after` with `first`",
                ));
            }
            let limit = match first {
                Some(n) => check("first", n)?,
                None => DEFAULT_PAGE_SIZE.min(max as u64),
            };
            let cursor = after.map(|a| cursor("after", a)).transpose()?;
            Ok(PageRequest::first(sort, limit, cursor))
        }
    }
}

/// The complexity of a connection field: its children count `first` times.
pub fn connection_complexity(child: usize, first: Option<i32>, last: Option<i32>) -> usize {
    let n = first
        .or(last)
        .map(|n| n.max(0) as usize)
        .unwrap_or(DEFAULT_PAGE_SIZE as usize);
    n.max(1).saturating_mul(child).saturating_add(1)
}
