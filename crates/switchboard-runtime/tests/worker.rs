//! Commit before send, the durable inbox and the worker: a message leaves only after the state
//! that produced it is committed; an interrupted send is settled by a delivery status or resent
//! exactly once; `delay_seconds` is a due time in the store that survives a restart; queued
//! messages run in arrival order, deduplicated, debounced, and conversations run concurrently.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use switchboard_model::{Flow, Node};
use switchboard_runtime::adapters::{
    AdapterResult, ChatRequest, ChatResponse, LanguageModel, Messenger, OutboundBody,
    OutboundMessage, SendReceipt, SequentialIds,
};
use switchboard_runtime::offline::{ManualClock, RecordingMessenger};
use switchboard_runtime::state::TriggerType;
use switchboard_runtime::store::{
    DeliveryStatus, Enqueued, ExecutionStore, InboundItem, MemoryStore, OutboxQuery, OutboxState,
};
use switchboard_runtime::worker::{Worker, WorkerConfig};
use switchboard_runtime::{
    Engine, EngineConfig, FlowDefinition, InboundMessage, Resumed, Status, Timestamp, Trigger,
};

const PN: &str = "pn";

fn msg(id: &str, from: &str, text: &str) -> InboundMessage {
    InboundMessage {
        id: id.into(),
        phone_number_id: PN.into(),
        from: from.into(),
        kind: "text".into(),
        text: text.into(),
        ..InboundMessage::default()
    }
}

fn texts(sent: &[OutboundMessage]) -> Vec<String> {
    sent.iter()
        .map(|m| match &m.body {
            OutboundBody::Text { text } => text.clone(),
            other => format!("{other:?}"),
        })
        .collect()
}

/// start → hello → wait → echo → wait …
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

struct Setup {
    store: Arc<MemoryStore>,
    clock: Arc<ManualClock>,
}

impl Setup {
    fn new() -> Setup {
        Setup {
            store: Arc::new(MemoryStore::new()),
            clock: Arc::new(ManualClock::default()),
        }
    }

