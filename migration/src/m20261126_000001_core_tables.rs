//! Teams, users, jobs, the activity log and resumes.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Teams {
    Table,
    Id,
    Name,
    Slug,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Users {
    Table,
    Id,
    TeamId,
    Email,
    Name,
    Role,
    PasswordHash,
    IsActive,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Jobs {
    Table,
    Id,
    TeamId,
    CreatedById,
    Title,
    Company,
    Location,
    Url,
    Description,
    SalaryMin,
    SalaryMax,
    Status,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Logs {
    Table,
    Id,
    TeamId,
    UserId,
    Action,
    Level,
    Message,
    Metadata,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Resumes {
    Table,
    Id,
    JobId,
    UserId,
    Status,
    Content,
    Model,
    Error,
    CreatedAt,
    CompletedAt,
}

fn fk(
    name: &str,
    from: (impl IntoIden, impl IntoIden),
    to: (impl IntoIden, impl IntoIden),
    on_delete: ForeignKeyAction,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(name)
        .from(from.0, from.1)
        .to(to.0, to.1)
        .on_delete(on_delete)
        .to_owned()
}

/// Every index this migration creates: first the ones operators look for
/// by name (the product contract fixes their names), then the ones the
/// query plans need.
fn indexes() -> Vec<IndexCreateStatement> {
    fn idx<T: IntoIden + Copy + 'static, C: IntoIden + Copy + 'static>(
        name: &str,
        table: T,
        cols: &[C],
    ) -> IndexCreateStatement {
        let mut stmt = Index::create();
        stmt.name(name).table(table);
        for col in cols {
            stmt.col(*col);
        }
        stmt.to_owned()
    }
    vec![
        // Names fixed by the product contract: operators look for them.
        idx(
            "idx_users_team_active",
            Users::Table,
            &[Users::TeamId, Users::IsActive],
        ),
        idx(
            "idx_users_email_active",
            Users::Table,
            &[Users::Email, Users::IsActive],
        ),
        idx("idx_users_created_at", Users::Table, &[Users::CreatedAt]),
        idx(
            "idx_jobs_team_status",
            Jobs::Table,
            &[Jobs::TeamId, Jobs::Status],
        ),
        idx(
            "idx_jobs_company_status",
            Jobs::Table,
            &[Jobs::Company, Jobs::Status],
        ),
        idx(
            "idx_jobs_status_created",
            Jobs::Table,
            &[Jobs::Status, Jobs::CreatedAt],
        ),
        idx("idx_jobs_created_at", Jobs::Table, &[Jobs::CreatedAt]),
        idx(
            "idx_logs_user_created",
            Logs::Table,
            &[Logs::UserId, Logs::CreatedAt],
        ),
        idx(
            "idx_logs_action_created",
            Logs::Table,
            &[Logs::Action, Logs::CreatedAt],
        ),
        idx(
            "idx_logs_level_created",
            Logs::Table,
            &[Logs::Level, Logs::CreatedAt],
        ),
        // Keyset pagination: newest first inside a team or a parent.
        idx(
            "idx_users_team_created",
            Users::Table,
            &[Users::TeamId, Users::CreatedAt, Users::Id],
        ),
        idx(
            "idx_jobs_team_created",
            Jobs::Table,
            &[Jobs::TeamId, Jobs::CreatedAt, Jobs::Id],
        ),
        idx(
            "idx_jobs_team_status_created",
            Jobs::Table,
            &[Jobs::TeamId, Jobs::Status, Jobs::CreatedAt, Jobs::Id],
        ),
        idx(
            "idx_jobs_team_updated",
            Jobs::Table,
            &[Jobs::TeamId, Jobs::UpdatedAt, Jobs::Id],
        ),
        idx(
            "idx_jobs_team_company",
            Jobs::Table,
            &[Jobs::TeamId, Jobs::Company, Jobs::Id],
        ),
        idx(
            "idx_jobs_creator_created",
            Jobs::Table,
            &[Jobs::CreatedById, Jobs::CreatedAt, Jobs::Id],
        ),
        idx(
            "idx_logs_team_created",
            Logs::Table,
            &[Logs::TeamId, Logs::CreatedAt, Logs::Id],
        ),
        idx(
            "idx_resumes_job_created",
            Resumes::Table,
            &[Resumes::JobId, Resumes::CreatedAt, Resumes::Id],
        ),
        idx(
            "idx_resumes_user_created",
            Resumes::Table,
            &[Resumes::UserId, Resumes::CreatedAt],
        ),
    ]
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Teams::Table)
                    .col(big_pk_auto(Teams::Id))
                    .col(string_len(Teams::Name, 100))
                    .col(string_len_uniq(Teams::Slug, 120))
                    .col(timestamp_with_time_zone(Teams::CreatedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .col(big_pk_auto(Users::Id))
                    .col(big_integer(Users::TeamId))
                    .col(string_len_uniq(Users::Email, 254))
                    .col(string_len(Users::Name, 100))
                    .col(string_len(Users::Role, 16))
                    .col(string_null(Users::PasswordHash))
                    .col(boolean(Users::IsActive).default(true))
                    .col(timestamp_with_time_zone(Users::CreatedAt))
                    .col(timestamp_with_time_zone(Users::UpdatedAt))
                    .foreign_key(&mut fk(
                        "fk_users_team",
                        (Users::Table, Users::TeamId),
                        (Teams::Table, Teams::Id),
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Jobs::Table)
                    .col(big_pk_auto(Jobs::Id))
                    .col(big_integer(Jobs::TeamId))
                    .col(big_integer_null(Jobs::CreatedById))
                    .col(string_len(Jobs::Title, 200))
                    .col(string_len(Jobs::Company, 200))
                    .col(string_len_null(Jobs::Location, 200))
                    .col(string_len_null(Jobs::Url, 2048))
                    .col(text_null(Jobs::Description))
                    .col(big_integer_null(Jobs::SalaryMin))
                    .col(big_integer_null(Jobs::SalaryMax))
                    .col(string_len(Jobs::Status, 16))
                    .col(timestamp_with_time_zone(Jobs::CreatedAt))
                    .col(timestamp_with_time_zone(Jobs::UpdatedAt))
                    .foreign_key(&mut fk(
                        "fk_jobs_team",
                        (Jobs::Table, Jobs::TeamId),
                        (Teams::Table, Teams::Id),
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut fk(
                        "fk_jobs_created_by",
                        (Jobs::Table, Jobs::CreatedById),
                        (Users::Table, Users::Id),
                        ForeignKeyAction::SetNull,
                    ))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Logs::Table)
                    .col(big_pk_auto(Logs::Id))
                    .col(big_integer_null(Logs::TeamId))
                    .col(big_integer_null(Logs::UserId))
                    .col(string_len(Logs::Action, 64))
                    .col(string_len(Logs::Level, 16))
                    .col(text(Logs::Message))
                    .col(json_binary_null(Logs::Metadata))
                    .col(timestamp_with_time_zone(Logs::CreatedAt))
                    .foreign_key(&mut fk(
                        "fk_logs_team",
                        (Logs::Table, Logs::TeamId),
                        (Teams::Table, Teams::Id),
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut fk(
                        "fk_logs_user",
                        (Logs::Table, Logs::UserId),
                        (Users::Table, Users::Id),
                        ForeignKeyAction::SetNull,
                    ))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Resumes::Table)
                    .col(big_pk_auto(Resumes::Id))
                    .col(big_integer(Resumes::JobId))
                    .col(big_integer(Resumes::UserId))
                    .col(string_len(Resumes::Status, 16))
                    .col(text_null(Resumes::Content))
                    .col(string_len_null(Resumes::Model, 200))
                    .col(text_null(Resumes::Error))
                    .col(timestamp_with_time_zone(Resumes::CreatedAt))
                    .col(timestamp_with_time_zone_null(Resumes::CompletedAt))
                    .foreign_key(&mut fk(
                        "fk_resumes_job",
                        (Resumes::Table, Resumes::JobId),
                        (Jobs::Table, Jobs::Id),
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut fk(
                        "fk_resumes_user",
                        (Resumes::Table, Resumes::UserId),
                        (Users::Table, Users::Id),
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;

        for index in indexes() {
            manager.create_index(index).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Resumes::Table.into_iden(),
            Logs::Table.into_iden(),
            Jobs::Table.into_iden(),
            Users::Table.into_iden(),
            Teams::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
