//! Typed node configurations: one struct per node type of flow-format §8.
//!
//! A typed config is a read-only projection of a node's `data.config` object. Aliases are
//! resolved (the canonical key wins), object-or-JSON-string fields are decoded, numeric strings
//! are read as numbers, and a field of the wrong type is treated as absent and recorded as an
//! [`crate::Issue`]. The document itself stays the source of truth for writing.

pub use crate::decode::TextField;
use crate::decode::{Cx, JsonShape, Obj};
use crate::value::{Map, Value};

/// The 13 node types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NodeKind {
    /// `start`
    Start,
    /// `send_text`
    SendText,
    /// `send_template`
    SendTemplate,
    /// `send_interactive`
    SendInteractive,
    /// `wait_for_response`
    WaitForResponse,
    /// `decide`
    Decide,
    /// `function`
    Function,
    /// `webhook`
    Webhook,
    /// `set_variable`
    SetVariable,
    /// `call`
    Call,
    /// `agent`
    Agent,
    /// `handoff`
    Handoff,
    /// `emit_event`
    EmitEvent,
}

impl NodeKind {
    /// Every node type, in the order of flow-format §8.
    pub const ALL: [NodeKind; 13] = [
        NodeKind::Start,
        NodeKind::SendText,
        NodeKind::SendTemplate,
        NodeKind::SendInteractive,
        NodeKind::WaitForResponse,
        NodeKind::Decide,
        NodeKind::Function,
        NodeKind::Webhook,
        NodeKind::SetVariable,
        NodeKind::Call,
        NodeKind::Agent,
        NodeKind::Handoff,
        NodeKind::EmitEvent,
    ];

    /// The `node_type` spellings, in the order of [`NodeKind::ALL`].
    pub const ALL_NAMES: &'static [&'static str] = &[
        "start",
        "send_text",
        "send_template",
        "send_interactive",
        "wait_for_response",
        "decide",
        "function",
        "webhook",
        "set_variable",
        "call",
        "agent",
        "handoff",
        "emit_event",
    ];

    /// The `node_type` string.
    pub fn as_str(self) -> &'static str {
        Self::ALL_NAMES[self as usize]
    }

    /// Parses a `node_type` string.
    pub fn parse(s: &str) -> Option<NodeKind> {
        Self::ALL_NAMES
            .iter()
            .position(|n| *n == s)
            .map(|i| Self::ALL[i])
    }

    /// The config keys this node type defines (aliases and read-only keys included).
    pub fn known_keys(self) -> &'static [&'static str] {
        match self {
            NodeKind::Start => &[],
            NodeKind::SendText => &[
                "message",
                "delay_seconds",
                SENDER_KEYS[0],
                SENDER_KEYS[1],
                SENDER_KEYS[2],
                SENDER_KEYS[3],
                SENDER_KEYS[4],
                SENDER_KEYS[5],
            ],
            NodeKind::SendTemplate => &[
                "template_id",
                "parameters",
                "template_params",
                SENDER_KEYS[0],
                SENDER_KEYS[1],
                SENDER_KEYS[2],
                SENDER_KEYS[3],
                SENDER_KEYS[4],
                SENDER_KEYS[5],
            ],
            NodeKind::SendInteractive => &[
                "interactive_type",
                "body_text",
                "header_type",
                "header_text",
                "header_media_url",
                "footer_text",
                "buttons",
                "list_button_text",
                "list_sections",
                "cta_display_text",
                "cta_url",
                "flow_id",
                "flow_cta",
                "flow_token",
                "flow_action",
                "flow_action_payload",
                SENDER_KEYS[0],
                SENDER_KEYS[1],
                SENDER_KEYS[2],
                SENDER_KEYS[3],
                SENDER_KEYS[4],
                SENDER_KEYS[5],
            ],
            NodeKind::WaitForResponse => &["timeout_seconds", "has_timeout", "save_response_to"],
            NodeKind::Decide => &[
                "decision_type",
                "conditions",
                "provider_model_id",
                "provider_model_name",
                "llm_temperature",
                "llm_max_tokens",
                "llm_configuration",
                "function_id",
                "function_slug",
                "function_name",
            ],
            NodeKind::Function => &[
                "function_id",
                "function_slug",
                "function_name",
                "save_response_to",
            ],
            NodeKind::Webhook => &[
                "url",
                "method",
                "http_method",
                "headers",
                "body_template",
                "body",
                "save_response_to",
                "provider_model_id",
                "provider_model_name",
                "ai_field_config",
            ],
            NodeKind::SetVariable => &["variable_name", "variable_value", "value_type"],
            NodeKind::Call => &[
                "workflow_id",
                "workflow_slug",
                "workflow_name",
                "save_error_to",
            ],
            NodeKind::Agent => &[
                "system_prompt",
                "provider_model_id",
                "provider_model_name",
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
            NodeKind::Handoff => &["reason", "context_data"],
            NodeKind::EmitEvent => &["event_name", "properties", "occurred_at"],
        }
    }
}

