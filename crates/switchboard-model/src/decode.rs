//! Field access with issue reporting: the building blocks of the typed projection.
//!
//! An [`Obj`] is a JSON object seen at a JSON pointer. Its accessors return the typed value of a
//! key, or `None` when the key is absent, `null`, or of the wrong type; a wrong type is recorded
//! as an [`Issue`]. Pointer strings are built only when an issue is recorded.

use crate::issue::{Issue, IssueKind};
use crate::value::{Map, Pos, Str, Value, escape_pointer_token};

/// Collects issues for one node (or edge, or the top level).
pub(crate) struct Cx<'a> {
    pub issues: &'a mut Vec<Issue>,
    pub node: Option<usize>,
    pub edge: Option<usize>,
}

impl Cx<'_> {
    pub fn push(&mut self, kind: IssueKind, pointer: String, pos: Pos) {
        self.issues.push(Issue {
            kind,
            pointer,
            pos,
            node: self.node,
            edge: self.edge,
        });
    }
}

/// Where an object is: a chain of path segments borrowed from the callers' stack frames. The
/// JSON pointer and the dotted field path are only rendered when an issue is recorded, so
/// decoding a well-formed document builds no strings for locations.
#[derive(Clone, Copy)]
pub(crate) struct Loc<'a> {
    parent: Option<&'a Loc<'a>>,
    seg: Seg<'a>,
    /// Field paths (`buttons[0].title`) start below this segment.
    reset: bool,
}

#[derive(Clone, Copy)]
enum Seg<'a> {
    /// A JSON pointer prefix.
    Root(&'a str),
    Key(&'a str),
    KeyIndex(&'a str, usize),
    Index(usize),
}

impl<'a> Loc<'a> {
    /// A location at the JSON pointer `ptr`, where field paths start.
    pub fn root(ptr: &'a str) -> Loc<'a> {
        Loc {
            parent: None,
            seg: Seg::Root(ptr),
            reset: true,
        }
    }

    /// Item `i` of the array at this location (field paths start there).
    pub fn at_index(&'a self, i: usize) -> Loc<'a> {
        Loc {
            parent: Some(self),
            seg: Seg::Index(i),
            reset: true,
        }
    }

    fn chain(&self) -> Vec<&Loc<'a>> {
        let mut chain = vec![self];
        let mut cur = self.parent;
        while let Some(l) = cur {
            chain.push(l);
            cur = l.parent;
        }
        chain.reverse();
        chain
    }

    /// The JSON pointer.
    pub fn pointer(&self) -> String {
        let mut s = String::new();
        for l in self.chain() {
            match l.seg {
                Seg::Root(p) => s.push_str(p),
                Seg::Key(k) => {
                    s.push('/');
                    s.push_str(&escape_pointer_token(k));
                }
                Seg::KeyIndex(k, i) => {
                    s.push('/');
                    s.push_str(&escape_pointer_token(k));
                    s.push('/');
                    s.push_str(&i.to_string());
                }
                Seg::Index(i) => {
                    s.push('/');
                    s.push_str(&i.to_string());
                }
            }
        }
        s
    }

    /// The dotted field path below the last reset (`""` at a reset).
    pub fn path(&self) -> String {
        let chain = self.chain();
        let start = chain.iter().rposition(|l| l.reset).map_or(0, |i| i + 1);
        let mut s = String::new();
        for l in &chain[start..] {
            let (k, i) = match l.seg {
                Seg::Root(_) | Seg::Index(_) => continue,
                Seg::Key(k) => (k, None),
                Seg::KeyIndex(k, i) => (k, Some(i)),
            };
            if !s.is_empty() {
                s.push('.');
            }
            s.push_str(k);
            if let Some(i) = i {
                s.push_str(&format!("[{i}]"));
            }
        }
        s
    }
}

/// An object at a location.
#[derive(Clone, Copy)]
pub(crate) struct Obj<'a> {
    pub map: &'a Map,
    pub loc: Loc<'a>,
}

/// A text field that may hold an AI marker (`{"$ai": {}}`).
#[derive(Clone, Debug, PartialEq)]
pub enum TextField {
    /// Literal (templated) text.
    Text(String),
    /// Generated at run time from the node's `ai_field_config` prompt.
    Ai,
}

impl TextField {
    /// The text, when literal.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            TextField::Text(s) => Some(s),
            TextField::Ai => None,
        }
    }
}

