//! The per-conversation inbox: duplicates, debounced bursts, strict order within a conversation,
//! and concurrency across conversations.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use switchboard_model::{Flow, Node};
use switchboard_runtime::adapters::{
    AdapterResult, Messenger, OutboundBody, OutboundMessage, SendReceipt,
};
use switchboard_runtime::inbox::{Inbox, Received};
use switchboard_runtime::offline::OfflineAdapters;
use switchboard_runtime::state::TriggerType;
use switchboard_runtime::store::MemoryStore;
use switchboard_runtime::{Dispatch, Engine, FlowDefinition, InboundMessage, Trigger};

/// start → wait → "echo {{last_user_input}}" → wait (loops).
fn echo_loop(debounce: Option<f64>) -> Flow {
    let mut flow = Flow::new("echo_loop")
        .node(Node::start("start"))
        .node(Node::wait_for_response("wait"))
        .node(Node::send_text("echo", "echo {{last_user_input}}"))
        .edge("start", "wait")
        .edge("wait", "echo")
        .edge("echo", "wait");
    if let Some(d) = debounce {
        flow.edit_body(|b| {
            b.object_entry("settings")
                .insert("message_debounce_seconds", d);
        });
    }
    flow
}

fn engine_with(flow: Flow, adapters: switchboard_runtime::Adapters) -> Engine {
    let engine = Engine::builder(Arc::new(MemoryStore::new()))
        .adapters(adapters)
        .build();
    engine
        .register_flow(FlowDefinition {
            id: "echo_loop".into(),
            slug: None,
            version: "1".into(),
            flow,
        })
        .unwrap();
    engine
        .add_trigger(Trigger {
            flow_id: "echo_loop".into(),
            trigger_type: TriggerType::InboundMessage,
            phone_number_id: Some("pn".into()),
            active: true,
        })
        .unwrap();
    engine
}

fn msg(id: &str, from: &str, text: &str) -> InboundMessage {
    InboundMessage {
        id: id.into(),
        phone_number_id: "pn".into(),
        from: from.into(),
        kind: "text".into(),
        text: text.into(),
        ..InboundMessage::default()
    }
}

