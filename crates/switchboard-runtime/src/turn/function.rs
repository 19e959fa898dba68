//! Calling a function (runtime-semantics §8, with Kapso's `whatsapp_context` of
//! kapso-project §4.1): the request payload, built only when the invoker asks for it, for
//! function nodes, function decides and agent function tools alike.

use serde_json::{Value, json};

use crate::adapters::FunctionCall;
use crate::config::EngineConfig;
use crate::event::Event;
use crate::state::{Conversation, Direction, Execution, HistoryMessage, TriggerType};

use super::redact::redact_value;
use super::{Turn, system_namespace};

impl Turn<'_> {
    /// Calls a function with the lazily built §8 payload (function nodes, function decides,
    /// agent function tools).
    pub(super) async fn call_function(
        &mut self,
        xi: usize,
        node_id: &str,
        function: &switchboard_model::config::ResourceRef,
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
                .ctx
                .store
                .events(&id, after, want as usize, None)
                .await
                .unwrap_or_default();
            older.retain(|e| e.seq < first_local);
        }
        let secrets = self.secret_values(&self.execs[xi].secrets_used);
        let e = &self.execs[xi];
        let conv = &self.conv;
        let config = &self.ctx.config;
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
        self.ctx.adapters.functions.invoke(&call).await
    }
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
    });
    // Only an execution a WhatsApp message started has a WhatsApp context (not an API start).
    if e.trigger_type == TriggerType::InboundMessage {
        p["whatsapp_context"] = whatsapp_context(conv);
    }
    if let Some(edges) = available_edges {
        p["available_edges"] = json!(edges);
    }
    if let Some(i) = input {
        p["input"] = i.clone();
    }
    p
}

/// Kapso's `whatsapp_context`: the conversation and its messages (all the history keeps, at
/// most the engine's history window, oldest first), with Kapso's field names.
pub(crate) fn whatsapp_context(conv: &Conversation) -> Value {
    let first = conv.messages.first().map(|m| m.at);
    let last = conv
        .messages
        .last()
        .map(|m| m.status_at.unwrap_or(m.at).max(m.at));
    let created = conv.created_at.or(first);
    let time = |t: Option<crate::time::Timestamp>| t.map(|t| t.rfc3339());
    let messages: Vec<Value> = conv.messages.iter().map(|m| message(conv, m)).collect();
    json!({
        "conversation": {
            "id": conv.id,
            "phone_number": conv.phone_number,
            "status": "open",
            "last_active_at": time(last.or(created)),
            "whatsapp_config_id": conv.phone_number_id,
            "metadata": {},
            "created_at": time(created),
            "updated_at": time(last.or(created)),
        },
        "messages": messages,
    })
}

/// Kapso's `message_type` for a WhatsApp message type (`null` for a type Kapso does not name).
fn message_type(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "text" => "text",
        "image" => "image",
        "video" => "video",
        "document" => "document",
        "audio" => "audio",
        "location" => "location",
        // A template's quick-reply button is a reply to an interactive choice.
        "interactive" | "button" => "interactive",
        "template" => "template",
        "reaction" => "reaction",
        "contacts" => "contacts",
        _ => return None,
    })
}

fn message(conv: &Conversation, m: &HistoryMessage) -> Value {
    let inbound = m.direction == Direction::Inbound;
    let status = m
        .status
        .clone()
        .unwrap_or_else(|| if inbound { "received" } else { "sent" }.to_owned());
    // A tap's reply object: as WhatsApp sent it when kept, else its id and title.
    let data = m.interactive_data.clone().or_else(|| {
        m.reply_id
            .as_ref()
            .map(|id| json!({"id": id, "title": m.reply_title}))
    });
    json!({
        "id": m.id,
        "message_type": message_type(&m.kind),
        "content": m.text,
        "direction": if inbound { "inbound" } else { "outbound" },
        "status": status,
        "processing_status": "processed",
        "whatsapp_message_id": m.id,
        "origin": "cloud_api",
        "phone_number": conv.phone_number,
        "has_media": m.has_media,
        "reply_option_id": m.reply_id,
        "reply_option_title": m.reply_title,
        "interactive_type": m.interactive_type,
        "interactive_data": data,
        "created_at": m.at.rfc3339(),
        "updated_at": m.status_at.unwrap_or(m.at).max(m.at).rfc3339(),
    })
}
