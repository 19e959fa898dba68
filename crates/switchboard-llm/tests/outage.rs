//! A provider outage through the engine (issue acceptance: "a provider outage → the documented
//! fallback or an `error` edge, never a panic"), for both providers, against servers on 127.0.0.1
//! that answer 503 to everything.
//!
//! * An AI decide falls back to its first condition with `fallback: true` and reason
//!   `adapter_error` (runtime-semantics §7.4).
//! * An agent's model failure is a node failure (§7.10): the `error` edge is taken when present,
//!   and the execution fails with kind `http_status` when it is not.
//! * The API key never appears in events or stored state.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use switchboard_llm::{Anthropic, ApiKey, OpenAiCompatible, ProviderSettings};
use switchboard_model::{Flow, Node, builder::condition};
use switchboard_runtime::adapters::LanguageModel;
use switchboard_runtime::offline::OfflineAdapters;
use switchboard_runtime::state::TriggerType;
use switchboard_runtime::store::MemoryStore;
use switchboard_runtime::{Engine, FlowDefinition, InboundMessage, Status, Trigger};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

const KEY: &str = "sk-outage-test-7f3a9c2e1b";

fn settings(base_url: String) -> ProviderSettings {
    let mut s = ProviderSettings::new(base_url).with_api_key(ApiKey::new(KEY));
    s.retry_base_delay = Duration::from_millis(5);
    s.max_retry_delay = Duration::from_millis(20);
    s.timeout = Duration::from_secs(5);
    s
}

async fn down() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(503).set_body_json(json!({"error": {"message": "overloaded"}})),
        )
        .mount(&server)
        .await;
    server
}

/// start → wait → route (AI decide: sales | support); sales → helper (agent, `error` edge →
/// sorry); support → support_agent.
fn flow() -> Flow {
    Flow::new("outage")
        .node(Node::start("start"))
        .node(Node::wait_for_response("wait"))
        .node(Node::decide_ai(
            "route",
            "test-model",
            [
                condition("sales", "Wants to buy"),
                condition("support", "Needs help with an order"),
            ],
        ))
        .node(Node::agent("helper", "Help with sales", "test-model"))
        .node(Node::send_text("sorry", "Sorry, try again later."))
        .node(Node::agent(
            "support_agent",
            "Help with orders",
            "test-model",
        ))
        .edge("start", "wait")
        .edge("wait", "route")
        .labelled_edge("route", "helper", "sales")
        .labelled_edge("route", "support_agent", "support")
        .labelled_edge("helper", "sorry", "error")
}

async fn run(
    model: Arc<dyn LanguageModel>,
    text: &str,
) -> (Engine, String, Vec<Value>, OfflineAdapters) {
    let offline = OfflineAdapters::default();
    let mut adapters = offline.adapters();
    adapters.model = model;
    let engine = Engine::builder(Arc::new(MemoryStore::new()))
        .adapters(adapters)
        .build();
    engine
        .register_flow(FlowDefinition {
            id: "outage".into(),
            slug: None,
            version: "1".into(),
            flow: flow(),
        })
        .unwrap();
    engine
        .add_trigger(Trigger {
            flow_id: "outage".into(),
            trigger_type: TriggerType::InboundMessage,
            phone_number_id: Some("pn".into()),
            active: true,
        })
        .unwrap();
    let mut id = String::new();
    for (n, t) in ["hi", text].iter().enumerate() {
        let d = engine
            .handle_inbound(vec![InboundMessage {
                id: format!("m{n}"),
                phone_number_id: "pn".into(),
                from: "+15550000001".into(),
                kind: "text".into(),
                text: (*t).into(),
                ..InboundMessage::default()
            }])
            .await
            .unwrap();
        if let switchboard_runtime::Dispatch::Started(x) = d {
            id = x;
        }
    }
    let events: Vec<Value> = engine
        .list_events(&id, None, 1000, 0)
        .await
        .unwrap()
        .into_iter()
        .map(|e| json!({"type": e.event_type.as_str(), "node": e.node_id, "payload": e.payload}))
        .collect();
    (engine, id, events, offline)
}

