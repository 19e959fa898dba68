//! The checks of the conformance suite. Each takes a fresh, empty store and asserts like a test
//! does (it panics with a message naming the broken rule); [`crate::Check::run`] turns a panic
//! into a [`crate::Violation`].

use std::fmt::Debug;
use std::sync::Arc;

use serde_json::{Value, json};

use switchboard_runtime::StoreError;
use switchboard_runtime::adapters::{OutboundBody, OutboundMessage, ProjectEvent};
use switchboard_runtime::event::{Event, EventType};
use switchboard_runtime::request::InboundMessage;
use switchboard_runtime::state::{
    AgentState, ChatMessage, Contact, Conversation, Direction, EffectKind, Execution,
    HistoryMessage, LastResume, Object, PendingEffect, Status, Timer, ToolCall, TriggerType,
    WaitingReason,
};
use switchboard_runtime::store::{
    Claimed, DeliveryStatus, DueTimer, Effect, Enqueued, ExecutionFilter, ExecutionStore,
    InboundItem, MESSAGE_ID_RETENTION_MS, NewInbound, OutboxQuery, OutboxRecord, OutboxState,
    StatusRecord, TurnCommit,
};
use switchboard_runtime::time::Timestamp;

/// The time the checks start at: 2026-01-05T10:00:00Z.
pub const T0: Timestamp = Timestamp(1_767_607_200_000);

// --- sample data ---------------------------------------------------------------------------

/// A conversation exercising every field (unicode names and texts, history, timestamps).
pub fn conversation(id: &str) -> Conversation {
    Conversation {
        id: id.to_owned(),
        phone_number: "+14155550100".into(),
        phone_number_id: "15550001111".into(),
        contact: Contact {
            wa_id: "14155550100".into(),
            name: Some("José Ñúñez".into()),
            profile_name: Some("🦀 Ferris «ü»".into()),
        },
        messages: [
            HistoryMessage {
                status: Some("received".into()),
                ..HistoryMessage::new(
                    "wamid.in-1",
                    Direction::Inbound,
                    "text",
                    "¿Dónde está mi pedido? 日本語 \"quoted\"\nnew line",
                    T0,
                )
            },
            HistoryMessage {
                interactive_type: Some("button".into()),
                status: Some("read".into()),
                status_at: Some(Timestamp(T0.0 + 5_000)),
                ..HistoryMessage::new(
                    "wamid.out-1",
                    Direction::Outbound,
                    "interactive",
                    "Elige una opción 👇",
                    Timestamp(T0.0 + 1_000),
                )
            },
            HistoryMessage {
                reply_id: Some("opción-1".into()),
                reply_title: Some("Sí ✅".into()),
                interactive_type: Some("button_reply".into()),
                status: Some("received".into()),
                ..HistoryMessage::new(
                    "wamid.in-2",
                    Direction::Inbound,
                    "interactive",
                    "Sí ✅",
                    Timestamp(T0.0 + 9_000),
                )
            },
            HistoryMessage {
                interactive_type: Some("nfm_reply".into()),
                interactive_data: Some(
                    json!({"name": "flow", "response_json": "{\"date\": \"2026-02-01\"}"}),
                ),
                has_media: true,
                ..HistoryMessage::new(
                    "wamid.in-3",
                    Direction::Inbound,
                    "image",
                    "",
                    Timestamp(T0.0 + 12_000),
                )
            },
        ]
        .into_iter()
        .map(std::sync::Arc::new)
        .collect(),
        last_inbound_at: Some(Timestamp(T0.0 + 12_000)),
        active_execution_id: Some(format!("{id}-ex")),
        created_at: Some(T0),
        version: 0,
    }
}

/// An execution exercising every field: nested `vars` with unicode and extreme numbers, a
/// timer, an agent transcript with tool calls, a call stack, emitted events. Status `waiting`
/// (reason `agent`), started at [`T0`], timer due at `T0 + 600 s`.
pub fn execution(id: &str, conversation_id: &str) -> Execution {
    let vars = json!({
        "zeta": "keys keep their order",
        "alpha": 1,
        "name": "Zoë 🚀 — 日本語",
        "order": {
            "id": "A-1",
            "items": [{"sku": "x", "qty": 2, "price": 19.99}, null, true, "", []],
            "empty": {},
            "nested": {"deep": {"deeper": [1, [2, [3, {"k": "v"}]]]}}
        },
        "big": u64::MAX,
        "small": i64::MIN,
        "half": 0.5,
        "escapes": "she said \"hi\"\n\ttab \\ backslash ' single %_ like",
        "nul": "a\u{0}b",
        "last_user_input": "hola",
        "last_user_reply": {"type": "button_reply", "id": "yes", "title": "Sí ✓"},
    });
    Execution {
        id: id.to_owned(),
        flow_id: "flow_ü".into(),
        flow_name: "Pedidos — soporte".into(),
        flow_version: "3".into(),
        conversation_id: conversation_id.to_owned(),
        status: Status::Waiting,
        waiting_reason: Some(WaitingReason::Agent),
        current_node_id: Some("agent_1".into()),
        vars: object(vars),
        context: object(json!({
            "channel": "whatsapp",
            "phone_number": "+14155550100",
            "conversation_id": conversation_id,
            "contact": {"wa_id": "14155550100", "name": "José", "profile_name": null},
        })),
        metadata: object(json!({
            "request": {"ip": "127.0.0.1", "user_agent": "curl/8", "timestamp": "2026-01-05T10:00:00Z"}
        })),
        trigger_type: TriggerType::ApiCall,
        tracking_id: format!("tr-{id}"),
        parent_execution_id: Some("ex_parent".into()),
        child_execution_id: Some("ex_child".into()),
        call_stack: vec!["outer".into(), "middle".into()],
        call_depth: 2,
        started_at: T0,
        last_event_at: Timestamp(T0.0 + 1_500),
        ended_at: None,
        last_resume: Some(LastResume {
            reason: "user_input".into(),
            at: Timestamp(T0.0 + 1_200),
        }),
        error_details: Some(json!({"kind": "http", "message": "boom ✗", "status": 502})),
        timer: Some(Timer {
            node_id: "wait_1".into(),
            due_at: Timestamp(T0.0 + 600_000),
            activation: 7,
            timeout_seconds: 600,
        }),
        activation: 7,
        agent: Some(AgentState {
            node_id: "agent_1".into(),
            transcript: vec![
                ChatMessage::new("system", "You are helpful. Réponds en français."),
                ChatMessage::new("user", "hola 👋"),
                ChatMessage {
                    role: "assistant".into(),
                    content: String::new(),
                    tool_calls: vec![ToolCall {
                        id: "call_1".into(),
                        name: "lookup_order".into(),
                        arguments: json!({"order_id": "A-1", "flags": [true, null]}),
                    }],
                    tool_call_id: None,
                },
                ChatMessage {
                    role: "tool".into(),
                    content: "{\"status\":\"shipped\"}".into(),
                    tool_calls: Vec::new(),
                    tool_call_id: Some("call_1".into()),
                },
            ],
            mcp_tools: vec![(
                0,
                "orders".into(),
                "lookup".into(),
                json!({"type": "object", "properties": {"id": {"type": "string"}}}),
            )],
        }),
        emitted: vec![("order_placed".into(), 2), ("ñandú".into(), 1)],
        pending_status: Some(Status::Handoff),
        secrets_used: vec!["API_KEY".into()],
        event_seq: 42,
        pending_effect: Some(PendingEffect {
            outbox_id: format!("{id}.3"),
            node_id: "notify".into(),
            kind: EffectKind::AgentMessage,
            action: "send_media".into(),
            due_at: Timestamp(T0.0 + 60_000),
            tool_call_id: Some("call_ü".into()),
        }),
        effects: 3,
        version: 0,
    }
}

/// An event of `execution_id` with sequence number `seq` (created at `T0 + seq` ms).
pub fn event(execution_id: &str, seq: u64, event_type: EventType) -> Event {
    Event {
        id: format!("{execution_id}:{seq}"),
        execution_id: execution_id.to_owned(),
        seq,
        event_type,
        created_at: Timestamp(T0.0 + seq as i64),
        node_id: Some(format!("node_{seq}")),
        edge_label: seq.is_multiple_of(2).then(|| "next".to_owned()),
        payload: json!({"seq": seq, "text": "ünïcödé ✓", "nested": {"b": [1, 2], "a": null}}),
    }
}

fn object(v: Value) -> Object {
    match v {
        Value::Object(m) => m,
        _ => Object::new(),
    }
}

/// An execution with the given listing fields (the rest from [`execution`], no timer).
fn listed(
    id: &str,
    flow: &str,
    conv: &str,
    status: Status,
    reason: Option<WaitingReason>,
    started_ms: i64,
) -> Execution {
    let mut e = execution(id, conv);
    e.flow_id = flow.to_owned();
    e.status = status;
    e.waiting_reason = reason;
    e.started_at = Timestamp(T0.0 + started_ms);
    e.timer = None;
    e
}

// --- helpers -------------------------------------------------------------------------------

fn ok<T>(r: Result<T, StoreError>, what: &str) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("{what}: unexpected store error: {e}"),
    }
}

fn conflict<T: Debug>(r: Result<T, StoreError>, what: &str) {
    match r {
        Err(StoreError::Conflict(_)) => {}
        Err(e) => panic!("{what}: expected a version conflict, got the error {e}"),
        Ok(v) => panic!("{what}: expected a version conflict, got Ok({v:?})"),
    }
}

