//! Engine behaviours the conversation scripts cannot reach (they address the innermost
//! execution and cannot plant a stale timer), checked through the public API.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use switchboard_runtime::offline::OfflineAdapters;
use switchboard_runtime::state::TriggerType;
use switchboard_runtime::store::{ExecutionStore, MemoryStore, TurnCommit};
use switchboard_runtime::{Engine, FlowDefinition, InboundMessage, Status, Trigger};

const PARENT: &str = r"
name: parent
nodes:
- {id: start, data: {node_type: start, config: {}}}
- {id: sub, data: {node_type: call, config: {workflow_id: child}}}
edges:
- {source: start, target: sub}
";

const CHILD: &str = r"
name: child
nodes:
- {id: start, data: {node_type: start, config: {}}}
- {id: wait, data: {node_type: wait_for_response, config: {timeout_seconds: 60}}}
edges:
- {source: start, target: wait}
";

fn engine(flows: &[(&str, &str)]) -> (Engine, OfflineAdapters, Arc<MemoryStore>) {
    let offline = OfflineAdapters::default();
    let store = Arc::new(MemoryStore::new());
    let engine = Engine::builder(store.clone())
        .adapters(offline.adapters())
        .build();
    for (id, text) in flows {
        let flow =
            switchboard_model::load_bytes(text.as_bytes(), Some("f.yaml"), &Default::default())
                .unwrap()
                .flow;
        engine
            .register_flow(FlowDefinition {
                id: (*id).to_owned(),
                slug: None,
                version: "1".into(),
                flow,
            })
            .unwrap();
    }
    engine
        .add_trigger(Trigger {
            flow_id: flows[0].0.to_owned(),
            trigger_type: TriggerType::InboundMessage,
            phone_number_id: Some("pn".into()),
            active: true,
        })
        .unwrap();
    (engine, offline, store)
}

fn hi() -> Vec<InboundMessage> {
    vec![InboundMessage {
        id: "wamid.1".into(),
        phone_number_id: "pn".into(),
        from: "+14155550100".into(),
        kind: "text".into(),
        text: "hi".into(),
        ..InboundMessage::default()
    }]
}

#[tokio::test]
async fn ending_a_parent_ends_its_child_which_keeps_its_parent() {
    let (engine, _, store) = engine(&[("parent", PARENT), ("child", CHILD)]);
    engine.handle_inbound(hi()).await.unwrap();
    let parent = store.execution("ex_1").await.unwrap().unwrap();
    let child_id = parent.child_execution_id.clone().unwrap();
    engine.update_status("ex_1", Status::Ended).await.unwrap();
    let child = store.execution(&child_id).await.unwrap().unwrap();
    assert_eq!(child.status, Status::Ended);
    assert_eq!(child.parent_execution_id.as_deref(), Some("ex_1"));
    let ended = store
        .events(
            &child_id,
            0,
            100,
            Some(switchboard_runtime::EventType::ExecutionEnded),
        )
        .await
        .unwrap();
    assert_eq!(ended[0].payload["reason"], "parent_ended");
    let parent = store.execution("ex_1").await.unwrap().unwrap();
    assert_eq!(parent.status, Status::Ended);
}

#[tokio::test]
async fn a_timer_of_an_earlier_activation_is_ignored() {
    let (engine, offline, store) = engine(&[("child", CHILD)]);
    engine.handle_inbound(hi()).await.unwrap();
    // A store that failed to drop an old timer hands back one armed by an earlier activation.
    let mut e = store.execution("ex_1").await.unwrap().unwrap();
    e.timer.as_mut().unwrap().activation -= 1;
    store
        .commit(TurnCommit {
            conversations: Vec::new(),
            executions: vec![e],
            events: Vec::new(),
            message_ids: Vec::new(),
            idempotency: None,
            ..TurnCommit::default()
        })
        .await
        .unwrap();
    offline.clock.advance(Duration::from_secs(61));
    assert_eq!(engine.fire_due_timers().await.unwrap(), 0);
    let e = store.execution("ex_1").await.unwrap().unwrap();
    assert_eq!(e.status, Status::Waiting);
}
