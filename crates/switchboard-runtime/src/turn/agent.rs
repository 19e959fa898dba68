//! The `agent` node (runtime-semantics §7.10): a multi-turn tool-calling loop.
//!
//! A turn calls the model up to `max_iterations` times with the transcript and the offered tools
//! (the built-ins, webhook tools, function tools, knowledge bases and MCP tools), sends assistant
//! text (unless `tool_only`), runs the tool calls in order and appends their results. A reply
//! without tool calls ends the turn; `complete_task`, `handoff_to_human` and `enter_waiting` end
//! it too. Tool errors go back to the model as `{"error": …}`; only model failures and running out
//! of iterations fail the node.

use std::sync::Arc;

use serde_json::{Map, Value, json};
use switchboard_model::config::{Agent, BuiltinTool, DeliveryMode, NodeConfig, Sender};
use switchboard_model::is_http_url;

use crate::adapters::{ChatRequest, McpServer, OutboundBody, Purpose, ToolSpec};
use crate::error::EngineError;
use crate::event::EventType;
use crate::failure::{Failure, FailureKind};
use crate::registry::CompiledFlow;
use crate::state::EffectKind;
use crate::state::{AgentState, ChatMessage, Status, ToolCall, WaitingReason};
use crate::store::Effect;
use crate::template::Mode;

use super::effect::Outcome;
use super::{Step, Turn, check_url, excerpt, system_namespace};

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
            | NodeConfig::Pipedream(_)
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
        run_turn(self, xi, flow, ni).await
    }

    // --- agent support ------------------------------------------------------------------------

    /// Ends the agent activation (completed or failed): its transcript is not kept.
    pub(super) fn end_agent_activation(&mut self, xi: usize) {
        self.execs[xi].agent = None;
    }

    fn set_waiting(&mut self, xi: usize, reason: WaitingReason) {
        self.change_status(xi, Status::Waiting, reason.as_str());
        self.execs[xi].waiting_reason = Some(reason);
    }

    /// An agent's message (assistant text, `send_notification_to_user`, `send_media`):
    /// checked, committed, then carried out. The inner result is the WhatsApp message id or the
    /// failure; the outer error means the turn cannot go on.
    async fn agent_message(
        &mut self,
        xi: usize,
        node_id: &str,
        body: OutboundBody,
        action: &str,
        tool_call_id: Option<String>,
    ) -> Result<Result<String, Failure>, EngineError> {
        if !self.in_service_window() {
            return Ok(Err(Failure::new(
                FailureKind::OutsideServiceWindow,
                "the contact has not written in the last 24 hours; only templates may be sent",
            )));
        }
        let msg = match self.outbound(xi, node_id, &Sender::default(), body) {
            Ok(m) => m,
            Err(f) => return Ok(Err(f)),
        };
        let body = msg.body.clone();
        let outcome = self
            .carry_out(
                xi,
                node_id,
                EffectKind::AgentMessage,
                action,
                Effect::Message(msg),
                None,
                tool_call_id,
            )
            .await?;
        Ok(match outcome {
            Outcome::Done(id) => {
                let id = id.unwrap_or_default();
                self.message_sent(xi, node_id, action, &body, &id);
                Ok(id)
            }
            Outcome::Failed(e) => {
                self.action_failed(xi, node_id, action, &e);
                Err(e.into())
            }
            Outcome::Scheduled => Err(Failure::new(
                FailureKind::Adapter,
                "an agent's message cannot be scheduled",
            )),
        })
    }

    async fn send_agent_text(
        &mut self,
        xi: usize,
        node_id: &str,
        text: String,
        tool_call_id: Option<String>,
    ) -> Result<Result<String, Failure>, EngineError> {
        if text.chars().count() > 4096 {
            return Ok(Err(Failure::new(
                FailureKind::InvalidMessage,
                "the message is longer than 4096 characters",
            )));
        }
        self.agent_message(
            xi,
            node_id,
            OutboundBody::Text { text },
            "send_text",
            tool_call_id,
        )
        .await
    }

    async fn send_agent_media(
        &mut self,
        xi: usize,
        node_id: &str,
        media: OutboundBody,
        tool_call_id: Option<String>,
    ) -> Result<Result<String, Failure>, EngineError> {
        if let OutboundBody::Media { url, .. } = &media
            && let Err(f) = check_url("media_url", url)
        {
            return Ok(Err(f));
        }
        self.agent_message(xi, node_id, media, "send_media", tool_call_id)
            .await
    }

    /// An agent webhook tool (kapso-project §4.5): URL, headers and body rendered with the
    /// tool call's arguments (bare names resolve in them first, then in `vars`); the request
    /// body is the arguments with the rendered `body` merged over them — `body` holds
    /// constants sent without AI changes, so its keys win (arguments are never rendered).
    #[allow(clippy::too_many_arguments)]
    async fn tool_http(
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
                FailureKind::InvalidRequest,
                format!("`{}` is not an absolute http(s) URL", excerpt(&url)),
            ));
        }
        let headers = self.render_headers(xi, node_id, headers, Some(args))?;
        let mut rendered = self.render_with_args(xi, node_id, "body", body, args, None)?;
        if let (Value::Object(b), Value::Object(a)) = (&rendered, args) {
            let mut merged = a.clone();
            for (k, v) in b {
                merged.insert(k.clone(), v.clone());
            }
            rendered = Value::Object(merged);
        }
        self.http_call(xi, node_id, method, url, headers, Some(rendered))
            .await
    }

    fn builtin_offered(flow: &CompiledFlow, ni: usize, tool: BuiltinTool) -> bool {
        if let NodeConfig::Agent(a) = flow.flow.nodes[ni].config() {
            a.builtin_tools().contains(&tool)
        } else {
            false
        }
    }

    fn delivery_mode(flow: &CompiledFlow, ni: usize) -> DeliveryMode {
        if let NodeConfig::Agent(a) = flow.flow.nodes[ni].config() {
            a.message_delivery_mode.unwrap_or_default()
        } else {
            DeliveryMode::default()
        }
    }
}

