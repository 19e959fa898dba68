//! One turn: the work caused by one input (runtime-semantics §6, §7).
//!
//! A [`Turn`] holds the conversation and the executions it touches, runs nodes one after another
//! until every execution waits, hands off, ends or fails, collects the events, and commits it
//! all at once. Side effects go through the adapters as the nodes run.

mod agent;
mod call;
mod decide;
mod effect;

pub use effect::Resumed;
pub(crate) use redact::redact_records;
mod emit;
mod function;
mod redact;
mod render;
mod send;
mod start;
mod webhook;

use std::sync::Arc;

use serde_json::{Map, Value, json};
use switchboard_model::config::{NodeConfig, ValueType};
use switchboard_model::{NodeKind, is_http_url};

use crate::adapters::AdapterError;
use crate::config::EngineConfig;
use crate::context::EngineContext;
use crate::error::{EngineError, StoreError};
use crate::event::{Event, EventType};
use crate::failure::{Failure, FailureKind};
use crate::registry::CompiledFlow;
use crate::state::{Conversation, Execution, LastResume, Status, Timer, WaitingReason};
use crate::store::{OutboxRecord, TurnCommit};
use crate::template::Mode;
use crate::time::Timestamp;

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
    /// The turn cannot go on (a checkpoint commit failed): nothing more is done or committed.
    Abort(EngineError),
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
    ctx: &'e EngineContext,
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
    /// Outbox records to write with the next commit.
    outbox: Vec<OutboxRecord>,
    /// Inbox items consumed by this turn, removed with the next commit.
    pub consumed: Vec<u64>,
    /// An execution read before the turn (with a worker's claim): taken instead of reading
    /// the store when the turn first needs it.
    preloaded: Option<Execution>,
}

