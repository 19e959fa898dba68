//! The document value: an ordered JSON value that remembers where each part came from.
//!
//! A flow file is kept as a [`Value`] tree so that it can be written back exactly as read (key
//! order, explicit `null`s, alias spellings, integers versus floats). Objects are [`Map`]s: an
//! insertion-ordered list of entries, each with the byte offsets of its key and value in the
//! source text ([`Pos`]). Positions never take part in equality.

use std::fmt;

/// The string type of documents: strings of up to 24 bytes are stored inline (most keys, ids,
/// labels and node types), longer ones on the heap. It dereferences to `str`.
pub type Str = compact_str::CompactString;

/// A byte offset into the source text, or [`Pos::NONE`] for values that were not read from a file.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Pos(u32);

impl Pos {
    /// The position of a value that was built in memory, not read from a file.
    pub const NONE: Pos = Pos(u32::MAX);

    /// A position at byte `offset` (offsets beyond `u32::MAX - 1` are clamped).
    pub fn new(offset: usize) -> Pos {
        Pos(u32::try_from(offset)
            .unwrap_or(u32::MAX - 1)
            .min(u32::MAX - 1))
    }

    /// The byte offset, or `None` for [`Pos::NONE`].
    pub fn offset(self) -> Option<usize> {
        (self != Pos::NONE).then_some(self.0 as usize)
    }

    /// `self` when known, else `other`.
    pub fn or(self, other: Pos) -> Pos {
        if self == Pos::NONE { other } else { self }
    }
}

impl fmt::Debug for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.offset() {
            Some(o) => write!(f, "@{o}"),
            None => f.write_str("@-"),
        }
    }
}

/// A JSON value. Integers that fit in `i64` stay integers; every other number is an `f64`.
#[derive(Clone, Debug, Default)]
pub enum Value {
    /// `null`
    #[default]
    Null,
    /// `true` / `false`
    Bool(bool),
    /// An integer that fits in `i64`.
    Int(i64),
    /// Any other (finite) number.
    Float(f64),
    /// A string.
    String(Str),
    /// An array.
    Array(Vec<Value>),
    /// An object with ordered keys.
    Object(Map),
}

impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Value::Null, Value::Null) => true,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Int(a), Value::Int(b)) => a == b,
            (Value::Float(a), Value::Float(b)) => a == b || (a.is_nan() && b.is_nan()),
            (Value::String(a), Value::String(b)) => a == b,
            (Value::Array(a), Value::Array(b)) => a == b,
            (Value::Object(a), Value::Object(b)) => a == b,
            _ => false,
        }
    }
}

impl Value {
    /// The JSON type name of this value, as used in diagnostics (`"string"`, `"object"`, …).
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Int(_) => "integer",
            Value::Float(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        }
    }

    /// The string, when this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The object, when this is an object.
    pub fn as_object(&self) -> Option<&Map> {
        match self {
            Value::Object(m) => Some(m),
            _ => None,
        }
    }

    /// The object, mutably, when this is an object.
    pub fn as_object_mut(&mut self) -> Option<&mut Map> {
        match self {
            Value::Object(m) => Some(m),
            _ => None,
        }
    }

    /// The array, when this is an array.
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    /// The boolean, when this is a boolean.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The number as `f64`, when this is a number.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            _ => None,
        }
    }

    /// The number as `i64`, when this is an integer (or a float with an integral value in range).
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Some(*f as i64),
            _ => None,
        }
    }

    /// `true` for `null`.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// `true` for the AI-field marker: an object whose only key is `$ai`.
    pub fn is_ai_marker(&self) -> bool {
        matches!(self, Value::Object(m) if m.len() == 1 && m.contains_key("$ai"))
    }

    /// The position of an object's opening brace (objects only; other values carry no position
    /// of their own: ask the enclosing [`Map`] entry).
    pub fn pos(&self) -> Pos {
        match self {
            Value::Object(m) => m.pos,
            _ => Pos::NONE,
        }
    }

    /// Follows an RFC 6901 JSON pointer (`""` is the value itself).
    pub fn pointer(&self, pointer: &str) -> Option<&Value> {
        if pointer.is_empty() {
            return Some(self);
        }
        let rest = pointer.strip_prefix('/')?;
        let mut cur = self;
        for token in rest.split('/') {
            let token = unescape_token(token);
            cur = match cur {
                Value::Object(m) => m.get(&token)?,
                Value::Array(a) => a.get(parse_index(&token)?)?,
                _ => return None,
            };
        }
        Some(cur)
    }

    /// The best known source position for a JSON pointer: the position of the value it names, or,
    /// when that value has none or does not exist, of its nearest ancestor that has one.
    pub fn pos_at(&self, pointer: &str) -> Pos {
        let mut best = self.pos();
        let Some(rest) = pointer.strip_prefix('/') else {
            return best;
        };
        let mut cur = self;
        for token in rest.split('/') {
            let token = unescape_token(token);
            match cur {
                Value::Object(m) => match m.entry(&token) {
                    Some(e) => {
                        best = e.value_pos.or(e.key_pos).or(best);
                        cur = &e.value;
                    }
                    None => return best,
                },
                Value::Array(a) => match parse_index(&token).and_then(|i| a.get(i)) {
                    Some(v) => {
                        best = v.pos().or(best);
                        cur = v;
                    }
                    None => return best,
                },
                _ => return best,
            }
        }
        best
    }

    /// Converts to a `serde_json::Value` (positions are dropped).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Int(i) => serde_json::Value::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            Value::String(s) => serde_json::Value::String(s.to_string()),
            Value::Array(a) => serde_json::Value::Array(a.iter().map(Value::to_json).collect()),
            Value::Object(m) => serde_json::Value::Object(
                m.iter().map(|(k, v)| (k.to_owned(), v.to_json())).collect(),
            ),
        }
    }
}

