//! The integration suite, one test binary: every module starts the real
//! application (or the real binary) with a fresh database of its own and
//! talks to it over HTTP. `common` is the harness: the app, Redis servers
//! and a cluster, a PostgreSQL cluster, an SMTP server, a misbehaving
//! network.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

mod abuse;
mod accounts;
mod auth;
mod background;
mod cache;
mod cache_cluster;
mod cache_failover;
mod cli;
mod clients;
mod counters;
mod deploy;
mod durability;
mod faults;
mod fuzz;
mod http_caching;
mod http_protocol;
mod isolation;
mod jobs;
mod limits;
mod logging;
mod observability;
mod pagination;
mod persisted_queries;
mod pool;
mod read_replicas;
mod roles;
mod schema;
mod sql_counts;
mod subscriptions;
mod task_faults;
mod timeouts;
mod write_path;