    /// An engine on the shared store and clock (a "process"), with `messenger`.
    fn engine(&self, flow: &Flow, messenger: Arc<dyn Messenger>) -> Engine {
        let engine = Engine::builder(self.store.clone())
            .offline()
            .messenger(messenger)
            .clock(self.clock.clone())
            .ids(Arc::new(SequentialIds::default()))
            .config(EngineConfig {
                default_phone_number_id: PN.into(),
                resend_after_ms: 30_000,
                ..EngineConfig::default()
            })
            .build();
        engine
            .register_flow(FlowDefinition {
                id: "f".into(),
                slug: None,
                version: "1".into(),
                flow: flow.clone(),
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
        engine
    }
}

fn worker(engine: Engine, owner: &str) -> Worker {
    Worker::new(
        engine,
        WorkerConfig {
            owner: owner.into(),
            poll: Duration::from_millis(10),
            ..WorkerConfig::default()
        },
    )
}

/// Checks, at every send, that what produced the message is already in the store.
struct CheckingMessenger {
    store: Arc<MemoryStore>,
    checked: AtomicUsize,
    problems: Mutex<Vec<String>>,
}

#[async_trait]
impl Messenger for CheckingMessenger {
    async fn send(&self, message: OutboundMessage) -> AdapterResult<SendReceipt> {
        let n = self.checked.fetch_add(1, Ordering::SeqCst) + 1;
        let reference = message.reference.clone().unwrap_or_default();
        let record = self
            .store
            .outbox(&OutboxQuery::Id(reference.clone()))
            .await
            .unwrap();
        let exec = self.store.execution(&message.execution_id).await.unwrap();
        let mut problems = self.problems.lock().unwrap();
        match record.first().map(|r| &r.state) {
            Some(OutboxState::Sending { .. }) => {}
            other => problems.push(format!(
                "record {reference:?} not committed as sending: {other:?}"
            )),
        }
        match exec.and_then(|e| e.pending_effect) {
            Some(p) if p.outbox_id == reference => {}
            other => problems.push(format!(
                "execution not committed with the effect: {other:?}"
            )),
        }
        Ok(SendReceipt {
            message_id: format!("wamid.{n}"),
        })
    }
}

#[tokio::test]
async fn every_message_is_committed_before_it_is_sent_and_recorded_after() {
    let s = Setup::new();
    let messenger = Arc::new(CheckingMessenger {
        store: s.store.clone(),
        checked: AtomicUsize::new(0),
        problems: Mutex::default(),
    });
    let engine = s.engine(&echo_flow(), messenger.clone());
    engine
        .handle_inbound(vec![msg("m1", "+14155550100", "hi")])
        .await
        .unwrap();
    engine
        .handle_inbound(vec![msg("m2", "+14155550100", "again")])
        .await
        .unwrap();
    assert_eq!(messenger.checked.load(Ordering::SeqCst), 2);
    assert!(
        messenger.problems.lock().unwrap().is_empty(),
        "{:?}",
        messenger.problems
    );
    let records = s
        .store
        .outbox(&OutboxQuery::Execution("ex_1".into()))
        .await
        .unwrap();
    assert_eq!(records.len(), 2);
    for (r, wamid) in records.iter().zip(["wamid.1", "wamid.2"]) {
        assert_eq!(r.whatsapp_id(), Some(wamid), "{r:?}");
    }
    let e = s.store.execution("ex_1").await.unwrap().unwrap();
    assert!(e.pending_effect.is_none());
    assert_eq!(e.status, Status::Waiting);
}

/// A messenger whose sends never return: dropping the turn's future mid-send is a crash
/// between the checkpoint commit and the answer.
struct Hanging;

#[async_trait]
impl Messenger for Hanging {
    async fn send(&self, _: OutboundMessage) -> AdapterResult<SendReceipt> {
        std::future::pending().await
    }
}

/// Crashes a process in the middle of sending `hello`: the store holds the execution running
/// with its pending effect and the record as `sending`.
async fn crash_mid_send(s: &Setup) {
    let crashed = s.engine(&echo_flow(), Arc::new(Hanging));
    let turn = crashed.handle_inbound(vec![msg("m1", "+14155550100", "hi")]);
    assert!(
        tokio::time::timeout(Duration::from_millis(200), turn)
            .await
            .is_err(),
        "the send hangs"
    );
    let e = s.store.execution("ex_1").await.unwrap().unwrap();
    assert_eq!(e.status, Status::Running);
    let pending = e.pending_effect.expect("pending effect committed");
    let record = s
        .store
        .outbox(&OutboxQuery::Id(pending.outbox_id.clone()))
        .await
        .unwrap();
    assert!(matches!(record[0].state, OutboxState::Sending { .. }));
}

#[tokio::test]
async fn an_interrupted_send_is_resent_once_after_resend_after() {
    let s = Setup::new();
    crash_mid_send(&s).await;
    let recorder = Arc::new(RecordingMessenger::default());
    let w = worker(s.engine(&echo_flow(), recorder.clone()), "restarted");
    // Not yet: its outcome is unknown and a status may still name it.
    assert_eq!(w.run_until_idle().await.unwrap(), 0);
    assert!(recorder.sent().is_empty());
    assert_eq!(
        w.engine().resume_pending("pn:14155550100").await.unwrap(),
        Resumed::NotDue
    );
    s.clock.advance(Duration::from_secs(31));
    assert_eq!(w.run_until_idle().await.unwrap(), 1);
    assert_eq!(texts(&recorder.sent()), ["hello"], "sent exactly once");
    assert_eq!(w.run_until_idle().await.unwrap(), 0);
    assert_eq!(recorder.sent().len(), 1, "and never again");
    let e = s.store.execution("ex_1").await.unwrap().unwrap();
    assert_eq!(e.status, Status::Waiting, "the turn went on to the wait");
    assert_eq!(e.current_node_id.as_deref(), Some("wait"));
    assert!(e.pending_effect.is_none());
}

#[tokio::test]
async fn a_delivery_status_settles_an_interrupted_send_without_resending() {
    let s = Setup::new();
    crash_mid_send(&s).await;
    let recorder = Arc::new(RecordingMessenger::default());
    let w = worker(s.engine(&echo_flow(), recorder.clone()), "restarted");
    // WhatsApp did get it: its status names the outbox record (biz_opaque_callback_data).
    let accepted = w
        .accept(vec![InboundItem::Status(DeliveryStatus {
            message_id: "wamid.hello".into(),
            status: "sent".into(),
            at: s.clock.now_ts(),
            recipient_id: "14155550100".into(),
            phone_number_id: PN.into(),
            outbox_id: Some("ex_1.1".into()),
            errors: Vec::new(),
        })])
        .await
        .unwrap();
    assert!(matches!(accepted[..], [Ok(Enqueued::Queued(_))]));
    w.run_until_idle().await.unwrap();
    assert!(recorder.sent().is_empty(), "nothing resent");
    let e = s.store.execution("ex_1").await.unwrap().unwrap();
    assert_eq!(e.status, Status::Waiting);
    let record = &s
        .store
        .outbox(&OutboxQuery::Id("ex_1.1".into()))
        .await
        .unwrap()[0];
    assert_eq!(record.whatsapp_id(), Some("wamid.hello"));
    assert_eq!(record.statuses.len(), 1);
    let history = s
        .store
        .conversation("pn:14155550100")
        .await
        .unwrap()
        .unwrap()
        .messages;
    assert!(history.iter().any(|m| m.id == "wamid.hello"), "{history:?}");
    let events = w.engine().list_events("ex_1", None, 100, 0).await.unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.event_type.as_str() == "message_status" && e.payload["status"] == "sent"),
        "the status is an event of the execution"
    );
}

