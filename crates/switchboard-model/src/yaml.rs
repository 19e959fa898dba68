//! YAML reading and writing for [`Value`]: a strict single-document reader (YAML 1.2 core schema,
//! string keys, no custom tags or merge keys, bounded alias expansion) that records byte positions,
//! and a block-style writer whose output reads back to an equal value.
//!
//! The reader is built on the event API of `saphyr-parser` and resolves plain scalars itself, so
//! `yes`/`no`/`on`/`off` stay strings. The writer follows the layout of PyYAML's
//! `safe_dump(default_flow_style=False, sort_keys=False, allow_unicode=True)`, writing a string
//! plain only when no YAML 1.1 or 1.2 reader could take it for anything else.

use std::borrow::Cow;
use std::collections::HashSet;

use saphyr_parser::{Event, Parser, ScalarStyle, ScanError, Span, Tag};

use crate::error::SyntaxError;
use crate::json::MAX_DEPTH;
use crate::value::{Entry, Map, Pos, Str, Value};

/// Alias expansion budget, in work units, that every document gets whatever its size.
///
/// A unit is one value (scalar, collection or key) or 32 bytes of string. Values copied by
/// aliases, and the copy kept of every anchored value, count too, so an alias bomb stops after a
/// bounded amount of memory and time. A document without aliases uses at most about one unit per
/// input byte, so the per-byte allowance ([`BUDGET_PER_BYTE`]) never stops a plain document.
pub const BUDGET_BASE: usize = 1_000_000;

/// Work units allowed per byte of input, on top of [`BUDGET_BASE`].
pub const BUDGET_PER_BYTE: usize = 4;

/// Maps with more keys than this check duplicates with a hash set instead of a linear scan.
const LINEAR_KEY_SCAN: usize = 16;

/// Keys whose written form is longer than this (in bytes) are written as explicit `? key`
/// entries, as PyYAML does (YAML readers limit implicit keys to 1024 characters).
const MAX_IMPLICIT_KEY: usize = 128;

/// Parses one YAML document into a [`Value`] with source positions (byte offsets into `text`).
///
/// Plain scalars resolve with the YAML 1.2 core schema; quoted and block scalars are strings.
/// Rejected: zero or several documents, non-string keys, duplicate keys, merge keys (`<<`), tags
/// other than the core ones (`!!str`, `!!int`, `!!float`, `!!bool`, `!!null`, `!!map`,
/// `!!seq`), NaN and infinities, numbers out of range, nesting deeper than [`MAX_DEPTH`],
/// non-printable characters, and alias expansion beyond the budget ([`BUDGET_BASE`]).
pub fn parse(text: &str) -> Result<Value, SyntaxError> {
    check_printable(text)?;
    let mut reader = Reader {
        offsets: Offsets::new(text),
        frames: Vec::new(),
        anchors: Vec::new(),
        root: None,
        documents: 0,
        units: 0,
        produced: 0,
        budget: BUDGET_BASE.saturating_add(text.len().saturating_mul(BUDGET_PER_BYTE)),
    };
    for event in Parser::new_from_str(text) {
        match event {
            Ok((Event::StreamEnd, _)) => break,
            Ok((event, span)) => reader.event(event, span)?,
            Err(e) => {
                let mut err = reader.scan_error(&e);
                if let Some(at) = err.pos.offset() {
                    err.pos = Pos::new(past_last_content(text, at));
                }
                return Err(err);
            }
        }
    }
    match reader.root {
        Some(v) => Ok(v),
        None if reader.documents == 0 => Err(err_at(0, "empty document")),
        // Unreachable with a well-behaved parser: a document always holds a node.
        None => Err(err_at(text.len(), "unexpected end of the YAML document")),
    }
}

/// Writes `value` as block-style YAML (PyYAML-like layout), ending with a newline.
///
/// Mappings are written `key: value`, one per line, nested ones indented by two spaces; a
/// sequence under a key is not indented relative to the key, and an item that is a mapping or a
/// sequence starts on the `- ` line. Empty collections are `{}` and `[]`. Strings are plain when
/// provably safe, else double-quoted with escapes (so every scalar is on one line).
pub fn write(value: &Value, out: &mut String) {
    match value {
        Value::Object(m) if !m.is_empty() => write_map(m, 0, false, out),
        Value::Array(a) if !a.is_empty() => write_seq(a, 0, false, out),
        _ => {
            write_scalar(value, out);
            out.push('\n');
        }
    }
}

/// Convenience: `value` as YAML text (see [`write()`]).
pub fn to_string(value: &Value) -> String {
    let mut s = String::new();
    write(value, &mut s);
    s
}

// ---------------------------------------------------------------------------------------------
// Reader
// ---------------------------------------------------------------------------------------------

/// Where to show an error the scanner found at byte `at`: `at` itself, unless only blank lines
/// (or the end of the file) lie between the last content and `at` — the scanner reads ahead to
/// find that something is missing — in which case just after that content, so the caret points
/// at the line where the missing `]`, `}` or quote belongs, not at a blank line.
fn past_last_content(text: &str, at: usize) -> usize {
    let at = at.min(text.len());
    let Some(before) = text.get(..at) else {
        return at;
    };
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[at..].find('\n').map_or(text.len(), |i| at + i);
    if !text[line_start..line_end].trim().is_empty() {
        return at;
    }
    let content = before.trim_end();
    if content.is_empty() {
        at
    } else {
        content.len()
    }
}

fn err_at(byte: usize, msg: impl Into<String>) -> SyntaxError {
    SyntaxError {
        message: msg.into(),
        pos: Pos::new(byte),
    }
}

/// Rejects characters YAML does not allow in a stream (the same set PyYAML rejects). NUL would
/// otherwise silently end the document for the scanner.
fn check_printable(text: &str) -> Result<(), SyntaxError> {
    for (i, c) in text.char_indices() {
        let ok = match c {
            '\t' | '\n' | '\r' | '\u{85}' => true,
            '\u{0}'..='\u{1F}' | '\u{7F}'..='\u{9F}' | '\u{FFFE}' | '\u{FFFF}' => false,
            _ => true,
        };
        if !ok {
            return Err(err_at(
                i,
                format!(
                    "non-printable character U+{:04X} is not allowed in YAML (escape it in a \
                     double-quoted string)",
                    c as u32
                ),
            ));
        }
    }
    Ok(())
}

/// Converts the parser's character indices into byte offsets. Events arrive in (nearly)
/// increasing order, so a cursor that walks forward (and, rarely, back) is linear overall.
struct Offsets<'a> {
    text: &'a str,
    ascii: bool,
    chars: usize,
    bytes: usize,
}

impl<'a> Offsets<'a> {
    fn new(text: &'a str) -> Self {
        Offsets {
            text,
            ascii: text.is_ascii(),
            chars: 0,
            bytes: 0,
        }
    }

    fn byte(&mut self, char_index: usize) -> usize {
        if self.ascii {
            return char_index.min(self.text.len());
        }
        while self.chars < char_index {
            match self.text.get(self.bytes..).and_then(|s| s.chars().next()) {
                Some(c) => {
                    self.bytes += c.len_utf8();
                    self.chars += 1;
                }
                None => break,
            }
        }
        while self.chars > char_index {
            match self
                .text
                .get(..self.bytes)
                .and_then(|s| s.chars().next_back())
            {
                Some(c) => {
                    self.bytes -= c.len_utf8();
                    self.chars -= 1;
                }
                None => break,
            }
        }
        self.bytes
    }
}