fn stored<T: Clone + serde::Serialize + PartialEq + Debug>(
    got: Option<T>,
    want: &T,
    what: &str,
) -> T {
    let Some(got) = got else {
        panic!("{what}: not found");
    };
    assert_eq!(&got, want, "{what}: loaded value differs");
    let (g, w) = (serde_json::to_string(&got), serde_json::to_string(want));
    assert_eq!(
        g.ok(),
        w.ok(),
        "{what}: loaded value differs in JSON (key order?)"
    );
    got
}

fn with_version<T: Clone>(v: &T, set: impl FnOnce(&mut T)) -> T {
    let mut v = v.clone();
    set(&mut v);
    v
}

async fn commit(store: &dyn ExecutionStore, c: TurnCommit, what: &str) {
    ok(store.commit(c).await, what);
}

fn all() -> ExecutionFilter {
    ExecutionFilter {
        limit: 100,
        ..ExecutionFilter::default()
    }
}

async fn ids(store: &dyn ExecutionStore, f: &ExecutionFilter, what: &str) -> Vec<String> {
    ok(store.executions(f).await, what)
        .into_iter()
        .map(|e| e.id)
        .collect()
}

async fn all_events(store: &dyn ExecutionStore, execution_id: &str) -> Vec<Event> {
    ok(
        store.events(execution_id, 0, 100_000, None).await,
        "listing events",
    )
}

const FAR: Timestamp = Timestamp(T0.0 + 1_000 * 24 * 3600 * 1000);

// --- checks --------------------------------------------------------------------------------

/// Commit then load round-trips conversations and executions exactly; a second write replaces
/// the record entirely.
pub(crate) async fn round_trip(store: Arc<dyn ExecutionStore>) {
    let s = store.as_ref();
    assert_eq!(ok(s.conversation("c1").await, "load"), None, "empty store");
    assert_eq!(ok(s.execution("ex_1").await, "load"), None, "empty store");
    assert!(
        ok(s.executions(&all()).await, "list").is_empty(),
        "empty store lists nothing"
    );
    assert!(
        ok(s.due_timers(FAR, 10).await, "timers").is_empty(),
        "empty store has no timers"
    );
    assert!(
        all_events(s, "ex_1").await.is_empty(),
        "empty store has no events"
    );

    let conv = conversation("c1");
    let exec = execution("ex_1", "c1");
    let evs = vec![
        event("ex_1", 1, EventType::ExecutionStarted),
        event("ex_1", 2, EventType::VariablesSet),
    ];
    commit(
        s,
        TurnCommit {
            conversations: vec![conv.clone()],
            executions: vec![exec.clone()],
            events: evs.clone(),
            ..TurnCommit::default()
        },
        "first commit",
    )
    .await;
    let conv1 = with_version(&conv, |c| c.version = 1);
    let exec1 = with_version(&exec, |e| e.version = 1);
    stored(
        ok(s.conversation("c1").await, "load"),
        &conv1,
        "conversation c1",
    );
    stored(
        ok(s.execution("ex_1").await, "load"),
        &exec1,
        "execution ex_1",
    );
    assert_eq!(all_events(s, "ex_1").await, evs, "events round-trip");
    assert_eq!(ok(s.conversation("c1-other").await, "load"), None);

    // A second write replaces everything: removed keys and cleared options stay gone.
    let mut exec2 = exec1.clone();
    exec2.vars.remove("order");
    exec2.vars.insert("added".into(), json!({"ü": [1.25, "x"]}));
    exec2.status = Status::Ended;
    exec2.waiting_reason = None;
    exec2.current_node_id = None;
    exec2.timer = None;
    exec2.agent = None;
    exec2.pending_status = None;
    exec2.error_details = None;
    exec2.ended_at = Some(Timestamp(T0.0 + 9_000));
    exec2.child_execution_id = None;
    exec2.emitted.clear();
    let mut conv2 = conv1.clone();
    conv2.messages.remove(0);
    conv2.active_execution_id = None;
    conv2.contact.name = None;
    commit(
        s,
        TurnCommit {
            conversations: vec![conv2.clone()],
            executions: vec![exec2.clone()],
            ..TurnCommit::default()
        },
        "second commit",
    )
    .await;
    stored(
        ok(s.conversation("c1").await, "load"),
        &with_version(&conv2, |c| c.version = 2),
        "updated conversation c1",
    );
    stored(
        ok(s.execution("ex_1").await, "load"),
        &with_version(&exec2, |e| e.version = 2),
        "updated execution ex_1",
    );
    let listed = ok(s.executions(&all()).await, "list");
    assert_eq!(listed.len(), 1, "one execution listed");
    stored(
        listed.into_iter().next(),
        &with_version(&exec2, |e| e.version = 2),
        "listed execution ex_1",
    );
}

/// Versions increase by one per commit; version 0 inserts only when absent; any other version
/// must match the stored one.
pub(crate) async fn versions(store: Arc<dyn ExecutionStore>) {
    let s = store.as_ref();
    ok(s.commit(TurnCommit::default()).await, "an empty commit");
    let mut conv = conversation("c1");
    let mut exec = execution("ex_1", "c1");
    for v in 0..3 {
        assert_eq!(conv.version, v);
        commit(
            s,
            TurnCommit {
                conversations: vec![conv.clone()],
                ..TurnCommit::default()
            },
            "conversation commit",
        )
        .await;
        conv = ok(s.conversation("c1").await, "load").unwrap_or_else(|| panic!("c1 missing"));
        assert_eq!(conv.version, v + 1, "conversation version after a commit");
    }
    for v in 0..2 {
        // Executions may be committed without their conversation.
        exec.vars.insert("round".into(), json!(v));
        commit(
            s,
            TurnCommit {
                executions: vec![exec.clone()],
                ..TurnCommit::default()
            },
            "execution commit",
        )
        .await;
        exec = ok(s.execution("ex_1").await, "load").unwrap_or_else(|| panic!("ex_1 missing"));
        assert_eq!(exec.version, v + 1, "execution version after a commit");
        assert_eq!(exec.vars.get("round"), Some(&json!(v)));
    }
    assert_eq!(conv.version, 3);
    assert_eq!(exec.version, 2);

    for (bad, what) in [
        (0, "version 0 (new) for an existing conversation"),
        (2, "a stale conversation version"),
        (4, "a conversation version ahead of the stored one"),
    ] {
        let c = with_version(&conv, |c| c.version = bad);
        conflict(
            s.commit(TurnCommit {
                conversations: vec![c],
                ..TurnCommit::default()
            })
            .await,
            what,
        );
    }
    for (bad, what) in [
        (0, "version 0 (new) for an existing execution"),
        (1, "a stale execution version"),
        (7, "an execution version ahead of the stored one"),
    ] {
        let e = with_version(&exec, |e| e.version = bad);
        conflict(
            s.commit(TurnCommit {
                executions: vec![e],
                ..TurnCommit::default()
            })
            .await,
            what,
        );
    }
    conflict(
        s.commit(TurnCommit {
            executions: vec![with_version(&execution("ex_missing", "c1"), |e| {
                e.version = 3
            })],
            conversations: vec![with_version(&conversation("c_missing"), |c| c.version = 1)],
            ..TurnCommit::default()
        })
        .await,
        "a non-zero version for records that do not exist",
    );
    assert_eq!(ok(s.execution("ex_missing").await, "load"), None);
    assert_eq!(ok(s.conversation("c_missing").await, "load"), None);
    stored(
        ok(s.conversation("c1").await, "load"),
        &conv,
        "c1 after conflicts",
    );
    stored(
        ok(s.execution("ex_1").await, "load"),
        &exec,
        "ex_1 after conflicts",
    );
}

/// Everything a store shows, over a set of ids.
#[derive(Debug, PartialEq)]
struct Snapshot {
    conversations: Vec<Option<Conversation>>,
    executions: Vec<Option<Execution>>,
    events: Vec<Vec<Event>>,
    listing: Vec<Execution>,
    due: Vec<DueTimer>,
    seen: Vec<bool>,
    idempotency: Vec<Option<Value>>,
}

async fn snapshot(s: &dyn ExecutionStore) -> Snapshot {
    let mut snap = Snapshot {
        conversations: Vec::new(),
        executions: Vec::new(),
        events: Vec::new(),
        listing: ok(s.executions(&all()).await, "list"),
        due: ok(s.due_timers(FAR, 100).await, "timers"),
        seen: Vec::new(),
        idempotency: Vec::new(),
    };
    for c in ["c1", "c2"] {
        snap.conversations
            .push(ok(s.conversation(c).await, "load conversation"));
    }
    for e in ["ex_a", "ex_b", "ex_new"] {
        snap.executions
            .push(ok(s.execution(e).await, "load execution"));
        snap.events.push(all_events(s, e).await);
    }
    for (c, m) in [("c1", "m1"), ("c1", "m2"), ("c2", "m3"), ("c2", "m1")] {
        snap.seen.push(ok(s.seen_message(c, m).await, "seen"));
    }
    for k in ["k1", "k2"] {
        snap.idempotency.push(ok(
            s.idempotent_result(k, Timestamp(0)).await,
            "idempotency",
        ));
    }
    snap
}

