//! The `agent` node: its config, its tools (webhooks, functions, MCP servers, knowledge bases),
//! the built-in tools, and their decoders.

use super::{FUNCTION_REF_KEYS, MODEL_REF_KEYS, ModelRef, ResourceRef, function_ref, model_ref};
use crate::decode::{Cx, JsonShape, Obj};
use crate::value::Value;

/// `reasoning_effort`
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReasoningEffort {
    /// `none`
    None,
    /// `minimal`
    Minimal,
    /// `low`
    Low,
    /// `medium`
    Medium,
    /// `high`
    High,
    /// `xhigh`
    XHigh,
}

/// `message_delivery_mode`
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DeliveryMode {
    /// `auto_send_assistant_text` (default)
    #[default]
    AutoSendAssistantText,
    /// `tool_only`
    ToolOnly,
}

/// The built-in agent tools.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BuiltinTool {
    /// `send_notification_to_user`
    SendNotificationToUser,
    /// `send_media`
    SendMedia,
    /// `get_execution_metadata`
    GetExecutionMetadata,
    /// `get_whatsapp_context`
    GetWhatsappContext,
    /// `get_current_datetime`
    GetCurrentDatetime,
    /// `save_variable`
    SaveVariable,
    /// `get_variable`
    GetVariable,
    /// `ask_about_file`
    AskAboutFile,
    /// `complete_task`
    CompleteTask,
    /// `handoff_to_human`
    HandoffToHuman,
    /// `enter_waiting`
    EnterWaiting,
}

impl BuiltinTool {
    /// Every built-in tool.
    pub const ALL: [BuiltinTool; 11] = [
        BuiltinTool::SendNotificationToUser,
        BuiltinTool::SendMedia,
        BuiltinTool::GetExecutionMetadata,
        BuiltinTool::GetWhatsappContext,
        BuiltinTool::GetCurrentDatetime,
        BuiltinTool::SaveVariable,
        BuiltinTool::GetVariable,
        BuiltinTool::AskAboutFile,
        BuiltinTool::CompleteTask,
        BuiltinTool::HandoffToHuman,
        BuiltinTool::EnterWaiting,
    ];

    /// The tool names, in the order of [`BuiltinTool::ALL`].
    pub const NAMES: &'static [&'static str] = &[
        "send_notification_to_user",
        "send_media",
        "get_execution_metadata",
        "get_whatsapp_context",
        "get_current_datetime",
        "save_variable",
        "get_variable",
        "ask_about_file",
        "complete_task",
        "handoff_to_human",
        "enter_waiting",
    ];

    /// The tool name.
    pub fn as_str(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    /// Parses a tool name.
    pub fn parse(s: &str) -> Option<BuiltinTool> {
        Self::NAMES
            .iter()
            .position(|n| *n == s)
            .map(|i| Self::ALL[i])
    }
}

/// A webhook tool of an agent.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WebhookTool {
    /// `name`
    pub name: Option<String>,
    /// `description`
    pub description: Option<String>,
    /// `url` (templated)
    pub url: Option<String>,
    /// `http_method` (alias `method`) as written.
    pub http_method: Option<String>,
    /// `headers`, decoded.
    pub headers: Option<Value>,
    /// `body` (alias `body_template`), decoded.
    pub body: Option<Value>,
    /// `body_schema`: JSON Schema of the arguments, decoded.
    pub body_schema: Option<Value>,
    /// `jmespath_query`
    pub jmespath_query: Option<String>,
}

/// A function tool of an agent.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FunctionTool {
    /// `name`
    pub name: Option<String>,
    /// `description`
    pub description: Option<String>,
    /// The function.
    pub function: ResourceRef,
    /// `input_schema`, decoded.
    pub input_schema: Option<Value>,
}

/// An MCP server of an agent.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct McpServer {
    /// `name`
    pub name: Option<String>,
    /// `description`
    pub description: Option<String>,
    /// `url` (templated)
    pub url: Option<String>,
    /// `headers`, decoded.
    pub headers: Option<Value>,
}

/// A knowledge base of an agent.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct KnowledgeBase {
    /// `name`
    pub name: Option<String>,
    /// `description`
    pub description: Option<String>,
    /// `knowledge_base_text`
    pub knowledge_base_text: Option<String>,
}

