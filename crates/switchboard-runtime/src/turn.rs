//! One turn: the work caused by one input (runtime-semantics §6, §7).
//!
//! A [`Turn`] holds the conversation and the executions it touches, runs nodes one after another
//! until every execution waits, hands off, ends or fails, collects the events, and commits it
//! all at once. Side effects go through the adapters as the nodes run.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};
use switchboard_model::config::{
    BuiltinTool, DecisionType, DeliveryMode, FlowAction, HeaderType, InteractiveType, NodeConfig,
    Sender, TextField, ValueType,
};
use switchboard_model::{NodeKind, is_http_url};

use crate::adapters::{
    AdapterError, ChatRequest, Choice, Cta, FlowParameters, FunctionCall, HttpRequest, Interactive,
    InteractiveHeader, ListSection, OutboundBody, OutboundMessage, ProjectEvent, Purpose,
};
use crate::engine::{CompiledFlow, Dispatch, Engine, EngineConfig, InboundMessage, Inner};
use crate::error::{EngineError, StoreError};
use crate::event::{Event, EventType};
use crate::state::{
    AgentState, ChatMessage, Conversation, Direction, Execution, HistoryMessage, LastResume,
    Object, Status, Timer, TriggerType, WaitingReason,
};
use crate::store::TurnCommit;
use crate::template::{Mode, Rendered, Scope, TemplateError};
use crate::time::Timestamp;

/// A failure (runtime-semantics §6).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Failure {
    pub kind: String,
    pub message: String,
    pub status: Option<u16>,
}

impl Failure {
    pub fn new(kind: &str, message: impl Into<String>) -> Failure {
        Failure {
            kind: kind.to_owned(),
            message: message.into(),
            status: None,
        }
    }

    /// `{kind, message, status?}` (`status` only for `http_status`).
    fn summary(&self) -> Value {
        let mut m = Map::new();
        m.insert("kind".into(), Value::String(self.kind.clone()));
        m.insert("message".into(), Value::String(self.message.clone()));
        if let Some(s) = self.status {
            m.insert("status".into(), json!(s));
        }
        Value::Object(m)
    }

    fn object(&self, node_id: &str) -> Value {
        let mut m = Map::new();
        m.insert("kind".into(), Value::String(self.kind.clone()));
        m.insert("message".into(), Value::String(self.message.clone()));
        if let Some(s) = self.status {
            m.insert("status".into(), json!(s));
        }
        m.insert("node_id".into(), Value::String(node_id.to_owned()));
        Value::Object(m)
    }
}

impl From<AdapterError> for Failure {
    fn from(e: AdapterError) -> Self {
        Failure {
            kind: e.kind,
            message: e.message,
            status: e.status,
        }
    }
}

impl From<TemplateError> for Failure {
    fn from(e: TemplateError) -> Self {
        Failure::new(e.kind, e.message)
    }
}

/// What a node asks the loop to do next.
pub(crate) enum Step {
    /// Follow the single non-error edge.
    Next,
    /// Follow this edge (decide).
    Edge(Option<usize>, String),
    /// The execution now waits or is in handoff: stop running it.
    Stop,
    /// End the execution.
    End(&'static str),
    /// The node failed.
    Fail(Failure),
    /// A child execution was started and is running/waiting; the parent waits.
    Child(usize),
}

/// Input delivered to a waiting execution.
pub(crate) enum Input {
    /// A user turn: texts joined, ids, the last interactive reply.
    User {
        text: Value,
        message_ids: Vec<String>,
        reply: Value,
    },
    /// An API resume without a message.
    Api,
}

pub(crate) struct Turn<'e> {
    engine: &'e Engine,
    inner: &'e Inner,
    now: Timestamp,
    pub conv: Conversation,
    execs: Vec<Execution>,
    events: Vec<Event>,
    message_ids: Vec<(String, String, Timestamp)>,
    pub idempotency: Option<(String, Value, Timestamp)>,
    steps: i64,
    /// Parents whose `call` node is starting a child right now: a child that finishes
    /// synchronously must not resume them (the call node itself continues).
    calling: Vec<usize>,
    /// The id the next `start` uses (a child's id is known before it runs).
    next_id: Option<String>,
}

/// `system` (derived from the execution, never stored separately).
pub(crate) fn system_namespace(e: &Execution, config: &EngineConfig) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("trigger_type".into(), json!(e.trigger_type.as_str()));
    m.insert("flow_id".into(), json!(e.flow_id));
    m.insert("workflow_id".into(), json!(e.flow_id));
    m.insert("flow_name".into(), json!(e.flow_name));
    m.insert("execution_id".into(), json!(e.id));
    m.insert("tracking_id".into(), json!(e.tracking_id));
    m.insert("started_at".into(), json!(e.started_at.rfc3339()));
    if let Some(r) = &e.last_resume {
        m.insert(
            "last_resume".into(),
            json!({"reason": r.reason, "at": r.at.rfc3339()}),
        );
    }
    if let Some(p) = &e.parent_execution_id {
        m.insert("parent_execution_id".into(), json!(p));
        m.insert("call_depth".into(), json!(e.call_depth));
    }
    let pnid = e
        .context
        .get("phone_number_id")
        .and_then(Value::as_str)
        .unwrap_or(&config.default_phone_number_id);
    m.insert(
        "whatsapp_config".into(),
        json!({"phone_number_id": pnid, "display_phone_number": config.display_phone_number}),
    );
    m.insert("observer_mode".into(), json!(false));
    m.insert("allow_outbound".into(), json!(true));
    m
}

const NAMESPACES: &[&str] = &["vars", "system", "context", "metadata"];
const MAX_DEPTH: u32 = 10;

