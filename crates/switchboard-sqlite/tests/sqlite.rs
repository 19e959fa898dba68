//! `SqliteStore`: the store conformance suite on a file and in memory, plus what only a
//! durable store promises (reopening, schema versions, pruning, decoding errors).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::{TempDir, file_store, memory_store};
use serde_json::json;
use switchboard_runtime::store::{ExecutionStore, MESSAGE_ID_RETENTION_MS, TurnCommit};
use switchboard_runtime::{EventType, StoreError, Timestamp};
use switchboard_sqlite::{SCHEMA_VERSION, SqliteStore};
use switchboard_store_tests::{self as testing, T0};

/// The conformance checks, each on a fresh database file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_on_a_file() {
    switchboard_store_tests::run(file_store).await.unwrap();
}

/// The conformance checks on an in-memory database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_in_memory() {
    switchboard_store_tests::run(memory_store).await.unwrap();
}

/// One check helper: a store on a fresh file, reopened by `reopen`.
fn check<F, Fut>(f: F)
where
    F: FnOnce(TempDir) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(f(TempDir::new("sqlite-test")));
}

#[test]
fn everything_survives_reopening() {
    check(|dir| async move {
        let path = dir.file("db.sqlite");
        let conv = testing::conversation("c1");
        let exec = testing::execution("ex_1", "c1");
        {
            let store = SqliteStore::open(&path).unwrap();
            store
                .commit(TurnCommit {
                    conversations: vec![conv.clone()],
                    executions: vec![exec.clone()],
                    events: vec![
                        testing::event("ex_1", 1, EventType::ExecutionStarted),
                        testing::event("ex_1", 2, EventType::StepEntered),
                    ],
                    message_ids: vec![("c1".into(), "m1".into(), T0)],
                    idempotency: Some(("k".into(), json!({"execution_id": "ex_1"}), T0)),
                    ..TurnCommit::default()
                })
                .await
                .unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.schema_version().await.unwrap(), SCHEMA_VERSION);
        let mut want = conv.clone();
        want.version = 1;
        assert_eq!(store.conversation("c1").await.unwrap(), Some(want));
        let mut want = exec.clone();
        want.version = 1;
        assert_eq!(store.execution("ex_1").await.unwrap(), Some(want));
        assert_eq!(store.events("ex_1", 0, 10, None).await.unwrap().len(), 2);
        assert!(store.seen_message("c1", "m1").await.unwrap());
        assert_eq!(
            store.idempotent_result("k", T0).await.unwrap(),
            Some(json!({"execution_id": "ex_1"}))
        );
        let due = store
            .due_timers(Timestamp(T0.0 + 600_000), 10)
            .await
            .unwrap();
        assert_eq!(due.len(), 1, "the waiting execution's timer survives");
        // A stale writer from before the restart still conflicts.
        let stale = store
            .commit(TurnCommit {
                executions: vec![exec],
                ..TurnCommit::default()
            })
            .await;
        assert!(matches!(stale, Err(StoreError::Conflict(_))), "{stale:?}");
    });
}

#[test]
fn two_stores_on_one_file_see_each_other() {
    check(|dir| async move {
        let path = dir.file("shared.sqlite");
        let a = Arc::new(SqliteStore::open(&path).unwrap());
        let b = Arc::new(SqliteStore::open(&path).unwrap());
        a.commit(TurnCommit {
            conversations: vec![testing::conversation("c1")],
            ..TurnCommit::default()
        })
        .await
        .unwrap();
        let loaded = b.conversation("c1").await.unwrap().unwrap();
        assert_eq!(loaded.version, 1);
        // Both commit on version 1: exactly one wins.
        let (ra, rb) = tokio::join!(
            a.commit(TurnCommit {
                conversations: vec![loaded.clone()],
                ..TurnCommit::default()
            }),
            b.commit(TurnCommit {
                conversations: vec![loaded.clone()],
                ..TurnCommit::default()
            }),
        );
        assert!(ra.is_ok() != rb.is_ok(), "{ra:?} {rb:?}");
        assert_eq!(a.conversation("c1").await.unwrap().unwrap().version, 2);
    });
}