/// A value kept for an anchor, with what it costs to copy and how deep it is.
struct Anchor {
    value: Value,
    units: usize,
    depth: usize,
}

enum Kind {
    Seq(Vec<Value>),
    Map {
        map: Map,
        /// The key read, waiting for its value.
        key: Option<(Str, Pos)>,
        /// The keys so far, once the map is large.
        seen: Option<HashSet<Str>>,
    },
}

/// A collection being read.
struct Frame {
    kind: Kind,
    /// Anchor id (0: none).
    anchor: usize,
    /// Where the collection starts (reported as its entry's `value_pos`).
    pos: Pos,
    /// Work units of the document produced before it started.
    produced_before: usize,
    /// Depth of the deepest child collection (0: only scalars).
    child_depth: usize,
}

struct Reader<'a> {
    offsets: Offsets<'a>,
    frames: Vec<Frame>,
    /// Indexed by anchor id; `None` while the anchored node is being read.
    anchors: Vec<Option<Anchor>>,
    root: Option<Value>,
    documents: usize,
    /// Work units spent: values produced plus the copies kept for anchors.
    units: usize,
    /// Work units of the values produced (aliases included).
    produced: usize,
    budget: usize,
}

/// A core-schema tag (`!!str`, …).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum CoreTag {
    Str,
    Int,
    Float,
    Bool,
    Null,
    Map,
    Seq,
}

impl CoreTag {
    fn name(self) -> &'static str {
        match self {
            CoreTag::Str => "!!str",
            CoreTag::Int => "!!int",
            CoreTag::Float => "!!float",
            CoreTag::Bool => "!!bool",
            CoreTag::Null => "!!null",
            CoreTag::Map => "!!map",
            CoreTag::Seq => "!!seq",
        }
    }
}

const CORE_PREFIX: &str = "tag:yaml.org,2002:";