/// `agent`
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Agent {
    /// `system_prompt` (templated)
    pub system_prompt: Option<String>,
    /// The model.
    pub model: ModelRef,
    /// `temperature` (number or numeric string)
    pub temperature: Option<f64>,
    /// `max_iterations`
    pub max_iterations: Option<i64>,
    /// `max_tokens`
    pub max_tokens: Option<i64>,
    /// `reasoning_effort`
    pub reasoning_effort: Option<ReasoningEffort>,
    /// `message_delivery_mode`
    pub message_delivery_mode: Option<DeliveryMode>,
    /// `enabled_default_tools` (`None`: all 11 are offered). Unknown names are reported and dropped.
    pub enabled_default_tools: Option<Vec<BuiltinTool>>,
    /// `prompt_cache_ttl`
    pub prompt_cache_ttl: Option<String>,
    /// `sandbox_enabled`
    pub sandbox_enabled: Option<bool>,
    /// `flow_agent_webhooks`
    pub webhooks: Vec<WebhookTool>,
    /// `flow_agent_function_tools`
    pub function_tools: Vec<FunctionTool>,
    /// `flow_agent_mcp_servers`
    pub mcp_servers: Vec<McpServer>,
    /// `flow_agent_knowledge_bases`
    pub knowledge_bases: Vec<KnowledgeBase>,
    /// Number of `flow_agent_app_integration_tools` entries (kept, not supported).
    pub app_integration_tools: usize,
    /// Number of `flow_agent_resources` entries (kept, not supported).
    pub resources: usize,
}

impl Agent {
    /// The built-in tools offered: `enabled_default_tools`, or all 11.
    pub fn builtin_tools(&self) -> Vec<BuiltinTool> {
        self.enabled_default_tools
            .clone()
            .unwrap_or_else(|| BuiltinTool::ALL.to_vec())
    }

    /// `max_iterations`, defaulting to 80.
    pub fn max_iterations_or_default(&self) -> i64 {
        self.max_iterations.unwrap_or(80)
    }
}

// ---------------------------------------------------------------------------------------------
// Decoding

/// The keys of an `agent` config.
pub(super) const AGENT_KEYS: &[&str] = keys![
    &["system_prompt"],
    MODEL_REF_KEYS,
    &[
        "temperature",
        "max_iterations",
        "max_tokens",
        "reasoning_effort",
        "message_delivery_mode",
        "enabled_default_tools",
        "default_tool_configs",
        "observer_prompt_mode",
        "prompt_cache_ttl",
        "sandbox_enabled",
        "sandbox_network_mode",
        "sandbox_allowed_outbound_hosts",
        "flow_agent_webhooks",
        "flow_agent_function_tools",
        "flow_agent_mcp_servers",
        "flow_agent_knowledge_bases",
        "flow_agent_app_integration_tools",
        "flow_agent_resources",
    ],
];

/// The keys of a webhook tool (`flow_agent_webhooks` item).
pub(super) const WEBHOOK_TOOL_KEYS: &[&str] = &[
    "name",
    "description",
    "url",
    "http_method",
    "method",
    "headers",
    "body",
    "body_template",
    "body_schema",
    "jmespath_query",
];

/// The keys of a function tool (`flow_agent_function_tools` item).
pub(super) const FUNCTION_TOOL_KEYS: &[&str] = keys![
    &["name", "description"],
    FUNCTION_REF_KEYS,
    &["input_schema"],
];

/// The keys of an MCP server (`flow_agent_mcp_servers` item).
pub(super) const MCP_SERVER_KEYS: &[&str] = &["name", "description", "url", "headers"];

/// The keys of a knowledge base (`flow_agent_knowledge_bases` item).
pub(super) const KNOWLEDGE_BASE_KEYS: &[&str] = &["name", "description", "knowledge_base_text"];