/// A commit failing with a conflict changes nothing, wherever the stale record sits.
pub(crate) async fn stale_commit_changes_nothing(store: Arc<dyn ExecutionStore>) {
    let s = store.as_ref();
    let mut a = execution("ex_a", "c1");
    a.status = Status::Waiting;
    a.waiting_reason = Some(WaitingReason::WaitForResponse);
    let mut b = execution("ex_b", "c1");
    b.timer = Some(Timer {
        node_id: "wait_b".into(),
        due_at: Timestamp(T0.0 + 300_000),
        activation: 1,
        timeout_seconds: 300,
    });
    b.started_at = Timestamp(T0.0 + 10);
    commit(
        s,
        TurnCommit {
            conversations: vec![conversation("c1")],
            executions: vec![a.clone(), b.clone()],
            events: (1..=3)
                .map(|n| event("ex_a", n, EventType::StepEntered))
                .collect(),
            message_ids: vec![("c1".into(), "m1".into(), T0)],
            idempotency: Some(("k1".into(), json!({"execution_id": "ex_a"}), T0)),
            ..TurnCommit::default()
        },
        "setup",
    )
    .await;
    let conv1 = ok(s.conversation("c1").await, "load").unwrap_or_else(|| panic!("c1 missing"));
    let a1 = with_version(&a, |e| e.version = 1);
    let b1 = with_version(&b, |e| e.version = 1);
    let before = snapshot(s).await;

    // A commit that would succeed, given the right versions.
    let good = || {
        let mut conv = conv1.clone();
        conv.messages.clear();
        conv.active_execution_id = Some("ex_new".into());
        let mut a = a1.clone();
        a.status = Status::Ended;
        a.waiting_reason = None;
        a.timer = None;
        let mut b = b1.clone();
        b.vars.insert("changed".into(), json!(true));
        let mut n = execution("ex_new", "c2");
        n.started_at = Timestamp(T0.0 + 20);
        n.timer = Some(Timer {
            node_id: "wait_n".into(),
            due_at: Timestamp(T0.0 + 100),
            activation: 1,
            timeout_seconds: 1,
        });
        TurnCommit {
            conversations: vec![conversation("c2"), conv],
            executions: vec![a, n, b],
            events: vec![
                event("ex_a", 4, EventType::StepCompleted),
                event("ex_new", 1, EventType::ExecutionStarted),
                event("ex_a", 5, EventType::ExecutionEnded),
            ],
            message_ids: vec![
                ("c1".into(), "m2".into(), T0),
                ("c2".into(), "m3".into(), T0),
            ],
            idempotency: Some(("k2".into(), json!({"execution_id": "ex_new"}), T0)),
            ..TurnCommit::default()
        }
    };
    type Spoil = fn(&mut TurnCommit);
    let spoilers: [(&str, Spoil); 7] = [
        ("a stale conversation listed last", |c| {
            c.conversations[1].version = 0;
        }),
        ("a stale conversation listed first", |c| {
            c.conversations.swap(0, 1);
            c.conversations[0].version = 5;
        }),
        ("a new conversation that exists", |c| {
            c.conversations[0] = conversation("c1");
            c.conversations.truncate(1);
        }),
        ("a stale execution listed last", |c| {
            c.executions[2].version = 0;
        }),
        ("an execution version ahead, listed first", |c| {
            c.executions[0].version = 2;
        }),
        ("a new execution that exists", |c| {
            c.executions[1] = execution("ex_b", "c1");
        }),
        ("a message id already recorded, listed last", |c| {
            c.message_ids.push(("c1".into(), "m1".into(), T0));
        }),
    ];
    for (what, spoil) in spoilers {
        let mut c = good();
        spoil(&mut c);
        conflict(s.commit(c).await, what);
        assert_eq!(
            snapshot(s).await,
            before,
            "a failed commit ({what}) changed the store"
        );
    }
    // The unspoiled commit goes through and changes everything it names.
    commit(s, good(), "the good commit").await;
    let after = snapshot(s).await;
    assert_ne!(after.conversations, before.conversations);
    assert_eq!(
        after
            .executions
            .iter()
            .map(|e| e.as_ref().map(|e| e.version))
            .collect::<Vec<_>>(),
        vec![Some(2), Some(2), Some(1)],
        "versions after the good commit"
    );
    assert_eq!(
        after.events[0].len(),
        5,
        "ex_a events after the good commit"
    );
    assert_eq!(
        after.events[2].len(),
        1,
        "ex_new events after the good commit"
    );
    assert_eq!(after.seen, vec![true, true, true, false]);
    assert_eq!(
        after.idempotency,
        vec![
            Some(json!({"execution_id": "ex_a"})),
            Some(json!({"execution_id": "ex_new"}))
        ]
    );
    let due: Vec<String> = after.due.into_iter().map(|d| d.execution_id).collect();
    assert_eq!(due, vec!["ex_new", "ex_b"], "timers after the good commit");
}

/// Message ids: per conversation, re-recording conflicts, kept for the retention window.
pub(crate) async fn message_ids(store: Arc<dyn ExecutionStore>) {
    let s = store.as_ref();
    let odd = "wamid.HBgL/ü+\"'%_==";
    assert!(
        !ok(s.seen_message("c1", "m1").await, "seen"),
        "nothing seen yet"
    );
    commit(
        s,
        TurnCommit {
            message_ids: vec![
                ("c1".into(), "m1".into(), T0),
                ("c1".into(), odd.into(), T0),
            ],
            ..TurnCommit::default()
        },
        "recording message ids",
    )
    .await;
    assert!(
        ok(s.seen_message("c1", "m1").await, "seen"),
        "m1 seen in c1"
    );
    assert!(
        ok(s.seen_message("c1", odd).await, "seen"),
        "odd id seen in c1"
    );
    assert!(
        !ok(s.seen_message("c2", "m1").await, "seen"),
        "ids are per conversation"
    );
    assert!(!ok(s.seen_message("c1", "m2").await, "seen"), "m2 not seen");
    assert!(
        !ok(s.seen_message("c1", "M1").await, "seen"),
        "ids are case-sensitive"
    );
    assert!(
        !ok(s.seen_message("c1", "m%").await, "seen"),
        "ids are not patterns"
    );

    conflict(
        s.commit(TurnCommit {
            message_ids: vec![("c1".into(), "m1".into(), Timestamp(T0.0 + 5))],
            ..TurnCommit::default()
        })
        .await,
        "re-recording a processed message id",
    );
    conflict(
        s.commit(TurnCommit {
            conversations: vec![conversation("c1")],
            message_ids: vec![
                ("c1".into(), "m9".into(), T0),
                ("c1".into(), odd.into(), T0),
            ],
            ..TurnCommit::default()
        })
        .await,
        "a turn re-recording a processed message id",
    );
    assert_eq!(ok(s.conversation("c1").await, "load"), None);
    assert!(
        !ok(s.seen_message("c1", "m9").await, "seen"),
        "m9 not recorded"
    );
    commit(
        s,
        TurnCommit {
            message_ids: vec![("c2".into(), "m1".into(), T0)],
            ..TurnCommit::default()
        },
        "the same id in another conversation",
    )
    .await;
    assert!(
        ok(s.seen_message("c2", "m1").await, "seen"),
        "m1 seen in c2"
    );

    // Ids are remembered for at least the retention window after the newest one.
    for n in 0..8 {
        commit(
            s,
            TurnCommit {
                message_ids: vec![(
                    "c3".into(),
                    format!("late-{n}"),
                    Timestamp(T0.0 + MESSAGE_ID_RETENTION_MS - 7 + n),
                )],
                ..TurnCommit::default()
            },
            "recording later ids",
        )
        .await;
    }
    for (c, m) in [("c1", "m1"), ("c1", odd), ("c2", "m1"), ("c3", "late-0")] {
        assert!(
            ok(s.seen_message(c, m).await, "seen"),
            "{c}/{m} forgotten within the retention window"
        );
    }
}

/// Idempotency records: returned when recorded at or after `since`; a key recorded again is
/// replaced.
pub(crate) async fn idempotency(store: Arc<dyn ExecutionStore>) {
    let s = store.as_ref();
    let at = Timestamp(T0.0 + 1_000);
    let first =
        json!({"execution_id": "ex_1", "tracking_id": "tr_1", "status": "waiting", "ü": [1]});
    assert_eq!(ok(s.idempotent_result("key-ü", T0).await, "idem"), None);
    commit(
        s,
        TurnCommit {
            idempotency: Some(("key-ü".into(), first.clone(), at)),
            ..TurnCommit::default()
        },
        "recording an idempotency key",
    )
    .await;
    let get = |since: i64| s.idempotent_result("key-ü", Timestamp(since));
    assert_eq!(
        ok(get(T0.0).await, "idem"),
        Some(first.clone()),
        "since before"
    );
    assert_eq!(
        ok(get(at.0).await, "idem"),
        Some(first.clone()),
        "since equal (inclusive)"
    );
    assert_eq!(ok(get(at.0 + 1).await, "idem"), None, "since after");
    assert_eq!(
        ok(s.idempotent_result("key-u", T0).await, "idem"),
        None,
        "another key"
    );
    assert_eq!(
        ok(s.idempotent_result("key-%", T0).await, "idem"),
        None,
        "not a pattern"
    );

    let later = Timestamp(T0.0 + 90_000_000);
    let second = json!({"execution_id": "ex_2"});
    commit(
        s,
        TurnCommit {
            idempotency: Some(("key-ü".into(), second.clone(), later)),
            ..TurnCommit::default()
        },
        "recording the key again",
    )
    .await;
    assert_eq!(
        ok(get(T0.0).await, "idem"),
        Some(second.clone()),
        "replaced"
    );
    assert_eq!(
        ok(get(later.0).await, "idem"),
        Some(second),
        "replaced, inclusive"
    );
}

fn waiting(id: &str, due_ms: Option<i64>) -> Execution {
    let mut e = execution(id, &format!("conv-{id}"));
    e.status = Status::Waiting;
    e.waiting_reason = Some(WaitingReason::WaitForResponse);
    e.timer = due_ms.map(|ms| Timer {
        node_id: "wait".into(),
        due_at: Timestamp(T0.0 + ms),
        activation: 1,
        timeout_seconds: 1,
    });
    e
}