#[test]
fn message_ids_older_than_the_retention_window_are_forgotten() {
    check(|dir| async move {
        let store = SqliteStore::open(dir.file("db")).unwrap();
        let record = |id: &str, at: i64| TurnCommit {
            message_ids: vec![("c1".into(), id.to_owned(), Timestamp(at))],
            ..TurnCommit::default()
        };
        store.commit(record("old", T0.0)).await.unwrap();
        store.commit(record("kept", T0.0 + 1)).await.unwrap();
        store
            .commit(record("new", T0.0 + MESSAGE_ID_RETENTION_MS + 1))
            .await
            .unwrap();
        assert!(!store.seen_message("c1", "old").await.unwrap(), "pruned");
        assert!(
            store.seen_message("c1", "kept").await.unwrap(),
            "exactly 7 days: kept"
        );
        assert!(store.seen_message("c1", "new").await.unwrap());
        let removed = store.prune_message_ids(Timestamp(T0.0 + 2)).await.unwrap();
        assert_eq!(removed, 1);
        assert!(!store.seen_message("c1", "kept").await.unwrap());
    });
}

#[test]
fn a_newer_schema_is_refused() {
    check(|dir| async move {
        let path = dir.file("db");
        drop(SqliteStore::open(&path).unwrap());
        {
            let conn = rusqlite::Connection::open(&path).unwrap();
            conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
                .unwrap();
        }
        let err = SqliteStore::open(&path).unwrap_err();
        assert!(
            matches!(&err, StoreError::Backend(m) if m.contains("newer")),
            "{err}"
        );
    });
}

#[test]
fn not_a_database_is_an_error_not_a_panic() {
    check(|dir| async move {
        let path = dir.file("garbage");
        std::fs::write(&path, vec![b'x'; 8192]).unwrap();
        let err = SqliteStore::open(&path).unwrap_err();
        assert!(matches!(err, StoreError::Backend(_)), "{err}");
        let err = SqliteStore::open(dir.file("missing-dir/db")).unwrap_err();
        assert!(matches!(err, StoreError::Backend(_)), "{err}");
    });
}

#[test]
fn a_corrupt_record_is_a_decode_error() {
    check(|dir| async move {
        let path = dir.file("db");
        let store = SqliteStore::open(&path).unwrap();
        store
            .commit(TurnCommit {
                executions: vec![testing::execution("ex_1", "c1")],
                ..TurnCommit::default()
            })
            .await
            .unwrap();
        {
            let conn = rusqlite::Connection::open(&path).unwrap();
            conn.execute("UPDATE executions SET body = '{not json'", [])
                .unwrap();
        }
        let err = store.execution("ex_1").await.unwrap_err();
        assert!(matches!(err, StoreError::Decode(_)), "{err}");
        assert!(store.execution("ex_2").await.unwrap().is_none());
    });
}

#[test]
fn files_use_wal() {
    check(|dir| async move {
        let path = dir.file("db");
        let _store = SqliteStore::open(&path).unwrap();
        let conn = rusqlite::Connection::open(&path).unwrap();
        let mode: String = conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
    });
}

