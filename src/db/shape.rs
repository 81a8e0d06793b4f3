//! SQL text kept per statement shape. A hot statement whose text depends
//! only on a few flags (which relations a detail joins, say) is built with
//! sea-query once per shape and database; later calls bind their values
//! into the kept text. Building a joined `SELECT` with sea-query was a third
//! of the uncached `job(id)` resolver's CPU (allocating every identifier
//! and expression, then printing them), for the same text every time.
//!
//! Which value goes where is learnt, not written down: the first build uses
//! a sentinel for each argument and records where each sentinel landed, so
//! the kept text cannot disagree with the builder about parameter order.
//! Debug builds (the test suite) build every call both ways and compare.

use std::{
    collections::HashMap,
    sync::{Arc, LazyLock, RwLock},
};

use sea_orm::{DbBackend, Statement, StatementBuilder, Value, Values};

/// A statement shape: a name per call site and the flags its text depends
/// on. Two calls with the same key must build the same text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ShapeKey {
    pub name: &'static str,
    pub flags: u32,
}

/// Where one bound value comes from.
#[derive(Debug, Clone)]
enum Slot {
    /// The call's argument at this index.
    Arg(usize),
    /// A value the builder put in itself (a limit, a constant).
    Fixed(Value),
}

#[derive(Debug)]
struct Shape {
    sql: String,
    slots: Vec<Slot>,
}

/// Kept shapes by database (see [`backend_index`]) and key.
type Shapes = HashMap<(u8, ShapeKey), Arc<Shape>>;

static SHAPES: LazyLock<RwLock<Shapes>> = LazyLock::new(Default::default);

/// `DbBackend` is not `Hash`.
fn backend_index(backend: DbBackend) -> u8 {
    match backend {
        DbBackend::Postgres => 0,
        DbBackend::Sqlite => 1,
        _ => 2,
    }
}

/// Sentinels far from any id this service hands out.
fn sentinel(i: usize) -> i64 {
    i64::MIN + 1_000_003 * (i as i64 + 1)
}

/// The statement `build(args)` makes for `backend`, its text taken from the
/// shape kept under `key` (built on first use). `args` are the values that
/// vary between calls of a shape; they must be `i64`s.
pub fn statement<S, F>(backend: DbBackend, key: ShapeKey, args: &[i64], build: F) -> Statement
where
    S: StatementBuilder,
    F: Fn(&[i64]) -> S,
{
    let shape = known(backend, key).unwrap_or_else(|| learn(backend, key, args.len(), &build));
    let values = shape
        .slots
        .iter()
        .map(|slot| match slot {
            Slot::Arg(i) => Value::BigInt(Some(args[*i])),
            Slot::Fixed(v) => v.clone(),
        })
        .collect();
    let statement = Statement {
        sql: shape.sql.clone(),
        values: Some(Values(values)),
        db_backend: backend,
    };
    #[cfg(debug_assertions)]
    {
        let direct = build(args).build(&backend);
        assert_eq!(statement.sql, direct.sql, "shape {key:?} built other text");
        assert_eq!(
            statement.values, direct.values,
            "shape {key:?} bound other values"
        );
    }
    statement
}

fn known(backend: DbBackend, key: ShapeKey) -> Option<Arc<Shape>> {
    SHAPES
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .get(&(backend_index(backend), key))
        .cloned()
}

fn learn<S, F>(backend: DbBackend, key: ShapeKey, arity: usize, build: &F) -> Arc<Shape>
where
    S: StatementBuilder,
    F: Fn(&[i64]) -> S,
{
    let sentinels: Vec<i64> = (0..arity).map(sentinel).collect();
    let built = build(&sentinels).build(&backend);
    let slots = built
        .values
        .map(|v| v.0)
        .unwrap_or_default()
        .into_iter()
        .map(|value| match value {
            Value::BigInt(Some(n)) if let Some(i) = sentinels.iter().position(|s| *s == n) => {
                Slot::Arg(i)
            }
            other => Slot::Fixed(other),
        })
        .collect();
    let shape = Arc::new(Shape {
        sql: built.sql,
        slots,
    });
    SHAPES
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .entry((backend_index(backend), key))
        .or_insert(shape)
        .clone()
}

/// A bound value no caller binds (see [`inline_integer`]).
pub const INLINE_MARKER: u64 = u64::MAX - 0x6a67;

