//! A fluent builder mirroring the Kapso Python SDK (`Flow(...)`, `add_node`, `add_edge`).
//!
//! ```
//! use switchboard_model::{Flow, Node, builder::condition};
//!
//! let flow = Flow::new("Lead Capture")
//!     .with_description("Ask for an email and route the lead")
//!     .node(Node::start("start"))
//!     .node(Node::send_text("ask", "What is your email?"))
//!     .node(Node::wait_for_response("wait").with("timeout_seconds", 600).with("save_response_to", "email"))
//!     .node(Node::decide_ai("route", "gpt-4o-mini", [condition("sales", "Wants to buy"), condition("support", "Needs help")]))
//!     .node(Node::handoff("sales_team"))
//!     .node(Node::agent("helper", "Help {{email}} with their problem", "gpt-4o-mini"))
//!     .edge("start", "ask")
//!     .edge("ask", "wait")
//!     .edge("wait", "route")
//!     .labelled_edge("route", "sales_team", "sales")
//!     .labelled_edge("route", "helper", "support");
//! assert_eq!(flow.nodes.len(), 6);
//! assert!(flow.to_text().contains("\"node_type\": \"decide\""));
//! ```

use crate::config::NodeKind;
use crate::flow::{Edge, Flow, Node};
use crate::value::{Map, Value};

/// A decide condition object `{label, description}`.
pub fn condition(label: &str, description: &str) -> Value {
    let mut m = Map::new();
    m.insert("label", label);
    m.insert("description", description);
    Value::Object(m)
}

/// A reply button object `{id, title}`.
pub fn button(id: &str, title: &str) -> Value {
    let mut m = Map::new();
    m.insert("id", id);
    m.insert("title", title);
    Value::Object(m)
}

/// The AI-field marker `{"$ai": {}}`.
pub fn ai_marker() -> Value {
    let mut m = Map::new();
    m.insert("$ai", Map::new());
    Value::Object(m)
}

fn config(pairs: Vec<(&str, Value)>) -> Map {
    pairs.into_iter().collect()
}

impl Flow {
    /// Sets `description` (builder style).
    pub fn with_description(mut self, description: impl Into<String>) -> Flow {
        self.set_description(description);
        self
    }

    /// Adds a node (builder style; the SDK's `add_node`).
    pub fn node(mut self, node: Node) -> Flow {
        self.nodes.push(node);
        self
    }

    /// Adds an edge labelled `next` (the SDK's `add_edge(source, target)`).
    pub fn edge(self, source: &str, target: &str) -> Flow {
        self.labelled_edge(source, target, "next")
    }

    /// Adds a labelled edge (a decide condition label, or `error`).
    pub fn labelled_edge(mut self, source: &str, target: &str, label: &str) -> Flow {
        self.edges.push(Edge::new(source, target, label));
        self
    }

    /// Declares `metadata.input_variables` (builder style).
    pub fn input_variables<I, S>(mut self, names: I) -> Flow
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let list: Vec<Value> = names.into_iter().map(|s| Value::from(s.into())).collect();
        self.edit_body(|b| {
            b.object_entry("metadata")
                .insert("input_variables", Value::Array(list));
        });
        self
    }
}

impl Node {
    /// `start`
    pub fn start(id: &str) -> Node {
        Node::new(id, NodeKind::Start, Map::new())
    }

    /// `send_text` with a message.
    pub fn send_text(id: &str, message: &str) -> Node {
        Node::new(
            id,
            NodeKind::SendText,
            config(vec![("message", message.into())]),
        )
    }

    /// `send_template` with a template id and parameters (object or array).
    pub fn send_template(id: &str, template_id: &str, parameters: impl Into<Value>) -> Node {
        let params = parameters.into();
        let mut pairs = vec![("template_id", template_id.into())];
        if !params.is_null() {
            pairs.push(("parameters", params));
        }
        Node::new(id, NodeKind::SendTemplate, config(pairs))
    }

