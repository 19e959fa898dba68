//! The smallest embedding of the engine (docs/embedding.md): the echo flow, offline.
//! Run from the repository root: `cargo run -p switchboard-runtime --example echo`.

#![allow(clippy::print_stdout)]

use std::sync::Arc;
use switchboard_runtime::offline::OfflineAdapters;
use switchboard_runtime::state::TriggerType;
use switchboard_runtime::store::MemoryStore;
use switchboard_runtime::{Engine, FlowDefinition, InboundMessage, Trigger};

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let text = std::fs::read_to_string("fixtures/flows/valid/echo.yaml")?;
    let flow = switchboard_model::load(&text)?.flow;

    let offline = OfflineAdapters::default(); // no network anywhere
    let engine = Engine::builder(Arc::new(MemoryStore::new()))
        .adapters(offline.adapters())
        .build();
    engine.register_flow(FlowDefinition {
        id: "echo".into(),
        slug: None,
        version: "1".into(),
        flow,
    })?;
    engine.add_trigger(Trigger {
        flow_id: "echo".into(),
        trigger_type: TriggerType::InboundMessage,
        phone_number_id: Some("15550001111".into()),
        active: true,
    })?;

    for (id, text) in [("m1", "hi"), ("m2", "A-1234")] {
        engine
            .handle_inbound(vec![InboundMessage {
                id: id.into(),
                phone_number_id: "15550001111".into(),
                from: "+14155550100".into(),
                kind: "text".into(),
                text: text.into(),
                ..Default::default()
            }])
            .await?;
    }
    for m in offline.messenger.sent() {
        println!("{:?}", m.body); // Text { text: "What is your order number?" }, …
    }
    Ok(())
}