trait NowTs {
    fn now_ts(&self) -> Timestamp;
}

impl NowTs for ManualClock {
    fn now_ts(&self) -> Timestamp {
        use switchboard_runtime::adapters::Clock;
        self.now()
    }
}

/// start → first → later (4 s delay) → wait → echo → wait
fn delayed_flow() -> Flow {
    Flow::new("delayed")
        .node(Node::start("start"))
        .node(Node::send_text("first", "first"))
        .node(Node::send_text("later", "later").with("delay_seconds", 4))
        .node(Node::wait_for_response("wait"))
        .node(Node::send_text("echo", "echo {{last_user_input}}"))
        .edge("start", "first")
        .edge("first", "later")
        .edge("later", "wait")
        .edge("wait", "echo")
        .edge("echo", "wait")
}

#[tokio::test]
async fn a_delay_is_a_due_time_in_the_store_that_survives_a_restart() {
    let s = Setup::new();
    let before = Arc::new(RecordingMessenger::default());
    let w = worker(s.engine(&delayed_flow(), before.clone()), "before");
    w.accept(vec![InboundItem::Message(msg("m1", "+14155550100", "hi"))])
        .await
        .unwrap();
    w.run_until_idle().await.unwrap();
    assert_eq!(texts(&before.sent()), ["first"], "the delayed one waits");
    // A message during the delay waits for the turn to finish.
    w.accept(vec![InboundItem::Message(msg(
        "m2",
        "+14155550100",
        "early",
    ))])
    .await
    .unwrap();
    s.clock.advance(Duration::from_secs(2));
    w.run_until_idle().await.unwrap();
    assert_eq!(before.sent().len(), 1, "still waiting at 2 s");
    drop(w);

    // The process restarts; the due time is in the store.
    let after = Arc::new(RecordingMessenger::default());
    let w = worker(s.engine(&delayed_flow(), after.clone()), "after");
    s.clock.advance(Duration::from_secs(2));
    w.run_until_idle().await.unwrap();
    assert_eq!(
        texts(&after.sent()),
        ["later", "echo early"],
        "the delayed message at 4 s, then the message that waited for it"
    );
    let events = w.engine().list_events("ex_1", None, 1000, 0).await.unwrap();
    let sent_later = events
        .iter()
        .find(|e| {
            e.event_type.as_str() == "action_performed" && e.node_id.as_deref() == Some("later")
        })
        .unwrap();
    let sent_first = events
        .iter()
        .find(|e| {
            e.event_type.as_str() == "action_performed" && e.node_id.as_deref() == Some("first")
        })
        .unwrap();
    assert_eq!(
        sent_later.created_at.millis() - sent_first.created_at.millis(),
        4_000,
        "sent 4 s after the first"
    );
}

#[tokio::test]
async fn queued_messages_run_in_order_deduplicated_and_debounced() {
    let s = Setup::new();
    let recorder = Arc::new(RecordingMessenger::default());
    let w = worker(s.engine(&echo_flow(), recorder.clone()), "w");
    let first = w
        .accept(vec![
            InboundItem::Message(msg("m1", "+14155550100", "one")),
            InboundItem::Message(msg("m2", "+14155550100", "two")),
            InboundItem::Message(msg("m1", "+14155550100", "one again")),
        ])
        .await
        .unwrap();
    assert!(matches!(first[2], Ok(Enqueued::Duplicate)), "{first:?}");
    w.accept(vec![InboundItem::Message(msg(
        "m3",
        "+14155550100",
        "three",
    ))])
    .await
    .unwrap();
    w.run_until_idle().await.unwrap();
    assert_eq!(
        texts(&recorder.sent()),
        ["hello", "echo two", "echo three"],
        "m1 started the flow; then one turn per message, in arrival order"
    );
    // A processed id is refused at the door.
    let again = w
        .accept(vec![InboundItem::Message(msg("m2", "+14155550100", "two"))])
        .await
        .unwrap();
    assert!(matches!(again[..], [Ok(Enqueued::Duplicate)]));

    // With a debounce window, a burst is one turn once the window has passed.
    let debounced = echo_flow().with_settings_debounce(3.0);
    let s = Setup::new();
    let recorder = Arc::new(RecordingMessenger::default());
    let w = worker(s.engine(&debounced, recorder.clone()), "w");
    w.accept(vec![InboundItem::Message(msg("a", "+14155550100", "hi"))])
        .await
        .unwrap();
    s.clock.advance(Duration::from_secs(3));
    w.run_until_idle().await.unwrap();
    assert_eq!(texts(&recorder.sent()), ["hello"]);
    for (id, text) in [("b", "one"), ("c", "two")] {
        w.accept(vec![InboundItem::Message(msg(id, "+14155550100", text))])
            .await
            .unwrap();
        s.clock.advance(Duration::from_secs(2));
        w.run_until_idle().await.unwrap();
    }
    assert_eq!(
        recorder.sent().len(),
        1,
        "the window restarts with each message"
    );
    s.clock.advance(Duration::from_secs(2));
    w.run_until_idle().await.unwrap();
    assert_eq!(texts(&recorder.sent()), ["hello", "echo one\ntwo"]);
}