fn parse_index(token: &str) -> Option<usize> {
    if token.is_empty() || (token.len() > 1 && token.starts_with('0')) {
        return None;
    }
    token.parse().ok()
}

fn unescape_token(token: &str) -> std::borrow::Cow<'_, str> {
    if token.contains('~') {
        token.replace("~1", "/").replace("~0", "~").into()
    } else {
        token.into()
    }
}

/// Escapes one reference token of a JSON pointer (`~` → `~0`, `/` → `~1`).
pub fn escape_pointer_token(token: &str) -> std::borrow::Cow<'_, str> {
    if token.contains(['~', '/']) {
        token.replace('~', "~0").replace('/', "~1").into()
    } else {
        token.into()
    }
}

impl From<serde_json::Value> for Value {
    fn from(v: serde_json::Value) -> Self {
        match v {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => Value::Int(i),
                None => Value::Float(n.as_f64().unwrap_or(0.0)),
            },
            serde_json::Value::String(s) => Value::String(Str::from(s)),
            serde_json::Value::Array(a) => Value::Array(a.into_iter().map(Value::from).collect()),
            serde_json::Value::Object(o) => {
                Value::Object(o.into_iter().map(|(k, v)| (k, Value::from(v))).collect())
            }
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(Str::new(s))
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(Str::from(s))
    }
}
impl From<Str> for Value {
    fn from(s: Str) -> Self {
        Value::String(s)
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}
impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}
impl From<i32> for Value {
    fn from(i: i32) -> Self {
        Value::Int(i.into())
    }
}
impl From<u32> for Value {
    fn from(i: u32) -> Self {
        Value::Int(i.into())
    }
}
impl From<f64> for Value {
    fn from(f: f64) -> Self {
        Value::Float(f)
    }
}
impl From<Map> for Value {
    fn from(m: Map) -> Self {
        Value::Object(m)
    }
}
impl From<Vec<Value>> for Value {
    fn from(a: Vec<Value>) -> Self {
        Value::Array(a)
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(o: Option<T>) -> Self {
        o.map_or(Value::Null, Into::into)
    }
}

/// One key/value pair of a [`Map`], with the source positions of the key and of the value.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The key.
    pub key: Str,
    /// The value.
    pub value: Value,
    /// Where the key starts in the source (its opening quote, or the plain scalar).
    pub key_pos: Pos,
    /// Where the value starts in the source.
    pub value_pos: Pos,
}

/// An insertion-ordered JSON object. Keys are unique.
#[derive(Clone, Debug, Default)]
pub struct Map {
    entries: Vec<Entry>,
    /// Where the object starts in the source (`{`, or its first key in block YAML).
    pub pos: Pos,
}

impl PartialEq for Map {
    fn eq(&self, other: &Self) -> bool {
        self.entries.len() == other.entries.len()
            && self
                .entries
                .iter()
                .zip(&other.entries)
                .all(|(a, b)| a.key == b.key && a.value == b.value)
    }
}

impl Map {
    /// An empty map with no source position.
    pub fn new() -> Map {
        Map {
            entries: Vec::new(),
            pos: Pos::NONE,
        }
    }

    /// An empty map with room for `n` entries.
    pub fn with_capacity(n: usize, pos: Pos) -> Map {
        Map {
            entries: Vec::with_capacity(n),
            pos,
        }
    }

    /// A map of entries read from a source; the caller guarantees the keys are unique.
    pub(crate) fn from_entries(entries: Vec<Entry>, pos: Pos) -> Map {
        Map { entries, pos }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// `true` when the map has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entry for `key`.
    pub fn entry(&self, key: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.key == key)
    }

