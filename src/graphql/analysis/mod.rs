//! One analysis of each document, before anything runs.
//!
//! A request's text is first counted ([`lexer`]) and refused if it holds
//! more tokens than allowed, so the parser never sees an oversized
//! document. The parsed document is then walked once: every fragment's
//! summary (cost, depth, aliases, selections, cache dependencies) is
//! computed once and reused wherever it is spread, so a document of 40
//! fragments each spreading the next twice costs 40 steps, not 2^40. The
//! result ([`Analysis`]) carries everything later stages need: the
//! operation, its measured size, and the cache plan. A document over any
//! limit is refused here, with a stable code per limit, before
//! async-graphql's validation (whose visitors expand spreads) runs; the
//! limit on expanded selections bounds what those visitors can walk.

pub mod catalog;
pub mod json_scan;
mod lexer;
pub mod types;

use std::collections::{BTreeSet, HashMap, HashSet};

use async_graphql::{
    Name, Positioned, Variables,
    parser::types::{
        Directive, DocumentOperations, ExecutableDocument, Field, OperationDefinition,
        OperationType, Selection, SelectionSet, VariableDefinition,
    },
};

use async_graphql_value::{ConstValue, Value};

use self::{
    catalog::{Cost, Depends},
    types::{TypeRef, TypeTable},
};
use crate::{
    cache::{CacheKind, CachePlan, Dep, Plan},
    config::{Limits, QueryLimits},
    error::ErrorCode,
    graphql::ids::{self, Kind as IdKind},
};

/// The page size a connection without `first`/`last` uses.
const DEFAULT_PAGE: u64 = 20;

/// The deepest introspection selection allowed: graphql-js's
/// `getIntrospectionQuery()` nests `ofType` nine levels below `__schema`.
const MAX_INTROSPECTION_DEPTH: u64 = 24;

/// The most bytes one field other than those in [`LARGE_FIELDS`] adds to
/// an answer (its key and value as JSON: the longest is a 2,048-byte URL).
const FIELD_MAX_BYTES: u64 = 4096;

/// How many units of [`FIELD_MAX_BYTES`] a long but bounded field can take:
/// a description (every character escaped as `\uXXXX` at worst), or the
/// metadata the service writes (at most one id per job of a bulk call).
fn large_field_units(ty: &str, name: &str, max_bulk_jobs: u64) -> Option<u64> {
    let bytes = match (ty, name) {
        ("Job", "description") => crate::graphql::inputs::DESCRIPTION_MAX as u64 * 6,
        ("Log", "metadata") => 512 + max_bulk_jobs * 21,
        _ => return None,
    };
    Some(bytes.div_ceil(FIELD_MAX_BYTES).max(1))
}

/// Fields whose size has no bound (what the model wrote): an answer
/// holding one is always measured while it is built.
const UNBOUNDED_FIELDS: [(&str, &str); 1] = [("Resume", "content")];

/// Root mutations that check a password or create an account: at most one
/// per document, so a request cannot try a thousand passwords.
const SIGN_INS: [&str; 3] = ["login", "signup", "createUser"];

/// Who sends the document: anonymous callers get tighter limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    Anonymous,
    Authenticated,
}

/// Why a document was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The stable `extensions.code`.
    pub code: ErrorCode,
    pub message: String,
    /// The limit and the measured value, for limits.
    pub limit: Option<(u64, u64)>,
}

impl Refusal {
    fn limit(code: ErrorCode, what: &str, value: u64, max: u64, variable: &str) -> Self {
        Self {
            code,
            message: format!("{what} is {value}; at most {max} is allowed ({variable})"),
            limit: Some((max, value)),
        }
    }

    fn invalid(message: impl Into<String>) -> Self {
        Self {
            code: ErrorCode::GraphqlValidationFailed,
            message: message.into(),
            limit: None,
        }
    }
}

