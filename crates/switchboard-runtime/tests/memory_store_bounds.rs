//! The memory store's bounded logs: events and settled outbox records of all executions are
//! kept up to a capacity, oldest dropped first, so memory does not grow with turns; work still
//! to be done (a record being sent or scheduled, or one a pending effect names) is never
//! dropped.

#![allow(clippy::unwrap_used)]

use switchboard_runtime::event::EventType;
use switchboard_runtime::state::{EffectKind, PendingEffect};
use switchboard_runtime::store::{
    ExecutionStore, MemoryStore, OutboxQuery, OutboxRecord, OutboxState, TurnCommit,
};
use switchboard_store_tests::{T0, event, execution, record};

fn sent(id: &str, execution_id: &str) -> OutboxRecord {
    record(
        id,
        execution_id,
        OutboxState::Sent {
            at: T0,
            whatsapp_id: Some(format!("wamid.{id}")),
        },
    )
}

async fn commit_outbox(store: &MemoryStore, records: Vec<OutboxRecord>) {
    store
        .commit(TurnCommit {
            outbox: records,
            ..TurnCommit::default()
        })
        .await
        .unwrap();
}

async fn ids(store: &MemoryStore, execution_id: &str) -> Vec<String> {
    store
        .outbox(&OutboxQuery::Execution(execution_id.into()))
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect()
}

#[tokio::test]
async fn settled_outbox_records_are_a_bounded_log() {
    let store = MemoryStore::new().with_outbox_capacity(3);
    for n in 1..=5 {
        commit_outbox(&store, vec![sent(&format!("x1.{n}"), "x1")]).await;
    }
    assert_eq!(ids(&store, "x1").await, ["x1.3", "x1.4", "x1.5"]);
    // A dropped record is gone by every key, its WhatsApp id included.
    for q in [
        OutboxQuery::Id("x1.1".into()),
        OutboxQuery::WhatsappId("wamid.x1.1".into()),
    ] {
        assert!(store.outbox(&q).await.unwrap().is_empty(), "{q:?}");
    }
    let kept = store
        .outbox(&OutboxQuery::WhatsappId("wamid.x1.5".into()))
        .await
        .unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].id, "x1.5");
}

#[tokio::test]
async fn records_still_to_be_carried_out_are_never_dropped() {
    let store = MemoryStore::new().with_outbox_capacity(1);
    commit_outbox(
        &store,
        vec![
            record("x1.1", "x1", OutboxState::Scheduled),
            record("x1.2", "x1", OutboxState::Sending { since: T0 }),
        ],
    )
    .await;
    for n in 3..=6 {
        commit_outbox(&store, vec![sent(&format!("x1.{n}"), "x1")]).await;
    }
    assert_eq!(ids(&store, "x1").await, ["x1.1", "x1.2", "x1.6"]);
    // Settled later, a record joins the log as the newest.
    commit_outbox(&store, vec![sent("x1.1", "x1")]).await;
    assert_eq!(ids(&store, "x1").await, ["x1.1", "x1.2"]);
}

#[tokio::test]
async fn a_record_a_pending_effect_names_is_kept() {
    let store = MemoryStore::new().with_outbox_capacity(1);
    // A status settled x1.1 while the execution still waits to go on from it.
    let mut x1 = execution("x1", "c1");
    x1.pending_effect = Some(PendingEffect {
        outbox_id: "x1.1".into(),
        node_id: "ask".into(),
        kind: EffectKind::Send,
        action: "send_text".into(),
        due_at: T0,
        tool_call_id: None,
    });
    store
        .commit(TurnCommit {
            executions: vec![x1],
            outbox: vec![sent("x1.1", "x1")],
            ..TurnCommit::default()
        })
        .await
        .unwrap();
    for n in 1..=3 {
        commit_outbox(&store, vec![sent(&format!("x2.{n}"), "x2")]).await;
    }
    assert_eq!(
        ids(&store, "x1").await,
        ["x1.1"],
        "named by a pending effect"
    );
    assert_eq!(ids(&store, "x2").await, ["x2.3"]);
    // Once the execution went on, the record is an ordinary settled one again.
    let mut x1 = store.execution("x1").await.unwrap().unwrap();
    x1.pending_effect = None;
    store
        .commit(TurnCommit {
            executions: vec![x1],
            ..TurnCommit::default()
        })
        .await
        .unwrap();
    commit_outbox(&store, vec![sent("x2.4", "x2")]).await;
    assert!(ids(&store, "x1").await.is_empty());
    assert_eq!(ids(&store, "x2").await, ["x2.4"]);
}

#[tokio::test]
async fn events_are_a_bounded_log_of_all_executions() {
    let store = MemoryStore::with_event_capacity(4);
    for seq in 1..=3 {
        for x in ["x1", "x2"] {
            store
                .commit(TurnCommit {
                    events: vec![event(x, seq, EventType::StepEntered)],
                    ..TurnCommit::default()
                })
                .await
                .unwrap();
        }
    }
    let seqs = |x: &'static str| {
        let store = &store;
        async move {
            store
                .events(x, 0, 100, None)
                .await
                .unwrap()
                .into_iter()
                .map(|e| e.seq)
                .collect::<Vec<_>>()
        }
    };
    // Six events in all, four kept: the oldest two (x1:1, x2:1) dropped.
    assert_eq!(seqs("x1").await, [2, 3]);
    assert_eq!(seqs("x2").await, [2, 3]);
}