/// Many racing commits, written in groups: each caller still gets its own result, exactly one
/// per conversation wins, and losers leave no trace.
#[test]
fn group_commit_gives_each_commit_its_own_result() {
    check(|dir| async move {
        let store = Arc::new(SqliteStore::open(dir.file("db")).unwrap());
        let convs: Vec<_> = (0..16)
            .map(|k| testing::conversation(&format!("c{k}")))
            .collect();
        store
            .commit(TurnCommit {
                conversations: convs.clone(),
                ..TurnCommit::default()
            })
            .await
            .unwrap();
        let barrier = Arc::new(tokio::sync::Barrier::new(64));
        let mut tasks = Vec::new();
        for (k, conv) in convs.iter().enumerate() {
            for contender in 0..4i64 {
                let (store, barrier) = (store.clone(), barrier.clone());
                let mut conv = conv.clone();
                conv.version = 1;
                conv.last_inbound_at = Some(Timestamp(contender));
                tasks.push(tokio::spawn(async move {
                    let commit = TurnCommit {
                        message_ids: vec![(conv.id.clone(), format!("m{contender}"), T0)],
                        // A record written before the contested one: a loser must not keep it.
                        conversations: vec![
                            testing::conversation(&format!("c{k}-{contender}")),
                            conv,
                        ],
                        ..TurnCommit::default()
                    };
                    barrier.wait().await;
                    (k, contender, store.commit(commit).await)
                }));
            }
        }
        let mut winners = vec![Vec::new(); 16];
        for t in tasks {
            let (k, contender, r) = t.await.unwrap();
            match r {
                Ok(()) => winners[k].push(contender),
                Err(StoreError::Conflict(_)) => {}
                Err(e) => panic!("c{k}/{contender}: {e}"),
            }
        }
        for (k, w) in winners.iter().enumerate() {
            assert_eq!(w.len(), 1, "c{k}: exactly one winner, got {w:?}");
            let c = store.conversation(&format!("c{k}")).await.unwrap().unwrap();
            assert_eq!(c.version, 2);
            assert_eq!(c.last_inbound_at, Some(Timestamp(w[0])));
            for contender in 0..4 {
                assert_eq!(
                    store
                        .seen_message(&c.id, &format!("m{contender}"))
                        .await
                        .unwrap(),
                    contender == w[0],
                    "c{k}: message of contender {contender}"
                );
                assert_eq!(
                    store
                        .conversation(&format!("c{k}-{contender}"))
                        .await
                        .unwrap()
                        .is_some(),
                    contender == w[0],
                    "c{k}: the new conversation of contender {contender}"
                );
            }
        }
    });
}

/// Pruning removes ended and failed executions older than the cutoff, with their events and
/// outbox records, and nothing else.
#[tokio::test]
async fn prune_removes_old_ended_executions_only() {
    use switchboard_runtime::Status;
    let dir = common::TempDir::new("prune");
    let store = SqliteStore::open(dir.file("switchboard.db")).unwrap();
    let mut old = testing::execution("ex_old", "c1");
    old.status = Status::Ended;
    old.ended_at = Some(Timestamp(T0.0 + 1_000));
    old.pending_effect = None;
    let mut failed = testing::execution("ex_failed", "c1");
    failed.status = Status::Failed;
    failed.ended_at = Some(Timestamp(T0.0 + 2_000));
    failed.pending_effect = None;
    let mut recent = testing::execution("ex_recent", "c1");
    recent.status = Status::Ended;
    recent.ended_at = Some(Timestamp(T0.0 + 90_000));
    recent.pending_effect = None;
    let live = testing::execution("ex_live", "c1");
    store
        .commit(TurnCommit {
            executions: vec![old, failed, recent, live],
            events: vec![
                testing::event("ex_old", 1, EventType::ExecutionStarted),
                testing::event("ex_failed", 1, EventType::ExecutionStarted),
                testing::event("ex_recent", 1, EventType::ExecutionStarted),
                testing::event("ex_live", 1, EventType::ExecutionStarted),
            ],
            ..TurnCommit::default()
        })
        .await
        .unwrap();
    let p = store.prune(Timestamp(T0.0 + 60_000), 1).await.unwrap();
    assert_eq!((p.executions, p.events), (2, 2), "{p:?}");
    for (id, kept) in [
        ("ex_old", false),
        ("ex_failed", false),
        ("ex_recent", true),
        ("ex_live", true),
    ] {
        assert_eq!(store.execution(id).await.unwrap().is_some(), kept, "{id}");
        assert_eq!(
            store.events(id, 0, 10, None).await.unwrap().len(),
            usize::from(kept),
            "{id}"
        );
    }
    assert_eq!(
        store.prune(Timestamp(T0.0 + 60_000), 10).await.unwrap(),
        Default::default(),
        "nothing left to prune"
    );
}