/// Everything later stages need to know about a document.
#[derive(Debug, Clone)]
pub struct Analysis {
    /// The operation that will run; `None` when the document names none
    /// runnable (execution reports that).
    pub operation: Option<OperationType>,
    /// Its name (`None`: anonymous).
    pub name: Option<String>,
    pub tokens: u64,
    pub depth: u64,
    pub cost: u64,
    pub aliases: u64,
    pub root_fields: u64,
    pub selections: u64,
    /// `login`, `signup` and `createUser` fields.
    pub sign_ins: u64,
    pub introspection: bool,
    /// Whether the answer could pass `MAX_RESPONSE_BYTES` (it selects a
    /// long field, or its cost times the longest field does): then it is
    /// measured while it is built.
    pub needs_measure: bool,
    /// Whether and how the answer may be cached.
    pub plan: Plan,
}

/// Checks documents against the schema's catalog and the limits.
pub struct Analyzer {
    table: TypeTable,
    authenticated: QueryLimits,
    anonymous: QueryLimits,
    max_list: u64,
    introspection: bool,
    max_response_bytes: u64,
}

impl Analyzer {
    /// `sdl` is the schema as exported; `introspection` false refuses
    /// `__schema` and `__type`.
    pub fn new(sdl: &str, limits: &Limits, introspection: bool) -> anyhow::Result<Self> {
        Ok(Self {
            table: TypeTable::from_sdl(sdl)?,
            authenticated: limits.query,
            anonymous: limits.anonymous,
            max_list: limits.max_bulk_jobs as u64,
            introspection,
            max_response_bytes: limits.max_response_bytes as u64,
        })
    }

    pub fn table(&self) -> &TypeTable {
        &self.table
    }

    fn limits(&self, caller: Caller) -> &QueryLimits {
        match caller {
            Caller::Anonymous => &self.anonymous,
            Caller::Authenticated => &self.authenticated,
        }
    }

    /// The check before parsing: the text's size and token count.
    pub fn check_text(&self, query: &str, caller: Caller) -> Result<u64, Refusal> {
        let limits = self.limits(caller);
        if query.len() as u64 > limits.max_document_bytes {
            return Err(Refusal::limit(
                ErrorCode::DocumentTooLarge,
                "the document's size in bytes",
                query.len() as u64,
                limits.max_document_bytes,
                "MAX_DOCUMENT_BYTES",
            ));
        }
        lexer::count_tokens(query, limits.max_tokens as usize)
            .map(|n| n as u64)
            .map_err(|n| {
                Refusal::limit(
                    ErrorCode::TooManyTokens,
                    "the number of tokens",
                    n as u64,
                    limits.max_tokens,
                    "MAX_QUERY_TOKENS",
                )
            })
    }

    /// The check before a body is decoded: no list longer than any argument
    /// may hold, no deeper nesting than inputs need (see [`json_scan`]).
    pub fn check_body(&self, body: &[u8]) -> Result<(), Refusal> {
        json_scan::check(body, self.max_list as usize).map_err(|too_much| match too_much {
            json_scan::TooMuch::List(n) => Refusal::limit(
                ErrorCode::ListTooLong,
                "the length of a list in the request",
                n as u64,
                self.max_list,
                "MAX_BULK_JOBS",
            ),
            json_scan::TooMuch::Depth(n) => Refusal::limit(
                ErrorCode::TooDeeplyNested,
                "the nesting of the request's JSON",
                n as u64,
                json_scan::MAX_DEPTH as u64,
                "fixed",
            ),
        })
    }

