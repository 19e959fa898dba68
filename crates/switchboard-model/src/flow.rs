//! The flow: nodes, edges, top-level metadata, and the document they were read from.
//!
//! Every [`Node`] and [`Edge`] keeps its source object; typed views ([`Node::config`],
//! [`Edge::label`]) are projections of it, refreshed by every setter. Writing a flow writes
//! those objects, so unknown keys, key order, explicit `null`s and alias spellings survive.

use crate::config::{self, NodeConfig, NodeKind};
use crate::decode::{Cx, Loc, Obj};
use crate::issue::{Issue, IssueKind};
use crate::value::{Map, Pos, Str, Value, escape_pointer_token};

/// The shape of a flow document (flow-format §1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Shape {
    /// A — `{name, description, definition: {nodes, edges}}` (SDK compiled).
    Compiled,
    /// B — `{name, description, nodes, edges}` (SDK dict / YAML).
    SdkDict,
    /// C — `{nodes, edges}` with positions (platform `definition.json`).
    Definition,
}

/// The text encoding of a flow document.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// JSON
    Json,
    /// YAML
    Yaml,
}

/// An API envelope around the flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Envelope {
    /// `{"flow": {...}}`
    Flow,
    /// `{"workflow": {...}}`
    Workflow,
}

impl Envelope {
    /// The envelope key.
    pub fn key(self) -> &'static str {
        match self {
            Envelope::Flow => "flow",
            Envelope::Workflow => "workflow",
        }
    }
}

/// How a flow was (or will be) written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Format {
    /// The shape.
    pub shape: Shape,
    /// The encoding.
    pub encoding: Encoding,
    /// The envelope, if any.
    pub envelope: Option<Envelope>,
}

/// A node of a flow.
#[derive(Clone, Debug)]
pub struct Node {
    raw: Map,
    /// Inline up to 24 bytes (most ids): reading it touches no other memory.
    id: Str,
    kind: Option<NodeKind>,
    config: NodeConfig,
    /// The entry as written when it is not an object (kept for writing).
    original: Option<Box<Value>>,
}

impl PartialEq for Node {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw && self.original == other.original
    }
}

impl Node {
    /// A node of `kind` with the given `config` object (`type: "flow-node"`, no position).
    pub fn new(id: impl Into<String>, kind: NodeKind, config: Map) -> Node {
        let mut data = Map::new();
        data.insert("node_type", kind.as_str());
        data.insert("config", config);
        let mut raw = Map::new();
        raw.insert("id", id.into());
        raw.insert("type", "flow-node");
        raw.insert("data", data);
        Node::from_raw(raw)
    }

    /// A node from its document object. Decoding problems are dropped; use a loader to see them.
    pub fn from_raw(raw: Map) -> Node {
        let mut issues = Vec::new();
        Node::decode(raw, Loc::root(""), None, &mut issues)
    }

    pub(crate) fn decode(
        raw: Map,
        loc: Loc<'_>,
        index: Option<usize>,
        issues: &mut Vec<Issue>,
    ) -> Node {
        let mut cx = Cx {
            issues,
            node: index,
            edge: None,
        };
        let o = Obj::at(&raw, loc);
        let id = o.str_value(&mut cx, "id").unwrap_or_default();
        let data = o.object(&mut cx, "data");
        let (kind, node_type_found) = match data {
            Some(d) => {
                let d = o.child("data", d);
                match d.get("node_type") {
                    Some(Value::String(s)) => (NodeKind::parse(s), Some(s.to_string())),
                    Some(_) => {
                        d.wrong_type(&mut cx, "node_type", "string");
                        (None, None)
                    }
                    None => (None, None),
                }
            }
            None => (None, None),
        };
        let config = match (kind, data) {
            (Some(kind), Some(d)) => {
                let d = o.child("data", d);
                let empty = Map::new();
                let cmap = match d.get("config") {
                    None => &empty,
                    Some(Value::Object(m)) => m,
                    Some(_) => {
                        d.wrong_type(&mut cx, "config", "object");
                        &empty
                    }
                };
                config::decode(kind, d.child_reset("config", cmap), &mut cx)
            }
            _ => {
                let pos = data
                    .and_then(|d| d.entry("node_type").map(|e| e.value_pos))
                    .unwrap_or(raw.pos);
                cx.push(
                    IssueKind::UnknownNodeType {
                        found: node_type_found,
                    },
                    format!("{}/node_type", o.ptr_of("data")),
                    pos,
                );
                NodeConfig::Unknown
            }
        };
        Node {
            raw,
            id,
            kind,
            config,
            original: None,
        }
    }

