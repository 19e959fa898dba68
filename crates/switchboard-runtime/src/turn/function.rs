//! Calling a function (runtime-semantics §8): the request payload, built only when the invoker
//! asks for it, for function nodes, function decides and agent function tools alike.

use serde_json::{Value, json};

use crate::adapters::FunctionCall;
use crate::config::EngineConfig;
use crate::event::Event;
use crate::state::{Conversation, Direction, Execution};

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
