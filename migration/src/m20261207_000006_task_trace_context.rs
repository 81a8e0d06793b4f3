//! The trace a task was enqueued in (a W3C `traceparent`), so the span of
//! the task's run links back to the request that caused it.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Alias::new("tasks"))
                    .add_column(ColumnDef::new(Alias::new("trace_context")).text().null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Alias::new("tasks"))
                    .drop_column(Alias::new("trace_context"))
                    .to_owned(),
            )
            .await
    }
}