    pub(crate) fn decode_non_object(v: Value) -> Node {
        Node {
            raw: Map::new(),
            id: Str::default(),
            kind: None,
            config: NodeConfig::Unknown,
            original: Some(Box::new(v)),
        }
    }

    /// `false` when the entry in the `nodes` array is not an object (it is kept as written).
    pub fn is_object(&self) -> bool {
        self.original.is_none()
    }

    /// The node as a document value (what the writer emits).
    pub fn to_value(&self) -> Value {
        match &self.original {
            Some(v) => (**v).clone(),
            None => Value::Object(self.raw.clone()),
        }
    }

    /// `id` (`""` when missing or not a string).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The node type, when known.
    pub fn kind(&self) -> Option<NodeKind> {
        self.kind
    }

    /// The typed configuration.
    pub fn config(&self) -> &NodeConfig {
        &self.config
    }

    /// `data.node_type` as written.
    pub fn node_type(&self) -> Option<&str> {
        self.raw
            .get("data")?
            .as_object()?
            .get("node_type")?
            .as_str()
    }

    /// The node's document object.
    pub fn raw(&self) -> &Map {
        &self.raw
    }

    /// `data.config` as written (`None` when absent, `null` or not an object).
    pub fn config_map(&self) -> Option<&Map> {
        self.raw
            .get("data")?
            .as_object()?
            .get("config")?
            .as_object()
    }

    /// Sets `id`.
    pub fn set_id(&mut self, id: impl Into<String>) {
        let id = Str::from(id.into());
        self.raw.insert("id", id.clone());
        self.id = id;
    }

    /// Edits `data.config` (created when missing) and refreshes the typed view.
    pub fn edit_config(&mut self, edit: impl FnOnce(&mut Map)) {
        let data = ensure_object(&mut self.raw, "data");
        let config = ensure_object(data, "config");
        edit(config);
        let raw = std::mem::take(&mut self.raw);
        *self = Node::from_raw(raw);
    }

    /// Sets one config key (builder style).
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Node {
        let value = value.into();
        self.edit_config(|c| {
            c.insert(key, value);
        });
        self
    }

    /// Sets a key on the node object itself (e.g. `position`), builder style.
    pub fn with_node_key(mut self, key: &str, value: impl Into<Value>) -> Node {
        self.raw.insert(key, value);
        let raw = std::mem::take(&mut self.raw);
        Node::from_raw(raw)
    }
}

fn ensure_object<'a>(map: &'a mut Map, key: &str) -> &'a mut Map {
    map.object_entry(key)
}

/// An edge of a flow.
#[derive(Clone, Debug)]
pub struct Edge {
    raw: Map,
    // Inline up to 24 bytes (most ids and labels), like the node's id.
    source: Option<Str>,
    target: Option<Str>,
    label: Option<Str>,
    /// `flow_condition_id` when it is a string (no setter changes it).
    flow_condition_id: Option<Str>,
    original: Option<Box<Value>>,
}

impl PartialEq for Edge {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw && self.original == other.original
    }
}

impl Edge {
    /// An edge `source → target` labelled `label`.
    pub fn new(
        source: impl Into<String>,
        target: impl Into<String>,
        label: impl Into<String>,
    ) -> Edge {
        let mut raw = Map::new();
        raw.insert("source", source.into());
        raw.insert("target", target.into());
        raw.insert("label", label.into());
        Edge::from_raw(raw)
    }

    /// An edge from its document object.
    pub fn from_raw(raw: Map) -> Edge {
        let mut issues = Vec::new();
        Edge::decode(raw, Loc::root(""), None, &mut issues)
    }

    pub(crate) fn decode(
        raw: Map,
        loc: Loc<'_>,
        index: Option<usize>,
        issues: &mut Vec<Issue>,
    ) -> Edge {
        let mut cx = Cx {
            issues,
            node: None,
            edge: index,
        };
        let o = Obj::at(&raw, loc);
        let source = o.str_value(&mut cx, "source");
        let target = o.str_value(&mut cx, "target");
        let label = o.str_value(&mut cx, "label");
        // Only the types of `id` and `type` are checked.
        o.check_str(&mut cx, "id");
        o.check_str(&mut cx, "type");
        let flow_condition_id = o.str_value(&mut cx, "flow_condition_id");
        Edge {
            raw,
            source,
            target,
            label,
            flow_condition_id,
            original: None,
        }
    }