    /// Walks a parsed document once. `operation_name` picks the operation
    /// as execution will; every operation is measured, since validation
    /// walks them all.
    pub fn analyse(
        &self,
        doc: &ExecutableDocument,
        operation_name: Option<&str>,
        variables: &Variables,
        caller: Caller,
        tokens: u64,
    ) -> Result<Analysis, Refusal> {
        let limits = self.limits(caller);
        let mut walker = Walker {
            doc,
            variables,
            table: &self.table,
            limits,
            max_list: self.max_list,
            introspection: self.introspection,
            memo: HashMap::new(),
            visiting: HashSet::new(),
            checked_variables: HashSet::new(),
            var_defs: &[],
        };
        let operations: Vec<(Option<&Name>, &Positioned<OperationDefinition>)> =
            doc.operations.iter().collect();
        let selected = match (&doc.operations, operation_name) {
            (DocumentOperations::Single(_), _) => Some(0),
            (DocumentOperations::Multiple(_), Some(name)) => operations
                .iter()
                .position(|(n, _)| n.is_some_and(|n| n.as_str() == name)),
            (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => Some(0),
            _ => None,
        };
        let mut total_selections = 0u64;
        let mut chosen = None;
        for (index, (_, operation)) in operations.iter().enumerate() {
            let operation = &operation.node;
            walker.var_defs = &operation.variable_definitions;
            // Defaults differ between operations: check each one's afresh.
            walker.checked_variables.clear();
            for definition in &operation.variable_definitions {
                walker.no_directives(&definition.node.directives)?;
            }
            walker.no_directives(&operation.directives)?;
            let root = self.table.root(operation.ty);
            let summary = walker.set(
                root,
                &operation.selection_set,
                Ctx {
                    op: index,
                    under_root_job: false,
                    introspection: false,
                },
            )?;
            total_selections = total_selections.saturating_add(summary.selections);
            check_summary(&summary, limits)?;
            if Some(index) == selected {
                chosen = Some((
                    operation.ty,
                    operations[index].0.map(|n| n.to_string()),
                    summary,
                ));
            }
        }
        check_total(total_selections, limits)?;
        // Fragments no operation uses are still validated (and refused as
        // unused); measure them so nothing escapes the limits.
        let measured: HashSet<&str> = walker.memo.keys().map(|(n, _)| *n).collect();
        for (name, fragment) in &doc.fragments {
            if measured.contains(name.as_str()) {
                continue;
            }
            walker.no_directives(&fragment.node.directives)?;
            let summary = walker.fragment(
                name,
                Ctx {
                    op: usize::MAX,
                    under_root_job: false,
                    introspection: false,
                },
            )?;
            check_summary(&summary, limits)?;
            total_selections = total_selections.saturating_add(summary.selections);
            check_total(total_selections, limits)?;
        }
        let Some((ty, name, summary)) = chosen else {
            return Ok(Analysis {
                operation: None,
                name: None,
                tokens,
                depth: 0,
                cost: 0,
                aliases: 0,
                root_fields: 0,
                selections: total_selections,
                sign_ins: 0,
                introspection: false,
                needs_measure: true,
                plan: Plan::Bypass,
            });
        };
        let plan = if ty == OperationType::Query && summary.cacheable && !summary.kinds.is_empty() {
            Plan::Cache(CachePlan {
                kinds: summary.kinds.clone(),
                deps: summary.deps.iter().copied().collect(),
                per_user: summary.per_user,
            })
        } else {
            Plan::Bypass
        };
        Ok(Analysis {
            operation: Some(ty),
            name,
            tokens,
            depth: summary.depth.max(summary.intro_depth),
            cost: summary.cost(),
            aliases: summary.aliases,
            root_fields: summary.root_fields,
            selections: summary.selections,
            sign_ins: summary.sign_ins,
            introspection: summary.introspection,
            needs_measure: summary.unbounded
                || summary.introspection
                || summary
                    .size_fixed
                    .saturating_add(summary.size_per_item)
                    .saturating_mul(FIELD_MAX_BYTES)
                    > self.max_response_bytes,
            plan,
        })
    }
}

/// Refuses a document whose operations and fragments, every spread
/// expanded, hold more selections than allowed in all.
fn check_total(total_selections: u64, limits: &QueryLimits) -> Result<(), Refusal> {
    if total_selections > limits.max_selections {
        return Err(Refusal::limit(
            ErrorCode::TooManySelections,
            "the number of selected fields in all operations and fragments",
            total_selections,
            limits.max_selections,
            "MAX_QUERY_SELECTIONS",
        ));
    }
    Ok(())
}

/// Refuses a measured operation over any limit, the cheapest checks first.
fn check_summary(s: &Summary, limits: &QueryLimits) -> Result<(), Refusal> {
    let checks: [(u64, u64, ErrorCode, &str, &str); 7] = [
        (
            s.selections,
            limits.max_selections,
            ErrorCode::TooManySelections,
            "the number of selected fields with every fragment expanded",
            "MAX_QUERY_SELECTIONS",
        ),
        (
            s.aliases,
            limits.max_aliases,
            ErrorCode::TooManyAliases,
            "the number of aliases",
            "MAX_QUERY_ALIASES",
        ),
        (
            s.root_fields,
            limits.max_root_fields,
            ErrorCode::TooManyRootFields,
            "the number of root fields",
            "MAX_QUERY_ROOT_FIELDS",
        ),
        (
            s.depth,
            limits.max_depth,
            ErrorCode::QueryTooDeep,
            "the query's depth",
            "MAX_QUERY_DEPTH",
        ),
        (
            s.intro_depth,
            MAX_INTROSPECTION_DEPTH,
            ErrorCode::QueryTooDeep,
            "the introspection query's depth",
            "fixed",
        ),
        (
            s.cost(),
            limits.max_cost,
            ErrorCode::QueryTooComplex,
            "the query's cost (a connection counts `first` times its items)",
            "MAX_QUERY_COMPLEXITY",
        ),
        (
            s.sign_ins,
            1,
            ErrorCode::TooManySignIns,
            "the number of login, signup and createUser fields",
            "fixed",
        ),
    ];
    match checks.into_iter().find(|(value, max, ..)| value > max) {
        Some((value, max, code, what, variable)) => {
            Err(Refusal::limit(code, what, value, max, variable))
        }
        None => Ok(()),
    }
}

/// Where a selection set sits, as far as its summary depends on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Ctx {
    /// The operation (variable types differ between operations).
    op: usize,
    /// Directly below the root `job(id:)`: `Job.resumes` is covered by it.
    under_root_job: bool,
    /// Inside `__schema`/`__type`: flat costs, a depth of its own.
    introspection: bool,
}

