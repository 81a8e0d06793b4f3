//! Keyset pagination: pages are read with `(sort, id) < (cursor)` on an index
//! instead of OFFSET scans, and per-parent pages (`users { jobs(first: 5) }`)
//! come from one `ROW_NUMBER() OVER (PARTITION BY parent …)` statement.

use std::collections::HashMap;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseBackend, DbErr, EntityTrait, FromQueryResult,
    QueryFilter, QueryOrder, QuerySelect, QueryTrait, Select, Statement, Value,
    sea_query::{
        Asterisk, Expr, ExprTrait, Func, JoinType, Order, Query, QueryStatementBuilder,
        SelectStatement, WindowStatement,
    },
};

use super::shape;

/// The column a list is ordered by (then by `id`, which breaks ties).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SortKey {
    CreatedAt,
    UpdatedAt,
    Company,
}

/// A complete ordering: key and direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sort {
    pub key: SortKey,
    pub descending: bool,
}

impl Sort {
    /// Newest first: every list's default.
    pub const NEWEST_FIRST: Sort = Sort {
        key: SortKey::CreatedAt,
        descending: true,
    };

    fn tag(self) -> &'static str {
        match (self.key, self.descending) {
            (SortKey::CreatedAt, true) => "cd",
            (SortKey::CreatedAt, false) => "ca",
            (SortKey::UpdatedAt, true) => "ud",
            (SortKey::UpdatedAt, false) => "ua",
            (SortKey::Company, true) => "pd",
            (SortKey::Company, false) => "pa",
        }
    }
}

/// The sort column's value in one row.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SortValue {
    Time(DateTime<Utc>),
    Text(String),
}

impl From<SortValue> for Value {
    fn from(value: SortValue) -> Self {
        match value {
            SortValue::Time(t) => t.into(),
            SortValue::Text(s) => s.into(),
        }
    }
}

/// A position in an ordered list: the row's sort value and id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Cursor {
    pub sort: Sort,
    pub value: SortValue,
    pub id: i64,
}

/// Why a cursor string was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CursorError {
    #[error("invalid cursor")]
    Malformed,
    #[error("cursor belongs to a different ordering")]
    WrongOrdering,
}

impl Cursor {
    /// Opaque to clients: base64url of `tag|id|value`.
    pub fn encode(&self) -> String {
        let value = match &self.value {
            SortValue::Time(t) => t.timestamp_micros().to_string(),
            SortValue::Text(s) => s.clone(),
        };
        URL_SAFE_NO_PAD.encode(format!("{}|{}|{}", self.sort.tag(), self.id, value))
    }

    /// Parses a cursor made by [`Cursor::encode`] for the same ordering.
    pub fn decode(raw: &str, sort: Sort) -> Result<Self, CursorError> {
        if raw.len() > 1024 {
            return Err(CursorError::Malformed);
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(raw)
            .map_err(|_| CursorError::Malformed)?;
        let text = String::from_utf8(bytes).map_err(|_| CursorError::Malformed)?;
        let mut parts = text.splitn(3, '|');
        let (Some(tag), Some(id), Some(value)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(CursorError::Malformed);
        };
        if tag != sort.tag() {
            return Err(if ["cd", "ca", "ud", "ua", "pd", "pa"].contains(&tag) {
                CursorError::WrongOrdering
            } else {
                CursorError::Malformed
            });
        }
        let id = id.parse().map_err(|_| CursorError::Malformed)?;
        let value = match sort.key {
            SortKey::CreatedAt | SortKey::UpdatedAt => {
                let micros = value.parse().map_err(|_| CursorError::Malformed)?;
                SortValue::Time(
                    DateTime::from_timestamp_micros(micros).ok_or(CursorError::Malformed)?,
                )
            }
            // Encoded company names never hold NUL; PostgreSQL refuses it.
            SortKey::Company if value.contains('\0') => return Err(CursorError::Malformed),
            SortKey::Company => SortValue::Text(value.to_owned()),
        };
        Ok(Self { sort, value, id })
    }
}

/// Rows that can be placed in a keyset ordering.
pub trait Keyed {
    fn id(&self) -> i64;
    fn sort_value(&self, key: SortKey) -> SortValue;

