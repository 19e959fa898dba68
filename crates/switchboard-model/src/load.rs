//! Loading a flow document: encoding detection, parsing, envelope and shape detection, and the
//! typed projection of every node and edge (flow-format §1).

use crate::decode::Loc;
use crate::error::LoadError;
use crate::flow::{
    Edge, Encoding, Envelope, Flow, Format, Node, Shape, decode_metadata, decode_settings,
};
use crate::issue::{Issue, IssueKind};
use crate::source::Source;
use crate::value::{Map, Pos, Value};

/// Limits and hints for loading.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// Documents larger than this are rejected as `invalid-document` (default 256 MiB).
    pub max_bytes: usize,
    /// Forces an encoding instead of detecting it.
    pub encoding: Option<Encoding>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            max_bytes: 256 << 20,
            encoding: None,
        }
    }
}

/// A loaded flow with the problems found while decoding it and the source it came from.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// The flow.
    pub flow: Flow,
    /// Decoding problems (wrong types, unknown keys, alias conflicts, …), in document order.
    pub issues: Vec<Issue>,
    /// The source text, for line and column numbers.
    pub source: Source,
}

/// Picks the encoding: `.json` → JSON, `.yaml`/`.yml` → YAML, otherwise JSON when the first
/// non-blank character is `{` or `[`, else YAML.
pub fn detect_encoding(path: Option<&str>, text: &str) -> Encoding {
    if let Some(p) = path {
        let lower = p.to_ascii_lowercase();
        if lower.ends_with(".json") {
            return Encoding::Json;
        }
        if lower.ends_with(".yaml") || lower.ends_with(".yml") {
            return Encoding::Yaml;
        }
    }
    match text
        .trim_start_matches('\u{feff}')
        .trim_start()
        .as_bytes()
        .first()
    {
        Some(b'{' | b'[') => Encoding::Json,
        _ => Encoding::Yaml,
    }
}

/// Loads a flow from raw bytes (which must be UTF-8). `path` only guides encoding detection.
pub fn load_bytes(
    bytes: &[u8],
    path: Option<&str>,
    options: &LoadOptions,
) -> Result<Loaded, LoadError> {
    if bytes.len() > options.max_bytes {
        return Err(too_large(bytes.len(), options.max_bytes));
    }
    let text = std::str::from_utf8(bytes).map_err(|e| LoadError::InvalidDocument {
        message: format!("invalid UTF-8 at byte {}", e.valid_up_to()),
        pos: Pos::new(e.valid_up_to()),
    })?;
    let encoding = options
        .encoding
        .unwrap_or_else(|| detect_encoding(path, text));
    load_str(text, encoding, options)
}

/// Loads a flow from text in the given encoding.
pub fn load_str(
    text: &str,
    encoding: Encoding,
    options: &LoadOptions,
) -> Result<Loaded, LoadError> {
    if text.len() > options.max_bytes {
        return Err(too_large(text.len(), options.max_bytes));
    }
    let (root, depth) = match encoding {
        Encoding::Json => crate::json::parse_measured(text)?,
        Encoding::Yaml => parse_yaml(text)?,
    };
    let (flow, issues) = from_value(root, encoding)?;
    // Depth below the flow's own wrappers (envelope, `definition`) is what every shape shares:
    // capping it keeps every conversion of a loaded flow within the parsers' limit.
    let wrappers = usize::from(flow.format().envelope.is_some())
        + usize::from(flow.format().shape == Shape::Compiled);
    if depth.saturating_sub(wrappers) > MAX_FLOW_DEPTH {
        return Err(LoadError::InvalidDocument {
            message: format!("nesting deeper than {MAX_FLOW_DEPTH} levels below the flow's root"),
            pos: Pos::new(0),
        });
    }
    Ok(Loaded {
        flow,
        issues,
        source: Source::new(text),
    })
}

/// The deepest nesting a flow may have below its envelope and `definition` wrappers: two levels
/// below the parsers' limit, so a loaded flow can be written in any shape and loaded again.
pub const MAX_FLOW_DEPTH: usize = crate::json::MAX_DEPTH - 2;