/// Knowledge-base texts up to this size are returned whole.
const KB_WHOLE_LIMIT: usize = 32 * 1024;

enum ToolOutcome {
    Result(Value),
    Complete,
    Handoff(Option<String>),
    EnterWaiting,
    /// The turn cannot go on (a checkpoint commit failed).
    Abort(EngineError),
}

async fn run_turn(turn: &mut Turn<'_>, xi: usize, flow: &Arc<CompiledFlow>, ni: usize) -> Step {
    let NodeConfig::Agent(cfg) = flow.flow.nodes[ni].config() else {
        return Step::Fail(Failure::new(
            FailureKind::InvalidRequest,
            "not an agent node",
        ));
    };
    let node_id = flow.flow.nodes[ni].id().to_owned();
    if turn.execs[xi].agent.is_none() {
        return Step::Fail(Failure::new(
            FailureKind::Adapter,
            "the agent activation is missing",
        ));
    }
    if let Err(f) = list_mcp_tools(turn, xi, &node_id, cfg).await {
        return Step::Fail(f);
    }
    let tools = offered_tools(turn, xi, cfg);
    let max = cfg.max_iterations_or_default().max(1);
    let model = match turn.model_name(&cfg.model) {
        Ok(m) => m,
        Err(f) => return Step::Fail(f),
    };
    let mut iterations: i64 = 0;
    loop {
        if iterations >= max {
            turn.emit(
                xi,
                EventType::AgentTurnEnded,
                Some(&node_id),
                None,
                json!({"node_id": node_id, "reason": "max_iterations", "iterations": iterations}),
            );
            return Step::Fail(Failure::new(
                FailureKind::MaxIterations,
                format!("the agent needed more than {max} model calls in one turn"),
            ));
        }
        iterations += 1;
        let transcript = turn.execs[xi]
            .agent
            .as_ref()
            .map(|a| a.transcript.clone())
            .unwrap_or_default();
        let req = ChatRequest {
            model: model.clone(),
            purpose: Purpose::Agent {
                node_id: node_id.clone(),
            },
            messages: transcript,
            tools: tools.clone(),
            temperature: Some(cfg.temperature.unwrap_or(0.0)),
            max_tokens: Some(cfg.max_tokens.unwrap_or(8192)),
            reasoning_effort: cfg
                .reasoning_effort
                .map(|r| format!("{r:?}").to_ascii_lowercase()),
        };
        let resp = match turn.ctx.adapters.model.complete(req).await {
            Ok(r) => r,
            Err(e) => return Step::Fail(e.into()),
        };
        let text = resp.text.clone().unwrap_or_default();
        if let Some(a) = turn.execs[xi].agent.as_mut() {
            a.transcript.push(ChatMessage {
                role: "assistant".into(),
                content: text.clone(),
                tool_calls: resp.tool_calls.clone(),
                tool_call_id: None,
            });
        }
        if !text.trim().is_empty()
            && Turn::delivery_mode(flow, ni) == DeliveryMode::AutoSendAssistantText
        {
            match turn.send_agent_text(xi, &node_id, text.clone(), None).await {
                Err(e) => return Step::Abort(e),
                Ok(Err(f)) => return Step::Fail(f),
                Ok(Ok(_)) => {}
            }
        }
        if resp.tool_calls.is_empty() {
            turn.set_waiting(xi, WaitingReason::Agent);
            turn.emit(
                xi,
                EventType::AgentTurnEnded,
                Some(&node_id),
                None,
                json!({"node_id": node_id, "reason": "assistant_text", "iterations": iterations}),
            );
            return Step::Stop;
        }
        for call in &resp.tool_calls {
            let outcome = run_tool(turn, xi, flow, ni, cfg, &node_id, call).await;
            let (result, terminal) = match outcome {
                ToolOutcome::Result(v) => (v, None),
                ToolOutcome::Complete => (json!({"ok": true}), Some("complete_task")),
                ToolOutcome::Handoff(reason) => {
                    (json!({"ok": true, "reason": reason}), Some("handoff"))
                }
                ToolOutcome::EnterWaiting => (json!({"ok": true}), Some("enter_waiting")),
                ToolOutcome::Abort(e) => return Step::Abort(e),
            };
            let mut shown = result.clone();
            turn.redact(&turn.execs[xi].secrets_used.clone(), &mut shown);
            let is_error =
                shown.get("error").is_some() && shown.as_object().is_some_and(|m| m.len() == 1);
            let mut payload = json!({"node_id": node_id, "tool": call.name, "arguments": call.arguments, "duration_ms": 0});
            payload[if is_error { "error" } else { "result" }] = if is_error {
                shown["error"].clone()
            } else {
                shown.clone()
            };
            turn.emit(
                xi,
                EventType::AgentToolCalled,
                Some(&node_id),
                None,
                payload,
            );
            if let Some(a) = turn.execs[xi].agent.as_mut() {
                a.transcript.push(ChatMessage {
                    role: "tool".into(),
                    content: serde_json::to_string(&shown).unwrap_or_default(),
                    tool_calls: Vec::new(),
                    tool_call_id: Some(call.id.clone()),
                });
            }
            match terminal {
                Some("complete_task") => {
                    turn.emit(xi, EventType::AgentTurnEnded, Some(&node_id), None, json!({"node_id": node_id, "reason": "complete_task", "iterations": iterations}));
                    clear_agent(turn, xi);
                    return if flow.next_edge(ni).is_some() {
                        Step::Next
                    } else {
                        Step::End("complete_task")
                    };
                }
                Some("handoff") => {
                    turn.emit(
                        xi,
                        EventType::AgentTurnEnded,
                        Some(&node_id),
                        None,
                        json!({"node_id": node_id, "reason": "handoff", "iterations": iterations}),
                    );
                    turn.change_status(xi, Status::Handoff, "handoff_to_human");
                    let reason = result.get("reason").cloned().unwrap_or(Value::Null);
                    turn.emit(
                        xi,
                        EventType::ExecutionHandoff,
                        Some(&node_id),
                        None,
                        json!({"source": "agent_tool", "reason": reason}),
                    );
                    return Step::Stop;
                }
                Some(_) => {
                    turn.set_waiting(xi, WaitingReason::Agent);
                    turn.emit(xi, EventType::AgentTurnEnded, Some(&node_id), None, json!({"node_id": node_id, "reason": "enter_waiting", "iterations": iterations}));
                    return Step::Stop;
                }
                None => {}
            }
        }
    }
}