    fn cursor(&self, sort: Sort) -> Cursor {
        Cursor {
            sort,
            value: self.sort_value(sort.key),
            id: self.id(),
        }
    }
}

/// Which end of the list a page is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// `first`/`after`
    Forward,
    /// `last`/`before`
    Backward,
}

/// A validated page request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PageRequest {
    pub sort: Sort,
    pub direction: Direction,
    pub limit: u64,
    pub cursor: Option<Cursor>,
}

impl PageRequest {
    pub fn first(sort: Sort, limit: u64, after: Option<Cursor>) -> Self {
        Self {
            sort,
            direction: Direction::Forward,
            limit,
            cursor: after,
        }
    }

    /// The order rows are read in: reversed when reading from the end.
    pub fn read_descending(&self) -> bool {
        self.sort.descending == (self.direction == Direction::Forward)
    }
}

/// One page of rows plus whether more exist on either side.
#[derive(Debug, Clone)]
pub struct Page<M> {
    pub items: Vec<M>,
    pub has_next: bool,
    pub has_previous: bool,
}

impl<M> Default for Page<M> {
    fn default() -> Self {
        Self {
            items: Vec::new(),
            has_next: false,
            has_previous: false,
        }
    }
}

/// Adds the keyset condition and ordering (no limit) for `page`.
fn keyset<E: EntityTrait>(
    select: Select<E>,
    sort_col: E::Column,
    id_col: E::Column,
    page: &PageRequest,
) -> Select<E> {
    ordered_from_cursor(select, None, sort_col, id_col, page)
}

/// Orders `select` by `(lead, sort, id)` in `page`'s reading order and, with
/// a cursor, keeps the rows past it; `lead` is a leading column and the
/// value every row has in it.
fn ordered_from_cursor<E: EntityTrait>(
    mut select: Select<E>,
    lead: Option<(E::Column, Expr)>,
    sort_col: E::Column,
    id_col: E::Column,
    page: &PageRequest,
) -> Select<E> {
    let descending = page.read_descending();
    let order = if descending { Order::Desc } else { Order::Asc };
    let (mut left, mut right) = (Vec::with_capacity(3), Vec::with_capacity(3));
    if let Some((col, value)) = lead {
        left.push(Expr::col(col));
        right.push(value);
        select = select.order_by(col, order.clone());
    }
    if let Some(cursor) = &page.cursor {
        left.extend([Expr::col(sort_col), Expr::col(id_col)]);
        right.extend([
            Expr::val(Value::from(cursor.value.clone())),
            Expr::val(cursor.id),
        ]);
        let (left, right) = (Expr::tuple(left), Expr::tuple(right));
        select = select.filter(if descending {
            left.lt(right)
        } else {
            left.gt(right)
        });
    }
    select
        .order_by(sort_col, order.clone())
        .order_by(id_col, order)
}

/// The rows a page is cut from.
pub enum Rows<E: EntityTrait> {
    /// Rows matching a filter, its values bound as written: their plan may
    /// depend on them (a rare status, a narrow time range), so PostgreSQL
    /// plans each call with the values in hand.
    Matching(Box<Select<E>>),
    /// All of one parent's rows (a team's jobs, unfiltered): the hot list,
    /// read with [`keyset_in_parent`] on PostgreSQL.
    OfParent { column: E::Column, id: i64 },
}

impl<E: EntityTrait> Rows<E> {
    /// The rows of `filtered` when a filter applies, else all the parent's.
    pub fn of_parent_or(column: E::Column, id: i64, filtered: Option<Select<E>>) -> Self {
        match filtered {
            Some(select) => Rows::Matching(Box::new(select)),
            None => Rows::OfParent { column, id },
        }
    }
}

/// A page cut from its rows: the keyset condition, the order and the
/// `limit + 1` rows to read, to run alone or inside a larger query.
pub struct Cut {
    pub query: SelectStatement,
    pub text: CutText,
}

