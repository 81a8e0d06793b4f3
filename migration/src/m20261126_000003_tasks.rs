//! The durable task queue: background work is a row here, inserted in the
//! same transaction as the change that caused it. Also the index log
//! retention deletes by.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Tasks {
    Table,
    Id,
    Kind,
    Payload,
    Status,
    Attempts,
    MaxAttempts,
    RunAt,
    LockedUntil,
    LockedBy,
    LastError,
    DedupKey,
    CreatedAt,
    UpdatedAt,
    FinishedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Tasks::Table)
                    .col(big_pk_auto(Tasks::Id))
                    .col(string_len(Tasks::Kind, 32))
                    .col(json_binary(Tasks::Payload))
                    .col(string_len(Tasks::Status, 16))
                    .col(integer(Tasks::Attempts).default(0))
                    .col(integer(Tasks::MaxAttempts))
                    .col(timestamp_with_time_zone(Tasks::RunAt))
                    .col(timestamp_with_time_zone_null(Tasks::LockedUntil))
                    .col(string_len_null(Tasks::LockedBy, 64))
                    .col(text_null(Tasks::LastError))
                    .col(string_len_null(Tasks::DedupKey, 128))
                    .col(timestamp_with_time_zone(Tasks::CreatedAt))
                    .col(timestamp_with_time_zone(Tasks::UpdatedAt))
                    .col(timestamp_with_time_zone_null(Tasks::FinishedAt))
                    .to_owned(),
            )
            .await?;
        // Workers claim by (status, run_at); expired leases by locked_until.
        manager
            .create_index(
                Index::create()
                    .name("idx_tasks_status_run_at")
                    .table(Tasks::Table)
                    .col(Tasks::Status)
                    .col(Tasks::RunAt)
                    .col(Tasks::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_tasks_status_locked_until")
                    .table(Tasks::Table)
                    .col(Tasks::Status)
                    .col(Tasks::LockedUntil)
                    .to_owned(),
            )
            .await?;
        // Log retention deletes the oldest rows first.
        manager
            .create_index(
                Index::create()
                    .name("idx_logs_created_at")
                    .table(Alias::new("logs"))
                    .col(Alias::new("created_at"))
                    .to_owned(),
            )
            .await?;
        // At most one *queued* task per dedup key: bursts coalesce, while a
        // task already running does not block the next one.
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE UNIQUE INDEX idx_tasks_dedup_queued ON tasks (dedup_key) WHERE status = 'queued'",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Tasks::Table).to_owned())
            .await
    }
}
