//! Hostile templates (issue 15) fail their node with `template_error` in bounded time (a 15 s
//! guard against the hours an unbounded template runs) and without a memory blow-up, through
//! the engine: the `error` edge is taken, a flow without one fails, and other conversations
//! go on.
//!
//! One test function, so that the memory measured is this test's own (the tests of a binary
//! run in parallel threads of one process).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use switchboard_runtime::adapters::OutboundBody;
use switchboard_runtime::offline::OfflineAdapters;
use switchboard_runtime::state::TriggerType;
use switchboard_runtime::store::{ExecutionFilter, ExecutionStore, MemoryStore};
use switchboard_runtime::{Engine, FlowDefinition, InboundMessage, Status, Trigger};

/// 10^10 loop steps.
const NESTED_LOOPS: &str =
    "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}";
/// About 49 GB of output.
const HUGE_OUTPUT: &str =
    "{% set a = range(100000)|join %}{% for i in range(100000) %}{{ a }}{% endfor %}";

fn flow(template: &str, error_edge: bool) -> String {
    let quoted = serde_json::to_string(template).unwrap();
    let mut text = format!(
        r#"
name: hostile
nodes:
- {{id: start, data: {{node_type: start, config: {{}}}}}}
- {{id: bad, data: {{node_type: send_text, config: {{message: {quoted}}}}}}}
- {{id: recover, data: {{node_type: send_text, config: {{message: "recovered: {{{{ last_error.error.kind }}}}: {{{{ last_error.error.message }}}}"}}}}}}
edges:
- {{source: start, target: bad}}
"#
    );
    if error_edge {
        text.push_str("- {source: bad, target: recover, label: error}\n");
    }
    text
}

fn start_engine(text: &str) -> (Engine, OfflineAdapters, Arc<MemoryStore>) {
    let offline = OfflineAdapters::default();
    let store = Arc::new(MemoryStore::new());
    let engine = Engine::builder(store.clone())
        .adapters(offline.adapters())
        .build();
    let flow = switchboard_model::load_bytes(text.as_bytes(), Some("f.yaml"), &Default::default())
        .unwrap()
        .flow;
    engine
        .register_flow(FlowDefinition {
            id: "hostile".into(),
            slug: None,
            version: "1".into(),
            flow,
        })
        .unwrap();
    engine
        .add_trigger(Trigger {
            flow_id: "hostile".into(),
            trigger_type: TriggerType::InboundMessage,
            phone_number_id: Some("pn".into()),
            active: true,
        })
        .unwrap();
    (engine, offline, store)
}

fn hi(from: &str, id: &str) -> Vec<InboundMessage> {
    vec![InboundMessage {
        id: id.into(),
        phone_number_id: "pn".into(),
        from: from.into(),
        kind: "text".into(),
        text: "hi".into(),
        ..InboundMessage::default()
    }]
}

fn texts(offline: &OfflineAdapters) -> Vec<String> {
    offline
        .messenger
        .sent()
        .into_iter()
        .filter_map(|m| match m.body {
            OutboundBody::Text { text } => Some(text),
            _ => None,
        })
        .collect()
}

/// The peak resident memory of this process in KiB, after resetting it to the current
/// resident size when `reset` (Linux; `None` elsewhere).
fn peak_kib(reset: bool) -> Option<u64> {
    if reset {
        std::fs::write("/proc/self/clear_refs", "5").ok()?;
    }
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn current_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[tokio::test]
async fn hostile_templates_fail_their_node_quickly_and_in_bounded_memory() {
    for (template, limit) in [
        (NESTED_LOOPS, "`templates.fuel` = 500000"),
        (HUGE_OUTPUT, "`templates.max_output_bytes` = 1048576 bytes"),
    ] {
        // With an error edge: the node fails, the execution recovers.
        let (engine, offline, _) = start_engine(&flow(template, true));
        let base = current_kib();
        let _ = peak_kib(true);
        let start = Instant::now();
        engine
            .handle_inbound(hi("+14155550100", "wamid.1"))
            .await
            .unwrap();
        let took = start.elapsed();
        let grown = peak_kib(false).zip(base).map(|(p, b)| p.saturating_sub(b));
        assert!(
            took < Duration::from_secs(15),
            "{template}: the turn took {took:?}"
        );
        if let Some(kib) = grown {
            assert!(kib < 64 * 1024, "{template}: memory grew by {kib} KiB");
            eprintln!("{template}: {took:?}, peak memory +{kib} KiB");
        }
        let sent = texts(&offline);
        assert_eq!(sent.len(), 1, "{sent:?}");
        assert!(
            sent[0].starts_with("recovered: template_error: "),
            "{sent:?}"
        );
        assert!(sent[0].contains(limit), "{sent:?}");

        // Without one: the execution fails, and the engine goes on with the next contact.
        let (engine, offline, store) = start_engine(&flow(template, false));
        engine
            .handle_inbound(hi("+14155550100", "wamid.1"))
            .await
            .unwrap();
        engine
            .handle_inbound(hi("+14155550199", "wamid.2"))
            .await
            .unwrap();
        let all = store
            .executions(&ExecutionFilter {
                limit: 100,
                ..ExecutionFilter::default()
            })
            .await
            .unwrap();
        assert_eq!(all.len(), 2);
        for failed in all {
            assert_eq!(failed.status, Status::Failed);
            let error = serde_json::to_string(&failed.error_details).unwrap();
            assert!(
                error.contains("template_error") && error.contains(limit),
                "{error}"
            );
        }
        assert!(texts(&offline).is_empty());
    }
}
