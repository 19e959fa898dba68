//! Typed node configurations: one struct per node type of flow-format §8, split by family.
//!
//! A typed config is a read-only projection of a node's `data.config` object. Aliases are
//! resolved (the canonical key wins), object-or-JSON-string fields are decoded, numeric strings
//! are read as numbers, and a field of the wrong type is treated as absent and recorded as an
//! [`crate::Issue`]. The document itself stays the source of truth for writing.
//!
//! This module holds what every family shares ([`NodeKind`], [`NodeConfig`], the references and
//! AI-field settings) and the dispatch of `decode`; each family lives in a submodule with its
//! configs and their decoders: `messages` (`send_text`, `send_template`, `send_interactive`),
//! `control` (`start`, `wait_for_response`, `decide`, `set_variable`, `call`, `handoff`,
//! `emit_event`), `integration` (`function`, `webhook`, `pipedream`) and `agent` (`agent` and its
//! tools).

/// A key list made of other key lists, concatenated at compile time, so that a key shared by
/// several decoders (the model reference, the sender keys, …) is listed once:
/// `keys![&["message", "delay_seconds"], SENDER_KEYS]`.
macro_rules! keys {
    ($($part:expr),+ $(,)?) => {{
        const PARTS: &[&[&str]] = &[$($part),+];
        const KEYS: [&str; $crate::config::keys_len(PARTS)] = $crate::config::concat_keys(PARTS);
        &KEYS
    }};
}

mod agent;
mod control;
mod integration;
mod messages;
#[cfg(test)]
mod tests;

pub use crate::decode::TextField;
use crate::decode::{Cx, Obj};
use crate::value::Value;
pub use agent::{
    Agent, BuiltinTool, DeliveryMode, FunctionTool, KnowledgeBase, McpServer, ReasoningEffort,
    WebhookTool,
};
pub use control::{
    Call, Condition, Decide, DecisionType, EmitEvent, Handoff, SetVariable, ValueType,
    WaitForResponse,
};
pub use integration::{FunctionNode, HttpMethod, Pipedream, Webhook};
pub use messages::{
    Button, FlowAction, FlowActionPayload, HeaderType, InteractiveType, ListRow, ListSection,
    SendInteractive, SendTemplate, SendText, Sender,
};

/// The node types: the 13 Switchboard runs, and `pipedream`, which Kapso still defines and
/// Switchboard loads and validates without running it ([`NodeKind::is_supported`]).
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
    /// `pipedream` (loaded and validated, not run)
    Pipedream,
}

impl NodeKind {
    /// Every node type: the 13 of flow-format §8 in its order, then `pipedream`.
    pub const ALL: [NodeKind; 14] = [
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
        NodeKind::Pipedream,
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
        "pipedream",
    ];

    /// The `node_type` spellings of the 13 node types Switchboard runs.
    pub const SUPPORTED_NAMES: &'static [&'static str] = Self::ALL_NAMES.split_at(13).0;

    /// `false` for a node type Switchboard loads and validates but does not run (`pipedream`):
    /// an execution reaching it fails with `unsupported_node`.
    pub fn is_supported(self) -> bool {
        self != NodeKind::Pipedream
    }

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

    /// The config keys this node type defines (aliases and read-only keys included): the key
    /// list declared beside the type's decoder.
    pub fn known_keys(self) -> &'static [&'static str] {
        match self {
            NodeKind::Start => control::START_KEYS,
            NodeKind::SendText => messages::SEND_TEXT_KEYS,
            NodeKind::SendTemplate => messages::SEND_TEMPLATE_KEYS,
            NodeKind::SendInteractive => messages::SEND_INTERACTIVE_KEYS,
            NodeKind::WaitForResponse => control::WAIT_FOR_RESPONSE_KEYS,
            NodeKind::Decide => control::DECIDE_KEYS,
            NodeKind::Function => integration::FUNCTION_KEYS,
            NodeKind::Webhook => integration::WEBHOOK_KEYS,
            NodeKind::SetVariable => control::SET_VARIABLE_KEYS,
            NodeKind::Call => control::CALL_KEYS,
            NodeKind::Agent => agent::AGENT_KEYS,
            NodeKind::Handoff => control::HANDOFF_KEYS,
            NodeKind::EmitEvent => control::EMIT_EVENT_KEYS,
            NodeKind::Pipedream => integration::PIPEDREAM_KEYS,
        }
    }
}

/// A typed node configuration.
#[derive(Clone, Debug, PartialEq)]
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
    /// `pipedream` (loaded and validated, not run)
    Pipedream(Pipedream),
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
    /// `true` when either reference is set (and not blank).
    pub fn is_set(&self) -> bool {
        self.candidates().next().is_some()
    }

    /// The references to try, in order (blank ones left out).
    pub fn candidates(&self) -> impl Iterator<Item = &str> {
        self.id
            .iter()
            .chain(&self.name)
            .map(String::as_str)
            .filter(|s| !s.trim().is_empty())
    }

    /// `provider_model_name`, when set (and not blank): the model's name.
    pub fn model_name(&self) -> Option<&str> {
        self.name.as_deref().filter(|s| !s.trim().is_empty())
    }

    /// `provider_model_id`, when set (and not blank): a Kapso id, used only through a model
    /// map.
    pub fn model_id(&self) -> Option<&str> {
        self.id.as_deref().filter(|s| !s.trim().is_empty())
    }
}