async fn check(model: Arc<dyn LanguageModel>) {
    // Sales: the decide falls back to `sales` (the first condition, and the right one anyway), the
    // agent fails and its `error` edge leads to the apology.
    let (engine, id, events, offline) = run(model.clone(), "I want to buy").await;
    let decided = events
        .iter()
        .find(|e| e["type"] == "decision_evaluated")
        .expect("decision recorded");
    assert_eq!(decided["payload"]["chosen_label"], "sales");
    assert_eq!(decided["payload"]["fallback"], true);
    assert_eq!(decided["payload"]["reason"], "adapter_error");
    assert!(
        events
            .iter()
            .any(|e| e["type"] == "step_failed" && e["node"] == "helper")
    );
    let texts: Vec<String> = offline
        .messenger
        .sent()
        .into_iter()
        .filter_map(|m| match m.body {
            switchboard_runtime::adapters::OutboundBody::Text { text } => Some(text),
            _ => None,
        })
        .collect();
    assert_eq!(texts, ["Sorry, try again later."]);
    let ex = engine.get_execution(&id).await.unwrap();
    assert_eq!(ex.status, Status::Ended);
    assert_eq!(
        ex.execution_context["vars"]["last_error"]["error"]["kind"],
        "http_status"
    );
    let dump = serde_json::to_string(&(&events, &ex)).unwrap();
    assert!(
        !dump.contains(KEY),
        "the API key leaked into events or state"
    );
}

#[tokio::test]
async fn openai_outage_falls_back_or_takes_the_error_edge() {
    let server = down().await;
    let model = OpenAiCompatible::new(settings(format!("{}/v1", server.uri()))).unwrap();
    check(Arc::new(model)).await;
}

#[tokio::test]
async fn anthropic_outage_falls_back_or_takes_the_error_edge() {
    let server = down().await;
    let model = Anthropic::new(settings(server.uri())).unwrap();
    check(Arc::new(model)).await;
}

#[tokio::test]
async fn an_agent_without_an_error_edge_fails_the_execution() {
    let server = down().await;
    let model: Arc<dyn LanguageModel> =
        Arc::new(OpenAiCompatible::new(settings(format!("{}/v1", server.uri()))).unwrap());
    let offline = OfflineAdapters::default();
    let mut adapters = offline.adapters();
    adapters.model = model;
    let engine = Engine::builder(Arc::new(MemoryStore::new()))
        .adapters(adapters)
        .build();
    let flow = Flow::new("solo")
        .node(Node::start("start"))
        .node(Node::agent("a", "Help", "m"))
        .edge("start", "a");
    engine
        .register_flow(FlowDefinition {
            id: "solo".into(),
            slug: None,
            version: "1".into(),
            flow,
        })
        .unwrap();
    engine
        .add_trigger(Trigger {
            flow_id: "solo".into(),
            trigger_type: TriggerType::InboundMessage,
            phone_number_id: Some("pn".into()),
            active: true,
        })
        .unwrap();
    let d = engine
        .handle_inbound(vec![InboundMessage {
            id: "m1".into(),
            phone_number_id: "pn".into(),
            from: "+15550000002".into(),
            kind: "text".into(),
            text: "hello".into(),
            ..InboundMessage::default()
        }])
        .await
        .unwrap();
    let switchboard_runtime::Dispatch::Started(id) = d else {
        panic!("{d:?}")
    };
    let ex = engine.get_execution(&id).await.unwrap();
    assert_eq!(ex.status, Status::Failed);
    assert_eq!(ex.error_details.as_ref().unwrap()["kind"], "http_status");
    assert_eq!(ex.error_details.as_ref().unwrap()["node_id"], "a");
    assert!(!serde_json::to_string(&ex).unwrap().contains(KEY));
}
