//! A restart: an engine on a SQLite file leaves two conversations waiting, goes away with its
//! store, and a new engine on the same file carries on — one conversation resumes with a user
//! message exactly where it was, the other's wait times out, and a redelivered message is
//! still recognised as a duplicate.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::TempDir;
use switchboard_runtime::adapters::OutboundBody;
use switchboard_runtime::offline::OfflineAdapters;
use switchboard_runtime::state::TriggerType;
use switchboard_runtime::{
    Dispatch, Engine, EventType, FlowDefinition, InboundMessage, Status, Trigger, WaitingReason,
};
use switchboard_sqlite::SqliteStore;

const PNID: &str = "15550001111";
const ANA: &str = "+14155550100";
const BEN: &str = "+14155550199";

/// An engine on the database at `path`, with `echo.yaml` behind an inbound trigger.
fn engine(path: &Path) -> (Engine, OfflineAdapters) {
    let offline = OfflineAdapters::default();
    let store = SqliteStore::open(path).unwrap();
    let engine = Engine::builder(Arc::new(store))
        .adapters(offline.adapters())
        .build();
    let file = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/flows/valid/echo.yaml"
    );
    let text = std::fs::read_to_string(file).unwrap();
    let loaded =
        switchboard_model::load_bytes(text.as_bytes(), Some(file), &Default::default()).unwrap();
    engine
        .register_flow(FlowDefinition {
            id: "echo".into(),
            slug: None,
            version: "1".into(),
            flow: loaded.flow,
        })
        .unwrap();
    engine
        .add_trigger(Trigger {
            flow_id: "echo".into(),
            trigger_type: TriggerType::InboundMessage,
            phone_number_id: Some(PNID.into()),
            active: true,
        })
        .unwrap();
    (engine, offline)
}

fn text(id: &str, from: &str, body: &str) -> InboundMessage {
    InboundMessage {
        id: id.into(),
        phone_number_id: PNID.into(),
        from: from.into(),
        profile_name: None,
        kind: "text".into(),
        text: body.into(),
        reply: None,
        timestamp: None,
        interactive: None,
    }
}

/// The texts sent since the last call, as `(to, text)`.
fn sent(offline: &OfflineAdapters) -> Vec<(String, String)> {
    offline
        .messenger
        .take()
        .into_iter()
        .map(|m| match m.body {
            OutboundBody::Text { text } => (m.to, text),
            other => (m.to, format!("{other:?}")),
        })
        .collect()
}

async fn status(engine: &Engine, id: &str) -> (Status, Option<WaitingReason>, Option<String>) {
    let e = engine.get_execution(id).await.unwrap();
    (e.status, e.waiting_reason, e.current_node_id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conversations_carry_on_after_a_restart() {
    let dir = TempDir::new("restart");
    let path = dir.file("switchboard.db");

    // Before the restart: two conversations start and wait for an answer.
    let (ana, ben) = {
        let (engine, offline) = engine(&path);
        let Dispatch::Started(ana) = engine
            .handle_inbound(vec![text("wamid.a1", ANA, "hi")])
            .await
            .unwrap()
        else {
            panic!("ana's message should start an execution");
        };
        let Dispatch::Started(ben) = engine
            .handle_inbound(vec![text("wamid.b1", BEN, "hello")])
            .await
            .unwrap()
        else {
            panic!("ben's message should start an execution");
        };
        assert_ne!(ana, ben);
        assert_eq!(
            sent(&offline),
            vec![
                (ANA.to_owned(), "What is your order number?".to_owned()),
                (BEN.to_owned(), "What is your order number?".to_owned()),
            ]
        );
        for id in [&ana, &ben] {
            assert_eq!(
                status(&engine, id).await,
                (
                    Status::Waiting,
                    Some(WaitingReason::WaitForResponse),
                    Some("wait".into())
                )
            );
        }
        (ana, ben)
        // The engine and its store (the only reference to it) are dropped here.
    };

    // After the restart: a new store on the same file, a new engine, a fresh clock at the
    // same time as before.
    let (engine, offline) = engine(&path);
    for id in [&ana, &ben] {
        assert_eq!(
            status(&engine, id).await,
            (
                Status::Waiting,
                Some(WaitingReason::WaitForResponse),
                Some("wait".into())
            ),
            "{id} is still waiting after the restart"
        );
    }

    // A redelivered message processed before the restart is dropped.
    assert_eq!(
        engine
            .handle_inbound(vec![text("wamid.a1", ANA, "hi")])
            .await
            .unwrap(),
        Dispatch::Duplicate
    );
    assert!(sent(&offline).is_empty(), "a duplicate sends nothing");

    // Ana answers: her execution continues at the wait node and ends after the echo.
    assert_eq!(
        engine
            .handle_inbound(vec![text("wamid.a2", ANA, "A-123")])
            .await
            .unwrap(),
        Dispatch::Resumed(ana.clone())
    );
    assert_eq!(
        sent(&offline),
        vec![(ANA.to_owned(), "Thanks, looking up A-123.".to_owned())]
    );
    let (st, reason, _) = status(&engine, &ana).await;
    assert_eq!((st, reason), (Status::Ended, None));
    let input = engine
        .list_events(&ana, Some(EventType::UserInputReceived), 10, 0)
        .await
        .unwrap();
    assert_eq!(input.len(), 1, "one user turn resumed the wait");
    assert_eq!(input[0].node_id.as_deref(), Some("wait"));

    // Nothing is due yet; after the timeout only Ben's wait fires (Ana's timer went with her
    // answer).
    assert_eq!(engine.fire_due_timers().await.unwrap(), 0);
    offline.clock.advance(Duration::from_secs(601));
    assert_eq!(engine.fire_due_timers().await.unwrap(), 1);
    let timeouts = engine
        .list_events(&ben, Some(EventType::WaitTimeout), 10, 0)
        .await
        .unwrap();
    assert_eq!(timeouts.len(), 1, "ben's wait timed out");
    // A timeout leaves the reply variables alone: the last input is still Ben's first message.
    assert_eq!(
        sent(&offline),
        vec![(BEN.to_owned(), "Thanks, looking up hello.".to_owned())]
    );
    let (st, _, _) = status(&engine, &ben).await;
    assert_eq!(st, Status::Ended);
    assert_eq!(
        engine.fire_due_timers().await.unwrap(),
        0,
        "timers fire once"
    );

    // Ana's earlier messages are still duplicates; Ben's first one too.
    for (id, from) in [("wamid.a1", ANA), ("wamid.a2", ANA), ("wamid.b1", BEN)] {
        assert_eq!(
            engine
                .handle_inbound(vec![text(id, from, "again")])
                .await
                .unwrap(),
            Dispatch::Duplicate,
            "{id}"
        );
    }
    // The event history is continuous across the restart.
    let events = engine.list_events(&ana, None, 1000, 0).await.unwrap();
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
}