/// How a cut's statement is written: with its page size in the text or
/// bound.
pub struct CutText {
    inline_limit: Option<u64>,
}

impl CutText {
    /// The statement of `query` (the cut's, or one built around it) on
    /// `backend`, with the page size written into the text where the cut
    /// asked for it.
    pub fn statement(&self, backend: DatabaseBackend, query: &SelectStatement) -> Statement {
        let mut statement = backend.build(query);
        if let Some(limit) = self.inline_limit {
            shape::inline_integer(&mut statement, limit);
        }
        statement
    }
}

/// Cuts `page` from `rows`, ordered by `(sort, id)`. A parent's whole list
/// takes [`keyset_in_parent`] on PostgreSQL, with its page size written
/// into the text, so PostgreSQL keeps one plan for it per connection and
/// page size. SQLite plans when it prepares (once per cached statement) and
/// starts a later page at the cursor only with `parent = ?`, so it keeps
/// the plain form.
pub fn cut<E: EntityTrait>(
    rows: Rows<E>,
    backend: DatabaseBackend,
    sort_col: E::Column,
    id_col: E::Column,
    page: &PageRequest,
) -> Cut {
    // No early return for `limit == 0`: the one extra row still tells
    // whether anything lies beyond, which Relay's `hasNextPage` reports.
    let limit = page.limit + 1;
    let (select, inline_limit) = match rows {
        Rows::OfParent { column, id } if backend == DatabaseBackend::Postgres => (
            keyset_in_parent(column, id, sort_col, id_col, page),
            Some(limit),
        ),
        Rows::OfParent { column, id } => (
            keyset(
                E::find().filter(Expr::col(column).eq(id)),
                sort_col,
                id_col,
                page,
            ),
            None,
        ),
        Rows::Matching(select) => (keyset(*select, sort_col, id_col, page), None),
    };
    Cut {
        query: select
            .limit(inline_limit.map_or(limit, |_| shape::INLINE_MARKER))
            .into_query(),
        text: CutText { inline_limit },
    }
}

/// The parent's id as an uncorrelated subquery: `(SELECT CAST($n AS BIGINT))`.
/// PostgreSQL does not look inside it when planning, so a plan made with the
/// value in hand costs the same as the plan made without it.
fn opaque_id(id: i64) -> Expr {
    Expr::SubQuery(
        None,
        Box::new(
            Query::select()
                .expr(Expr::val(id).cast_as("BIGINT"))
                .to_owned()
                .into_sub_query_statement(),
        ),
    )
}

/// Keyset condition and ordering for a page of one parent's rows, written
/// so that one plan fits every parent and every call.
///
/// PostgreSQL plans a prepared statement with the call's values for its
/// first five runs on a connection, then keeps one generic plan only if it
/// costs no more than those. With `parent = $1` the values make each custom
/// plan look cheaper (the parent's exact row count), so it re-plans every
/// call (a third of a millisecond, more than the page's execution); and the
/// generic plan it would keep walks the table-wide time index when parents
/// are few, a full scan for a small one. Here the parent is bounded by a
/// range over an opaque id (see [`opaque_id`]), ordered by first: the only
/// plan without a sort walks the `(parent, sort, id)` index, whatever the
/// parent's size, and custom and generic plans cost the same, so the
/// generic one is kept and the statement is planned once per connection.
/// The cursor compares `(parent, sort, id)`, so a later page starts at the
/// cursor in the index instead of skipping from the parent's end.
fn keyset_in_parent<E: EntityTrait>(
    parent_col: E::Column,
    parent_id: i64,
    sort_col: E::Column,
    id_col: E::Column,
    page: &PageRequest,
) -> Select<E> {
    let select = E::find()
        .filter(Expr::col(parent_col).gte(opaque_id(parent_id)))
        .filter(Expr::col(parent_col).lte(opaque_id(parent_id)));
    ordered_from_cursor(
        select,
        Some((parent_col, opaque_id(parent_id))),
        sort_col,
        id_col,
        page,
    )
}