const SENDER_KEYS: [&str; 6] = [
    "phone_number_id",
    "whatsapp_config_id",
    "to_phone_number",
    "provider_model_id",
    "provider_model_name",
    "ai_field_config",
];

/// A typed node configuration.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum NodeConfig {
    /// `start`: no keys.
    Start,
    /// `send_text`
    SendText(SendText),
    /// `send_template`
    SendTemplate(SendTemplate),
    /// `send_interactive`
    SendInteractive(Box<SendInteractive>),
    /// `wait_for_response`
    WaitForResponse(WaitForResponse),
    /// `decide`
    Decide(Decide),
    /// `function`
    Function(FunctionNode),
    /// `webhook`
    Webhook(Webhook),
    /// `set_variable`
    SetVariable(SetVariable),
    /// `call`
    Call(Call),
    /// `agent`
    Agent(Box<Agent>),
    /// `handoff`
    Handoff(Handoff),
    /// `emit_event`
    EmitEvent(EmitEvent),
    /// A node whose `node_type` is missing or unknown.
    Unknown,
}

/// A model reference: `provider_model_id`, then `provider_model_name`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ModelRef {
    /// `provider_model_id`
    pub id: Option<String>,
    /// `provider_model_name`
    pub name: Option<String>,
}

impl ModelRef {
    /// `true` when either reference is set (and non-empty).
    pub fn is_set(&self) -> bool {
        self.id.as_deref().is_some_and(|s| !s.is_empty())
            || self.name.as_deref().is_some_and(|s| !s.is_empty())
    }

    /// The references to try, in order.
    pub fn candidates(&self) -> impl Iterator<Item = &str> {
        self.id
            .iter()
            .chain(&self.name)
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }
}

/// A function reference: `function_id`, then `function_slug`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FunctionRef {
    /// `function_id`
    pub id: Option<String>,
    /// `function_slug`
    pub slug: Option<String>,
    /// `function_name` (read-only, computed by Kapso)
    pub name: Option<String>,
}

impl FunctionRef {
    /// `true` when either reference is set (and non-empty).
    pub fn is_set(&self) -> bool {
        self.candidates().next().is_some()
    }

    /// The references to try, in order.
    pub fn candidates(&self) -> impl Iterator<Item = &str> {
        self.id
            .iter()
            .chain(&self.slug)
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }
}

/// A called-flow reference: `workflow_id`, then `workflow_slug`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FlowRef {
    /// `workflow_id`
    pub id: Option<String>,
    /// `workflow_slug`
    pub slug: Option<String>,
    /// `workflow_name` (read-only)
    pub name: Option<String>,
}

impl FlowRef {
    /// `true` when either reference is set (and non-empty).
    pub fn is_set(&self) -> bool {
        self.candidates().next().is_some()
    }

    /// The references to try, in order.
    pub fn candidates(&self) -> impl Iterator<Item = &str> {
        self.id
            .iter()
            .chain(&self.slug)
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }
}

/// `ai_field_config.*.mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AiMode {
    /// `prompt`: the only mode.
    Prompt,
}

/// One entry of `ai_field_config`.
#[derive(Clone, Debug, PartialEq)]
pub struct AiField {
    /// The path from the config root (`message`, `parameters.2`).
    pub path: String,
    /// `mode`
    pub mode: Option<AiMode>,
    /// `prompt` (templated)
    pub prompt: Option<String>,
}

/// The keys shared by the three sending nodes (flow-format §7), plus AI-field settings.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sender {
    /// `phone_number_id`
    pub phone_number_id: Option<String>,
    /// `whatsapp_config_id`
    pub whatsapp_config_id: Option<String>,
    /// `to_phone_number` (templated)
    pub to_phone_number: Option<String>,
    /// The model that generates AI fields.
    pub model: ModelRef,
    /// `ai_field_config`, in file order.
    pub ai_fields: Vec<AiField>,
}

