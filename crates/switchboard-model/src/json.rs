//! JSON reading and writing for [`Value`]: a strict RFC 8259 parser that records source
//! positions, rejects duplicate keys and bounds nesting, and a writer (pretty or compact).

use crate::error::SyntaxError;
use crate::value::{Entry, Map, Pos, Str, Value};

/// Nesting deeper than this is rejected (protects the stack from hostile input).
pub const MAX_DEPTH: usize = 256;

/// Parses one JSON document. A UTF-8 byte-order mark is skipped.
pub fn parse(text: &str) -> Result<Value, SyntaxError> {
    parse_measured(text).map(|(v, _)| v)
}

/// Parses one JSON document and reports its nesting depth (containers, the root counting 1).
pub fn parse_measured(text: &str) -> Result<(Value, usize), SyntaxError> {
    let bytes = text.as_bytes();
    let start = if bytes.starts_with(b"\xEF\xBB\xBF") {
        3
    } else {
        0
    };
    let mut p = Parser {
        text,
        s: bytes,
        i: start,
        depth: 0,
        max_depth: 0,
        keys: Vec::new(),
        entries: Vec::new(),
        items: Vec::new(),
    };
    p.ws();
    let v = p.value()?;
    p.ws();
    if p.i < p.s.len() {
        return Err(p.err("trailing characters after the JSON document"));
    }
    Ok((v, p.max_depth))
}

struct Parser<'a> {
    text: &'a str,
    s: &'a [u8],
    i: usize,
    depth: usize,
    max_depth: usize,
    /// Scratch space for duplicate-key detection in large objects.
    keys: Vec<std::collections::HashSet<String>>,
    /// The entries of the objects being read, innermost last: an object's entries are moved
    /// into one allocation of exactly their number when it closes (no growth, no slack).
    entries: Vec<Entry>,
    /// The same for the items of the arrays being read.
    items: Vec<Value>,
}

impl<'a> Parser<'a> {
    fn err(&self, msg: impl Into<String>) -> SyntaxError {
        SyntaxError {
            message: msg.into(),
            pos: Pos::new(self.i),
        }
    }

    fn err_at(&self, at: usize, msg: impl Into<String>) -> SyntaxError {
        SyntaxError {
            message: msg.into(),
            pos: Pos::new(at),
        }
    }

