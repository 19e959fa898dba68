//! The function request of Kapso's contract (kapso-project §4.1): `whatsapp_context` with
//! Kapso's field names — a button tap's `reply_option_id`, `message_type` and `content`,
//! delivery statuses — present only when a WhatsApp message started the execution;
//! `available_edges` on function nodes as well as decides; and the model map.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use switchboard_runtime::offline::OfflineAdapters;
use switchboard_runtime::state::TriggerType;
use switchboard_runtime::store::{
    DeliveryStatus, ExecutionStore, InboundItem, MemoryStore, NewInbound,
};
use switchboard_runtime::time::Timestamp;
use switchboard_runtime::{
    Engine, EngineConfig, FlowDefinition, InboundMessage, Reply, StartRequest, Trigger,
};

const FLOW: &str = r#"
name: bakery
nodes:
- {id: start, data: {node_type: start, config: {}}}
- id: menu
  data:
    node_type: send_interactive
    config:
      interactive_type: button
      body_text: What can we do for you?
      buttons: [{id: order, title: Order a cake}, {id: track, title: Track my order}]
- {id: wait, data: {node_type: wait_for_response, config: {}}}
- {id: inspect, data: {node_type: function, config: {function_slug: inspect}}}
- id: route
  data:
    node_type: decide
    config:
      decision_type: function
      function_slug: route
      conditions: [{label: order}, {label: track}]
- {id: done, data: {node_type: send_text, config: {message: "Chose {{choice}}"}}}
edges:
- {source: start, target: menu}
- {source: menu, target: wait}
- {source: wait, target: inspect}
- {source: inspect, target: route}
- {source: route, target: done, label: order}
- {source: route, target: done, label: track}
"#;

struct Setup {
    engine: Engine,
    store: Arc<MemoryStore>,
    offline: OfflineAdapters,
    payloads: Arc<Mutex<Vec<Value>>>,
}

fn setup() -> Setup {
    let offline = OfflineAdapters::default();
    let payloads = Arc::new(Mutex::new(Vec::new()));
    let seen = payloads.clone();
    offline.functions.register("inspect", move |call| {
        seen.lock().unwrap().push(call.payload());
        Ok(json!({"vars": {}}))
    });
    let seen = payloads.clone();
    // Kapso's decide function of seed 001: route on the tapped button.
    offline.functions.register("route", move |call| {
        let p = call.payload();
        seen.lock().unwrap().push(p.clone());
        let last = p["whatsapp_context"]["messages"]
            .as_array()
            .and_then(|m| m.iter().rev().find(|m| m["direction"] == "inbound"))
            .cloned()
            .unwrap_or(Value::Null);
        Ok(json!({"next_edge": last["reply_option_id"], "vars": {"choice": last["reply_option_title"]}}))
    });
    let store = Arc::new(MemoryStore::new());
    let engine = Engine::builder(store.clone())
        .adapters(offline.adapters())
        .config(EngineConfig {
            default_phone_number_id: "pn".into(),
            enforce_service_window: false,
            ..EngineConfig::default()
        })
        .build();
    let flow = switchboard_model::load_bytes(FLOW.as_bytes(), Some("f.yaml"), &Default::default())
        .unwrap()
        .flow;
    engine
        .register_flow(FlowDefinition {
            id: "bakery".into(),
            slug: None,
            version: "1".into(),
            flow,
        })
        .unwrap();
    for trigger_type in [TriggerType::InboundMessage, TriggerType::ApiCall] {
        engine
            .add_trigger(Trigger {
                flow_id: "bakery".into(),
                trigger_type,
                phone_number_id: Some("pn".into()),
                active: true,
            })
            .unwrap();
    }
    Setup {
        engine,
        store,
        offline,
        payloads,
    }
}

fn message(id: &str, kind: &str, text: &str, reply: Option<Reply>) -> InboundMessage {
    InboundMessage {
        id: id.into(),
        phone_number_id: "pn".into(),
        from: "+14155550100".into(),
        profile_name: Some("Ana".into()),
        kind: kind.into(),
        text: text.into(),
        reply,
        ..InboundMessage::default()
    }
}