/// `send_text`
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SendText {
    /// `message`
    pub message: Option<TextField>,
    /// `delay_seconds`
    pub delay_seconds: Option<f64>,
    /// Sender keys.
    pub sender: Sender,
}

/// `send_template`
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SendTemplate {
    /// `template_id`
    pub template_id: Option<String>,
    /// `parameters` (alias `template_params`): an object, an array, or an AI marker.
    pub parameters: Option<Value>,
    /// Sender keys.
    pub sender: Sender,
}

/// `interactive_type`
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InteractiveType {
    /// Reply buttons.
    Button,
    /// A list message.
    List,
    /// A call-to-action URL button.
    CtaUrl,
    /// A WhatsApp Flow.
    Flow,
    /// A location request.
    LocationRequestMessage,
    /// Recognised Kapso value that Switchboard does not send.
    Product,
    /// Recognised Kapso value that Switchboard does not send.
    ProductList,
    /// Recognised Kapso value that Switchboard does not send.
    CatalogMessage,
}

impl InteractiveType {
    const NAMES: &'static [&'static str] = &[
        "button",
        "list",
        "cta_url",
        "flow",
        "location_request_message",
        "product",
        "product_list",
        "catalog_message",
    ];
    const VALUES: &'static [InteractiveType] = &[
        InteractiveType::Button,
        InteractiveType::List,
        InteractiveType::CtaUrl,
        InteractiveType::Flow,
        InteractiveType::LocationRequestMessage,
        InteractiveType::Product,
        InteractiveType::ProductList,
        InteractiveType::CatalogMessage,
    ];

    /// The spelling in files.
    pub fn as_str(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    /// `true` for the types Switchboard sends.
    pub fn is_supported(self) -> bool {
        !matches!(
            self,
            InteractiveType::Product
                | InteractiveType::ProductList
                | InteractiveType::CatalogMessage
        )
    }
}

/// `header_type`
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderType {
    /// No header.
    None,
    /// A text header.
    Text,
    /// An image header.
    Image,
    /// A video header.
    Video,
    /// A document header.
    Document,
}

impl HeaderType {
    const NAMES: &'static [&'static str] = &["none", "text", "image", "video", "document"];
    const VALUES: &'static [HeaderType] = &[
        HeaderType::None,
        HeaderType::Text,
        HeaderType::Image,
        HeaderType::Video,
        HeaderType::Document,
    ];

    /// The spelling in files.
    pub fn as_str(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    /// `true` for image, video and document headers.
    pub fn is_media(self) -> bool {
        matches!(
            self,
            HeaderType::Image | HeaderType::Video | HeaderType::Document
        )
    }
}

/// `flow_action`
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlowAction {
    /// `navigate` (default)
    Navigate,
    /// `data_exchange`
    DataExchange,
}

/// A reply button.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Button {
    /// `id`
    pub id: Option<String>,
    /// `title` (templated)
    pub title: Option<String>,
}

/// A list section.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ListSection {
    /// `title` (templated)
    pub title: Option<String>,
    /// `rows`
    pub rows: Vec<ListRow>,
}

/// A list row.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ListRow {
    /// `id`
    pub id: Option<String>,
    /// `title` (templated)
    pub title: Option<String>,
    /// `description` (templated)
    pub description: Option<String>,
}

/// `flow_action_payload`
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FlowActionPayload {
    /// `screen`: the first screen id.
    pub screen: Option<String>,
    /// `data` (templated leaves)
    pub data: Option<Value>,
}

/// `send_interactive`
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SendInteractive {
    /// `interactive_type`
    pub interactive_type: Option<InteractiveType>,
    /// `body_text`
    pub body_text: Option<TextField>,
    /// `header_type` as written (see [`SendInteractive::effective_header_type`]).
    pub header_type: Option<HeaderType>,
    /// `header_text`
    pub header_text: Option<TextField>,
    /// `header_media_url`
    pub header_media_url: Option<String>,
    /// `footer_text`
    pub footer_text: Option<TextField>,
    /// `buttons` (button)
    pub buttons: Option<Vec<Button>>,
    /// `list_button_text` (list)
    pub list_button_text: Option<String>,
    /// `list_sections` (list)
    pub list_sections: Option<Vec<ListSection>>,
    /// `cta_display_text` (cta_url)
    pub cta_display_text: Option<String>,
    /// `cta_url` (cta_url)
    pub cta_url: Option<String>,
    /// `flow_id` (flow)
    pub flow_id: Option<String>,
    /// `flow_cta` (flow)
    pub flow_cta: Option<String>,
    /// `flow_token` (flow)
    pub flow_token: Option<String>,
    /// `flow_action` (flow)
    pub flow_action: Option<FlowAction>,
    /// `flow_action_payload` (flow)
    pub flow_action_payload: Option<FlowActionPayload>,
    /// Sender keys.
    pub sender: Sender,
}

