//! Schema migrations for jobgraph, portable across SQLite and PostgreSQL.
//!
//! Every table, column and named index of SPEC.md is created here; the extra
//! `(…, created_at, id)` indexes exist because keyset pagination orders by
//! `(created_at, id)` inside a team or a parent (see the README's index table).

pub use sea_orm_migration::prelude::*;

mod m20261126_000001_core_tables;
mod m20261126_000002_instance_id;
mod m20261126_000003_tasks;
mod m20261126_000004_logs_by_member;
mod m20261203_000005_token_version;
mod m20261207_000006_task_trace_context;
pub mod m20261207_000007_counters;
mod m20261207_000008_counts_at_commit;
mod m20261207_000009_count_deltas_once_per_transaction;

/// Applies jobgraph's migrations in order.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261126_000001_core_tables::Migration),
            Box::new(m20261126_000002_instance_id::Migration),
            Box::new(m20261126_000003_tasks::Migration),
            Box::new(m20261126_000004_logs_by_member::Migration),
            Box::new(m20261203_000005_token_version::Migration),
            Box::new(m20261207_000006_task_trace_context::Migration),
            Box::new(m20261207_000007_counters::Migration),
            Box::new(m20261207_000008_counts_at_commit::Migration),
            Box::new(m20261207_000009_count_deltas_once_per_transaction::Migration),
        ]
    }
}
