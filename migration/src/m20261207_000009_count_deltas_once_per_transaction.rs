//! PostgreSQL folds a transaction's counter deltas with one trigger firing
//! per transaction, not one per delta row.
//!
//! `m20261207_000008_counts_at_commit` fired its deferred trigger for every
//! row of `count_deltas`: the first firing applied them all, and each later
//! one looked for rows left over. Those lookups walk the index entries of
//! the rows the first firing deleted (dead, but not yet to be skipped while
//! the deleting transaction is open), so a commit cost grew with the square
//! of the transaction's deltas. A `createJobs` of 1,000 with as many
//! companies, or `jobgraph seed` (one transaction; a million jobs write
//! millions of deltas), wedged in COMMIT.
//!
//! Now a statement trigger on `count_deltas` marks the transaction once in
//! `count_delta_txs` (one row per open transaction that wrote deltas), and
//! the deferred trigger fires for that row: it applies the transaction's
//! deltas and removes the mark. A later write in the same transaction (after
//! `SET CONSTRAINTS … IMMEDIATE`) marks it again; a rolled-back savepoint
//! takes its mark and its deltas with it.

use sea_orm_migration::{prelude::*, sea_orm::DatabaseBackend};

use crate::m20261207_000008_counts_at_commit;

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
            .execute_unprepared(&UP.replace(
                "{APPLY}",
                &m20261207_000008_counts_at_commit::apply_statements(),
            ))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DatabaseBackend::Postgres {
            return Ok(());
        }
        manager.get_connection().execute_unprepared(DOWN).await?;
        Ok(())
    }
}

const UP: &str = r#"
DROP TRIGGER jg_count_deltas_apply ON count_deltas;

CREATE UNLOGGED TABLE count_delta_txs (tx xid8 PRIMARY KEY);

CREATE FUNCTION jg_mark_count_deltas() RETURNS trigger LANGUAGE plpgsql
  SET search_path FROM CURRENT AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM added) THEN
    INSERT INTO count_delta_txs (tx) VALUES (pg_current_xact_id())
      ON CONFLICT (tx) DO NOTHING;
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER jg_count_deltas_mark AFTER INSERT ON count_deltas
  REFERENCING NEW TABLE AS added
  FOR EACH STATEMENT EXECUTE FUNCTION jg_mark_count_deltas();

-- Applies every delta of the transaction (as 000008's per-row function,
-- which stays for `down`) and removes the mark.
CREATE FUNCTION jg_apply_marked_count_deltas() RETURNS trigger LANGUAGE plpgsql
  SET search_path FROM CURRENT AS $$
BEGIN
  DELETE FROM count_delta_txs WHERE tx = NEW.tx;
{APPLY}  RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER jg_count_deltas_apply AFTER INSERT ON count_delta_txs
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
  EXECUTE FUNCTION jg_apply_marked_count_deltas();
"#;

const DOWN: &str = r#"
DROP TRIGGER IF EXISTS jg_count_deltas_apply ON count_delta_txs;
DROP TRIGGER IF EXISTS jg_count_deltas_mark ON count_deltas;
DROP FUNCTION IF EXISTS jg_apply_marked_count_deltas();
DROP FUNCTION IF EXISTS jg_mark_count_deltas();
DROP TABLE IF EXISTS count_delta_txs;
CREATE CONSTRAINT TRIGGER jg_count_deltas_apply AFTER INSERT ON count_deltas
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION jg_apply_count_deltas();
"#;