#[tokio::test]
async fn whatsapp_context_has_kapsos_shape_and_a_tap_reaches_the_decide_function() {
    let s = setup();
    s.engine
        .handle_inbound(vec![message("wamid.in.1", "text", "hi", None)])
        .await
        .unwrap();
    let menu = s.offline.messenger.take();
    assert_eq!(menu.len(), 1);
    // WhatsApp reports the menu read: the history keeps the status.
    let outbound = s
        .store
        .conversation("pn:14155550100")
        .await
        .unwrap()
        .unwrap()
        .messages[1]
        .id
        .clone();
    let status = NewInbound {
        conversation_id: "pn:14155550100".into(),
        key: format!("{outbound}:read"),
        item: InboundItem::Status(DeliveryStatus {
            message_id: outbound.clone(),
            status: "read".into(),
            at: Timestamp(4_102_444_800_000),
            recipient_id: "14155550100".into(),
            phone_number_id: "pn".into(),
            outbox_id: None,
            errors: Vec::new(),
        }),
        received_at: Timestamp(0),
        due_at: Timestamp(0),
    };
    s.store.enqueue(vec![status]).await.unwrap();
    let queued = s.store.queued("pn:14155550100").await.unwrap();
    s.engine.apply_status(&queued[0]).await.unwrap();
    // A tap on "Order a cake", as the webhook parser hands it over.
    let mut tap = message(
        "wamid.in.2",
        "interactive",
        "Order a cake",
        Some(Reply {
            kind: "button_reply".into(),
            id: "order".into(),
            title: "Order a cake".into(),
        }),
    );
    tap.interactive = Some(
        json!({"type": "button_reply", "button_reply": {"id": "order", "title": "Order a cake"}}),
    );
    s.engine.handle_inbound(vec![tap]).await.unwrap();
    let sent = s.offline.messenger.take();
    assert_eq!(sent.len(), 1);
    assert!(
        format!("{:?}", sent[0].body).contains("Chose Order a cake"),
        "{sent:?}"
    );

    let payloads = s.payloads.lock().unwrap().clone();
    assert_eq!(payloads.len(), 2, "the function node, then the decide");
    let node = &payloads[0];
    assert_eq!(
        node["available_edges"],
        json!([]),
        "function nodes get an empty list"
    );
    assert_eq!(payloads[1]["available_edges"], json!(["order", "track"]));
    let wc = &node["whatsapp_context"];
    let conv = &wc["conversation"];
    assert_eq!(conv["id"], "pn:14155550100");
    assert_eq!(conv["phone_number"], "+14155550100");
    assert_eq!(conv["status"], "open");
    assert_eq!(conv["whatsapp_config_id"], "pn");
    assert_eq!(conv["metadata"], json!({}));
    for key in ["created_at", "updated_at", "last_active_at"] {
        assert!(conv[key].is_string(), "{key}: {conv}");
    }
    let messages = wc["messages"].as_array().unwrap();
    assert_eq!(
        messages.len(),
        3,
        "oldest first, inbound and outbound: {messages:#?}"
    );
    let keys: Vec<&str> = messages[0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "id",
            "message_type",
            "content",
            "direction",
            "status",
            "processing_status",
            "whatsapp_message_id",
            "origin",
            "phone_number",
            "has_media",
            "reply_option_id",
            "reply_option_title",
            "interactive_type",
            "interactive_data",
            "created_at",
            "updated_at"
        ]
    );
    assert_eq!(messages[0]["message_type"], "text");
    assert_eq!(messages[0]["content"], "hi");
    assert_eq!(messages[0]["direction"], "inbound");
    assert_eq!(messages[0]["status"], "received");
    assert_eq!(messages[0]["origin"], "cloud_api");
    assert_eq!(messages[0]["has_media"], false);
    assert_eq!(
        messages[0]["reply_option_id"],
        Value::Null,
        "unknown is null, not absent"
    );
    assert_eq!(messages[1]["direction"], "outbound");
    assert_eq!(messages[1]["message_type"], "interactive");
    assert_eq!(messages[1]["content"], "What can we do for you?");
    assert_eq!(messages[1]["interactive_type"], "button");
    assert_eq!(
        messages[1]["status"], "read",
        "the delivery status reported"
    );
    assert_eq!(messages[1]["updated_at"], "2100-01-01T00:00:00Z");
    let tapped = &messages[2];
    assert_eq!(tapped["message_type"], "interactive");
    assert_eq!(tapped["content"], "Order a cake");
    assert_eq!(tapped["reply_option_id"], "order");
    assert_eq!(tapped["reply_option_title"], "Order a cake");
    assert_eq!(tapped["interactive_type"], "button_reply");
    assert_eq!(
        tapped["interactive_data"],
        json!({"id": "order", "title": "Order a cake"})
    );
    assert_eq!(tapped["whatsapp_message_id"], "wamid.in.2");
    assert_eq!(tapped["phone_number"], "+14155550100");
    let ex = s.store.execution("ex_1").await.unwrap().unwrap();
    assert_eq!(ex.vars["choice"], "Order a cake");
}