/// The measure of one selection set (per instance of its parent).
#[derive(Debug, Clone, Default)]
struct Summary {
    /// Cost paid once.
    fixed: u64,
    /// Cost paid per item of the enclosing connection (its `edges`/`nodes`).
    per_item: u64,
    depth: u64,
    intro_depth: u64,
    aliases: u64,
    selections: u64,
    root_fields: u64,
    sign_ins: u64,
    introspection: bool,
    /// [`Self::fixed`] and [`Self::per_item`] with long fields weighing
    /// what [`large_field_units`] says: the answer's size in units of
    /// [`FIELD_MAX_BYTES`].
    size_fixed: u64,
    size_per_item: u64,
    /// Selects a field whose size has no bound ([`UNBOUNDED_FIELDS`]).
    unbounded: bool,
    kinds: BTreeSet<CacheKind>,
    deps: BTreeSet<Dep>,
    per_user: bool,
    /// Cleared by anything that must not be cached.
    cacheable: bool,
}

impl Summary {
    fn new() -> Self {
        Self {
            cacheable: true,
            ..Default::default()
        }
    }

    /// The cost of a whole operation (its root set has no items).
    fn cost(&self) -> u64 {
        self.fixed.saturating_add(self.per_item)
    }

    /// Adds a sibling's measure.
    fn add(&mut self, other: &Summary) {
        self.fixed = self.fixed.saturating_add(other.fixed);
        self.per_item = self.per_item.saturating_add(other.per_item);
        self.depth = self.depth.max(other.depth);
        self.intro_depth = self.intro_depth.max(other.intro_depth);
        self.aliases = self.aliases.saturating_add(other.aliases);
        self.selections = self.selections.saturating_add(other.selections);
        self.root_fields = self.root_fields.saturating_add(other.root_fields);
        self.sign_ins = self.sign_ins.saturating_add(other.sign_ins);
        self.size_fixed = self.size_fixed.saturating_add(other.size_fixed);
        self.size_per_item = self.size_per_item.saturating_add(other.size_per_item);
        self.introspection |= other.introspection;
        self.unbounded |= other.unbounded;
        self.kinds.extend(other.kinds.iter().copied());
        self.deps.extend(other.deps.iter().copied());
        self.per_user |= other.per_user;
        self.cacheable &= other.cacheable;
    }