/// A reference to a function (`function_id`, `function_slug`, `function_name`) or to a called
/// flow (`workflow_id`, `workflow_slug`, `workflow_name`): resolved by id, then by slug.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResourceRef {
    /// `function_id` / `workflow_id`
    pub id: Option<String>,
    /// `function_slug` / `workflow_slug`
    pub slug: Option<String>,
    /// `function_name` / `workflow_name` (read-only, computed by Kapso)
    pub name: Option<String>,
}

impl ResourceRef {
    /// `true` when either reference is set (and not blank).
    pub fn is_set(&self) -> bool {
        self.candidates().next().is_some()
    }

    /// The references to try, in order (blank ones left out).
    pub fn candidates(&self) -> impl Iterator<Item = &str> {
        self.id
            .iter()
            .chain(&self.slug)
            .map(String::as_str)
            .filter(|s| !s.trim().is_empty())
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

// ---------------------------------------------------------------------------------------------
// Decoding

/// Projects the config object `o` of a node of type `kind` onto its typed config, reporting
/// keys the type does not define.
pub(crate) fn decode(kind: NodeKind, o: Obj, cx: &mut Cx) -> NodeConfig {
    o.unknown_keys(cx, kind.known_keys(), within(kind));
    match kind {
        NodeKind::Start => NodeConfig::Start,
        NodeKind::SendText => NodeConfig::SendText(messages::send_text(o, cx)),
        NodeKind::SendTemplate => NodeConfig::SendTemplate(messages::send_template(o, cx)),
        NodeKind::SendInteractive => {
            NodeConfig::SendInteractive(Box::new(messages::send_interactive(o, cx)))
        }
        NodeKind::WaitForResponse => NodeConfig::WaitForResponse(control::wait_for_response(o, cx)),
        NodeKind::Decide => NodeConfig::Decide(control::decide(o, cx)),
        NodeKind::Function => NodeConfig::Function(integration::function(o, cx)),
        NodeKind::Webhook => NodeConfig::Webhook(integration::webhook(o, cx)),
        NodeKind::SetVariable => NodeConfig::SetVariable(control::set_variable(o, cx)),
        NodeKind::Call => NodeConfig::Call(control::call(o, cx)),
        NodeKind::Agent => NodeConfig::Agent(Box::new(agent::agent(o, cx))),
        NodeKind::Handoff => NodeConfig::Handoff(control::handoff(o, cx)),
        NodeKind::EmitEvent => NodeConfig::EmitEvent(control::emit_event(o, cx)),
        NodeKind::Pipedream => NodeConfig::Pipedream(integration::pipedream(o, cx)),
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
        NodeKind::Pipedream => "pipedream config",
    }
}

/// The number of keys in `parts` (for [`keys!`]).
pub(crate) const fn keys_len(parts: &[&[&str]]) -> usize {
    let mut n = 0;
    let mut i = 0;
    while i < parts.len() {
        n += parts[i].len();
        i += 1;
    }
    n
}

/// The keys of `parts` in order, as one array (for [`keys!`]).
pub(crate) const fn concat_keys<const N: usize>(parts: &[&[&'static str]]) -> [&'static str; N] {
    let mut out = [""; N];
    let mut k = 0;
    let mut i = 0;
    while i < parts.len() {
        let mut j = 0;
        while j < parts[i].len() {
            out[k] = parts[i][j];
            k += 1;
            j += 1;
        }
        i += 1;
    }
    assert!(k == N, "the key list's length is the sum of its parts");
    out
}

/// The keys [`model_ref`] reads.
pub(super) const MODEL_REF_KEYS: &[&str] = &["provider_model_id", "provider_model_name"];

pub(super) fn model_ref(o: Obj, cx: &mut Cx) -> ModelRef {
    ModelRef {
        id: o.str(cx, "provider_model_id"),
        name: o.str(cx, "provider_model_name"),
    }
}

/// The keys of a function reference: id, slug, name (what [`function_ref`] reads).
pub(super) const FUNCTION_REF_KEYS: &[&str; 3] = &["function_id", "function_slug", "function_name"];

/// The keys of a called-flow reference: id, slug, name (what [`flow_ref`] reads).
pub(super) const FLOW_REF_KEYS: &[&str; 3] = &["workflow_id", "workflow_slug", "workflow_name"];

/// A function reference.
pub(super) fn function_ref(o: Obj, cx: &mut Cx) -> ResourceRef {
    resource_ref(o, cx, FUNCTION_REF_KEYS)
}

/// A called-flow reference.
pub(super) fn flow_ref(o: Obj, cx: &mut Cx) -> ResourceRef {
    resource_ref(o, cx, FLOW_REF_KEYS)
}

fn resource_ref(o: Obj, cx: &mut Cx, [id, slug, name]: &[&str; 3]) -> ResourceRef {
    ResourceRef {
        id: o.str(cx, id),
        slug: o.str(cx, slug),
        name: o.str(cx, name),
    }
}

/// The key [`ai_fields`] reads from the node config.
pub(super) const AI_FIELDS_KEYS: &[&str] = &["ai_field_config"];

/// The keys of one `ai_field_config` entry.
pub(super) const AI_FIELD_KEYS: &[&str] = &["mode", "prompt"];

pub(super) fn ai_fields(o: Obj, cx: &mut Cx) -> Vec<AiField> {
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
        eo.unknown_keys(cx, AI_FIELD_KEYS, "ai_field_config entry");
        out.push(AiField {
            path: e.key.to_string(),
            mode: eo.enumeration(cx, "mode", &["prompt"], &[AiMode::Prompt]),
            prompt: eo.str(cx, "prompt"),
        });
    }
    out
}
