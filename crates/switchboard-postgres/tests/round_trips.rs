//! The cost of a turn on PostgreSQL, in database round trips: a worker taking a conversation
//! with one queued message, running the turn (which sends one message) and letting the
//! conversation go. The goal is at most 4 (claim with the state, the commit before the send,
//! the commit after it, and the look for more work that lets the lease go).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use switchboard_model::{Flow, Node};
use switchboard_runtime::adapters::SequentialIds;
use switchboard_runtime::offline::{ManualClock, RecordingMessenger};
use switchboard_runtime::state::TriggerType;
use switchboard_runtime::store::{Enqueued, InboundItem};
use switchboard_runtime::worker::{Worker, WorkerConfig};
use switchboard_runtime::{Engine, EngineConfig, FlowDefinition, InboundMessage, Trigger};

const PN: &str = "pn";

fn echo_flow() -> Flow {
    Flow::new("echo")
        .node(Node::start("start"))
        .node(Node::send_text("hello", "hello"))
        .node(Node::wait_for_response("wait"))
        .node(Node::send_text("echo", "echo {{last_user_input}}"))
        .edge("start", "hello")
        .edge("hello", "wait")
        .edge("wait", "echo")
        .edge("echo", "wait")
}

fn msg(id: &str, text: &str) -> InboundItem {
    InboundItem::Message(InboundMessage {
        id: id.into(),
        phone_number_id: PN.into(),
        from: "+14155550100".into(),
        kind: "text".into(),
        text: text.into(),
        ..InboundMessage::default()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_turn_that_sends_one_message_costs_at_most_four_round_trips() {
    let Some(url) = common::database_url("round_trips") else {
        return;
    };
    let (store, schema) = common::fresh_store(&url, "rt").await;
    let store = Arc::new(store);
    let messenger = Arc::new(RecordingMessenger::default());
    let engine = Engine::builder(store.clone())
        .offline()
        .messenger(messenger.clone())
        .clock(Arc::new(ManualClock::default()))
        .ids(Arc::new(SequentialIds::default()))
        .config(EngineConfig {
            default_phone_number_id: PN.into(),
            ..EngineConfig::default()
        })
        .build();
    engine
        .register_flow(FlowDefinition {
            id: "f".into(),
            slug: None,
            version: "1".into(),
            flow: echo_flow(),
        })
        .unwrap();
    engine
        .add_trigger(Trigger {
            flow_id: "f".into(),
            trigger_type: TriggerType::InboundMessage,
            phone_number_id: Some(PN.into()),
            active: true,
        })
        .unwrap();
    let worker = Worker::new(
        engine,
        WorkerConfig {
            owner: "w".into(),
            lease: Duration::from_secs(30),
            ..WorkerConfig::default()
        },
    );
    let conv = Engine::conversation_id(PN, "+14155550100");

    let mut costs = Vec::new();
    for (i, text) in ["hi", "one", "two"].into_iter().enumerate() {
        let before = store.round_trips();
        let accepted = worker
            .accept(vec![msg(&format!("m{i}"), text)])
            .await
            .unwrap();
        assert!(
            matches!(accepted[0], Ok(Enqueued::Queued(_))),
            "{accepted:?}"
        );
        assert_eq!(
            store.round_trips() - before,
            1,
            "accepting a webhook is one round trip"
        );

        let before = store.round_trips();
        let done = worker.process(&conv).await.unwrap();
        assert_eq!(done.turns, 1, "{done:?}");
        costs.push(store.round_trips() - before);
        assert_eq!(messenger.sent().len(), i + 1);
    }
    eprintln!("round trips per turn (first turn starts the execution): {costs:?}");
    for (i, c) in costs.iter().enumerate() {
        assert!(*c <= 4, "turn {i} took {c} round trips: {costs:?}");
    }
    common::drop_schema(&url, &schema).await;
}