#[tokio::test]
async fn media_locations_and_template_replies_map_to_kapsos_types() {
    let s = setup();
    s.engine
        .handle_inbound(vec![message("wamid.in.1", "text", "hi", None)])
        .await
        .unwrap();
    s.engine
        .handle_inbound(vec![
            message("wamid.in.2", "image", "a receipt", None),
            message("wamid.in.3", "location", "52.37,4.89", None),
            message(
                "wamid.in.4",
                "button",
                "Stop promotions",
                Some(Reply {
                    kind: "button".into(),
                    id: "STOP".into(),
                    title: "Stop promotions".into(),
                }),
            ),
            message("wamid.in.5", "sticker", "", None),
        ])
        .await
        .unwrap();
    let payloads = s.payloads.lock().unwrap().clone();
    let messages = payloads[0]["whatsapp_context"]["messages"]
        .as_array()
        .unwrap()
        .clone();
    let shown: Vec<(Value, Value, Value, Value)> = messages[2..]
        .iter()
        .map(|m| {
            (
                m["message_type"].clone(),
                m["content"].clone(),
                m["has_media"].clone(),
                m["reply_option_id"].clone(),
            )
        })
        .collect();
    assert_eq!(
        shown,
        [
            (json!("image"), json!("a receipt"), json!(true), Value::Null),
            (
                json!("location"),
                json!("52.37,4.89"),
                json!(false),
                Value::Null
            ),
            (
                json!("interactive"),
                json!("Stop promotions"),
                json!(false),
                json!("STOP")
            ),
            (Value::Null, json!(""), json!(true), Value::Null),
        ]
    );
}

#[tokio::test]
async fn an_api_start_has_no_whatsapp_context() {
    let s = setup();
    s.engine
        .start_execution(StartRequest {
            flow: "bakery".into(),
            phone_number: "+14155550100".into(),
            ..StartRequest::default()
        })
        .await
        .unwrap();
    s.offline.messenger.take();
    // The started execution waits; its reply comes in as a WhatsApp message.
    s.engine
        .handle_inbound(vec![message("wamid.in.1", "text", "track please", None)])
        .await
        .unwrap();
    let payloads = s.payloads.lock().unwrap().clone();
    assert!(!payloads.is_empty());
    for p in &payloads {
        assert!(
            p.get("whatsapp_context").is_none(),
            "an API start has no whatsapp_context: {p}"
        );
        assert_eq!(p["execution_context"]["system"]["trigger_type"], "api_call");
    }
}

#[tokio::test]
async fn models_named_only_by_id_need_the_model_map() {
    // `provider_model_name` names the model; a `provider_model_id` alone goes through the map,
    // and unmapped it is `model_not_found` (an agent's node fails; no model call is made).
    let flow = r#"
nodes:
- {id: start, data: {node_type: start, config: {}}}
- {id: helper, data: {node_type: agent, config: {system_prompt: Help, provider_model_id: "198e-uuid"}}}
edges:
- {source: start, target: helper}
"#;
    for (map, expected) in [
        (BTreeMap::new(), Err("model_not_found")),
        (
            BTreeMap::from([("198e-uuid".to_owned(), "gpt-4o-mini".to_owned())]),
            Ok("gpt-4o-mini"),
        ),
    ] {
        let offline = OfflineAdapters::default();
        let engine = Engine::builder(Arc::new(MemoryStore::new()))
            .adapters(offline.adapters())
            .config(EngineConfig {
                default_phone_number_id: "pn".into(),
                model_ids: map,
                ..EngineConfig::default()
            })
            .build();
        engine
            .register_flow(FlowDefinition {
                id: "f".into(),
                slug: None,
                version: "1".into(),
                flow: switchboard_model::load_bytes(
                    flow.as_bytes(),
                    Some("f.yaml"),
                    &Default::default(),
                )
                .unwrap()
                .flow,
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
            .handle_inbound(vec![message("wamid.1", "text", "hi", None)])
            .await
            .unwrap();
        let ex = engine.get_execution("ex_1").await.unwrap();
        let models: Vec<String> = offline
            .model
            .requests()
            .iter()
            .map(|r| r.model.clone())
            .collect();
        match expected {
            Err(kind) => {
                assert_eq!(ex.error_details.unwrap()["kind"], kind);
                assert!(models.is_empty(), "{models:?}");
            }
            Ok(name) => {
                assert!(ex.error_details.is_none(), "{ex:?}");
                assert_eq!(models, [name]);
            }
        }
    }
}
