//! Writing a flow back to text: in the shape and encoding it was read in (by default), in another
//! shape, or as the canonical shape-C text of `@kapso/workflows` (sorted keys, 2-space indent).

use crate::config::NodeKind;
use crate::flow::{Encoding, Flow, Shape};
use crate::value::{Entry, Map, Pos, Value};

/// How to write a flow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriteOptions {
    /// Output shape (default: the shape read).
    pub shape: Option<Shape>,
    /// Output encoding (default: the encoding read). Without the crate's `yaml` feature,
    /// [`Encoding::Yaml`] writes JSON text instead (every JSON document is a YAML 1.2 document).
    pub encoding: Option<Encoding>,
    /// Sort keys at every level (the canonical text; with shape C it is `@kapso/workflows`'s form).
    pub sort_keys: bool,
    /// One-line JSON instead of 2-space indentation (JSON only).
    pub compact: bool,
    /// Leave out the Switchboard extensions `metadata` and `settings` (for a file meant for
    /// Kapso's own tools, which do not define them).
    pub drop_extensions: bool,
}

impl WriteOptions {
    /// The canonical shape-C JSON text: sorted keys, 2-space indent, trailing newline.
    pub fn canonical() -> WriteOptions {
        WriteOptions {
            shape: Some(Shape::Definition),
            encoding: Some(Encoding::Json),
            sort_keys: true,
            compact: false,
            drop_extensions: false,
        }
    }
}