    pub(crate) fn decode_non_object(v: Value, _index: usize) -> Edge {
        Edge {
            raw: Map::new(),
            source: None,
            target: None,
            label: None,
            flow_condition_id: None,
            original: Some(Box::new(v)),
        }
    }

    /// `false` when the entry in the `edges` array is not an object (it is kept as written).
    pub fn is_object(&self) -> bool {
        self.original.is_none()
    }

    /// The edge as a document value (what the writer emits).
    pub fn to_value(&self) -> Value {
        match &self.original {
            Some(v) => (**v).clone(),
            None => Value::Object(self.raw.clone()),
        }
    }

    /// `source` (`None` when missing or not a string).
    pub fn source(&self) -> Option<&str> {
        self.source.as_deref()
    }

    /// `target` (`None` when missing or not a string).
    pub fn target(&self) -> Option<&str> {
        self.target.as_deref()
    }

    /// `label`, with absent or `null` read as `"next"`.
    pub fn label(&self) -> &str {
        self.label.as_deref().unwrap_or("next")
    }

    /// `true` for the failure edge (`label: "error"`).
    pub fn is_error(&self) -> bool {
        self.label() == "error"
    }

    /// `flow_condition_id`, when set.
    pub fn flow_condition_id(&self) -> Option<&str> {
        self.flow_condition_id.as_deref()
    }

    /// The edge's document object.
    pub fn raw(&self) -> &Map {
        &self.raw
    }

    /// Sets `label`.
    pub fn set_label(&mut self, label: impl Into<String>) {
        let label = Str::from(label.into());
        self.raw.insert("label", label.clone());
        self.label = Some(label);
    }

    /// Sets `target`.
    pub fn set_target(&mut self, target: impl Into<String>) {
        let target = Str::from(target.into());
        self.raw.insert("target", target.clone());
        self.target = Some(target);
    }

    /// Sets `source`.
    pub fn set_source(&mut self, source: impl Into<String>) {
        let source = Str::from(source.into());
        self.raw.insert("source", source.clone());
        self.source = Some(source);
    }
}

/// `metadata` (Switchboard extension).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Metadata {
    /// `input_variables`: variables the flow expects from its starter.
    pub input_variables: Vec<String>,
}

/// `settings` (Switchboard extension).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Settings {
    /// `message_debounce_seconds` (default 0).
    pub message_debounce_seconds: Option<f64>,
    /// `max_steps_per_turn` (default 1000).
    pub max_steps_per_turn: Option<i64>,
}

/// A flow: nodes, edges and the rest of its document.
#[derive(Clone, Debug, PartialEq)]
pub struct Flow {
    /// The nodes, in file order.
    pub nodes: Vec<Node>,
    /// The edges, in file order.
    pub edges: Vec<Edge>,
    /// The document minus its `nodes` and `edges` arrays (kept for writing).
    root: Map,
    format: Format,
    /// `edges` key present in the source (or edges added since).
    had_edges: bool,
    /// `nodes` key present in the source (or nodes added since).
    had_nodes: bool,
}

impl Flow {
    /// An empty flow named `name` (shape A, JSON), ready for the builder methods.
    pub fn new(name: impl Into<String>) -> Flow {
        let mut root = Map::new();
        root.insert("name", name.into());
        let mut definition = Map::new();
        definition.insert("nodes", Value::Array(Vec::new()));
        definition.insert("edges", Value::Array(Vec::new()));
        root.insert("definition", definition);
        Flow {
            nodes: Vec::new(),
            edges: Vec::new(),
            root,
            format: Format {
                shape: Shape::Compiled,
                encoding: Encoding::Json,
                envelope: None,
            },
            had_edges: true,
            had_nodes: true,
        }
    }

    pub(crate) fn from_parts(
        root: Map,
        nodes: Vec<Node>,
        edges: Vec<Edge>,
        format: Format,
        had_edges: bool,
        had_nodes: bool,
    ) -> Flow {
        Flow {
            nodes,
            edges,
            root,
            format,
            had_edges,
            had_nodes,
        }
    }

    /// How this flow was read (and will be written by default).
    pub fn format(&self) -> Format {
        self.format
    }

