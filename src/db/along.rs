//! Rows read in the same statement as a page or a row, for the fields a
//! request selects beside it: the user each row names (a job's creator, a
//! log entry's author), the team, and the list's total. A resolver that
//! sees these fields selected (by looking ahead) asks for them here, and
//! hands the rows to the request's DataLoaders, so the nested fields run no
//! SQL: a list page with its team and creators is one round trip.

use sea_orm::{
    ConnectionTrait, DbErr, EntityTrait, FromQueryResult, IdenStatic, Iterable, QueryTrait, Select,
    sea_query::{
        Alias, Asterisk, DynIden, Expr, ExprTrait, IntoIden, JoinType, Order, Query,
        QueryStatementBuilder, SelectStatement,
    },
};

use super::{
    entities::{team, user},
    keyset::{self, Page, PageRequest, Rows},
    shape::{self, ShapeKey},
};

/// What to read along.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Along {
    /// The user each row names.
    pub users: bool,
    /// The team of each row (the caller's own).
    pub team: bool,
    /// The list's total (for `totalCount`).
    pub total: bool,
}

/// What came along.
#[derive(Debug, Default)]
pub struct Alongside {
    pub users: Vec<user::Model>,
    pub team: Option<team::Model>,
    pub total: Option<u64>,
}

/// How a row points at its user and team; users are scoped to `team_id`.
#[derive(Debug, Clone, Copy)]
pub struct Joins<C> {
    pub team_id: i64,
    pub user: C,
    pub team: C,
}

/// Adds the user (`u_*` columns) and team (`t_*`) of each row of `rows`
/// (the table, or the alias of a subquery) to `q`.
fn join<E: EntityTrait>(
    q: &mut SelectStatement,
    rows: DynIden,
    joins: Joins<E::Column>,
    along: Along,
) {
    if along.users {
        q.join(
            JoinType::LeftJoin,
            user::Entity,
            Expr::col((user::Entity, user::Column::Id))
                .equals((rows.clone(), joins.user))
                .and(Expr::col((user::Entity, user::Column::TeamId)).eq(joins.team_id)),
        );
        for c in user::Column::iter() {
            q.expr_as(
                Expr::col((user::Entity, c)),
                Alias::new(format!("u_{}", c.as_str())),
            );
        }
    }
    if along.team {
        q.join(
            JoinType::LeftJoin,
            team::Entity,
            Expr::col((team::Entity, team::Column::Id)).equals((rows, joins.team)),
        );
        for c in team::Column::iter() {
            q.expr_as(
                Expr::col((team::Entity, c)),
                Alias::new(format!("t_{}", c.as_str())),
            );
        }
    }
}

/// The row's own model, and what came along with it into `out`.
fn split<M: FromQueryResult>(
    row: &sea_orm::QueryResult,
    along: Along,
    out: &mut Alongside,
) -> Result<M, DbErr> {
    if along.users
        && let Some(u) = user::Model::from_query_result_optional(row, "u_")?
        && !out.users.iter().any(|known| known.id == u.id)
    {
        out.users.push(u);
    }
    if along.team && out.team.is_none() {
        out.team = team::Model::from_query_result_optional(row, "t_")?;
    }
    if along.total && out.total.is_none() {
        let n: i64 = row.try_get("", "jg_total")?;
        out.total = Some(n.clamp(0, i64::MAX) as u64);
    }
    M::from_query_result(row, "")
}

/// One keyset page of `rows` (ordered by `(sort, id)` columns) with what
/// comes along, `total` being the subquery that counts the list. An empty
/// page carries no total (the caller counts apart).
///
/// The page is cut first, in a subquery of its own, and only its rows are
/// joined: with the joins in the same query block the planner may walk the
/// whole table's time index instead of the team's (fine for a large team,
/// a full scan for a small one). [`keyset::cut`] says how the page is cut.
pub async fn page<E, C>(
    db: &C,
    rows: Rows<E>,
    (sort_col, id_col): (E::Column, E::Column),
    page: &PageRequest,
    joins: Joins<E::Column>,
    along: Along,
    total: Option<SelectStatement>,
) -> Result<(Page<E::Model>, Alongside), DbErr>
where
    E: EntityTrait,
    C: ConnectionTrait,
{
    let backend = db.get_database_backend();
    let keyset::Cut { query: cut, text } = keyset::cut(rows, backend, sort_col, id_col, page);
    let rows: DynIden = Alias::new("jg_page").into_iden();
    let order = if page.read_descending() {
        Order::Desc
    } else {
        Order::Asc
    };
    let mut q = Query::select()
        .column((rows.clone(), Asterisk))
        .from_subquery(cut, rows.clone())
        .order_by((rows.clone(), sort_col), order.clone())
        .order_by((rows.clone(), id_col), order)
        .to_owned();
    join::<E>(&mut q, rows, joins, along);
    let along = Along {
        total: total.is_some(),
        ..along
    };
    if let Some(total) = total {
        q.expr_as(
            Expr::SubQuery(None, Box::new(total.into_sub_query_statement())),
            Alias::new("jg_total"),
        );
    }
    let rows = db.query_all_raw(text.statement(backend, &q)).await?;
    let mut out = Alongside::default();
    let items = rows
        .iter()
        .map(|row| split(row, along, &mut out))
        .collect::<Result<Vec<E::Model>, DbErr>>()?;
    Ok((keyset::into_page(items, page), out))
}

/// One row with what comes along (no total). `build` makes the row's
/// select and its joins from `args` (the values that vary per call: ids);
/// the statement's text is kept per `(name, along)` shape, so a repeated
/// detail binds its values into text built once.
pub async fn one<E, C, F>(
    db: &C,
    name: &'static str,
    args: &[i64],
    build: F,
    along: Along,
) -> Result<Option<(E::Model, Alongside)>, DbErr>
where
    E: EntityTrait,
    C: ConnectionTrait,
    F: Fn(&[i64]) -> (Select<E>, Joins<E::Column>),
{
    let along = Along {
        total: false,
        ..along
    };
    let key = ShapeKey {
        name,
        flags: u32::from(along.users) | (u32::from(along.team) << 1),
    };
    let statement = shape::statement(db.get_database_backend(), key, args, |args| {
        let (select, joins) = build(args);
        let mut q = select.into_query();
        join::<E>(&mut q, E::default().into_iden(), joins, along);
        q
    });
    let Some(row) = db.query_one_raw(statement).await? else {
        return Ok(None);
    };
    let mut out = Alongside::default();
    let model = split(&row, along, &mut out)?;
    Ok(Some((model, out)))
}