async fn due(s: &dyn ExecutionStore, now_ms: i64, limit: usize) -> Vec<(String, i64)> {
    ok(
        s.due_timers(Timestamp(T0.0 + now_ms), limit).await,
        "due timers",
    )
    .into_iter()
    .map(|d| (d.execution_id, d.due_at.0 - T0.0))
    .collect()
}

/// Due timers: waiting executions with a timer only, earliest first, limited, kept in step
/// with the execution.
pub(crate) async fn due_timers(store: Arc<dyn ExecutionStore>) {
    let s = store.as_ref();
    let mut running = waiting("ex_running", Some(5));
    running.status = Status::Running;
    running.waiting_reason = None;
    let mut ended = waiting("ex_ended", Some(5));
    ended.status = Status::Ended;
    ended.waiting_reason = None;
    let mut handoff = waiting("ex_handoff", Some(5));
    handoff.status = Status::Handoff;
    handoff.waiting_reason = None;
    commit(
        s,
        TurnCommit {
            executions: vec![
                waiting("ex_a", Some(10)),
                waiting("ex_b", Some(5)),
                running,
                ended,
                handoff,
                waiting("ex_none", None),
            ],
            ..TurnCommit::default()
        },
        "setup",
    )
    .await;
    commit(
        s,
        TurnCommit {
            executions: vec![
                waiting("ex_c", Some(20)),
                waiting("ex_tie_b", Some(15)),
                waiting("ex_tie_a", Some(15)),
            ],
            ..TurnCommit::default()
        },
        "setup",
    )
    .await;
    let s_ = |v: &[(&str, i64)]| {
        v.iter()
            .map(|(id, ms)| ((*id).to_owned(), *ms))
            .collect::<Vec<_>>()
    };
    assert_eq!(due(s, 4, 100).await, s_(&[]), "nothing due yet");
    assert_eq!(
        due(s, 5, 100).await,
        s_(&[("ex_b", 5)]),
        "due at exactly now"
    );
    assert_eq!(
        due(s, 10, 100).await,
        s_(&[("ex_b", 5), ("ex_a", 10)]),
        "earliest first"
    );
    assert_eq!(due(s, 10, 1).await, s_(&[("ex_b", 5)]), "limit");
    assert_eq!(
        due(s, 1_000, 100).await,
        s_(&[
            ("ex_b", 5),
            ("ex_a", 10),
            ("ex_tie_a", 15),
            ("ex_tie_b", 15),
            ("ex_c", 20)
        ]),
        "all due, ties by execution id"
    );

    let load = |id: &'static str| async move {
        ok(s.execution(id).await, "load").unwrap_or_else(|| panic!("{id} missing"))
    };
    // Cleared timer, still waiting.
    let mut a = load("ex_a").await;
    a.timer = None;
    // Leaves waiting with the timer field still set.
    let mut b = load("ex_b").await;
    b.status = Status::Running;
    b.waiting_reason = None;
    // Ends.
    let mut c = load("ex_c").await;
    c.status = Status::Ended;
    c.waiting_reason = None;
    c.timer = None;
    // Re-armed later.
    let mut tie_a = load("ex_tie_a").await;
    if let Some(t) = tie_a.timer.as_mut() {
        t.due_at = Timestamp(T0.0 + 500);
        t.activation = 2;
    }
    // Enters waiting with a timer.
    let mut r = load("ex_running").await;
    r.status = Status::Waiting;
    r.waiting_reason = Some(WaitingReason::WaitForResponse);
    // Hands off.
    let mut tie_b = load("ex_tie_b").await;
    tie_b.status = Status::Handoff;
    tie_b.waiting_reason = None;
    commit(
        s,
        TurnCommit {
            executions: vec![a, b, c, tie_a, r, tie_b],
            ..TurnCommit::default()
        },
        "changing timers",
    )
    .await;
    assert_eq!(
        due(s, 100, 100).await,
        s_(&[("ex_running", 5)]),
        "cleared, ended, handed-off and re-armed timers are not due"
    );
    assert_eq!(
        due(s, 1_000, 100).await,
        s_(&[("ex_running", 5), ("ex_tie_a", 500)]),
        "a re-armed timer is due once, at its new time"
    );
}

/// Events: appended in order, paged with `after` and `limit`, filtered by type.
pub(crate) async fn events(store: Arc<dyn ExecutionStore>) {
    let s = store.as_ref();
    let types = [
        EventType::ExecutionStarted,
        EventType::StepEntered,
        EventType::StepCompleted,
        EventType::StepEntered,
        EventType::StepCompleted,
        EventType::StepEntered,
        EventType::UserInputReceived,
    ];
    let a: Vec<Event> = types
        .iter()
        .enumerate()
        .map(|(i, t)| event("ex_a", i as u64 + 1, *t))
        .collect();
    let b: Vec<Event> = (1..=3)
        .map(|n| event("ex_b", n, EventType::StepEntered))
        .collect();
    // Interleaved across executions and commits.
    commit(
        s,
        TurnCommit {
            events: vec![a[0].clone(), b[0].clone(), a[1].clone(), a[2].clone()],
            ..TurnCommit::default()
        },
        "events 1",
    )
    .await;
    commit(
        s,
        TurnCommit {
            events: vec![b[1].clone(), a[3].clone(), a[4].clone(), b[2].clone()],
            ..TurnCommit::default()
        },
        "events 2",
    )
    .await;
    commit(
        s,
        TurnCommit {
            events: a[5..].to_vec(),
            ..TurnCommit::default()
        },
        "events 3",
    )
    .await;
    let seqs = |v: Vec<Event>| v.into_iter().map(|e| e.seq).collect::<Vec<_>>();
    let get = |after: u64, limit: usize, t: Option<EventType>| async move {
        ok(s.events("ex_a", after, limit, t).await, "events")
    };
    assert_eq!(get(0, 100, None).await, a, "every event, in order, exactly");
    assert_eq!(all_events(s, "ex_b").await, b, "per execution");
    assert!(
        all_events(s, "ex_none").await.is_empty(),
        "unknown execution"
    );
    assert_eq!(seqs(get(2, 2, None).await), vec![3, 4], "after and limit");
    assert_eq!(seqs(get(6, 100, None).await), vec![7], "after near the end");
    assert!(get(7, 100, None).await.is_empty(), "after the last");
    assert_eq!(
        seqs(get(0, 100, Some(EventType::StepEntered)).await),
        vec![2, 4, 6],
        "type filter"
    );
    assert_eq!(
        seqs(get(2, 1, Some(EventType::StepEntered)).await),
        vec![4],
        "type filter before limit, after `after`"
    );
    assert!(
        get(0, 100, Some(EventType::WaitTimeout)).await.is_empty(),
        "no events of that type"
    );
}