    /// Changes the format the flow is written in (shape, encoding and envelope). The document is
    /// laid out anew in that shape, so [`Flow::to_text`] writes it.
    pub fn set_format(&mut self, format: Format) {
        if format.shape == self.format.shape && format.envelope == self.format.envelope {
            self.format.encoding = format.encoding;
            return;
        }
        let doc = self.to_document(format.shape);
        let body = match (self.format.envelope, doc) {
            (Some(env), Value::Object(mut root)) => {
                root.remove(env.key()).unwrap_or(Value::Object(root))
            }
            (_, doc) => doc,
        };
        let doc = match format.envelope {
            Some(env) => {
                let mut root = Map::new();
                root.insert(env.key(), body);
                Value::Object(root)
            }
            None => body,
        };
        match crate::load::from_value(doc, format.encoding) {
            Ok((flow, _)) => *self = flow,
            Err(_) => self.format = format,
        }
    }

    /// The object holding `name`, `nodes`, … (inside the envelope, if any).
    pub(crate) fn body(&self) -> &Map {
        match self.format.envelope {
            Some(env) => self
                .root
                .get(env.key())
                .and_then(Value::as_object)
                .unwrap_or(&self.root),
            None => &self.root,
        }
    }

    fn body_mut(&mut self) -> &mut Map {
        match self.format.envelope {
            Some(env) => ensure_object(&mut self.root, env.key()),
            None => &mut self.root,
        }
    }

    /// The whole document minus the `nodes`/`edges` arrays.
    pub(crate) fn root(&self) -> &Map {
        &self.root
    }

    pub(crate) fn had_edges(&self) -> bool {
        self.had_edges || !self.edges.is_empty()
    }

    pub(crate) fn had_nodes(&self) -> bool {
        self.had_nodes || !self.nodes.is_empty()
    }

    /// `name`
    pub fn name(&self) -> Option<&str> {
        self.body().get("name")?.as_str()
    }

    /// Sets `name`.
    pub fn set_name(&mut self, name: impl Into<String>) {
        let name = name.into();
        self.body_mut().insert("name", name);
    }

    /// Edits the object holding `name`, `metadata`, … (inside the envelope, if any).
    pub fn edit_body(&mut self, edit: impl FnOnce(&mut Map)) {
        edit(self.body_mut());
    }

    /// `description`
    pub fn description(&self) -> Option<&str> {
        self.body().get("description")?.as_str()
    }

    /// Sets `description`.
    pub fn set_description(&mut self, description: impl Into<String>) {
        let description = description.into();
        self.body_mut().insert("description", description);
    }

    /// `metadata` (empty when absent or malformed).
    pub fn metadata(&self) -> Metadata {
        let mut issues = Vec::new();
        decode_metadata(self.body(), "", &mut issues)
    }

    /// `settings` (empty when absent or malformed).
    pub fn settings(&self) -> Settings {
        let mut issues = Vec::new();
        decode_settings(self.body(), "", &mut issues)
    }

    /// The `metadata` object as written.
    pub fn metadata_map(&self) -> Option<&Map> {
        self.body().get("metadata")?.as_object()
    }