trait Debounce {
    fn with_settings_debounce(self, seconds: f64) -> Flow;
}

impl Debounce for Flow {
    fn with_settings_debounce(mut self, seconds: f64) -> Flow {
        self.edit_body(|b| {
            b.object_entry("settings")
                .insert("message_debounce_seconds", seconds);
        });
        self
    }
}

/// A model that takes its time.
struct SlowModel(Duration);

#[async_trait]
impl LanguageModel for SlowModel {
    async fn complete(&self, _: ChatRequest) -> AdapterResult<ChatResponse> {
        tokio::time::sleep(self.0).await;
        Ok(ChatResponse {
            text: Some("[ai] answer".into()),
            tool_calls: Vec::new(),
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conversations_run_concurrently() {
    let flow = Flow::new("slow")
        .node(Node::start("start"))
        .node(
            Node::send_text("answer", "x")
                .with_ai_field("message", "Answer {{last_user_input}}")
                .with("provider_model_name", "m"),
        )
        .edge("start", "answer");
    let s = Setup::new();
    let recorder = Arc::new(RecordingMessenger::default());
    let engine = Engine::builder(s.store.clone())
        .offline()
        .messenger(recorder.clone())
        .model(Arc::new(SlowModel(Duration::from_millis(500))))
        .clock(s.clock.clone())
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
            flow,
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
    let w = worker(engine, "w");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let runner = tokio::spawn({
        let w = w.clone();
        async move {
            w.run(async {
                let _ = stopped.await;
            })
            .await;
        }
    });
    let started = Instant::now();
    w.accept(
        (0..10)
            .map(|i| InboundItem::Message(msg(&format!("m{i}"), &format!("+1415555{i:04}"), "q")))
            .collect(),
    )
    .await
    .unwrap();
    while recorder.sent().len() < 10 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "replies never came"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_millis(2_500),
        "ten 500 ms turns took {elapsed:?}: they must not run one after another"
    );
    let _ = stop.send(());
    runner.await.unwrap();
}

#[tokio::test]
async fn statuses_queued_together_are_all_recorded_in_one_commit() {
    let s = Setup::new();
    let recorder = Arc::new(RecordingMessenger::default());
    let w = worker(s.engine(&echo_flow(), recorder.clone()), "w");
    w.accept(vec![InboundItem::Message(msg("m1", "+14155550100", "hi"))])
        .await
        .unwrap();
    assert_eq!(w.run_until_idle().await.unwrap(), 1);
    assert_eq!(texts(&recorder.sent()), ["hello"]);
    let status = |status: &str, at: i64| {
        InboundItem::Status(DeliveryStatus {
            message_id: "wamid.x".into(),
            status: status.into(),
            at: Timestamp(s.clock.now_ts().0 + at),
            recipient_id: "14155550100".into(),
            phone_number_id: PN.into(),
            outbox_id: Some("ex_1.1".into()),
            errors: Vec::new(),
        })
    };
    // Three statuses of one message (one redelivered) queued before the worker looks.
    let accepted = w
        .accept(vec![
            status("delivered", 1),
            status("read", 2),
            status("delivered", 1),
        ])
        .await
        .unwrap();
    assert!(matches!(
        accepted[..],
        [
            Ok(Enqueued::Queued(_)),
            Ok(Enqueued::Queued(_)),
            Ok(Enqueued::Duplicate)
        ]
    ));
    w.run_until_idle().await.unwrap();
    assert!(s.store.queued("pn:14155550100").await.unwrap().is_empty());
    let record = &s
        .store
        .outbox(&OutboxQuery::Id("ex_1.1".into()))
        .await
        .unwrap()[0];
    let recorded: Vec<&str> = record.statuses.iter().map(|r| r.status.as_str()).collect();
    assert_eq!(recorded, ["delivered", "read"], "both kept, in order");
    let events = w.engine().list_events("ex_1", None, 100, 0).await.unwrap();
    let statuses = events
        .iter()
        .filter(|e| e.event_type.as_str() == "message_status")
        .count();
    assert_eq!(statuses, 2, "one event per status");
    assert_eq!(recorder.sent().len(), 1, "nothing resent");
}