    /// Takes a child's cache information (not its counts).
    fn inherit_cache(&mut self, child: &Summary) {
        self.introspection |= child.introspection;
        self.unbounded |= child.unbounded;
        self.kinds.extend(child.kinds.iter().copied());
        self.deps.extend(child.deps.iter().copied());
        self.per_user |= child.per_user;
        self.cacheable &= child.cacheable;
    }
}

struct Walker<'a> {
    doc: &'a ExecutableDocument,
    variables: &'a Variables,
    table: &'a TypeTable,
    limits: &'a QueryLimits,
    max_list: u64,
    introspection: bool,
    memo: HashMap<(&'a str, Ctx), Summary>,
    visiting: HashSet<&'a str>,
    /// Variables whose list lengths were checked, by name and type.
    checked_variables: HashSet<(String, String)>,
    var_defs: &'a [Positioned<VariableDefinition>],
}

impl<'a> Walker<'a> {
    /// Measures a selection set on `ty` (`None`: an introspection or
    /// unknown type, walked without the catalog).
    fn set(
        &mut self,
        ty: Option<&str>,
        set: &'a Positioned<SelectionSet>,
        ctx: Ctx,
    ) -> Result<Summary, Refusal> {
        let mut sum = Summary::new();
        for selection in &set.node.items {
            match &selection.node {
                Selection::Field(field) => {
                    let measured = self.field(ty, &field.node, ctx)?;
                    sum.add(&measured);
                }
                Selection::FragmentSpread(spread) => {
                    self.directives(&spread.node.directives)?;
                    let measured = self.fragment(&spread.node.fragment_name.node, ctx)?;
                    sum.add(&measured);
                }
                Selection::InlineFragment(inline) => {
                    self.directives(&inline.node.directives)?;
                    let (inner_ty, inner_ctx) = match &inline.node.type_condition {
                        Some(cond) => self.type_condition(cond.node.on.node.as_str(), ctx),
                        None => (ty, ctx),
                    };
                    let measured = self.set(inner_ty, &inline.node.selection_set, inner_ctx)?;
                    sum.add(&measured);
                }
            }
        }
        Ok(sum)
    }

    /// The type a fragment's condition names, as the walk treats it.
    fn type_condition(&self, on: &'a str, ctx: Ctx) -> (Option<&'a str>, Ctx) {
        if on.starts_with("__") {
            (
                None,
                Ctx {
                    introspection: true,
                    ..ctx
                },
            )
        } else if self.table.objects.contains_key(on) {
            (Some(on), ctx)
        } else {
            (None, ctx)
        }
    }

    /// A named fragment's measure, computed once per context.
    fn fragment(&mut self, name: &Name, ctx: Ctx) -> Result<Summary, Refusal> {
        let Some((key, fragment)) = self.doc.fragments.get_key_value(name) else {
            // Validation reports the unknown fragment.
            let mut unknown = Summary::new();
            unknown.cacheable = false;
            return Ok(unknown);
        };
        let key = key.as_str();
        if let Some(known) = self.memo.get(&(key, ctx)) {
            return Ok(known.clone());
        }
        if !self.visiting.insert(key) {
            return Err(Refusal::invalid(format!(
                "fragment \"{key}\" spreads itself, directly or through other fragments"
            )));
        }
        let (ty, inner) =
            self.type_condition(fragment.node.type_condition.node.on.node.as_str(), ctx);
        let measured = self.set(ty, &fragment.node.selection_set, inner);
        self.visiting.remove(key);
        let measured = measured?;
        self.memo.insert((key, ctx), measured.clone());
        Ok(measured)
    }