impl<'a> Obj<'a> {
    /// The object at JSON pointer `ptr` (field paths start here).
    pub fn root(map: &'a Map, ptr: &'a str) -> Obj<'a> {
        Obj {
            map,
            loc: Loc::root(ptr),
        }
    }

    /// The object at a location.
    pub fn at(map: &'a Map, loc: Loc<'a>) -> Obj<'a> {
        Obj { map, loc }
    }

    /// The object `map` found at `key` of this one.
    pub fn child(&'a self, key: &'a str, map: &'a Map) -> Obj<'a> {
        Obj {
            map,
            loc: Loc {
                parent: Some(&self.loc),
                seg: Seg::Key(key),
                reset: false,
            },
        }
    }

    /// Like [`Obj::child`], but field paths restart below it (a node's `data.config`).
    pub fn child_reset(&'a self, key: &'a str, map: &'a Map) -> Obj<'a> {
        Obj {
            map,
            loc: Loc {
                parent: Some(&self.loc),
                seg: Seg::Key(key),
                reset: true,
            },
        }
    }

    /// The object `map` found at `key[i]` of this one.
    pub fn item(&'a self, key: &'a str, i: usize, map: &'a Map) -> Obj<'a> {
        Obj {
            map,
            loc: Loc {
                parent: Some(&self.loc),
                seg: Seg::KeyIndex(key, i),
                reset: false,
            },
        }
    }

    pub fn ptr_of(&self, key: &str) -> String {
        format!("{}/{}", self.loc.pointer(), escape_pointer_token(key))
    }

    pub fn field_name(&self, key: &str) -> String {
        let path = self.loc.path();
        if path.is_empty() {
            key.to_owned()
        } else {
            format!("{path}.{key}")
        }
    }

    fn pos_of(&self, key: &str) -> Pos {
        self.map
            .entry(key)
            .map_or(self.map.pos, |e| e.value_pos.or(e.key_pos))
    }

    /// The value of `key` unless absent or `null`. Every typed accessor reads through here.
    pub fn get(&self, key: &str) -> Option<&'a Value> {
        #[cfg(test)]
        reads::record(&self.loc, key);
        match self.map.get(key) {
            None | Some(Value::Null) => None,
            Some(v) => Some(v),
        }
    }

    pub fn wrong_type(&self, cx: &mut Cx, key: &str, expected: &'static str) {
        // An AI marker where it is not allowed is `unsupported-ai-field` (reported by the
        // validator), not a type error.
        if self.map.get(key).is_some_and(Value::is_ai_marker) {
            return;
        }
        let found = self.map.get(key).map_or("nothing", Value::type_name);
        cx.push(
            IssueKind::InvalidFieldType {
                field: self.field_name(key),
                expected,
                found,
            },
            self.ptr_of(key),
            self.pos_of(key),
        );
    }

    pub fn str(&self, cx: &mut Cx, key: &str) -> Option<String> {
        self.string(cx, key).map(|s| s.to_string())
    }

    /// Like [`Obj::str`], as the document's string type (no allocation up to 24 bytes).
    pub fn str_value(&self, cx: &mut Cx, key: &str) -> Option<Str> {
        self.string(cx, key).cloned()
    }

    /// The string at `key`, borrowed; any other type is reported (`None` either way).
    fn string(&self, cx: &mut Cx, key: &str) -> Option<&'a Str> {
        match self.get(key)? {
            Value::String(s) => Some(s),
            _ => {
                self.wrong_type(cx, key, "string");
                None
            }
        }
    }

    /// Reports `key` when it is present, not `null`, and not a string.
    pub fn check_str(&self, cx: &mut Cx, key: &str) {
        match self.get(key) {
            None | Some(Value::String(_)) => {}
            Some(_) => self.wrong_type(cx, key, "string"),
        }
    }

    pub fn text(&self, cx: &mut Cx, key: &str) -> Option<TextField> {
        match self.get(key)? {
            Value::String(s) => Some(TextField::Text(s.to_string())),
            v if v.is_ai_marker() => Some(TextField::Ai),
            _ => {
                self.wrong_type(cx, key, "string");
                None
            }
        }
    }

    pub fn bool(&self, cx: &mut Cx, key: &str) -> Option<bool> {
        match self.get(key)? {
            Value::Bool(b) => Some(*b),
            _ => {
                self.wrong_type(cx, key, "boolean");
                None
            }
        }
    }

    /// A number, or a string holding a decimal number (exports write `"0.3"`).
    pub fn number(&self, cx: &mut Cx, key: &str) -> Option<f64> {
        match self.get(key)? {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            Value::String(s) => match parse_decimal(s) {
                Some(f) => Some(f),
                None => {
                    self.wrong_type(cx, key, "number");
                    None
                }
            },
            _ => {
                self.wrong_type(cx, key, "number");
                None
            }
        }
    }

    /// An integer (an integral float or numeric string is accepted).
    pub fn integer(&self, cx: &mut Cx, key: &str) -> Option<i64> {
        let v = self.get(key)?;
        let f = match v {
            Value::Int(i) => return Some(*i),
            Value::Float(f) => Some(*f),
            Value::String(s) => parse_decimal(s),
            _ => None,
        };
        match f {
            Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Some(f as i64),
            _ => {
                self.wrong_type(cx, key, "integer");
                None
            }
        }
    }

    pub fn array(&self, cx: &mut Cx, key: &str) -> Option<&'a [Value]> {
        match self.get(key)? {
            Value::Array(a) => Some(a),
            _ => {
                self.wrong_type(cx, key, "array");
                None
            }
        }
    }

    pub fn object(&self, cx: &mut Cx, key: &str) -> Option<&'a Map> {
        match self.get(key)? {
            Value::Object(m) => Some(m),
            _ => {
                self.wrong_type(cx, key, "object");
                None
            }
        }
    }

    /// An array of strings; non-string items are reported and skipped.
    pub fn string_list(&self, cx: &mut Cx, key: &str) -> Option<Vec<String>> {
        let items = self.array(cx, key)?;
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            match item {
                Value::String(s) => out.push(s.to_string()),
                other => cx.push(
                    IssueKind::InvalidFieldType {
                        field: format!("{}[{i}]", self.field_name(key)),
                        expected: "string",
                        found: other.type_name(),
                    },
                    format!("{}/{i}", self.ptr_of(key)),
                    self.pos_of(key),
                ),
            }
        }
        Some(out)
    }

    /// An object-or-JSON-string field: an object (or, with `allow_array`, an array) or a string
    /// with its JSON text (`""` means `{}`). Returns the decoded value.
    pub fn json_field(&self, cx: &mut Cx, key: &str, shape: JsonShape) -> Option<Value> {
        let v = self.get(key)?;
        match v {
            Value::Object(_) => Some(v.clone()),
            Value::Array(_) if shape != JsonShape::Object => Some(v.clone()),
            Value::String(s) if s.trim().is_empty() => Some(Value::Object(Map::new())),
            Value::String(s) => match crate::json::parse(s) {
                Ok(parsed) if shape.accepts(&parsed) => Some(parsed),
                Ok(parsed) => {
                    self.bad_json(cx, key, shape, format!("it holds {}", describe(&parsed)));
                    None
                }
                Err(e) => {
                    self.bad_json(cx, key, shape, e.message);
                    None
                }
            },
            Value::Bool(_) | Value::Int(_) | Value::Float(_) if shape == JsonShape::Any => {
                Some(v.clone())
            }
            _ => {
                self.wrong_type(cx, key, shape.name());
                None
            }
        }
    }

    fn bad_json(&self, cx: &mut Cx, key: &str, shape: JsonShape, detail: String) {
        cx.push(
            IssueKind::InvalidJsonString {
                field: self.field_name(key),
                expected: shape.name(),
                detail,
            },
            self.ptr_of(key),
            self.pos_of(key),
        );
    }

    /// An object-or-JSON-string field whose values must be strings (HTTP headers).
    pub fn headers(&self, cx: &mut Cx, key: &str) -> Option<Value> {
        let v = self.json_field(cx, key, JsonShape::Object)?;
        if let Value::Object(m) = &v {
            for e in m.entries() {
                // A header value may be an AI field (flow-format §6).
                if !matches!(e.value, Value::String(_)) && !e.value.is_ai_marker() {
                    cx.push(
                        IssueKind::InvalidFieldType {
                            field: format!("{}.{}", self.field_name(key), e.key),
                            expected: "string",
                            found: e.value.type_name(),
                        },
                        format!("{}/{}", self.ptr_of(key), escape_pointer_token(&e.key)),
                        if e.value_pos == Pos::NONE {
                            self.pos_of(key)
                        } else {
                            e.value_pos
                        },
                    );
                }
            }
        }
        Some(v)
    }

    /// A string from a fixed set.
    pub fn enumeration<T: Copy>(
        &self,
        cx: &mut Cx,
        key: &str,
        allowed: &'static [&'static str],
        values: &[T],
    ) -> Option<T> {
        let s = match self.get(key)? {
            Value::String(s) => s,
            _ => {
                self.wrong_type(cx, key, "string");
                return None;
            }
        };
        match allowed.iter().position(|a| a == s) {
            Some(i) => values.get(i).copied(),
            None => {
                cx.push(
                    IssueKind::InvalidEnumValue {
                        field: self.field_name(key),
                        value: s.to_string(),
                        allowed,
                    },
                    self.ptr_of(key),
                    self.pos_of(key),
                );
                None
            }
        }
    }

    /// Picks the key of an alias pair to read: the canonical one when present (reporting a
    /// conflict when both are present with different values), else the alias.
    pub fn alias(&self, cx: &mut Cx, canonical: &'static str, alias: &'static str) -> &'static str {
        let c = self.get(canonical);
        let a = self.get(alias);
        match (c, a) {
            (Some(c), Some(a)) => {
                if c != a {
                    cx.push(
                        IssueKind::ConflictingAlias { canonical, alias },
                        self.ptr_of(alias),
                        self.pos_of(alias),
                    );
                }
                canonical
            }
            (None, Some(_)) => alias,
            _ => canonical,
        }
    }

    /// Reports every key not in `known`.
    pub fn unknown_keys(&self, cx: &mut Cx, known: &[&str], within: &'static str) {
        for e in self.map.entries() {
            if !known.contains(&e.key.as_str()) {
                cx.push(
                    IssueKind::UnknownConfigKey {
                        key: e.key.to_string(),
                        within,
                    },
                    self.ptr_of(&e.key),
                    e.key_pos,
                );
            }
        }
    }

    /// The objects of an array field, each with its pointer; non-objects are reported.
    pub fn objects(&self, cx: &mut Cx, key: &str) -> Option<Vec<(usize, &'a Map)>> {
        let items = self.array(cx, key)?;
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            match item {
                Value::Object(m) => out.push((i, m)),
                other => cx.push(
                    IssueKind::InvalidFieldType {
                        field: format!("{}[{i}]", self.field_name(key)),
                        expected: "object",
                        found: other.type_name(),
                    },
                    format!("{}/{i}", self.ptr_of(key)),
                    self.pos_of(key),
                ),
            }
        }
        Some(out)
    }
}

