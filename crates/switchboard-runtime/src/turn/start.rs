//! Starting executions and delivering input to them: inbound messages, API resumes, timeouts,
//! status changes and jumps.

use std::sync::Arc;

use serde_json::{Value, json};
use switchboard_model::NodeKind;
use switchboard_model::config::NodeConfig;

use crate::error::EngineError;
use crate::event::EventType;
use crate::registry::CompiledFlow;
use crate::request::{Dispatch, InboundMessage};
use crate::state::{
    ChatMessage, Direction, Execution, HistoryMessage, LastResume, Object, Status, Timer,
    TriggerType, WaitingReason,
};

use super::{Input, Turn, next_label};

impl Turn<'_> {
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
        let ids = &self.ctx.adapters.ids;
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
            pending_effect: None,
            effects: 0,
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
        let window = self.ctx.config.history_window;
        for m in &batch {
            self.message_ids
                .push((self.conv.id.clone(), m.id.clone(), self.now));
            self.conv.record(inbound_history(m, self.now), window);
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
        let Some(flow) = self
            .ctx
            .registry
            .inbound_trigger(&self.conv.phone_number_id)?
        else {
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
                    Some(
                        NodeKind::Start
                        | NodeKind::SendText
                        | NodeKind::SendTemplate
                        | NodeKind::SendInteractive
                        | NodeKind::Decide
                        | NodeKind::Function
                        | NodeKind::Webhook
                        | NodeKind::SetVariable
                        | NodeKind::Call
                        | NodeKind::Handoff
                        | NodeKind::EmitEvent
                        | NodeKind::Pipedream,
                    )
                    | None => WaitingReason::HandoffResumed,
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
}

/// What the history keeps of an inbound message (kapso-project §4.1: type, content, reply id
/// and title, media flag, status).
fn inbound_history(m: &InboundMessage, now: crate::time::Timestamp) -> HistoryMessage {
    let at = m.timestamp.unwrap_or(now);
    let mut h = HistoryMessage::new(
        m.id.clone(),
        Direction::Inbound,
        m.kind.clone(),
        m.text.clone(),
        at,
    );
    let sent_type = m
        .interactive
        .as_ref()
        .and_then(|i| i.get("type"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    if let Some(r) = &m.reply {
        h.reply_id = Some(r.id.clone());
        h.reply_title = Some(r.title.clone());
        // A template's quick-reply button is a button reply to the flow.
        h.interactive_type = Some(if r.kind == "button" {
            "button_reply".to_owned()
        } else {
            r.kind.clone()
        });
    } else {
        h.interactive_type = sent_type.clone();
    }
    // The reply object as WhatsApp sent it (a list row's description, a WhatsApp Flow's
    // answer); without it, `whatsapp_context` shows the reply's id and title.
    if let (Some(t), Some(i)) = (&sent_type, &m.interactive)
        && let Some(data) = i.get(t.as_str())
    {
        h.interactive_data = Some(data.clone());
    }
    h.has_media = matches!(
        m.kind.as_str(),
        "image" | "video" | "audio" | "document" | "sticker"
    );
    h.status = Some("received".to_owned());
    h
}
