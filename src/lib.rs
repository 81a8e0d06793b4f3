//! jobgraph: the GraphQL backend of a team-based job-search tracker.
//!
//! Layers, outermost first: [`http`] (GraphQL over HTTP, GraphiQL, health),
//! [`cache`] (response cache), [`graphql`] (schema, resolvers, loaders),
//! [`db`] (entities and queries), with [`auth`], [`config`], [`error`] and
//! [`metrics`] beside them. [`tasks`] runs background work (resumes via
//! [`resume_writer`], mail via [`email`], log retention, stats refresh).
//! [`app::Application`] puts them together; [`cli`] is the command line.

pub mod app;
pub mod auth;
pub mod cache;
pub mod cli;
pub mod config;
pub mod db;
pub mod email;
pub mod error;
pub mod events;
pub mod graphql;
pub mod http;
pub mod metrics;
pub mod resume_writer;
pub mod secret;
pub mod seed;
pub mod tasks;
pub mod telemetry;
pub mod throttle;
pub mod unit_of_work;