fn texts(sent: &[OutboundMessage]) -> Vec<String> {
    sent.iter()
        .filter_map(|m| match &m.body {
            OutboundBody::Text { text } => Some(format!("{}:{text}", m.to)),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn duplicate_message_ids_are_dropped() {
    let offline = OfflineAdapters::default();
    let inbox = Inbox::new(engine_with(echo_loop(None), offline.adapters()));
    assert!(matches!(
        inbox
            .receive(msg("m1", "+15550000001", "start"))
            .await
            .unwrap(),
        Received::Dispatched(Dispatch::Started(_))
    ));
    assert!(matches!(
        inbox
            .receive(msg("m2", "+15550000001", "one"))
            .await
            .unwrap(),
        Received::Dispatched(Dispatch::Resumed(_))
    ));
    assert_eq!(
        inbox
            .receive(msg("m2", "+15550000001", "one again"))
            .await
            .unwrap(),
        Received::Dispatched(Dispatch::Duplicate)
    );
    assert_eq!(
        inbox
            .receive(msg("m1", "+15550000001", "start"))
            .await
            .unwrap(),
        Received::Dispatched(Dispatch::Duplicate)
    );
    assert_eq!(texts(&offline.messenger.sent()), ["+15550000001:echo one"]);
}

#[tokio::test]
async fn a_burst_within_the_debounce_window_is_one_turn() {
    let offline = OfflineAdapters::default();
    let inbox = Inbox::new(engine_with(echo_loop(Some(5.0)), offline.adapters()));
    // The first message starts the execution after the window too.
    assert!(matches!(
        inbox
            .receive(msg("m1", "+15550000001", "hi"))
            .await
            .unwrap(),
        Received::Queued { .. }
    ));
    offline.clock.advance(Duration::from_secs(5));
    assert!(matches!(
        inbox.flush_due().await.unwrap()[..],
        [Dispatch::Started(_)]
    ));
    for (id, text) in [("m2", "a"), ("m3", "b")] {
        assert!(matches!(
            inbox.receive(msg(id, "+15550000001", text)).await.unwrap(),
            Received::Queued { .. }
        ));
        offline.clock.advance(Duration::from_secs(3)); // each message restarts the window
        assert!(
            inbox.flush_due().await.unwrap().is_empty(),
            "not due yet after {id}"
        );
    }
    assert_eq!(
        inbox.receive(msg("m3", "+15550000001", "b")).await.unwrap(),
        Received::Duplicate
    );
    assert!(matches!(
        inbox.receive(msg("m4", "+15550000001", "c")).await.unwrap(),
        Received::Queued { .. }
    ));
    assert_eq!(inbox.pending(), 1);
    offline.clock.advance(Duration::from_secs(5));
    assert!(matches!(
        inbox.flush_due().await.unwrap()[..],
        [Dispatch::Resumed(_)]
    ));
    assert_eq!(
        texts(&offline.messenger.sent()),
        ["+15550000001:echo a\nb\nc"]
    );
    assert_eq!(inbox.pending(), 0);
}

#[tokio::test]
async fn flush_all_dispatches_held_batches_without_waiting_for_the_window() {
    let offline = OfflineAdapters::default();
    let inbox = Inbox::new(engine_with(echo_loop(Some(60.0)), offline.adapters()));
    for (id, from) in [("m1", "+15550000001"), ("m2", "+15550000002")] {
        assert!(matches!(
            inbox.receive(msg(id, from, "hi")).await.unwrap(),
            Received::Queued { .. }
        ));
    }
    assert!(inbox.flush_due().await.unwrap().is_empty());
    assert_eq!(inbox.pending(), 2);
    let dispatched = inbox.flush_all().await.unwrap();
    assert_eq!(dispatched.len(), 2);
    assert!(dispatched.iter().all(|d| matches!(d, Dispatch::Started(_))));
    assert_eq!(inbox.pending(), 0);
    assert!(inbox.flush_all().await.unwrap().is_empty());
}

/// A messenger whose sends block until released, counting how many are blocked at once.
struct GatedMessenger {
    inside: AtomicUsize,
    max_inside: AtomicUsize,
    open: tokio::sync::Semaphore,
    sent: std::sync::Mutex<Vec<OutboundMessage>>,
}

impl Default for GatedMessenger {
    fn default() -> Self {
        GatedMessenger {
            inside: AtomicUsize::new(0),
            max_inside: AtomicUsize::new(0),
            open: tokio::sync::Semaphore::new(0),
            sent: std::sync::Mutex::default(),
        }
    }
}

#[async_trait]
impl Messenger for GatedMessenger {
    async fn send(&self, message: OutboundMessage) -> AdapterResult<SendReceipt> {
        let now = self.inside.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_inside.fetch_max(now, Ordering::SeqCst);
        let permit = self.open.acquire().await.unwrap();
        permit.forget();
        self.inside.fetch_sub(1, Ordering::SeqCst);
        let mut sent = self.sent.lock().unwrap();
        sent.push(message);
        Ok(SendReceipt {
            message_id: format!("out.{}", sent.len()),
        })
    }
}

#[tokio::test]
async fn one_conversation_is_strictly_ordered_and_conversations_run_concurrently() {
    let offline = OfflineAdapters::default();
    let gate = Arc::new(GatedMessenger::default());
    let mut adapters = offline.adapters();
    adapters.messenger = gate.clone();
    let inbox = Inbox::new(engine_with(echo_loop(None), adapters));
    for from in ["+15550000001", "+15550000002"] {
        inbox
            .receive(msg(&format!("start-{from}"), from, "hi"))
            .await
            .unwrap();
    }
    // Conversation 1: three messages; the first blocks in the messenger while the others queue.
    let mut tasks = Vec::new();
    for (i, text) in ["one", "two", "three"].iter().enumerate() {
        let inbox = inbox.clone();
        let m = msg(&format!("c1-{i}"), "+15550000001", text);
        tasks.push(tokio::spawn(async move { inbox.receive(m).await }));
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }
    // Conversation 2 is not blocked behind conversation 1.
    let inbox2 = inbox.clone();
    let other =
        tokio::spawn(async move { inbox2.receive(msg("c2-0", "+15550000002", "other")).await });
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
    assert_eq!(
        gate.inside.load(Ordering::SeqCst),
        2,
        "both conversations are sending at the same time"
    );
    gate.open.add_permits(100);
    for t in tasks {
        assert!(matches!(
            t.await.unwrap().unwrap(),
            Received::Dispatched(Dispatch::Resumed(_))
        ));
    }
    other.await.unwrap().unwrap();
    let sent = texts(&gate.sent.lock().unwrap());
    let c1: Vec<&String> = sent
        .iter()
        .filter(|s| s.starts_with("+15550000001"))
        .collect();
    assert_eq!(
        c1,
        [
            "+15550000001:echo one",
            "+15550000001:echo two",
            "+15550000001:echo three"
        ]
    );
    assert_eq!(gate.max_inside.load(Ordering::SeqCst), 2);
}