    fn field(&mut self, ty: Option<&str>, field: &'a Field, ctx: Ctx) -> Result<Summary, Refusal> {
        self.directives(&field.directives)?;
        let name = field.name.node.as_str();
        let is_root = ty.is_some_and(|t| self.is_root(t));
        let mut out = Summary::new();
        out.selections = 1;
        out.aliases = u64::from(field.alias.is_some());
        out.root_fields = u64::from(is_root);
        if name == "__typename" {
            out.fixed = 1;
            out.size_fixed = 1;
            return Ok(out);
        }
        if name == "__schema" || name == "__type" {
            if !self.introspection {
                return Err(Refusal {
                    code: ErrorCode::IntrospectionDisabled,
                    message: "introspection is switched off on this server (GRAPHQL_INTROSPECTION)"
                        .to_owned(),
                    limit: None,
                });
            }
            let child = self.set(
                None,
                &field.selection_set,
                Ctx {
                    introspection: true,
                    ..ctx
                },
            )?;
            return Ok(self.flat(out, &child, true));
        }
        let info = ty.and_then(|t| self.table.field(t, name));
        let (Some(ty), Some(info), false) = (ty, info, ctx.introspection) else {
            // An introspection field, or one validation will refuse.
            let child = self.set(None, &field.selection_set, ctx)?;
            return Ok(self.flat(out, &child, ctx.introspection));
        };
        for (arg, value) in &field.arguments {
            if let Some(arg_ty) = info.args.get(arg.node.as_str()) {
                self.check_lists(&value.node, arg_ty)?;
            }
        }
        let child_ctx = Ctx {
            under_root_job: is_root && name == "job",
            ..ctx
        };
        let child = if field.selection_set.node.items.is_empty() {
            Summary::new()
        } else {
            self.set(Some(info.ty.named()), &field.selection_set, child_ctx)?
        };
        out.depth = 1 + child.depth;
        out.intro_depth = child.intro_depth;
        out.aliases = out.aliases.saturating_add(child.aliases);
        out.selections = out.selections.saturating_add(child.selections);
        out.inherit_cache(&child);
        out.unbounded |= UNBOUNDED_FIELDS.contains(&(ty, name));
        if is_root && Some(ty) == self.table.mutation.as_deref() && SIGN_INS.contains(&name) {
            out.sign_ins = 1;
        }
        let rule = info.rule.unwrap_or(catalog::FieldRule {
            cost: Cost::Object,
            depends: Depends::Uncacheable,
        });
        (out.fixed, out.per_item) = self.weigh(field, rule.cost, child.fixed, child.per_item, 1);
        // The same measure with long fields weighing more: a bound on the
        // answer's size in units of the longest short field.
        (out.size_fixed, out.size_per_item) = self.weigh(
            field,
            rule.cost,
            child.size_fixed,
            child.size_per_item,
            large_field_units(ty, name, self.max_list).unwrap_or(1),
        );
        match rule.depends {
            Depends::Parent => {}
            Depends::On(dep) => {
                out.deps.insert(dep);
            }
            Depends::LogsOfCaller => {
                out.deps.insert(Dep::Logs);
                out.per_user = true;
            }
            Depends::ResumesOfJob => {
                if !ctx.under_root_job {
                    out.deps.insert(Dep::Resumes);
                }
            }
            Depends::Root(kind, dep) => {
                out.kinds.insert(kind);
                out.deps.insert(dep);
                out.per_user |= kind == CacheKind::Logs;
            }
            Depends::RootJob => match self.job_id(field) {
                Some(id) => {
                    out.kinds.insert(CacheKind::JobDetail);
                    out.deps.insert(Dep::Job(id));
                }
                None => out.cacheable = false,
            },
            Depends::Uncacheable => out.cacheable = false,
        }
        Ok(out)
    }

