//! The GraphQL schema: types, resolvers, loaders and input validation. It
//! knows nothing of HTTP; the HTTP layer puts the viewer and the request's
//! loaders into each request and executes it.

pub mod analysis;
pub mod budget;
pub mod context;
pub mod execution;
pub mod ids;
pub mod inputs;
pub mod loaders;
pub mod mutation;
pub mod pagination;
pub mod persisted;
pub mod query;
pub mod subscription;
pub mod types;

use async_graphql::{Schema, SchemaBuilder};

use crate::config::Limits;
pub use context::Services;
use mutation::Mutation;
use query::Query;
use subscription::Subscription;

/// The executable schema.
pub type JobgraphSchema = Schema<Query, Mutation, Subscription>;

/// Depth, cost and the other document limits are enforced by
/// [`analysis`] before async-graphql sees a document (its own visitors
/// expand every fragment spread, so they must not be the first to walk
/// an untrusted document); what is left here are its parser guards.
fn builder(introspection: bool) -> SchemaBuilder<Query, Mutation, Subscription> {
    let builder = Schema::build(Query, Mutation::default(), Subscription)
        .limit_recursive_depth(32)
        .limit_directives(16);
    if introspection {
        builder
    } else {
        builder.disable_introspection().disable_suggestions()
    }
}

/// The schema twice, with the same services: `measured` measures answers
/// against `MAX_RESPONSE_BYTES` while they are built (an extension that
/// runs around every field), `lean` does not and serves the queries whose
/// answers the analysis bounds under the limit before they run.
pub struct Schemas {
    pub measured: JobgraphSchema,
    pub lean: JobgraphSchema,
    /// `lean` without re-running the validation rules, for a request (the
    /// same document, variables and operation) that passed them before:
    /// validation is a pure function of those, and it was 7.5 % of an
    /// uncached detail's time. Depth and complexity are still computed.
    pub lean_validated: JobgraphSchema,
}

/// Both schemas with their services.
pub fn build_schemas(services: Services) -> anyhow::Result<Schemas> {
    let table = analysis::types::TypeTable::from_sdl(&sdl())?;
    let introspection = services.config.introspection;
    Ok(Schemas {
        measured: builder(introspection)
            .extension(budget::Measure::new(table.objects.into_keys()))
            .data(services.clone())
            .finish(),
        lean: builder(introspection).data(services.clone()).finish(),
        lean_validated: builder(introspection)
            .validation_mode(async_graphql::ValidationMode::Fast)
            .data(services)
            .finish(),
    })
}

/// The analyser of documents for this schema and these limits.
pub fn analyzer(limits: &Limits, introspection: bool) -> anyhow::Result<analysis::Analyzer> {
    analysis::Analyzer::new(&sdl(), limits, introspection)
}

/// The SDL clients see (what `jobgraph export-schema` prints and
/// `schema.graphql` holds).
pub fn sdl() -> String {
    builder(true).finish().sdl()
}
