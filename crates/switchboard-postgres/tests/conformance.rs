//! The PostgreSQL store passes the store conformance suite, and its migrations upgrade an empty
//! database to the current schema once (running them again changes nothing).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};

use switchboard_postgres::{MIGRATIONS, SCHEMA_VERSION};
use switchboard_runtime::store::ExecutionStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_conformance_suite_passes() {
    let Some(url) = common::database_url("the_store_conformance_suite_passes") else {
        return;
    };
    // One fresh, migrated schema per check.
    let n = switchboard_store_tests::Check::ALL.len();
    let mut stores = Vec::new();
    let mut schemas = Vec::new();
    for _ in 0..n {
        let (store, schema) = common::fresh_store(&url, "conf").await;
        stores.push(Arc::new(store) as Arc<dyn ExecutionStore>);
        schemas.push(schema);
    }
    let stores = Mutex::new(stores);
    let result = switchboard_store_tests::run(|| stores.lock().unwrap().remove(0)).await;
    for s in &schemas {
        common::drop_schema(&url, s).await;
    }
    result.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_upgrade_an_empty_database_once() {
    let Some(url) = common::database_url("migrations_upgrade_an_empty_database_once") else {
        return;
    };
    let schema = common::fresh_schema("migrate");
    let admin = switchboard_postgres::PostgresStore::connect(&url, &Default::default()).unwrap();
    admin.create_schema(&schema).await.unwrap();
    let store = switchboard_postgres::PostgresStore::connect(
        &url,
        &switchboard_postgres::PoolOptions {
            schema: Some(schema.clone()),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(store.schema_version().await.unwrap(), 0, "empty");
    assert!(store.check_schema().await.is_err(), "not migrated yet");
    let applied = store.migrate().await.unwrap();
    assert_eq!(
        applied,
        MIGRATIONS.iter().map(|(v, _, _)| *v).collect::<Vec<_>>(),
        "every migration applied, in order"
    );
    assert_eq!(store.schema_version().await.unwrap(), SCHEMA_VERSION);
    store.check_schema().await.unwrap();
    assert!(
        store.migrate().await.unwrap().is_empty(),
        "a second run applies nothing"
    );
    // Two migrators at once: the advisory lock lets one apply, the other finds it done.
    let other_schema = common::fresh_schema("migrate2");
    admin.create_schema(&other_schema).await.unwrap();
    let options = switchboard_postgres::PoolOptions {
        schema: Some(other_schema.clone()),
        ..Default::default()
    };
    let a = switchboard_postgres::PostgresStore::connect(&url, &options).unwrap();
    let b = switchboard_postgres::PostgresStore::connect(&url, &options).unwrap();
    let (ra, rb) = tokio::join!(a.migrate(), b.migrate());
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert_eq!(ra.len() + rb.len(), MIGRATIONS.len(), "{ra:?} {rb:?}");
    common::drop_schema(&url, &schema).await;
    common::drop_schema(&url, &other_schema).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_removes_old_ended_executions_in_batches() {
    use switchboard_runtime::store::TurnCommit;
    use switchboard_runtime::{EventType, Status, Timestamp};
    use switchboard_store_tests::{T0, event, execution};
    let Some(url) = common::database_url("prune_removes_old_ended_executions_in_batches") else {
        return;
    };
    let (store, schema) = common::fresh_store(&url, "prune").await;
    let mut executions = Vec::new();
    let mut events = Vec::new();
    for i in 0..5 {
        let mut e = execution(&format!("ex_old_{i}"), "c1");
        e.status = if i % 2 == 0 {
            Status::Ended
        } else {
            Status::Failed
        };
        e.ended_at = Some(Timestamp(T0.0 + 1_000 + i));
        e.pending_effect = None;
        events.push(event(&e.id, 1, EventType::ExecutionStarted));
        executions.push(e);
    }
    let mut recent = execution("ex_recent", "c1");
    recent.status = Status::Ended;
    recent.ended_at = Some(Timestamp(T0.0 + 90_000));
    recent.pending_effect = None;
    events.push(event("ex_recent", 1, EventType::ExecutionStarted));
    executions.push(recent);
    executions.push(execution("ex_live", "c1"));
    store
        .commit(TurnCommit {
            executions,
            events,
            ..TurnCommit::default()
        })
        .await
        .unwrap();
    let p = store.prune(Timestamp(T0.0 + 60_000), 2).await.unwrap();
    assert_eq!((p.executions, p.events), (5, 5), "{p:?}");
    assert!(store.execution("ex_old_0").await.unwrap().is_none());
    assert!(store.execution("ex_recent").await.unwrap().is_some());
    assert!(store.execution("ex_live").await.unwrap().is_some());
    assert_eq!(
        store.events("ex_recent", 0, 10, None).await.unwrap().len(),
        1
    );
    common::drop_schema(&url, &schema).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_1_database_gains_the_key_value_tables_and_keeps_its_data() {
    use switchboard_runtime::store::TurnCommit;
    use switchboard_store_tests::execution;
    let Some(url) =
        common::database_url("a_version_1_database_gains_the_key_value_tables_and_keeps_its_data")
    else {
        return;
    };
    let schema = common::fresh_schema("upgrade");
    let admin = switchboard_postgres::PostgresStore::connect(&url, &Default::default()).unwrap();
    admin.create_schema(&schema).await.unwrap();
    let options = switchboard_postgres::PoolOptions {
        schema: Some(schema.clone()),
        ..Default::default()
    };
    // A database migrated by a build that knew only migration 1.
    {
        let mut config: tokio_postgres::Config = url.parse().unwrap();
        config.options(format!("-c search_path={schema}"));
        let (client, connection) = config.connect(tokio_postgres::NoTls).await.unwrap();
        let conn = tokio::spawn(connection);
        let (version, name, sql) = MIGRATIONS[0];
        client.batch_execute(sql).await.unwrap();
        client
            .batch_execute(
                "CREATE TABLE switchboard_schema_migrations (
                     version INTEGER NOT NULL PRIMARY KEY, name TEXT NOT NULL,
                     applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
            )
            .await
            .unwrap();
        client
            .execute(
                "INSERT INTO switchboard_schema_migrations (version, name) VALUES ($1, $2)",
                &[&version, &name],
            )
            .await
            .unwrap();
        drop(client);
        conn.await.unwrap().unwrap();
    }
    let store = switchboard_postgres::PostgresStore::connect(&url, &options).unwrap();
    assert_eq!(store.schema_version().await.unwrap(), 1);
    store
        .commit(TurnCommit {
            executions: vec![execution("ex_before", "c1")],
            ..TurnCommit::default()
        })
        .await
        .unwrap();
    assert!(
        store.check_schema().await.is_err(),
        "version 1 is not current"
    );
    assert_eq!(
        store.migrate().await.unwrap(),
        vec![2, 3],
        "only the new ones"
    );
    assert_eq!(store.schema_version().await.unwrap(), SCHEMA_VERSION);
    assert!(store.execution("ex_before").await.unwrap().is_some());
    // env.KV on the upgraded schema, through a second store (a restart): values survive, keys
    // may hold a NUL and list in byte order.
    store.kv_put("fn", "a\u{0}b", "one").await.unwrap();
    store.kv_put("fn", "a", "two").await.unwrap();
    store.kv_put("fn", "é", "three").await.unwrap();
    drop(store);
    let again = switchboard_postgres::PostgresStore::connect(&url, &options).unwrap();
    assert_eq!(
        again.kv_get("fn", "a\u{0}b").await.unwrap().as_deref(),
        Some("one")
    );
    assert_eq!(
        again.kv_list("fn", "", 10).await.unwrap(),
        ["a", "a\u{0}b", "é"]
    );
    again.kv_delete("fn", "a").await.unwrap();
    assert_eq!(again.kv_list("fn", "a", 10).await.unwrap(), ["a\u{0}b"]);
    common::drop_schema(&url, &schema).await;
}