pub(super) fn agent(o: Obj, cx: &mut Cx) -> Agent {
    let enabled_default_tools = o.string_list(cx, "enabled_default_tools").map(|names| {
        let mut tools = Vec::with_capacity(names.len());
        for (i, n) in names.iter().enumerate() {
            match BuiltinTool::parse(n) {
                Some(t) => tools.push(t),
                None => cx.push(
                    crate::issue::IssueKind::InvalidEnumValue {
                        field: format!("enabled_default_tools[{i}]"),
                        value: n.clone(),
                        allowed: BuiltinTool::NAMES,
                    },
                    format!("{}/{i}", o.ptr_of("enabled_default_tools")),
                    o.map
                        .entry("enabled_default_tools")
                        .map_or(o.map.pos, |e| e.value_pos),
                ),
            }
        }
        tools
    });
    let webhooks = tools(&o, cx, "flow_agent_webhooks", |t, cx| {
        let method_key = t.alias(cx, "http_method", "method");
        let body_key = t.alias(cx, "body", "body_template");
        t.unknown_keys(cx, WEBHOOK_TOOL_KEYS, "webhook tool");
        WebhookTool {
            name: t.str(cx, "name"),
            description: t.str(cx, "description"),
            url: t.str(cx, "url"),
            http_method: t.str(cx, method_key),
            headers: t.headers(cx, "headers"),
            body: t.json_field(cx, body_key, JsonShape::Any),
            body_schema: t.json_field(cx, "body_schema", JsonShape::Object),
            jmespath_query: t.str(cx, "jmespath_query"),
        }
    });
    let function_tools = tools(&o, cx, "flow_agent_function_tools", |t, cx| {
        t.unknown_keys(cx, FUNCTION_TOOL_KEYS, "function tool");
        FunctionTool {
            name: t.str(cx, "name"),
            description: t.str(cx, "description"),
            function: function_ref(t, cx),
            input_schema: t.json_field(cx, "input_schema", JsonShape::Object),
        }
    });
    let mcp_servers = tools(&o, cx, "flow_agent_mcp_servers", |t, cx| {
        t.unknown_keys(cx, MCP_SERVER_KEYS, "MCP server");
        McpServer {
            name: t.str(cx, "name"),
            description: t.str(cx, "description"),
            url: t.str(cx, "url"),
            headers: t.headers(cx, "headers"),
        }
    });
    let knowledge_bases = tools(&o, cx, "flow_agent_knowledge_bases", |t, cx| {
        t.unknown_keys(cx, KNOWLEDGE_BASE_KEYS, "knowledge base");
        KnowledgeBase {
            name: t.str(cx, "name"),
            description: t.str(cx, "description"),
            knowledge_base_text: t.str(cx, "knowledge_base_text"),
        }
    });
    // Kept but unsupported keys: type-checked only.
    o.object(cx, "default_tool_configs");
    o.str(cx, "observer_prompt_mode");
    o.str(cx, "sandbox_network_mode");
    o.array(cx, "sandbox_allowed_outbound_hosts");
    Agent {
        system_prompt: o.str(cx, "system_prompt"),
        model: model_ref(o, cx),
        temperature: o.number(cx, "temperature"),
        max_iterations: o.integer(cx, "max_iterations"),
        max_tokens: o.integer(cx, "max_tokens"),
        reasoning_effort: o.enumeration(
            cx,
            "reasoning_effort",
            &["none", "minimal", "low", "medium", "high", "xhigh"],
            &[
                ReasoningEffort::None,
                ReasoningEffort::Minimal,
                ReasoningEffort::Low,
                ReasoningEffort::Medium,
                ReasoningEffort::High,
                ReasoningEffort::XHigh,
            ],
        ),
        message_delivery_mode: o.enumeration(
            cx,
            "message_delivery_mode",
            &["auto_send_assistant_text", "tool_only"],
            &[DeliveryMode::AutoSendAssistantText, DeliveryMode::ToolOnly],
        ),
        enabled_default_tools,
        prompt_cache_ttl: o.str(cx, "prompt_cache_ttl"),
        sandbox_enabled: o.bool(cx, "sandbox_enabled"),
        webhooks,
        function_tools,
        mcp_servers,
        knowledge_bases,
        app_integration_tools: o
            .array(cx, "flow_agent_app_integration_tools")
            .map_or(0, <[Value]>::len),
        resources: o
            .array(cx, "flow_agent_resources")
            .map_or(0, <[Value]>::len),
    }
}

fn tools<'a, T>(
    o: &Obj<'a>,
    cx: &mut Cx,
    key: &'static str,
    mut each: impl FnMut(Obj<'_>, &mut Cx) -> T,
) -> Vec<T> {
    let Some(items) = o.objects(cx, key) else {
        return Vec::new();
    };
    items
        .into_iter()
        .map(|(i, m)| each(o.item(key, i, m), cx))
        .collect()
}