impl<'e> Turn<'e> {
    pub fn new(engine: &'e Engine, conv: Conversation, now: Timestamp) -> Turn<'e> {
        Turn {
            engine,
            inner: &engine.inner,
            now,
            conv,
            execs: Vec::new(),
            events: Vec::new(),
            message_ids: Vec::new(),
            idempotency: None,
            steps: 0,
            calling: Vec::new(),
            next_id: None,
        }
    }

    pub fn execution(&self, id: &str) -> Option<&Execution> {
        self.execs.iter().find(|e| e.id == id)
    }

    /// Commits everything the turn changed.
    ///
    /// Logs (with `tracing`, after redaction, so no secret reaches a log): one `debug` record
    /// per execution the turn touched, and one `warn` record per failure event.
    pub async fn commit(mut self) -> Result<(), EngineError> {
        self.redact_all();
        self.log();
        let commit = TurnCommit {
            conversations: vec![self.conv],
            executions: self.execs,
            events: self.events,
            message_ids: self.message_ids,
            idempotency: self.idempotency,
        };
        self.inner.store.commit(commit).await.map_err(|e| match e {
            StoreError::Conflict(m) => EngineError::Conflict(m),
            other => EngineError::Store(other),
        })
    }

    /// The turn's log records; called after [`Turn::redact_all`], so they carry only redacted
    /// data (and never message text: a failure's payload is its error).
    fn log(&self) {
        for ev in &self.events {
            if matches!(
                ev.event_type,
                EventType::ExecutionFailed | EventType::StepFailed | EventType::ActionFailed
            ) {
                tracing::warn!(
                    execution_id = %ev.execution_id,
                    node_id = ev.node_id.as_deref().unwrap_or(""),
                    event = ev.event_type.as_str(),
                    error = %ev.payload.get("error").unwrap_or(&ev.payload),
                    "flow failure"
                );
            }
        }
        for e in &self.execs {
            tracing::debug!(
                execution_id = %e.id,
                flow_id = %e.flow_id,
                conversation_id = %self.conv.id,
                status = e.status.as_str(),
                events = self.events.iter().filter(|ev| ev.execution_id == e.id).count(),
                "turn committed"
            );
        }
    }

    async fn exec_index(&mut self, id: &str) -> Result<usize, EngineError> {
        if let Some(i) = self.execs.iter().position(|e| e.id == id) {
            return Ok(i);
        }
        let e = self.engine.load_execution(id).await?;
        self.execs.push(e);
        Ok(self.execs.len() - 1)
    }

    fn flow_of(&self, xi: usize) -> Result<Arc<CompiledFlow>, EngineError> {
        let e = &self.execs[xi];
        self.engine
            .flow(&e.flow_id)
            .ok_or_else(|| EngineError::NotFound(format!("flow `{}`", e.flow_id)))
    }

    // --- events ------------------------------------------------------------------------------

    fn emit(
        &mut self,
        xi: usize,
        event_type: EventType,
        node_id: Option<&str>,
        edge_label: Option<&str>,
        payload: Value,
    ) {
        let e = &mut self.execs[xi];
        e.event_seq += 1;
        e.last_event_at = self.now;
        self.events.push(Event {
            id: format!("{}:{}", e.id, e.event_seq),
            execution_id: e.id.clone(),
            seq: e.event_seq,
            event_type,
            created_at: self.now,
            node_id: node_id.map(str::to_owned),
            edge_label: edge_label.map(str::to_owned),
            payload,
        });
    }

    fn change_status(&mut self, xi: usize, to: Status, cause: &str) {
        let from = self.execs[xi].status;
        if from == to {
            return;
        }
        self.execs[xi].status = to;
        if to != Status::Waiting {
            self.execs[xi].waiting_reason = None;
        }
        if matches!(to, Status::Handoff | Status::Ended | Status::Failed) {
            self.execs[xi].timer = None;
        }
        if to.is_terminal() {
            self.execs[xi].ended_at = Some(self.now);
            self.execs[xi].agent = None;
        }
        self.emit(
            xi,
            EventType::StatusChanged,
            None,
            None,
            json!({"from": from.as_str(), "to": to.as_str(), "cause": cause}),
        );
    }

    fn set_var(&mut self, xi: usize, source: &str, name: &str, value: Value) {
        self.merge_vars(xi, source, vec![(name.to_owned(), value)]);
    }

    /// Shallow merge into `vars`, recording `variables_set`; namespace names are rejected.
    fn merge_vars(&mut self, xi: usize, source: &str, pairs: Vec<(String, Value)>) {
        let mut changes = Vec::new();
        let mut rejected = Vec::new();
        for (name, value) in pairs {
            if NAMESPACES.contains(&name.as_str()) {
                rejected.push(Value::String(name));
                continue;
            }
            let old = self.execs[xi].vars.insert(name.clone(), value.clone());
            changes.push(json!({"name": name, "old": old, "new": value}));
        }
        if changes.is_empty() && rejected.is_empty() {
            return;
        }
        self.emit(
            xi,
            EventType::VariablesSet,
            None,
            None,
            json!({"source": source, "changes": changes, "rejected": rejected}),
        );
    }

    // --- starting ----------------------------------------------------------------------------

    /// Creates and runs a new execution. `parent`: (parent index, call stack) for `call`.
    pub async fn start(
        &mut self,
        flow: &Arc<CompiledFlow>,
        trigger: TriggerType,
        variables: Object,
        extra_context: Object,
        request: Option<Value>,
        parent: Option<(usize, Vec<String>)>,
    ) -> Result<String, EngineError> {
        let ids = &self.inner.adapters.ids;
        let id = self.next_id.take().unwrap_or_else(|| ids.next("ex"));
        let mut context = Object::new();
        let mut dropped = Vec::new();
        let mut metadata = Object::new();
        let (vars, call_stack, depth, parent_id, tracking_id) = match &parent {
            Some((pi, stack)) => {
                let p = &self.execs[*pi];
                context = p.context.clone();
                metadata = p.metadata.clone();
                (
                    p.vars.clone(),
                    stack.clone(),
                    p.call_depth + 1,
                    Some(p.id.clone()),
                    p.tracking_id.clone(),
                )
            }
            None => {
                context.insert(
                    "channel".into(),
                    json!(if trigger == TriggerType::ApiCall {
                        "api"
                    } else {
                        "whatsapp"
                    }),
                );
                context.insert("phone_number".into(), json!(self.conv.phone_number));
                context.insert("conversation_id".into(), json!(self.conv.id));
                context.insert(
                    "contact".into(),
                    serde_json::to_value(&self.conv.contact).unwrap_or(Value::Null),
                );
                context.insert("phone_number_id".into(), json!(self.conv.phone_number_id));
                for (k, v) in extra_context {
                    if context.contains_key(&k) {
                        dropped.push(k);
                    } else {
                        context.insert(k, v);
                    }
                }
                if let Some(r) = &request {
                    metadata.insert("request".into(), r.clone());
                    if let Some(ip) = r.get("ip") {
                        metadata.insert("request_ip".into(), ip.clone());
                    }
                    if let Some(ts) = r.get("timestamp") {
                        metadata.insert("request_timestamp".into(), ts.clone());
                    }
                }
                (variables, Vec::new(), 0, None, ids.next("tr"))
            }
        };
        let exec = Execution {
            id: id.clone(),
            flow_id: flow.id.clone(),
            flow_name: flow.name.clone(),
            flow_version: flow.version.clone(),
            conversation_id: self.conv.id.clone(),
            status: Status::Running,
            waiting_reason: None,
            current_node_id: None,
            vars,
            context,
            metadata,
            trigger_type: trigger,
            tracking_id,
            parent_execution_id: parent_id.clone(),
            child_execution_id: None,
            call_stack,
            call_depth: depth,
            started_at: self.now,
            last_event_at: self.now,
            ended_at: None,
            last_resume: None,
            error_details: None,
            timer: None,
            activation: 0,
            agent: None,
            emitted: Vec::new(),
            pending_status: None,
            secrets_used: Vec::new(),
            event_seq: 0,
            version: 0,
        };
        self.execs.push(exec);
        let xi = self.execs.len() - 1;
        self.conv.active_execution_id = Some(id.clone());
        let mut payload = json!({"trigger_type": trigger.as_str(), "flow_id": flow.id, "flow_version": flow.version});
        if let Some(p) = &parent_id {
            payload["parent_execution_id"] = json!(p);
        }
        if !dropped.is_empty() {
            payload["dropped_context_keys"] = json!(dropped);
        }
        self.emit(xi, EventType::ExecutionStarted, None, None, payload);
        self.emit(
            xi,
            EventType::StatusChanged,
            None,
            None,
            json!({"from": "new", "to": "running", "cause": "start"}),
        );
        if parent.is_none() {
            self.steps = 0;
        }
        self.run(xi, flow.start).await?;
        Ok(id)
    }

    // --- inbound -----------------------------------------------------------------------------

    pub async fn inbound(&mut self, batch: Vec<InboundMessage>) -> Result<Dispatch, EngineError> {
        let window = self.inner.config.history_window;
        for m in &batch {
            self.message_ids
                .push((self.conv.id.clone(), m.id.clone(), self.now));
            self.conv.record(
                HistoryMessage {
                    id: m.id.clone(),
                    direction: Direction::Inbound,
                    kind: m.kind.clone(),
                    text: m.text.clone(),
                    at: m.timestamp.unwrap_or(self.now),
                },
                window,
            );
        }
        let message_ids: Vec<String> = batch.iter().map(|m| m.id.clone()).collect();
        let text = batch
            .iter()
            .map(|m| m.text.as_str())
            .collect::<Vec<_>>()
            .join("\n");
        let reply = batch.iter().rev().find_map(|m| m.reply.clone()).map_or(
            Value::Null,
            |r| json!({"type": r.kind, "id": r.id, "title": r.title}),
        );
        let input = Input::User {
            text: Value::String(text),
            message_ids: message_ids.clone(),
            reply,
        };

        if let Some(active) = self.conv.active_execution_id.clone() {
            let xi = self.exec_index(&active).await?;
            match (self.execs[xi].status, self.execs[xi].waiting_reason) {
                (Status::Handoff, _) => {
                    self.emit(
                        xi,
                        EventType::InboundIgnored,
                        None,
                        None,
                        json!({"message_ids": message_ids, "reason": "handoff"}),
                    );
                    return Ok(Dispatch::Ignored(active));
                }
                (Status::Waiting, Some(WaitingReason::Call)) => {
                    // Input goes to the innermost execution; a parent on a call never holds it.
                    self.emit(
                        xi,
                        EventType::InboundIgnored,
                        None,
                        None,
                        json!({"message_ids": message_ids, "reason": "call"}),
                    );
                    return Ok(Dispatch::Ignored(active));
                }
                (Status::Waiting, _) => {
                    self.deliver(xi, input).await?;
                    return Ok(Dispatch::Resumed(active));
                }
                _ => {}
            }
        }
        let Some(flow) = self.engine.inbound_trigger(&self.conv.phone_number_id) else {
            return Ok(Dispatch::Dropped);
        };
        // The starting message is the first user turn: its text and reply are the reply
        // variables from the start (a decide right after start can route on them); the first
        // wait then waits for the next message.
        let mut vars = Object::new();
        if let Input::User { text, reply, .. } = input {
            vars.insert("last_user_input".into(), text);
            vars.insert("last_user_reply".into(), reply);
        }
        let id = self
            .start(
                &flow,
                TriggerType::InboundMessage,
                vars,
                Object::new(),
                None,
                None,
            )
            .await?;
        Ok(Dispatch::Started(id))
    }

    /// Delivers input to a waiting execution and runs it.
    async fn deliver(&mut self, xi: usize, input: Input) -> Result<(), EngineError> {
        let flow = self.flow_of(xi)?;
        let Some(node_id) = self.execs[xi].current_node_id.clone() else {
            return Err(EngineError::InvalidRequest(
                "execution has no current node".into(),
            ));
        };
        let Some(ni) = flow.node_index(&node_id) else {
            return Err(EngineError::NotFound(format!("node `{node_id}`")));
        };
        let reason = self.execs[xi].waiting_reason;
        self.steps = 0;
        match reason {
            Some(WaitingReason::WaitForResponse) | Some(WaitingReason::HandoffResumed) => {
                self.execs[xi].timer = None;
                let resume_reason = match &input {
                    Input::User { .. } => "user_input",
                    Input::Api => "api",
                };
                self.execs[xi].last_resume = Some(LastResume {
                    reason: resume_reason.into(),
                    at: self.now,
                });
                match input {
                    Input::User {
                        text,
                        message_ids,
                        reply,
                    } => {
                        self.set_reply_vars(xi, &node_id, &flow, ni, text.clone(), reply.clone());
                        self.emit(
                            xi,
                            EventType::UserInputReceived,
                            Some(&node_id),
                            None,
                            json!({"node_id": node_id, "message_ids": message_ids, "text": text, "reply": reply}),
                        );
                    }
                    Input::Api => {}
                }
                self.execs[xi].waiting_reason = None;
                self.change_status(xi, Status::Running, resume_reason);
                if reason == Some(WaitingReason::HandoffResumed) && flow.next_edge(ni).is_none() {
                    return self.end(xi, "handoff_resumed").await;
                }
                let label = next_label(&flow, ni);
                self.emit(
                    xi,
                    EventType::StepCompleted,
                    Some(&node_id),
                    Some(&label),
                    json!({"node_id": node_id, "edge_label": label}),
                );
                self.advance(xi, &flow, ni).await
            }
            Some(WaitingReason::Agent) => {
                let Input::User {
                    text,
                    message_ids,
                    reply,
                } = input
                else {
                    return Err(EngineError::InvalidRequest(
                        "an agent needs a message to resume".into(),
                    ));
                };
                self.execs[xi].last_resume = Some(LastResume {
                    reason: "user_input".into(),
                    at: self.now,
                });
                self.set_reply_vars(xi, &node_id, &flow, ni, text.clone(), reply.clone());
                self.emit(
                    xi,
                    EventType::UserInputReceived,
                    Some(&node_id),
                    None,
                    json!({"node_id": node_id, "message_ids": message_ids, "text": text, "reply": reply}),
                );
                let user_text = match &text {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                if let Some(a) = &mut self.execs[xi].agent {
                    a.transcript.push(ChatMessage::new("user", user_text));
                }
                self.execs[xi].waiting_reason = None;
                self.change_status(xi, Status::Running, "user_input");
                let step = self.agent_turn(xi, &flow, ni).await;
                self.after_step(xi, &flow, ni, step).await
            }
            Some(WaitingReason::Call) | None => Err(EngineError::InvalidTransition {
                from: self.execs[xi].status,
                message: "the execution is not waiting for input".into(),
            }),
        }
    }

    fn set_reply_vars(
        &mut self,
        xi: usize,
        node_id: &str,
        flow: &CompiledFlow,
        ni: usize,
        text: Value,
        reply: Value,
    ) {
        let mut pairs = vec![
            ("last_user_input".to_owned(), text.clone()),
            ("last_user_reply".to_owned(), reply),
        ];
        if let NodeConfig::WaitForResponse(w) = flow.flow.nodes[ni].config()
            && let Some(name) = &w.save_response_to
        {
            pairs.push((name.clone(), text));
        }
        self.merge_vars(xi, node_id, pairs);
    }

    pub async fn api_resume(
        &mut self,
        exec: Execution,
        message: Option<Value>,
        variables: Object,
    ) -> Result<(), EngineError> {
        let id = exec.id.clone();
        self.execs.push(exec);
        let xi = self.exec_index(&id).await?;
        let e = &self.execs[xi];
        let ok = e.status == Status::Waiting
            && matches!(
                e.waiting_reason,
                Some(
                    WaitingReason::WaitForResponse
                        | WaitingReason::Agent
                        | WaitingReason::HandoffResumed
                )
            );
        if !ok {
            return Err(EngineError::InvalidTransition {
                from: e.status,
                message: format!(
                    "resume needs a waiting execution (reason {:?})",
                    e.waiting_reason.map(WaitingReason::as_str)
                ),
            });
        }
        if !variables.is_empty() {
            self.merge_vars(xi, "api", variables.into_iter().collect());
        }
        let input = match message {
            None => Input::Api,
            Some(m) => {
                let data = m.get("data").cloned().unwrap_or(m);
                Input::User {
                    text: data,
                    message_ids: Vec::new(),
                    reply: Value::Null,
                }
            }
        };
        if matches!(input, Input::Api)
            && self.execs[xi].waiting_reason == Some(WaitingReason::Agent)
        {
            return Err(EngineError::InvalidRequest(
                "resuming an agent needs a message".into(),
            ));
        }
        self.deliver(xi, input).await
    }

    pub async fn timeout(&mut self, exec: Execution) -> Result<bool, EngineError> {
        let id = exec.id.clone();
        self.execs.push(exec);
        let xi = self.exec_index(&id).await?;
        let e = &self.execs[xi];
        // A timer belongs to one activation of its wait node; a stale one is ignored (§7.3).
        let due = e.timer.as_ref().is_some_and(|t| {
            t.due_at <= self.now
                && t.activation == e.activation
                && e.current_node_id.as_deref() == Some(t.node_id.as_str())
        });
        if e.status != Status::Waiting
            || e.waiting_reason != Some(WaitingReason::WaitForResponse)
            || !due
        {
            return Ok(false);
        }
        // Keep the timer for the event payload; deliver clears it.
        let t = self.execs[xi].timer.clone();
        self.deliver_timeout(xi, t).await?;
        Ok(true)
    }

    async fn deliver_timeout(
        &mut self,
        xi: usize,
        timer: Option<Timer>,
    ) -> Result<(), EngineError> {
        let node_id = timer
            .as_ref()
            .map(|t| t.node_id.clone())
            .unwrap_or_default();
        let flow = self.flow_of(xi)?;
        let Some(ni) = flow.node_index(&node_id) else {
            return Ok(());
        };
        self.steps = 0;
        self.execs[xi].timer = None;
        self.execs[xi].last_resume = Some(LastResume {
            reason: "timeout".into(),
            at: self.now,
        });
        let t = timer.map_or(0, |t| t.timeout_seconds);
        self.emit(
            xi,
            EventType::WaitTimeout,
            Some(&node_id),
            None,
            json!({"node_id": node_id, "timeout_seconds": t}),
        );
        self.execs[xi].waiting_reason = None;
        self.change_status(xi, Status::Running, "timeout");
        let label = next_label(&flow, ni);
        self.emit(
            xi,
            EventType::StepCompleted,
            Some(&node_id),
            Some(&label),
            json!({"node_id": node_id, "edge_label": label}),
        );
        self.advance(xi, &flow, ni).await
    }

    pub async fn set_status(&mut self, exec: Execution, to: Status) -> Result<(), EngineError> {
        let id = exec.id.clone();
        self.execs.push(exec);
        let xi = self.exec_index(&id).await?;
        let from = self.execs[xi].status;
        match (from, to) {
            (Status::Running | Status::Waiting, Status::Ended)
            | (Status::Handoff, Status::Ended) => {
                self.end_with(xi, "api").await?;
            }
            (Status::Running | Status::Waiting, Status::Handoff) => {
                self.change_status(xi, Status::Handoff, "api");
                self.emit(
                    xi,
                    EventType::ExecutionHandoff,
                    None,
                    None,
                    json!({"source": "api"}),
                );
            }
            (Status::Handoff, Status::Waiting) => {
                // Operator resume: wait again where automation stopped.
                let flow = self.flow_of(xi)?;
                let node = self.execs[xi].current_node_id.clone().unwrap_or_default();
                let kind = flow
                    .node_index(&node)
                    .and_then(|i| flow.flow.nodes[i].kind());
                let reason = match kind {
                    Some(NodeKind::Agent) => WaitingReason::Agent,
                    Some(NodeKind::WaitForResponse) => WaitingReason::WaitForResponse,
                    _ => WaitingReason::HandoffResumed,
                };
                self.change_status(xi, Status::Waiting, "operator");
                self.execs[xi].waiting_reason = Some(reason);
            }
            _ => {
                return Err(EngineError::InvalidTransition {
                    from,
                    message: format!("cannot change to {}", to.as_str()),
                });
            }
        }
        Ok(())
    }

    pub async fn jump(
        &mut self,
        exec: Execution,
        node_id: &str,
        actor: &str,
    ) -> Result<(), EngineError> {
        let id = exec.id.clone();
        self.execs.push(exec);
        let xi = self.exec_index(&id).await?;
        let from = self.execs[xi].status;
        if !matches!(from, Status::Waiting | Status::Handoff) {
            return Err(EngineError::InvalidTransition {
                from,
                message: "jump needs a waiting or handed-off execution".into(),
            });
        }
        let flow = self.flow_of(xi)?;
        let ni = flow
            .node_index(node_id)
            .ok_or_else(|| EngineError::NotFound(format!("node `{node_id}`")))?;
        let from_node = self.execs[xi].current_node_id.clone();
        self.execs[xi].timer = None;
        self.execs[xi].agent = None;
        self.execs[xi].waiting_reason = None;
        self.emit(
            xi,
            EventType::NodeJumped,
            Some(node_id),
            None,
            json!({"from_node_id": from_node, "to_node_id": node_id, "actor": actor}),
        );
        self.change_status(xi, Status::Running, "operator");
        self.steps = 0;
        self.run(xi, ni).await
    }

    // --- the loop ----------------------------------------------------------------------------

    /// Runs an execution from node `ni` until it stops.
    fn run<'a>(
        &'a mut self,
        xi: usize,
        ni: usize,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), EngineError>> + Send + 'a>>
    {
        Box::pin(async move {
            let flow = self.flow_of(xi)?;
            self.enter(xi, &flow, ni).await
        })
    }

    async fn enter(
        &mut self,
        xi: usize,
        flow: &Arc<CompiledFlow>,
        start: usize,
    ) -> Result<(), EngineError> {
        let mut ni = start;
        loop {
            if let Some(to) = self.execs[xi].pending_status.take() {
                self.apply_pending(xi, to).await?;
                return Ok(());
            }
            let max = self
                .inner
                .config
                .max_steps_per_turn
                .or(flow.max_steps)
                .unwrap_or(1000);
            self.steps += 1;
            let node = &flow.flow.nodes[ni];
            let node_id = node.id().to_owned();
            if self.steps > max {
                let f = Failure::new("step_limit", format!("more than {max} steps in one turn"));
                return self.fail(xi, &node_id, f).await;
            }
            self.execs[xi].current_node_id = Some(node_id.clone());
            self.execs[xi].activation += 1;
            let kind = node.kind().map_or("unknown", NodeKind::as_str);
            let step_no = self.steps;
            self.emit(
                xi,
                EventType::StepEntered,
                Some(&node_id),
                None,
                json!({"node_id": node_id, "node_type": kind, "step": step_no}),
            );
            let step = self.node_step(xi, flow, ni).await;
            match self.resolve(xi, flow, ni, step).await? {
                Some(next) => ni = next,
                None => return Ok(()),
            }
        }
    }

    /// Turns a node's step into the next node to run (or `None`: stop).
    async fn resolve(
        &mut self,
        xi: usize,
        flow: &Arc<CompiledFlow>,
        ni: usize,
        step: Step,
    ) -> Result<Option<usize>, EngineError> {
        let node_id = flow.flow.nodes[ni].id().to_owned();
        match step {
            Step::Next => {
                let label = next_label(flow, ni);
                self.emit(
                    xi,
                    EventType::StepCompleted,
                    Some(&node_id),
                    Some(&label),
                    json!({"node_id": node_id, "edge_label": label}),
                );
                match flow.next_edge(ni).and_then(|k| flow.target(k)) {
                    Some(t) => Ok(Some(t)),
                    None => {
                        self.end(xi, "leaf").await?;
                        Ok(None)
                    }
                }
            }
            Step::Edge(edge, label) => {
                self.emit(
                    xi,
                    EventType::StepCompleted,
                    Some(&node_id),
                    Some(&label),
                    json!({"node_id": node_id, "edge_label": label}),
                );
                match edge.and_then(|k| flow.target(k)) {
                    Some(t) => Ok(Some(t)),
                    None => {
                        self.end(xi, "condition_without_edge").await?;
                        Ok(None)
                    }
                }
            }
            Step::Stop => Ok(None),
            Step::End(reason) => {
                self.end(xi, reason).await?;
                Ok(None)
            }
            Step::Fail(f) => {
                let kind = flow.flow.nodes[ni].kind();
                if kind == Some(NodeKind::Agent) {
                    self.end_agent_activation(xi); // a failed activation is over (§7.10)
                }
                let error = f.object(&node_id);
                self.set_var(xi, "runtime", "last_error", json!({"error": error}));
                let catchable = matches!(
                    kind,
                    Some(
                        NodeKind::Function
                            | NodeKind::Webhook
                            | NodeKind::Call
                            | NodeKind::SendText
                            | NodeKind::SendTemplate
                            | NodeKind::SendInteractive
                            | NodeKind::Agent
                    )
                );
                if catchable {
                    self.emit(
                        xi,
                        EventType::StepFailed,
                        Some(&node_id),
                        None,
                        json!({"node_id": node_id, "error": error}),
                    );
                    if let Some(t) = flow.error_edge(ni).and_then(|k| flow.target(k)) {
                        self.emit(
                            xi,
                            EventType::StepCompleted,
                            Some(&node_id),
                            Some("error"),
                            json!({"node_id": node_id, "edge_label": "error"}),
                        );
                        return Ok(Some(t));
                    }
                }
                self.fail_with(xi, error).await?;
                Ok(None)
            }
            Step::Child(child) => {
                // The child ran in this turn already; when it finished, the parent continues.
                if self.execs[child].status.is_terminal() {
                    self.execs[xi].waiting_reason = None;
                    self.execs[xi].last_resume = Some(LastResume {
                        reason: "child".into(),
                        at: self.now,
                    });
                    self.change_status(xi, Status::Running, "child_finished");
                    self.call_returned(xi, flow, ni, child).await
                } else {
                    Ok(None)
                }
            }
        }
    }

    async fn after_step(
        &mut self,
        xi: usize,
        flow: &Arc<CompiledFlow>,
        ni: usize,
        step: Step,
    ) -> Result<(), EngineError> {
        if let Some(next) = self.resolve(xi, flow, ni, step).await? {
            self.enter(xi, flow, next).await?;
        }
        Ok(())
    }

    async fn advance(
        &mut self,
        xi: usize,
        flow: &Arc<CompiledFlow>,
        ni: usize,
    ) -> Result<(), EngineError> {
        if let Some(to) = self.execs[xi].pending_status.take() {
            return self.apply_pending(xi, to).await;
        }
        match flow.next_edge(ni).and_then(|k| flow.target(k)) {
            Some(t) => self.enter(xi, flow, t).await,
            None => self.end(xi, "leaf").await,
        }
    }

    async fn apply_pending(&mut self, xi: usize, to: Status) -> Result<(), EngineError> {
        match to {
            Status::Ended => self.end_with(xi, "api").await,
            Status::Handoff => {
                self.change_status(xi, Status::Handoff, "api");
                self.emit(
                    xi,
                    EventType::ExecutionHandoff,
                    None,
                    None,
                    json!({"source": "api"}),
                );
                Ok(())
            }
            _ => Ok(()),
        }
    }

    async fn end(&mut self, xi: usize, reason: &str) -> Result<(), EngineError> {
        self.end_with(xi, reason).await
    }

    fn end_with<'a>(
        &'a mut self,
        xi: usize,
        reason: &'a str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), EngineError>> + Send + 'a>>
    {
        Box::pin(async move {
            let last = self.execs[xi].current_node_id.clone();
            self.change_status(xi, Status::Ended, reason);
            self.emit(
                xi,
                EventType::ExecutionEnded,
                None,
                None,
                json!({"reason": reason, "last_node_id": last}),
            );
            self.finished(xi).await
        })
    }

    async fn fail(&mut self, xi: usize, node_id: &str, f: Failure) -> Result<(), EngineError> {
        let error = f.object(node_id);
        self.set_var(xi, "runtime", "last_error", json!({"error": error}));
        self.fail_with(xi, error).await
    }

    fn fail_with(
        &mut self,
        xi: usize,
        error: Value,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), EngineError>> + Send + '_>>
    {
        Box::pin(async move {
            self.execs[xi].error_details = Some(error.clone());
            self.change_status(xi, Status::Failed, "failure");
            self.emit(
                xi,
                EventType::ExecutionFailed,
                None,
                None,
                json!({"error": error}),
            );
            self.finished(xi).await
        })
    }

    /// After an execution ended or failed: end its active child, hand the conversation back to
    /// the parent and let the parent continue.
    async fn finished(&mut self, xi: usize) -> Result<(), EngineError> {
        if let Some(child) = self.execs[xi].child_execution_id.clone() {
            let ci = self.exec_index(&child).await?;
            if self.execs[ci].status.is_active() {
                // We are already terminal, so the child's end does not resume us; it keeps its
                // `parent_execution_id` (the API still shows whose child it was).
                self.end_with(ci, "parent_ended").await?;
            }
        }
        let id = self.execs[xi].id.clone();
        match self.execs[xi].parent_execution_id.clone() {
            Some(parent) => {
                let pi = self.exec_index(&parent).await?;
                self.conv.active_execution_id = Some(parent.clone());
                if self.calling.contains(&pi) {
                    return Ok(());
                }
                if self.execs[pi].status == Status::Waiting
                    && self.execs[pi].waiting_reason == Some(WaitingReason::Call)
                {
                    let flow = self.flow_of(pi)?;
                    let node = self.execs[pi].current_node_id.clone().unwrap_or_default();
                    if let Some(ni) = flow.node_index(&node) {
                        self.execs[pi].waiting_reason = None;
                        self.execs[pi].last_resume = Some(LastResume {
                            reason: "child".into(),
                            at: self.now,
                        });
                        self.change_status(pi, Status::Running, "child_finished");
                        if let Some(next) = self.call_returned(pi, &flow, ni, xi).await? {
                            self.enter(pi, &flow, next).await?;
                        }
                    }
                }
            }
            None => {
                if self.conv.active_execution_id.as_deref() == Some(&id) {
                    self.conv.active_execution_id = None;
                }
            }
        }
        Ok(())
    }

    /// A child ended or failed: merge or store the error, then continue after the call node.
    async fn call_returned(
        &mut self,
        pi: usize,
        flow: &Arc<CompiledFlow>,
        ni: usize,
        ci: usize,
    ) -> Result<Option<usize>, EngineError> {
        let node_id = flow.flow.nodes[ni].id().to_owned();
        self.execs[pi].child_execution_id = None;
        let child_id = self.execs[ci].id.clone();
        let status = self.execs[ci].status;
        let mut merged = Vec::new();
        if status == Status::Ended {
            let vars: Vec<(String, Value)> = self.execs[ci]
                .vars
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            merged = vars.iter().map(|(k, _)| Value::String(k.clone())).collect();
            self.merge_vars(pi, &node_id, vars);
        } else {
            let err = self.execs[ci].error_details.clone().unwrap_or(Value::Null);
            let var = match flow.flow.nodes[ni].config() {
                NodeConfig::Call(c) => c.error_variable().to_owned(),
                _ => "subworkflow_error".to_owned(),
            };
            let value = json!({
                "error": err.get("message").cloned().unwrap_or(Value::Null),
                "kind": err.get("kind").cloned().unwrap_or(Value::Null),
                "workflow_id": self.execs[ci].flow_id,
                "workflow_name": self.execs[ci].flow_name,
                "call_stack": self.execs[ci].call_stack,
            });
            self.set_var(pi, &node_id, &var, value);
        }
        self.emit(
            pi,
            EventType::CallReturned,
            Some(&node_id),
            None,
            json!({"node_id": node_id, "child_execution_id": child_id, "status": status.as_str(), "merged_keys": merged}),
        );
        let label = next_label(flow, ni);
        self.emit(
            pi,
            EventType::StepCompleted,
            Some(&node_id),
            Some(&label),
            json!({"node_id": node_id, "edge_label": label}),
        );
        match flow.next_edge(ni).and_then(|k| flow.target(k)) {
            Some(t) => Ok(Some(t)),
            None => {
                self.end(pi, "leaf").await?;
                Ok(None)
            }
        }
    }

    // --- nodes -------------------------------------------------------------------------------

    async fn node_step(&mut self, xi: usize, flow: &Arc<CompiledFlow>, ni: usize) -> Step {
        let node = &flow.flow.nodes[ni];
        let node_id = node.id().to_owned();
        match node.config() {
            NodeConfig::Start => Step::Next,
            NodeConfig::SendText(c) => self.send_text(xi, &node_id, c).await,
            NodeConfig::SendTemplate(c) => self.send_template(xi, &node_id, c).await,
            NodeConfig::SendInteractive(c) => self.send_interactive(xi, &node_id, c).await,
            NodeConfig::WaitForResponse(c) => {
                let activation = self.execs[xi].activation;
                self.execs[xi].timer = c.armed_timeout().map(|t| Timer {
                    node_id: node_id.clone(),
                    due_at: self.now.plus_seconds(t),
                    activation,
                    timeout_seconds: t.max(0.0) as u64,
                });
                self.change_status(xi, Status::Waiting, "wait_for_response");
                self.execs[xi].waiting_reason = Some(WaitingReason::WaitForResponse);
                Step::Stop
            }
            NodeConfig::Decide(c) => self.decide(xi, flow, ni, c).await,
            NodeConfig::Function(c) => {
                let request =
                    json!({"function": c.function.id.as_ref().or(c.function.slug.as_ref())});
                self.action(xi, &node_id, "function", request);
                match self
                    .call_function(xi, &node_id, &c.function, None, None)
                    .await
                {
                    Ok(Value::Object(resp)) => {
                        if let Some(v) = resp.get("vars") {
                            let Value::Object(vars) = v else {
                                let e = AdapterError::new(
                                    "invalid_json",
                                    "the function's `vars` is not an object",
                                );
                                self.action_failed(xi, &node_id, "function", &e);
                                return Step::Fail(e.into());
                            };
                            let pairs = vars.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                            self.merge_vars(xi, &node_id, pairs);
                        }
                        if let Some(name) = &c.save_response_to {
                            self.set_var(xi, &node_id, name, Value::Object(resp));
                        }
                        self.performed(xi, &node_id, "function", json!({"ok": true}));
                        Step::Next
                    }
                    Ok(other) => {
                        let e = AdapterError::new(
                            "invalid_json",
                            format!(
                                "the function answered {} instead of a JSON object",
                                kind_of(&other)
                            ),
                        );
                        self.action_failed(xi, &node_id, "function", &e);
                        Step::Fail(e.into())
                    }
                    Err(e) => {
                        self.action_failed(xi, &node_id, "function", &e);
                        Step::Fail(e.into())
                    }
                }
            }
            NodeConfig::Webhook(c) => self.webhook(xi, &node_id, c).await,
            NodeConfig::SetVariable(c) => {
                let value = c
                    .variable_value
                    .as_ref()
                    .map_or(Value::Null, switchboard_model::Value::to_json);
                let rendered = match self.render_value(xi, &node_id, "variable_value", &value) {
                    Ok(v) => v,
                    Err(f) => return Step::Fail(f),
                };
                match coerce(rendered, c.value_type.unwrap_or_default()) {
                    Ok(v) => {
                        let name = c.variable_name.clone().unwrap_or_default();
                        self.set_var(xi, &node_id, &name, v);
                        Step::Next
                    }
                    Err(f) => Step::Fail(f),
                }
            }
            NodeConfig::Call(c) => self.call(xi, &node_id, c).await,
            NodeConfig::Agent(_) => {
                if let Err(f) = self.start_agent(xi, flow, ni) {
                    return Step::Fail(f);
                }
                self.agent_turn(xi, flow, ni).await
            }
            NodeConfig::Handoff(c) => {
                let reason = match &c.reason {
                    Some(r) => match self.render_text(xi, &node_id, "reason", r, Mode::Text) {
                        Ok(s) => Value::String(s),
                        Err(f) => return Step::Fail(f),
                    },
                    None => Value::Null,
                };
                let context_data = match &c.context_data {
                    Some(v) => {
                        match self.render_value(xi, &node_id, "context_data", &v.to_json()) {
                            Ok(v) => v,
                            Err(f) => return Step::Fail(f),
                        }
                    }
                    None => Value::Null,
                };
                self.change_status(xi, Status::Handoff, "handoff");
                self.emit(
                    xi,
                    EventType::ExecutionHandoff,
                    Some(&node_id),
                    None,
                    json!({"source": "action_step", "reason": reason, "context_data": context_data}),
                );
                Step::Stop
            }
            NodeConfig::EmitEvent(c) => self.emit_event(xi, &node_id, c).await,
            _ => Step::Fail(Failure::new("invalid_request", "unknown node type")),
        }
    }

    /// `action_executing` with a summary of the request (§9).
    fn action(&mut self, xi: usize, node_id: &str, action: &str, request: Value) {
        self.emit(
            xi,
            EventType::ActionExecuting,
            Some(node_id),
            None,
            json!({"node_id": node_id, "action": action, "request": request}),
        );
    }

    fn performed(&mut self, xi: usize, node_id: &str, action: &str, result: Value) {
        self.emit(
            xi,
            EventType::ActionPerformed,
            Some(node_id),
            None,
            json!({"node_id": node_id, "action": action, "result": result, "duration_ms": 0}),
        );
    }

    fn action_failed(&mut self, xi: usize, node_id: &str, action: &str, e: &AdapterError) {
        self.emit(
            xi,
            EventType::ActionFailed,
            Some(node_id),
            None,
            json!({"node_id": node_id, "action": action, "error": Failure::from(e.clone()).summary()}),
        );
    }

    // --- rendering helpers -------------------------------------------------------------------

    fn note_render<T>(&mut self, xi: usize, node_id: &str, field: &str, r: &Rendered<T>) {
        for name in &r.secrets {
            if !self.execs[xi].secrets_used.contains(name) {
                self.execs[xi].secrets_used.push(name.clone());
            }
        }
        for path in &r.missing {
            self.emit(
                xi,
                EventType::TemplateVariableMissing,
                Some(node_id),
                None,
                json!({"node_id": node_id, "field": field, "path": path}),
            );
        }
    }

    /// Renders through `f` with this execution's namespaces (plus `args` for agent tools), then
    /// records the secrets used and the undefined values written.
    fn render_with<T>(
        &mut self,
        xi: usize,
        node_id: &str,
        field: &str,
        args: Option<&Value>,
        f: impl FnOnce(
            &crate::template::Renderer,
            &Scope,
            &dyn crate::adapters::Secrets,
        ) -> Result<Rendered<T>, TemplateError>,
    ) -> Result<T, Failure> {
        let r = {
            let (e, config) = (&self.execs[xi], &self.inner.config);
            let build = || system_namespace(e, config);
            let system = crate::template::System::lazy(&build);
            let scope = Scope {
                vars: &e.vars,
                system: &system,
                context: &e.context,
                metadata: &e.metadata,
                args,
            };
            f(&self.inner.renderer, &scope, &*self.inner.adapters.secrets)?
        };
        self.note_render(xi, node_id, field, &r);
        Ok(r.value)
    }

    fn render_text(
        &mut self,
        xi: usize,
        node_id: &str,
        field: &str,
        template: &str,
        mode: Mode,
    ) -> Result<String, Failure> {
        self.render_with(xi, node_id, field, None, |r, scope, secrets| {
            r.render_text(template, scope, secrets, mode)
        })
    }

    fn render_value(
        &mut self,
        xi: usize,
        node_id: &str,
        field: &str,
        value: &Value,
    ) -> Result<Value, Failure> {
        self.render_with(xi, node_id, field, None, |r, scope, secrets| {
            r.render_value(value, scope, secrets)
        })
    }

    fn render_with_args(
        &mut self,
        xi: usize,
        node_id: &str,
        field: &str,
        value: &Value,
        args: &Value,
        text: Option<Mode>,
    ) -> Result<Value, Failure> {
        match (text, value) {
            (Some(mode), Value::String(s)) => self
                .render_with(xi, node_id, field, Some(args), |r, scope, secrets| {
                    r.render_text(s, scope, secrets, mode)
                })
                .map(Value::String),
            _ => self.render_with(xi, node_id, field, Some(args), |r, scope, secrets| {
                r.render_value(value, scope, secrets)
            }),
        }
    }

    /// Resolves the AI fields of a node (runtime-semantics §7.12): path → generated text.
    async fn ai_fields(
        &mut self,
        xi: usize,
        node_id: &str,
        sender: &Sender,
    ) -> Result<Map<String, Value>, Failure> {
        let mut out = Map::new();
        for f in &sender.ai_fields {
            let Some(prompt) = &f.prompt else { continue };
            let path = f.path.replace("template_params", "parameters");
            if out.contains_key(&path) {
                continue;
            }
            let model = sender
                .model
                .candidates()
                .next()
                .unwrap_or_default()
                .to_owned();
            self.emit(
                xi,
                EventType::AiFieldResolving,
                Some(node_id),
                None,
                json!({"node_id": node_id, "path": path, "model": model}),
            );
            let prompt = self.render_text(
                xi,
                node_id,
                &format!("ai_field_config.{}.prompt", f.path),
                prompt,
                Mode::Text,
            )?;
            let mut messages = vec![ChatMessage::new("system", prompt.clone())];
            messages.extend(self.history_messages());
            let req = ChatRequest {
                model,
                purpose: Purpose::AiField {
                    node_id: node_id.to_owned(),
                    path: path.clone(),
                    prompt,
                },
                messages,
                tools: Vec::new(),
                temperature: None,
                max_tokens: None,
                reasoning_effort: None,
            };
            let text = self
                .inner
                .adapters
                .model
                .complete(req)
                .await?
                .text
                .unwrap_or_default();
            self.emit(
                xi,
                EventType::AiFieldResolved,
                Some(node_id),
                None,
                json!({"node_id": node_id, "path": path, "value": text}),
            );
            out.insert(path, Value::String(text));
        }
        Ok(out)
    }

    fn history_messages(&self) -> Vec<ChatMessage> {
        let n = self.conv.messages.len();
        self.conv.messages[n.saturating_sub(20)..]
            .iter()
            .map(|m| {
                ChatMessage::new(
                    if m.direction == Direction::Inbound {
                        "user"
                    } else {
                        "assistant"
                    },
                    m.text.clone(),
                )
            })
            .collect()
    }

    fn text_field(
        &mut self,
        xi: usize,
        node_id: &str,
        key: &str,
        field: Option<&TextField>,
        ai: &Map<String, Value>,
    ) -> Result<Option<String>, Failure> {
        match field {
            None => Ok(None),
            Some(TextField::Ai) => Ok(Some(
                ai.get(key)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
            )),
            Some(TextField::Text(t)) => self.render_text(xi, node_id, key, t, Mode::Text).map(Some),
        }
    }

    fn opt_text(
        &mut self,
        xi: usize,
        node_id: &str,
        key: &str,
        t: &Option<String>,
    ) -> Result<Option<String>, Failure> {
        match t {
            None => Ok(None),
            Some(t) => self.render_text(xi, node_id, key, t, Mode::Text).map(Some),
        }
    }

    // --- sending -----------------------------------------------------------------------------

    fn in_service_window(&self) -> bool {
        !self.inner.config.enforce_service_window
            || self
                .conv
                .last_inbound_at
                .is_some_and(|t| self.now.0 - t.0 < 24 * 3600 * 1000)
    }

    async fn deliver_message(
        &mut self,
        xi: usize,
        node_id: &str,
        sender: &Sender,
        body: OutboundBody,
        action: &str,
        window: bool,
    ) -> Step {
        if window && !self.in_service_window() {
            return Step::Fail(Failure::new(
                "outside_service_window",
                "the contact has not written in the last 24 hours; only templates may be sent",
            ));
        }
        let to = match &sender.to_phone_number {
            Some(t) => match self.render_text(xi, node_id, "to_phone_number", t, Mode::Text) {
                Ok(s) if !s.is_empty() => s,
                Ok(_) => self.conv.phone_number.clone(),
                Err(f) => return Step::Fail(f),
            },
            None => self.conv.phone_number.clone(),
        };
        let from = sender
            .phone_number_id
            .clone()
            .or_else(|| sender.whatsapp_config_id.clone())
            .unwrap_or_else(|| self.conv.phone_number_id.clone());
        let text = match &body {
            OutboundBody::Text { text } => text.clone(),
            OutboundBody::Interactive(i) => i.body.clone(),
            OutboundBody::Template { template_id, .. } => format!("[template {template_id}]"),
            OutboundBody::Media { caption, url, .. } => {
                caption.clone().unwrap_or_else(|| url.clone())
            }
        };
        let kind = match &body {
            OutboundBody::Text { .. } => "text",
            OutboundBody::Interactive(_) => "interactive",
            OutboundBody::Template { .. } => "template",
            OutboundBody::Media { media_type, .. } => media_type.as_str(),
        }
        .to_owned();
        let msg = OutboundMessage {
            from,
            to,
            execution_id: self.execs[xi].id.clone(),
            node_id: node_id.to_owned(),
            body,
        };
        match self.inner.adapters.messenger.send(msg).await {
            Ok(receipt) => {
                self.conv.record(
                    HistoryMessage {
                        id: receipt.message_id.clone(),
                        direction: Direction::Outbound,
                        kind,
                        text,
                        at: self.now,
                    },
                    self.inner.config.history_window,
                );
                self.performed(
                    xi,
                    node_id,
                    action,
                    json!({"message_id": receipt.message_id}),
                );
                Step::Next
            }
            Err(e) => {
                self.action_failed(xi, node_id, action, &e);
                Step::Fail(e.into())
            }
        }
    }

    async fn send_text(
        &mut self,
        xi: usize,
        node_id: &str,
        c: &switchboard_model::config::SendText,
    ) -> Step {
        let ai = match self.ai_fields(xi, node_id, &c.sender).await {
            Ok(a) => a,
            Err(f) => return Step::Fail(f),
        };
        let text = match self.text_field(xi, node_id, "message", c.message.as_ref(), &ai) {
            Ok(t) => t.unwrap_or_default(),
            Err(f) => return Step::Fail(f),
        };
        if text.chars().count() > 4096 {
            return Step::Fail(Failure::new(
                "invalid_message",
                format!(
                    "the message is {} characters, more than 4096",
                    text.chars().count()
                ),
            ));
        }
        if text.is_empty() {
            return Step::Fail(Failure::new("invalid_message", "the message is empty"));
        }
        if let Some(d) = c.delay_seconds.filter(|d| *d > 0.0) {
            self.inner
                .adapters
                .clock
                .sleep(Duration::from_secs_f64(d.min(3600.0)))
                .await;
            // Time moved on: what follows (events, the service window, timers) happens later.
            self.now = self.inner.adapters.clock.now();
        }
        self.deliver_message(
            xi,
            node_id,
            &c.sender,
            OutboundBody::Text { text },
            "send_text",
            true,
        )
        .await
    }

    async fn send_template(
        &mut self,
        xi: usize,
        node_id: &str,
        c: &switchboard_model::config::SendTemplate,
    ) -> Step {
        let ai = match self.ai_fields(xi, node_id, &c.sender).await {
            Ok(a) => a,
            Err(f) => return Step::Fail(f),
        };
        // Generated values are data, never template source: the configured parameters are
        // rendered first and the model's values put in afterwards, so a reply holding `{{ … }}`
        // or `${ENV:…}` is sent literally (no template or secret injection through the model).
        let mut params = match &c.parameters {
            Some(v) if v.is_ai_marker() => {
                let text = ai
                    .get("parameters")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                match serde_json::from_str::<Value>(text) {
                    Ok(v @ (Value::Object(_) | Value::Array(_))) => v,
                    _ => {
                        return Step::Fail(Failure::new(
                            "adapter",
                            "the model's parameters are not a JSON object or array",
                        ));
                    }
                }
            }
            Some(v) => match self.render_value(xi, node_id, "parameters", &v.to_json()) {
                Ok(v) => v,
                Err(f) => return Step::Fail(f),
            },
            None => Value::Object(Map::new()),
        };
        // Leaf AI markers.
        for (path, value) in &ai {
            if let Some(rest) = path.strip_prefix("parameters.") {
                set_path(&mut params, rest, value.clone());
            }
        }
        let body = OutboundBody::Template {
            template_id: c.template_id.clone().unwrap_or_default(),
            parameters: stringify_leaves(params),
        };
        self.deliver_message(xi, node_id, &c.sender, body, "send_template", false)
            .await
    }

    async fn send_interactive(
        &mut self,
        xi: usize,
        node_id: &str,
        c: &switchboard_model::config::SendInteractive,
    ) -> Step {
        let ai = match self.ai_fields(xi, node_id, &c.sender).await {
            Ok(a) => a,
            Err(f) => return Step::Fail(f),
        };
        match self.build_interactive(xi, node_id, c, &ai) {
            Ok(i) => {
                self.deliver_message(
                    xi,
                    node_id,
                    &c.sender,
                    OutboundBody::Interactive(i),
                    "send_interactive",
                    true,
                )
                .await
            }
            Err(f) => Step::Fail(f),
        }
    }

    fn build_interactive(
        &mut self,
        xi: usize,
        node_id: &str,
        c: &switchboard_model::config::SendInteractive,
        ai: &Map<String, Value>,
    ) -> Result<Interactive, Failure> {
        let t = c
            .interactive_type
            .ok_or_else(|| Failure::new("invalid_message", "no interactive_type"))?;
        if !t.is_supported() {
            return Err(Failure::new(
                "invalid_message",
                format!("interactive type `{}` is not supported", t.as_str()),
            ));
        }
        let body = self
            .text_field(xi, node_id, "body_text", c.body_text.as_ref(), ai)?
            .unwrap_or_default();
        let limit = if t == InteractiveType::List {
            4096
        } else {
            1024
        };
        check_len("body_text", &body, limit)?;
        if body.is_empty() {
            return Err(Failure::new("invalid_message", "the body text is empty"));
        }
        let mut i = Interactive {
            interactive_type: t.as_str().to_owned(),
            body,
            ..Interactive::default()
        };
        if t != InteractiveType::LocationRequestMessage {
            match c.effective_header_type() {
                HeaderType::Text => {
                    let h = self
                        .text_field(xi, node_id, "header_text", c.header_text.as_ref(), ai)?
                        .unwrap_or_default();
                    check_len("header_text", &h, 60)?;
                    i.header = Some(InteractiveHeader {
                        kind: "text".into(),
                        value: h,
                    });
                }
                h @ (HeaderType::Image | HeaderType::Video | HeaderType::Document) => {
                    let url = self
                        .opt_text(xi, node_id, "header_media_url", &c.header_media_url)?
                        .unwrap_or_default();
                    check_url("header_media_url", &url)?;
                    i.header = Some(InteractiveHeader {
                        kind: h.as_str().to_owned(),
                        value: url,
                    });
                }
                HeaderType::None => {}
            }
            if let Some(f) =
                self.text_field(xi, node_id, "footer_text", c.footer_text.as_ref(), ai)?
            {
                check_len("footer_text", &f, 60)?;
                i.footer = Some(f);
            }
        }
        match t {
            InteractiveType::Button => {
                let buttons = c.buttons.clone().unwrap_or_default();
                if buttons.is_empty() || buttons.len() > 3 {
                    return Err(Failure::new(
                        "invalid_message",
                        format!("{} buttons (1 to 3 allowed)", buttons.len()),
                    ));
                }
                for (k, b) in buttons.iter().enumerate() {
                    let title = self
                        .opt_text(xi, node_id, &format!("buttons[{k}].title"), &b.title)?
                        .unwrap_or_default();
                    check_len("button title", &title, 20)?;
                    let id = b.id.clone().unwrap_or_default();
                    check_len("button id", &id, 256)?;
                    if i.buttons.iter().any(|x| x.id == id) {
                        return Err(Failure::new(
                            "invalid_message",
                            format!("duplicate button id `{id}`"),
                        ));
                    }
                    i.buttons.push(Choice {
                        id,
                        title,
                        description: None,
                    });
                }
            }
            InteractiveType::List => {
                let text = self
                    .opt_text(xi, node_id, "list_button_text", &c.list_button_text)?
                    .unwrap_or_default();
                check_len("list_button_text", &text, 20)?;
                i.list_button_text = Some(text);
                let sections = c.list_sections.clone().unwrap_or_default();
                let mut rows_total = 0;
                for (s, sec) in sections.iter().enumerate() {
                    let title = self.opt_text(
                        xi,
                        node_id,
                        &format!("list_sections[{s}].title"),
                        &sec.title,
                    )?;
                    if let Some(t) = &title {
                        check_len("section title", t, 24)?;
                    }
                    let mut rows = Vec::new();
                    for (r, row) in sec.rows.iter().enumerate() {
                        let title = self
                            .opt_text(
                                xi,
                                node_id,
                                &format!("list_sections[{s}].rows[{r}].title"),
                                &row.title,
                            )?
                            .unwrap_or_default();
                        check_len("row title", &title, 24)?;
                        let description = self.opt_text(
                            xi,
                            node_id,
                            &format!("list_sections[{s}].rows[{r}].description"),
                            &row.description,
                        )?;
                        if let Some(d) = &description {
                            check_len("row description", d, 72)?;
                        }
                        rows.push(Choice {
                            id: row.id.clone().unwrap_or_default(),
                            title,
                            description,
                        });
                    }
                    rows_total += rows.len();
                    i.sections.push(ListSection { title, rows });
                }
                if sections.is_empty() || sections.len() > 10 || rows_total == 0 || rows_total > 10
                {
                    return Err(Failure::new(
                        "invalid_message",
                        "a list needs 1–10 sections and 1–10 rows in all",
                    ));
                }
            }
            InteractiveType::CtaUrl => {
                let text = self
                    .opt_text(xi, node_id, "cta_display_text", &c.cta_display_text)?
                    .unwrap_or_default();
                check_len("cta_display_text", &text, 20)?;
                let url = match &c.cta_url {
                    Some(u) => self.render_text(xi, node_id, "cta_url", u, Mode::Text)?,
                    None => String::new(),
                };
                check_url("cta_url", &url)?;
                i.cta = Some(Cta {
                    display_text: text,
                    url,
                });
            }
            InteractiveType::Flow => {
                let cta = self
                    .opt_text(xi, node_id, "flow_cta", &c.flow_cta)?
                    .unwrap_or_default();
                let token = self
                    .opt_text(xi, node_id, "flow_token", &c.flow_token)?
                    .unwrap_or_else(|| self.execs[xi].id.clone());
                let action = c.flow_action.unwrap_or(FlowAction::Navigate);
                let payload = match &c.flow_action_payload {
                    Some(p) => {
                        let data = match &p.data {
                            Some(d) => Some(self.render_value(
                                xi,
                                node_id,
                                "flow_action_payload.data",
                                &d.to_json(),
                            )?),
                            None => None,
                        };
                        let mut m = Map::new();
                        m.insert("screen".into(), json!(p.screen));
                        if let Some(d) = data {
                            m.insert("data".into(), d);
                        }
                        Some(Value::Object(m))
                    }
                    None => None,
                };
                i.flow = Some(FlowParameters {
                    flow_id: c.flow_id.clone().unwrap_or_default(),
                    flow_cta: cta,
                    flow_token: token,
                    flow_action: if action == FlowAction::Navigate {
                        "navigate"
                    } else {
                        "data_exchange"
                    }
                    .into(),
                    flow_action_payload: payload,
                });
            }
            _ => {}
        }
        Ok(i)
    }

    // --- decide ------------------------------------------------------------------------------

    async fn decide(
        &mut self,
        xi: usize,
        flow: &Arc<CompiledFlow>,
        ni: usize,
        c: &switchboard_model::config::Decide,
    ) -> Step {
        let node_id = flow.flow.nodes[ni].id().to_owned();
        let labels: Vec<String> = c.labels().map(str::to_owned).collect();
        let mode = if c.mode() == DecisionType::Function {
            "function"
        } else {
            "ai"
        };
        self.emit(
            xi,
            EventType::DecisionEvaluating,
            Some(&node_id),
            None,
            json!({"node_id": node_id, "decision_type": mode, "labels": labels}),
        );
        let Some(first) = labels.first().cloned() else {
            return Step::Fail(Failure::new(
                "invalid_request",
                "the decide node has no conditions",
            ));
        };
        let (chosen, fallback, reason, extra) = if c.mode() == DecisionType::Function {
            match self
                .call_function(xi, &node_id, &c.function, Some(&labels), None)
                .await
            {
                Ok(resp) => {
                    if let Some(Value::Object(vars)) = resp.get("vars") {
                        let pairs = vars.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                        self.merge_vars(xi, &node_id, pairs);
                    }
                    match resp.get("next_edge").and_then(Value::as_str) {
                        Some(l) if labels.iter().any(|x| x == l) => {
                            (l.to_owned(), false, None, json!({"response": resp}))
                        }
                        _ => (
                            first.clone(),
                            true,
                            Some("no_match".to_owned()),
                            json!({"response": resp}),
                        ),
                    }
                }
                Err(e) => (first.clone(), true, Some(e.kind.clone()), json!({})),
            }
        } else {
            let last = self.execs[xi].vars.get("last_user_input").map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            });
            let conditions: Vec<(String, String)> = c
                .conditions
                .iter()
                .flatten()
                .filter_map(|k| Some((k.label.clone()?, k.description.clone().unwrap_or_default())))
                .collect();
            let mut prompt = String::from(
                "Choose the condition that best matches the conversation. Answer with exactly one label.\nConditions:\n",
            );
            for (l, d) in &conditions {
                prompt.push_str(&format!("{l}: {d}\n"));
            }
            if let Some(instr) = &c.instructions {
                match self.render_text(
                    xi,
                    &node_id,
                    "llm_configuration.instructions",
                    instr,
                    Mode::Text,
                ) {
                    Ok(s) => {
                        prompt.push_str(&s);
                        prompt.push('\n');
                    }
                    Err(f) => return Step::Fail(f),
                }
            }
            let model = c.model.candidates().next().unwrap_or_default().to_owned();
            let mut messages = vec![ChatMessage::new("system", prompt.clone())];
            messages.extend(self.history_messages());
            let req = ChatRequest {
                model: model.clone(),
                purpose: Purpose::Decide {
                    node_id: node_id.clone(),
                    labels: labels.clone(),
                    conditions,
                    last_user_input: last.unwrap_or_default(),
                    last_reply_id: self.execs[xi]
                        .vars
                        .get("last_user_reply")
                        .and_then(|r| r.get("id"))
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                },
                messages,
                tools: Vec::new(),
                temperature: Some(c.llm_temperature.unwrap_or(0.0)),
                max_tokens: Some(c.llm_max_tokens.unwrap_or(10000)),
                reasoning_effort: None,
            };
            match self.inner.adapters.model.complete(req).await {
                Ok(resp) => {
                    let answer = resp.text.unwrap_or_default();
                    let t = answer.trim();
                    let found = labels
                        .iter()
                        .find(|l| l.as_str() == t)
                        .or_else(|| labels.iter().find(|l| l.eq_ignore_ascii_case(t)));
                    match found {
                        Some(l) => (
                            l.clone(),
                            false,
                            None,
                            json!({"model": model, "prompt": prompt, "response": answer}),
                        ),
                        None => (
                            first.clone(),
                            true,
                            Some("no_match".to_owned()),
                            json!({"model": model, "prompt": prompt, "response": answer}),
                        ),
                    }
                }
                Err(_) => (
                    first.clone(),
                    true,
                    Some("adapter_error".to_owned()),
                    json!({"model": model, "prompt": prompt}),
                ),
            }
        };
        let mut payload = json!({"node_id": node_id, "decision_type": mode, "chosen_label": chosen, "fallback": fallback});
        if let Some(r) = reason {
            payload["reason"] = json!(r);
        }
        if let Value::Object(extra) = extra {
            for (k, v) in extra {
                payload[k] = v;
            }
        }
        self.emit(
            xi,
            EventType::DecisionEvaluated,
            Some(&node_id),
            None,
            payload,
        );
        let edge = flow.edge_labelled(ni, &chosen);
        Step::Edge(edge, chosen)
    }

    // --- webhook -----------------------------------------------------------------------------

    async fn webhook(
        &mut self,
        xi: usize,
        node_id: &str,
        c: &switchboard_model::config::Webhook,
    ) -> Step {
        let sender = Sender {
            model: c.model.clone(),
            ai_fields: c.ai_fields.clone(),
            ..Sender::default()
        };
        let ai = match self.ai_fields(xi, node_id, &sender).await {
            Ok(a) => a,
            Err(f) => return Step::Fail(f),
        };
        let url = match &c.url {
            Some(TextField::Ai) => ai
                .get("url")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            Some(TextField::Text(u)) => match self.render_text(xi, node_id, "url", u, Mode::Url) {
                Ok(u) => u,
                Err(f) => return Step::Fail(f),
            },
            None => String::new(),
        };
        if !is_http_url(&url) {
            return Step::Fail(Failure::new(
                "invalid_request",
                format!("`{}` is not an absolute http(s) URL", excerpt(&url)),
            ));
        }
        let method = c
            .method
            .as_deref()
            .and_then(switchboard_model::config::HttpMethod::parse)
            .unwrap_or_default();
        let headers_v = c
            .headers
            .as_ref()
            .map_or(Value::Object(Map::new()), switchboard_model::Value::to_json);
        let body_v = c
            .body_template
            .as_ref()
            .map(switchboard_model::Value::to_json);
        let mut headers = match self.render_headers(xi, node_id, &headers_v, None) {
            Ok(h) => h,
            Err(f) => return Step::Fail(f),
        };
        let mut body = match &body_v {
            Some(b) => match self.render_value(xi, node_id, "body_template", b) {
                Ok(v) => Some(v),
                Err(f) => return Step::Fail(f),
            },
            None => None,
        };
        // Generated values go in after rendering: model output is never template source.
        for (path, v) in &ai {
            if let Some(name) = path.strip_prefix("headers.") {
                let text = crate::template::format_json_value(v);
                match headers.iter_mut().find(|(k, _)| k == name) {
                    Some(h) => h.1 = text,
                    None => headers.push((name.to_owned(), text)),
                }
            } else if let Some(rest) = path
                .strip_prefix("body_template.")
                .or_else(|| path.strip_prefix("body."))
                && let Some(b) = &mut body
            {
                set_path(b, rest, v.clone());
            }
        }
        let step = self
            .http_call(xi, node_id, method.as_str(), url, headers, body)
            .await;
        match step {
            Ok(resp) => {
                let status = resp.get("status").and_then(Value::as_u64).unwrap_or(0) as u16;
                if let Some(name) = &c.save_response_to {
                    self.set_var(xi, node_id, name, resp.clone());
                }
                if (200..300).contains(&status) {
                    self.performed(xi, node_id, "http", json!({"status": status}));
                    Step::Next
                } else {
                    let e = AdapterError::http_status(
                        status,
                        format!("the webhook answered HTTP {status}"),
                    );
                    self.action_failed(xi, node_id, "http", &e);
                    Step::Fail(e.into())
                }
            }
            Err(f) => Step::Fail(f),
        }
    }

    /// Renders header values (text) with an optional `args` scope.
    fn render_headers(
        &mut self,
        xi: usize,
        node_id: &str,
        headers: &Value,
        args: Option<&Value>,
    ) -> Result<Vec<(String, String)>, Failure> {
        let mut out = Vec::new();
        if let Value::Object(h) = headers {
            for (k, v) in h {
                let field = format!("headers.{k}");
                let rendered = match (args, v) {
                    (Some(a), _) => {
                        self.render_with_args(xi, node_id, &field, v, a, Some(Mode::Text))?
                    }
                    (None, Value::String(s)) => {
                        Value::String(self.render_text(xi, node_id, &field, s, Mode::Text)?)
                    }
                    (None, other) => other.clone(),
                };
                out.push((k.clone(), crate::template::format_json_value(&rendered)));
            }
        }
        Ok(out)
    }

    /// Sends an HTTP request with rendered headers and body; returns `{status, headers, body}`.
    async fn http_call(
        &mut self,
        xi: usize,
        node_id: &str,
        method: &str,
        url: String,
        mut header_list: Vec<(String, String)>,
        body: Option<Value>,
    ) -> Result<Value, Failure> {
        let body_bytes = if method == "GET" {
            None
        } else {
            if !header_list
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            {
                header_list.push(("Content-Type".into(), "application/json".into()));
            }
            body.map(|v| serde_json::to_vec(&v).unwrap_or_default())
        };
        self.action(xi, node_id, "http", json!({"method": method, "url": url}));
        let req = HttpRequest {
            method: method.to_owned(),
            url,
            headers: header_list,
            body: body_bytes,
            timeout: Duration::from_secs(30),
        };
        let resp = match self.inner.adapters.http.send(req).await {
            Ok(r) => r,
            Err(e) => {
                self.action_failed(xi, node_id, "http", &e);
                return Err(e.into());
            }
        };
        let content_type = resp
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            .map(|(_, v)| v.to_ascii_lowercase());
        let is_json = content_type.as_deref().is_some_and(|ct| {
            let base = ct.split(';').next().unwrap_or("").trim();
            base == "application/json" || base.ends_with("+json")
        });
        let body = if is_json {
            match serde_json::from_slice::<Value>(&resp.body) {
                Ok(v) => v,
                Err(e) => {
                    return Err(Failure::new(
                        "invalid_json",
                        format!("the response is not JSON: {e}"),
                    ));
                }
            }
        } else {
            Value::String(String::from_utf8_lossy(&resp.body).into_owned())
        };
        let mut hmap = Map::new();
        for (k, v) in &resp.headers {
            let k = k.to_ascii_lowercase();
            match hmap.get_mut(&k) {
                Some(Value::String(existing)) => {
                    existing.push_str(", ");
                    existing.push_str(v);
                }
                _ => {
                    hmap.insert(k, Value::String(v.clone()));
                }
            }
        }
        Ok(json!({"status": resp.status, "headers": hmap, "body": body}))
    }

    // --- call --------------------------------------------------------------------------------

    async fn call(
        &mut self,
        xi: usize,
        _node_id: &str,
        c: &switchboard_model::config::Call,
    ) -> Step {
        let Some(target) = c.workflow.candidates().find_map(|r| self.engine.flow(r)) else {
            let name = c
                .workflow
                .candidates()
                .next()
                .unwrap_or_default()
                .to_owned();
            return Step::Fail(Failure::new(
                "not_found",
                format!("flow `{name}` does not exist"),
            ));
        };
        let mut stack = self.execs[xi].call_stack.clone();
        stack.push(self.execs[xi].flow_id.clone());
        if stack.contains(&target.id) {
            return Step::Fail(Failure::new(
                "call_cycle",
                format!("flow `{}` is already in the call stack", target.id),
            ));
        }
        if self.execs[xi].call_depth + 1 > MAX_DEPTH {
            return Step::Fail(Failure::new(
                "call_depth",
                format!("calls nest deeper than {MAX_DEPTH}"),
            ));
        }
        self.change_status(xi, Status::Waiting, "call");
        self.execs[xi].waiting_reason = Some(WaitingReason::Call);
        let id = match self.start_child(&target, xi, stack).await {
            Ok(id) => id,
            Err(e) => return Step::Fail(Failure::new("adapter", e.to_string())),
        };
        let ci = self.execs.iter().position(|e| e.id == id).unwrap_or(0);
        Step::Child(ci)
    }

    fn start_child<'a>(
        &'a mut self,
        target: &'a Arc<CompiledFlow>,
        xi: usize,
        stack: Vec<String>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<String, EngineError>> + Send + 'a>>
    {
        Box::pin(async move {
            let node_id = self.execs[xi].current_node_id.clone().unwrap_or_default();
            let trigger = self.execs[xi].trigger_type;
            let id = self.inner.adapters.ids.next("ex");
            self.execs[xi].child_execution_id = Some(id.clone());
            self.emit(
                xi,
                EventType::CallStarted,
                Some(&node_id),
                None,
                json!({"node_id": node_id, "child_execution_id": id, "flow_id": target.id}),
            );
            self.next_id = Some(id);
            self.calling.push(xi);
            let started = self
                .start(
                    target,
                    trigger,
                    Object::new(),
                    Object::new(),
                    None,
                    Some((xi, stack)),
                )
                .await;
            self.calling.retain(|&p| p != xi);
            started
        })
    }

    // --- emit_event --------------------------------------------------------------------------

    async fn emit_event(
        &mut self,
        xi: usize,
        node_id: &str,
        c: &switchboard_model::config::EmitEvent,
    ) -> Step {
        let name = c.event_name.clone().unwrap_or_default();
        let props = match &c.properties {
            Some(m) => match self.render_value(
                xi,
                node_id,
                "properties",
                &switchboard_model::Value::Object(m.clone()).to_json(),
            ) {
                Ok(v) => v,
                Err(f) => return Step::Fail(f),
            },
            None => Value::Object(Map::new()),
        };
        let occurred_at = match &c.occurred_at {
            Some(t) if !t.trim().is_empty() => {
                match self.render_text(xi, node_id, "occurred_at", t, Mode::Text) {
                    Ok(s) if s.trim().is_empty() => self.now.rfc3339(),
                    Ok(s) => match Timestamp::parse_rfc3339(&s) {
                        Some(ts) => ts.rfc3339(),
                        None => {
                            self.emit(xi, EventType::ActionFailed, Some(node_id), None, json!({"node_id": node_id, "action": "emit_event", "error": {"kind": "invalid_request", "message": "occurred_at is not RFC 3339"}}));
                            return Step::Next;
                        }
                    },
                    Err(f) => return Step::Fail(f),
                }
            }
            _ => self.now.rfc3339(),
        };
        let total: u32 = self.execs[xi].emitted.iter().map(|(_, n)| *n).sum();
        let same = self.execs[xi]
            .emitted
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(0, |(_, n)| *n);
        let problem = if total >= 10 {
            Some("an execution emits at most 10 events".to_owned())
        } else if same >= 3 {
            Some(format!("an execution emits `{name}` at most 3 times"))
        } else {
            property_problem(&props)
        };
        if let Some(p) = problem {
            self.emit(xi, EventType::ActionFailed, Some(node_id), None, json!({"node_id": node_id, "action": "emit_event", "error": {"kind": "invalid_request", "message": p}}));
            return Step::Next;
        }
        let mut props_red = props.clone();
        self.redact(&self.execs[xi].secrets_used.clone(), &mut props_red);
        let ev = ProjectEvent {
            event_name: name.clone(),
            properties: props_red.clone(),
            occurred_at: occurred_at.clone(),
            execution_id: self.execs[xi].id.clone(),
            flow_id: self.execs[xi].flow_id.clone(),
        };
        if let Err(e) = self.inner.adapters.project_events.emit(ev).await {
            self.action_failed(xi, node_id, "emit_event", &e);
            return Step::Next;
        }
        match self.execs[xi].emitted.iter_mut().find(|(n, _)| *n == name) {
            Some((_, n)) => *n += 1,
            None => self.execs[xi].emitted.push((name.clone(), 1)),
        }
        self.emit(
            xi,
            EventType::ProjectEventEmitted,
            Some(node_id),
            None,
            json!({"event_name": name, "properties": props_red, "occurred_at": occurred_at}),
        );
        Step::Next
    }

    // --- agent -------------------------------------------------------------------------------

    fn start_agent(
        &mut self,
        xi: usize,
        flow: &Arc<CompiledFlow>,
        ni: usize,
    ) -> Result<(), Failure> {
        let node_id = flow.flow.nodes[ni].id().to_owned();
        let prompt = match flow.flow.nodes[ni].config() {
            NodeConfig::Agent(a) => a.system_prompt.clone().unwrap_or_default(),
            _ => String::new(),
        };
        // A prompt that does not render is a node failure (`template_error`, §3.1), never the
        // raw template sent to the model.
        let rendered = self.render_text(xi, &node_id, "system_prompt", &prompt, Mode::Text)?;
        let mut transcript = vec![ChatMessage::new("system", rendered)];
        transcript.extend(self.history_messages());
        self.execs[xi].agent = Some(AgentState {
            node_id,
            transcript,
            mcp_tools: Vec::new(),
        });
        Ok(())
    }

    async fn agent_turn(&mut self, xi: usize, flow: &Arc<CompiledFlow>, ni: usize) -> Step {
        crate::agent::run_turn(self, xi, flow, ni).await
    }

    // --- agent support (used by crate::agent) ------------------------------------------------

    pub(crate) fn agent_state(&mut self, xi: usize) -> Option<&mut AgentState> {
        self.execs[xi].agent.as_mut()
    }

    /// Ends the agent activation (completed or failed): its transcript is not kept.
    pub(crate) fn end_agent_activation(&mut self, xi: usize) {
        self.execs[xi].agent = None;
    }

    pub(crate) fn exec(&self, xi: usize) -> &Execution {
        &self.execs[xi]
    }

    pub(crate) fn inner(&self) -> &'e Inner {
        self.inner
    }

    pub(crate) fn now(&self) -> Timestamp {
        self.now
    }

    pub(crate) fn conversation(&self) -> &Conversation {
        &self.conv
    }

    pub(crate) fn event(&mut self, xi: usize, t: EventType, node: &str, payload: Value) {
        self.emit(xi, t, Some(node), None, payload);
    }

    pub(crate) fn vars_merge(&mut self, xi: usize, source: &str, pairs: Vec<(String, Value)>) {
        self.merge_vars(xi, source, pairs);
    }

    pub(crate) fn status(&mut self, xi: usize, to: Status, cause: &str) {
        self.change_status(xi, to, cause);
    }

    pub(crate) fn set_waiting(&mut self, xi: usize, reason: WaitingReason) {
        self.change_status(xi, Status::Waiting, reason.as_str());
        self.execs[xi].waiting_reason = Some(reason);
    }

    pub(crate) async fn send_agent_text(
        &mut self,
        xi: usize,
        node_id: &str,
        text: String,
    ) -> Result<String, Failure> {
        if text.chars().count() > 4096 {
            return Err(Failure::new(
                "invalid_message",
                "the message is longer than 4096 characters",
            ));
        }
        match self
            .deliver_message(
                xi,
                node_id,
                &Sender::default(),
                OutboundBody::Text { text },
                "send_text",
                true,
            )
            .await
        {
            Step::Fail(f) => Err(f),
            _ => Ok(self
                .conv
                .messages
                .last()
                .map(|m| m.id.clone())
                .unwrap_or_default()),
        }
    }

    pub(crate) async fn send_agent_media(
        &mut self,
        xi: usize,
        node_id: &str,
        media_type: String,
        url: String,
        caption: Option<String>,
    ) -> Result<String, Failure> {
        check_url("media_url", &url)?;
        match self
            .deliver_message(
                xi,
                node_id,
                &Sender::default(),
                OutboundBody::Media {
                    media_type,
                    url,
                    caption,
                },
                "send_media",
                true,
            )
            .await
        {
            Step::Fail(f) => Err(f),
            _ => Ok(self
                .conv
                .messages
                .last()
                .map(|m| m.id.clone())
                .unwrap_or_default()),
        }
    }

    /// Calls a function with the lazily built §8 payload (function nodes, function decides,
    /// agent function tools).
    pub(crate) async fn call_function(
        &mut self,
        xi: usize,
        node_id: &str,
        function: &switchboard_model::config::FunctionRef,
        available_edges: Option<&[String]>,
        input: Option<&Value>,
    ) -> crate::adapters::AdapterResult<Value> {
        // `flow_events` are the execution's last 10 events: those of this turn, topped up from
        // the store when the turn has fewer.
        let id = self.execs[xi].id.clone();
        let local: Vec<&Event> = self
            .events
            .iter()
            .filter(|ev| ev.execution_id == id)
            .collect();
        let mut older = Vec::new();
        if local.len() < 10 {
            let first_local = local
                .first()
                .map_or(self.execs[xi].event_seq + 1, |e| e.seq);
            let want = 10 - local.len() as u64;
            let after = first_local.saturating_sub(want + 1);
            older = self
                .inner
                .store
                .events(&id, after, want as usize, None)
                .await
                .unwrap_or_default();
            older.retain(|e| e.seq < first_local);
        }
        let secrets = self.secret_values(&self.execs[xi].secrets_used);
        let e = &self.execs[xi];
        let conv = &self.conv;
        let config = &self.inner.config;
        let events: Vec<&Event> = older
            .iter()
            .chain(self.events.iter().filter(|ev| ev.execution_id == id))
            .collect();
        let build = || {
            let mut p = function_payload(e, conv, config, &events, node_id, available_edges, input);
            redact_value(&mut p, &secrets);
            p
        };
        let call = FunctionCall::new(
            function.id.as_deref(),
            function.slug.as_deref(),
            &e.id,
            node_id,
            &e.vars,
            available_edges,
            input,
            &build,
        );
        self.inner.adapters.functions.invoke(&call).await
    }

    /// An agent webhook tool: URL, headers and body rendered with `args`; the arguments are
    /// merged over the rendered body object (never rendered themselves).
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn tool_http(
        &mut self,
        xi: usize,
        node_id: &str,
        method: &str,
        url_template: &str,
        headers: &Value,
        body: &Value,
        args: &Value,
    ) -> Result<Value, Failure> {
        let url = match self.render_with_args(
            xi,
            node_id,
            "url",
            &Value::String(url_template.to_owned()),
            args,
            Some(Mode::Url),
        )? {
            Value::String(s) => s,
            _ => String::new(),
        };
        if !is_http_url(&url) {
            return Err(Failure::new(
                "invalid_request",
                format!("`{}` is not an absolute http(s) URL", excerpt(&url)),
            ));
        }
        let headers = self.render_headers(xi, node_id, headers, Some(args))?;
        let mut rendered = self.render_with_args(xi, node_id, "body", body, args, None)?;
        if let (Value::Object(b), Value::Object(a)) = (&mut rendered, args) {
            for (k, v) in a {
                b.insert(k.clone(), v.clone());
            }
        }
        self.http_call(xi, node_id, method, url, headers, Some(rendered))
            .await
    }

    pub(crate) fn render_for_agent(
        &mut self,
        xi: usize,
        node_id: &str,
        field: &str,
        template: &str,
    ) -> Result<String, Failure> {
        self.render_text(xi, node_id, field, template, Mode::Text)
    }

    pub(crate) fn builtin_offered(flow: &CompiledFlow, ni: usize, tool: BuiltinTool) -> bool {
        match flow.flow.nodes[ni].config() {
            NodeConfig::Agent(a) => a.builtin_tools().contains(&tool),
            _ => false,
        }
    }

    pub(crate) fn delivery_mode(flow: &CompiledFlow, ni: usize) -> DeliveryMode {
        match flow.flow.nodes[ni].config() {
            NodeConfig::Agent(a) => a.message_delivery_mode.unwrap_or_default(),
            _ => DeliveryMode::default(),
        }
    }

    // --- redaction ---------------------------------------------------------------------------

    fn secret_values(&self, names: &[String]) -> Vec<(String, String)> {
        names
            .iter()
            .filter_map(|n| self.inner.adapters.secrets.get(n).map(|v| (v, n.clone())))
            .filter(|(v, _)| !v.is_empty())
            .collect()
    }

    pub(crate) fn redact(&self, names: &[String], v: &mut Value) {
        if names.is_empty() {
            return;
        }
        let secrets = self.secret_values(names);
        redact_value(v, &secrets);
    }

    /// Before committing: no secret value may reach events or stored state.
    fn redact_all(&mut self) {
        let mut names: Vec<String> = Vec::new();
        for e in &self.execs {
            for n in &e.secrets_used {
                if !names.contains(n) {
                    names.push(n.clone());
                }
            }
        }
        if names.is_empty() {
            return;
        }
        let secrets = self.secret_values(&names);
        for ev in &mut self.events {
            redact_value(&mut ev.payload, &secrets);
        }
        for e in &mut self.execs {
            for v in e.vars.values_mut() {
                redact_value(v, &secrets);
            }
            if let Some(d) = &mut e.error_details {
                redact_value(d, &secrets);
            }
            if let Some(a) = &mut e.agent {
                for m in &mut a.transcript {
                    redact_string(&mut m.content, &secrets);
                }
            }
        }
        for m in &mut self.conv.messages {
            redact_string(&mut m.text, &secrets);
        }
    }
}