impl Reader<'_> {
    fn byte(&mut self, char_index: usize) -> usize {
        self.offsets.byte(char_index)
    }

    fn scan_error(&mut self, e: &ScanError) -> SyntaxError {
        let at = self.byte(e.marker().index());
        let info = e.info().trim().trim_end_matches('.');
        if info == "recursion limit exceeded" {
            // The scanner's own limit on flow nesting (`[[[…`), just under ours.
            return err_at(at, "nesting deeper than 255 flow levels");
        }
        let mut chars = info.chars();
        let message = match chars.next() {
            Some(c) => c.to_lowercase().chain(chars).collect(),
            None => "invalid YAML".to_owned(),
        };
        err_at(at, message)
    }

    /// Counts the work units of produced values, failing once the budget is spent.
    fn spend(&mut self, units: usize, at: usize) -> Result<(), SyntaxError> {
        self.produced = self.produced.saturating_add(units);
        self.spend_copy(units, at)
    }

    /// Counts the work units of a copy kept for an anchor, failing once the budget is spent.
    fn spend_copy(&mut self, units: usize, at: usize) -> Result<(), SyntaxError> {
        self.units = self.units.saturating_add(units);
        if self.units > self.budget {
            return Err(err_at(
                at,
                "document too large: alias expansion exceeds the size budget (alias bomb?)",
            ));
        }
        Ok(())
    }

    fn expecting_key(&self) -> bool {
        matches!(
            self.frames.last(),
            Some(Frame {
                kind: Kind::Map { key: None, .. },
                ..
            })
        )
    }

    fn core_tag(&mut self, tag: Option<&Tag>, span: Span) -> Result<Option<CoreTag>, SyntaxError> {
        let Some(tag) = tag else { return Ok(None) };
        let suffix = if tag.handle == CORE_PREFIX {
            Some(tag.suffix.as_str())
        } else if tag.handle.is_empty() {
            tag.suffix.strip_prefix(CORE_PREFIX)
        } else {
            None
        };
        let core = match suffix {
            Some("str") => Some(CoreTag::Str),
            Some("int") => Some(CoreTag::Int),
            Some("float") => Some(CoreTag::Float),
            Some("bool") => Some(CoreTag::Bool),
            Some("null") => Some(CoreTag::Null),
            Some("map") => Some(CoreTag::Map),
            Some("seq") => Some(CoreTag::Seq),
            _ => None,
        };
        match core {
            Some(c) => Ok(Some(c)),
            None => {
                let at = self.byte(span.start.index());
                let shown = if tag.handle == CORE_PREFIX {
                    format!("!!{}", tag.suffix)
                } else {
                    tag.to_string()
                };
                Err(err_at(
                    at,
                    format!("YAML tags are not allowed (found `{shown}`)"),
                ))
            }
        }
    }

    fn event(&mut self, event: Event<'_>, span: Span) -> Result<(), SyntaxError> {
        match event {
            Event::DocumentStart(_) => {
                self.documents += 1;
                if self.documents > 1 {
                    let at = self.byte(span.start.index());
                    return Err(err_at(at, "several YAML documents (expected one)"));
                }
                Ok(())
            }
            Event::Scalar(text, style, anchor, tag) => {
                self.scalar(text, style, anchor, tag.as_deref(), span)
            }
            Event::Alias(id) => self.alias(id, span),
            Event::SequenceStart(anchor, tag) => {
                let start = self.byte(span.start.index());
                let tag = self.core_tag(tag.as_deref(), span)?;
                if tag.is_some_and(|t| t != CoreTag::Seq) {
                    return Err(tag_mismatch(start, tag, "a sequence"));
                }
                let pos = if span.start.index() == span.end.index() {
                    self.dash_before(start)
                } else {
                    start
                };
                self.open(Kind::Seq(Vec::new()), anchor, pos, start)
            }
            Event::MappingStart(anchor, tag) => {
                let start = self.byte(span.start.index());
                let tag = self.core_tag(tag.as_deref(), span)?;
                if tag.is_some_and(|t| t != CoreTag::Map) {
                    return Err(tag_mismatch(start, tag, "a mapping"));
                }
                // Block mappings: the span ends at the first key. Flow ones: just after `{`.
                let end = self.byte(span.end.index());
                let text = self.offsets.text;
                let map_pos = if end > start && text.get(..end).is_some_and(|t| t.ends_with('{')) {
                    end - 1
                } else {
                    end
                };
                let kind = Kind::Map {
                    map: Map::with_capacity(4, Pos::new(map_pos)),
                    key: None,
                    seen: None,
                };
                self.open(kind, anchor, start, start)
            }
            Event::SequenceEnd | Event::MappingEnd => self.close(span),
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => Ok(()),
        }
    }

    /// For an indentless block sequence the parser reports the first item, not the `-`: step
    /// back over blanks to the dash.
    fn dash_before(&self, at: usize) -> usize {
        let text = self.offsets.text;
        if text.get(at..).is_some_and(|t| t.starts_with('-')) {
            return at;
        }
        let before = text.get(..at).unwrap_or_default();
        let trimmed = before.trim_end_matches([' ', '\t']);
        if trimmed.ends_with('-') {
            trimmed.len() - 1
        } else {
            at
        }
    }

    fn open(
        &mut self,
        kind: Kind,
        anchor: usize,
        pos: usize,
        start: usize,
    ) -> Result<(), SyntaxError> {
        if self.expecting_key() {
            return Err(err_at(start, "keys must be strings"));
        }
        if self.frames.len() >= MAX_DEPTH {
            return Err(err_at(
                start,
                format!("nesting deeper than {MAX_DEPTH} levels"),
            ));
        }
        self.spend(1, start)?;
        if anchor > 0 {
            self.reserve_anchor(anchor);
        }
        self.frames.push(Frame {
            kind,
            anchor,
            pos: Pos::new(pos),
            produced_before: self.produced,
            child_depth: 0,
        });
        Ok(())
    }

    fn close(&mut self, span: Span) -> Result<(), SyntaxError> {
        let at = self.byte(span.start.index());
        let Some(frame) = self.frames.pop() else {
            return Err(err_at(at, "unbalanced YAML collection"));
        };
        let value = match frame.kind {
            Kind::Seq(items) => Value::Array(items),
            Kind::Map { map, key: None, .. } => Value::Object(map),
            // Unreachable with a well-behaved parser: a key is always followed by a value.
            Kind::Map { key: Some(_), .. } => {
                return Err(err_at(at, "mapping key without a value"));
            }
        };
        let depth = frame.child_depth + 1;
        let units = self
            .produced
            .saturating_sub(frame.produced_before)
            .saturating_add(1);
        if frame.anchor > 0 {
            self.store_anchor(frame.anchor, &value, units, depth, at)?;
        }
        self.deliver(value, frame.pos, depth)
    }

    fn scalar(
        &mut self,
        text: Cow<'_, str>,
        style: ScalarStyle,
        anchor: usize,
        tag: Option<&Tag>,
        span: Span,
    ) -> Result<(), SyntaxError> {
        let at = self.byte(span.start.index());
        let tag = self.core_tag(tag, span)?;
        let plain = style == ScalarStyle::Plain;
        if plain && tag.is_none() && text == "<<" && self.expecting_key() {
            return Err(err_at(at, "merge keys (`<<`) are not allowed"));
        }
        let value = match tag {
            None if plain => resolve_plain(&text).map_err(|m| err_at(at, m))?,
            None | Some(CoreTag::Str) => Value::String(text.into()),
            Some(t @ (CoreTag::Map | CoreTag::Seq)) => {
                return Err(tag_mismatch(at, Some(t), "a scalar"));
            }
            Some(t) => resolve_tagged(&text, t).map_err(|m| err_at(at, m))?,
        };
        let units = 1 + string_units(&value);
        self.spend(units, at)?;
        if anchor > 0 {
            self.reserve_anchor(anchor);
            self.store_anchor(anchor, &value, units, 0, at)?;
        }
        self.deliver(value, Pos::new(at), 0)
    }

    fn alias(&mut self, id: usize, span: Span) -> Result<(), SyntaxError> {
        let at = self.byte(span.start.index());
        let Some(Some(anchor)) = self.anchors.get(id) else {
            return Err(err_at(
                at,
                "alias refers to an anchor that is still being defined",
            ));
        };
        let (units, depth) = (anchor.units, anchor.depth);
        if self.frames.len() + depth > MAX_DEPTH {
            return Err(err_at(
                at,
                format!("nesting deeper than {MAX_DEPTH} levels"),
            ));
        }
        self.spend(units, at)?;
        let value = match self.anchors.get(id) {
            Some(Some(anchor)) => anchor.value.clone(),
            _ => Value::Null,
        };
        self.deliver(value, Pos::new(at), depth)
    }

    fn reserve_anchor(&mut self, id: usize) {
        if self.anchors.len() <= id {
            self.anchors.resize_with(id + 1, || None);
        }
    }

    fn store_anchor(
        &mut self,
        id: usize,
        value: &Value,
        units: usize,
        depth: usize,
        at: usize,
    ) -> Result<(), SyntaxError> {
        // The copy kept for the anchor costs as much as the value.
        self.spend_copy(units, at)?;
        self.reserve_anchor(id);
        if let Some(slot) = self.anchors.get_mut(id) {
            *slot = Some(Anchor {
                value: value.clone(),
                units,
                depth,
            });
        }
        Ok(())
    }

    /// Hands a finished value to the collection being read (or makes it the document).
    fn deliver(&mut self, value: Value, pos: Pos, depth: usize) -> Result<(), SyntaxError> {
        let Some(frame) = self.frames.last_mut() else {
            self.root = Some(value);
            return Ok(());
        };
        frame.child_depth = frame.child_depth.max(depth);
        let Kind::Map { map, key, seen } = &mut frame.kind else {
            if let Kind::Seq(items) = &mut frame.kind {
                items.push(value);
            }
            return Ok(());
        };
        if let Some((k, key_pos)) = key.take() {
            map.push_entry(Entry {
                key: k,
                value,
                key_pos,
                value_pos: pos,
            });
            return Ok(());
        }
        let Value::String(k) = value else {
            return Err(SyntaxError {
                message: "keys must be strings".into(),
                pos,
            });
        };
        // Small maps: linear scan. Large ones: a hash set, so hostile input stays linear.
        let dup = match seen {
            Some(set) => !set.insert(k.clone()),
            None if map.len() >= LINEAR_KEY_SCAN => {
                let mut set: HashSet<Str> = map.keys().map(Str::new).collect();
                let dup = !set.insert(k.clone());
                *seen = Some(set);
                dup
            }
            None => map.contains_key(&k),
        };
        if dup {
            return Err(SyntaxError {
                message: format!("duplicate key `{k}`"),
                pos,
            });
        }
        *key = Some((k, pos));
        Ok(())
    }
}

fn tag_mismatch(at: usize, tag: Option<CoreTag>, what: &str) -> SyntaxError {
    let name = tag.map_or("?", CoreTag::name);
    err_at(at, format!("tag `{name}` cannot be used on {what}"))
}

/// Extra work units for the bytes of a string value (one per 32 bytes).
fn string_units(v: &Value) -> usize {
    match v {
        Value::String(s) => string_units_of(s),
        _ => 0,
    }
}

fn string_units_of(s: &str) -> usize {
    s.len() / 32
}

const NAN_INF: &str = "NaN and infinity are not allowed";

/// Resolves a plain scalar with the YAML 1.2 core schema.
fn resolve_plain(s: &str) -> Result<Value, String> {
    if let Some(v) = resolve_null(s).or_else(|| resolve_bool(s)) {
        return Ok(v);
    }
    if let Some(v) = resolve_int(s) {
        return v;
    }
    if is_core_float(s) {
        return parse_float(s);
    }
    if is_inf_or_nan(s) {
        return Err(NAN_INF.into());
    }
    Ok(Value::String(Str::new(s)))
}