/// Listing executions: newest first, every filter field, `after` paging, limit clamping.
pub(crate) async fn executions_listing(store: Arc<dyn ExecutionStore>) {
    use Status::{Ended, Failed, Handoff, Running, Waiting};
    use WaitingReason::{Agent, Call, WaitForResponse};
    let s = store.as_ref();
    let one = |e: Execution| TurnCommit {
        executions: vec![e],
        ..TurnCommit::default()
    };
    commit(
        s,
        one(listed(
            "e1",
            "f1",
            "c1",
            Waiting,
            Some(WaitForResponse),
            1_000,
        )),
        "e1",
    )
    .await;
    commit(s, one(listed("e2", "f2", "c1", Ended, None, 2_000)), "e2").await;
    commit(
        s,
        TurnCommit {
            executions: vec![
                listed("e3", "f1", "c2", Waiting, Some(Agent), 3_000),
                listed("e4", "f1", "c3", Handoff, None, 4_000),
            ],
            ..TurnCommit::default()
        },
        "e3 and e4",
    )
    .await;
    commit(s, one(listed("e5", "f2", "c2", Failed, None, 5_000)), "e5").await;
    // Created after e5 but started earlier; e7 started with e5 but created later.
    commit(
        s,
        one(listed("e6", "f1", "c1", Waiting, Some(Call), 2_500)),
        "e6",
    )
    .await;
    commit(s, one(listed("e7", "f1", "c3", Running, None, 5_000)), "e7").await;

    let f = |set: fn(&mut ExecutionFilter)| {
        let mut f = all();
        set(&mut f);
        f
    };
    let t = |ms: i64| Some(Timestamp(T0.0 + ms));
    let cases: Vec<(&str, ExecutionFilter, Vec<&str>)> = vec![
        (
            "newest first",
            all(),
            vec!["e7", "e5", "e4", "e3", "e6", "e2", "e1"],
        ),
        ("limit", f(|f| f.limit = 3), vec!["e7", "e5", "e4"]),
        ("limit 0 is 1", f(|f| f.limit = 0), vec!["e7"]),
        (
            "flow",
            f(|f| f.flow_id = Some("f2".into())),
            vec!["e5", "e2"],
        ),
        (
            "conversation",
            f(|f| f.conversation_id = Some("c1".into())),
            vec!["e6", "e2", "e1"],
        ),
        (
            "status",
            f(|f| f.status = Some(Waiting)),
            vec!["e3", "e6", "e1"],
        ),
        (
            "status handoff",
            f(|f| f.status = Some(Handoff)),
            vec!["e4"],
        ),
        (
            "waiting reason",
            f(|f| f.waiting_reason = Some(Agent)),
            vec!["e3"],
        ),
        (
            "created_after is inclusive",
            f(|f| f.created_after = Some(Timestamp(T0.0 + 3_000))),
            vec!["e7", "e5", "e4", "e3"],
        ),
        (
            "created_before is exclusive",
            f(|f| f.created_before = Some(Timestamp(T0.0 + 2_500))),
            vec!["e2", "e1"],
        ),
        (
            "a time window",
            ExecutionFilter {
                created_after: t(2_000),
                created_before: t(4_000),
                ..all()
            },
            vec!["e3", "e6", "e2"],
        ),
        (
            "flow and status",
            f(|f| {
                f.flow_id = Some("f1".into());
                f.status = Some(Waiting);
            }),
            vec!["e3", "e6", "e1"],
        ),
        (
            "after",
            f(|f| f.after = Some("e4".into())),
            vec!["e3", "e6", "e2", "e1"],
        ),
        (
            "after, in a tie",
            f(|f| f.after = Some("e7".into())),
            vec!["e5", "e4", "e3", "e6", "e2", "e1"],
        ),
        (
            "after and limit",
            f(|f| {
                f.after = Some("e4".into());
                f.limit = 2;
            }),
            vec!["e3", "e6"],
        ),
        (
            "after an id the filter excludes",
            f(|f| {
                f.flow_id = Some("f1".into());
                f.after = Some("e5".into());
            }),
            vec!["e4", "e3", "e6", "e1"],
        ),
        ("after the last", f(|f| f.after = Some("e1".into())), vec![]),
        (
            "after an unknown id",
            f(|f| f.after = Some("nope".into())),
            vec![],
        ),
        ("no match", f(|f| f.flow_id = Some("f9".into())), vec![]),
        (
            "before",
            f(|f| f.before = Some("e3".into())),
            vec!["e7", "e5", "e4"],
        ),
        (
            "before and limit: the nearest newer ones",
            f(|f| {
                f.before = Some("e2".into());
                f.limit = 2;
            }),
            vec!["e3", "e6"],
        ),
        (
            "before an id the filter excludes",
            f(|f| {
                f.flow_id = Some("f1".into());
                f.before = Some("e5".into());
            }),
            vec!["e7"],
        ),
        (
            "before the first",
            f(|f| f.before = Some("e7".into())),
            vec![],
        ),
        (
            "before an unknown id",
            f(|f| f.before = Some("nope".into())),
            vec![],
        ),
        (
            "after wins over before",
            f(|f| {
                f.after = Some("e4".into());
                f.before = Some("e2".into());
            }),
            vec!["e3", "e6", "e2", "e1"],
        ),
    ];
    for (what, filter, want) in &cases {
        assert_eq!(ids(s, filter, what).await, *want, "listing: {what}");
    }

    // Filters see the current state.
    let mut e1 = ok(s.execution("e1").await, "load").unwrap_or_else(|| panic!("e1 missing"));
    e1.status = Ended;
    e1.waiting_reason = None;
    e1.ended_at = t(9_000);
    commit(s, one(e1), "ending e1").await;
    assert_eq!(
        ids(s, &f(|f| f.status = Some(Waiting)), "after an update").await,
        vec!["e3", "e6"],
        "listing: an ended execution is no longer waiting"
    );
    assert_eq!(
        ids(s, &f(|f| f.status = Some(Ended)), "after an update").await,
        vec!["e2", "e1"],
        "listing: an updated execution keeps its place"
    );
    assert_eq!(
        ids(
            s,
            &f(|f| f.waiting_reason = Some(WaitForResponse)),
            "after an update"
        )
        .await,
        Vec::<String>::new(),
        "listing: waiting reason cleared"
    );

    // The limit is at most 100.
    commit(
        s,
        TurnCommit {
            executions: (0..105)
                .map(|n| {
                    listed(
                        &format!("bulk-{n:03}"),
                        "bulk",
                        "cb",
                        Ended,
                        None,
                        10_000 + n,
                    )
                })
                .collect(),
            ..TurnCommit::default()
        },
        "105 executions",
    )
    .await;
    let many = ids(s, &f(|f| f.limit = 1_000), "limit 1000").await;
    assert_eq!(many.len(), 100, "listing: limit clamped to 100");
    assert_eq!(many.first().map(String::as_str), Some("bulk-104"));
}

/// Two tasks committing on the same loaded versions: exactly one wins, the loser leaves no
/// trace.
pub(crate) async fn concurrent_commits(store: Arc<dyn ExecutionStore>) {
    let s = store.as_ref();
    commit(
        s,
        TurnCommit {
            conversations: vec![conversation("c1")],
            executions: vec![execution("ex_a", "c1")],
            ..TurnCommit::default()
        },
        "setup",
    )
    .await;
    for round in 0..16u64 {
        let conv = ok(s.conversation("c1").await, "load").unwrap_or_else(|| panic!("c1 missing"));
        let exec = ok(s.execution("ex_a").await, "load").unwrap_or_else(|| panic!("ex_a missing"));
        let barrier = Arc::new(tokio::sync::Barrier::new(2));
        let mut tasks = Vec::new();
        for contender in 0..2u64 {
            let (store, barrier) = (store.clone(), barrier.clone());
            let (mut conv, mut exec) = (conv.clone(), exec.clone());
            // Round 3k+1: the second task touches only the conversation; 3k+2: only the
            // execution; otherwise both.
            let touch_conv = !(round % 3 == 2 && contender == 1);
            let touch_exec = !(round % 3 == 1 && contender == 1);
            tasks.push(tokio::spawn(async move {
                conv.last_inbound_at = Some(Timestamp(T0.0 + (round * 10 + contender) as i64));
                exec.vars.insert("winner".into(), json!(contender));
                exec.vars.insert("round".into(), json!(round));
                let mut ev = event("ex_a", round + 1, EventType::UserInputReceived);
                ev.payload = json!({"winner": contender});
                let commit = TurnCommit {
                    conversations: if touch_conv { vec![conv] } else { vec![] },
                    executions: if touch_exec { vec![exec] } else { vec![] },
                    events: vec![ev],
                    message_ids: vec![("c1".into(), format!("m-{round}-{contender}"), T0)],
                    idempotency: Some((format!("k-{round}-{contender}"), json!(contender), T0)),
                    ..TurnCommit::default()
                };
                barrier.wait().await;
                store.commit(commit).await
            }));
        }
        let mut results = Vec::new();
        for t in tasks {
            match t.await {
                Ok(r) => results.push(r),
                Err(e) => panic!("round {round}: a committing task failed: {e}"),
            }
        }
        let winners: Vec<u64> = (0..2u64).filter(|i| results[*i as usize].is_ok()).collect();
        assert_eq!(
            winners.len(),
            1,
            "round {round}: exactly one commit wins: {results:?}"
        );
        let (winner, loser) = (winners[0], 1 - winners[0]);
        conflict(results.remove(loser as usize), "the losing commit");

        let exec2 = ok(s.execution("ex_a").await, "load").unwrap_or_else(|| panic!("ex_a"));
        let conv2 = ok(s.conversation("c1").await, "load").unwrap_or_else(|| panic!("c1"));
        let winner_touched_exec = !(round % 3 == 1 && winner == 1);
        let winner_touched_conv = !(round % 3 == 2 && winner == 1);
        if winner_touched_exec {
            assert_eq!(
                exec2.version,
                exec.version + 1,
                "round {round}: execution version"
            );
            assert_eq!(
                exec2.vars.get("winner"),
                Some(&json!(winner)),
                "round {round}"
            );
        } else {
            assert_eq!(exec2, exec, "round {round}: execution untouched");
        }
        if winner_touched_conv {
            assert_eq!(
                conv2.version,
                conv.version + 1,
                "round {round}: conversation version"
            );
            assert_eq!(
                conv2.last_inbound_at,
                Some(Timestamp(T0.0 + (round * 10 + winner) as i64)),
                "round {round}: the winner's conversation"
            );
        } else {
            assert_eq!(conv2, conv, "round {round}: conversation untouched");
        }
        let evs = ok(s.events("ex_a", round, 100, None).await, "events");
        assert_eq!(evs.len(), 1, "round {round}: only the winner's event");
        assert_eq!(evs[0].payload, json!({"winner": winner}), "round {round}");
        let (wm, lm) = (format!("m-{round}-{winner}"), format!("m-{round}-{loser}"));
        assert!(
            ok(s.seen_message("c1", &wm).await, "seen"),
            "round {round}: winner's message id"
        );
        assert!(
            !ok(s.seen_message("c1", &lm).await, "seen"),
            "round {round}: loser's message id"
        );
        let (wk, lk) = (format!("k-{round}-{winner}"), format!("k-{round}-{loser}"));
        assert_eq!(
            ok(s.idempotent_result(&wk, T0).await, "idem"),
            Some(json!(winner))
        );
        assert_eq!(
            ok(s.idempotent_result(&lk, T0).await, "idem"),
            None,
            "round {round}: loser's key"
        );
    }

    // Two tasks creating the same conversation and execution.
    for round in 0..8u64 {
        let barrier = Arc::new(tokio::sync::Barrier::new(2));
        let mut tasks = Vec::new();
        for contender in 0..2u64 {
            let (store, barrier) = (store.clone(), barrier.clone());
            tasks.push(tokio::spawn(async move {
                let conv_id = format!("new-{round}");
                let mut exec = execution(&format!("ex-new-{round}"), &conv_id);
                exec.vars.insert("winner".into(), json!(contender));
                let commit = TurnCommit {
                    conversations: vec![conversation(&conv_id)],
                    executions: vec![exec],
                    ..TurnCommit::default()
                };
                barrier.wait().await;
                store.commit(commit).await
            }));
        }
        let mut results = Vec::new();
        for t in tasks {
            match t.await {
                Ok(r) => results.push(r),
                Err(e) => panic!("round {round}: a committing task failed: {e}"),
            }
        }
        let winners: Vec<usize> = (0..2).filter(|i| results[*i].is_ok()).collect();
        assert_eq!(
            winners.len(),
            1,
            "creating: exactly one commit wins: {results:?}"
        );
        conflict(results.remove(1 - winners[0]), "the losing creation");
        let e = ok(s.execution(&format!("ex-new-{round}")).await, "load")
            .unwrap_or_else(|| panic!("ex-new-{round} missing"));
        assert_eq!(e.version, 1);
        assert_eq!(e.vars.get("winner"), Some(&json!(winners[0])));
    }
}