impl SendInteractive {
    /// `header_type`, defaulting to `text` when `header_text` is set and `none` otherwise.
    pub fn effective_header_type(&self) -> HeaderType {
        self.header_type.unwrap_or(if self.header_text.is_some() {
            HeaderType::Text
        } else {
            HeaderType::None
        })
    }
}

/// `wait_for_response`
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WaitForResponse {
    /// `timeout_seconds` as written (may be fractional or out of range; see `invalid-timeout`).
    pub timeout_seconds: Option<f64>,
    /// `has_timeout`
    pub has_timeout: Option<bool>,
    /// `save_response_to`
    pub save_response_to: Option<String>,
}

impl WaitForResponse {
    /// The armed timeout: `timeout_seconds` when set and `has_timeout` is not `false`.
    pub fn armed_timeout(&self) -> Option<f64> {
        if self.has_timeout == Some(false) {
            None
        } else {
            self.timeout_seconds
        }
    }
}

/// `decision_type`
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DecisionType {
    /// An LLM picks the condition (default).
    #[default]
    Ai,
    /// A function picks the condition.
    Function,
}

/// A decide condition.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Condition {
    /// `label`: the edge label it routes to.
    pub label: Option<String>,
    /// `description`: feeds the AI prompt.
    pub description: Option<String>,
    /// `id` (read-only, assigned by Kapso).
    pub id: Option<String>,
}

/// `decide`
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Decide {
    /// `decision_type` as written (`None`: absent or invalid; the default is `ai`).
    pub decision_type: Option<DecisionType>,
    /// `conditions` (`None` when absent).
    pub conditions: Option<Vec<Condition>>,
    /// The model (ai mode).
    pub model: ModelRef,
    /// `llm_temperature`
    pub llm_temperature: Option<f64>,
    /// `llm_max_tokens`
    pub llm_max_tokens: Option<i64>,
    /// `llm_configuration`
    pub llm_configuration: Option<Map>,
    /// `llm_configuration.instructions` (templated)
    pub instructions: Option<String>,
    /// The function (function mode).
    pub function: FunctionRef,
}

impl Decide {
    /// The decision type, defaulting to `ai`.
    pub fn mode(&self) -> DecisionType {
        self.decision_type.unwrap_or_default()
    }

    /// The condition labels, in order (conditions without a label are skipped).
    pub fn labels(&self) -> impl Iterator<Item = &str> {
        self.conditions
            .iter()
            .flatten()
            .filter_map(|c| c.label.as_deref())
    }
}

/// `function`
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FunctionNode {
    /// The function.
    pub function: FunctionRef,
    /// `save_response_to`
    pub save_response_to: Option<String>,
}

/// `webhook`
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Webhook {
    /// `url` (templated)
    pub url: Option<TextField>,
    /// `method` (alias `http_method`) as written; see [`HttpMethod::parse`].
    pub method: Option<String>,
    /// `headers`, decoded from an object or JSON string.
    pub headers: Option<Value>,
    /// `body_template` (alias `body`), decoded from a value or JSON string.
    pub body_template: Option<Value>,
    /// `save_response_to`
    pub save_response_to: Option<String>,
    /// The model that generates AI fields.
    pub model: ModelRef,
    /// `ai_field_config`
    pub ai_fields: Vec<AiField>,
}

/// An HTTP method of a webhook node or tool.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HttpMethod {
    /// GET
    Get,
    /// POST (default)
    #[default]
    Post,
    /// PUT
    Put,
    /// PATCH
    Patch,
    /// DELETE
    Delete,
}

