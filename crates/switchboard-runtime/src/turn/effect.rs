//! Effects: what leaves the process (WhatsApp messages, project events). Nothing leaves before
//! the state that produced it is committed: an effect is written to the outbox (with the
//! execution marking it pending) in a checkpoint commit, carried out, and its outcome is
//! recorded with the turn's next commit. A turn interrupted in between — a crash, or a send
//! scheduled for later — leaves the execution `running` with the pending effect, and
//! [`Turn::resume_effect`] continues it from the store.

use serde_json::{Value, json};

use crate::adapters::{AdapterError, OutboundBody};
use crate::error::EngineError;
use crate::event::EventType;
use crate::failure::{Failure, FailureKind};
use crate::state::{ChatMessage, Direction, EffectKind, HistoryMessage, PendingEffect};
use crate::store::{DeliveryStatus, Effect, OutboxQuery, OutboxRecord, OutboxState, StatusRecord};
use crate::time::Timestamp;

use super::{Step, Turn};

/// How an effect ended.
pub(super) enum Outcome {
    /// Carried out (with the WhatsApp message id, for a message).
    Done(Option<String>),
    /// Refused.
    Failed(AdapterError),
    /// Scheduled for later (`delay_seconds`): the turn stops here.
    Scheduled,
}

/// What [`Engine::resume_pending`](crate::Engine::resume_pending) did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resumed {
    /// No pending effect.
    Nothing,
    /// The effect is not due yet (a scheduled send, or an interrupted one waiting for a
    /// delivery status).
    NotDue,
    /// The effect was settled and the execution went on.
    Continued,
}