/// Reads one page of `rows` in `page`'s order, with one statement.
pub async fn fetch_page<E, C>(
    db: &C,
    rows: Rows<E>,
    sort_col: E::Column,
    id_col: E::Column,
    page: &PageRequest,
) -> Result<Page<E::Model>, DbErr>
where
    E: EntityTrait,
    C: ConnectionTrait,
{
    let backend = db.get_database_backend();
    let Cut { query, text } = cut(rows, backend, sort_col, id_col, page);
    let items = E::find()
        .from_raw_sql(text.statement(backend, &query))
        .all(db)
        .await?;
    Ok(into_page(items, page))
}

/// A page from the `limit + 1` rows read for `page`, in reading order.
pub fn into_page<M>(mut items: Vec<M>, page: &PageRequest) -> Page<M> {
    let more = items.len() as u64 > page.limit;
    items.truncate(page.limit as usize);
    match page.direction {
        Direction::Forward => Page {
            items,
            has_next: more,
            has_previous: page.cursor.is_some(),
        },
        Direction::Backward => {
            items.reverse();
            Page {
                items,
                has_next: page.cursor.is_some(),
                has_previous: more,
            }
        }
    }
}

/// Reads the first page of every parent's children in one statement.
///
/// On PostgreSQL it is a `LATERAL` join over the parent ids: one index range
/// scan with `LIMIT` per parent, so the cost follows `first × parents`, not
/// the number of children. SQLite has no `LATERAL`; there
/// `ROW_NUMBER() OVER (PARTITION BY parent ORDER BY sort, id)` keeps
/// `limit + 1` rows per parent. Either way the extra row tells whether a
/// next page exists. `select` holds the other filters, not the parent one.
#[allow(clippy::too_many_arguments)]
pub async fn fetch_pages_by_parent<E, C>(
    db: &C,
    select: Select<E>,
    parent_col: E::Column,
    parent_ids: &[i64],
    parent_of: impl Fn(&E::Model) -> Option<i64>,
    sort_col: E::Column,
    id_col: E::Column,
    page: &PageRequest,
) -> Result<HashMap<i64, Page<E::Model>>, DbErr>
where
    E: EntityTrait,
    E::Model: FromQueryResult,
    C: ConnectionTrait,
{
    let mut pages: HashMap<i64, Page<E::Model>> = HashMap::new();
    if parent_ids.is_empty() {
        return Ok(pages);
    }
    let backend = db.get_database_backend();
    let outer = if backend == DatabaseBackend::Postgres {
        let mut inner = keyset(select, sort_col, id_col, page)
            .limit(page.limit + 1)
            .into_query();
        inner.and_where(Expr::col(parent_col).eq(Expr::col(("jg_parent", "column1"))));
        Query::select()
            .column(("jg_page", Asterisk))
            .from_values(parent_ids.iter().copied(), "jg_parent")
            .join_lateral(JoinType::InnerJoin, inner, "jg_page", Expr::cust("TRUE"))
            .to_owned()
    } else {
        let order = if page.read_descending() {
            Order::Desc
        } else {
            Order::Asc
        };
        let select = select.filter(parent_col.is_in(parent_ids.iter().copied()));
        let mut inner = keyset(select, sort_col, id_col, page).into_query();
        // The inner ORDER BY is meaningless under the window; drop it.
        inner.clear_order_by();
        let mut window = WindowStatement::partition_by(parent_col);
        window
            .order_by(sort_col, order.clone())
            .order_by(id_col, order);
        inner.expr_window_as(Expr::cust("ROW_NUMBER()"), window, "jg_rn");
        Query::select()
            .column(Asterisk)
            .from_subquery(inner, "jg_page")
            .and_where(Expr::col("jg_rn").lte(page.limit as i64 + 1))
            .order_by("jg_rn", Order::Asc)
            .to_owned()
    };
    let stmt = backend.build(&outer);
    let rows = E::find().from_raw_sql(stmt).all(db).await?;
    for row in rows {
        let Some(parent) = parent_of(&row) else {
            continue;
        };
        pages.entry(parent).or_default().items.push(row);
    }
    for page_of_parent in pages.values_mut() {
        let more = page_of_parent.items.len() as u64 > page.limit;
        page_of_parent.items.truncate(page.limit as usize);
        page_of_parent.has_next = more;
        page_of_parent.has_previous = page.cursor.is_some();
    }
    Ok(pages)
}

