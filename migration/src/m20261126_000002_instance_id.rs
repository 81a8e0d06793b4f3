//! A random id for this database, created once. The response cache folds it
//! into its keys, so a database that is recreated (team ids start again at
//! 1) can never be answered from entries cached for its predecessor.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum JobgraphInstance {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(JobgraphInstance::Table)
                    .col(
                        ColumnDef::new(JobgraphInstance::Id)
                            .string_len(32)
                            .not_null()
                            .primary_key(),
                    )
                    .to_owned(),
            )
            .await?;
        let random = match manager.get_database_backend() {
            DbBackend::Sqlite => "lower(hex(randomblob(8)))",
            _ => "substr(md5(random()::text || clock_timestamp()::text), 1, 16)",
        };
        manager
            .get_connection()
            .execute_unprepared(&format!(
                "INSERT INTO jobgraph_instance (id) VALUES ({random})"
            ))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(JobgraphInstance::Table).to_owned())
            .await
    }
}