    /// A field's measure `(fixed, per item of its connection)` from its
    /// children's: a leaf weighs `leaf`, a connection `first` times its
    /// items, a list its cap times its element.
    fn weigh(
        &self,
        field: &Field,
        cost: Cost,
        child_fixed: u64,
        child_per_item: u64,
        leaf: u64,
    ) -> (u64, u64) {
        let each = child_fixed.max(1);
        match cost {
            Cost::Leaf => (leaf, 0),
            Cost::Object => (1u64.saturating_add(child_fixed), 0),
            Cost::Aggregate => (5, 0),
            Cost::Items => (0, 1u64.saturating_add(child_fixed)),
            Cost::Connection | Cost::Page => {
                let arg = if cost == Cost::Page {
                    self.int_argument(field, "pageSize")
                } else {
                    self.int_argument(field, "first")
                        .or_else(|| self.int_argument(field, "last"))
                };
                let n = arg.unwrap_or(DEFAULT_PAGE).max(1);
                (
                    2u64.saturating_add(child_fixed)
                        .saturating_add(n.saturating_mul(child_per_item)),
                    0,
                )
            }
            Cost::List(n) => (1u64.saturating_add(n.saturating_mul(each)), 0),
            Cost::ListArg(arg, default) => {
                let n = self
                    .int_argument(field, arg)
                    .or_else(|| self.list_argument_len(field, arg))
                    .unwrap_or(default);
                (1u64.saturating_add(n.saturating_mul(each)), 0)
            }
        }
    }

    /// A field measured without the catalog: 1 plus its selection.
    fn flat(&self, mut out: Summary, child: &Summary, introspection: bool) -> Summary {
        out.fixed = 1u64
            .saturating_add(child.fixed)
            .saturating_add(child.per_item);
        out.size_fixed = 1u64
            .saturating_add(child.size_fixed)
            .saturating_add(child.size_per_item);
        out.unbounded |= child.unbounded;
        if introspection {
            out.intro_depth = 1 + child.intro_depth.max(child.depth);
            out.introspection = true;
        } else {
            out.depth = 1 + child.depth;
            out.intro_depth = child.intro_depth;
        }
        out.aliases = out.aliases.saturating_add(child.aliases);
        out.selections = out.selections.saturating_add(child.selections);
        out.cacheable = false;
        out
    }

    fn is_root(&self, ty: &str) -> bool {
        ty == self.table.query
            || Some(ty) == self.table.mutation.as_deref()
            || Some(ty) == self.table.subscription.as_deref()
    }