fn clear_agent(turn: &mut Turn<'_>, xi: usize) {
    turn.end_agent_activation(xi);
}

async fn list_mcp_tools(
    turn: &mut Turn<'_>,
    xi: usize,
    node_id: &str,
    cfg: &Agent,
) -> Result<(), Failure> {
    if cfg.mcp_servers.is_empty()
        || turn.execs[xi]
            .agent
            .as_ref()
            .is_some_and(|a| !a.mcp_tools.is_empty())
    {
        return Ok(());
    }
    let mut listed = Vec::new();
    for (k, s) in cfg.mcp_servers.iter().enumerate() {
        let server = render_server(turn, xi, node_id, s)?;
        match turn.ctx.adapters.mcp.list_tools(&server).await {
            Ok(tools) => {
                for t in tools {
                    listed.push((k, t.name, t.description, t.parameters));
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    if let Some(a) = turn.execs[xi].agent.as_mut() {
        a.mcp_tools = listed;
    }
    Ok(())
}

fn render_server(
    turn: &mut Turn<'_>,
    xi: usize,
    node_id: &str,
    s: &switchboard_model::config::McpServer,
) -> Result<McpServer, Failure> {
    let url = turn.render_text(
        xi,
        node_id,
        "mcp.url",
        s.url.as_deref().unwrap_or_default(),
        Mode::Text,
    )?;
    let mut headers = Vec::new();
    if let Some(switchboard_model::Value::Object(h)) = &s.headers {
        for (k, v) in h.iter() {
            let v = v.as_str().unwrap_or_default();
            headers.push((
                k.to_owned(),
                turn.render_text(xi, node_id, "mcp.headers", v, Mode::Text)?,
            ));
        }
    }
    Ok(McpServer {
        name: s.name.clone().unwrap_or_default(),
        url,
        headers,
    })
}

fn object_schema() -> Value {
    json!({"type": "object", "properties": {}, "required": []})
}

/// The parameters of a webhook tool without `body_schema`: the names its `url` and `headers`
/// templates read (bare, or as `args.<name>`), as strings, so the model can fill
/// `https://api.example.com/inventory/{{sku}}` (kapso-project §4.5).
fn placeholder_schema(w: &switchboard_model::config::WebhookTool) -> Value {
    let mut names: Vec<String> = Vec::new();
    let mut texts: Vec<&str> = w.url.iter().map(String::as_str).collect();
    if let Some(switchboard_model::Value::Object(h)) = &w.headers {
        texts.extend(h.iter().filter_map(|(_, v)| v.as_str()));
    }
    for text in texts {
        for name in placeholders(text) {
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    if names.is_empty() {
        return object_schema();
    }
    let properties: Map<String, Value> = names
        .iter()
        .map(|n| (n.clone(), json!({"type": "string"})))
        .collect();
    json!({"type": "object", "properties": properties, "required": names})
}

/// The variable names `{{ name… }}` blocks of a template start with (`args.name` counts as
/// `name`; the namespaces `vars`, `system`, `context`, `metadata` and secrets do not count).
fn placeholders(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        rest = &rest[open + 2..];
        let Some(close) = rest.find("}}") else { break };
        let expr = rest[..close].trim();
        rest = &rest[close + 2..];
        let ident = |s: &str| -> Option<String> {
            let end = s
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(s.len());
            let name = &s[..end];
            (!name.is_empty() && !name.starts_with(|c: char| c.is_ascii_digit()))
                .then(|| name.to_owned())
        };
        let Some(first) = ident(expr) else { continue };
        let name = match first.as_str() {
            "args" => expr.strip_prefix("args.").and_then(ident),
            "vars" | "system" | "context" | "metadata" | "true" | "false" | "none" => None,
            _ => Some(first),
        };
        if let Some(n) = name
            && !out.contains(&n)
        {
            out.push(n);
        }
    }
    out
}

/// A display name made safe for a tool name: characters outside `[A-Za-z0-9_-]` become `_`.
fn tool_safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// An MCP tool as offered to the model: `<server>__<tool>`, the server's display name made
/// safe ("Documentation Server" → `Documentation_Server__search`, kapso-project §4.6).
fn mcp_tool_name(server: &str, tool: &str) -> String {
    format!("{}__{tool}", tool_safe(server))
}

fn offered_tools(turn: &Turn<'_>, xi: usize, cfg: &Agent) -> Vec<ToolSpec> {
    let mut out = Vec::new();
    for t in cfg.builtin_tools() {
        let (desc, params) = builtin_spec(t);
        out.push(ToolSpec {
            name: t.as_str().to_owned(),
            description: desc.to_owned(),
            parameters: params,
        });
    }
    for w in &cfg.webhooks {
        out.push(ToolSpec {
            name: w.name.clone().unwrap_or_default(),
            description: w.description.clone().unwrap_or_default(),
            parameters: w
                .body_schema
                .as_ref()
                .map_or_else(|| placeholder_schema(w), switchboard_model::Value::to_json),
        });
    }
    for f in &cfg.function_tools {
        out.push(ToolSpec {
            name: f.name.clone().unwrap_or_default(),
            description: f.description.clone().unwrap_or_default(),
            parameters: f
                .input_schema
                .as_ref()
                .map_or_else(object_schema, switchboard_model::Value::to_json),
        });
    }
    for k in &cfg.knowledge_bases {
        out.push(ToolSpec {
            name: k.name.clone().unwrap_or_default(),
            description: k.description.clone().unwrap_or_default(),
            parameters: json!({"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}),
        });
    }
    if let Some(a) = &turn.execs[xi].agent {
        for (k, name, desc, params) in &a.mcp_tools {
            let server = cfg
                .mcp_servers
                .get(*k)
                .and_then(|s| s.name.clone())
                .unwrap_or_default();
            out.push(ToolSpec {
                name: mcp_tool_name(&server, name),
                description: desc.clone(),
                parameters: params.clone(),
            });
        }
    }
    out
}

fn builtin_spec(t: BuiltinTool) -> (&'static str, Value) {
    let obj = |props: Value, required: &[&str]| json!({"type": "object", "properties": props, "required": required});
    match t {
        BuiltinTool::SendNotificationToUser => (
            "Send a text message to the user now",
            obj(json!({"message": {"type": "string"}}), &["message"]),
        ),
        BuiltinTool::SendMedia => (
            "Send an image, video, audio or document to the user",
            obj(
                json!({"media_url": {"type": "string"}, "media_type": {"type": "string", "enum": ["image", "video", "audio", "document"]}, "caption": {"type": "string"}}),
                &["media_url", "media_type"],
            ),
        ),
        BuiltinTool::GetExecutionMetadata => (
            "Get the execution's variables and context",
            obj(json!({}), &[]),
        ),
        BuiltinTool::GetWhatsappContext => (
            "Get the conversation and its recent messages",
            obj(json!({}), &[]),
        ),
        BuiltinTool::GetCurrentDatetime => {
            ("Get the current date and time (UTC)", obj(json!({}), &[]))
        }
        BuiltinTool::SaveVariable => (
            "Save a variable",
            obj(
                json!({"key": {"type": "string"}, "value": {}}),
                &["key", "value"],
            ),
        ),
        BuiltinTool::GetVariable => (
            "Read a variable",
            obj(json!({"key": {"type": "string"}}), &["key"]),
        ),
        BuiltinTool::AskAboutFile => (
            "Ask a question about a file of the conversation",
            obj(
                json!({"media_id": {"type": "string"}, "url": {"type": "string"}, "question": {"type": "string"}}),
                &["question"],
            ),
        ),
        BuiltinTool::CompleteTask => (
            "Finish this task and continue the flow",
            obj(json!({"summary": {"type": "string"}}), &[]),
        ),
        BuiltinTool::HandoffToHuman => (
            "Hand the conversation to a human",
            obj(json!({"reason": {"type": "string"}}), &[]),
        ),
        BuiltinTool::EnterWaiting => ("End your turn without sending text", obj(json!({}), &[])),
    }
}

fn err(msg: impl Into<String>) -> ToolOutcome {
    ToolOutcome::Result(json!({"error": msg.into()}))
}

fn str_arg<'a>(args: &'a Value, key: &str) -> Option<&'a str> {
    args.get(key).and_then(Value::as_str)
}

#[allow(clippy::too_many_lines)]
async fn run_tool(
    turn: &mut Turn<'_>,
    xi: usize,
    flow: &Arc<CompiledFlow>,
    ni: usize,
    cfg: &Agent,
    node_id: &str,
    call: &ToolCall,
) -> ToolOutcome {
    let args = if call.arguments.is_null() {
        Value::Object(Map::new())
    } else {
        call.arguments.clone()
    };
    if let Some(t) = BuiltinTool::parse(&call.name).filter(|t| Turn::builtin_offered(flow, ni, *t))
    {
        return match t {
            BuiltinTool::CompleteTask => ToolOutcome::Complete,
            BuiltinTool::HandoffToHuman => {
                ToolOutcome::Handoff(str_arg(&args, "reason").map(str::to_owned))
            }
            BuiltinTool::EnterWaiting => ToolOutcome::EnterWaiting,
            BuiltinTool::SendNotificationToUser => match str_arg(&args, "message") {
                Some(m) => match turn
                    .send_agent_text(xi, node_id, m.to_owned(), Some(call.id.clone()))
                    .await
                {
                    Ok(Ok(id)) => ToolOutcome::Result(json!({"message_id": id})),
                    Ok(Err(f)) => err(f.message),
                    Err(e) => ToolOutcome::Abort(e),
                },
                None => err("`message` is required"),
            },
            BuiltinTool::SendMedia => {
                let (Some(url), Some(kind)) =
                    (str_arg(&args, "media_url"), str_arg(&args, "media_type"))
                else {
                    return err("`media_url` and `media_type` are required");
                };
                if !["image", "video", "audio", "document"].contains(&kind) {
                    return err("`media_type` must be image, video, audio or document");
                }
                let caption = str_arg(&args, "caption").map(str::to_owned);
                let media = OutboundBody::Media {
                    media_type: kind.to_owned(),
                    url: url.to_owned(),
                    caption,
                };
                match turn
                    .send_agent_media(xi, node_id, media, Some(call.id.clone()))
                    .await
                {
                    Ok(Ok(id)) => ToolOutcome::Result(json!({"message_id": id})),
                    Ok(Err(f)) => err(f.message),
                    Err(e) => ToolOutcome::Abort(e),
                }
            }
            BuiltinTool::GetExecutionMetadata => {
                let e = &turn.execs[xi];
                let mut v = json!({
                    "vars": e.vars,
                    "system": system_namespace(e, &turn.ctx.config),
                    "context": e.context,
                    "metadata": e.metadata,
                });
                turn.redact(&e.secrets_used.clone(), &mut v);
                ToolOutcome::Result(v)
            }
            BuiltinTool::GetWhatsappContext => {
                let c = &turn.conv;
                let n = c.messages.len();
                let messages: Vec<Value> = c.messages[n.saturating_sub(20)..]
                    .iter()
                    .map(|m| json!({"id": m.id, "direction": m.direction, "type": m.kind, "text": m.text, "timestamp": m.at.rfc3339()}))
                    .collect();
                ToolOutcome::Result(
                    json!({"phone_number": c.phone_number, "conversation_id": c.id, "contact": c.contact, "messages": messages}),
                )
            }
            BuiltinTool::GetCurrentDatetime => {
                ToolOutcome::Result(json!({"datetime": turn.now.rfc3339()}))
            }
            BuiltinTool::SaveVariable => match str_arg(&args, "key") {
                Some(k) if ["vars", "system", "context", "metadata"].contains(&k) => {
                    // Dropped and listed in `variables_set.rejected` (§2); the model is told.
                    turn.merge_vars(xi, "agent_tool", vec![(k.to_owned(), Value::Null)]);
                    err(format!("`{k}` is a namespace and cannot be written"))
                }
                Some(k) if !k.is_empty() => {
                    let value = args.get("value").cloned().unwrap_or(Value::Null);
                    turn.merge_vars(xi, "agent_tool", vec![(k.to_owned(), value)]);
                    ToolOutcome::Result(json!({"ok": true}))
                }
                _ => err("`key` is required"),
            },
            BuiltinTool::GetVariable => match str_arg(&args, "key") {
                Some(k) => {
                    let v = turn.execs[xi].vars.get(k).cloned();
                    let mut r = json!({"key": k, "value": v.clone().unwrap_or(Value::Null), "found": v.is_some()});
                    turn.redact(&turn.execs[xi].secrets_used.clone(), &mut r);
                    ToolOutcome::Result(r)
                }
                None => err("`key` is required"),
            },
            BuiltinTool::AskAboutFile => {
                let question = str_arg(&args, "question").unwrap_or_default().to_owned();
                let file = str_arg(&args, "media_id")
                    .or_else(|| str_arg(&args, "url"))
                    .unwrap_or_default()
                    .to_owned();
                if question.is_empty() || file.is_empty() {
                    return err("`question` and `media_id` or `url` are required");
                }
                let model = match turn.model_name(&cfg.model) {
                    Ok(m) => m,
                    Err(f) => return err(f.message),
                };
                let req = ChatRequest {
                    model,
                    purpose: Purpose::AskAboutFile {
                        node_id: node_id.to_owned(),
                    },
                    messages: vec![ChatMessage::new(
                        "user",
                        format!("File: {file}\nQuestion: {question}"),
                    )],
                    tools: Vec::new(),
                    temperature: None,
                    max_tokens: None,
                    reasoning_effort: None,
                };
                match turn.ctx.adapters.model.complete(req).await {
                    Ok(r) => ToolOutcome::Result(json!({"answer": r.text.unwrap_or_default()})),
                    Err(e) => err(e.message),
                }
            }
        };
    }
    if let Some(w) = cfg
        .webhooks
        .iter()
        .find(|w| w.name.as_deref() == Some(call.name.as_str()))
    {
        if let Some(schema) = &w.body_schema {
            let schema = schema.to_json();
            if let Ok(validator) = jsonschema::validator_for(&schema)
                && let Err(e) = validator.validate(&args)
            {
                return err(format!("invalid arguments: {e}"));
            }
        }
        let method = w
            .http_method
            .as_deref()
            .and_then(switchboard_model::config::HttpMethod::parse)
            .unwrap_or_default();
        let headers = w
            .headers
            .as_ref()
            .map_or(Value::Object(Map::new()), switchboard_model::Value::to_json);
        let body = w
            .body
            .as_ref()
            .map_or(Value::Object(Map::new()), switchboard_model::Value::to_json);
        let url = w.url.clone().unwrap_or_default();
        return match turn
            .tool_http(xi, node_id, method.as_str(), &url, &headers, &body, &args)
            .await
        {
            Ok(resp) => {
                let status = resp.get("status").cloned().unwrap_or(Value::Null);
                let mut body = resp.get("body").cloned().unwrap_or(Value::Null);
                if let Some(q) = w.jmespath_query.as_deref().filter(|q| !q.trim().is_empty()) {
                    match jmespath_search(q, &body) {
                        Ok(v) => body = v,
                        Err(e) => return err(e),
                    }
                }
                ToolOutcome::Result(json!({"status": status, "body": body}))
            }
            Err(f) => err(f.message),
        };
    }
    if let Some(f) = cfg
        .function_tools
        .iter()
        .find(|f| f.name.as_deref() == Some(call.name.as_str()))
    {
        return match turn
            .call_function(xi, node_id, &f.function, None, Some(&args))
            .await
        {
            Ok(resp) => {
                if let Some(Value::Object(vars)) = resp.get("vars") {
                    let pairs = vars.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                    turn.merge_vars(xi, "agent_tool", pairs);
                }
                ToolOutcome::Result(resp)
            }
            Err(e) => err(e.message),
        };
    }
    if let Some(k) = cfg
        .knowledge_bases
        .iter()
        .find(|k| k.name.as_deref() == Some(call.name.as_str()))
    {
        let query = str_arg(&args, "query").unwrap_or_default();
        let text = k.knowledge_base_text.clone().unwrap_or_default();
        return ToolOutcome::Result(json!({"text": retrieve(&text, query)}));
    }
    if let Some((server, tool)) = call.name.split_once("__")
        && let Some((k, s)) = cfg
            .mcp_servers
            .iter()
            .enumerate()
            .find(|(_, s)| tool_safe(s.name.as_deref().unwrap_or_default()) == server)
    {
        let known = turn.execs[xi]
            .agent
            .as_ref()
            .is_some_and(|a| a.mcp_tools.iter().any(|(i, n, _, _)| *i == k && n == tool));
        if !known {
            return err(format!("unknown tool `{}`", call.name));
        }
        let server = match render_server(turn, xi, node_id, s) {
            Ok(s) => s,
            Err(f) => return err(f.message),
        };
        return match turn.ctx.adapters.mcp.call_tool(&server, tool, args).await {
            Ok(v) => ToolOutcome::Result(v),
            Err(e) => err(e.message),
        };
    }
    err(format!("unknown tool `{}`", call.name))
}

/// Applies a JMESPath query (bounded: hostile queries are refused before compiling).
pub(super) fn jmespath_search(query: &str, body: &Value) -> Result<Value, String> {
    let nesting = query
        .bytes()
        .filter(|b| matches!(b, b'(' | b'[' | b'{' | b'!' | b'*' | b'?'))
        .count();
    if query.len() > 4096 || nesting > 100 {
        return Err("the JMESPath query is too complex".into());
    }
    let expr = jmespath::compile(query).map_err(|e| format!("invalid JMESPath: {e}"))?;
    let data = jmespath::Variable::from_json(&body.to_string()).map_err(|e| e.to_string())?;
    let result = expr.search(data).map_err(|e| e.to_string())?;
    serde_json::to_value(&*result).map_err(|e| e.to_string())
}

/// Knowledge-base retrieval: the whole text when small, else the paragraphs sharing the most
/// words with the query, up to 32 KiB.
fn retrieve(text: &str, query: &str) -> String {
    if text.len() <= KB_WHOLE_LIMIT {
        return text.to_owned();
    }
    let words: Vec<String> = query
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.len() >= 3)
        .map(str::to_lowercase)
        .collect();
    let mut scored: Vec<(usize, usize, &str)> = text
        .split("\n\n")
        .enumerate()
        .map(|(i, p)| {
            let lower = p.to_lowercase();
            (
                words.iter().filter(|w| lower.contains(w.as_str())).count(),
                i,
                p,
            )
        })
        .collect();
    scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut out = String::new();
    for (_, _, p) in scored {
        if out.len() + p.len() + 2 > KB_WHOLE_LIMIT {
            break;
        }
        if !out.is_empty() {
            out.push_str("\n\n");
        }
        out.push_str(p);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_model::config::WebhookTool;

    fn tool(url: &str, headers: Option<switchboard_model::Value>) -> WebhookTool {
        WebhookTool {
            name: Some("inventory".into()),
            url: Some(url.into()),
            headers,
            ..WebhookTool::default()
        }
    }

    #[test]
    fn placeholders_of_url_and_headers_become_string_parameters() {
        assert_eq!(
            placeholders(
                "https://x.io/{{sku}}/{{ args.size }}?v={{vars.v}}&s={{system.flow_id}}&{{sku}}"
            ),
            ["sku", "size"]
        );
        assert_eq!(
            placeholders("{{ 1 }} {{ true }} {{ none }} {{ x | upper }} {{"),
            ["x"]
        );
        let mut headers = switchboard_model::Map::new();
        headers.insert("X-Shop", "{{shop}}");
        let schema = placeholder_schema(&tool(
            "https://bakery.example/inventory/{{sku}}",
            Some(switchboard_model::Value::Object(headers)),
        ));
        assert_eq!(
            schema,
            json!({"type": "object",
                   "properties": {"sku": {"type": "string"}, "shop": {"type": "string"}},
                   "required": ["sku", "shop"]})
        );
        assert_eq!(
            placeholder_schema(&tool("https://x.io/static", None)),
            object_schema()
        );
    }

    #[test]
    fn mcp_display_names_become_tool_safe_prefixes() {
        assert_eq!(
            mcp_tool_name("Documentation Server", "search"),
            "Documentation_Server__search"
        );
        assert_eq!(mcp_tool_name("docs", "search"), "docs__search");
        assert_eq!(tool_safe("Café / Menü-2"), "Caf____Men_-2");
    }
}