impl HttpMethod {
    /// Parses a method name in any case.
    pub fn parse(s: &str) -> Option<HttpMethod> {
        Some(match s.to_ascii_uppercase().as_str() {
            "GET" => HttpMethod::Get,
            "POST" => HttpMethod::Post,
            "PUT" => HttpMethod::Put,
            "PATCH" => HttpMethod::Patch,
            "DELETE" => HttpMethod::Delete,
            _ => return None,
        })
    }

    /// The upper-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Post => "POST",
            HttpMethod::Put => "PUT",
            HttpMethod::Patch => "PATCH",
            HttpMethod::Delete => "DELETE",
        }
    }
}

/// `value_type` of `set_variable`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ValueType {
    /// `string` (default)
    #[default]
    String,
    /// `number`
    Number,
    /// `boolean`
    Boolean,
    /// `json`
    Json,
}

/// `set_variable`
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SetVariable {
    /// `variable_name`
    pub variable_name: Option<String>,
    /// `variable_value` (`None` when absent or `null`)
    pub variable_value: Option<Value>,
    /// `value_type` as written (`None`: absent or invalid; the default is `string`).
    pub value_type: Option<ValueType>,
}

/// `call`
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Call {
    /// The called flow.
    pub workflow: FlowRef,
    /// `save_error_to` (default `subworkflow_error`)
    pub save_error_to: Option<String>,
}

impl Call {
    /// Where the child's error is stored.
    pub fn error_variable(&self) -> &str {
        self.save_error_to.as_deref().unwrap_or("subworkflow_error")
    }
}

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
    pub function: FunctionRef,
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

/// `handoff`
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Handoff {
    /// `reason` (templated)
    pub reason: Option<String>,
    /// `context_data`: an object or a string (templated leaves).
    pub context_data: Option<Value>,
}

/// `emit_event`
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EmitEvent {
    /// `event_name`
    pub event_name: Option<String>,
    /// `properties` (templated values)
    pub properties: Option<Map>,
    /// `occurred_at` (templated; blank = now)
    pub occurred_at: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Decoding

pub(crate) fn decode(kind: NodeKind, o: Obj, cx: &mut Cx) -> NodeConfig {
    o.unknown_keys(cx, kind.known_keys(), within(kind));
    match kind {
        NodeKind::Start => NodeConfig::Start,
        NodeKind::SendText => NodeConfig::SendText(SendText {
            message: o.text(cx, "message"),
            delay_seconds: o.number(cx, "delay_seconds"),
            sender: sender(o, cx),
        }),
        NodeKind::SendTemplate => {
            let key = o.alias(cx, "parameters", "template_params");
            let parameters = match o.get(key) {
                Some(v @ (Value::Object(_) | Value::Array(_))) => Some(v.clone()),
                Some(_) => {
                    o.wrong_type(cx, key, "object or array");
                    None
                }
                None => None,
            };
            NodeConfig::SendTemplate(SendTemplate {
                template_id: o.str(cx, "template_id"),
                parameters,
                sender: sender(o, cx),
            })
        }
        NodeKind::SendInteractive => NodeConfig::SendInteractive(Box::new(send_interactive(o, cx))),
        NodeKind::WaitForResponse => NodeConfig::WaitForResponse(WaitForResponse {
            timeout_seconds: o.number(cx, "timeout_seconds"),
            has_timeout: o.bool(cx, "has_timeout"),
            save_response_to: o.str(cx, "save_response_to"),
        }),
        NodeKind::Decide => NodeConfig::Decide(decide(o, cx)),
        NodeKind::Function => NodeConfig::Function(FunctionNode {
            function: function_ref(o, cx),
            save_response_to: o.str(cx, "save_response_to"),
        }),
        NodeKind::Webhook => {
            let method_key = o.alias(cx, "method", "http_method");
            let body_key = o.alias(cx, "body_template", "body");
            NodeConfig::Webhook(Webhook {
                url: o.text(cx, "url"),
                method: o.str(cx, method_key),
                headers: o.headers(cx, "headers"),
                body_template: o.json_field(cx, body_key, JsonShape::Any),
                save_response_to: o.str(cx, "save_response_to"),
                model: model_ref(o, cx),
                ai_fields: ai_fields(o, cx),
            })
        }
        NodeKind::SetVariable => NodeConfig::SetVariable(SetVariable {
            variable_name: o.str(cx, "variable_name"),
            variable_value: o.get("variable_value").cloned(),
            value_type: o.enumeration(
                cx,
                "value_type",
                &["string", "number", "boolean", "json"],
                &[
                    ValueType::String,
                    ValueType::Number,
                    ValueType::Boolean,
                    ValueType::Json,
                ],
            ),
        }),
        NodeKind::Call => NodeConfig::Call(Call {
            workflow: FlowRef {
                id: o.str(cx, "workflow_id"),
                slug: o.str(cx, "workflow_slug"),
                name: o.str(cx, "workflow_name"),
            },
            save_error_to: o.str(cx, "save_error_to"),
        }),
        NodeKind::Agent => NodeConfig::Agent(Box::new(agent(o, cx))),
        NodeKind::Handoff => NodeConfig::Handoff(Handoff {
            reason: o.str(cx, "reason"),
            context_data: match o.get("context_data") {
                Some(v @ (Value::Object(_) | Value::String(_))) => Some(v.clone()),
                Some(_) => {
                    o.wrong_type(cx, "context_data", "object or string");
                    None
                }
                None => None,
            },
        }),
        NodeKind::EmitEvent => NodeConfig::EmitEvent(EmitEvent {
            event_name: o.str(cx, "event_name"),
            properties: o.object(cx, "properties").cloned(),
            occurred_at: o.str(cx, "occurred_at"),
        }),
    }
}

fn within(kind: NodeKind) -> &'static str {
    match kind {
        NodeKind::Start => "start config",
        NodeKind::SendText => "send_text config",
        NodeKind::SendTemplate => "send_template config",
        NodeKind::SendInteractive => "send_interactive config",
        NodeKind::WaitForResponse => "wait_for_response config",
        NodeKind::Decide => "decide config",
        NodeKind::Function => "function config",
        NodeKind::Webhook => "webhook config",
        NodeKind::SetVariable => "set_variable config",
        NodeKind::Call => "call config",
        NodeKind::Agent => "agent config",
        NodeKind::Handoff => "handoff config",
        NodeKind::EmitEvent => "emit_event config",
    }
}