/// Resolves a scalar tagged `!!int`, `!!float`, `!!bool` or `!!null`.
fn resolve_tagged(s: &str, tag: CoreTag) -> Result<Value, String> {
    let v = match tag {
        CoreTag::Null => resolve_null(s).map(Ok),
        CoreTag::Bool => resolve_bool(s).map(Ok),
        CoreTag::Int => resolve_int(s),
        CoreTag::Float if is_inf_or_nan(s) => Some(Err(NAN_INF.into())),
        CoreTag::Float => is_core_float(s).then(|| parse_float(s)),
        CoreTag::Str | CoreTag::Map | CoreTag::Seq => Some(Ok(Value::String(Str::new(s)))),
    };
    v.unwrap_or_else(|| match s {
        "" => Err(format!(
            "an empty scalar is not a valid `{}` value",
            tag.name()
        )),
        _ => Err(format!(
            "`{}` is not a valid `{}` value",
            shown(s),
            tag.name()
        )),
    })
}

/// A scalar as quoted in a message: escaped, and cut after 40 characters.
fn shown(s: &str) -> String {
    let mut out: String = s.chars().take(40).flat_map(char::escape_debug).collect();
    if s.chars().nth(40).is_some() {
        out.push('…');
    }
    out
}

fn resolve_null(s: &str) -> Option<Value> {
    matches!(s, "" | "~" | "null" | "Null" | "NULL").then_some(Value::Null)
}

fn resolve_bool(s: &str) -> Option<Value> {
    match s {
        "true" | "True" | "TRUE" => Some(Value::Bool(true)),
        "false" | "False" | "FALSE" => Some(Value::Bool(false)),
        _ => None,
    }
}

/// Core-schema integers: `[-+]?[0-9]+`, `0o[0-7]+`, `0x[0-9a-fA-F]+`. Integers beyond `i64`
/// become floats; beyond `f64`, an error.
fn resolve_int(s: &str) -> Option<Result<Value, String>> {
    let (digits, radix) = if let Some(d) = s.strip_prefix("0o") {
        (d, 8)
    } else if let Some(d) = s.strip_prefix("0x") {
        (d, 16)
    } else {
        let d = s.strip_prefix(['-', '+']).unwrap_or(s);
        (d, 10)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    Some(if radix == 10 {
        match s.parse::<i64>() {
            Ok(i) => Ok(Value::Int(i)),
            Err(_) => parse_float(s),
        }
    } else {
        match i64::from_str_radix(digits, radix) {
            Ok(i) => Ok(Value::Int(i)),
            Err(_) => {
                let f = digits
                    .chars()
                    .filter_map(|c| c.to_digit(radix))
                    .fold(0.0f64, |acc, d| acc * f64::from(radix) + f64::from(d));
                if f.is_finite() {
                    Ok(Value::Float(f))
                } else {
                    Err(format!("number `{}` is out of range", shown(s)))
                }
            }
        }
    })
}

/// Core-schema floats: `[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`.
fn is_core_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    let digits = |i: &mut usize| {
        let start = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i > start
    };
    if matches!(b.first(), Some(b'-' | b'+')) {
        i += 1;
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        if !digits(&mut i) {
            return false;
        }
    } else {
        if !digits(&mut i) {
            return false;
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            digits(&mut i);
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'-' | b'+')) {
            i += 1;
        }
        if !digits(&mut i) {
            return false;
        }
    }
    i == b.len()
}

/// `.inf`, `-.inf`, `+.inf`, `.nan` in any core-schema spelling.
fn is_inf_or_nan(s: &str) -> bool {
    let unsigned = s.strip_prefix(['-', '+']).unwrap_or(s);
    matches!(unsigned, ".inf" | ".Inf" | ".INF") || matches!(s, ".nan" | ".NaN" | ".NAN")
}

fn parse_float(s: &str) -> Result<Value, String> {
    match s.parse::<f64>() {
        Ok(f) if f.is_finite() => Ok(Value::Float(f)),
        _ => Err(format!("number `{}` is out of range", shown(s))),
    }
}

// ---------------------------------------------------------------------------------------------
// Writer
// ---------------------------------------------------------------------------------------------

fn indent(n: usize, out: &mut String) {
    for _ in 0..n {
        out.push(' ');
    }
}

/// `true` for values written as a nested block (non-empty mappings and sequences).
fn is_block(v: &Value) -> bool {
    match v {
        Value::Object(m) => !m.is_empty(),
        Value::Array(a) => !a.is_empty(),
        _ => false,
    }
}

/// Writes the entries of a non-empty mapping at column `col`. With `inline`, the first entry
/// continues the current line (after `- ` or `: `).
fn write_map(m: &Map, col: usize, inline: bool, out: &mut String) {
    let mut key = String::new();
    for (i, (k, v)) in m.iter().enumerate() {
        if i > 0 || !inline {
            indent(col, out);
        }
        key.clear();
        write_str(k, &mut key);
        if key.len() <= MAX_IMPLICIT_KEY {
            out.push_str(&key);
            out.push(':');
            match v {
                Value::Object(inner) if !inner.is_empty() => {
                    out.push('\n');
                    write_map(inner, col + 2, false, out);
                }
                Value::Array(items) if !items.is_empty() => {
                    out.push('\n');
                    write_seq(items, col, false, out);
                }
                _ => {
                    out.push(' ');
                    write_scalar(v, out);
                    out.push('\n');
                }
            }
        } else {
            // Explicit key: `? key` then `: value`, the value laid out like a sequence item.
            out.push_str("? ");
            out.push_str(&key);
            out.push('\n');
            indent(col, out);
            out.push_str(": ");
            write_item(v, col, out);
        }
    }
}

/// Writes the items of a non-empty sequence at column `col`.
fn write_seq(a: &[Value], col: usize, inline: bool, out: &mut String) {
    for (i, v) in a.iter().enumerate() {
        if i > 0 || !inline {
            indent(col, out);
        }
        out.push_str("- ");
        write_item(v, col, out);
    }
}

/// Writes a value that follows `- ` (or `: ` of an explicit key) at column `col`.
fn write_item(v: &Value, col: usize, out: &mut String) {
    match v {
        Value::Object(inner) if is_block(v) => write_map(inner, col + 2, true, out),
        Value::Array(items) if is_block(v) => write_seq(items, col + 2, true, out),
        _ => {
            write_scalar(v, out);
            out.push('\n');
        }
    }
}

/// Writes a scalar or an empty collection (flow style), without a newline.
fn write_scalar(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => out.push_str(itoa::Buffer::new().format(*i)),
        Value::Float(f) => write_float(*f, out),
        Value::String(s) => write_str(s, out),
        // Only empty collections get here; others are written as blocks by the callers.
        Value::Array(_) => out.push_str("[]"),
        Value::Object(_) => out.push_str("{}"),
    }
}

/// Writes a float as [`crate::json::write_float`] does, made friendly to YAML 1.1 readers
/// (PyYAML): the mantissa gets a `.` and the exponent a sign (`1e21` → `1.0e+21`). Both forms
/// are core-schema floats.
fn write_float(f: f64, out: &mut String) {
    let mut s = String::new();
    crate::json::write_float(f, &mut s);
    match s.split_once('e') {
        Some((mantissa, exp)) => {
            out.push_str(mantissa);
            if !mantissa.contains('.') {
                out.push_str(".0");
            }
            out.push('e');
            if !exp.starts_with(['-', '+']) {
                out.push('+');
            }
            out.push_str(exp);
        }
        None => out.push_str(&s),
    }
}

