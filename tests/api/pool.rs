//! The connection pool hands out clean connections. sqlx-core is patched
//! (vendor/README.md) to skip its ping when a clean connection goes back
//! to the pool; these are the cases that ping used to cover.

use std::{sync::Arc, time::Duration};

use crate::common::TestApp;
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement, TransactionTrait};

/// A pool of one connection, so every statement reuses the one before's.
async fn one_connection(app: &TestApp) -> DatabaseConnection {
    jobgraph::db::connect_pool(
        &app.config.database,
        Some(1),
        &Arc::new(jobgraph::metrics::Metrics::new()),
        "test",
    )
    .await
    .unwrap()
}

async fn number(db: &DatabaseConnection, sql: &str) -> i64 {
    db.query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap()
        .unwrap()
        .try_get_by_index::<i64>(0)
        .unwrap()
}

#[tokio::test]
async fn a_cancelled_query_does_not_leak_its_reply_into_the_next_one() {
    let app = TestApp::spawn().await;
    let db = one_connection(&app).await;
    // Long enough on both databases to be cut off mid-flight.
    let slow = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000000) \
                SELECT count(*) FROM c";
    for round in 0..3 {
        let cut = tokio::time::timeout(Duration::from_millis(20), number(&db, slow)).await;
        assert!(
            cut.is_err(),
            "round {round}: the slow query finished in 20 ms"
        );
        // The same connection answers the next statement with its own reply.
        assert_eq!(
            number(&db, "SELECT CAST(7 AS BIGINT)").await,
            7,
            "round {round}"
        );
        assert_eq!(
            number(&db, "SELECT CAST(8 AS BIGINT)").await,
            8,
            "round {round}"
        );
    }
}

#[tokio::test]
async fn a_dropped_transaction_is_rolled_back_before_its_connection_serves_again() {
    let app = TestApp::spawn().await;
    let db = one_connection(&app).await;
    let insert = |name: &str| {
        format!(
            "INSERT INTO teams (name, slug, created_at) \
             VALUES ('{name}', '{name}', CURRENT_TIMESTAMP)"
        )
    };
    let count = |name: &str| format!("SELECT count(*) FROM teams WHERE name = '{name}'");
    {
        let txn = db.begin().await.unwrap();
        txn.execute_unprepared(&insert("Dropped")).await.unwrap();
        // Dropped without commit or rollback.
    }
    // Not committed, and the connection is out of the transaction: a write
    // on it now is committed at once, visible on another connection.
    db.execute_unprepared(&insert("After")).await.unwrap();
    let other = app.state.db();
    assert_eq!(number(other, &count("Dropped")).await, 0);
    assert_eq!(number(&db, &count("Dropped")).await, 0);
    assert_eq!(number(other, &count("After")).await, 1);
}