fn model_ref(o: Obj, cx: &mut Cx) -> ModelRef {
    ModelRef {
        id: o.str(cx, "provider_model_id"),
        name: o.str(cx, "provider_model_name"),
    }
}

fn function_ref(o: Obj, cx: &mut Cx) -> FunctionRef {
    FunctionRef {
        id: o.str(cx, "function_id"),
        slug: o.str(cx, "function_slug"),
        name: o.str(cx, "function_name"),
    }
}

fn sender(o: Obj, cx: &mut Cx) -> Sender {
    Sender {
        phone_number_id: o.str(cx, "phone_number_id"),
        whatsapp_config_id: o.str(cx, "whatsapp_config_id"),
        to_phone_number: o.str(cx, "to_phone_number"),
        model: model_ref(o, cx),
        ai_fields: ai_fields(o, cx),
    }
}

fn ai_fields(o: Obj, cx: &mut Cx) -> Vec<AiField> {
    let Some(map) = o.object(cx, "ai_field_config") else {
        return Vec::new();
    };
    let afc = o.child("ai_field_config", map);
    let mut out = Vec::with_capacity(map.len());
    for e in map.entries() {
        let Value::Object(m) = &e.value else {
            if !e.value.is_null() {
                afc.wrong_type(cx, &e.key, "object");
            }
            out.push(AiField {
                path: e.key.to_string(),
                mode: None,
                prompt: None,
            });
            continue;
        };
        let eo = afc.child(&e.key, m);
        eo.unknown_keys(cx, &["mode", "prompt"], "ai_field_config entry");
        out.push(AiField {
            path: e.key.to_string(),
            mode: eo.enumeration(cx, "mode", &["prompt"], &[AiMode::Prompt]),
            prompt: eo.str(cx, "prompt"),
        });
    }
    out
}