/// Writes a string plain when that is provably safe, else double-quoted.
fn write_str(s: &str, out: &mut String) {
    if is_plain_safe(s) {
        out.push_str(s);
    } else {
        write_quoted(s, out);
    }
}

/// `true` when `s` can be written as a plain scalar that every YAML reader (1.1 or 1.2, in
/// block context, as a key or a value, at any column) reads back as this exact string.
fn is_plain_safe(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    // Indicators, spaces and everything that could start a number (YAML 1.1 or 1.2), a
    // timestamp, `~`, `<<` (merge), `=` (value key), `---` or `...` (document markers).
    if first.is_ascii_digit()
        || matches!(
            first,
            ' ' | '-'
                | '+'
                | '.'
                | '?'
                | ':'
                | ','
                | '['
                | ']'
                | '{'
                | '}'
                | '#'
                | '&'
                | '*'
                | '!'
                | '|'
                | '>'
                | '\''
                | '"'
                | '%'
                | '@'
                | '`'
                | '~'
                | '<'
                | '='
        )
    {
        return false;
    }
    if s.ends_with([' ', ':']) || s.contains(": ") || s.contains(" #") {
        return false;
    }
    // Null and boolean words of YAML 1.2 and 1.1, in any case.
    const WORDS: [&str; 9] = ["null", "true", "false", "yes", "no", "on", "off", "y", "n"];
    if WORDS.iter().any(|w| s.eq_ignore_ascii_case(w)) {
        return false;
    }
    // Past the first character, flow indicators (`,[]{}`) are plain text in block context.
    s.chars().all(|c| match c {
        ' '..='~' => true,
        '\u{A0}'..='\u{D7FF}' => !matches!(c, '\u{2028}' | '\u{2029}'),
        '\u{E000}'..='\u{FFFD}' => c != '\u{FEFF}',
        '\u{10000}'.. => true,
        _ => false,
    })
}