/// `COUNT(*)` per parent in one `GROUP BY` statement; absent parents have 0.
pub async fn count_by_parent<E, C>(
    db: &C,
    select: Select<E>,
    parent_col: E::Column,
) -> Result<HashMap<i64, u64>, DbErr>
where
    E: EntityTrait,
    C: ConnectionTrait,
{
    let rows: Vec<(Option<i64>, i64)> = select
        .select_only()
        .column(parent_col)
        .column_as(Expr::cust("COUNT(*)"), "n")
        .group_by(parent_col)
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(parent, n)| parent.map(|p| (p, n.clamp(0, i64::MAX) as u64)))
        .collect())
}

/// `COUNT(*)` of a filtered select.
pub async fn count<E, C>(db: &C, select: Select<E>) -> Result<u64, DbErr>
where
    E: EntityTrait,
    C: ConnectionTrait,
{
    let n: Option<i64> = select
        .select_only()
        .column_as(Expr::cust("COUNT(*)"), "n")
        .into_tuple()
        .one(db)
        .await?;
    Ok(n.unwrap_or(0).clamp(0, i64::MAX) as u64)
}

/// Client-given instants at the stored precision (microseconds).
pub fn truncate_micros(t: DateTime<Utc>) -> DateTime<Utc> {
    chrono::SubsecRound::trunc_subsecs(t, 6)
}

/// Escapes `%`, `_` and `\` so user text matches literally inside LIKE.
pub fn like_pattern(term: &str) -> String {
    let mut out = String::with_capacity(term.len() + 2);
    out.push('%');
    for c in term.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// Case-insensitive substring match on any of `cols`.
pub fn search_condition<C: ColumnTrait>(cols: &[C], term: &str) -> sea_orm::Condition {
    let pattern = like_pattern(term);
    cols.iter().fold(sea_orm::Condition::any(), |cond, col| {
        cond.add(
            Expr::expr(Func::lower(Expr::col(*col)))
                .like(sea_orm::sea_query::LikeExpr::new(pattern.clone()).escape('\\')),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_for_every_ordering() {
        let t = DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap();
        for (key, value) in [
            (SortKey::CreatedAt, SortValue::Time(t)),
            (SortKey::UpdatedAt, SortValue::Time(t)),
            (SortKey::Company, SortValue::Text("A|B Co".into())),
        ] {
            for descending in [true, false] {
                let sort = Sort { key, descending };
                let cursor = Cursor {
                    sort,
                    value: value.clone(),
                    id: 42,
                };
                assert_eq!(Cursor::decode(&cursor.encode(), sort), Ok(cursor));
            }
        }
    }

    #[test]
    fn cursors_from_another_ordering_or_garbage_are_refused() {
        let cursor = Cursor {
            sort: Sort::NEWEST_FIRST,
            value: SortValue::Time(Utc::now()),
            id: 1,
        };
        let other = Sort {
            key: SortKey::Company,
            descending: false,
        };
        assert_eq!(
            Cursor::decode(&cursor.encode(), other),
            Err(CursorError::WrongOrdering)
        );
        assert_eq!(
            Cursor::decode("!!", Sort::NEWEST_FIRST),
            Err(CursorError::Malformed)
        );
        assert_eq!(
            Cursor::decode(&URL_SAFE_NO_PAD.encode("cd|x|1"), Sort::NEWEST_FIRST),
            Err(CursorError::Malformed)
        );
    }

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(like_pattern("50%_off\\"), "%50\\%\\_off\\\\%");
        assert_eq!(like_pattern("ACME"), "%acme%");
    }
}