/// A record of the keys the decoders read, for the tests that check each decoder against the
/// key list it declares (`config/tests.rs`). Test builds only: it costs nothing in a release.
#[cfg(test)]
pub(crate) mod reads {
    use std::cell::RefCell;

    use super::Loc;

    thread_local! {
        static READS: RefCell<Option<Vec<(String, String)>>> = const { RefCell::new(None) };
    }

    /// Records on this thread the keys read by `f`, as (field path of the object, key) pairs in
    /// reading order.
    pub(crate) fn recorded<T>(f: impl FnOnce() -> T) -> (T, Vec<(String, String)>) {
        READS.with(|r| *r.borrow_mut() = Some(Vec::new()));
        let out = f();
        let reads = READS.with(|r| r.borrow_mut().take()).unwrap_or_default();
        (out, reads)
    }

    pub(super) fn record(loc: &Loc<'_>, key: &str) {
        READS.with(|r| {
            if let Some(reads) = r.borrow_mut().as_mut() {
                reads.push((loc.path(), key.to_owned()));
            }
        });
    }
}

/// What an object-or-JSON-string field must hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum JsonShape {
    Object,
    Any,
}

impl JsonShape {
    fn name(self) -> &'static str {
        match self {
            JsonShape::Object => "object",
            JsonShape::Any => "JSON value",
        }
    }

    fn accepts(self, v: &Value) -> bool {
        match self {
            JsonShape::Object => matches!(v, Value::Object(_)),
            JsonShape::Any => true,
        }
    }
}

fn describe(v: &Value) -> String {
    format!("{} {}", crate::issue::article(v.type_name()), v.type_name())
}

/// Parses a decimal number written as a string (`"0.3"`, `" 10 "`); rejects NaN/inf and words.
pub fn parse_decimal(s: &str) -> Option<f64> {
    let t = s.trim();
    let ok = !t.is_empty()
        && t.bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'))
        && t.bytes().any(|b| b.is_ascii_digit());
    if !ok {
        return None;
    }
    t.parse::<f64>().ok().filter(|f| f.is_finite())
}