// --- the inbox, the outbox, due work and leases ---------------------------------------------

fn inbound_message(conv: &str, id: &str, received_ms: i64, due_ms: i64) -> NewInbound {
    NewInbound {
        conversation_id: conv.to_owned(),
        key: id.to_owned(),
        item: InboundItem::Message(InboundMessage {
            id: id.to_owned(),
            phone_number_id: "pn".into(),
            from: "+14155550100".into(),
            profile_name: Some("Zoë".into()),
            kind: "text".into(),
            text: format!("text of {id} ✓"),
            reply: None,
            timestamp: Some(Timestamp(T0.0 + received_ms)),
            interactive: None,
        }),
        received_at: Timestamp(T0.0 + received_ms),
        due_at: Timestamp(T0.0 + due_ms),
    }
}

fn inbound_status(conv: &str, message_id: &str, status: &str, at_ms: i64) -> NewInbound {
    NewInbound {
        conversation_id: conv.to_owned(),
        key: format!("{message_id}:{status}"),
        item: InboundItem::Status(DeliveryStatus {
            message_id: message_id.to_owned(),
            status: status.to_owned(),
            at: Timestamp(T0.0 + at_ms),
            recipient_id: "14155550100".into(),
            phone_number_id: "pn".into(),
            outbox_id: Some("ex_1.1".into()),
            errors: vec![json!({"code": 131047, "title": "Re-engagement message"})],
        }),
        received_at: Timestamp(T0.0 + at_ms),
        due_at: Timestamp(T0.0 + at_ms),
    }
}

async fn queued_keys(s: &dyn ExecutionStore, conv: &str) -> Vec<String> {
    ok(s.queued(conv).await, "queued")
        .into_iter()
        .map(|q| q.key)
        .collect()
}

/// The inbox: items queued in arrival order per conversation, deduplicated by key (and, for
/// messages, against processed message ids), removed by the commit that consumes them — and
/// only if that commit succeeds.
pub(crate) async fn inbox(store: Arc<dyn ExecutionStore>) {
    let s = store.as_ref();
    assert!(queued_keys(s, "c1").await.is_empty(), "empty inbox");
    // A processed message id is never queued again.
    commit(
        s,
        TurnCommit {
            message_ids: vec![("c1".into(), "m0".into(), T0)],
            ..TurnCommit::default()
        },
        "record m0",
    )
    .await;
    let first = ok(
        s.enqueue(vec![
            inbound_message("c1", "m1", 1, 1),
            inbound_message("c2", "m1", 2, 2),
            inbound_message("c1", "m0", 3, 3),
            inbound_message("c1", "m2", 4, 4),
            inbound_message("c1", "m1", 5, 5),
            inbound_status("c1", "wamid.1", "delivered", 6),
        ])
        .await,
        "enqueue",
    );
    assert_eq!(first.len(), 6, "one answer per item");
    let seqs: Vec<u64> = first
        .iter()
        .filter_map(|e| match e {
            Enqueued::Queued(s) => Some(*s),
            Enqueued::Duplicate => None,
        })
        .collect();
    assert_eq!(
        first
            .iter()
            .map(|e| matches!(e, Enqueued::Queued(_)))
            .collect::<Vec<_>>(),
        [true, true, false, true, false, true],
        "m0 was processed and m1 is already queued for c1 (another conversation may reuse an id): {first:?}"
    );
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "sequence numbers grow in arrival order: {seqs:?}"
    );
    // A later call deduplicates against what is queued too.
    let again = ok(
        s.enqueue(vec![
            inbound_message("c1", "m2", 7, 7),
            inbound_status("c1", "wamid.1", "delivered", 8),
            inbound_status("c1", "wamid.1", "read", 9),
        ])
        .await,
        "enqueue again",
    );
    assert!(
        matches!(
            again[..],
            [
                Enqueued::Duplicate,
                Enqueued::Duplicate,
                Enqueued::Queued(_)
            ]
        ),
        "{again:?}"
    );
    let queued = ok(s.queued("c1").await, "queued c1");
    assert_eq!(
        queued.iter().map(|q| q.key.as_str()).collect::<Vec<_>>(),
        ["m1", "m2", "wamid.1:delivered", "wamid.1:read"],
        "arrival order"
    );
    let first_item = &queued[0];
    assert_eq!(first_item.conversation_id, "c1");
    assert_eq!(first_item.received_at, Timestamp(T0.0 + 1));
    assert_eq!(first_item.due_at, Timestamp(T0.0 + 1));
    assert_eq!(
        &first_item.item,
        &inbound_message("c1", "m1", 1, 1).item,
        "items round-trip"
    );
    assert_eq!(
        &queued[2].item,
        &inbound_status("c1", "wamid.1", "delivered", 6).item,
        "statuses round-trip"
    );
    // A failing commit consumes nothing.
    let conv = conversation("c1");
    commit(
        s,
        TurnCommit {
            conversations: vec![conv.clone()],
            ..TurnCommit::default()
        },
        "create c1",
    )
    .await;
    conflict(
        s.commit(TurnCommit {
            conversations: vec![conv.clone()],
            consumed: vec![queued[0].seq, queued[1].seq],
            ..TurnCommit::default()
        })
        .await,
        "stale commit consuming items",
    );
    assert_eq!(queued_keys(s, "c1").await.len(), 4, "nothing consumed");
    commit(
        s,
        TurnCommit {
            conversations: vec![with_version(&conv, |c| c.version = 1)],
            consumed: vec![queued[0].seq, queued[2].seq],
            ..TurnCommit::default()
        },
        "consume m1 and a status",
    )
    .await;
    assert_eq!(
        queued_keys(s, "c1").await,
        ["m2", "wamid.1:read"],
        "consumed items are gone, the rest keep their order"
    );
    assert_eq!(
        queued_keys(s, "c2").await,
        ["m1"],
        "other conversations untouched"
    );
}

/// An outbox record of a text message of `execution_id` (conversation `c1`, node `ask`) in
/// `state`, created at [`T0`].
pub fn record(id: &str, execution_id: &str, state: OutboxState) -> OutboxRecord {
    OutboxRecord {
        id: id.to_owned(),
        conversation_id: "c1".into(),
        execution_id: execution_id.to_owned(),
        node_id: "ask".into(),
        effect: Effect::Message(OutboundMessage {
            from: "pn".into(),
            to: "+14155550100".into(),
            execution_id: execution_id.to_owned(),
            node_id: "ask".into(),
            body: OutboundBody::Text {
                text: "Hola, ¿qué tal? ✓".into(),
            },
            reference: None,
        }),
        state,
        not_before: None,
        statuses: Vec::new(),
        created_at: T0,
    }
}

async fn outbox_ids(s: &dyn ExecutionStore, q: OutboxQuery) -> Vec<String> {
    ok(s.outbox(&q).await, "outbox")
        .into_iter()
        .map(|r| r.id)
        .collect()
}

/// The outbox: records written by commits (replaced by id), found by id, by execution in
/// creation order and by WhatsApp id once sent; a conflicting commit writes none.
pub(crate) async fn outbox(store: Arc<dyn ExecutionStore>) {
    let s = store.as_ref();
    assert!(
        outbox_ids(s, OutboxQuery::Id("ex_1.1".into()))
            .await
            .is_empty()
    );
    let sending = record("ex_1.1", "ex_1", OutboxState::Sending { since: T0 });
    let mut scheduled = record("ex_1.2", "ex_1", OutboxState::Scheduled);
    scheduled.not_before = Some(Timestamp(T0.0 + 4_000));
    scheduled.effect = Effect::ProjectEvent(ProjectEvent {
        event_name: "order_paid".into(),
        properties: json!({"total": 12.5}),
        occurred_at: "2026-01-05T10:00:00Z".into(),
        execution_id: "ex_1".into(),
        flow_id: "f".into(),
    });
    commit(
        s,
        TurnCommit {
            outbox: vec![
                sending.clone(),
                scheduled.clone(),
                record("ex_2.1", "ex_2", OutboxState::Scheduled),
            ],
            ..TurnCommit::default()
        },
        "write records",
    )
    .await;
    let got = ok(s.outbox(&OutboxQuery::Id("ex_1.1".into())).await, "by id");
    stored(got.into_iter().next(), &sending, "record ex_1.1");
    let got = ok(s.outbox(&OutboxQuery::Id("ex_1.2".into())).await, "by id");
    stored(got.into_iter().next(), &scheduled, "record ex_1.2");
    assert_eq!(
        outbox_ids(s, OutboxQuery::Execution("ex_1".into())).await,
        ["ex_1.1", "ex_1.2"],
        "an execution's records in creation order"
    );
    assert!(
        outbox_ids(s, OutboxQuery::WhatsappId("wamid.A".into()))
            .await
            .is_empty(),
        "not sent yet"
    );
    // Replaced by id: sent, with statuses; the creation order stays.
    let mut sent = record(
        "ex_1.1",
        "ex_1",
        OutboxState::Sent {
            at: Timestamp(T0.0 + 10),
            whatsapp_id: Some("wamid.A".into()),
        },
    );
    sent.statuses.push(StatusRecord {
        status: "delivered".into(),
        at: Timestamp(T0.0 + 20),
        errors: Vec::new(),
    });
    commit(
        s,
        TurnCommit {
            outbox: vec![sent.clone()],
            ..TurnCommit::default()
        },
        "mark sent",
    )
    .await;
    let got = ok(
        s.outbox(&OutboxQuery::WhatsappId("wamid.A".into())).await,
        "by wamid",
    );
    stored(got.into_iter().next(), &sent, "record by WhatsApp id");
    assert_eq!(
        outbox_ids(s, OutboxQuery::Execution("ex_1".into())).await,
        ["ex_1.1", "ex_1.2"],
        "replacing keeps the creation order"
    );
    // A conflicting commit writes no record.
    let conv = conversation("c1");
    commit(
        s,
        TurnCommit {
            conversations: vec![conv.clone()],
            ..TurnCommit::default()
        },
        "create c1",
    )
    .await;
    conflict(
        s.commit(TurnCommit {
            conversations: vec![conv],
            outbox: vec![record("ex_1.3", "ex_1", OutboxState::Scheduled)],
            ..TurnCommit::default()
        })
        .await,
        "stale commit with a record",
    );
    assert!(
        outbox_ids(s, OutboxQuery::Id("ex_1.3".into()))
            .await
            .is_empty(),
        "a conflicting commit writes no outbox record"
    );
}

