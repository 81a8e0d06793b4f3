//! Counters kept in the same transaction as the writes that change them, so
//! `totalCount`, `jobStats` and filtered log counts are O(1) whatever a
//! team's size: jobs per team and status, jobs per team and company, log
//! entries per team and level.
//!
//! The database keeps them, with triggers: every write counts, whoever makes
//! it (the service, the seeder, a bulk load with `psql`, a script), and the
//! count moves with the row's real old and new values, so concurrent writers
//! cannot make it drift. On PostgreSQL the triggers are per statement with
//! transition tables (a 1,000-row insert is one grouped upsert per table,
//! its rows locked in key order so writers never deadlock on them); SQLite's
//! triggers are per row (in process, each is a few microseconds). Filled from
//! the rows that exist when the migration runs; `jobgraph repair-counters`
//! recomputes them.

use sea_orm_migration::{prelude::*, sea_orm::DatabaseBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// `(table, key column)`: each table is `(team_id, key, n)` with the pair as
/// its primary key.
const TABLES: [(&str, &str); 3] = [
    ("job_counts", "status"),
    ("company_counts", "company"),
    ("log_counts", "level"),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (table, key) in TABLES {
            manager
                .create_table(
                    Table::create()
                        .table(Alias::new(table))
                        .col(
                            ColumnDef::new(Alias::new("team_id"))
                                .big_integer()
                                .not_null(),
                        )
                        .col(ColumnDef::new(Alias::new(key)).text().not_null())
                        .col(
                            ColumnDef::new(Alias::new("n"))
                                .big_integer()
                                .not_null()
                                .default(0),
                        )
                        .primary_key(
                            Index::create()
                                .col(Alias::new("team_id"))
                                .col(Alias::new(key)),
                        )
                        .to_owned(),
                )
                .await?;
        }
        // Top companies: the largest counts of a team, read in order.
        manager
            .create_index(
                Index::create()
                    .name("idx_company_counts_team_n")
                    .table(Alias::new("company_counts"))
                    .col(Alias::new("team_id"))
                    .col((Alias::new("n"), IndexOrder::Desc))
                    .col(Alias::new("company"))
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        for sql in BACKFILL {
            db.execute_unprepared(sql).await?;
        }
        let triggers = match manager.get_database_backend() {
            DatabaseBackend::Postgres => POSTGRES_TRIGGERS,
            _ => SQLITE_TRIGGERS,
        };
        db.execute_unprepared(triggers).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let drop = match manager.get_database_backend() {
            DatabaseBackend::Postgres => {
                "DROP TRIGGER IF EXISTS jg_jobs_counts_insert ON jobs; \
                 DROP TRIGGER IF EXISTS jg_jobs_counts_update ON jobs; \
                 DROP TRIGGER IF EXISTS jg_jobs_counts_delete ON jobs; \
                 DROP TRIGGER IF EXISTS jg_logs_counts_insert ON logs; \
                 DROP TRIGGER IF EXISTS jg_logs_counts_delete ON logs; \
                 DROP FUNCTION IF EXISTS jg_jobs_counts(); \
                 DROP FUNCTION IF EXISTS jg_logs_counts();"
            }
            _ => {
                "DROP TRIGGER IF EXISTS jg_jobs_counts_insert; \
                 DROP TRIGGER IF EXISTS jg_jobs_counts_update; \
                 DROP TRIGGER IF EXISTS jg_jobs_counts_delete; \
                 DROP TRIGGER IF EXISTS jg_logs_counts_insert; \
                 DROP TRIGGER IF EXISTS jg_logs_counts_delete;"
            }
        };
        manager.get_connection().execute_unprepared(drop).await?;
        for (table, _) in TABLES {
            manager
                .drop_table(Table::drop().table(Alias::new(table)).to_owned())
                .await?;
        }
        Ok(())
    }
}

/// Counts of the rows that exist (also what `jobgraph repair-counters` runs
/// after emptying the tables).
pub const BACKFILL: [&str; 3] = [
    "INSERT INTO job_counts (team_id, status, n) \
     SELECT team_id, status, COUNT(*) FROM jobs GROUP BY team_id, status",
    "INSERT INTO company_counts (team_id, company, n) \
     SELECT team_id, company, COUNT(*) FROM jobs GROUP BY team_id, company",
    "INSERT INTO log_counts (team_id, level, n) \
     SELECT team_id, level, COUNT(*) FROM logs WHERE team_id IS NOT NULL GROUP BY team_id, level",
];

/// One function per table: the statement's old rows count -1, its new rows
/// +1, grouped by key and applied in key order. Each function keeps the
/// schema path it was created under, so a session with another one (as
/// `pg_dump` output sets) still finds the counters.
pub(crate) const POSTGRES_TRIGGERS: &str = r#"
CREATE FUNCTION jg_jobs_counts() RETURNS trigger LANGUAGE plpgsql
  SET search_path FROM CURRENT AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO job_counts (team_id, status, n)
      SELECT team_id, status, COUNT(*) FROM new_rows GROUP BY team_id, status ORDER BY team_id, status
      ON CONFLICT (team_id, status) DO UPDATE SET n = job_counts.n + excluded.n;
    INSERT INTO company_counts (team_id, company, n)
      SELECT team_id, company, COUNT(*) FROM new_rows GROUP BY team_id, company ORDER BY team_id, company
      ON CONFLICT (team_id, company) DO UPDATE SET n = company_counts.n + excluded.n;
  ELSIF TG_OP = 'DELETE' THEN
    INSERT INTO job_counts (team_id, status, n)
      SELECT team_id, status, -COUNT(*) FROM old_rows GROUP BY team_id, status ORDER BY team_id, status
      ON CONFLICT (team_id, status) DO UPDATE SET n = job_counts.n + excluded.n;
    INSERT INTO company_counts (team_id, company, n)
      SELECT team_id, company, -COUNT(*) FROM old_rows GROUP BY team_id, company ORDER BY team_id, company
      ON CONFLICT (team_id, company) DO UPDATE SET n = company_counts.n + excluded.n;
  ELSE
    INSERT INTO job_counts (team_id, status, n)
      SELECT team_id, status, SUM(d) FROM (
        SELECT team_id, status, -1 AS d FROM old_rows
        UNION ALL SELECT team_id, status, 1 FROM new_rows) AS moved
      GROUP BY team_id, status HAVING SUM(d) <> 0 ORDER BY team_id, status
      ON CONFLICT (team_id, status) DO UPDATE SET n = job_counts.n + excluded.n;
    INSERT INTO company_counts (team_id, company, n)
      SELECT team_id, company, SUM(d) FROM (
        SELECT team_id, company, -1 AS d FROM old_rows
        UNION ALL SELECT team_id, company, 1 FROM new_rows) AS moved
      GROUP BY team_id, company HAVING SUM(d) <> 0 ORDER BY team_id, company
      ON CONFLICT (team_id, company) DO UPDATE SET n = company_counts.n + excluded.n;
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER jg_jobs_counts_insert AFTER INSERT ON jobs
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION jg_jobs_counts();
CREATE TRIGGER jg_jobs_counts_update AFTER UPDATE ON jobs
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION jg_jobs_counts();
CREATE TRIGGER jg_jobs_counts_delete AFTER DELETE ON jobs
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION jg_jobs_counts();

CREATE FUNCTION jg_logs_counts() RETURNS trigger LANGUAGE plpgsql
  SET search_path FROM CURRENT AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO log_counts (team_id, level, n)
      SELECT team_id, level, COUNT(*) FROM new_rows WHERE team_id IS NOT NULL
      GROUP BY team_id, level ORDER BY team_id, level
      ON CONFLICT (team_id, level) DO UPDATE SET n = log_counts.n + excluded.n;
  ELSE
    INSERT INTO log_counts (team_id, level, n)
      SELECT team_id, level, -COUNT(*) FROM old_rows WHERE team_id IS NOT NULL
      GROUP BY team_id, level ORDER BY team_id, level
      ON CONFLICT (team_id, level) DO UPDATE SET n = log_counts.n + excluded.n;
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER jg_logs_counts_insert AFTER INSERT ON logs
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION jg_logs_counts();
CREATE TRIGGER jg_logs_counts_delete AFTER DELETE ON logs
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION jg_logs_counts();
"#;

/// Row triggers; an update moves a count only when the key changed.
const SQLITE_TRIGGERS: &str = r#"
CREATE TRIGGER jg_jobs_counts_insert AFTER INSERT ON jobs BEGIN
  INSERT INTO job_counts (team_id, status, n) VALUES (NEW.team_id, NEW.status, 1)
    ON CONFLICT (team_id, status) DO UPDATE SET n = n + 1;
  INSERT INTO company_counts (team_id, company, n) VALUES (NEW.team_id, NEW.company, 1)
    ON CONFLICT (team_id, company) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER jg_jobs_counts_update AFTER UPDATE OF team_id, status, company ON jobs
  WHEN OLD.team_id IS NOT NEW.team_id OR OLD.status IS NOT NEW.status OR OLD.company IS NOT NEW.company
BEGIN
  UPDATE job_counts SET n = n - 1 WHERE team_id = OLD.team_id AND status = OLD.status;
  INSERT INTO job_counts (team_id, status, n) VALUES (NEW.team_id, NEW.status, 1)
    ON CONFLICT (team_id, status) DO UPDATE SET n = n + 1;
  UPDATE company_counts SET n = n - 1 WHERE team_id = OLD.team_id AND company = OLD.company;
  INSERT INTO company_counts (team_id, company, n) VALUES (NEW.team_id, NEW.company, 1)
    ON CONFLICT (team_id, company) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER jg_jobs_counts_delete AFTER DELETE ON jobs BEGIN
  UPDATE job_counts SET n = n - 1 WHERE team_id = OLD.team_id AND status = OLD.status;
  UPDATE company_counts SET n = n - 1 WHERE team_id = OLD.team_id AND company = OLD.company;
END;
CREATE TRIGGER jg_logs_counts_insert AFTER INSERT ON logs WHEN NEW.team_id IS NOT NULL BEGIN
  INSERT INTO log_counts (team_id, level, n) VALUES (NEW.team_id, NEW.level, 1)
    ON CONFLICT (team_id, level) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER jg_logs_counts_delete AFTER DELETE ON logs WHEN OLD.team_id IS NOT NULL BEGIN
  UPDATE log_counts SET n = n - 1 WHERE team_id = OLD.team_id AND level = OLD.level;
END;
"#;