    /// A variable's value as execution will see it: the one sent, else the
    /// default its definition declares (a default counts like a value sent,
    /// so a cost or a list cannot hide in it).
    fn variable(&self, name: &Name) -> Option<&'a ConstValue> {
        self.variables.get(name).or_else(|| {
            self.var_defs
                .iter()
                .find(|d| d.node.name.node == *name)
                .and_then(|d| d.node.default_value.as_ref())
                .map(|v| &v.node)
        })
    }

    /// An integer argument, literal or from a variable.
    fn int_argument(&self, field: &Field, name: &str) -> Option<u64> {
        let value = field.get_argument(name)?;
        let n = match &value.node {
            Value::Number(n) => n.as_i64(),
            Value::Variable(var) => match self.variable(var) {
                Some(ConstValue::Number(n)) => n.as_i64(),
                _ => None,
            },
            _ => None,
        }?;
        Some(n.max(0) as u64)
    }

    /// The length of a list argument, literal or from a variable.
    fn list_argument_len(&self, field: &Field, name: &str) -> Option<u64> {
        let value = field.get_argument(name)?;
        match &value.node {
            Value::List(items) => Some(items.len() as u64),
            Value::Variable(var) => match self.variable(var) {
                Some(ConstValue::List(items)) => Some(items.len() as u64),
                _ => None,
            },
            _ => Some(1),
        }
    }

    /// The job id of `job(id: …)`, literal or from a variable.
    fn job_id(&self, field: &Field) -> Option<i64> {
        let raw = match &field.get_argument("id")?.node {
            Value::String(s) => s.clone(),
            Value::Variable(var) => match self.variable(var)? {
                ConstValue::String(s) => s.clone(),
                _ => return None,
            },
            _ => return None,
        };
        ids::decode(IdKind::Job, &async_graphql::ID(raw), "id").ok()
    }

    /// Refuses lists longer than their type allows: a list of enum values
    /// holds at most each value once; any other at most `MAX_BULK_JOBS`.
    fn check_lists(&mut self, value: &Value, ty: &TypeRef) -> Result<(), Refusal> {
        match value {
            Value::Variable(var) => {
                let key = (var.to_string(), format!("{ty:?}"));
                if !self.checked_variables.insert(key) {
                    return Ok(());
                }
                match self.variable(var) {
                    Some(v) => self.check_const_lists(v, ty),
                    None => Ok(()),
                }
            }
            Value::List(items) => {
                let TypeRef::List(inner) = ty else {
                    return Ok(());
                };
                self.check_len(items.len(), inner)?;
                for item in items {
                    self.check_lists(item, inner)?;
                }
                Ok(())
            }
            Value::Object(fields) => {
                let Some(input) = self.table.inputs.get(ty.named()) else {
                    return Ok(());
                };
                for (name, value) in fields {
                    if let Some(field_ty) = input.get(name.as_str()) {
                        let field_ty = field_ty.clone();
                        self.check_lists(value, &field_ty)?;
                    }
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn check_const_lists(&self, value: &ConstValue, ty: &TypeRef) -> Result<(), Refusal> {
        match (value, ty) {
            (ConstValue::List(items), TypeRef::List(inner)) => {
                self.check_len(items.len(), inner.as_ref())?;
                items
                    .iter()
                    .try_for_each(|item| self.check_const_lists(item, inner))
            }
            (ConstValue::Object(fields), TypeRef::Named(name)) => {
                let Some(input) = self.table.inputs.get(name) else {
                    return Ok(());
                };
                fields
                    .iter()
                    .try_for_each(|(name, value)| match input.get(name.as_str()) {
                        Some(field_ty) => self.check_const_lists(value, field_ty),
                        None => Ok(()),
                    })
            }
            _ => Ok(()),
        }
    }

    fn check_len(&self, len: usize, item: &TypeRef) -> Result<(), Refusal> {
        let max = match item {
            TypeRef::Named(name) => self
                .table
                .enums
                .get(name)
                .map_or(self.max_list, |values| values.len() as u64),
            TypeRef::List(_) => self.max_list,
        };
        if len as u64 > max {
            return Err(Refusal::limit(
                ErrorCode::ListTooLong,
                &format!("the length of a list of {}", item.named()),
                len as u64,
                max,
                if self.table.enums.contains_key(item.named()) {
                    "the number of distinct values"
                } else {
                    "MAX_BULK_JOBS"
                },
            ));
        }
        Ok(())
    }

    /// `@skip` and `@include` with a Boolean `if` are the only directives an
    /// executable document may use here.
    fn directives(&self, directives: &[Positioned<Directive>]) -> Result<(), Refusal> {
        if directives.len() as u64 > self.limits.max_directives {
            return Err(Refusal::limit(
                ErrorCode::TooManyDirectives,
                "the number of directives on one selection",
                directives.len() as u64,
                self.limits.max_directives,
                "MAX_QUERY_DIRECTIVES",
            ));
        }
        for directive in directives {
            let directive = &directive.node;
            let name = directive.name.node.as_str();
            if name != "skip" && name != "include" {
                return Err(Refusal::invalid(format!("Unknown directive \"@{name}\".")));
            }
            let boolean = match directive.arguments.as_slice() {
                [(arg, value)] if arg.node == "if" => match &value.node {
                    Value::Boolean(_) => true,
                    Value::Variable(var) => self.var_defs.iter().any(|d| {
                        d.node.name.node == *var
                            && matches!(&d.node.var_type.node.base,
                                async_graphql::parser::types::BaseType::Named(t) if t == "Boolean")
                    }),
                    _ => false,
                },
                _ => false,
            };
            if !boolean {
                return Err(Refusal::invalid(format!(
                    "Directive \"@{name}\" takes exactly one argument, `if: Boolean!`."
                )));
            }
        }
        Ok(())
    }

    /// Operations, variable definitions and fragment definitions take no
    /// directive in this schema.
    fn no_directives(&self, directives: &[Positioned<Directive>]) -> Result<(), Refusal> {
        match directives.first() {
            None => Ok(()),
            Some(d) => Err(Refusal::invalid(format!(
                "Directive \"@{}\" may not be used here.",
                d.node.name.node
            ))),
        }
    }
}

#[cfg(test)]
mod tests;