impl Flow {
    /// The flow as a document value in `shape` (the nodes and edges in place).
    pub fn to_document(&self, shape: Shape) -> Value {
        let nodes: Vec<Value> = self
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let v = n.to_value();
                if shape == Shape::Definition && self.format().shape != Shape::Definition {
                    to_definition_node(v, i, self)
                } else {
                    v
                }
            })
            .collect();
        let edges: Vec<Value> = self.edges.iter().map(|e| e.to_value()).collect();
        let write_edges = self.had_edges();

        let mut root = self.root().clone();
        let body = match self.format().envelope {
            Some(env) => root.object_entry(env.key()),
            None => &mut root,
        };
        let from = self.format().shape;
        match (from, shape) {
            (Shape::Compiled, Shape::Compiled) => {
                let write_nodes = self.had_nodes();
                let def = body.object_entry("definition");
                if write_nodes {
                    put(def, "nodes", Value::Array(nodes));
                }
                if write_edges {
                    put(def, "edges", Value::Array(edges));
                }
            }
            (Shape::Compiled, _) => {
                let def = body.remove("definition");
                let mut out = Map::with_capacity(body.len() + 2, body.pos);
                for e in body.entries() {
                    out.push_entry(e.clone());
                }
                // Keys of `definition` other than nodes/edges have no place outside it: keep them.
                if let Some(Value::Object(d)) = def {
                    for e in d.entries() {
                        if e.key != "nodes" && e.key != "edges" && !out.contains_key(&e.key) {
                            out.push_entry(e.clone());
                        }
                    }
                }
                put(&mut out, "nodes", Value::Array(nodes));
                put(&mut out, "edges", Value::Array(edges));
                *body = out;
            }
            (_, Shape::Compiled) => {
                let mut out = Map::with_capacity(body.len() + 1, body.pos);
                let mut def = Map::new();
                def.insert("nodes", Value::Array(nodes));
                def.insert("edges", Value::Array(edges));
                let mut placed = false;
                for e in body.entries() {
                    match e.key.as_str() {
                        "nodes" | "edges" => {
                            if !placed {
                                out.insert("definition", std::mem::take(&mut def));
                                placed = true;
                            }
                        }
                        // A non-object `definition` (a shape B/C file may carry one) gives way to
                        // the real one.
                        "definition" => {}
                        _ => out.push_entry(e.clone()),
                    }
                }
                if !placed {
                    out.insert("definition", def);
                }
                *body = out;
            }
            (_, _) => {
                put(body, "nodes", Value::Array(nodes));
                if write_edges || from != shape {
                    put(body, "edges", Value::Array(edges));
                }
            }
        }
        match shape {
            // Converting to shape C drops them; a shape-C file that has them keeps them.
            Shape::Definition if from != Shape::Definition => {
                body.remove("name");
                body.remove("description");
            }
            Shape::SdkDict if !body.contains_key("name") => {
                // Shape B is told from C by its `name`.
                let mut out = Map::with_capacity(body.len() + 1, body.pos);
                out.insert("name", self.name().unwrap_or_default());
                for e in body.entries() {
                    out.push_entry(e.clone());
                }
                *body = out;
            }
            _ => {}
        }
        Value::Object(root)
    }

    /// Writes the flow as text (ending with a newline). Without the crate's `yaml` feature, YAML
    /// output is written as JSON (which YAML 1.2 readers accept), honouring `compact`.
    pub fn write(&self, options: &WriteOptions) -> String {
        let shape = options.shape.unwrap_or(self.format().shape);
        let encoding = options.encoding.unwrap_or(self.format().encoding);
        let mut doc = self.to_document(shape);
        if options.drop_extensions {
            let body = match (self.format().envelope, &mut doc) {
                (Some(env), Value::Object(root)) => {
                    root.get_mut(env.key()).and_then(Value::as_object_mut)
                }
                (None, Value::Object(root)) => Some(root),
                _ => None,
            };
            if let Some(body) = body {
                body.remove("metadata");
                body.remove("settings");
            }
        }
        if options.sort_keys
            && let Value::Object(m) = &mut doc
        {
            m.sort_keys(true);
        }
        let json = |doc: &Value| {
            let style = if options.compact {
                crate::json::Style::Compact
            } else {
                crate::json::Style::Pretty
            };
            crate::json::to_string(doc, style)
        };
        let mut out = match encoding {
            Encoding::Json => json(&doc),
            #[cfg(feature = "yaml")]
            Encoding::Yaml => crate::yaml::to_string(&doc),
            // Without the `yaml` feature: JSON, which is YAML 1.2 too.
            #[cfg(not(feature = "yaml"))]
            Encoding::Yaml => json(&doc),
        };
        if !out.ends_with('\n') {
            out.push('\n');
        }
        out
    }

    /// Writes the flow in the shape and encoding it was read in.
    pub fn to_text(&self) -> String {
        self.write(&WriteOptions::default())
    }
}

/// Sets `nodes`/`edges` keeping its place when present. A malformed (non-array) value that was
/// read is kept as written unless the list has been filled since.
fn put(map: &mut Map, key: &str, value: Value) {
    let keep_original = matches!(map.get(key), Some(v) if !matches!(v, Value::Array(_)))
        && matches!(&value, Value::Array(a) if a.is_empty());
    if !keep_original {
        map.insert(key, value);
    }
}

/// Shape C nodes carry `type: "flow-node"` and a `position` (start at x = 0, others 240·i in
/// file order after it).
fn to_definition_node(v: Value, index: usize, flow: &Flow) -> Value {
    let Value::Object(mut m) = v else { return v };
    if !m.contains_key("type") {
        m.insert("type", "flow-node");
    }
    if !m.contains_key("position") {
        let start = flow
            .nodes
            .iter()
            .position(|n| n.kind() == Some(NodeKind::Start));
        let slot = match start {
            Some(s) if s == index => 0,
            Some(s) if index < s => index + 1,
            _ => index,
        };
        let mut pos = Map::new();
        pos.insert("x", Value::Int(240 * slot as i64));
        pos.insert("y", Value::Int(0));
        m.push_entry(Entry {
            key: "position".into(),
            value: Value::Object(pos),
            key_pos: Pos::NONE,
            value_pos: Pos::NONE,
        });
    }
    Value::Object(m)
}