    /// `send_interactive` of type `button` with up to three `(id, title)` buttons.
    pub fn send_buttons(id: &str, body_text: &str, buttons: &[(&str, &str)]) -> Node {
        let list = buttons
            .iter()
            .map(|(i, t)| button(i, t))
            .collect::<Vec<_>>();
        Node::new(
            id,
            NodeKind::SendInteractive,
            config(vec![
                ("interactive_type", "button".into()),
                ("body_text", body_text.into()),
                ("buttons", Value::Array(list)),
            ]),
        )
    }

    /// `send_interactive` of any type with a body; add the type's keys with [`Node::with`].
    pub fn send_interactive(id: &str, interactive_type: &str, body_text: &str) -> Node {
        Node::new(
            id,
            NodeKind::SendInteractive,
            config(vec![
                ("interactive_type", interactive_type.into()),
                ("body_text", body_text.into()),
            ]),
        )
    }

    /// `wait_for_response`
    pub fn wait_for_response(id: &str) -> Node {
        Node::new(id, NodeKind::WaitForResponse, Map::new())
    }

    /// `decide` in AI mode.
    pub fn decide_ai(id: &str, model: &str, conditions: impl IntoIterator<Item = Value>) -> Node {
        Node::new(
            id,
            NodeKind::Decide,
            config(vec![
                ("decision_type", "ai".into()),
                ("provider_model_name", model.into()),
                ("conditions", Value::Array(conditions.into_iter().collect())),
            ]),
        )
    }

    /// `decide` in function mode.
    pub fn decide_function(
        id: &str,
        function_id: &str,
        conditions: impl IntoIterator<Item = Value>,
    ) -> Node {
        Node::new(
            id,
            NodeKind::Decide,
            config(vec![
                ("decision_type", "function".into()),
                ("function_id", function_id.into()),
                ("conditions", Value::Array(conditions.into_iter().collect())),
            ]),
        )
    }

    /// `function`
    pub fn function(id: &str, function_id: &str) -> Node {
        Node::new(
            id,
            NodeKind::Function,
            config(vec![("function_id", function_id.into())]),
        )
    }

    /// `webhook` (POST by default).
    pub fn webhook(id: &str, url: &str) -> Node {
        Node::new(id, NodeKind::Webhook, config(vec![("url", url.into())]))
    }

    /// `set_variable`
    pub fn set_variable(id: &str, name: &str, value: impl Into<Value>) -> Node {
        Node::new(
            id,
            NodeKind::SetVariable,
            config(vec![
                ("variable_name", name.into()),
                ("variable_value", value.into()),
            ]),
        )
    }

    /// `call` of the flow with this slug.
    pub fn call(id: &str, workflow_slug: &str) -> Node {
        Node::new(
            id,
            NodeKind::Call,
            config(vec![("workflow_slug", workflow_slug.into())]),
        )
    }

    /// `agent`
    pub fn agent(id: &str, system_prompt: &str, model: &str) -> Node {
        Node::new(
            id,
            NodeKind::Agent,
            config(vec![
                ("system_prompt", system_prompt.into()),
                ("provider_model_name", model.into()),
            ]),
        )
    }

    /// `handoff`
    pub fn handoff(id: &str) -> Node {
        Node::new(id, NodeKind::Handoff, Map::new())
    }

    /// `emit_event`
    pub fn emit_event(id: &str, event_name: &str) -> Node {
        Node::new(
            id,
            NodeKind::EmitEvent,
            config(vec![("event_name", event_name.into())]),
        )
    }

    /// `pipedream` (Switchboard loads it but does not run it: reaching it fails the node).
    pub fn pipedream(id: &str, app_slug: &str, action_id: &str) -> Node {
        Node::new(
            id,
            NodeKind::Pipedream,
            config(vec![
                ("app_slug", app_slug.into()),
                ("action_id", action_id.into()),
            ]),
        )
    }

    /// Makes `path` an AI field generated from `prompt` (sets the marker and its
    /// `ai_field_config` entry). Top-level keys only; for nested paths use [`Node::edit_config`].
    pub fn with_ai_field(mut self, key: &str, prompt: &str) -> Node {
        self.edit_config(|c| {
            c.insert(key, ai_marker());
            let mut entry = Map::new();
            entry.insert("mode", "prompt");
            entry.insert("prompt", prompt);
            c.object_entry("ai_field_config").insert(key, entry);
        });
        self
    }
}
