//! The `agent` node and the support `crate::agent` uses (sending, function and HTTP tools,
//! rendering).

use std::sync::Arc;

use serde_json::{Value, json};
use switchboard_model::config::{BuiltinTool, DeliveryMode, NodeConfig, Sender};
use switchboard_model::is_http_url;

use crate::adapters::{FunctionCall, OutboundBody};
use crate::engine::{CompiledFlow, EngineConfig, Inner};
use crate::event::{Event, EventType};
use crate::state::{
    AgentState, ChatMessage, Conversation, Direction, Execution, Status, WaitingReason,
};
use crate::template::Mode;
use crate::time::Timestamp;

use super::redact::redact_value;
use super::{Failure, Step, Turn, check_url, excerpt, system_namespace};

impl<'e> Turn<'e> {
    // --- agent -------------------------------------------------------------------------------

    pub(super) fn start_agent(
        &mut self,
        xi: usize,
        flow: &Arc<CompiledFlow>,
        ni: usize,
    ) -> Result<(), Failure> {
        let node_id = flow.flow.nodes[ni].id().to_owned();
        let prompt = match flow.flow.nodes[ni].config() {
            NodeConfig::Agent(a) => a.system_prompt.clone().unwrap_or_default(),
            NodeConfig::Start
            | NodeConfig::SendText(_)
            | NodeConfig::SendTemplate(_)
            | NodeConfig::SendInteractive(_)
            | NodeConfig::WaitForResponse(_)
            | NodeConfig::Decide(_)
            | NodeConfig::Function(_)
            | NodeConfig::Webhook(_)
            | NodeConfig::SetVariable(_)
            | NodeConfig::Call(_)
            | NodeConfig::Handoff(_)
            | NodeConfig::EmitEvent(_)
            | NodeConfig::Unknown => String::new(),
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

    pub(super) async fn agent_turn(
        &mut self,
        xi: usize,
        flow: &Arc<CompiledFlow>,
        ni: usize,
    ) -> Step {
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
            NodeConfig::Start
            | NodeConfig::SendText(_)
            | NodeConfig::SendTemplate(_)
            | NodeConfig::SendInteractive(_)
            | NodeConfig::WaitForResponse(_)
            | NodeConfig::Decide(_)
            | NodeConfig::Function(_)
            | NodeConfig::Webhook(_)
            | NodeConfig::SetVariable(_)
            | NodeConfig::Call(_)
            | NodeConfig::Handoff(_)
            | NodeConfig::EmitEvent(_)
            | NodeConfig::Unknown => false,
        }
    }

    pub(crate) fn delivery_mode(flow: &CompiledFlow, ni: usize) -> DeliveryMode {
        match flow.flow.nodes[ni].config() {
            NodeConfig::Agent(a) => a.message_delivery_mode.unwrap_or_default(),
            NodeConfig::Start
            | NodeConfig::SendText(_)
            | NodeConfig::SendTemplate(_)
            | NodeConfig::SendInteractive(_)
            | NodeConfig::WaitForResponse(_)
            | NodeConfig::Decide(_)
            | NodeConfig::Function(_)
            | NodeConfig::Webhook(_)
            | NodeConfig::SetVariable(_)
            | NodeConfig::Call(_)
            | NodeConfig::Handoff(_)
            | NodeConfig::EmitEvent(_)
            | NodeConfig::Unknown => DeliveryMode::default(),
        }
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