fn send_interactive(o: Obj, cx: &mut Cx) -> SendInteractive {
    let buttons = o.objects(cx, "buttons").map(|items| {
        items
            .into_iter()
            .map(|(i, m)| {
                let b = o.item("buttons", i, m);
                b.unknown_keys(cx, &["id", "title"], "button");
                Button {
                    id: b.str(cx, "id"),
                    title: b.str(cx, "title"),
                }
            })
            .collect()
    });
    let list_sections = o.objects(cx, "list_sections").map(|items| {
        items
            .into_iter()
            .map(|(i, m)| {
                let s = o.item("list_sections", i, m);
                s.unknown_keys(cx, &["title", "rows"], "list section");
                let rows = s
                    .objects(cx, "rows")
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(j, rm)| {
                        let r = s.item("rows", j, rm);
                        r.unknown_keys(cx, &["id", "title", "description"], "list row");
                        ListRow {
                            id: r.str(cx, "id"),
                            title: r.str(cx, "title"),
                            description: r.str(cx, "description"),
                        }
                    })
                    .collect();
                ListSection {
                    title: s.str(cx, "title"),
                    rows,
                }
            })
            .collect()
    });
    let flow_action_payload = o.object(cx, "flow_action_payload").map(|m| {
        let f = o.child("flow_action_payload", m);
        FlowActionPayload {
            screen: f.str(cx, "screen"),
            data: f.object(cx, "data").cloned().map(Value::Object),
        }
    });
    SendInteractive {
        interactive_type: o.enumeration(
            cx,
            "interactive_type",
            InteractiveType::NAMES,
            InteractiveType::VALUES,
        ),
        body_text: o.text(cx, "body_text"),
        header_type: o.enumeration(cx, "header_type", HeaderType::NAMES, HeaderType::VALUES),
        header_text: o.text(cx, "header_text"),
        header_media_url: o.str(cx, "header_media_url"),
        footer_text: o.text(cx, "footer_text"),
        buttons,
        list_button_text: o.str(cx, "list_button_text"),
        list_sections,
        cta_display_text: o.str(cx, "cta_display_text"),
        cta_url: o.str(cx, "cta_url"),
        flow_id: o.str(cx, "flow_id"),
        flow_cta: o.str(cx, "flow_cta"),
        flow_token: o.str(cx, "flow_token"),
        flow_action: o.enumeration(
            cx,
            "flow_action",
            &["navigate", "data_exchange"],
            &[FlowAction::Navigate, FlowAction::DataExchange],
        ),
        flow_action_payload,
        sender: sender(o, cx),
    }
}

fn decide(o: Obj, cx: &mut Cx) -> Decide {
    let conditions = o.objects(cx, "conditions").map(|items| {
        items
            .into_iter()
            .map(|(i, m)| {
                let c = o.item("conditions", i, m);
                c.unknown_keys(cx, &["label", "description", "id"], "condition");
                Condition {
                    label: c.str(cx, "label"),
                    description: c.str(cx, "description"),
                    id: c.str(cx, "id"),
                }
            })
            .collect()
    });
    let llm_configuration = o.object(cx, "llm_configuration").cloned();
    let instructions = llm_configuration
        .as_ref()
        .and_then(|m| o.child("llm_configuration", m).str(cx, "instructions"));
    Decide {
        decision_type: o.enumeration(
            cx,
            "decision_type",
            &["ai", "function"],
            &[DecisionType::Ai, DecisionType::Function],
        ),
        conditions,
        model: model_ref(o, cx),
        llm_temperature: o.number(cx, "llm_temperature"),
        llm_max_tokens: o.integer(cx, "llm_max_tokens"),
        llm_configuration,
        instructions,
        function: function_ref(o, cx),
    }
}

fn agent(o: Obj, cx: &mut Cx) -> Agent {
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
        t.unknown_keys(
            cx,
            &[
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
            ],
            "webhook tool",
        );
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
        t.unknown_keys(
            cx,
            &[
                "name",
                "description",
                "function_id",
                "function_slug",
                "function_name",
                "input_schema",
            ],
            "function tool",
        );
        FunctionTool {
            name: t.str(cx, "name"),
            description: t.str(cx, "description"),
            function: function_ref(t, cx),
            input_schema: t.json_field(cx, "input_schema", JsonShape::Object),
        }
    });
    let mcp_servers = tools(&o, cx, "flow_agent_mcp_servers", |t, cx| {
        t.unknown_keys(cx, &["name", "description", "url", "headers"], "MCP server");
        McpServer {
            name: t.str(cx, "name"),
            description: t.str(cx, "description"),
            url: t.str(cx, "url"),
            headers: t.headers(cx, "headers"),
        }
    });
    let knowledge_bases = tools(&o, cx, "flow_agent_knowledge_bases", |t, cx| {
        t.unknown_keys(
            cx,
            &["name", "description", "knowledge_base_text"],
            "knowledge base",
        );
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