/// Writes a double-quoted YAML string: JSON escapes, plus `\uXXXX` for the characters YAML does
/// not allow raw (DEL, C1 controls, U+FFFE, U+FFFF) or that YAML 1.1 readers take as line breaks
/// or byte-order marks (U+0085, U+2028, U+2029, U+FEFF).
fn write_quoted(s: &str, out: &mut String) {
    out.push('"');
    let mut run = 0;
    for (i, c) in s.char_indices() {
        let esc = match c {
            '"' => "\\\"",
            '\\' => "\\\\",
            '\n' => "\\n",
            '\r' => "\\r",
            '\t' => "\\t",
            '\u{8}' => "\\b",
            '\u{C}' => "\\f",
            '\u{0}'..='\u{1F}'
            | '\u{7F}'..='\u{9F}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{FEFF}'
            | '\u{FFFE}'
            | '\u{FFFF}' => "",
            _ => continue,
        };
        out.push_str(s.get(run..i).unwrap_or_default());
        if esc.is_empty() {
            out.push_str("\\u");
            let code = c as u32;
            for shift in [12, 8, 4, 0] {
                out.push(char::from_digit((code >> shift) & 15, 16).unwrap_or('0'));
            }
        } else {
            out.push_str(esc);
        }
        run = i + c.len_utf8();
    }
    out.push_str(s.get(run..).unwrap_or_default());
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn err(text: &str) -> SyntaxError {
        parse(text).expect_err(text)
    }

    fn has_err(text: &str, what: &str) {
        let e = err(text);
        assert!(
            e.message.contains(what),
            "{text:?}: expected {what:?}, got {e:?}"
        );
    }

    fn obj(pairs: &[(&str, Value)]) -> Value {
        Value::Object(pairs.iter().map(|(k, v)| (*k, v.clone())).collect())
    }

    fn s(text: &str) -> Value {
        Value::from(text)
    }

    #[test]
    fn errors_found_after_blank_lines_point_at_the_content() {
        // The scanner reports the missing `]` at the end of the stream, three blank lines on.
        let text = "name: x\nnodes: [1, 2\n\n\n";
        let e = err(text);
        assert_eq!(e.pos.offset(), Some("name: x\nnodes: [1, 2".len()), "{e:?}");
        // A position on a line with content stays where it is.
        assert_eq!(past_last_content("a: [1\nb: 2\n", 6), 6);
        assert_eq!(past_last_content("\n\n", 1), 1);
    }

    /// Reads `text`, writes it back and checks that the written text reads back equal.
    fn round_trip(text: &str) -> Value {
        let v = parse(text).unwrap();
        let out = to_string(&v);
        assert_eq!(parse(&out).unwrap(), v, "{out}");
        v
    }

    #[test]
    fn reads_and_rewrites_the_sdk_example() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/examples/all_sdk_nodes.yaml"
        );
        let Ok(text) = std::fs::read_to_string(path) else {
            return;
        };
        let v = round_trip(&text);
        let m = v.as_object().unwrap();
        assert_eq!(m.get("name"), Some(&s("Example Flow")));
        let nodes = m.get("nodes").unwrap().as_array().unwrap();
        assert!(nodes.len() > 5);
        // PyYAML's layout is reproduced except for its choice of quotes.
        let out = to_string(&v);
        assert!(out.starts_with("name: Example Flow\ndescription: All node types of the SDK\n"));
        assert!(out.contains("\nnodes:\n- id: start\n  type: flow-node\n  data:\n"));
        let unquoted = |t: &str| t.replace(['\'', '"', '\\'], "");
        assert_eq!(unquoted(&out), unquoted(&text));
    }

    #[test]
    fn plain_scalars_resolve_with_the_core_schema() {
        let cases: &[(&str, Value)] = &[
            ("null", Value::Null),
            ("Null", Value::Null),
            ("NULL", Value::Null),
            ("~", Value::Null),
            ("", Value::Null),
            ("true", Value::Bool(true)),
            ("True", Value::Bool(true)),
            ("FALSE", Value::Bool(false)),
            ("yes", s("yes")),
            ("No", s("No")),
            ("on", s("on")),
            ("off", s("off")),
            ("nULL", s("nULL")),
            ("0", Value::Int(0)),
            ("-0", Value::Int(0)),
            ("+12", Value::Int(12)),
            ("007", Value::Int(7)),
            ("-9223372036854775808", Value::Int(i64::MIN)),
            (
                "9223372036854775808",
                Value::Float(9_223_372_036_854_775_808.0),
            ),
            ("0o17", Value::Int(15)),
            ("0x1F", Value::Int(31)),
            (
                "0xffffffffffffffff",
                Value::Float(18_446_744_073_709_551_615.0),
            ),
            ("0o", s("0o")),
            ("0x", s("0x")),
            ("0x1g", s("0x1g")),
            ("-0x1", s("-0x1")),
            ("1_000", s("1_000")),
            ("0b101", s("0b101")),
            ("1.5", Value::Float(1.5)),
            ("1.", Value::Float(1.0)),
            (".5", Value::Float(0.5)),
            ("-.5e3", Value::Float(-500.0)),
            ("1e3", Value::Float(1000.0)),
            ("1.0e+21", Value::Float(1e21)),
            ("+1E-2", Value::Float(0.01)),
            ("1.e5", Value::Float(1e5)),
            ("-0.0", Value::Float(-0.0)),
            (".", s(".")),
            ("1e", s("1e")),
            ("e3", s("e3")),
            ("1:30", s("1:30")),
            ("2001-01-01", s("2001-01-01")),
            ("inf", s("inf")),
            ("nan", s("nan")),
            (".infinity", s(".infinity")),
            ("Greet {{vars.name}}", s("Greet {{vars.name}}")),
        ];
        for (text, want) in cases {
            let doc = format!("k: {text}\n");
            let v = parse(&doc).unwrap_or_else(|e| panic!("{doc:?}: {e:?}"));
            let got = v.as_object().unwrap().get("k").unwrap();
            assert_eq!(got, want, "{text:?}");
            assert_eq!(
                matches!(got, Value::Int(_)),
                matches!(want, Value::Int(_)),
                "int vs float for {text:?}"
            );
        }
    }

    #[test]
    fn quoted_and_block_scalars_are_strings() {
        let v = parse("a: '1'\nb: \"true\"\nc: |\n  null\nd: >-\n  1.5\ne: \"\"\n").unwrap();
        let want = obj(&[
            ("a", s("1")),
            ("b", s("true")),
            ("c", s("null\n")),
            ("d", s("1.5")),
            ("e", s("")),
        ]);
        assert_eq!(v, want);
        assert_eq!(parse("'x'").unwrap(), s("x"));
        assert_eq!(parse("---\n").unwrap(), Value::Null);
        assert_eq!(
            parse("\u{feff}a: 1\n").unwrap(),
            obj(&[("a", Value::Int(1))])
        );
    }

    #[test]
    fn core_tags_are_honoured_and_others_rejected() {
        let v = parse(
            "a: !!str 123\nb: !!int \"12\"\nc: !!float 1\nd: !!bool true\ne: !!null ''\n\
             f: !!map {x: 1}\ng: !!seq [1]\nh: !<tag:yaml.org,2002:str> 5\n!!str 7: x\n",
        )
        .unwrap();
        let want = obj(&[
            ("a", s("123")),
            ("b", Value::Int(12)),
            ("c", Value::Float(1.0)),
            ("d", Value::Bool(true)),
            ("e", Value::Null),
            ("f", obj(&[("x", Value::Int(1))])),
            ("g", Value::Array(vec![Value::Int(1)])),
            ("h", s("5")),
            ("7", s("x")),
        ]);
        assert_eq!(v, want);
        for text in [
            "a: !foo x",
            "a: !!binary aGk=",
            "a: !!set {x}",
            "a: ! x",
            "!foo\na: 1",
        ] {
            has_err(text, "YAML tags are not allowed");
        }
        has_err("a: !!int x", "`x` is not a valid `!!int` value");
        has_err("a: !!int\n", "an empty scalar is not a valid `!!int` value");
        has_err("a: !!int \"1\\n2\"", "`1\\n2` is not a valid `!!int` value");
        has_err("a: !!bool yes", "not a valid `!!bool`");
        has_err("a: !!float 0x1", "not a valid `!!float`");
        has_err("a: !!float .inf", "NaN and infinity");
        has_err("a: !!map x", "cannot be used on a scalar");
        has_err("a: !!seq {x: 1}", "cannot be used on a mapping");
        has_err("a: !!str [1]", "cannot be used on a sequence");
        has_err("!!int 1: x", "keys must be strings");
    }

    #[test]
    fn rejects_what_the_format_forbids() {
        for text in ["", "# only a comment\n", "\n\n"] {
            assert_eq!(err(text).message, "empty document");
        }
        let e = err("a: 1\n---\nb: 2\n");
        assert_eq!(e.message, "several YAML documents (expected one)");
        assert_eq!(e.pos, Pos::new(5));
        has_err("a: 1\n...\n---\n", "several YAML documents");
        has_err(
            "a: &x {b: 1}\nc:\n  <<: *x\n",
            "merge keys (`<<`) are not allowed",
        );
        assert_eq!(parse("'<<': 1").unwrap(), obj(&[("<<", Value::Int(1))]));
        for text in [
            "1: x",
            "true: x",
            "~: x",
            ": x",
            "? [a]\n: x",
            "{a: 1}: x",
            "1.5: x",
        ] {
            has_err(text, "keys must be strings");
        }
        assert_eq!(parse("'1': x").unwrap(), obj(&[("1", s("x"))]));
        for text in [".inf", "-.Inf", "+.INF", ".nan", ".NaN", "a: .NAN"] {
            assert_eq!(
                err(text).message,
                "NaN and infinity are not allowed",
                "{text}"
            );
        }
        has_err("1e999", "out of range");
        has_err(
            &"9".repeat(400),
            &format!("number `{}…` is out of range", "9".repeat(40)),
        );
        has_err(&format!("0x{}", "f".repeat(300)), "out of range");
        has_err("a: *nope", "unknown anchor");
        has_err("a: \u{0}", "non-printable character U+0000");
        has_err("a: \"\u{1}\"", "non-printable");
        has_err("a: \u{9c}", "non-printable");
    }

    #[test]
    fn duplicate_keys_are_found_in_small_and_large_maps() {
        let e = err("a: 1\nb: 2\na: 3\n");
        assert_eq!(e.message, "duplicate key `a`");
        assert_eq!(e.pos, Pos::new(10));
        let mut big: String = (0..40).map(|i| format!("k{i}: {i}\n")).collect();
        assert_eq!(parse(&big).unwrap().as_object().unwrap().len(), 40);
        big.push_str("k3: 0\n");
        assert_eq!(err(&big).message, "duplicate key `k3`");
        assert_eq!(err(&big).pos, Pos::new(big.len() - 6));
        has_err("{a: 1, a: 2}", "duplicate key `a`");
        has_err("a: 1\n'a': 2", "duplicate key `a`");
    }

    #[test]
    fn anchors_and_aliases_are_resolved() {
        let v =
            parse("base: &b\n  x: 1\n  y: [a, b]\ncopy: *b\ns: &s hi\nt: *s\n*s : k\n").unwrap();
        let m = v.as_object().unwrap();
        assert_eq!(m.get("copy"), m.get("base"));
        assert_eq!(m.get("t"), Some(&s("hi")));
        assert_eq!(m.get("hi"), Some(&s("k")));
        has_err("a: &a [1, *a]", "still being defined");
        has_err("a: &a [1]\n*a : x", "keys must be strings");
        // Anchors may be redefined: an alias refers to the latest definition.
        let v = parse("- &a 1\n- *a\n- &a 2\n- *a\n").unwrap();
        let want: Vec<Value> = [1, 1, 2, 2].into_iter().map(Value::Int).collect();
        assert_eq!(v, Value::Array(want));
    }

    #[test]
    fn positions_are_byte_offsets_even_after_non_ascii_text() {
        let text = "# ümlaut ✓\né: 1\nkey: ünï\nlist:\n- a\n- b\nind:\n  - c\n\
                    map:\n  x: 1\nflow: {y: 2}\nq: 'ß'\n\"dq\": &an [1]\n";
        let v = parse(text).unwrap();
        let at = |needle: &str| Pos::new(text.find(needle).unwrap());
        let m = v.as_object().unwrap();
        assert_eq!(m.pos, at("é: 1"));
        let e = m.entry("key").unwrap();
        assert_eq!((e.key_pos, e.value_pos), (at("key"), at("ünï")));
        assert_eq!(m.entry("list").unwrap().value_pos, at("- a"));
        assert_eq!(m.entry("ind").unwrap().value_pos, at("- c"));
        let e = m.entry("map").unwrap();
        assert_eq!(e.value_pos, at("x: 1"));
        assert_eq!(e.value.pos(), at("x: 1"));
        assert_eq!(
            m.get("map")
                .unwrap()
                .as_object()
                .unwrap()
                .entry("x")
                .unwrap()
                .key_pos,
            at("x")
        );
        assert_eq!(m.entry("flow").unwrap().value_pos, at("{y"));
        assert_eq!(m.get("flow").unwrap().pos(), at("{y"));
        assert_eq!(
            m.entry("flow")
                .unwrap()
                .value
                .as_object()
                .unwrap()
                .entry("y")
                .unwrap()
                .key_pos,
            at("y: 2")
        );
        assert_eq!(m.entry("q").unwrap().value_pos, at("'ß'"));
        let e = m.entry("dq").unwrap();
        assert_eq!((e.key_pos, e.value_pos), (at("\"dq\""), at("&an")));
        assert_eq!(v.pos_at("/map/x"), at("1\nflow"));

        // Errors too.
        let e = err("ü: 1\nñ: 2\nü: 3\n");
        assert_eq!(e.pos, Pos::new("ü: 1\nñ: 2\n".len()));
        let e = err("ü✓😀: 1\n→: .inf\n");
        assert_eq!(e.pos, Pos::new("ü✓😀: 1\n→: ".len()));
        // A scanner error: the parser reports a character index, we report the byte offset.
        for text in ["ü✓😀: [a, b\n", "é: x\n\tç: d\n", "ö: 'x\n"] {
            let e = err(text);
            let char_index = saphyr_parser::Parser::new_from_str(text)
                .find_map(Result::err)
                .map(|e| e.marker().index())
                .unwrap();
            let byte = text
                .char_indices()
                .nth(char_index)
                .map_or(text.len(), |(b, _)| b);
            // (An error past the last content is shown just after it, at the end of its line.)
            assert_eq!(e.pos, Pos::new(past_last_content(text, byte)), "{text:?}");
            assert!(
                byte != text.len() || e.pos == Pos::new(text.len() - 1),
                "{text:?}"
            );
            assert!(e.message.chars().next().unwrap().is_lowercase(), "{e:?}");
        }
        // Windows line endings.
        let text = "a: 1\r\nbé: x\r\n";
        let v = parse(text).unwrap();
        let e = v.as_object().unwrap().entry("bé").unwrap();
        assert_eq!((e.key_pos, e.value_pos), (Pos::new(6), Pos::new(11)));
    }

    #[test]
    fn pathological_inputs_fail_cleanly() {
        // Deep nesting, flow and block.
        has_err(&"[".repeat(100_000), "nesting deeper than 255 flow levels");
        has_err(
            &"{a: ".repeat(10_000),
            "nesting deeper than 255 flow levels",
        );
        has_err(
            &format!("{}x", "- ".repeat(MAX_DEPTH + 1)),
            "nesting deeper than 256 levels",
        );
        assert!(parse(&format!("{}x", "- ".repeat(MAX_DEPTH))).is_ok());
        let mixed = format!(
            "{}{}x{}",
            "- ".repeat(100),
            "[".repeat(156),
            "]".repeat(156)
        );
        assert!(parse(&mixed).is_ok());
        has_err(&format!("- {mixed}"), "nesting deeper than 256 levels");
        // Aliases cannot build a tree deeper than the limit either.
        let deep = format!(
            "a: &a {}1{}\nb: [[[[[*a]]]]]\n",
            "[".repeat(254),
            "]".repeat(254)
        );
        has_err(&deep, "nesting deeper than 256");
        // Billion laughs.
        let mut bomb = String::from("a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
        for (prev, name) in ["a", "b", "c", "d", "e", "f", "g", "h"]
            .iter()
            .zip(["b", "c", "d", "e", "f", "g", "h", "i"])
        {
            let refs = vec![format!("*{prev}"); 9].join(", ");
            bomb.push_str(&format!("{name}: &{name} [{refs}]\n"));
        }
        has_err(&bomb, "size budget");
        // Long strings repeated by aliases.
        let long = format!(
            "s: &s {}\nl: [{}]\n",
            "x".repeat(100_000),
            vec!["*s"; 100_000].join(", ")
        );
        has_err(&long, "size budget");
        // Nested anchors are fine as long as the total stays bounded.
        let nested = format!("a: {}1{}\n", "&x [".repeat(200), "]".repeat(200));
        assert!(parse(&nested).is_ok());
        // Bad indentation, tabs, unterminated things.
        for text in [
            "a:\n  b: 1\n c: 2\n",
            "a:\n\tb: 1\n",
            "\ta: 1\n",
            "a: [1, 2\n",
            "a: \"x\n",
            "- a\nb: c\n",
            "a: b: c\n",
            "? a\n? a\n",
            "&a\n",
            "*",
            "!",
            "%YAML 1.2\n",
            "a: 1\n--- x\n... y",
            "[a, b]]",
            "{a: 1}}",
            "a: |\n x\n  y\n z",
            "'\u{feff}",
        ] {
            let _ = parse(text);
        }
        has_err("a:\n\tb: 1\n", "tab");
        // A huge key count stays fast (duplicate detection uses a hash set).
        let many: String = (0..200_000).map(|i| format!("k{i}: {i}\n")).collect();
        assert_eq!(parse(&many).unwrap().as_object().unwrap().len(), 200_000);
        has_err(&format!("{many}k199999: 1\n"), "duplicate key `k199999`");
    }

    #[test]
    fn writes_pyyaml_block_layout() {
        let v = obj(&[
            ("name", s("Flow")),
            ("description", Value::Null),
            (
                "nodes",
                Value::Array(vec![
                    obj(&[
                        ("id", s("start")),
                        (
                            "data",
                            obj(&[("config", obj(&[])), ("list", Value::Array(vec![]))]),
                        ),
                    ]),
                    Value::Array(vec![
                        Value::Int(1),
                        Value::Array(vec![Value::Int(2), Value::Int(3)]),
                    ]),
                    Value::Array(vec![obj(&[
                        ("a", Value::Bool(true)),
                        ("b", Value::Float(1.5)),
                    ])]),
                    s("x"),
                ]),
            ),
            (
                "nested",
                obj(&[("deep", obj(&[("items", Value::Array(vec![s("yes")]))]))]),
            ),
        ]);
        let want = "\
name: Flow
description: null
nodes:
- id: start
  data:
    config: {}
    list: []
- - 1
  - - 2
    - 3
- - a: true
    b: 1.5
- x
nested:
  deep:
    items:
    - \"yes\"
";
        assert_eq!(to_string(&v), want);
        assert_eq!(parse(want).unwrap(), v);
        assert_eq!(to_string(&Value::Null), "null\n");
        assert_eq!(to_string(&obj(&[])), "{}\n");
        assert_eq!(to_string(&Value::Array(vec![])), "[]\n");
        assert_eq!(to_string(&s("no")), "\"no\"\n");
        assert_eq!(to_string(&Value::Int(-7)), "-7\n");
    }

    #[test]
    fn writes_floats_that_read_back_as_floats() {
        for (f, text) in [
            (1.0, "1.0"),
            (-0.0, "-0.0"),
            (0.1, "0.1"),
            (1e21, "1.0e+21"),
            (1.5e300, "1.5e+300"),
            (1e-7, "1.0e-7"),
            (5e-324, "5.0e-324"),
            (f64::MAX, "1.7976931348623157e+308"),
        ] {
            assert_eq!(to_string(&Value::Float(f)), format!("{text}\n"));
            assert!(is_core_float(text), "{text}");
            assert_eq!(parse(text).unwrap(), Value::Float(f));
        }
    }

    #[test]
    fn quotes_strings_only_when_needed() {
        let plain = [
            "hello world",
            "a:b",
            "https://api.example.com/orders/{{order_id}}",
            "Greet {{vars.name}}",
            "é ✓ 😀",
            "C#",
            "don't",
            "a, b",
            "a - b",
            "Why? Because!",
            "$ai",
            "parameters.2",
            "claude-sonnet-4-20250514",
            "x~",
            "a=b",
            "back\\slash",
            "\\",
        ];
        for t in plain {
            assert_eq!(to_string(&s(t)), format!("{t}\n"), "{t:?}");
        }
        let quoted = [
            "",
            " a",
            "a ",
            "- x",
            "-x",
            "-",
            "yes",
            "No",
            "ON",
            "off",
            "y",
            "N",
            "~",
            "null",
            "True",
            "1",
            "1.5",
            "1_000",
            "0o7",
            "0x1f",
            ".5",
            "1e3",
            "2001-01-01",
            "1:30",
            "+1",
            ".inf",
            ".nan",
            "#x",
            "a: b",
            "a #b",
            "a:",
            "'",
            "\"",
            "{x}",
            "[x]",
            "*a",
            "&a",
            "!a",
            "|",
            ">",
            "%",
            "@a",
            "`a",
            "<<",
            "=",
            "---",
            "...",
            "?x",
            ",x",
            ":x",
            "\t",
            "a\tb",
            "a\nb",
            "\u{85}",
            "\u{2028}",
            "\u{2029}",
            "\u{feff}",
            "\u{7f}",
            "\u{9f}",
        ];
        for t in quoted {
            let out = to_string(&s(t));
            assert!(out.starts_with('"'), "{t:?} written as {out:?}");
            assert_eq!(parse(&out).unwrap(), s(t), "{out:?}");
        }
        assert_eq!(
            to_string(&s("a\"b\\c\n\u{1}\u{85}\u{2028}\u{feff}\u{ffff}é")),
            "\"a\\\"b\\\\c\\n\\u0001\\u0085\\u2028\\ufeff\\uffffé\"\n"
        );
        // Keys follow the same rules.
        let v = obj(&[
            ("1", s("one")),
            ("yes", Value::Null),
            ("a b", Value::Int(1)),
        ]);
        assert_eq!(to_string(&v), "\"1\": one\n\"yes\": null\na b: 1\n");
    }

    #[test]
    fn long_keys_are_written_as_explicit_keys() {
        let long = "k".repeat(2000);
        let quoted_long = format!("{}\n", "é\"".repeat(300));
        for key in [long.as_str(), quoted_long.as_str()] {
            for value in [
                s("v"),
                obj(&[("a", Value::Int(1)), ("b", Value::Array(vec![Value::Null]))]),
                Value::Array(vec![Value::Int(1), obj(&[("c", Value::Int(2))])]),
                obj(&[]),
            ] {
                let v = obj(&[(key, value.clone()), ("next", Value::Bool(false))]);
                let out = to_string(&v);
                assert!(out.starts_with("? "), "{out}");
                assert_eq!(parse(&out).unwrap(), v, "{out}");
                let in_list = Value::Array(vec![v.clone(), v]);
                assert_eq!(parse(&to_string(&in_list)).unwrap(), in_list);
            }
        }
    }

    fn arb_string() -> impl Strategy<Value = String> {
        const EDGE: &[&str] = &[
            "",
            " a",
            "a ",
            "- x",
            "yes",
            "null",
            "1",
            "1.5",
            "#x",
            "a: b",
            "a #b",
            "'",
            "\"",
            "\\",
            "\t",
            "\n",
            "\r\n",
            "\u{85}",
            "\u{2028}",
            "\u{feff}",
            "\u{a0}",
            "~",
            "<<",
            "---",
            "...",
            "? ",
            ": ",
            "{",
            "}",
            "[",
            "]",
            ",",
            "&a",
            "*a",
            "!t",
            "|",
            ">",
            "%",
            "@",
            "`",
            "0x1",
            "0o7",
            ".inf",
            "1e3",
            "2001-01-01",
            "é",
            "😀",
            "\u{0}",
            "\u{7f}",
            "\u{ffff}",
        ];
        prop_oneof![
            proptest::sample::select(EDGE).prop_map(str::to_owned),
            proptest::collection::vec(proptest::sample::select(EDGE), 0..5)
                .prop_map(|parts| parts.concat()),
            "[ -~]{0,12}",
            "[a-z0-9 :#\\-?,.\\[\\]{}'\"\u{a0}é]{0,10}",
            any::<String>(),
        ]
    }

    fn arb_float() -> impl Strategy<Value = f64> {
        prop_oneof![
            proptest::sample::select(vec![
                0.0,
                -0.0,
                1.0,
                0.1,
                1e300,
                -1e300,
                5e-324,
                1e21,
                1e-7,
                f64::MAX,
                f64::MIN_POSITIVE,
                9_223_372_036_854_775_808.0,
            ]),
            any::<f64>().prop_filter("finite", |f| f.is_finite()),
        ]
    }

    fn arb_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::Int),
            proptest::sample::select(vec![0, -1, i64::MIN, i64::MAX]).prop_map(Value::Int),
            arb_float().prop_map(Value::Float),
            arb_string().prop_map(Value::from),
        ];
        leaf.prop_recursive(5, 64, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::vec((arb_string(), inner), 0..6)
                    .prop_map(|entries| Value::Object(entries.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn every_value_round_trips(v in arb_value()) {
            let text = to_string(&v);
            prop_assert!(text.ends_with('\n'));
            let back = parse(&text);
            prop_assert_eq!(back.as_ref(), Ok(&v), "{}", text);
            // Int and Float stay apart (PartialEq already distinguishes them) and writing is
            // deterministic.
            prop_assert_eq!(to_string(&back.unwrap()), text);
        }

        #[test]
        fn arbitrary_text_never_panics(text in "[-:?,\\[\\]{}#&*!|>'\"%@ \n\t.0-9ab~<=é\\\\]{0,40}") {
            if let Ok(v) = parse(&text) {
                let out = to_string(&v);
                prop_assert_eq!(parse(&out), Ok(v), "{:?} -> {}", text, out);
            }
        }
    }
}
