//! Construction fails closed: an engine uses exactly the adapters it was given; a family nobody
//! set fails its calls (never an offline fake), and offline fakes appear only on request.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use serde_json::Value;
use switchboard_model::builder::condition;
use switchboard_model::{Flow, Node};
use switchboard_runtime::adapters::Family;
use switchboard_runtime::offline::RecordingMessenger;
use switchboard_runtime::state::TriggerType;
use switchboard_runtime::store::MemoryStore;
use switchboard_runtime::{
    Dispatch, Engine, EngineBuilder, EventType, FlowDefinition, InboundMessage, Status, Trigger,
};

fn hi(id: &str) -> Vec<InboundMessage> {
    vec![InboundMessage {
        id: id.into(),
        phone_number_id: "pn".into(),
        from: "+14155550100".into(),
        kind: "text".into(),
        text: "I have a problem".into(),
        ..InboundMessage::default()
    }]
}

fn with_flow(builder: EngineBuilder, flow: Flow) -> Engine {
    let engine = builder.build();
    engine
        .register_flow(FlowDefinition {
            id: "f".into(),
            slug: None,
            version: "1".into(),
            flow,
        })
        .unwrap();
    engine
        .add_trigger(Trigger {
            flow_id: "f".into(),
            trigger_type: TriggerType::InboundMessage,
            phone_number_id: Some("pn".into()),
            active: true,
        })
        .unwrap();
    engine
}

/// Deterministic ids so the test can find its execution.
fn ids() -> Arc<switchboard_runtime::adapters::SequentialIds> {
    Arc::new(switchboard_runtime::adapters::SequentialIds::default())
}

#[tokio::test]
async fn an_unset_family_fails_its_calls_and_is_listed() {
    let messenger = Arc::new(RecordingMessenger::default());
    let flow = Flow::new("f")
        .node(Node::start("start"))
        .node(Node::send_text("hello", "Hello"))
        .node(Node::function("lookup", "order-lookup"))
        .edge("start", "hello")
        .edge("hello", "lookup");
    let engine = with_flow(
        Engine::builder(Arc::new(MemoryStore::new()))
            .messenger(messenger.clone())
            .ids(ids()),
        flow,
    );
    assert_eq!(
        engine.unconfigured(),
        [
            Family::Model,
            Family::Functions,
            Family::Http,
            Family::Mcp,
            Family::ProjectEvents,
            Family::Secrets
        ]
    );
    let d = engine.handle_inbound(hi("w1")).await.unwrap();
    assert_eq!(d, Dispatch::Started("ex_1".into()));
    // The messenger given was used, and only it.
    assert_eq!(messenger.sent().len(), 1);
    let e = engine.store().execution("ex_1").await.unwrap().unwrap();
    assert_eq!(e.status, Status::Failed);
    let error = e.error_details.unwrap();
    assert_eq!(error["kind"], "adapter");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("no function invoker is configured")
            && message.contains("EngineBuilder::functions"),
        "{message}"
    );
}

#[tokio::test]
async fn an_ai_decide_without_a_model_falls_back_with_adapter_error() {
    let flow = Flow::new("f")
        .node(Node::start("start"))
        .node(Node::decide_ai(
            "route",
            "gpt-x",
            [
                condition("sales", "Wants to buy"),
                condition("support", "Has a problem"),
            ],
        ))
        .node(Node::send_text("s", "Sales"))
        .node(Node::send_text("p", "Support"))
        .edge("start", "route")
        .labelled_edge("route", "s", "sales")
        .labelled_edge("route", "p", "support");
    let messenger = Arc::new(RecordingMessenger::default());
    let engine = with_flow(
        Engine::builder(Arc::new(MemoryStore::new()))
            .messenger(messenger.clone())
            .ids(ids()),
        flow,
    );
    engine.handle_inbound(hi("w1")).await.unwrap();
    let events = engine
        .list_events("ex_1", Some(EventType::DecisionEvaluated), 10, 0)
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    let p = &events[0].payload;
    assert_eq!(p["fallback"], Value::Bool(true));
    assert_eq!(p["reason"], "adapter_error");
    // The offline model would have read "problem" and chosen support: no fake answered.
    assert_eq!(p["chosen_label"], "sales");
}

#[tokio::test]
async fn offline_fills_only_what_was_not_set() {
    let mine = Arc::new(RecordingMessenger::default());
    let engine = with_flow(
        Engine::builder(Arc::new(MemoryStore::new()))
            .offline()
            .messenger(mine.clone())
            .ids(ids()),
        Flow::new("f")
            .node(Node::start("start"))
            .node(Node::send_text("hello", "Hello"))
            .edge("start", "hello"),
    );
    assert!(engine.unconfigured().is_empty());
    engine.handle_inbound(hi("w1")).await.unwrap();
    assert_eq!(mine.sent().len(), 1, "the messenger set explicitly is kept");
    assert_eq!(execution_status(&engine).await, Status::Ended);
}

async fn execution_status(engine: &Engine) -> Status {
    engine
        .store()
        .execution("ex_1")
        .await
        .unwrap()
        .unwrap()
        .status
}

#[tokio::test]
async fn secrets_default_to_none_set() {
    // PATH is set in every test environment: an engine without a secrets provider still reads
    // none of it (no hidden access to the process environment).
    assert!(std::env::var_os("PATH").is_some());
    let flow = Flow::new("f")
        .node(Node::start("start"))
        .node(Node::send_text("hello", "Path: ${ENV:PATH}"))
        .edge("start", "hello");
    let messenger = Arc::new(RecordingMessenger::default());
    let engine = with_flow(
        Engine::builder(Arc::new(MemoryStore::new()))
            .messenger(messenger.clone())
            .ids(ids()),
        flow,
    );
    engine.handle_inbound(hi("w1")).await.unwrap();
    assert!(messenger.sent().is_empty());
    let e = engine.store().execution("ex_1").await.unwrap().unwrap();
    assert_eq!(e.error_details.unwrap()["kind"], "secret_missing");
}