/// Parses a YAML document and measures its nesting depth.
#[cfg(feature = "yaml")]
fn parse_yaml(text: &str) -> Result<(Value, usize), LoadError> {
    let v = crate::yaml::parse(text)?;
    let d = depth_of(&v);
    Ok((v, d))
}

/// Without the `yaml` feature a YAML document cannot be read: an `invalid-document` error that
/// says why.
#[cfg(not(feature = "yaml"))]
fn parse_yaml(_text: &str) -> Result<(Value, usize), LoadError> {
    Err(LoadError::InvalidDocument {
        message: "the document is YAML, and this build reads JSON only (switchboard-model was \
                  built without its `yaml` feature)"
            .to_owned(),
        pos: Pos::new(0),
    })
}

#[cfg(feature = "yaml")]
fn depth_of(v: &Value) -> usize {
    match v {
        Value::Array(a) => 1 + a.iter().map(depth_of).max().unwrap_or(0),
        Value::Object(m) => 1 + m.iter().map(|(_, v)| depth_of(v)).max().unwrap_or(0),
        _ => 0,
    }
}

/// Loads a flow from text, detecting the encoding from its first character.
pub fn load(text: &str) -> Result<Loaded, LoadError> {
    load_str(text, detect_encoding(None, text), &LoadOptions::default())
}

fn too_large(len: usize, max: usize) -> LoadError {
    LoadError::InvalidDocument {
        message: format!("document is {len} bytes, more than the limit of {max}"),
        pos: Pos::new(0),
    }
}

/// Builds a flow from a parsed document (shape detection and decoding).
pub fn from_value(root: Value, encoding: Encoding) -> Result<(Flow, Vec<Issue>), LoadError> {
    let Value::Object(mut root) = root else {
        return Err(LoadError::InvalidDocument {
            message: format!(
                "the document root must be an object, found {}",
                root.type_name()
            ),
            pos: Pos::new(0),
        });
    };
    let envelope = if root.len() == 1 {
        match root.entries().first() {
            Some(e) if e.key == "flow" && matches!(e.value, Value::Object(_)) => {
                Some(Envelope::Flow)
            }
            Some(e) if e.key == "workflow" && matches!(e.value, Value::Object(_)) => {
                Some(Envelope::Workflow)
            }
            _ => None,
        }
    } else {
        None
    };
    let body_ptr = envelope.map_or_else(String::new, |e| format!("/{}", e.key()));
    let mut issues = Vec::new();

    let (nodes_v, nodes_pos, edges_v, edges_pos, shape, had_edges, had_nodes, container_ptr) = {
        let body = match envelope {
            Some(env) => root.object_entry(env.key()),
            None => &mut root,
        };
        let shape = if matches!(body.get("definition"), Some(Value::Object(_))) {
            Shape::Compiled
        } else if body.contains_key("nodes") {
            if body.contains_key("name") {
                Shape::SdkDict
            } else {
                Shape::Definition
            }
        } else {
            let what = match body.get("definition") {
                Some(Value::String(s)) => format!(
                    "`definition` is the string {s:?}, not an object (a workflow metadata file is not a flow)"
                ),
                Some(v) => format!(
                    "`definition` is {} {}, not an object",
                    crate::issue::article(v.type_name()),
                    v.type_name()
                ),
                None => "neither a `definition` object nor a `nodes` array was found".to_owned(),
            };
            return Err(LoadError::UnknownShape {
                message: what,
                pos: body.pos.or(Pos::new(0)),
            });
        };
        let (container, container_ptr) = if shape == Shape::Compiled {
            (
                body.object_entry("definition"),
                format!("{body_ptr}/definition"),
            )
        } else {
            (body, body_ptr.clone())
        };
        let had_edges = container.contains_key("edges");
        let had_nodes = container.contains_key("nodes");
        let (nodes_v, nodes_pos) = take_array(container, "nodes", &container_ptr, &mut issues);
        let (edges_v, edges_pos) = take_array(container, "edges", &container_ptr, &mut issues);
        (
            nodes_v,
            nodes_pos,
            edges_v,
            edges_pos,
            shape,
            had_edges,
            had_nodes,
            container_ptr,
        )
    };

    let body = match envelope {
        Some(env) => root
            .get(env.key())
            .and_then(Value::as_object)
            .unwrap_or(&root),
        None => &root,
    };
    check_top_level(body, &body_ptr, &mut issues);
    decode_metadata(body, &body_ptr, &mut issues);
    decode_settings(body, &body_ptr, &mut issues);

    let nodes_ptr = format!("{container_ptr}/nodes");
    let nodes_loc = Loc::root(&nodes_ptr);
    let nodes = nodes_v
        .into_iter()
        .enumerate()
        .map(|(i, v)| match v {
            Value::Object(m) => Node::decode(m, nodes_loc.at_index(i), Some(i), &mut issues),
            other => {
                issues.push(Issue {
                    kind: IssueKind::InvalidFieldType {
                        field: format!("nodes[{i}]"),
                        expected: "object",
                        found: other.type_name(),
                    },
                    pointer: format!("{nodes_ptr}/{i}"),
                    pos: nodes_pos,
                    node: Some(i),
                    edge: None,
                });
                Node::decode_non_object(other)
            }
        })
        .collect();
    let edges_ptr = format!("{container_ptr}/edges");
    let edges_loc = Loc::root(&edges_ptr);
    let edges = edges_v
        .into_iter()
        .enumerate()
        .map(|(i, v)| match v {
            Value::Object(m) => Edge::decode(m, edges_loc.at_index(i), Some(i), &mut issues),
            other => {
                issues.push(Issue {
                    kind: IssueKind::InvalidFieldType {
                        field: format!("edges[{i}]"),
                        expected: "object",
                        found: other.type_name(),
                    },
                    pointer: format!("{edges_ptr}/{i}"),
                    pos: edges_pos,
                    node: None,
                    edge: Some(i),
                });
                Edge::decode_non_object(other, i)
            }
        })
        .collect();
    let format = Format {
        shape,
        encoding,
        envelope,
    };
    Ok((
        Flow::from_parts(root, nodes, edges, format, had_edges, had_nodes),
        issues,
    ))
}