    /// The value for `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.entry(key).map(|e| &e.value)
    }

    /// The value for `key`, mutably.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        self.entries
            .iter_mut()
            .find(|e| e.key == key)
            .map(|e| &mut e.value)
    }

    /// `true` when `key` is present (even with a `null` value).
    pub fn contains_key(&self, key: &str) -> bool {
        self.entry(key).is_some()
    }

    /// Sets `key` to `value`: an existing entry keeps its place, a new one goes last.
    /// Returns the previous value.
    pub fn insert(&mut self, key: impl Into<Str>, value: impl Into<Value>) -> Option<Value> {
        let key = key.into();
        let value = value.into();
        match self.entries.iter_mut().find(|e| e.key == key) {
            Some(e) => Some(std::mem::replace(&mut e.value, value)),
            None => {
                self.entries.push(Entry {
                    key,
                    value,
                    key_pos: Pos::NONE,
                    value_pos: Pos::NONE,
                });
                None
            }
        }
    }

    /// Appends an entry read from a source. The caller guarantees the key is new.
    pub fn push_entry(&mut self, entry: Entry) {
        self.entries.push(entry);
    }

    /// The object at `key`, inserted (or replacing a non-object) when needed.
    pub fn object_entry(&mut self, key: &str) -> &mut Map {
        let i = match self.entries.iter().position(|e| e.key == key) {
            Some(i) => i,
            None => {
                self.insert(key, Map::new());
                self.entries.len() - 1
            }
        };
        let v = &mut self.entries[i].value;
        if !matches!(v, Value::Object(_)) {
            *v = Value::Object(Map::new());
        }
        match v {
            Value::Object(m) => m,
            _ => unreachable!("replaced by an object just above"),
        }
    }

    /// Removes `key`, keeping the order of the others. Returns its value.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        let i = self.entries.iter().position(|e| e.key == key)?;
        Some(self.entries.remove(i).value)
    }

    /// The entries in order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The entries in order, mutably (keys must stay unique).
    pub fn entries_mut(&mut self) -> &mut [Entry] {
        &mut self.entries
    }

    /// Iterates over `(key, value)` in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &Value)> {
        self.entries.iter().map(|e| (e.key.as_str(), &e.value))
    }

    /// Iterates over the keys in order.
    pub fn keys(&self) -> impl ExactSizeIterator<Item = &str> {
        self.entries.iter().map(|e| e.key.as_str())
    }

    /// Sorts the entries by key (code-point order), recursively when `deep`.
    pub fn sort_keys(&mut self, deep: bool) {
        self.entries.sort_by(|a, b| a.key.cmp(&b.key));
        if deep {
            for e in &mut self.entries {
                sort_value(&mut e.value);
            }
        }
    }
}

fn sort_value(v: &mut Value) {
    match v {
        Value::Object(m) => m.sort_keys(true),
        Value::Array(a) => a.iter_mut().for_each(sort_value),
        _ => {}
    }
}

impl<K: Into<Str>, V: Into<Value>> FromIterator<(K, V)> for Map {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut m = Map::new();
        for (k, v) in iter {
            m.insert(k, v);
        }
        m
    }
}

impl serde::Serialize for Value {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        match self {
            Value::Null => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Int(i) => s.serialize_i64(*i),
            Value::Float(f) => s.serialize_f64(*f),
            Value::String(v) => s.serialize_str(v),
            Value::Array(a) => {
                let mut seq = s.serialize_seq(Some(a.len()))?;
                for v in a {
                    seq.serialize_element(v)?;
                }
                seq.end()
            }
            Value::Object(m) => {
                let mut map = s.serialize_map(Some(m.len()))?;
                for (k, v) in m.iter() {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

impl<'de> serde::Deserialize<'de> for Value {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde_json::Value::deserialize(d).map(Value::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointer_follows_keys_and_indices_with_escapes() {
        let mut inner = Map::new();
        inner.insert("a/b", 1);
        inner.insert("c~d", Value::Array(vec![Value::Null, true.into()]));
        let mut root = Map::new();
        root.insert("x", inner);
        let v = Value::Object(root);
        assert_eq!(v.pointer("/x/a~1b"), Some(&Value::Int(1)));
        assert_eq!(v.pointer("/x/c~0d/1"), Some(&Value::Bool(true)));
        assert_eq!(v.pointer("/x/c~0d/01"), None);
        assert_eq!(v.pointer("/x/missing"), None);
        assert_eq!(v.pointer(""), Some(&v));
    }

    #[test]
    fn equality_ignores_positions_but_not_order_or_int_float() {
        let mut a = Map::new();
        a.insert("k", 1);
        let mut b = a.clone();
        b.pos = Pos::new(7);
        assert_eq!(a, b);
        assert_ne!(Value::Int(1), Value::Float(1.0));
        let ab: Map = [("a", 1), ("b", 2)].into_iter().collect();
        let ba: Map = [("b", 2), ("a", 1)].into_iter().collect();
        assert_ne!(ab, ba);
    }

    #[test]
    fn insert_keeps_place_of_existing_key() {
        let mut m: Map = [("a", 1), ("b", 2)].into_iter().collect();
        assert_eq!(m.insert("a", 3), Some(Value::Int(1)));
        assert_eq!(m.keys().collect::<Vec<_>>(), ["a", "b"]);
    }
}