    /// A slice of the input. Every slice taken here starts and ends at ASCII delimiters, so it
    /// lies on character boundaries.
    #[inline]
    fn slice(&self, from: usize, to: usize) -> &'a str {
        self.text.get(from..to).unwrap_or_default()
    }

    #[inline]
    fn ws(&mut self) {
        while let Some(&c) = self.s.get(self.i) {
            if matches!(c, b' ' | b'\n' | b'\r' | b'\t') {
                self.i += 1;
            } else {
                break;
            }
        }
    }

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn unexpected(&self, what: &str) -> SyntaxError {
        match self.peek() {
            None => self.err(format!("unexpected end of input, expected {what}")),
            Some(c) if c.is_ascii_graphic() => self.err(format!(
                "unexpected character `{}`, expected {what}",
                c as char
            )),
            Some(_) => {
                let ch = std::str::from_utf8(&self.s[self.i..])
                    .ok()
                    .and_then(|s| s.chars().next())
                    .map_or_else(|| "?".to_owned(), |c| c.escape_default().to_string());
                self.err(format!("unexpected character `{ch}`, expected {what}"))
            }
        }
    }

    fn value(&mut self) -> Result<Value, SyntaxError> {
        match self.peek() {
            Some(b'{') => self.object(),
            Some(b'[') => self.array(),
            Some(b'"') => Ok(Value::String(self.string()?)),
            Some(b't') => self.literal(b"true", Value::Bool(true)),
            Some(b'f') => self.literal(b"false", Value::Bool(false)),
            Some(b'n') => self.literal(b"null", Value::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err(self.unexpected("a JSON value")),
        }
    }

    fn literal(&mut self, word: &[u8], v: Value) -> Result<Value, SyntaxError> {
        if self.s[self.i..].starts_with(word) {
            self.i += word.len();
            Ok(v)
        } else {
            Err(self.unexpected("a JSON value"))
        }
    }

    fn enter(&mut self) -> Result<(), SyntaxError> {
        self.depth += 1;
        self.max_depth = self.max_depth.max(self.depth);
        if self.depth > MAX_DEPTH {
            return Err(self.err(format!("nesting deeper than {MAX_DEPTH} levels")));
        }
        Ok(())
    }

    fn object(&mut self) -> Result<Value, SyntaxError> {
        self.enter()?;
        let start = self.i;
        self.i += 1;
        self.ws();
        if self.peek() == Some(b'}') {
            self.i += 1;
            self.depth -= 1;
            return Ok(Value::Object(Map::with_capacity(0, Pos::new(start))));
        }
        // This object's entries are `self.entries[base..]` until it closes.
        let base = self.entries.len();
        let mut use_set = false;
        loop {
            if self.peek() != Some(b'"') {
                return Err(self.unexpected("a string key"));
            }
            let key_pos = self.i;
            let key = self.string()?;
            // Small objects: linear scan. Large ones: a hash set, so hostile input stays linear.
            let count = self.entries.len() - base;
            let dup = if use_set {
                let set = self.keys.last_mut().expect("set pushed");
                !set.insert(key.to_string())
            } else if count >= 16 {
                use_set = true;
                let mut set: std::collections::HashSet<String> = self.entries[base..]
                    .iter()
                    .map(|e| e.key.to_string())
                    .collect();
                let dup = !set.insert(key.to_string());
                self.keys.push(set);
                dup
            } else {
                self.entries[base..].iter().any(|e| e.key == key)
            };
            if dup {
                if use_set {
                    self.keys.pop();
                }
                return Err(self.err_at(key_pos, format!("duplicate key `{key}`")));
            }
            self.ws();
            if self.peek() != Some(b':') {
                return Err(self.unexpected("`:`"));
            }
            self.i += 1;
            self.ws();
            let value_pos = self.i;
            let value = match self.value() {
                Ok(v) => v,
                Err(e) => {
                    if use_set {
                        self.keys.pop();
                    }
                    return Err(e);
                }
            };
            self.entries.push(Entry {
                key,
                value,
                key_pos: Pos::new(key_pos),
                value_pos: Pos::new(value_pos),
            });
            self.ws();
            match self.peek() {
                Some(b',') => {
                    self.i += 1;
                    self.ws();
                }
                Some(b'}') => {
                    self.i += 1;
                    break;
                }
                _ => {
                    if use_set {
                        self.keys.pop();
                    }
                    return Err(self.unexpected("`,` or `}`"));
                }
            }
        }
        if use_set {
            self.keys.pop();
        }
        self.depth -= 1;
        // `Drain` knows its length: the vector is allocated once, at its exact size.
        let entries: Vec<Entry> = self.entries.drain(base..).collect();
        Ok(Value::Object(Map::from_entries(entries, Pos::new(start))))
    }

    fn array(&mut self) -> Result<Value, SyntaxError> {
        self.enter()?;
        self.i += 1;
        self.ws();
        if self.peek() == Some(b']') {
            self.i += 1;
            self.depth -= 1;
            return Ok(Value::Array(Vec::new()));
        }
        // This array's items are `self.items[base..]` until it closes.
        let base = self.items.len();
        loop {
            let v = self.value()?;
            self.items.push(v);
            self.ws();
            match self.peek() {
                Some(b',') => {
                    self.i += 1;
                    self.ws();
                }
                Some(b']') => {
                    self.i += 1;
                    break;
                }
                _ => return Err(self.unexpected("`,` or `]`")),
            }
        }
        self.depth -= 1;
        let items: Vec<Value> = self.items.drain(base..).collect();
        Ok(Value::Array(items))
    }

    fn string(&mut self) -> Result<Str, SyntaxError> {
        let open = self.i;
        self.i += 1;
        let s = self.s;
        let mut run = self.i;
        let mut out: Option<String> = None;
        loop {
            // Jump to the next quote, backslash or control character.
            self.i += special(&s[self.i..]);
            let Some(&c) = s.get(self.i) else {
                return Err(self.err_at(open, "unterminated string"));
            };
            if c < 0x20 {
                // A string that never ends is reported as such, wherever its control characters.
                if memchr::memchr2(b'"', b'\\', &s[self.i..]).is_none() {
                    return Err(self.err_at(open, "unterminated string"));
                }
                return Err(self.err("control character in string (escape it as \\u00XX)"));
            }
            match c {
                b'"' => {
                    let tail = self.slice(run, self.i);
                    self.i += 1;
                    return Ok(match out {
                        Some(mut o) => {
                            o.push_str(tail);
                            Str::from(o)
                        }
                        None => Str::new(tail),
                    });
                }
                b'\\' => {
                    let o = out.get_or_insert_with(String::new);
                    o.push_str(self.slice(run, self.i));
                    self.i += 1;
                    let Some(&e) = s.get(self.i) else {
                        return Err(self.err_at(open, "unterminated string"));
                    };
                    self.i += 1;
                    match e {
                        b'"' => o.push('"'),
                        b'\\' => o.push('\\'),
                        b'/' => o.push('/'),
                        b'b' => o.push('\u{8}'),
                        b'f' => o.push('\u{c}'),
                        b'n' => o.push('\n'),
                        b'r' => o.push('\r'),
                        b't' => o.push('\t'),
                        b'u' => {
                            let at = self.i - 2;
                            let hi = self.hex4()?;
                            let ch = if (0xD800..0xDC00).contains(&hi) {
                                if s.get(self.i) == Some(&b'\\') && s.get(self.i + 1) == Some(&b'u')
                                {
                                    self.i += 2;
                                    let lo = self.hex4()?;
                                    if !(0xDC00..0xE000).contains(&lo) {
                                        return Err(self.err_at(at, "invalid surrogate pair"));
                                    }
                                    0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                                } else {
                                    return Err(self.err_at(at, "lone surrogate in \\u escape"));
                                }
                            } else if (0xDC00..0xE000).contains(&hi) {
                                return Err(self.err_at(at, "lone surrogate in \\u escape"));
                            } else {
                                hi
                            };
                            o.push(char::from_u32(ch).unwrap_or('\u{FFFD}'));
                        }
                        _ => return Err(self.err_at(self.i - 2, "invalid escape sequence")),
                    }
                    run = self.i;
                }
                _ => self.i += 1,
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, SyntaxError> {
        let Some(h) = self.s.get(self.i..self.i + 4) else {
            return Err(self.err("truncated \\u escape"));
        };
        let mut n = 0u32;
        for &c in h {
            let d = (c as char)
                .to_digit(16)
                .ok_or_else(|| self.err("invalid \\u escape"))?;
            n = n * 16 + d;
        }
        self.i += 4;
        Ok(n)
    }

    fn number(&mut self) -> Result<Value, SyntaxError> {
        let start = self.i;
        let s = self.s;
        if s[self.i] == b'-' {
            self.i += 1;
        }
        match s.get(self.i) {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                while matches!(s.get(self.i), Some(b'0'..=b'9')) {
                    self.i += 1;
                }
            }
            _ => return Err(self.unexpected("a digit")),
        }
        let mut float = false;
        if s.get(self.i) == Some(&b'.') {
            float = true;
            self.i += 1;
            if !matches!(s.get(self.i), Some(b'0'..=b'9')) {
                return Err(self.unexpected("a digit after `.`"));
            }
            while matches!(s.get(self.i), Some(b'0'..=b'9')) {
                self.i += 1;
            }
        }
        if matches!(s.get(self.i), Some(b'e' | b'E')) {
            float = true;
            self.i += 1;
            if matches!(s.get(self.i), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if !matches!(s.get(self.i), Some(b'0'..=b'9')) {
                return Err(self.unexpected("a digit in the exponent"));
            }
            while matches!(s.get(self.i), Some(b'0'..=b'9')) {
                self.i += 1;
            }
        }
        let text = self.slice(start, self.i);
        if !float && let Ok(i) = text.parse::<i64>() {
            return Ok(Value::Int(i));
        }
        match text.parse::<f64>() {
            Ok(f) if f.is_finite() => Ok(Value::Float(f)),
            _ => Err(self.err_at(start, format!("number `{text}` is out of range"))),
        }
    }
}

/// The offset of the first byte of `s` that ends a run of plain string content: `"`, `\\` or a
/// control character (`s.len()` when there is none). Eight bytes at a time (SWAR): most strings
/// of a flow are short keys and ids, for which a call to `memchr` costs more than the scan.
#[inline]
fn special(s: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut i = 0;
    while let Some(chunk) = s.get(i..i + 8) {
        let w = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
        // A byte of `x` is flagged when it is zero (`has_zero`) or, for `w` itself, below 0x20.
        // Borrows only flag bytes above the first true one, so the lowest flag is exact.
        let has_zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
        let quote = has_zero(w ^ (ONES * u64::from(b'"')));
        let backslash = has_zero(w ^ (ONES * u64::from(b'\\')));
        let control = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
        let found = quote | backslash | control;
        if found != 0 {
            return i + (found.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while let Some(&b) = s.get(i) {
        if b == b'"' || b == b'\\' || b < 0x20 {
            return i;
        }
        i += 1;
    }
    i
}

/// How [`write()`] lays out its output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// Two-space indentation, one key per line (Python's `json.dumps(indent=2)` layout).
    Pretty,
    /// One line, no spaces.
    Compact,
}

/// Writes `value` as JSON text into `out` (no trailing newline).
pub fn write(value: &Value, style: Style, out: &mut String) {
    write_value(value, style, 0, out);
}

/// `value` as JSON text.
pub fn to_string(value: &Value, style: Style) -> String {
    let mut s = String::new();
    write(value, style, &mut s);
    s
}

fn newline(style: Style, depth: usize, out: &mut String) {
    if style == Style::Pretty {
        out.push('\n');
        for _ in 0..depth {
            out.push_str("  ");
        }
    }
}

fn write_value(v: &Value, style: Style, depth: usize, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => out.push_str(itoa::Buffer::new().format(*i)),
        Value::Float(f) => write_float(*f, out),
        Value::String(s) => write_string(s, out),
        Value::Array(a) => {
            if a.is_empty() {
                out.push_str("[]");
                return;
            }
            out.push('[');
            for (i, item) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(style, depth + 1, out);
                write_value(item, style, depth + 1, out);
            }
            newline(style, depth, out);
            out.push(']');
        }
        Value::Object(m) => {
            if m.is_empty() {
                out.push_str("{}");
                return;
            }
            out.push('{');
            for (i, (k, item)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(style, depth + 1, out);
                write_string(k, out);
                out.push(':');
                if style == Style::Pretty {
                    out.push(' ');
                }
                write_value(item, style, depth + 1, out);
            }
            newline(style, depth, out);
            out.push('}');
        }
    }
}

/// Writes a float in shortest round-trip form, always with a `.` or an exponent so that it reads
/// back as a float. Non-finite values (never produced by the parsers) are written as `null`.
pub fn write_float(f: f64, out: &mut String) {
    if !f.is_finite() {
        out.push_str("null");
        return;
    }
    let mut buf = ryu::Buffer::new();
    out.push_str(buf.format_finite(f));
}

/// Writes a JSON string literal with the minimal escapes (non-ASCII is written as is).
pub fn write_string(s: &str, out: &mut String) {
    out.push('"');
    let bytes = s.as_bytes();
    let mut run = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: Option<&str> = match b {
            b'"' => Some("\\\""),
            b'\\' => Some("\\\\"),
            b'\n' => Some("\\n"),
            b'\r' => Some("\\r"),
            b'\t' => Some("\\t"),
            0x08 => Some("\\b"),
            0x0C => Some("\\f"),
            0..=0x1F | 0x7F => None,
            _ => continue,
        };
        out.push_str(&s[run..i]);
        match esc {
            Some(e) => out.push_str(e),
            None => {
                out.push_str("\\u00");
                out.push(char::from_digit(u32::from(b >> 4), 16).unwrap_or('0'));
                out.push(char::from_digit(u32::from(b & 15), 16).unwrap_or('0'));
            }
        }
        run = i + 1;
    }
    out.push_str(&s[run..]);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> SyntaxError {
        parse(text).expect_err(text)
    }

    #[test]
    fn parses_and_keeps_order_ints_and_floats() {
        let v =
            parse(r#"{"b": 1, "a": [1.0, -0, 2e3, "x\u00e9\ud83d\ude00"], "n": null}"#).unwrap();
        let m = v.as_object().unwrap();
        assert_eq!(m.keys().collect::<Vec<_>>(), ["b", "a", "n"]);
        assert_eq!(m.get("b"), Some(&Value::Int(1)));
        let a = m.get("a").unwrap().as_array().unwrap();
        assert_eq!(a[0], Value::Float(1.0));
        assert_eq!(a[1], Value::Int(0));
        assert_eq!(a[2], Value::Float(2000.0));
        assert_eq!(a[3], Value::String("xé😀".into()));
        assert_eq!(m.get("n"), Some(&Value::Null));
    }

    #[test]
    fn records_key_and_value_positions() {
        let text = "{\n  \"k\": \"v\",\n  \"o\": {}\n}";
        let v = parse(text).unwrap();
        let m = v.as_object().unwrap();
        let e = m.entry("k").unwrap();
        assert_eq!(&text[e.key_pos.offset().unwrap()..][..3], "\"k\"");
        assert_eq!(&text[e.value_pos.offset().unwrap()..][..3], "\"v\"");
        assert_eq!(v.pos_at("/o"), Pos::new(text.find("{}").unwrap()));
        assert_eq!(v.pos_at("/o/missing"), Pos::new(text.find("{}").unwrap()));
    }

    #[test]
    fn rejects_bad_documents_with_positions() {
        assert!(
            err(r#"{"a": 1, "a": 2}"#)
                .message
                .contains("duplicate key `a`")
        );
        assert_eq!(err(r#"{"a": 1, "a": 2}"#).pos, Pos::new(9));
        assert!(
            err("{\"nodes\": [}")
                .message
                .contains("expected a JSON value")
        );
        assert!(err("[1, 2] x").message.contains("trailing"));
        assert!(err("\"\\ud800\"").message.contains("surrogate"));
        assert!(err("1e999").message.contains("out of range"));
        assert!(err("\"a\u{1}\"").message.contains("control character"));
        assert!(err("01").message.contains("trailing"));
        assert!(err("[1.]").message.contains("digit"));
        assert!(err("").message.contains("end of input"));
        let deep = "[".repeat(MAX_DEPTH + 1);
        assert!(err(&deep).message.contains("nesting"));
    }

    #[test]
    fn special_finds_the_first_quote_backslash_or_control_character() {
        let naive = |s: &[u8]| {
            s.iter()
                .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
                .unwrap_or(s.len())
        };
        // Every byte value at every offset of a 20-byte run, with and without a later quote.
        for len in 0..20 {
            for at in 0..len {
                for b in 0..=255u8 {
                    let mut v = vec![b'a'; len];
                    v[at] = b;
                    assert_eq!(special(&v), naive(&v), "{v:?}");
                    v.push(b'"');
                    v.extend_from_slice("é\u{1}".as_bytes());
                    assert_eq!(special(&v), naive(&v), "{v:?}");
                }
            }
        }
        assert_eq!(err("\"abc\u{1}def").message, "unterminated string");
        assert!(err("\"abc\u{1}def\"").message.contains("control character"));
    }

    #[test]
    fn duplicate_keys_in_large_objects_are_found() {
        let mut s = String::from("{");
        for i in 0..40 {
            s.push_str(&format!("\"k{i}\": {i},"));
        }
        s.push_str("\"k3\": 0}");
        assert!(err(&s).message.contains("duplicate key `k3`"));
        let ok: String = format!(
            "{{{}}}",
            (0..40)
                .map(|i| format!("\"k{i}\": {i}"))
                .collect::<Vec<_>>()
                .join(",")
        );
        assert_eq!(parse(&ok).unwrap().as_object().unwrap().len(), 40);
    }

    #[test]
    fn writes_what_it_reads() {
        let text =
            r#"{"a":[1,2.5,1.0,-0.0,1e+300,"q\"\\\n\u0001é"],"b":{},"c":[],"d":null,"e":true}"#;
        let v = parse(text).unwrap();
        for style in [Style::Pretty, Style::Compact] {
            assert_eq!(parse(&to_string(&v, style)).unwrap(), v);
        }
        assert_eq!(to_string(&Value::Float(1.0), Style::Compact), "1.0");
        assert_eq!(
            to_string(&parse(r#"{"a": [1, {"b": null}]}"#).unwrap(), Style::Pretty),
            "{\n  \"a\": [\n    1,\n    {\n      \"b\": null\n    }\n  ]\n}"
        );
    }
}