impl Turn<'_> {
    /// Commits the turn so far with `effect` as an outbox record, then carries it out (or, with
    /// `not_before` in the future, leaves it scheduled).
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn carry_out(
        &mut self,
        xi: usize,
        node_id: &str,
        kind: EffectKind,
        action: &str,
        effect: Effect,
        not_before: Option<Timestamp>,
        tool_call_id: Option<String>,
    ) -> Result<Outcome, EngineError> {
        self.execs[xi].effects += 1;
        let id = super::numbered_id(&self.execs[xi].id, '.', self.execs[xi].effects);
        let scheduled = not_before.filter(|t| *t > self.now);
        let mut record = OutboxRecord {
            id: id.clone(),
            conversation_id: self.conv.id.clone(),
            execution_id: self.execs[xi].id.clone(),
            node_id: node_id.to_owned(),
            effect,
            state: match scheduled {
                Some(_) => OutboxState::Scheduled,
                None => OutboxState::Sending { since: self.now },
            },
            not_before: scheduled,
            statuses: Vec::new(),
            created_at: self.now,
        };
        self.execs[xi].pending_effect = Some(PendingEffect {
            outbox_id: id,
            node_id: node_id.to_owned(),
            kind,
            action: action.to_owned(),
            due_at: scheduled
                .unwrap_or_else(|| Timestamp(self.now.0 + self.ctx.config.resend_after_ms)),
            tool_call_id,
        });
        self.outbox.push(record.clone());
        self.checkpoint().await?;
        if scheduled.is_some() {
            return Ok(Outcome::Scheduled);
        }
        let outcome = self.perform(&mut record).await;
        self.execs[xi].pending_effect = None;
        self.outbox.push(record);
        Ok(outcome)
    }

    /// Hands an effect to its adapter and records the outcome on the record.
    async fn perform(&self, record: &mut OutboxRecord) -> Outcome {
        let result = match &record.effect {
            Effect::Message(m) => {
                let windowed = !matches!(m.body, OutboundBody::Template { .. });
                if windowed && !self.in_service_window() {
                    Err(AdapterError::new(
                        FailureKind::OutsideServiceWindow,
                        "the contact has not written in the last 24 hours; only templates may be sent",
                    ))
                } else {
                    let mut m = m.clone();
                    m.reference = Some(record.id.clone());
                    self.ctx
                        .adapters
                        .messenger
                        .send(m)
                        .await
                        .map(|r| Some(r.message_id))
                }
            }
            Effect::ProjectEvent(ev) => self
                .ctx
                .adapters
                .project_events
                .emit(ev.clone())
                .await
                .map(|()| None),
        };
        match result {
            Ok(whatsapp_id) => {
                record.state = OutboxState::Sent {
                    at: self.now,
                    whatsapp_id: whatsapp_id.clone(),
                };
                Outcome::Done(whatsapp_id)
            }
            Err(e) => {
                record.state = OutboxState::Failed {
                    at: self.now,
                    error: Failure::from(e.clone()).summary(),
                };
                Outcome::Failed(e)
            }
        }
    }

    /// The 24-hour customer service window (checked when a message is carried out).
    pub(super) fn in_service_window(&self) -> bool {
        !self.ctx.config.enforce_service_window
            || self
                .conv
                .last_inbound_at
                .is_some_and(|t| self.now.0 - t.0 < 24 * 3600 * 1000)
    }

    /// After a message was sent: the history and `action_performed`.
    pub(super) fn message_sent(
        &mut self,
        xi: usize,
        node_id: &str,
        action: &str,
        body: &OutboundBody,
        message_id: &str,
    ) {
        let text = match body {
            OutboundBody::Text { text } => text.clone(),
            OutboundBody::Interactive(i) => i.body.clone(),
            OutboundBody::Template { template_id, .. } => format!("[template {template_id}]"),
            OutboundBody::Media { caption, url, .. } => {
                caption.clone().unwrap_or_else(|| url.clone())
            }
        };
        let kind = match body {
            OutboundBody::Text { .. } => "text",
            OutboundBody::Interactive(_) => "interactive",
            OutboundBody::Template { .. } => "template",
            OutboundBody::Media { media_type, .. } => media_type.as_str(),
        }
        .to_owned();
        let mut h = HistoryMessage::new(message_id, Direction::Outbound, kind, text, self.now);
        h.has_media = matches!(body, OutboundBody::Media { .. });
        if let OutboundBody::Interactive(i) = body {
            h.interactive_type = Some(i.interactive_type.clone());
        }
        h.status = Some("sent".to_owned());
        h.status_at = Some(self.now);
        self.conv.record(h, self.ctx.config.history_window);
        self.performed(xi, node_id, action, json!({"message_id": message_id}));
    }

    /// Continues an execution left with a pending effect (a scheduled send that is due, or an
    /// effect a crash interrupted): settles the effect from its outbox record — carrying it out
    /// when it is due and not yet done — and runs the execution on from there.
    pub async fn resume_effect(&mut self, xi: usize) -> Result<Resumed, EngineError> {
        let Some(pending) = self.execs[xi].pending_effect.clone() else {
            return Ok(Resumed::Nothing);
        };
        let Some(mut record) = self
            .ctx
            .store
            .outbox(&OutboxQuery::Id(pending.outbox_id.clone()))
            .await?
            .into_iter()
            .next()
        else {
            return Err(EngineError::Internal(format!(
                "outbox record {} of execution {} is missing",
                pending.outbox_id, self.execs[xi].id
            )));
        };
        let outcome = match &record.state {
            OutboxState::Sent { whatsapp_id, .. } => Outcome::Done(whatsapp_id.clone()),
            OutboxState::Failed { error, .. } => Outcome::Failed(AdapterError {
                kind: error
                    .get("kind")
                    .and_then(Value::as_str)
                    .and_then(|k| k.parse().ok())
                    .unwrap_or(FailureKind::Adapter),
                message: error
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                status: error
                    .get("status")
                    .and_then(Value::as_u64)
                    .and_then(|s| u16::try_from(s).ok()),
            }),
            OutboxState::Scheduled | OutboxState::Sending { .. } => {
                if pending.due_at > self.now {
                    return Ok(Resumed::NotDue);
                }
                // Due: carry it out now (again, for an interrupted send nobody confirmed).
                record.state = OutboxState::Sending { since: self.now };
                if let Some(p) = &mut self.execs[xi].pending_effect {
                    p.due_at = Timestamp(self.now.0 + self.ctx.config.resend_after_ms);
                }
                self.outbox.push(record.clone());
                self.checkpoint().await?;
                self.perform(&mut record).await
            }
        };
        self.execs[xi].pending_effect = None;
        self.outbox.push(record.clone());
        self.steps = 0;
        let flow = self.flow_of(xi)?;
        let Some(ni) = flow.node_index(&pending.node_id) else {
            return Err(EngineError::NotFound(format!("node `{}`", pending.node_id)));
        };
        let step = match (pending.kind, &record.effect) {
            (EffectKind::Send, Effect::Message(m)) => {
                self.send_outcome(xi, &pending.node_id, &pending.action, &m.body, outcome)
            }
            (EffectKind::Emit, Effect::ProjectEvent(ev)) => {
                self.emit_outcome(xi, &pending.node_id, ev, outcome)
            }
            (EffectKind::Send | EffectKind::Emit, _) => Step::Fail(Failure::new(
                FailureKind::Adapter,
                format!("outbox record {} holds the wrong kind of effect", record.id),
            )),
            (EffectKind::AgentMessage, _) => {
                self.agent_effect_settled(xi, &pending, &record, outcome);
                self.agent_turn(xi, &flow, ni).await
            }
        };
        self.after_step(xi, &flow, ni, step).await?;
        Ok(Resumed::Continued)
    }

    /// A send node's step once its message was carried out (or refused).
    pub(super) fn send_outcome(
        &mut self,
        xi: usize,
        node_id: &str,
        action: &str,
        body: &OutboundBody,
        outcome: Outcome,
    ) -> Step {
        match outcome {
            Outcome::Done(id) => {
                self.message_sent(xi, node_id, action, body, id.as_deref().unwrap_or_default());
                Step::Next
            }
            Outcome::Failed(e) => {
                self.action_failed(xi, node_id, action, &e);
                Step::Fail(e.into())
            }
            Outcome::Scheduled => Step::Stop,
        }
    }

    /// An agent's message settled while resuming: the tool call that sent it (if any) gets its
    /// result, and every other call of the model's last answer that has none is answered as
    /// interrupted, so the transcript stays well formed and the agent goes on.
    fn agent_effect_settled(
        &mut self,
        xi: usize,
        pending: &PendingEffect,
        record: &OutboxRecord,
        outcome: Outcome,
    ) {
        let result = match (&outcome, &record.effect) {
            (Outcome::Done(id), Effect::Message(m)) => {
                let id = id.clone().unwrap_or_default();
                self.message_sent(xi, &pending.node_id, &pending.action, &m.body, &id);
                json!({"message_id": id})
            }
            (Outcome::Failed(e), _) => json!({"error": e.message}),
            _ => json!({"error": "the message was not sent"}),
        };
        let Some(agent) = self.execs[xi].agent.as_mut() else {
            return;
        };
        let Some(last) = agent.transcript.iter().rposition(|m| m.role == "assistant") else {
            return;
        };
        let calls = agent.transcript[last].tool_calls.clone();
        for call in calls {
            let answered = agent.transcript[last + 1..]
                .iter()
                .any(|m| m.tool_call_id.as_deref() == Some(call.id.as_str()));
            if answered {
                continue;
            }
            let content = if pending.tool_call_id.as_deref() == Some(call.id.as_str()) {
                result.clone()
            } else {
                json!({"error": "interrupted: the turn was resumed after a restart; call the tool again if it is still needed"})
            };
            agent.transcript.push(ChatMessage {
                role: "tool".into(),
                content: serde_json::to_string(&content).unwrap_or_default(),
                tool_calls: Vec::new(),
                tool_call_id: Some(call.id.clone()),
            });
        }
    }

    /// Records a delivery status on its outbox record (a status confirms an interrupted send:
    /// WhatsApp accepted it) and as a `message_status` event of the record's execution. A
    /// status already recorded changes nothing.
    pub async fn delivery_status(
        &mut self,
        mut record: OutboxRecord,
        status: &DeliveryStatus,
    ) -> Result<(), EngineError> {
        // A record this turn already changed (several statuses of one message) is taken from
        // the turn, not from the store.
        if let Some(i) = self.outbox.iter().position(|r| r.id == record.id) {
            record = self.outbox.remove(i);
        }
        let entry = StatusRecord {
            status: status.status.clone(),
            at: status.at,
            errors: status.errors.clone(),
        };
        if record.statuses.contains(&entry) {
            return Ok(());
        }
        if matches!(
            record.state,
            OutboxState::Sending { .. } | OutboxState::Scheduled
        ) {
            record.state = OutboxState::Sent {
                at: status.at,
                whatsapp_id: Some(status.message_id.clone()),
            };
        }
        record.statuses.push(entry);
        // The history's delivery status (what `whatsapp_context` reports), when it is newer.
        for m in self.conv.messages.iter_mut().rev() {
            if m.id == status.message_id && m.status_at.is_none_or(|t| t <= status.at) {
                let m = std::sync::Arc::make_mut(m);
                m.status = Some(status.status.clone());
                m.status_at = Some(status.at);
            }
        }
        let xi = self.load(&record.execution_id).await?;
        let mut payload = json!({
            "outbox_id": record.id,
            "message_id": status.message_id,
            "status": status.status,
            "at": status.at.rfc3339(),
        });
        if !status.errors.is_empty() {
            payload["errors"] = json!(status.errors);
        }
        let node_id = record.node_id.clone();
        self.emit(xi, EventType::MessageStatus, Some(&node_id), None, payload);
        // A send a crash interrupted is settled by its status: the execution may go on now,
        // not at its resend time.
        let now = self.now;
        if matches!(record.state, OutboxState::Sent { .. })
            && let Some(p) = self.execs[xi].pending_effect.as_mut()
            && p.outbox_id == record.id
            && p.due_at > now
        {
            p.due_at = now;
        }
        self.outbox.push(record);
        Ok(())
    }
}
