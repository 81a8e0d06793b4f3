//! The GraphQL schema: types, resolvers, loaders and input validation. It
//! knows nothing of HTTP; the HTTP layer puts the viewer and the request's
//! loaders into each request and executes it.

pub mod context;
pub mod ids;
pub mod inputs;
pub mod loaders;
pub mod mutation;
pub mod pagination;
pub mod query;
pub mod types;

use async_graphql::{EmptySubscription, Schema, SchemaBuilder};

use crate::config::Limits;
pub use context::Services;
use mutation::Mutation;
use query::Query;

/// The executable schema.
pub type JobgraphSchema = Schema<Query, Mutation, EmptySubscription>;

fn builder(limits: &Limits) -> SchemaBuilder<Query, Mutation, EmptySubscription> {
    Schema::build(Query, Mutation::default(), EmptySubscription)
        .limit_depth(limits.max_query_depth)
        .limit_complexity(limits.max_query_complexity)
        .limit_recursive_depth(32)
        .limit_directives(16)
}

/// The schema with its services, limits applied.
pub fn build_schema(services: Services) -> JobgraphSchema {
    let limits = services.config.limits.clone();
    builder(&limits).data(services).finish()
}

/// The SDL clients see (what `jobgraph export-schema` prints and
/// `schema.graphql` holds).
pub fn sdl() -> String {
    builder(&Limits::default()).finish().sdl()
}
