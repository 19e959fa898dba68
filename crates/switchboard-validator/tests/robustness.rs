//! Robustness: 10,000 seeded mutations of the valid fixtures go through the whole pipeline, and
//! nothing panics.
//!
//! Each iteration picks a fixture, applies 1–3 mutations and runs `check_file`, `render_human`
//! and `render_json`; when the mutant still loads it also writes it with `to_text()` and in a
//! random shape/encoding, and reads both back. Mutations work on the document value (delete or
//! duplicate a node, retarget an edge, rename a label, delete an edge's source, replace any value
//! with one of another JSON type, 1 MB strings as message/label/id/key/value, nesting 200 levels
//! deep and up to the parser's 256-level limit, unknown keys, another or an unknown node type,
//! `{{`/`{%`/`${ENV:` fragments, `config` as a string, envelope and shape changes) and on the
//! bytes (duplicate keys, nesting 10,000 levels deep, invalid UTF-8, truncation).
//!
//! Invariants checked on every case: no panic; diagnostics sorted by line/column; every rule is
//! in [`RULES`]; line and column present whenever the source is UTF-8 and the pointer resolves;
//! no message longer than 2,000 characters; a document that does not load is exactly one
//! `invalid-document`/`unknown-shape` diagnostic (and one that loads has neither); duplicate
//! keys, invalid UTF-8 and 10,000-level nesting are `invalid-document`; a loaded flow reads back
//! equal from `to_text()` (flow-format §1), and its output in another shape and encoding loads,
//! in that shape, with the same node ids, typed configs and edges.
//!
//! Every case is derived from the base seed and its iteration number alone. Environment:
//! `SWITCHBOARD_ROBUSTNESS_ITERATION=<n>` runs one case, `SWITCHBOARD_ROBUSTNESS_SEED=<seed>`
//! explores another seed, `SWITCHBOARD_ROBUSTNESS_MAX_FAILURES=<n>` collects more failures
//! (default 5; the report groups them by kind), `SWITCHBOARD_ROBUSTNESS_TRACE=1` (with
//! `-- --nocapture`) prints every case before it runs (for crashes that abort the process) and
//! its time, `SWITCHBOARD_ROBUSTNESS_STAGES=1` the time of each stage.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::Once;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use switchboard_model::json::Style;
use switchboard_model::{
    Edge, Encoding, Flow, LoadOptions, Map, Node, NodeKind, Shape, Value, WriteOptions,
    detect_encoding, json, load_bytes, load_str, yaml,
};
use switchboard_validator::{FileReport, Options, RULES, check_file, render_human, render_json};

/// The base seed of the run.
const SEED: u64 = 0x5157_C4B0_A2D0_2024;
/// Number of mutated documents.
const ITERATIONS: u64 = 10_000;
/// Every this many iterations, one mutation is a 1 MB string (100 times in all).
const HUGE_EVERY: u64 = 100;
/// The size of a "1 MB string", in bytes.
const HUGE_LEN: usize = 1 << 20;
/// Nesting that must load.
const NESTED: usize = 200;
/// Nesting that must be refused as `invalid-document` (without overflowing the stack).
const DEEP: usize = 10_000;
/// The longest diagnostic message allowed (a 1 MB string must be shortened in messages).
const MAX_MESSAGE_CHARS: usize = 2_000;
/// Stop after this many failing cases (they are all reported).
const MAX_FAILURES: usize = 5;
/// A string the serialised document carries where the 10,000-level nesting is spliced in.
const DEEP_MARKER: &str = "SWITCHBOARD_DEEP_NESTING_MARKER";

// ---------------------------------------------------------------------------------------------
// A small deterministic PRNG (splitmix64).
// ---------------------------------------------------------------------------------------------

struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        assert!(n > 0, "Rng::below(0)");
        (self.next_u64() % n as u64) as usize
    }

    /// `true` with probability `num / den`.
    fn chance(&mut self, num: u64, den: u64) -> bool {
        self.next_u64() % den < num
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// The seed of one iteration: a function of the base seed and the iteration number only.
fn case_seed(base: u64, iteration: u64) -> u64 {
    let mut r = Rng::new(base ^ iteration.wrapping_mul(0xD1B5_4A32_D192_ED03));
    r.next_u64()
}

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

struct Fixture {
    name: String,
    encoding: Encoding,
    doc: Value,
}

fn fixtures() -> Vec<Fixture> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/flows/valid");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("fixtures/flows/valid exists") {
        let path = entry.expect("readable directory entry").path();
        let name = path
            .file_name()
            .expect("a file name")
            .to_string_lossy()
            .into_owned();
        if !(name.ends_with(".json") || name.ends_with(".yaml") || name.ends_with(".yml"))
            || name.ends_with(".registries.json")
        {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("valid fixtures are UTF-8");
        let encoding = detect_encoding(Some(&name), &text);
        let doc = match encoding {
            Encoding::Json => json::parse(&text),
            Encoding::Yaml => yaml::parse(&text),
        }
        .unwrap_or_else(|e| panic!("valid fixture {name} does not parse: {e}"));
        out.push(Fixture {
            name,
            encoding,
            doc,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    assert!(
        out.len() >= 5,
        "expected the valid fixtures in {}",
        dir.display()
    );
    out
}

// ---------------------------------------------------------------------------------------------
// Paths into a document value
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
enum Seg {
    Key(String),
    Index(usize),
}

fn pointer_of(path: &[Seg]) -> String {
    let mut s = String::new();
    for seg in path {
        s.push('/');
        match seg {
            Seg::Key(k) => s.push_str(&short(k)),
            Seg::Index(i) => {
                let _ = write!(s, "{i}");
            }
        }
    }
    s
}

fn get_path_mut<'a>(v: &'a mut Value, path: &[Seg]) -> Option<&'a mut Value> {
    let mut cur = v;
    for seg in path {
        cur = match (cur, seg) {
            (Value::Object(m), Seg::Key(k)) => m.get_mut(k)?,
            (Value::Array(a), Seg::Index(i)) => a.get_mut(*i)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// Every path below the root (depth-first, document order).
fn all_paths(v: &Value) -> Vec<Vec<Seg>> {
    fn walk(v: &Value, prefix: &mut Vec<Seg>, out: &mut Vec<Vec<Seg>>) {
        match v {
            Value::Object(m) => {
                for (k, item) in m.iter() {
                    prefix.push(Seg::Key(k.to_owned()));
                    out.push(prefix.clone());
                    walk(item, prefix, out);
                    prefix.pop();
                }
            }
            Value::Array(a) => {
                for (i, item) in a.iter().enumerate() {
                    prefix.push(Seg::Index(i));
                    out.push(prefix.clone());
                    walk(item, prefix, out);
                    prefix.pop();
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(v, &mut Vec::new(), &mut out);
    out
}

fn paths_where(v: &Value, keep: impl Fn(&Value) -> bool) -> Vec<Vec<Seg>> {
    let mut paths = all_paths(v);
    paths.retain(|p| {
        let mut cur = v;
        for seg in p {
            cur = match (cur, seg) {
                (Value::Object(m), Seg::Key(k)) => m.get(k).unwrap_or(&Value::Null),
                (Value::Array(a), Seg::Index(i)) => a.get(*i).unwrap_or(&Value::Null),
                _ => &Value::Null,
            };
        }
        keep(cur)
    });
    paths
}

/// The object holding `name`, `nodes`, … (inside a `flow`/`workflow` envelope, if any).
fn body_mut(doc: &mut Value) -> Option<&mut Map> {
    let root = doc.as_object_mut()?;
    let envelope = match root.keys().next() {
        Some(k @ ("flow" | "workflow")) if root.len() == 1 => Some(k.to_owned()),
        _ => None,
    };
    match envelope {
        Some(k) if matches!(root.get(&k), Some(Value::Object(_))) => {
            root.get_mut(&k)?.as_object_mut()
        }
        _ => Some(root),
    }
}

/// The object holding `nodes` and `edges` (`definition` in shape A).
fn container_mut(doc: &mut Value) -> Option<&mut Map> {
    let body = body_mut(doc)?;
    if matches!(body.get("definition"), Some(Value::Object(_))) {
        return body.get_mut("definition")?.as_object_mut();
    }
    Some(body)
}

fn list_mut<'a>(doc: &'a mut Value, key: &str) -> Option<&'a mut Vec<Value>> {
    match container_mut(doc)?.get_mut(key)? {
        Value::Array(a) => Some(a),
        _ => None,
    }
}

fn list_len(doc: &mut Value, key: &str) -> usize {
    list_mut(doc, key).map_or(0, |a| a.len())
}

/// The object at `key` inside `map`, when it is one.
fn obj_at<'a>(map: &'a mut Map, key: &str) -> Option<&'a mut Map> {
    map.get_mut(key)?.as_object_mut()
}

/// Node `i`'s `data` object, when there is one.
fn node_data_mut(doc: &mut Value, i: usize) -> Option<&mut Map> {
    obj_at(list_mut(doc, "nodes")?.get_mut(i)?.as_object_mut()?, "data")
}

fn node_ids(doc: &mut Value) -> Vec<String> {
    list_mut(doc, "nodes")
        .map(|nodes| {
            nodes
                .iter()
                .filter_map(|n| n.as_object()?.get("id")?.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn condition_labels(doc: &mut Value) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(nodes) = list_mut(doc, "nodes") {
        for n in nodes.iter() {
            if let Some(Value::Array(conds)) = n.pointer("/data/config/conditions") {
                for c in conds {
                    if let Some(l) = c.as_object().and_then(|o| o.get("label")?.as_str()) {
                        out.push(l.to_owned());
                    }
                }
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Random values
// ---------------------------------------------------------------------------------------------

/// Strings that are hard for YAML/JSON writers, templates and the rules.
const TRICKY_STRINGS: &[&str] = &[
    "",
    " ",
    "next",
    "error",
    "start",
    "yes",
    "no",
    "on",
    "off",
    "null",
    "~",
    "true",
    "1",
    "1.0",
    "0x1F",
    "1e3",
    ".inf",
    ".nan",
    "-",
    "- item",
    "? key",
    "key: value",
    "a #comment",
    "#comment",
    "<<",
    "&anchor",
    "*alias",
    "!tag",
    "!!binary",
    "%YAML 1.2",
    "---",
    "...",
    "'single'",
    "\"double\"",
    "back\\slash",
    "tab\there",
    "line\nbreak",
    "crlf\r\nbreak",
    "trailing ",
    " leading",
    "nul\u{0}char",
    "bell\u{7}",
    "del\u{7f}",
    "nel\u{85}",
    "ls\u{2028}ps\u{2029}",
    "\u{feff}bom",
    "héllo wörld",
    "日本語のテキスト",
    "emoji 😀👍🏽",
    "rtl \u{202e}txet",
    "{{",
    "}}",
    "{%",
    "{{ vars.name }}",
    "{% if x %}a{% endif %}",
    "${ENV:",
    "${ENV:API_KEY}",
    "$ai",
    "https://example.com/a?b=c#d",
    "{\"a\": 1}",
    "[1, 2]",
    "{not json",
    "a.b.c",
    "0",
    "-1",
    "9223372036854775808",
];

/// Keys to add as unknown keys (some are known somewhere else, or special in YAML).
const TRICKY_KEYS: &[&str] = &[
    "colour",
    "",
    " ",
    "$ai",
    "<<",
    "? x",
    "a: b",
    "-",
    "null",
    "~",
    "true",
    "1",
    "0.5",
    "#",
    "key\nwith newline",
    "ключ",
    "definition",
    "nodes",
    "edges",
    "flow",
    "workflow",
    "name",
    "metadata",
    "settings",
    "config",
    "node_type",
    "id",
    "label",
    "source",
    "target",
    "message",
    "ai_field_config",
    "conditions",
    "buttons",
    "a/b",
    "a~b",
    // Longer than 128 bytes: YAML writers switch to explicit `? key` entries.
    "a_key_longer_than_the_128_bytes_after_which_yaml_writers_switch_to_explicit_keys_\
     a_key_longer_than_the_128_bytes_after_which_yaml_writers_switch_to_explicit_keys",
];

fn random_string(rng: &mut Rng) -> String {
    if rng.chance(2, 3) {
        return (*rng.pick(TRICKY_STRINGS)).to_owned();
    }
    const POOL: &[char] = &[
        'a', 'Z', '0', '9', ' ', '_', '-', '.', ':', '#', '{', '}', '%', '$', '"', '\'', '\\',
        '\n', '\t', 'é', 'ß', '€', '😀', '\u{0}', '\u{1b}', '\u{85}', '\u{2028}', '\u{feff}', '|',
        '>', '&', '*', '!', '@', '`', ',', '[', ']',
    ];
    let len = rng.below(24);
    (0..len).map(|_| *rng.pick(POOL)).collect()
}

fn random_key(rng: &mut Rng) -> String {
    if rng.chance(3, 4) {
        (*rng.pick(TRICKY_KEYS)).to_owned()
    } else {
        random_string(rng)
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Null,
    Bool,
    Int,
    Float,
    String,
    Array,
    Object,
}

const KINDS: [Kind; 7] = [
    Kind::Null,
    Kind::Bool,
    Kind::Int,
    Kind::Float,
    Kind::String,
    Kind::Array,
    Kind::Object,
];

fn kind_of(v: &Value) -> Kind {
    match v {
        Value::Null => Kind::Null,
        Value::Bool(_) => Kind::Bool,
        Value::Int(_) => Kind::Int,
        Value::Float(_) => Kind::Float,
        Value::String(_) => Kind::String,
        Value::Array(_) => Kind::Array,
        Value::Object(_) => Kind::Object,
    }
}

fn random_scalar(rng: &mut Rng) -> Value {
    let kind = *rng.pick(&KINDS[..5]);
    random_value_of(rng, kind, 0)
}

fn random_value_of(rng: &mut Rng, kind: Kind, depth: usize) -> Value {
    const INTS: &[i64] = &[
        0,
        1,
        -1,
        3,
        9,
        10,
        300,
        604_800,
        604_801,
        i64::MAX,
        i64::MIN,
        1 << 53,
    ];
    const FLOATS: &[f64] = &[
        0.0,
        -0.0,
        0.3,
        1.0,
        2.5,
        -1.5,
        1e300,
        -1e-300,
        5e-324,
        1e21,
        123_456.789,
    ];
    match kind {
        Kind::Null => Value::Null,
        Kind::Bool => Value::Bool(rng.chance(1, 2)),
        Kind::Int => Value::Int(*rng.pick(INTS)),
        Kind::Float => Value::Float(*rng.pick(FLOATS)),
        Kind::String => Value::from(random_string(rng)),
        Kind::Array => {
            let n = rng.below(4);
            Value::Array(
                (0..n)
                    .map(|_| {
                        if depth < 2 && rng.chance(1, 4) {
                            let k = *rng.pick(&KINDS);
                            random_value_of(rng, k, depth + 1)
                        } else {
                            random_scalar(rng)
                        }
                    })
                    .collect(),
            )
        }
        Kind::Object => {
            let n = rng.below(4);
            let mut m = Map::new();
            for _ in 0..n {
                let k = random_key(rng);
                let v = if depth < 2 && rng.chance(1, 4) {
                    let kind = *rng.pick(&KINDS);
                    random_value_of(rng, kind, depth + 1)
                } else {
                    random_scalar(rng)
                };
                m.insert(k, v);
            }
            Value::Object(m)
        }
    }
}

/// A value of another JSON type than `old`.
fn other_type_value(rng: &mut Rng, old: &Value) -> Value {
    let old_kind = kind_of(old);
    let others: Vec<Kind> = KINDS.iter().copied().filter(|k| *k != old_kind).collect();
    let kind = *rng.pick(&others);
    random_value_of(rng, kind, 0)
}

/// A 1 MB string with one of several contents.
fn huge_string(rng: &mut Rng) -> (String, &'static str) {
    let (unit, what): (&str, &str) = *rng.pick(&[
        ("a", "ascii"),
        ("Hi {{ vars.name }}, ", "templates"),
        ("é€😀\"\\\n", "unicode+escapes"),
        ("${ENV:SECRET} ", "secrets"),
        ("{% if x %}", "unclosed blocks"),
    ]);
    let mut s = unit.repeat(HUGE_LEN / unit.len() + 1);
    let mut cut = HUGE_LEN.min(s.len());
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    s.truncate(cut);
    (s, what)
}

/// `s` for a description: at most 40 characters, with its length when cut.
fn short(s: &str) -> String {
    let mut it = s.chars();
    let head: String = it.by_ref().take(40).collect();
    let head = head.escape_debug().to_string();
    if it.next().is_some() {
        format!("{head}…[{} bytes]", s.len())
    } else {
        head
    }
}

/// Nests `inner` `levels` deep in arrays or objects (built iteratively).
fn nested(levels: usize, objects: bool, inner: Value) -> Value {
    let mut v = inner;
    for _ in 0..levels {
        v = if objects {
            let mut m = Map::new();
            m.insert("a", v);
            Value::Object(m)
        } else {
            Value::Array(vec![v])
        };
    }
    v
}

// ---------------------------------------------------------------------------------------------
// Mutations
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq)]
enum Mutation {
    DeleteNode,
    DuplicateNode,
    RetargetEdge,
    RenameLabel,
    DeleteEdgeSource,
    ReplaceValue,
    HugeString,
    Nest200,
    NestToLimit,
    Deep10k,
    UnknownKey,
    SwapNodeType,
    TemplateFragment,
    ConfigString,
    Reshape,
    DuplicateKeyBytes,
    InvalidUtf8,
    Truncate,
    SwitchEncoding,
}

/// The mutations drawn at random, with weights (`HugeString` is forced every `HUGE_EVERY`).
const WEIGHTED: &[(Mutation, usize)] = &[
    (Mutation::DeleteNode, 6),
    (Mutation::DuplicateNode, 5),
    (Mutation::RetargetEdge, 6),
    (Mutation::RenameLabel, 6),
    (Mutation::DeleteEdgeSource, 4),
    (Mutation::ReplaceValue, 14),
    (Mutation::Nest200, 2),
    (Mutation::NestToLimit, 2),
    (Mutation::Deep10k, 3),
    (Mutation::UnknownKey, 6),
    (Mutation::SwapNodeType, 5),
    (Mutation::TemplateFragment, 6),
    (Mutation::ConfigString, 3),
    (Mutation::Reshape, 4),
    (Mutation::DuplicateKeyBytes, 3),
    (Mutation::InvalidUtf8, 3),
    (Mutation::Truncate, 3),
    (Mutation::SwitchEncoding, 3),
];

fn draw_mutation(rng: &mut Rng) -> Mutation {
    let total: usize = WEIGHTED.iter().map(|(_, w)| w).sum();
    let mut x = rng.below(total);
    for (m, w) in WEIGHTED {
        if x < *w {
            return *m;
        }
        x -= w;
    }
    unreachable!("weights cover the range")
}

/// One mutated document, and what is expected of it.
struct Case {
    fixture: String,
    path: String,
    /// What was done, in order (short descriptions).
    log: Vec<String>,
    bytes: Vec<u8>,
    /// The report must contain `invalid-document` (with the reason).
    expect_invalid_document: Option<&'static str>,
    /// How the loaded flow is written in another format.
    write: WriteOptions,
}

/// Builds the case of one iteration. `log` receives each step as it is done, so a panic while
/// building is reported with what led to it.
fn build_case(iteration: u64, seed: u64, fixtures: &[Fixture], log: &mut Vec<String>) -> Case {
    let mut rng = Rng::new(seed);
    let fixture = rng.pick(fixtures);
    log.push(format!("fixture {}", fixture.name));
    let mut doc = fixture.doc.clone();
    let count = 1 + rng.below(3);
    let mut muts: Vec<Mutation> = (0..count).map(|_| draw_mutation(&mut rng)).collect();
    if iteration.is_multiple_of(HUGE_EVERY) {
        // The last mutation, so no other value-level one removes it.
        if let Some(last) = muts.last_mut() {
            *last = Mutation::HugeString;
        }
    }
    let mut encoding = fixture.encoding;
    let mut deep = false;
    let mut byte_level = Vec::new();
    let mut expect_invalid_document = None;

    for m in &muts {
        match m {
            Mutation::Deep10k => deep = true,
            Mutation::DuplicateKeyBytes | Mutation::InvalidUtf8 | Mutation::Truncate => {
                byte_level.push(*m);
            }
            Mutation::SwitchEncoding => {
                encoding = match encoding {
                    Encoding::Json => Encoding::Yaml,
                    Encoding::Yaml => Encoding::Json,
                };
                log.push(format!("write as {encoding:?}"));
            }
            value_level => {
                let what = mutate_value(&mut rng, &mut doc, *value_level);
                log.push(format!("{value_level:?}: {what}"));
            }
        }
    }
    // Parsing 1 MB of YAML takes ~0.1–0.3 s in a debug build and the pipeline parses each
    // document four times: half of the YAML 1 MB cases are written as JSON instead (about 15 of
    // the 100 stay YAML), which keeps the test well under a minute.
    if muts.contains(&Mutation::HugeString) && encoding == Encoding::Yaml && rng.chance(1, 2) {
        encoding = Encoding::Json;
        log.push("write as Json (1 MB case)".to_owned());
    }
    let deep_objects = rng.chance(1, 2);
    if deep {
        let paths = all_paths(&doc);
        let what = if paths.is_empty() || rng.chance(1, 4) {
            match doc.as_object_mut() {
                Some(root) => {
                    root.insert("deep", DEEP_MARKER);
                    "/deep".to_owned()
                }
                None => {
                    doc = Value::from(DEEP_MARKER);
                    String::new()
                }
            }
        } else {
            let path = rng.pick(&paths).clone();
            if let Some(slot) = get_path_mut(&mut doc, &path) {
                *slot = Value::from(DEEP_MARKER);
            }
            pointer_of(&path)
        };
        let kind = if deep_objects { "objects" } else { "arrays" };
        log.push(format!("Deep10k: {DEEP} nested {kind} at {what}"));
    }

    // Serialise.
    let style = if rng.chance(1, 3) {
        Style::Compact
    } else {
        Style::Pretty
    };
    let text = match encoding {
        Encoding::Json => json::to_string(&doc, style),
        Encoding::Yaml => yaml::to_string(&doc),
    };
    drop(doc);
    let stem = fixture
        .name
        .rsplit_once('.')
        .map_or(fixture.name.as_str(), |(s, _)| s);
    let path = match (rng.below(10), encoding) {
        (0, _) => format!("{stem}.txt"),
        (1, _) => stem.to_owned(),
        (_, Encoding::Json) => format!("{stem}.json"),
        (_, Encoding::Yaml) => format!("{stem}.yaml"),
    };
    let mut bytes = text.into_bytes();

    // Byte-level mutations, in a fixed order: duplicate keys (needs the clean text), the deep
    // nesting, invalid UTF-8, truncation.
    byte_level.sort_by_key(|m| match m {
        Mutation::DuplicateKeyBytes => 0,
        Mutation::InvalidUtf8 => 2,
        _ => 3,
    });
    let truncated = byte_level.contains(&Mutation::Truncate);
    let mut deep_done = false;
    for m in byte_level {
        if deep && !deep_done && m != Mutation::DuplicateKeyBytes {
            log.push(splice_deep(&mut bytes, encoding, deep_objects));
            deep_done = true;
        }
        match m {
            Mutation::DuplicateKeyBytes => {
                let (what, sure) = duplicate_key(&mut rng, &mut bytes, encoding);
                log.push(format!("DuplicateKeyBytes: {what}"));
                if sure && !truncated {
                    expect_invalid_document = Some("a duplicate key was inserted");
                }
            }
            Mutation::InvalidUtf8 => {
                const BAD: &[&[u8]] = &[
                    b"\xff",
                    b"\xfe\xff",
                    b"\xc0\x80",
                    b"\x80",
                    b"\xe2\x82",
                    b"\xed\xa0\x80",
                    b"\xf4\x90\x80\x80",
                    b"\xf8\x88\x80\x80\x80",
                ];
                let bad = *rng.pick(BAD);
                let at = rng.below(bytes.len() + 1);
                bytes.splice(at..at, bad.iter().copied());
                log.push(format!("InvalidUtf8: {bad:?} at byte {at}"));
                if !truncated {
                    expect_invalid_document = Some("the bytes are not UTF-8");
                }
            }
            Mutation::Truncate => {
                let at = rng.below(bytes.len() + 1);
                bytes.truncate(at);
                log.push(format!("Truncate at byte {at}"));
            }
            _ => unreachable!("only byte-level mutations are deferred"),
        }
    }
    if deep && !deep_done {
        log.push(splice_deep(&mut bytes, encoding, deep_objects));
    }
    if deep && !truncated {
        expect_invalid_document = Some("nesting 10,000 levels deep");
    }

    let shape = *rng.pick(&[Shape::Compiled, Shape::SdkDict, Shape::Definition]);
    let mut out_encoding = *rng.pick(&[Encoding::Json, Encoding::Yaml]);
    if muts.contains(&Mutation::HugeString) {
        // The other-format copy of a 1 MB case is read back as JSON (see above).
        out_encoding = Encoding::Json;
    }
    let write = WriteOptions {
        shape: Some(shape),
        encoding: Some(out_encoding),
        sort_keys: rng.chance(1, 4),
        compact: rng.chance(1, 4),
        ..WriteOptions::default()
    };
    Case {
        fixture: fixture.name.clone(),
        path,
        log: std::mem::take(log),
        bytes,
        expect_invalid_document,
        write,
    }
}

/// Replaces the marker with 10,000 nested arrays or objects (flow style in YAML).
fn splice_deep(bytes: &mut Vec<u8>, encoding: Encoding, objects: bool) -> String {
    let (open, close): (&str, &str) = match (objects, encoding) {
        (false, _) => ("[", "]"),
        (true, Encoding::Json) => ("{\"a\": ", "}"),
        (true, Encoding::Yaml) => ("{a: ", "}"),
    };
    let deep = format!("{}1{}", open.repeat(DEEP), close.repeat(DEEP));
    let quoted = format!("\"{DEEP_MARKER}\"");
    for needle in [quoted.as_str(), DEEP_MARKER] {
        if let Some(at) = find(bytes, needle.as_bytes()) {
            bytes.splice(at..at + needle.len(), deep.bytes());
            return format!("Deep10k: spliced at byte {at}");
        }
    }
    panic!("test bug: the deep-nesting marker is missing from the serialised document");
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Writes a second copy of an existing key just before it, in the same object. Returns a
/// description and whether the result certainly has a duplicate key.
fn duplicate_key(rng: &mut Rng, bytes: &mut Vec<u8>, encoding: Encoding) -> (String, bool) {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return ("not UTF-8, skipped".to_owned(), false);
    };
    let parsed = match encoding {
        Encoding::Json => json::parse(text),
        Encoding::Yaml => yaml::parse(text),
    };
    let Ok(doc) = parsed else {
        return ("does not parse, skipped".to_owned(), false);
    };
    // (key, byte offset of the key)
    let mut keys: Vec<(String, usize)> = Vec::new();
    fn walk(v: &Value, out: &mut Vec<(String, usize)>) {
        match v {
            Value::Object(m) => {
                for e in m.entries() {
                    if let Some(off) = e.key_pos.offset() {
                        out.push((e.key.to_string(), off));
                    }
                    walk(&e.value, out);
                }
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    walk(&doc, &mut keys);
    if keys.is_empty() {
        return ("no keys, skipped".to_owned(), false);
    }
    let (key, at) = rng.pick(&keys).clone();
    let mut quoted = String::new();
    json::write_string(&key, &mut quoted);
    let insert = match encoding {
        Encoding::Json => format!("{quoted}: null, "),
        Encoding::Yaml => {
            // Same column on a new line, so the copy lands in the same block mapping.
            let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
            let column = text[line_start..at].chars().count();
            format!("{quoted}: null\n{}", " ".repeat(column))
        }
    };
    bytes.splice(at..at, insert.bytes());
    (
        format!("`{}` at byte {at}", short(&key)),
        encoding == Encoding::Json,
    )
}

/// Applies one value-level mutation and describes it.
fn mutate_value(rng: &mut Rng, doc: &mut Value, m: Mutation) -> String {
    match m {
        Mutation::DeleteNode => {
            let n = list_len(doc, "nodes");
            if n == 0 {
                return "no nodes".to_owned();
            }
            let i = rng.below(n);
            if let Some(nodes) = list_mut(doc, "nodes") {
                nodes.remove(i);
            }
            format!("node {i}")
        }
        Mutation::DuplicateNode => {
            let n = list_len(doc, "nodes");
            if n == 0 {
                return "no nodes".to_owned();
            }
            let i = rng.below(n);
            let to = rng.below(n + 1);
            if let Some(nodes) = list_mut(doc, "nodes") {
                let copy = nodes[i].clone();
                nodes.insert(to, copy);
            }
            format!("node {i} copied to {to}")
        }
        Mutation::RetargetEdge => {
            let n = list_len(doc, "edges");
            if n == 0 {
                return "no edges".to_owned();
            }
            let i = rng.below(n);
            let ids = node_ids(doc);
            let target = if !ids.is_empty() && rng.chance(1, 2) {
                rng.pick(&ids).clone()
            } else {
                (*rng.pick(&["ghost", "", "Start", "start ", "node-that-does-not-exist"]))
                    .to_owned()
            };
            let field = if rng.chance(4, 5) { "target" } else { "source" };
            if let Some(e) = list_mut(doc, "edges").and_then(|a| a[i].as_object_mut()) {
                e.insert(field, target.as_str());
            }
            format!("edge {i} {field} → `{}`", short(&target))
        }
        Mutation::RenameLabel => {
            let n = list_len(doc, "edges");
            if n == 0 {
                return "no edges".to_owned();
            }
            let i = rng.below(n);
            let labels = condition_labels(doc);
            let label = match rng.below(7) {
                0 => String::new(),
                1 => "error".to_owned(),
                2 if !labels.is_empty() => rng.pick(&labels).clone(),
                3 => "x".repeat(300),
                4 => "next".to_owned(),
                5 => "response".to_owned(),
                _ => random_string(rng),
            };
            if let Some(e) = list_mut(doc, "edges").and_then(|a| a[i].as_object_mut()) {
                e.insert("label", label.as_str());
            }
            format!("edge {i} label → `{}`", short(&label))
        }
        Mutation::DeleteEdgeSource => {
            let n = list_len(doc, "edges");
            if n == 0 {
                return "no edges".to_owned();
            }
            let i = rng.below(n);
            if let Some(e) = list_mut(doc, "edges").and_then(|a| a[i].as_object_mut()) {
                e.remove("source");
            }
            format!("edge {i}")
        }
        Mutation::ReplaceValue => {
            // Half of the time a structural place (a node, its data or config, an edge, the
            // lists, a top-level key), else any value of the document.
            let paths = all_paths(doc);
            if paths.is_empty() {
                *doc = other_type_value(rng, doc);
                return format!("root → {:?}", kind_of(doc));
            }
            const HOT_TAILS: &[&str] = &[
                "/data",
                "/config",
                "/node_type",
                "/label",
                "/source",
                "/target",
                "/id",
                "/nodes",
                "/edges",
            ];
            let hot: Vec<&Vec<Seg>> = paths
                .iter()
                .filter(|p| {
                    let ptr = pointer_of(p);
                    p.len() <= 2
                        || HOT_TAILS.iter().any(|t| ptr.ends_with(t))
                        || matches!(p.last(), Some(Seg::Index(_)))
                        || (ptr.contains("/config/") && p.len() <= 6)
                })
                .collect();
            let path = if !hot.is_empty() && rng.chance(1, 2) {
                (*rng.pick(&hot)).clone()
            } else {
                rng.pick(&paths).clone()
            };
            let Some(slot) = get_path_mut(doc, &path) else {
                return "path vanished".to_owned();
            };
            let new = other_type_value(rng, slot);
            let what = format!(
                "{} {:?} → {:?}",
                pointer_of(&path),
                kind_of(slot),
                kind_of(&new)
            );
            *slot = new;
            what
        }
        Mutation::HugeString => huge_mutation(rng, doc),
        Mutation::Nest200 | Mutation::NestToLimit => {
            let paths = all_paths(doc);
            let objects = rng.chance(1, 2);
            let (path, depth_here) = if paths.is_empty() {
                (Vec::new(), 0)
            } else {
                let p = rng.pick(&paths).clone();
                let d = p.len();
                (p, d)
            };
            // A slot `depth_here` segments below the root is enclosed by `depth_here`
            // containers (the root included); the parsers accept `MAX_DEPTH` in all.
            let levels = if m == Mutation::Nest200 {
                NESTED
            } else {
                // Exactly at the parser limit: the mutant still loads.
                json::MAX_DEPTH.saturating_sub(depth_here)
            };
            let inner = random_scalar(rng);
            let value = nested(levels, objects, inner);
            let kind = if objects { "objects" } else { "arrays" };
            match get_path_mut(doc, &path) {
                Some(slot) if !path.is_empty() => *slot = value,
                _ => *doc = value,
            }
            format!("{levels} nested {kind} at {}", pointer_of(&path))
        }
        Mutation::UnknownKey => {
            let objects = paths_where(doc, |v| matches!(v, Value::Object(_)));
            let key = random_key(rng);
            let kind = *rng.pick(&KINDS);
            let value = random_value_of(rng, kind, 0);
            // The places that matter (top level, nodes, data, config, edges, tool objects), not
            // the inside of deep values.
            let mut targets: Vec<Vec<Seg>> = vec![Vec::new()];
            targets.extend(objects.into_iter().filter(|p| p.len() <= 6));
            let path = rng.pick(&targets).clone();
            let what = format!(
                "`{}` = {:?} at {}",
                short(&key),
                kind_of(&value),
                pointer_of(&path)
            );
            match get_path_mut(doc, &path).and_then(Value::as_object_mut) {
                Some(m) => {
                    m.insert(key, value);
                    what
                }
                None => "no object".to_owned(),
            }
        }
        Mutation::SwapNodeType => {
            let n = list_len(doc, "nodes");
            if n == 0 {
                return "no nodes".to_owned();
            }
            let i = rng.below(n);
            let new = if rng.chance(3, 4) {
                (*rng.pick(NodeKind::ALL_NAMES)).to_owned()
            } else {
                (*rng.pick(&[
                    "pipedream",
                    "",
                    "Start",
                    "send text",
                    "SEND_TEXT",
                    "decide ",
                ]))
                .to_owned()
            };
            match node_data_mut(doc, i) {
                Some(data) => {
                    data.insert("node_type", new.as_str());
                    format!("node {i} → `{new}`")
                }
                None => format!("node {i} has no data object"),
            }
        }
        Mutation::TemplateFragment => {
            const FRAGMENTS: &[&str] = &[
                "{{",
                "}}",
                "{%",
                "%}",
                "{#",
                "{{ x }}",
                "{{ vars.",
                "{{ a | nosuchfilter }}",
                "{% if x %}",
                "{% endif %}",
                "{% for x in y %}",
                "{{ context.phone_number }}",
                "{{ 1/0 }}",
                "${ENV:",
                "${ENV:SECRET}",
                "${ENV:bad-name}",
                "${ENV:}",
                "{{ '${ENV:X}' }}",
            ];
            let strings = paths_where(doc, |v| matches!(v, Value::String(_)));
            let frag = *rng.pick(FRAGMENTS);
            if strings.is_empty() {
                return "no strings".to_owned();
            }
            let path = rng.pick(&strings).clone();
            let whole = rng.chance(1, 4);
            if let Some(Value::String(s)) = get_path_mut(doc, &path) {
                if whole {
                    *s = frag.into();
                } else {
                    let mut at = rng.below(s.len() + 1);
                    while !s.is_char_boundary(at) {
                        at -= 1;
                    }
                    s.insert_str(at, frag);
                }
            }
            format!("`{frag}` into {}", pointer_of(&path))
        }
        Mutation::ConfigString => {
            let n = list_len(doc, "nodes");
            if n == 0 {
                return "no nodes".to_owned();
            }
            let i = rng.below(n);
            let s = *rng.pick(&["", "{}", "x", "{\"message\": \"hi\"}", "null"]);
            match node_data_mut(doc, i) {
                Some(data) => {
                    data.insert("config", s);
                    format!("node {i} config → `{s}`")
                }
                None => format!("node {i} has no data object"),
            }
        }
        Mutation::Reshape => reshape(rng, doc),
        Mutation::DuplicateKeyBytes
        | Mutation::InvalidUtf8
        | Mutation::Truncate
        | Mutation::Deep10k
        | Mutation::SwitchEncoding => unreachable!("not a value-level mutation"),
    }
}

/// Puts a 1 MB string somewhere; always succeeds (falling back to a key, then the root).
fn huge_mutation(rng: &mut Rng, doc: &mut Value) -> String {
    let (huge, what) = huge_string(rng);
    let choice = rng.below(6);
    let place = place_huge(rng, doc, choice, &huge)
        .or_else(|| place_huge(rng, doc, 4, &huge))
        .unwrap_or_else(|| {
            *doc = Value::from(huge.as_str());
            "the document root".to_owned()
        });
    format!("({what}) {place}")
}

/// Puts `huge` at place `choice` (a config value, an edge label, a node id, a key, any string
/// value); `None` when the document has no such place.
fn place_huge(rng: &mut Rng, doc: &mut Value, choice: usize, huge: &str) -> Option<String> {
    match choice {
        // A message (or another config key) of some node.
        0 | 1 => {
            let n = list_len(doc, "nodes");
            if n == 0 {
                return None;
            }
            let i = rng.below(n);
            let key = *rng.pick(&[
                "message",
                "body_text",
                "system_prompt",
                "url",
                "event_name",
                "variable_name",
                "interactive_type",
                "template_id",
                "headers",
                "timeout_seconds",
            ]);
            let data = node_data_mut(doc, i)?;
            if !matches!(data.get("config"), Some(Value::Object(_))) {
                data.insert("config", Map::new());
            }
            obj_at(data, "config")?.insert(key, huge);
            Some(format!("node {i} config.{key}"))
        }
        // An edge label.
        2 => {
            let n = list_len(doc, "edges");
            if n == 0 {
                return None;
            }
            let i = rng.below(n);
            list_mut(doc, "edges")?[i]
                .as_object_mut()?
                .insert("label", huge);
            Some(format!("edge {i} label"))
        }
        // A node id (edges follow it).
        3 => {
            let n = list_len(doc, "nodes");
            if n == 0 {
                return None;
            }
            let i = rng.below(n);
            let node = list_mut(doc, "nodes")?[i].as_object_mut()?;
            let old = node
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            node.insert("id", huge);
            // One edge follows the id (each copy of the string adds 1 MB to the document).
            let mut followed = false;
            if let Some(edges) = list_mut(doc, "edges") {
                for e in edges.iter_mut().filter_map(Value::as_object_mut) {
                    for end in ["source", "target"] {
                        if !followed && e.get(end).and_then(Value::as_str) == Some(old.as_str()) {
                            e.insert(end, huge);
                            followed = true;
                        }
                    }
                }
            }
            Some(format!("node {i} id (and one of its edges)"))
        }
        // A key: at the top level or in any object.
        4 => {
            let mut targets: Vec<Vec<Seg>> = vec![Vec::new()];
            targets.extend(paths_where(doc, |v| matches!(v, Value::Object(_))));
            let path = rng.pick(&targets).clone();
            let value = random_scalar(rng);
            get_path_mut(doc, &path)?
                .as_object_mut()?
                .insert(huge, value);
            Some(format!("a key at {}", pointer_of(&path)))
        }
        // Any string value.
        _ => {
            let strings = paths_where(doc, |v| matches!(v, Value::String(_)));
            if strings.is_empty() {
                return None;
            }
            let path = rng.pick(&strings).clone();
            *get_path_mut(doc, &path)? = Value::from(huge);
            Some(format!("value at {}", pointer_of(&path)))
        }
    }
}

/// Envelope and shape changes: wrap in an envelope, drop keys the shape detection looks at,
/// add a `definition` that is not an object, …
fn reshape(rng: &mut Rng, doc: &mut Value) -> String {
    let choice = rng.below(8);
    match choice {
        0 | 1 => {
            let key = if choice == 0 { "flow" } else { "workflow" };
            let inner = std::mem::take(doc);
            let mut m = Map::new();
            m.insert(key, inner);
            *doc = Value::Object(m);
            format!("wrapped in `{key}`")
        }
        2 => match body_mut(doc) {
            Some(b) => {
                b.remove("name");
                "removed `name`".to_owned()
            }
            None => "no body".to_owned(),
        },
        3 => match container_mut(doc) {
            Some(c) => {
                c.remove("edges");
                "removed `edges`".to_owned()
            }
            None => "no container".to_owned(),
        },
        4 => match container_mut(doc) {
            Some(c) => {
                c.insert("nodes", Value::Null);
                "`nodes` → null".to_owned()
            }
            None => "no container".to_owned(),
        },
        5 => match body_mut(doc) {
            Some(b) if !matches!(b.get("definition"), Some(Value::Object(_))) => {
                b.insert("definition", "definition.json");
                "`definition` → \"definition.json\" next to `nodes`".to_owned()
            }
            _ => "already a definition object".to_owned(),
        },
        6 => match container_mut(doc) {
            Some(c) => {
                c.remove("nodes");
                "removed `nodes`".to_owned()
            }
            None => "no container".to_owned(),
        },
        _ => {
            // Move nodes/edges of shape B/C into a `definition` object (or back out of it).
            let Some(b) = body_mut(doc) else {
                return "no body".to_owned();
            };
            match b.remove("definition") {
                Some(Value::Object(def)) => {
                    for (k, v) in def.iter() {
                        b.insert(k, v.clone());
                    }
                    "pulled `definition` up".to_owned()
                }
                other => {
                    if let Some(v) = other {
                        b.insert("definition_was", v);
                    }
                    let mut def = Map::new();
                    for k in ["nodes", "edges"] {
                        if let Some(v) = b.remove(k) {
                            def.insert(k, v);
                        }
                    }
                    b.insert("definition", def);
                    "moved nodes/edges into `definition`".to_owned()
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The pipeline and its invariants
// ---------------------------------------------------------------------------------------------

/// Sources that do not load are parsed again to resolve diagnostic pointers, and the writer's
/// idempotence is checked, up to this size (a 1 MB YAML parse takes ~0.3 s in a debug build).
const REPARSE_LIMIT: usize = 64 << 10;

fn check_report(case: &Case, report: &FileReport, loaded_doc: Option<&Value>) {
    let names: Vec<&str> = RULES.iter().map(|r| r.name).collect();
    // Sorted by line/column (no line: last).
    let keys: Vec<(u32, u32)> = report
        .diagnostics
        .iter()
        .map(|d| (d.line.unwrap_or(u32::MAX), d.column.unwrap_or(u32::MAX)))
        .collect();
    for (i, w) in keys.windows(2).enumerate() {
        assert!(
            w[0] <= w[1],
            "diagnostics not sorted by line/column: #{i} `{}` at {:?} before #{} `{}` at {:?}",
            report.diagnostics[i].rule,
            w[0],
            i + 1,
            report.diagnostics[i + 1].rule,
            w[1]
        );
    }
    // The document the pointers point into, when the source is UTF-8 and parses: the loaded
    // flow's (its own-format document is the source document), else a parse of small sources.
    let parsed;
    let doc = match (&report.source, loaded_doc) {
        (None, _) => None,
        (Some(_), Some(doc)) => Some(doc),
        (Some(src), None) if src.text().len() <= REPARSE_LIMIT => {
            let text = src.text();
            parsed = match detect_encoding(Some(&case.path), text) {
                Encoding::Json => json::parse(text).ok(),
                Encoding::Yaml => yaml::parse(text).ok(),
            };
            parsed.as_ref()
        }
        (Some(_), None) => None,
    };
    // Every offending diagnostic is listed (one rule must not hide another).
    let mut problems = Vec::new();
    for d in &report.diagnostics {
        if !names.contains(&d.rule) {
            problems.push(format!("unknown rule `{}`", d.rule));
        }
        let chars = d.message.chars().count();
        if chars > MAX_MESSAGE_CHARS {
            problems.push(format!(
                "rule `{}` produced a message of {chars} characters (pointer `{}`): {}",
                d.rule,
                short(&d.pointer),
                short(&d.message)
            ));
        }
        if let Some(doc) = doc
            && doc.pointer(&d.pointer).is_some()
            && (d.line.is_none() || d.column.is_none())
        {
            problems.push(format!(
                "rule `{}`: no line/column although the source is UTF-8 and pointer `{}` \
                 resolves (message: {})",
                d.rule,
                short(&d.pointer),
                short(&d.message)
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    if let Some(reason) = case.expect_invalid_document {
        assert!(
            report
                .diagnostics
                .iter()
                .any(|d| d.rule == "invalid-document"),
            "expected `invalid-document` ({reason}), got {:?}",
            report
                .diagnostics
                .iter()
                .map(|d| (d.rule, short(&d.message)))
                .collect::<Vec<_>>()
        );
    }
}

/// With `SWITCHBOARD_ROBUSTNESS_STAGES` set, prints how long a stage took.
fn stage(name: &str, started: &mut Instant) {
    if std::env::var_os("SWITCHBOARD_ROBUSTNESS_STAGES").is_some() {
        trace(&format!("  {name}: {} us", started.elapsed().as_micros()));
    }
    *started = Instant::now();
}

/// Runs one case through everything; returns whether the mutant loaded.
fn run_pipeline(case: &Case) -> bool {
    let mut t = Instant::now();
    let report = check_file(&case.path, &case.bytes, &Options::default());
    assert_eq!(report.path, case.path);
    stage("check_file", &mut t);

    let human = render_human(&report);
    let summary = human.lines().last().unwrap_or_default();
    assert!(
        summary.starts_with(&format!("{}: ", case.path)),
        "render_human: no summary line, last line is {}",
        short(summary)
    );
    let rendered = render_json(std::slice::from_ref(&report));
    let parsed: serde_json::Value =
        serde_json::from_str(&rendered).expect("render_json writes JSON");
    assert_eq!(
        parsed["files"][0]["diagnostics"].as_array().map(Vec::len),
        Some(report.diagnostics.len()),
        "render_json: wrong diagnostic count"
    );
    stage("render", &mut t);

    let options = LoadOptions::default();
    let loaded = match load_bytes(&case.bytes, Some(&case.path), &options) {
        Err(e) => {
            check_report(case, &report, None);
            assert_eq!(
                report.diagnostics.len(),
                1,
                "a document that does not load is one diagnostic"
            );
            assert_eq!(report.diagnostics[0].rule, e.rule());
            return false;
        }
        Ok(loaded) => loaded,
    };
    stage("load_bytes", &mut t);
    let flow = &loaded.flow;
    let format = flow.format();
    check_report(case, &report, Some(&flow.to_document(format.shape)));
    assert!(
        !report
            .diagnostics
            .iter()
            .any(|d| matches!(d.rule, "invalid-document" | "unknown-shape")),
        "the document loads, but the report says it does not"
    );
    stage("check_report", &mut t);

    // Own format: read → write → read is the identity.
    let text = flow.to_text();
    let again = load_str(&text, format.encoding, &options).unwrap_or_else(|e| {
        panic!(
            "to_text() output does not load again: {e}\n{}",
            excerpt(text.as_bytes())
        )
    });
    assert!(
        again.flow == *flow,
        "read → write → read changed the flow: {}\nformat: {:?}\nwritten:\n{}",
        flow_diff(flow, &again.flow, &case.bytes, &text),
        format,
        excerpt(text.as_bytes())
    );
    if text.len() <= REPARSE_LIMIT {
        assert!(
            again.flow.to_text() == text,
            "writing is not idempotent ({format:?})"
        );
    }
    stage("own format round trip", &mut t);

    // Another shape and encoding: writable, loadable, same nodes and edges.
    let out = flow.write(&case.write);
    let out_encoding = case.write.encoding.unwrap_or(format.encoding);
    let back = load_str(&out, out_encoding, &options).unwrap_or_else(|e| {
        panic!(
            "written in another format, the flow does not load again: {e}\noptions: {:?}\n{}",
            case.write,
            excerpt(out.as_bytes())
        )
    });
    let want_shape = case.write.shape.unwrap_or(format.shape);
    assert_eq!(
        back.flow.format().shape,
        want_shape,
        "write({:?}) is read back in another shape",
        case.write
    );
    assert_eq!(back.flow.nodes.len(), flow.nodes.len(), "node count");
    // With `sort_keys` the key order changes (and `Map` equality sees order): compare with the
    // original nodes and edges sorted the same way.
    let sorted = |m: &Map| {
        let mut m = m.clone();
        if case.write.sort_keys {
            m.sort_keys(true);
        }
        m
    };
    for (i, (a, b)) in back.flow.nodes.iter().zip(&flow.nodes).enumerate() {
        assert!(a.id() == b.id(), "node {i}: id changed");
        if !b.is_object() {
            continue;
        }
        let want = Node::from_raw(sorted(b.raw()));
        assert!(
            a.config() == want.config(),
            "write({:?}): node {i}: typed config changed\nbefore: {}\nafter:  {}",
            case.write,
            short_debug(want.config()),
            short_debug(a.config())
        );
    }
    assert_eq!(back.flow.edges.len(), flow.edges.len(), "edge count");
    for (i, (a, b)) in back.flow.edges.iter().zip(&flow.edges).enumerate() {
        let want = if b.is_object() {
            Edge::from_raw(sorted(b.raw()))
        } else {
            b.clone()
        };
        assert!(
            *a == want,
            "write({:?}): edge {i} changed\nbefore: {}\nafter:  {}",
            case.write,
            short_debug(&want),
            short_debug(a)
        );
    }
    stage("other format round trip", &mut t);
    true
}

/// The first difference between two flows (`b` read from `b_text`, which `a`, read from
/// `a_source`, wrote), for failure reports.
fn flow_diff(a: &Flow, b: &Flow, a_source: &[u8], b_text: &str) -> String {
    if a.format() != b.format() {
        return format!("format {:?} → {:?}", a.format(), b.format());
    }
    if a.nodes.len() != b.nodes.len() {
        return format!("{} nodes → {}", a.nodes.len(), b.nodes.len());
    }
    for (i, (x, y)) in a.nodes.iter().zip(&b.nodes).enumerate() {
        if x != y {
            return format!(
                "node {i}\nbefore: {}\nafter:  {}",
                short_debug(&x.to_value()),
                short_debug(&y.to_value())
            );
        }
    }
    if a.edges.len() != b.edges.len() {
        return format!("{} edges → {}", a.edges.len(), b.edges.len());
    }
    for (i, (x, y)) in a.edges.iter().zip(&b.edges).enumerate() {
        if x != y {
            return format!(
                "edge {i}\nbefore: {}\nafter:  {}",
                short_debug(&x.to_value()),
                short_debug(&y.to_value())
            );
        }
    }
    let (da, db) = (
        a.to_document(a.format().shape),
        b.to_document(b.format().shape),
    );
    if da != db {
        return format!(
            "the written document differs\nbefore: {}\nafter:  {}",
            short_debug(&da),
            short_debug(&db)
        );
    }
    let parse = |text: &str| match a.format().encoding {
        Encoding::Json => json::parse(text).ok(),
        Encoding::Yaml => yaml::parse(text).ok(),
    };
    let source = std::str::from_utf8(a_source).ok().and_then(parse);
    match (source, parse(b_text)) {
        (Some(x), Some(y)) => match value_diff(&x, &y, &mut String::new()) {
            Some(d) => format!("the writer changed the document: {d}"),
            None => "source and written documents are equal, yet the flows differ".to_owned(),
        },
        _ => "nodes and edges are equal; the rest of the document differs".to_owned(),
    }
}

/// The first place where two documents differ (a pointer and what differs).
fn value_diff(x: &Value, y: &Value, at: &mut String) -> Option<String> {
    match (x, y) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a.iter() {
                let len = at.len();
                at.push('/');
                at.push_str(&short(k));
                let d = match b.get(k) {
                    None => Some(format!("`{at}` was dropped")),
                    Some(w) => value_diff(v, w, at),
                };
                at.truncate(len);
                if d.is_some() {
                    return d;
                }
            }
            if let Some(k) = b.keys().find(|k| !a.contains_key(k)) {
                return Some(format!("`{at}/{}` was added", short(k)));
            }
            let (ka, kb): (Vec<&str>, Vec<&str>) = (a.keys().collect(), b.keys().collect());
            (ka != kb).then(|| format!("the keys of `{at}` were reordered"))
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            a.iter().zip(b).enumerate().find_map(|(i, (v, w))| {
                let len = at.len();
                let _ = write!(at, "/{i}");
                let d = value_diff(v, w, at);
                at.truncate(len);
                d
            })
        }
        _ if x == y => None,
        _ => Some(format!(
            "`{at}` changed from {} to {}",
            short_debug(x).chars().take(80).collect::<String>(),
            short_debug(y).chars().take(80).collect::<String>()
        )),
    }
}

/// `Debug` of a value, cut to 600 characters.
fn short_debug(v: &impl std::fmt::Debug) -> String {
    let s = format!("{v:?}");
    if s.chars().count() > 600 {
        format!("{}…", s.chars().take(600).collect::<String>())
    } else {
        s
    }
}

/// The start (and length) of an input, for failure reports.
fn excerpt(bytes: &[u8]) -> String {
    const HEAD: usize = 1_500;
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(HEAD)]);
    let mut s: String = head
        .lines()
        .map(|l| {
            if l.chars().count() > 200 {
                format!("{}…", l.chars().take(200).collect::<String>())
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    if bytes.len() > HEAD {
        let _ = write!(s, "\n… ({} bytes in all)", bytes.len());
    }
    s
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(non-string panic payload)".to_owned()
    }
}

#[allow(clippy::print_stderr)]
fn trace(line: &str) {
    eprintln!("{line}");
}

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim();
    match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => v.parse().ok(),
    }
}

// ---------------------------------------------------------------------------------------------
// The driver
// ---------------------------------------------------------------------------------------------

thread_local! {
    /// Set on the fuzzing threads: the panic hook stays quiet there (panics are caught and
    /// reported with their case) and records where the panic happened.
    static QUIET: Cell<bool> = const { Cell::new(false) };
    static PANIC_AT: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Installs (once) a panic hook that is silent on the fuzzing threads and otherwise defers to
/// the previous hook. Without it, every caught panic prints (and, with `RUST_BACKTRACE` set,
/// symbolises) a backtrace, which takes longer than the case itself.
fn install_quiet_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if QUIET.with(Cell::get) {
                let at = info
                    .location()
                    .map(|l| format!("{}:{}", l.file(), l.line()))
                    .unwrap_or_default();
                PANIC_AT.with(|p| *p.borrow_mut() = at);
            } else {
                previous(info);
            }
        }));
    });
}

/// What happened to one iteration.
struct Outcome {
    iteration: u64,
    loaded: bool,
    huge: bool,
    deep: bool,
    /// The failure report, when it failed.
    failure: Option<String>,
    /// The failure classes (panic text without numbers), when it failed.
    classes: Vec<String>,
}

fn run_iteration(base: u64, iteration: u64, fixtures: &[Fixture], tracing: bool) -> Outcome {
    let seed = case_seed(base, iteration);
    let mut log = Vec::new();
    let mut input_excerpt = String::new();
    let mut path = String::new();
    let (mut huge, mut deep) = (false, false);
    let result = catch_unwind(AssertUnwindSafe(|| {
        let case = build_case(iteration, seed, fixtures, &mut log);
        if tracing {
            trace(&format!(
                "iteration {iteration} seed {seed:#018x} {} as {}: {:?}",
                case.fixture, case.path, case.log
            ));
        }
        input_excerpt = excerpt(&case.bytes);
        path.clone_from(&case.path);
        log.clone_from(&case.log);
        huge = case.log.iter().any(|l| l.starts_with("HugeString: ("));
        deep = case.log.iter().any(|l| l.starts_with("Deep10k"));
        let started = Instant::now();
        let loaded = run_pipeline(&case);
        if tracing {
            trace(&format!(
                "iteration {iteration}: {} ms",
                started.elapsed().as_millis()
            ));
        }
        loaded
    }));
    match result {
        Ok(loaded) => Outcome {
            iteration,
            loaded,
            huge,
            deep,
            failure: None,
            classes: Vec::new(),
        },
        Err(payload) => {
            let text = panic_text(payload.as_ref());
            let at = PANIC_AT.with(|p| std::mem::take(&mut *p.borrow_mut()));
            // One class per problem line of a report check, else the first line.
            let lines: Vec<&str> = if text.starts_with("rule `") || text.starts_with("unknown rule")
            {
                text.lines().collect()
            } else {
                text.lines().take(1).collect()
            };
            let classes = lines
                .into_iter()
                .map(|l| {
                    l.chars()
                        .filter(|c| !c.is_ascii_digit())
                        .take(110)
                        .collect()
                })
                .collect();
            let failure = format!(
                "iteration {iteration} (seed {seed:#018x}; base seed {base:#018x}) panicked at \
                 {at}: {text}\npath: {path}\nmutations:\n  {}\ninput:\n{input_excerpt}\n\
                 reproduce: SWITCHBOARD_ROBUSTNESS_SEED={base:#x} \
                 SWITCHBOARD_ROBUSTNESS_ITERATION={iteration} \
                 cargo test -p switchboard-validator --test robustness",
                log.join("\n  "),
            );
            Outcome {
                iteration,
                loaded: false,
                huge,
                deep,
                failure: Some(failure),
                classes,
            }
        }
    }
}

#[test]
fn ten_thousand_mutations_never_panic() {
    install_quiet_panic_hook();
    let fixtures = fixtures();
    let base = env_u64("SWITCHBOARD_ROBUSTNESS_SEED").unwrap_or(SEED);
    let only = env_u64("SWITCHBOARD_ROBUSTNESS_ITERATION");
    let tracing = std::env::var_os("SWITCHBOARD_ROBUSTNESS_TRACE").is_some();
    let max_failures = env_u64("SWITCHBOARD_ROBUSTNESS_MAX_FAILURES")
        .map_or(MAX_FAILURES, |n| usize::try_from(n).unwrap_or(usize::MAX));
    let iterations: Vec<u64> = match only {
        Some(i) => vec![i],
        None => (0..ITERATIONS).collect(),
    };
    // Every case depends on its iteration number only, so the iterations are shared out over
    // the cores, each worker taking the next one when it is done.
    let threads = std::thread::available_parallelism()
        .map_or(2, usize::from)
        .clamp(1, 8)
        .min(iterations.len());
    let failed = AtomicUsize::new(0);
    let next = AtomicUsize::new(0);
    let mut outcomes: Vec<Outcome> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let (iterations, fixtures, failed, next) = (&iterations, &fixtures, &failed, &next);
                scope.spawn(move || {
                    QUIET.with(|q| q.set(true));
                    let mut out = Vec::new();
                    while let Some(&iteration) =
                        iterations.get(next.fetch_add(1, Ordering::Relaxed))
                    {
                        if failed.load(Ordering::Relaxed) >= max_failures {
                            break;
                        }
                        let outcome = run_iteration(base, iteration, fixtures, tracing);
                        if outcome.failure.is_some() {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                        out.push(outcome);
                    }
                    out
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| {
                w.join()
                    .expect("a worker thread panicked outside catch_unwind")
            })
            .collect()
    });
    outcomes.sort_by_key(|o| o.iteration);

    let ran = outcomes.len();
    let loaded = outcomes.iter().filter(|o| o.loaded).count();
    let huge = outcomes.iter().filter(|o| o.huge).count();
    let deep = outcomes.iter().filter(|o| o.deep).count();
    // Failure classes → (count, first iteration).
    let mut classes: BTreeMap<&str, (usize, u64)> = BTreeMap::new();
    for o in &outcomes {
        for c in &o.classes {
            classes.entry(c).or_insert((0, o.iteration)).0 += 1;
        }
    }
    if tracing {
        trace(&format!(
            "{ran} iterations: {loaded} loaded, {huge} with a 1 MB string, {deep} with \
             10,000-level nesting"
        ));
    }
    let failures: Vec<&str> = outcomes
        .iter()
        .filter_map(|o| o.failure.as_deref())
        .collect();
    let summary: Vec<String> = classes
        .iter()
        .map(|(class, (n, first))| format!("  {n:>5} × {class} (first: iteration {first})"))
        .collect();
    let shown = failures.len().min(MAX_FAILURES);
    assert!(
        failures.is_empty(),
        "{} failing case(s) in {ran} iterations (stops after {max_failures} failures); by kind:\n\
         {}\n\nthe first {shown}:\n\n{}",
        failures.len(),
        summary.join("\n"),
        failures[..shown].join("\n\n----------------------------------------\n\n")
    );
    if only.is_none() {
        assert_eq!(ran as u64, ITERATIONS);
        assert!(huge >= 100, "only {huge} cases had a 1 MB string");
        assert!(deep >= 100, "only {deep} cases had 10,000-level nesting");
        // The mutants are not all rejected outright: most still load and reach the rules.
        assert!(
            loaded as u64 >= ITERATIONS / 2,
            "only {loaded} of {ITERATIONS} mutants loaded"
        );
    }
}

#[test]
fn prng_is_deterministic() {
    let a: Vec<u64> = {
        let mut r = Rng::new(case_seed(SEED, 7));
        (0..4).map(|_| r.next_u64()).collect()
    };
    let b: Vec<u64> = {
        let mut r = Rng::new(case_seed(SEED, 7));
        (0..4).map(|_| r.next_u64()).collect()
    };
    assert_eq!(a, b);
    assert_ne!(case_seed(SEED, 7), case_seed(SEED, 8));
}

#[test]
fn deep_nesting_is_an_invalid_document_in_both_encodings() {
    for (path, open, close) in [
        ("deep.json", "{\"nodes\": ", "}"),
        ("deep.yaml", "nodes: ", ""),
    ] {
        for (o, c) in [("[", "]"), ("{\"a\": ", "}")] {
            let text = format!("{open}{}1{}{close}", o.repeat(DEEP), c.repeat(DEEP));
            let report = check_file(path, text.as_bytes(), &Options::default());
            assert_eq!(
                report
                    .diagnostics
                    .iter()
                    .map(|d| d.rule)
                    .collect::<Vec<_>>(),
                ["invalid-document"],
                "{path} with {o}"
            );
        }
    }
}