    /// The node with this id (the first one, if ids repeat).
    pub fn get_node(&self, id: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.id() == id)
    }

    /// The start node (the first node of type `start`).
    pub fn start_node(&self) -> Option<&Node> {
        self.nodes
            .iter()
            .find(|n| n.kind() == Some(NodeKind::Start))
    }

    /// The edges leaving `id`, in file order.
    pub fn outgoing<'a>(&'a self, id: &'a str) -> impl Iterator<Item = &'a Edge> + 'a {
        self.edges.iter().filter(move |e| e.source() == Some(id))
    }

    /// JSON pointer of the `nodes` array.
    pub fn nodes_pointer(&self) -> String {
        self.container_pointer() + "/nodes"
    }

    /// JSON pointer of the `edges` array.
    pub fn edges_pointer(&self) -> String {
        self.container_pointer() + "/edges"
    }

    /// JSON pointer of the object holding `name`, `metadata`, … (`""` without an envelope).
    pub fn body_pointer(&self) -> String {
        self.format
            .envelope
            .map_or_else(String::new, |e| format!("/{}", e.key()))
    }

    fn container_pointer(&self) -> String {
        let mut p = self.body_pointer();
        if self.format.shape == Shape::Compiled {
            p.push_str("/definition");
        }
        p
    }

    /// JSON pointer of node `i`.
    pub fn node_pointer(&self, i: usize) -> String {
        format!("{}/{i}", self.nodes_pointer())
    }

    /// JSON pointer of edge `i`.
    pub fn edge_pointer(&self, i: usize) -> String {
        format!("{}/{i}", self.edges_pointer())
    }

    /// JSON pointer of `key` in node `i`'s config.
    pub fn config_pointer(&self, i: usize, key: &str) -> String {
        format!(
            "{}/{i}/data/config/{}",
            self.nodes_pointer(),
            escape_pointer_token(key)
        )
    }

    /// The best known source position of a JSON pointer into this flow's document.
    pub fn pos_at(&self, pointer: &str) -> Pos {
        // Strip the container prefix piece by piece (no string is built per call).
        let mut rest = pointer;
        if let Some(env) = self.format.envelope {
            rest = rest
                .strip_prefix('/')
                .and_then(|r| r.strip_prefix(env.key()))
                .unwrap_or("\0");
        }
        if self.format.shape == Shape::Compiled {
            rest = rest.strip_prefix("/definition").unwrap_or("\0");
        }
        for (list, is_nodes) in [("/nodes/", true), ("/edges/", false)] {
            let Some(after) = rest.strip_prefix(list) else {
                continue;
            };
            let (index, tail) = after
                .split_once('/')
                .map_or((after, None), |(i, t)| (i, Some(t)));
            let Ok(i) = index.parse::<usize>() else { break };
            let raw = if is_nodes {
                self.nodes.get(i).map(Node::raw)
            } else {
                self.edges.get(i).map(Edge::raw)
            };
            if let Some(raw) = raw {
                let pos = match tail {
                    None => raw.pos,
                    Some(t) => value_pos_at_rel(raw, t),
                };
                return pos.or(raw.pos);
            }
            break;
        }
        value_pos_at(&self.root, pointer)
    }
}

/// Like `value_pos_at` for a pointer without its leading `/`.
fn value_pos_at_rel(map: &Map, rel: &str) -> Pos {
    let (first, tail) = rel
        .split_once('/')
        .map_or((rel, None), |(a, b)| (a, Some(b)));
    let key: std::borrow::Cow<'_, str> = if first.contains('~') {
        first.replace("~1", "/").replace("~0", "~").into()
    } else {
        first.into()
    };
    match map.entry(&key) {
        None => map.pos,
        Some(e) => {
            let here = e.value_pos.or(e.key_pos).or(map.pos);
            match tail {
                None => here,
                Some(t) => match &e.value {
                    Value::Object(m) => value_pos_at_rel(m, t).or(here),
                    v => v.pos_at(&format!("/{t}")).or(here),
                },
            }
        }
    }
}

fn value_pos_at(map: &Map, pointer: &str) -> Pos {
    // Avoid cloning the map: walk the first level by hand, then delegate.
    let Some(rest) = pointer.strip_prefix('/') else {
        return map.pos;
    };
    let (first, tail) = rest
        .split_once('/')
        .map_or((rest, None), |(a, b)| (a, Some(b)));
    let key = first.replace("~1", "/").replace("~0", "~");
    match map.entry(&key) {
        None => map.pos,
        Some(e) => {
            let here = e.value_pos.or(e.key_pos).or(map.pos);
            match tail {
                None => here,
                Some(t) => e.value.pos_at(&format!("/{t}")).or(here),
            }
        }
    }
}

pub(crate) fn decode_metadata(body: &Map, body_ptr: &str, issues: &mut Vec<Issue>) -> Metadata {
    let mut cx = Cx {
        issues,
        node: None,
        edge: None,
    };
    let o = Obj::root(body, body_ptr);
    let Some(m) = o.object(&mut cx, "metadata") else {
        return Metadata::default();
    };
    let mo = o.child("metadata", m);
    Metadata {
        input_variables: mo
            .string_list(&mut cx, "input_variables")
            .unwrap_or_default(),
    }
}

pub(crate) fn decode_settings(body: &Map, body_ptr: &str, issues: &mut Vec<Issue>) -> Settings {
    let mut cx = Cx {
        issues,
        node: None,
        edge: None,
    };
    let o = Obj::root(body, body_ptr);
    let Some(m) = o.object(&mut cx, "settings") else {
        return Settings::default();
    };
    let so = o.child("settings", m);
    Settings {
        message_debounce_seconds: so.number(&mut cx, "message_debounce_seconds"),
        max_steps_per_turn: so.integer(&mut cx, "max_steps_per_turn"),
    }
}
