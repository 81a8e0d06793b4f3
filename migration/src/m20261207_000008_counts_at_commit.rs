//! PostgreSQL applies counter changes when the writing transaction commits,
//! not when the row is written.
//!
//! With the counters of `m20261207_000007_counters` applied by the
//! statement, a transaction that inserted a job held the row lock of its
//! team's `(team, status)` counter until its COMMIT: for the whole rest of
//! the unit of work (the activity-log insert, the task insert, the COMMIT
//! itself), each a round trip between the service and PostgreSQL. Writers of
//! one team queued behind each other for all of it; under load that, not the
//! work, set how many writes a team could make per second.
//!
//! Now the statement triggers only record the change in `count_deltas`
//! (an insert: nothing to wait for), and a deferred constraint trigger folds
//! the transaction's deltas into the counters at COMMIT, inside PostgreSQL,
//! in table and key order (writers never deadlock on them). The counter
//! rows are locked only from then to the end of the commit. A rolled-back
//! transaction or savepoint takes its deltas with it. `count_deltas` is
//! empty outside a transaction, so it is UNLOGGED: after a crash it is
//! emptied, which is what it holds anyway. SQLite serialises its writers
//! already; its row triggers stay as they are.

use sea_orm_migration::{prelude::*, sea_orm::DatabaseBackend};

use crate::m20261207_000007_counters::POSTGRES_TRIGGERS;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DatabaseBackend::Postgres {
            return Ok(());
        }
        manager
            .get_connection()
            .execute_unprepared(&UP_POSTGRES.replace("{APPLY}", &apply_statements()))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DatabaseBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        db.execute_unprepared(DOWN_POSTGRES).await?;
        db.execute_unprepared(POSTGRES_TRIGGERS).await?;
        Ok(())
    }
}

/// The statements that fold the current transaction's deltas into the
/// counters and delete them: one per counter table, in table and key order.
pub(crate) fn apply_statements() -> String {
    COUNTERS
        .iter()
        .map(|(counter, table, key)| {
            format!(
                "WITH taken AS (DELETE FROM count_deltas \
                   WHERE tx = pg_current_xact_id() AND counter = {counter} \
                   RETURNING team_id, key, n) \
                 INSERT INTO {table} (team_id, {key}, n) \
                   SELECT team_id, key, SUM(n) FROM taken GROUP BY team_id, key \
                   HAVING SUM(n) <> 0 ORDER BY team_id, key \
                 ON CONFLICT (team_id, {key}) DO UPDATE SET n = {table}.n + excluded.n;\n"
            )
        })
        .collect()
}

/// `count_deltas.counter` and the counter table and key it feeds, in the
/// order they are applied at commit.
const COUNTERS: [(i16, &str, &str); 3] = [
    (1, "job_counts", "status"),
    (2, "company_counts", "company"),
    (3, "log_counts", "level"),
];

/// The table, the statement triggers that fill it, and the deferred trigger
/// that applies it (`{APPLY}`: one statement per counter table).
const UP_POSTGRES: &str = r#"
CREATE UNLOGGED TABLE count_deltas (
  tx xid8 NOT NULL DEFAULT pg_current_xact_id(),
  counter smallint NOT NULL,
  team_id bigint NOT NULL,
  key text NOT NULL,
  n bigint NOT NULL
);
CREATE INDEX idx_count_deltas_tx ON count_deltas (tx);

CREATE OR REPLACE FUNCTION jg_jobs_counts() RETURNS trigger LANGUAGE plpgsql
  SET search_path FROM CURRENT AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO count_deltas (counter, team_id, key, n)
      SELECT 1, team_id, status, COUNT(*) FROM new_rows GROUP BY team_id, status
      UNION ALL
      SELECT 2, team_id, company, COUNT(*) FROM new_rows GROUP BY team_id, company;
  ELSIF TG_OP = 'DELETE' THEN
    INSERT INTO count_deltas (counter, team_id, key, n)
      SELECT 1, team_id, status, -COUNT(*) FROM old_rows GROUP BY team_id, status
      UNION ALL
      SELECT 2, team_id, company, -COUNT(*) FROM old_rows GROUP BY team_id, company;
  ELSE
    INSERT INTO count_deltas (counter, team_id, key, n)
      SELECT 1, team_id, status, SUM(d) FROM (
        SELECT team_id, status, -1 AS d FROM old_rows
        UNION ALL SELECT team_id, status, 1 FROM new_rows) AS moved
      GROUP BY team_id, status HAVING SUM(d) <> 0
      UNION ALL
      SELECT 2, team_id, company, SUM(d) FROM (
        SELECT team_id, company, -1 AS d FROM old_rows
        UNION ALL SELECT team_id, company, 1 FROM new_rows) AS moved
      GROUP BY team_id, company HAVING SUM(d) <> 0;
  END IF;
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION jg_logs_counts() RETURNS trigger LANGUAGE plpgsql
  SET search_path FROM CURRENT AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO count_deltas (counter, team_id, key, n)
      SELECT 3, team_id, level, COUNT(*) FROM new_rows WHERE team_id IS NOT NULL
      GROUP BY team_id, level;
  ELSE
    INSERT INTO count_deltas (counter, team_id, key, n)
      SELECT 3, team_id, level, -COUNT(*) FROM old_rows WHERE team_id IS NOT NULL
      GROUP BY team_id, level;
  END IF;
  RETURN NULL;
END $$;

-- Fires once per delta row at COMMIT; the first firing of a transaction
-- applies all of its deltas, the others find none left.
CREATE FUNCTION jg_apply_count_deltas() RETURNS trigger LANGUAGE plpgsql
  SET search_path FROM CURRENT AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM count_deltas WHERE tx = pg_current_xact_id()) THEN
    RETURN NULL;
  END IF;
{APPLY}  RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER jg_count_deltas_apply AFTER INSERT ON count_deltas
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION jg_apply_count_deltas();
"#;

/// Back to counters applied by the statement (the 000007 functions and
/// triggers are created again after this).
const DOWN_POSTGRES: &str = "
DROP TRIGGER IF EXISTS jg_jobs_counts_insert ON jobs;
DROP TRIGGER IF EXISTS jg_jobs_counts_update ON jobs;
DROP TRIGGER IF EXISTS jg_jobs_counts_delete ON jobs;
DROP TRIGGER IF EXISTS jg_logs_counts_insert ON logs;
DROP TRIGGER IF EXISTS jg_logs_counts_delete ON logs;
DROP FUNCTION IF EXISTS jg_jobs_counts();
DROP FUNCTION IF EXISTS jg_logs_counts();
DROP TABLE IF EXISTS count_deltas;
DROP FUNCTION IF EXISTS jg_apply_count_deltas();
";