fn redact_string(s: &mut String, secrets: &[(String, String)]) {
    for (value, name) in secrets {
        if s.contains(value.as_str()) {
            *s = s.replace(value.as_str(), &format!("[REDACTED:{name}]"));
        }
    }
}

fn redact_value(v: &mut Value, secrets: &[(String, String)]) {
    match v {
        Value::String(s) => redact_string(s, secrets),
        Value::Array(a) => a.iter_mut().for_each(|x| redact_value(x, secrets)),
        Value::Object(m) => m.values_mut().for_each(|x| redact_value(x, secrets)),
        _ => {}
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn excerpt(s: &str) -> String {
    let head: String = s.chars().take(60).collect();
    if head.len() < s.len() {
        format!("{head}…")
    } else {
        head
    }
}

fn check_len(what: &str, s: &str, max: usize) -> Result<(), Failure> {
    let n = s.chars().count();
    if n > max {
        return Err(Failure::new(
            "invalid_message",
            format!("{what} is {n} characters, more than {max}"),
        ));
    }
    Ok(())
}

fn check_url(what: &str, s: &str) -> Result<(), Failure> {
    if is_http_url(s) {
        Ok(())
    } else {
        Err(Failure::new(
            "invalid_message",
            format!("{what} `{}` is not an absolute http(s) URL", excerpt(s)),
        ))
    }
}

/// Sets a dot path (`a.0.b`) inside a JSON value, creating objects as needed.
fn set_path(root: &mut Value, path: &str, value: Value) {
    let mut cur = root;
    let segs: Vec<&str> = path.split('.').collect();
    for (i, seg) in segs.iter().enumerate() {
        let last = i + 1 == segs.len();
        match cur {
            Value::Object(m) => {
                if last {
                    m.insert((*seg).to_owned(), value);
                    return;
                }
                cur = m
                    .entry((*seg).to_owned())
                    .or_insert_with(|| Value::Object(Map::new()));
            }
            Value::Array(a) => {
                let Ok(k) = seg.parse::<usize>() else { return };
                let Some(slot) = a.get_mut(k) else { return };
                if last {
                    *slot = value;
                    return;
                }
                cur = slot;
            }
            _ => return,
        }
    }
}

/// The label of the edge a non-decide node advances on (§6: whatever its label, e.g. a legacy
/// `response`), `next` when there is none.
fn next_label(flow: &CompiledFlow, ni: usize) -> String {
    flow.next_edge(ni)
        .map_or("next", |k| flow.flow.edges[k].label())
        .to_owned()
}

/// Template parameters are sent as strings.
fn stringify_leaves(v: Value) -> Value {
    match v {
        Value::Array(a) => Value::Array(a.into_iter().map(stringify_leaves).collect()),
        Value::Object(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| (k, stringify_leaves(v)))
                .collect(),
        ),
        other => Value::String(crate::template::format_json_value(&other)),
    }
}

/// `set_variable` coercion (runtime-semantics §7.7).
fn coerce(v: Value, t: ValueType) -> Result<Value, Failure> {
    let fail = |what: &str| {
        Failure::new(
            "type_coercion",
            format!(
                "cannot convert {what} to {}",
                match t {
                    ValueType::String => "string",
                    ValueType::Number => "number",
                    ValueType::Boolean => "boolean",
                    ValueType::Json => "json",
                }
            ),
        )
    };
    match t {
        ValueType::String => Ok(match v {
            Value::String(s) => Value::String(s),
            Value::Null => Value::String(String::new()),
            other => Value::String(crate::template::format_json_value(&other)),
        }),
        ValueType::Number => match v {
            Value::Number(n) => Ok(Value::Number(n)),
            Value::String(s) => match serde_json::from_str::<Value>(s.trim()) {
                Ok(Value::Number(n)) => Ok(Value::Number(n)),
                _ => Err(fail(&format!("\"{}\"", excerpt(&s)))),
            },
            other => Err(fail(kind_of(&other))),
        },
        ValueType::Boolean => match v {
            Value::Bool(b) => Ok(Value::Bool(b)),
            Value::String(s) if s.trim().eq_ignore_ascii_case("true") => Ok(Value::Bool(true)),
            Value::String(s) if s.trim().eq_ignore_ascii_case("false") => Ok(Value::Bool(false)),
            other => Err(fail(kind_of(&other))),
        },
        ValueType::Json => match v {
            Value::String(s) => {
                serde_json::from_str(&s).map_err(|_| fail("a string that is not JSON"))
            }
            other => Ok(other),
        },
    }
}

/// `invalid-event-properties` checks at run time.
fn property_problem(props: &Value) -> Option<String> {
    let Value::Object(m) = props else {
        return Some("properties must be an object".into());
    };
    if m.len() > 25 {
        return Some(format!("{} properties, more than 25", m.len()));
    }
    if serde_json::to_string(props).map_or(0, |s| s.len()) > 8192 {
        return Some("properties are more than 8 KiB as JSON".into());
    }
    for (k, v) in m {
        if k.is_empty() || k.chars().count() > 64 {
            return Some(format!(
                "property key `{}` is empty or longer than 64 characters",
                excerpt(k)
            ));
        }
        match v {
            Value::Array(_) | Value::Object(_) => {
                return Some(format!("property `{}` is not a scalar", excerpt(k)));
            }
            Value::String(s) if s.len() > 1024 => {
                return Some(format!(
                    "property `{}` is longer than 1024 bytes",
                    excerpt(k)
                ));
            }
            _ => {}
        }
    }
    None
}

/// The function request body of runtime-semantics §8 (before redaction).
fn function_payload(
    e: &Execution,
    conv: &Conversation,
    config: &EngineConfig,
    events: &[&Event],
    node_id: &str,
    available_edges: Option<&[String]>,
    input: Option<&Value>,
) -> Value {
    let n = conv.messages.len();
    let messages: Vec<Value> = conv.messages[n.saturating_sub(20)..]
        .iter()
        .map(|m| {
            json!({"id": m.id, "direction": if m.direction == Direction::Inbound { "inbound" } else { "outbound" },
                   "type": m.kind, "text": m.text, "timestamp": m.at.rfc3339()})
        })
        .collect();
    let k = events.len();
    let flow_events: Vec<Value> = events[k.saturating_sub(10)..]
        .iter()
        .map(|ev| json!({"event_type": ev.event_type.as_str(), "payload": ev.payload}))
        .collect();
    let mut p = json!({
        "execution_context": {
            "vars": e.vars,
            "system": system_namespace(e, config),
            "context": e.context,
            "metadata": e.metadata,
        },
        "flow_info": {"id": e.flow_id, "name": e.flow_name, "step_id": node_id},
        "flow_events": flow_events,
        "whatsapp_context": {
            "conversation": {"id": conv.id, "phone_number": conv.phone_number, "contact": conv.contact},
            "messages": messages,
        },
    });
    if let Some(edges) = available_edges {
        p["available_edges"] = json!(edges);
    }
    if let Some(i) = input {
        p["input"] = i.clone();
    }
    p
}