async fn store_commit(ctx: &EngineContext, commit: TurnCommit) -> Result<(), EngineError> {
    ctx.store.commit(commit).await.map_err(|e| match e {
        StoreError::Conflict(m) => EngineError::Conflict(m),
        other => EngineError::Store(other),
    })
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

impl<'e> Turn<'e> {
    pub fn new(ctx: &'e EngineContext, conv: Conversation, now: Timestamp) -> Turn<'e> {
        Turn {
            ctx,
            now,
            conv,
            execs: Vec::new(),
            events: Vec::new(),
            message_ids: Vec::new(),
            idempotency: None,
            steps: 0,
            calling: Vec::new(),
            next_id: None,
            outbox: Vec::new(),
            consumed: Vec::new(),
            preloaded: None,
        }
    }

    /// Gives the turn an execution already read (it is not read again).
    pub fn preload(&mut self, execution: Option<Execution>) {
        self.preloaded = execution;
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
            outbox: self.outbox,
            consumed: self.consumed,
        };
        store_commit(self.ctx, commit).await
    }

    /// Commits the turn so far and goes on (before an effect leaves the process). What is
    /// committed is redacted; the turn keeps working on its own values.
    pub(super) async fn checkpoint(&mut self) -> Result<(), EngineError> {
        let mut copy = Turn {
            ctx: self.ctx,
            now: self.now,
            conv: self.conv.clone(),
            execs: self.execs.clone(),
            events: std::mem::take(&mut self.events),
            message_ids: std::mem::take(&mut self.message_ids),
            idempotency: self.idempotency.take(),
            steps: 0,
            calling: Vec::new(),
            next_id: None,
            outbox: std::mem::take(&mut self.outbox),
            consumed: std::mem::take(&mut self.consumed),
            preloaded: None,
        };
        copy.redact_all();
        copy.log();
        let commit = TurnCommit {
            conversations: vec![copy.conv],
            executions: copy.execs,
            events: copy.events,
            message_ids: copy.message_ids,
            idempotency: copy.idempotency,
            outbox: copy.outbox,
            consumed: copy.consumed,
        };
        store_commit(self.ctx, commit).await?;
        self.conv.version += 1;
        for e in &mut self.execs {
            e.version += 1;
        }
        Ok(())
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

    /// The index of an execution in the turn, loading it when the turn does not hold it yet.
    pub async fn load(&mut self, id: &str) -> Result<usize, EngineError> {
        self.exec_index(id).await
    }

    async fn exec_index(&mut self, id: &str) -> Result<usize, EngineError> {
        if let Some(i) = self.execs.iter().position(|e| e.id == id) {
            return Ok(i);
        }
        let e = match self.preloaded.take() {
            Some(e) if e.id == id => e,
            other => {
                self.preloaded = other;
                self.ctx.load_execution(id).await?
            }
        };
        self.execs.push(e);
        Ok(self.execs.len() - 1)
    }

    fn flow_of(&self, xi: usize) -> Result<Arc<CompiledFlow>, EngineError> {
        let e = &self.execs[xi];
        self.ctx.flow(&e.flow_id)
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
            id: numbered_id(&e.id, ':', e.event_seq),
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
                .ctx
                .config
                .max_steps_per_turn
                .or(flow.max_steps)
                .unwrap_or(1000);
            self.steps += 1;
            let node = &flow.flow.nodes[ni];
            let node_id = node.id().to_owned();
            if self.steps > max {
                let f = Failure::new(
                    FailureKind::StepLimit,
                    format!("more than {max} steps in one turn"),
                );
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
            Step::Abort(e) => Err(e),
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
                            | NodeKind::Pipedream
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
                NodeConfig::Start
                | NodeConfig::SendText(_)
                | NodeConfig::SendTemplate(_)
                | NodeConfig::SendInteractive(_)
                | NodeConfig::WaitForResponse(_)
                | NodeConfig::Decide(_)
                | NodeConfig::Function(_)
                | NodeConfig::Webhook(_)
                | NodeConfig::SetVariable(_)
                | NodeConfig::Agent(_)
                | NodeConfig::Handoff(_)
                | NodeConfig::EmitEvent(_)
                | NodeConfig::Pipedream(_)
                | NodeConfig::Unknown => "subworkflow_error".to_owned(),
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
                    .call_function(xi, &node_id, &c.function, Some(&[]), None)
                    .await
                {
                    Ok(Value::Object(resp)) => {
                        if let Some(v) = resp.get("vars") {
                            let Value::Object(vars) = v else {
                                let e = AdapterError::new(
                                    FailureKind::InvalidJson,
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
                            FailureKind::InvalidJson,
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
            // Loaded and validated (`unsupported-node-type`), never run: its `error` edge, or
            // the execution's failure, applies (kapso-project §3).
            NodeConfig::Pipedream(c) => Step::Fail(Failure::new(
                FailureKind::UnsupportedNode,
                format!(
                    "node type `pipedream` ({}) is not run by Switchboard",
                    c.app_slug.as_deref().unwrap_or("no app")
                ),
            )),
            NodeConfig::Unknown => Step::Fail(Failure::new(
                FailureKind::InvalidRequest,
                "unknown node type",
            )),
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
}

/// `<base><sep><n>`: an event id (`<execution id>:<seq>`) or an outbox record id
/// (`<execution id>.<n>`), built without the formatting machinery (`format!` was 7 % of a turn's
/// instructions for the event ids alone).
pub(super) fn numbered_id(base: &str, sep: char, n: u64) -> String {
    let mut digits = itoa::Buffer::new();
    let digits = digits.format(n);
    let mut id = String::with_capacity(base.len() + 1 + digits.len());
    id.push_str(base);
    id.push(sep);
    id.push_str(digits);
    id
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

fn check_url(what: &str, s: &str) -> Result<(), Failure> {
    if is_http_url(s) {
        Ok(())
    } else {
        Err(Failure::new(
            FailureKind::InvalidMessage,
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

/// `set_variable` coercion (runtime-semantics §7.7).
fn coerce(v: Value, t: ValueType) -> Result<Value, Failure> {
    let fail = |what: &str| {
        Failure::new(
            FailureKind::TypeCoercion,
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
