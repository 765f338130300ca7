//! One database role per stage, created by the migrations: each holds only what its stage
//! needs, and the audit log refuses UPDATE, DELETE and TRUNCATE from every role, the owner
//! included.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use runtime::postgres::connect;
use sqlx::PgPool;
use tests::scratch::ScratchDatabase;

const STAGES: [&str; 3] = [
    "credit_risk_aggregator",
    "credit_risk_edge",
    "credit_risk_trainer",
];

/// Run `sql` and say whether the database refused it (and why).
async fn refused(pool: &PgPool, sql: &str) -> Option<String> {
    match sqlx::query(sql).execute(pool).await {
        Ok(_) => None,
        Err(e) => Some(e.to_string()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_refuses_update_delete_and_truncate_for_every_role() {
    let db = ScratchDatabase::create().await.unwrap();
    let owner = connect(&db.url, 2).await.unwrap();
    book::db::migrate(&owner).await.unwrap();
    sqlx::query("INSERT INTO audit_log (actor, action, subject) VALUES ('owner', 'test', 'x')")
        .execute(&owner)
        .await
        .unwrap();
    let mut pools = vec![("owner".to_string(), owner.clone())];
    for stage in STAGES {
        let url = db.login_as(stage).await.unwrap();
        pools.push((stage.to_string(), connect(&url, 1).await.unwrap()));
    }
    for (who, pool) in &pools {
        // Every stage may append (keys, promotions and customer changes are audited).
        assert_eq!(
            refused(
                pool,
                "INSERT INTO audit_log (actor, action, subject) VALUES ('t', 'appended', 'x')"
            )
            .await,
            None,
            "{who} appends"
        );
        for sql in [
            "UPDATE audit_log SET actor = 'someone else'",
            "DELETE FROM audit_log",
            "TRUNCATE audit_log",
        ] {
            let why = refused(pool, sql).await;
            assert!(why.is_some(), "{who}: {sql} was accepted");
        }
    }
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT actor, action FROM audit_log ORDER BY id")
            .fetch_all(&owner)
            .await
            .unwrap();
    assert_eq!(rows.len(), 1 + pools.len());
    assert_eq!(rows[0], ("owner".to_string(), "test".to_string()));
    // The owner is refused by the log itself, not only by privileges.
    let why = refused(&owner, "TRUNCATE audit_log").await.unwrap();
    assert!(why.contains("append-only"), "{why}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_stage_writes_only_what_it_owns() {
    let db = ScratchDatabase::create().await.unwrap();
    let owner = connect(&db.url, 2).await.unwrap();
    book::db::migrate(&owner).await.unwrap();
    let login = |stage: &'static str| {
        let db = &db;
        async move {
            connect(&db.login_as(stage).await.unwrap(), 1)
                .await
                .unwrap()
        }
    };
    let (aggregator, edge, trainer) = (
        login("credit_risk_aggregator").await,
        login("credit_risk_edge").await,
        login("credit_risk_trainer").await,
    );
    let customer = "INSERT INTO customers (customer_id, registered_at, full_name, email, phone, \
        employment_type, years_employed, monthly_income, existing_emi, dependents, residence, \
        region) VALUES ('C-1', now(), 'A', 'a@b.c', '12345', 'salaried', 1, 1, 0, 0, 'own', 'n')";
    // The book is written by the aggregator alone.
    assert_eq!(refused(&aggregator, customer).await, None);
    for (who, pool) in [("edge", &edge), ("trainer", &trainer)] {
        assert!(
            refused(pool, customer).await.is_some(),
            "{who} wrote the book"
        );
        assert!(
            refused(pool, "UPDATE customers SET email = 'x@y.z'")
                .await
                .is_some(),
            "{who} changed a customer"
        );
        assert!(
            refused(pool, "DELETE FROM consumer_offsets")
                .await
                .is_some(),
            "{who} moved the aggregator's offsets"
        );
    }
    // Everyone may read the book; no stage but the edge reads keys.
    for pool in [&aggregator, &edge, &trainer] {
        assert_eq!(refused(pool, "SELECT count(*) FROM customers").await, None);
    }
    assert_eq!(refused(&edge, "SELECT count(*) FROM api_keys").await, None);
    for pool in [&aggregator, &trainer] {
        assert!(refused(pool, "SELECT count(*) FROM api_keys")
            .await
            .is_some());
    }
    // Keys: created and revoked by the edge; a key's hash or role never changes.
    assert_eq!(
        refused(
            &edge,
            "INSERT INTO api_keys (key_id, key_hash, role, label) VALUES ('k', 'h', 'admin', 'l')"
        )
        .await,
        None
    );
    assert_eq!(
        refused(&edge, "UPDATE api_keys SET revoked_at = now()").await,
        None
    );
    assert!(refused(&edge, "UPDATE api_keys SET role = 'admin'")
        .await
        .is_some());
    // Models: registered by the trainer; the edge only moves aliases.
    let model = "INSERT INTO models (model_version, model_name, feature_set_version, \
        artifact_uri, metrics, rows, data_hash, created_by) VALUES ('v1', 'pd', 'f1', 'file:x', \
        '{}', 1, 'h', 't')";
    assert!(refused(&edge, model).await.is_some());
    assert!(refused(&aggregator, model).await.is_some());
    let trainer_registers = refused(&trainer, model).await;
    assert_eq!(trainer_registers, None);
    assert_eq!(
        refused(&edge, "UPDATE models SET alias = 'champion'").await,
        None
    );
    assert!(
        refused(&edge, "UPDATE models SET artifact_uri = 'file:evil'")
            .await
            .is_some()
    );
    // Only the aggregator refreshes statistics (as the tables' owner, through one function).
    assert_eq!(
        refused(
            &aggregator,
            "SELECT refresh_book_statistics(ARRAY['loans'])"
        )
        .await,
        None
    );
    assert!(
        refused(&edge, "SELECT refresh_book_statistics(ARRAY['loans'])")
            .await
            .is_some()
    );
    // Each stage starts on a schema already migrated by its owner (it only reads the ledger).
    for pool in [&aggregator, &edge, &trainer] {
        book::db::migrate(pool).await.unwrap();
    }
    // No stage may drop or truncate a table of the book.
    for pool in [&aggregator, &edge, &trainer] {
        assert!(refused(pool, "TRUNCATE loans").await.is_some());
        assert!(refused(pool, "DROP TABLE payments").await.is_some());
    }
}