/// Writes `value` into `statement`'s text where the builder bound
/// [`INLINE_MARKER`] (once), and drops that parameter. sea-query binds every
/// value, a `LIMIT` included; a bound limit leaves PostgreSQL's generic plan
/// guessing a tenth of the rows, so it never wins over a custom one. Only
/// for integers the service chooses (a page size), never client text.
pub fn inline_integer(statement: &mut Statement, value: u64) {
    let Some(values) = statement.values.as_mut() else {
        debug_assert!(false, "no bound values to inline");
        return;
    };
    let Some(at) = values
        .0
        .iter()
        .position(|v| *v == Value::BigUnsigned(Some(INLINE_MARKER)))
    else {
        debug_assert!(false, "the marker was not bound");
        return;
    };
    values.0.remove(at);
    statement.sql = rewrite_placeholder(
        &statement.sql,
        statement.db_backend,
        at + 1,
        &value.to_string(),
    );
}

/// `sql` with its `nth` placeholder (1-based) replaced by `literal`; on
/// PostgreSQL the later `$k` are renumbered. Quoted spans are copied as they
/// are (sea-query binds every value, so only identifiers are quoted).
fn rewrite_placeholder(sql: &str, backend: DbBackend, nth: usize, literal: &str) -> String {
    let numbered = backend == DbBackend::Postgres;
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.char_indices().peekable();
    let mut seen = 0;
    let mut quote: Option<char> = None;
    while let Some((_, c)) = chars.next() {
        if let Some(q) = quote {
            out.push(c);
            if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '"' | '\'' | '`' => {
                quote = Some(c);
                out.push(c);
            }
            '$' if numbered => {
                let mut digits = String::new();
                while let Some((_, d)) = chars.peek().filter(|(_, d)| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                match digits.parse::<usize>() {
                    Ok(k) if k == nth => out.push_str(literal),
                    Ok(k) if k > nth => {
                        out.push('$');
                        out.push_str(&(k - 1).to_string());
                    }
                    _ => {
                        out.push('$');
                        out.push_str(&digits);
                    }
                }
            }
            '?' if !numbered => {
                seen += 1;
                if seen == nth {
                    out.push_str(literal);
                } else {
                    out.push('?');
                }
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query};

    use super::*;

    fn select(args: &[i64]) -> sea_orm::sea_query::SelectStatement {
        Query::select()
            .column(Alias::new("id"))
            .from(Alias::new("jobs"))
            .and_where(Expr::col(Alias::new("team_id")).eq(args[1]))
            .and_where(Expr::col(Alias::new("id")).eq(args[0]))
            .limit(1)
            .to_owned()
    }

    #[test]
    fn a_kept_shape_binds_each_calls_values_where_the_builder_put_them() {
        let key = ShapeKey {
            name: "test.select",
            flags: 0,
        };
        for backend in [DbBackend::Postgres, DbBackend::Sqlite] {
            let first = statement(backend, key, &[7, 3], select);
            let second = statement(backend, key, &[42, 9], select);
            let direct = StatementBuilder::build(&select(&[42, 9]), &backend);
            assert_eq!(first.sql, direct.sql);
            assert_eq!(second.sql, direct.sql);
            // team_id, then id, then the builder's own limit.
            assert_eq!(second.values, direct.values);
            let values = second.values.unwrap().0;
            assert_eq!(values[0], Value::BigInt(Some(9)));
            assert_eq!(values[1], Value::BigInt(Some(42)));
            assert_eq!(values.len(), 3);
        }
    }

    #[test]
    fn an_inlined_limit_is_written_into_the_text_and_later_parameters_renumbered() {
        let inner = Query::select()
            .column(Alias::new("id"))
            .from(Alias::new("jobs"))
            .and_where(Expr::col(Alias::new("team_id")).eq(3))
            .limit(INLINE_MARKER)
            .to_owned();
        let outer = Query::select()
            .column(Alias::new("id"))
            .from_subquery(inner, Alias::new("p"))
            .and_where(Expr::col(Alias::new("id")).gt(7))
            .to_owned();
        for (backend, want) in [
            (
                DbBackend::Postgres,
                r#"SELECT "id" FROM (SELECT "id" FROM "jobs" WHERE "team_id" = $1 LIMIT 21) AS "p" WHERE "id" > $2"#,
            ),
            (
                DbBackend::Sqlite,
                r#"SELECT "id" FROM (SELECT "id" FROM "jobs" WHERE "team_id" = ? LIMIT 21) AS "p" WHERE "id" > ?"#,
            ),
        ] {
            let mut statement = StatementBuilder::build(&outer, &backend);
            inline_integer(&mut statement, 21);
            assert_eq!(statement.sql, want);
            assert_eq!(
                statement.values.unwrap().0,
                vec![Value::Int(Some(3)), Value::Int(Some(7))]
            );
        }
    }
}