/// Moves the array at `key` out of `container`, leaving an empty array in its place (so the key
/// keeps its position for writing). A non-array is reported and read as empty (and kept).
fn take_array(
    container: &mut Map,
    key: &str,
    container_ptr: &str,
    issues: &mut Vec<Issue>,
) -> (Vec<Value>, Pos) {
    let entry_pos = container.entry(key).map(|e| e.value_pos.or(e.key_pos));
    match container.get_mut(key) {
        Some(Value::Array(a)) => (std::mem::take(a), entry_pos.unwrap_or(Pos::NONE)),
        None | Some(Value::Null) => (Vec::new(), Pos::NONE),
        Some(other) => {
            issues.push(Issue {
                kind: IssueKind::InvalidFieldType {
                    field: key.to_owned(),
                    expected: "array",
                    found: other.type_name(),
                },
                pointer: format!("{container_ptr}/{key}"),
                pos: entry_pos.unwrap_or(Pos::NONE),
                node: None,
                edge: None,
            });
            (Vec::new(), Pos::NONE)
        }
    }
}

fn check_top_level(body: &Map, body_ptr: &str, issues: &mut Vec<Issue>) {
    for (key, nullable) in [("name", false), ("description", true)] {
        match body.entry(key) {
            Some(e) if matches!(e.value, Value::String(_)) => {}
            Some(e) if nullable && e.value.is_null() => {}
            Some(e) => issues.push(Issue {
                kind: IssueKind::InvalidFieldType {
                    field: key.to_owned(),
                    expected: "string",
                    found: e.value.type_name(),
                },
                pointer: format!("{body_ptr}/{key}"),
                pos: e.value_pos,
                node: None,
                edge: None,
            }),
            None => {}
        }
    }
}