/// An execution of `conv` that is `running` with a pending effect due at `due_ms`.
fn with_effect(id: &str, conv: &str, due_ms: i64) -> Execution {
    let mut e = execution(id, conv);
    e.status = Status::Running;
    e.waiting_reason = None;
    e.timer = None;
    e.pending_effect = Some(PendingEffect {
        outbox_id: format!("{id}.1"),
        node_id: "ask".into(),
        kind: EffectKind::Send,
        action: "send_text".into(),
        due_at: Timestamp(T0.0 + due_ms),
        tool_call_id: None,
    });
    e
}

async fn due_conversations(
    s: &dyn ExecutionStore,
    now_ms: i64,
    limit: usize,
) -> Vec<(String, i64)> {
    ok(
        s.due_work(Timestamp(T0.0 + now_ms), limit).await,
        "due work",
    )
    .into_iter()
    .map(|d| (d.conversation_id, d.due_at.0 - T0.0))
    .collect()
}

/// Due work: queued statuses at once, queued messages once the latest is due and no execution
/// of the conversation has a pending effect, pending effects and wait timeouts when due; leased
/// conversations left out until the lease expires; earliest first, at most `limit`.
pub(crate) async fn due_work(store: Arc<dyn ExecutionStore>) {
    let s = store.as_ref();
    assert!(
        due_conversations(s, 1_000_000, 10).await.is_empty(),
        "nothing due"
    );
    ok(
        s.enqueue(vec![
            // c-msg: a debounced batch, due when its latest message is (at 300).
            inbound_message("c-msg", "a", 10, 200),
            inbound_message("c-msg", "b", 20, 300),
            // c-status: a status is due at once.
            inbound_status("c-status", "wamid.9", "read", 50),
            // c-blocked: its execution has a pending effect due at 900: messages wait.
            inbound_message("c-blocked", "x", 5, 5),
        ])
        .await,
        "enqueue",
    );
    commit(
        s,
        TurnCommit {
            executions: vec![
                with_effect("ex_blocked", "c-blocked", 900),
                waiting("ex_timer", Some(400)),
                with_effect("ex_effect", "c-effect", 100),
            ],
            ..TurnCommit::default()
        },
        "executions",
    )
    .await;
    assert_eq!(
        due_conversations(s, 250, 10).await,
        [("c-status".to_owned(), 50), ("c-effect".to_owned(), 100)],
        "at 250: the status and the effect; the batch waits for its latest message"
    );
    assert_eq!(
        due_conversations(s, 500, 10).await,
        [
            ("c-msg".to_owned(), 10),
            ("c-status".to_owned(), 50),
            ("c-effect".to_owned(), 100),
            ("conv-ex_timer".to_owned(), 400),
        ],
        "at 500: the batch, the status, the effect and the timer, earliest first"
    );
    assert_eq!(
        due_conversations(s, 500, 2).await.len(),
        2,
        "at most limit conversations"
    );
    let due = due_conversations(s, 1_000, 10).await;
    assert!(
        due.contains(&("c-blocked".to_owned(), 900)),
        "at 1000 the blocking effect is due; its waiting message does not count: {due:?}"
    );
    // A lease hides its conversation until it expires.
    assert!(ok(
        s.acquire_lease("c-msg", "w1", Timestamp(T0.0 + 500), 1_000)
            .await,
        "lease"
    ));
    let due = due_conversations(s, 600, 10).await;
    assert!(!due.iter().any(|(c, _)| c == "c-msg"), "leased: {due:?}");
    let due = due_conversations(s, 1_600, 10).await;
    assert!(
        due.iter().any(|(c, _)| c == "c-msg"),
        "lease expired: {due:?}"
    );
    // Settling the effect (the execution no longer pending) unblocks the messages.
    let blocked = ok(s.execution("ex_blocked").await, "load").expect("stored");
    let mut settled = blocked.clone();
    settled.pending_effect = None;
    settled.status = Status::Waiting;
    settled.waiting_reason = Some(WaitingReason::WaitForResponse);
    commit(
        s,
        TurnCommit {
            executions: vec![settled],
            ..TurnCommit::default()
        },
        "settle",
    )
    .await;
    let due = due_conversations(s, 10, 10).await;
    assert_eq!(
        due.first(),
        Some(&("c-blocked".to_owned(), 5)),
        "once no effect is pending, the waiting message is due: {due:?}"
    );
}

/// Leases: one owner at a time; renewable by its owner; taken over once expired; released only
/// by its owner.
pub(crate) async fn leases(store: Arc<dyn ExecutionStore>) {
    let s = store.as_ref();
    let at = |ms: i64| Timestamp(T0.0 + ms);
    assert!(ok(s.acquire_lease("c1", "w1", at(0), 1_000).await, "free"));
    assert!(!ok(
        s.acquire_lease("c1", "w2", at(10), 1_000).await,
        "held"
    ));
    assert!(ok(
        s.acquire_lease("c2", "w2", at(10), 1_000).await,
        "other conversation"
    ));
    assert!(ok(
        s.acquire_lease("c1", "w1", at(900), 1_000).await,
        "renewed by its owner"
    ));
    assert!(
        !ok(
            s.acquire_lease("c1", "w2", at(1_500), 1_000).await,
            "renewal moved the expiry"
        ),
        "held until 1900"
    );
    assert!(ok(
        s.acquire_lease("c1", "w2", at(1_900), 1_000).await,
        "expired: taken over"
    ));
    ok(
        s.release_lease("c1", "w1").await,
        "release by a former owner",
    );
    assert!(
        !ok(
            s.acquire_lease("c1", "w1", at(2_000), 1_000).await,
            "w2 still holds it"
        ),
        "a former owner's release changes nothing"
    );
    ok(s.release_lease("c1", "w2").await, "release by the owner");
    assert!(ok(
        s.acquire_lease("c1", "w3", at(2_000), 1_000).await,
        "released: free"
    ));
}

pub(crate) async fn key_value(store: Arc<dyn ExecutionStore>) {
    use switchboard_runtime::store::{KV_MAX_KEY_BYTES, KV_MAX_KEYS, KV_MAX_VALUE_BYTES};
    let s = store.as_ref();
    let limit = |r: Result<(), StoreError>, what: &str| match r {
        Err(StoreError::Limit(m)) => m,
        Err(e) => panic!("{what}: expected a limit error, got the error {e}"),
        Ok(()) => panic!("{what}: expected a limit error, the put succeeded"),
    };
    assert_eq!(ok(s.kv_get("fn-a", "count").await, "get absent"), None);
    ok(s.kv_put("fn-a", "count", "1").await, "put");
    ok(s.kv_put("fn-a", "count", "2").await, "put again");
    assert_eq!(
        ok(s.kv_get("fn-a", "count").await, "get").as_deref(),
        Some("2"),
        "a put replaces the value"
    );
    assert_eq!(
        ok(s.kv_get("fn-b", "count").await, "other namespace"),
        None,
        "namespaces are apart"
    );
    let text = "línea 1\nnull \u{0} «ü» 🦀 {\"json\": [1, 2]}";
    ok(s.kv_put("fn-a", "ключ/🔑", text).await, "unicode");
    assert_eq!(
        ok(s.kv_get("fn-a", "ключ/🔑").await, "unicode back").as_deref(),
        Some(text)
    );
    ok(s.kv_put("fn-a", "empty", "").await, "empty value");
    assert_eq!(
        ok(s.kv_get("fn-a", "empty").await, "empty back").as_deref(),
        Some(""),
        "an empty value is a value"
    );
    for k in ["user:2", "user:10", "user:1", "users", "user", "order:1"] {
        ok(s.kv_put("fn-b", k, k).await, "listing data");
    }
    assert_eq!(
        ok(s.kv_list("fn-b", "user:", 100).await, "list by prefix"),
        ["user:1", "user:10", "user:2"],
        "keys starting with the prefix, in byte order"
    );
    assert_eq!(
        ok(s.kv_list("fn-b", "user", 100).await, "list"),
        ["user", "user:1", "user:10", "user:2", "users"]
    );
    assert_eq!(
        ok(s.kv_list("fn-b", "", 2).await, "list with a limit"),
        ["order:1", "user"],
        "at most `limit` keys, from the first"
    );
    assert!(ok(s.kv_list("fn-c", "", 10).await, "empty namespace").is_empty());
    ok(s.kv_delete("fn-b", "user:10").await, "delete");
    ok(s.kv_delete("fn-b", "never-there").await, "delete absent");
    assert_eq!(ok(s.kv_get("fn-b", "user:10").await, "deleted"), None);
    assert_eq!(
        ok(s.kv_list("fn-b", "user:", 100).await, "after delete"),
        ["user:1", "user:2"]
    );

    // Limits, each refused changing nothing.
    limit(s.kv_put("fn-a", "", "v").await, "empty key");
    let long_key = "k".repeat(KV_MAX_KEY_BYTES + 1);
    limit(s.kv_put("fn-a", &long_key, "v").await, "key too long");
    ok(
        s.kv_put("fn-a", &"k".repeat(KV_MAX_KEY_BYTES), "v").await,
        "key at the limit",
    );
    let big = "v".repeat(KV_MAX_VALUE_BYTES + 1);
    let message = limit(s.kv_put("fn-a", "count", &big).await, "value too large");
    assert!(
        !message.contains("vvvv"),
        "the message shows no value: {message}"
    );
    assert_eq!(
        ok(s.kv_get("fn-a", "count").await, "after a refused put").as_deref(),
        Some("2"),
        "a refused put changes nothing"
    );
    ok(
        s.kv_put("fn-a", "count", &"v".repeat(KV_MAX_VALUE_BYTES))
            .await,
        "value at the limit",
    );
    assert_eq!(
        ok(s.kv_get("fn-a", "count").await, "large value").map(|v| v.len()),
        Some(KV_MAX_VALUE_BYTES)
    );
    let keys: Vec<String> = (0..KV_MAX_KEYS).map(|i| format!("k{i:05}")).collect();
    let mut tasks = Vec::new();
    for chunk in keys.chunks(KV_MAX_KEYS / 4) {
        let store = Arc::clone(&store);
        let chunk = chunk.to_vec();
        tasks.push(tokio::spawn(async move {
            for k in chunk {
                ok(store.kv_put("full", &k, "x").await, "concurrent puts");
            }
        }));
    }
    for t in tasks {
        t.await.expect("a put task panicked");
    }
    assert_eq!(
        ok(s.kv_list("full", "", KV_MAX_KEYS + 10).await, "full list").len(),
        KV_MAX_KEYS,
        "every concurrent put of a distinct key lands"
    );
    limit(
        s.kv_put("full", "one-more", "x").await,
        "a new key in a full namespace",
    );
    assert_eq!(ok(s.kv_get("full", "one-more").await, "refused key"), None);
    ok(
        s.kv_put("full", "k00000", "replaced").await,
        "replacing in a full namespace",
    );
    ok(s.kv_delete("full", "k00001").await, "making room");
    ok(
        s.kv_put("full", "one-more", "x").await,
        "a new key once there is room",
    );
}

fn claimed_keys(c: &Claimed) -> Vec<String> {
    match c {
        Claimed::Work(w) => w.queued.iter().map(|q| q.key.clone()).collect(),
        other => panic!("expected work, got {other:?}"),
    }
}

/// Claims: nothing due is `Idle` (and lets the caller's lease go); due work takes the lease
/// and returns the queued items in order with the conversation and its active execution;
/// another owner's live lease is `Busy` until it expires; the rule of what is due matches
/// `due_work` (debounced messages, pending effects, timers).
pub(crate) async fn claims(store: Arc<dyn ExecutionStore>) {
    let s = store.as_ref();
    let at = |ms: i64| Timestamp(T0.0 + ms);
    assert_eq!(
        ok(s.claim("c1", "w1", at(0), 1_000).await, "claim"),
        Claimed::Idle,
        "an unknown conversation has nothing due"
    );
    assert!(
        ok(s.acquire_lease("c1", "w2", at(0), 1_000).await, "lease"),
        "an idle claim took no lease"
    );
    ok(s.release_lease("c1", "w2").await, "release");

    // A conversation with an active execution waiting on a timer due at 400, and two
    // debounced messages due at 300.
    let mut conv = conversation("c1");
    conv.active_execution_id = Some("ex_c1".into());
    let mut exec = waiting("ex_c1", Some(400));
    exec.conversation_id = "c1".into();
    commit(
        s,
        TurnCommit {
            conversations: vec![conv.clone()],
            executions: vec![exec.clone()],
            ..TurnCommit::default()
        },
        "conversation",
    )
    .await;
    ok(
        s.enqueue(vec![
            inbound_message("c1", "a", 10, 200),
            inbound_message("c1", "b", 20, 300),
        ])
        .await,
        "enqueue",
    );
    assert_eq!(
        ok(s.claim("c1", "w1", at(250), 1_000).await, "claim"),
        Claimed::Idle,
        "the batch is not due before its latest message"
    );
    let claimed = ok(s.claim("c1", "w1", at(350), 1_000).await, "claim");
    assert_eq!(claimed_keys(&claimed), ["a", "b"], "in arrival order");
    let Claimed::Work(work) = &claimed else {
        unreachable!()
    };
    assert_eq!(
        work.conversation.as_ref().map(|c| (&c.id, c.version)),
        Some((&conv.id, 1)),
        "the conversation, with its stored version"
    );
    assert_eq!(
        work.active.as_ref().map(|e| (&e.id, e.version)),
        Some((&exec.id, 1)),
        "the active execution, with its stored version"
    );
    assert!(work.is_due(at(350)));
    assert_eq!(
        ok(s.claim("c1", "w2", at(400), 1_000).await, "claim"),
        Claimed::Busy,
        "w1's lease is live"
    );
    assert!(
        !ok(s.acquire_lease("c1", "w2", at(400), 1_000).await, "lease"),
        "the claim took the lease for w1"
    );
    assert!(
        matches!(
            ok(s.claim("c1", "w1", at(900), 1_000).await, "claim"),
            Claimed::Work(_)
        ),
        "renewed by its owner"
    );
    assert!(
        matches!(
            ok(s.claim("c1", "w2", at(2_000), 1_000).await, "claim"),
            Claimed::Work(_)
        ),
        "expired: taken over"
    );

    // Consumed messages leave the timer: due at 400, so still work at 2000.
    let queued = ok(s.queued("c1").await, "queued");
    commit(
        s,
        TurnCommit {
            consumed: queued.iter().map(|q| q.seq).collect(),
            ..TurnCommit::default()
        },
        "consume",
    )
    .await;
    let claimed = ok(s.claim("c1", "w2", at(2_000), 1_000).await, "claim");
    assert!(
        claimed_keys(&claimed).is_empty(),
        "the timer is due: {claimed:?}"
    );
    // Without the timer nothing is due: the claim lets w2's lease go.
    let mut calm = ok(s.execution("ex_c1").await, "load").expect("stored");
    calm.timer = None;
    commit(
        s,
        TurnCommit {
            executions: vec![calm],
            ..TurnCommit::default()
        },
        "no timer",
    )
    .await;
    assert_eq!(
        ok(s.claim("c1", "w2", at(2_100), 1_000).await, "claim"),
        Claimed::Idle
    );
    assert!(
        ok(s.acquire_lease("c1", "w3", at(2_100), 1_000).await, "lease"),
        "the idle claim let w2's lease go"
    );
    ok(s.release_lease("c1", "w3").await, "release");

    // A pending effect holds messages back until it is due; a status is due at once.
    let mut conv2 = conversation("c2");
    conv2.active_execution_id = Some("ex_c2".into());
    commit(
        s,
        TurnCommit {
            conversations: vec![conv2],
            executions: vec![with_effect("ex_c2", "c2", 5_000)],
            ..TurnCommit::default()
        },
        "effect",
    )
    .await;
    ok(
        s.enqueue(vec![inbound_message("c2", "m", 10, 10)]).await,
        "enqueue",
    );
    assert_eq!(
        ok(s.claim("c2", "w1", at(3_000), 1_000).await, "claim"),
        Claimed::Idle,
        "the message waits for the pending effect"
    );
    assert_eq!(
        claimed_keys(&ok(s.claim("c2", "w1", at(5_000), 1_000).await, "claim")),
        ["m"],
        "the effect is due: work (with the waiting message)"
    );
    ok(s.release_lease("c2", "w1").await, "release");
    ok(
        s.enqueue(vec![inbound_status("c2", "wamid.1", "read", 3_000)])
            .await,
        "status",
    );
    assert!(
        matches!(
            ok(s.claim("c2", "w1", at(3_000), 1_000).await, "claim"),
            Claimed::Work(_)
        ),
        "a status is due at once"
    );
    ok(s.release_lease("c2", "w1").await, "release");

    // A message queued again after its id was processed (a redelivery racing its first copy's
    // commit) is reported apart, to be removed without a turn.
    ok(
        s.enqueue(vec![
            inbound_message("c3", "again", 10, 10),
            inbound_message("c3", "fresh", 20, 20),
        ])
        .await,
        "enqueue",
    );
    commit(
        s,
        TurnCommit {
            message_ids: vec![("c3".into(), "again".into(), at(15))],
            ..TurnCommit::default()
        },
        "the first copy's commit",
    )
    .await;
    let claimed = ok(s.claim("c3", "w1", at(100), 1_000).await, "claim");
    let Claimed::Work(work) = &claimed else {
        panic!("work is due: {claimed:?}")
    };
    let queued: Vec<&str> = work.queued.iter().map(|q| q.key.as_str()).collect();
    assert_eq!(queued, ["fresh"], "only the unprocessed message is queued");
    assert_eq!(work.processed.len(), 1, "the processed one is set apart");
}
