//! Templates (runtime-semantics §3): Jinja-compatible rendering with the four namespaces, bare
//! names resolving in `vars`, chainable undefined values recorded as missing, typed
//! single-placeholder values, percent-encoded URL values and `${ENV:…}` secrets.
//!
//! Most templates only interpolate paths (`Hi {{ vars.name }}`); those are compiled once into
//! literal and path parts and rendered without the Jinja engine, with exactly the same output.
//! Everything else goes through minijinja with a formatter implementing the §3.1 value rules.

use std::cell::RefCell;
use std::sync::{Arc, Mutex};

use minijinja::value::{Object, ObjectRepr};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use rustc_hash::FxHashMap;
use serde_json::{Map, Value};
use switchboard_model::secrets;

use crate::adapters::Secrets;
use crate::failure::{Failure, FailureKind};

/// Characters left as they are in URL values: RFC 3986 unreserved.
const URL_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The namespaces a template sees.
#[derive(Clone, Copy, Debug)]
pub struct Scope<'a> {
    /// `vars` (bare names resolve here).
    pub vars: &'a Map<String, Value>,
    /// `system` (built on first use).
    pub system: &'a System<'a>,
    /// `context`
    pub context: &'a Map<String, Value>,
    /// `metadata`
    pub metadata: &'a Map<String, Value>,
    /// `args` (agent webhook-tool arguments), when rendering a tool: visible as `args.<name>`,
    /// and bare names resolve in them before `vars`.
    pub args: Option<&'a Value>,
}

/// The `system` namespace, built only when a template reads it.
pub struct System<'a> {
    cell: std::cell::OnceCell<Map<String, Value>>,
    build: Option<&'a dyn Fn() -> Map<String, Value>>,
}

impl std::fmt::Debug for System<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("System").finish_non_exhaustive()
    }
}

impl<'a> System<'a> {
    /// A namespace known up front.
    pub fn ready(map: Map<String, Value>) -> System<'static> {
        let cell = std::cell::OnceCell::new();
        let _ = cell.set(map);
        System { cell, build: None }
    }

    /// A namespace built by `build` on first use.
    pub fn lazy(build: &'a dyn Fn() -> Map<String, Value>) -> System<'a> {
        System {
            cell: std::cell::OnceCell::new(),
            build: Some(build),
        }
    }

    /// The namespace.
    pub fn get(&self) -> &Map<String, Value> {
        self.cell
            .get_or_init(|| self.build.map(|b| b()).unwrap_or_default())
    }
}

/// Why rendering failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct TemplateError {
    /// [`FailureKind::TemplateError`] or [`FailureKind::SecretMissing`].
    pub kind: FailureKind,
    /// What happened.
    pub message: String,
}

impl From<TemplateError> for Failure {
    fn from(e: TemplateError) -> Self {
        Failure::new(e.kind, e.message)
    }
}

/// How interpolated values are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// As text.
    Text,
    /// Percent-encoded (URLs).
    Url,
}

/// The outcome of rendering: the value, the undefined paths written, the secrets used.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rendered<T> {
    /// The rendered value.
    pub value: T,
    /// Undefined paths written to output (`template_variable_missing`).
    pub missing: Vec<String>,
    /// Names of the secrets substituted.
    pub secrets: Vec<String>,
}

#[derive(Debug)]
enum Part {
    Lit(String),
    Path(Vec<String>),
    Secret(String),
}

#[derive(Debug)]
enum Compiled {
    /// Only literals, paths and secrets.
    Simple(Vec<Part>),
    /// Needs the Jinja engine; secrets replaced by tokens `\u{E000}<i>\u{E001}`.
    Jinja {
        source: String,
        secrets: Vec<String>,
    },
}

/// Renders templates. Cheap to share (`Arc<Renderer>`); compiled templates are cached.
pub struct Renderer {
    env: minijinja::Environment<'static>,
    cache: Mutex<FxHashMap<Box<str>, Arc<Compiled>>>,
}

impl std::fmt::Debug for Renderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Renderer").finish_non_exhaustive()
    }
}

thread_local! {
    /// Per render: names looked up and not found, undefined values written, URL mode.
    static RENDER: RefCell<RenderState> = RefCell::default();
}

#[derive(Default)]
struct RenderState {
    missed: Vec<String>,
    written_undefined: Vec<String>,
    url: bool,
}

impl Default for Renderer {
    fn default() -> Self {
        Renderer::new()
    }
}

impl Renderer {
    /// A renderer with the §3.1 formatter and chainable undefined values.
    pub fn new() -> Renderer {
        let mut env = minijinja::Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Chainable);
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
        env.set_formatter(|out, _state, value| {
            if value.is_undefined() {
                RENDER.with(|r| {
                    let mut r = r.borrow_mut();
                    let path = r.missed.last().cloned().unwrap_or_else(|| "?".to_owned());
                    r.written_undefined.push(path);
                });
                return Ok(());
            }
            let text = format_jinja_value(value);
            let url = RENDER.with(|r| r.borrow().url);
            if url {
                out.write_str(&utf8_percent_encode(&text, URL_VALUE).to_string())?;
            } else {
                out.write_str(&text)?;
            }
            Ok(())
        });
        Renderer {
            env,
            cache: Mutex::default(),
        }
    }

    fn compile(&self, template: &str) -> Arc<Compiled> {
        if let Ok(cache) = self.cache.lock()
            && let Some(c) = cache.get(template)
        {
            return c.clone();
        }
        let compiled = Arc::new(compile(template));
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() > 10_000 {
                cache.clear();
            }
            cache.insert(template.into(), compiled.clone());
        }
        compiled
    }

    /// Renders a text template to a string.
    pub fn render_text(
        &self,
        template: &str,
        scope: &Scope,
        secrets: &dyn Secrets,
        mode: Mode,
    ) -> Result<Rendered<String>, TemplateError> {
        if !template.contains('{') && !secrets::has_reference(template) {
            return Ok(Rendered {
                value: template.to_owned(),
                ..Rendered::default()
            });
        }
        match &*self.compile(template) {
            Compiled::Simple(parts) => {
                let mut out = Rendered::<String>::default();
                for part in parts {
                    match part {
                        Part::Lit(s) => out.value.push_str(s),
                        Part::Secret(name) => {
                            let v = secret(secrets, name)?;
                            out.value.push_str(&v);
                            if !out.secrets.contains(name) {
                                out.secrets.push(name.clone());
                            }
                        }
                        Part::Path(path) => match lookup(scope, path) {
                            Some(v) if !v.is_null() => {
                                let text = format_json_value(v);
                                match mode {
                                    Mode::Text => out.value.push_str(&text),
                                    Mode::Url => out.value.push_str(
                                        &utf8_percent_encode(&text, URL_VALUE).to_string(),
                                    ),
                                }
                            }
                            Some(_) => {}
                            None => out.missing.push(path.join(".")),
                        },
                    }
                }
                Ok(out)
            }
            Compiled::Jinja {
                source,
                secrets: names,
            } => {
                let ctx = minijinja::Value::from_object(Root::new(scope));
                RENDER.with(|r| {
                    *r.borrow_mut() = RenderState {
                        url: mode == Mode::Url,
                        ..RenderState::default()
                    }
                });
                let result = self.env.render_str(source, ctx);
                let state = RENDER.with(|r| std::mem::take(&mut *r.borrow_mut()));
                let mut text = result.map_err(|e| TemplateError {
                    kind: FailureKind::TemplateError,
                    message: describe(&e),
                })?;
                let mut used = Vec::new();
                for (i, name) in names.iter().enumerate() {
                    let token = secret_token(i);
                    if text.contains(&token) {
                        text = text.replace(&token, &secret(secrets, name)?);
                        used.push(name.clone());
                    }
                }
                Ok(Rendered {
                    value: text,
                    missing: state.written_undefined,
                    secrets: used,
                })
            }
        }
    }

    /// Renders a JSON-valued field (runtime-semantics §3.2): string leaves are rendered; a
    /// string that is exactly one `{{ … }}` block keeps the JSON type of its value.
    pub fn render_value(
        &self,
        value: &Value,
        scope: &Scope,
        secrets: &dyn Secrets,
    ) -> Result<Rendered<Value>, TemplateError> {
        let mut out = Rendered::<Value>::default();
        out.value =
            self.render_value_into(value, scope, secrets, &mut out.missing, &mut out.secrets, 0)?;
        Ok(out)
    }

    fn render_value_into(
        &self,
        value: &Value,
        scope: &Scope,
        secrets: &dyn Secrets,
        missing: &mut Vec<String>,
        used: &mut Vec<String>,
        depth: usize,
    ) -> Result<Value, TemplateError> {
        if depth > 128 {
            return Ok(value.clone());
        }
        Ok(match value {
            Value::String(s) => {
                if let Some(expr) = single_expression(s) {
                    let (v, miss) = self.eval(expr, scope)?;
                    missing.extend(miss);
                    v
                } else {
                    let r = self.render_text(s, scope, secrets, Mode::Text)?;
                    missing.extend(r.missing);
                    for s in r.secrets {
                        if !used.contains(&s) {
                            used.push(s);
                        }
                    }
                    Value::String(r.value)
                }
            }
            Value::Array(a) => Value::Array(
                a.iter()
                    .map(|v| self.render_value_into(v, scope, secrets, missing, used, depth + 1))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(m) => {
                let mut out = Map::with_capacity(m.len());
                for (k, v) in m {
                    out.insert(
                        k.clone(),
                        self.render_value_into(v, scope, secrets, missing, used, depth + 1)?,
                    );
                }
                Value::Object(out)
            }
            other => other.clone(),
        })
    }

    /// Evaluates one expression to a JSON value (undefined → `null`, recorded as missing).
    pub fn eval(&self, expr: &str, scope: &Scope) -> Result<(Value, Vec<String>), TemplateError> {
        let trimmed = expr.trim();
        if let Some(path) = simple_path(trimmed) {
            return Ok(match lookup(scope, &path) {
                Some(v) => (v.clone(), Vec::new()),
                None => (Value::Null, vec![path.join(".")]),
            });
        }
        let compiled = self
            .env
            .compile_expression(trimmed)
            .map_err(|e| TemplateError {
                kind: FailureKind::TemplateError,
                message: describe(&e),
            })?;
        RENDER.with(|r| *r.borrow_mut() = RenderState::default());
        let v = compiled
            .eval(minijinja::Value::from_object(Root::new(scope)))
            .map_err(|e| TemplateError {
                kind: FailureKind::TemplateError,
                message: describe(&e),
            })?;
        let state = RENDER.with(|r| std::mem::take(&mut *r.borrow_mut()));
        if v.is_undefined() {
            let path = state
                .missed
                .last()
                .cloned()
                .unwrap_or_else(|| trimmed.to_owned());
            return Ok((Value::Null, vec![path]));
        }
        let json = serde_json::to_value(&v).map_err(|e| TemplateError {
            kind: FailureKind::TemplateError,
            message: e.to_string(),
        })?;
        Ok((json, Vec::new()))
    }
}

fn describe(e: &minijinja::Error) -> String {
    match e.detail() {
        Some(d) => format!("{}: {d}", e.kind()),
        None => e.kind().to_string(),
    }
}

fn secret(secrets: &dyn Secrets, name: &str) -> Result<String, TemplateError> {
    secrets.get(name).ok_or_else(|| TemplateError {
        kind: FailureKind::SecretMissing,
        message: format!("secret `{name}` is not set"),
    })
}

fn secret_token(i: usize) -> String {
    format!("\u{E000}{i}\u{E001}")
}

/// A string that is exactly one `{{ … }}` block (surrounding whitespace allowed).
pub fn single_expression(s: &str) -> Option<&str> {
    let t = s.trim();
    let inner = t.strip_prefix("{{")?.strip_suffix("}}")?;
    if inner.contains("{{") || inner.contains("}}") || inner.contains("{%") || inner.contains("%}")
    {
        return None;
    }
    let inner = inner.strip_prefix('-').unwrap_or(inner);
    let inner = inner.strip_suffix('-').unwrap_or(inner);
    Some(inner)
}

/// `a.b.c` with identifier segments (or decimal indices after the first): the fast path.
fn simple_path(expr: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    for (i, seg) in expr.split('.').enumerate() {
        let mut b = seg.bytes();
        let ok = match b.next() {
            Some(c) if c.is_ascii_alphabetic() || c == b'_' => {
                b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
            }
            Some(c) if i > 0 && c.is_ascii_digit() => b.all(|c| c.is_ascii_digit()),
            _ => false,
        };
        if !ok {
            return None;
        }
        out.push(seg.to_owned());
    }
    if matches!(
        out.first().map(String::as_str),
        Some("true" | "false" | "none" | "True" | "False" | "None")
    ) {
        return None;
    }
    Some(out)
}

fn compile(template: &str) -> Compiled {
    // Secrets first: `${ENV:NAME}` is literal text, never template syntax. A malformed reference
    // stays literal text (its piece ends after the prefix).
    let mut pieces: Vec<(bool, &str)> = Vec::new(); // (is_secret, text or name)
    let mut literal = 0;
    for r in secrets::references(template) {
        if r.well_formed {
            pieces.push((false, &template[literal..r.start]));
            pieces.push((true, r.name));
            literal = r.end;
        } else {
            let split = r.start + secrets::PREFIX.len();
            pieces.push((false, &template[literal..split]));
            literal = split;
        }
    }
    pieces.push((false, &template[literal..]));
    // Try the fast path.
    let mut parts = Vec::new();
    let mut simple = true;
    'outer: for (is_secret, text) in &pieces {
        if *is_secret {
            parts.push(Part::Secret((*text).to_owned()));
            continue;
        }
        if text.contains("{%") || text.contains("{#") {
            simple = false;
            break;
        }
        let mut t = *text;
        while let Some(open) = t.find("{{") {
            let after = &t[open + 2..];
            let Some(close) = after.find("}}") else {
                simple = false;
                break 'outer;
            };
            let Some(path) = simple_path(after[..close].trim()) else {
                simple = false;
                break 'outer;
            };
            if open > 0 {
                parts.push(Part::Lit(t[..open].to_owned()));
            }
            parts.push(Part::Path(path));
            t = &after[close + 2..];
        }
        if t.contains("}}") {
            simple = false;
            break;
        }
        if !t.is_empty() {
            parts.push(Part::Lit(t.to_owned()));
        }
    }
    if simple {
        return Compiled::Simple(parts);
    }
    let mut source = String::with_capacity(template.len());
    let mut names = Vec::new();
    for (is_secret, text) in pieces {
        if is_secret {
            let i = names
                .iter()
                .position(|n: &String| n == text)
                .unwrap_or_else(|| {
                    names.push(text.to_owned());
                    names.len() - 1
                });
            source.push_str(&secret_token(i));
        } else {
            source.push_str(text);
        }
    }
    Compiled::Jinja {
        source,
        secrets: names,
    }
}

/// Resolves a path: namespaces first, then bare names in `vars`.
fn lookup<'a>(scope: &Scope<'a>, path: &[String]) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    let (root, rest): (&'a Map<String, Value>, &[String]) = match first.as_str() {
        "vars" => (scope.vars, rest),
        "system" => (scope.system.get(), rest),
        "context" => (scope.context, rest),
        "metadata" => (scope.metadata, rest),
        "args" if scope.args.is_some() => {
            let mut cur = scope.args?;
            for seg in rest {
                cur = step(cur, seg)?;
            }
            return Some(cur);
        }
        // Agent webhook tools: a bare name is first a tool argument (kapso-project §4.5).
        _ if scope.args.and_then(|a| a.get(first.as_str())).is_some() => {
            let mut cur = scope.args?.get(first.as_str())?;
            for seg in rest {
                cur = step(cur, seg)?;
            }
            return Some(cur);
        }
        _ => (scope.vars, path),
    };
    let (head, tail) = rest.split_first()?;
    let mut cur = root.get(head)?;
    for seg in tail {
        cur = step(cur, seg)?;
    }
    Some(cur)
}

fn step<'a>(v: &'a Value, seg: &str) -> Option<&'a Value> {
    match v {
        Value::Object(m) => m.get(seg),
        Value::Array(a) => a.get(seg.parse::<usize>().ok()?),
        _ => None,
    }
}

/// §3.1: strings as is, integers in decimal, floats in shortest round-trip form (with `.0` when
/// integral), booleans `true`/`false`, null `""`, objects and arrays as compact JSON.
pub fn format_json_value(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        other => serde_json::to_string(other).unwrap_or_default(),
    }
}

fn format_jinja_value(v: &minijinja::Value) -> String {
    use minijinja::value::ValueKind;
    match v.kind() {
        ValueKind::Undefined | ValueKind::None => String::new(),
        ValueKind::String => v
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| v.to_string()),
        ValueKind::Bool => v.is_true().to_string(),
        ValueKind::Number => match serde_json::to_value(v) {
            Ok(n @ Value::Number(_)) => format_json_value(&n),
            _ => v.to_string(),
        },
        ValueKind::Seq | ValueKind::Map | ValueKind::Iterable | ValueKind::Plain => {
            serde_json::to_string(v).unwrap_or_else(|_| v.to_string())
        }
        _ => v.to_string(),
    }
}

/// The root object seen by Jinja templates: the namespaces, and bare names in `vars`.
#[derive(Debug)]
struct Root {
    vars: minijinja::Value,
    system: minijinja::Value,
    context: minijinja::Value,
    metadata: minijinja::Value,
    args: Option<minijinja::Value>,
    /// The tool arguments, when an object: bare names resolve in them first.
    args_json: Option<Map<String, Value>>,
    vars_json: Map<String, Value>,
}

impl Root {
    fn new(scope: &Scope) -> Root {
        Root {
            vars: minijinja::Value::from(minijinja::value::Serde(scope.vars)),
            system: minijinja::Value::from(minijinja::value::Serde(scope.system.get())),
            context: minijinja::Value::from(minijinja::value::Serde(scope.context)),
            metadata: minijinja::Value::from(minijinja::value::Serde(scope.metadata)),
            args: scope
                .args
                .map(|v| minijinja::Value::from(minijinja::value::Serde(v))),
            args_json: scope.args.and_then(Value::as_object).cloned(),
            vars_json: scope.vars.clone(),
        }
    }
}

impl Object for Root {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &minijinja::Value) -> Option<minijinja::Value> {
        let name = key.as_str()?;
        let found = match name {
            "vars" => Some(self.vars.clone()),
            "system" => Some(self.system.clone()),
            "context" => Some(self.context.clone()),
            "metadata" => Some(self.metadata.clone()),
            "args" if self.args.is_some() => self.args.clone(),
            _ => self
                .args_json
                .as_ref()
                .and_then(|a| a.get(name))
                .or_else(|| self.vars_json.get(name))
                .map(|v| minijinja::Value::from(minijinja::value::Serde(v))),
        };
        if found.is_none() {
            RENDER.with(|r| r.borrow_mut().missed.push(name.to_owned()));
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct NoSecrets;
    impl Secrets for NoSecrets {
        fn get(&self, name: &str) -> Option<String> {
            (name == "KEY").then(|| "s3cr3t {{x}}".to_owned())
        }
    }

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    fn check(template: &str, vars: Value) -> Rendered<String> {
        let vars = obj(vars);
        let system = System::ready(obj(json!({"flow_id": "f1"})));
        let context = obj(json!({"phone_number": "+1555", "contact": {"name": "Ana"}}));
        let metadata = Map::new();
        let scope = Scope {
            vars: &vars,
            system: &system,
            context: &context,
            metadata: &metadata,
            args: None,
        };
        Renderer::new()
            .render_text(template, &scope, &NoSecrets, Mode::Text)
            .unwrap()
    }

    #[test]
    fn simple_paths_resolve_namespaces_and_bare_names() {
        let r = check(
            "Hi {{ name }} ({{vars.n}}) {{context.contact.name}} {{system.flow_id}}",
            json!({"name": "Bo", "n": 2}),
        );
        assert_eq!(r.value, "Hi Bo (2) Ana f1");
        assert!(r.missing.is_empty());
    }

    #[test]
    fn values_format_as_the_spec_says() {
        let r = check(
            "{{a}}|{{b}}|{{c}}|{{d}}|{{e}}|{{f}}",
            json!({"a": 1.0, "b": true, "c": null, "d": [1, "x"], "e": {"k": 2}, "f": 1.5}),
        );
        assert_eq!(r.value, "1.0|true||[1,\"x\"]|{\"k\":2}|1.5");
        let j = check(
            "{% if a %}{{a}}{% endif %}|{{d}}|{{b}}",
            json!({"a": 1.0, "d": [1, "x"], "b": false}),
        );
        assert_eq!(j.value, "1.0|[1,\"x\"]|false");
    }

    #[test]
    fn missing_values_render_empty_and_are_recorded() {
        let r = check("a{{ vars.x.y.z }}b{{ nope }}", json!({}));
        assert_eq!(r.value, "ab");
        assert_eq!(r.missing, ["vars.x.y.z", "nope"]);
        let j = check(
            "{{ nope | default('d') }}{% if other %}x{% endif %}",
            json!({}),
        );
        assert_eq!(j.value, "d");
        assert!(j.missing.is_empty(), "{:?}", j.missing);
        // A filter consumes the undefined value: nothing undefined is written.
        let k = check("{{ gone | upper }}", json!({}));
        assert!(k.missing.is_empty());
        let l = check("{% if true %}{{ gone }}{% endif %}", json!({}));
        assert_eq!(l.missing, ["gone"]);
    }

    #[test]
    fn secrets_are_literal_and_tracked() {
        let r = check("Bearer ${ENV:KEY}", json!({"x": "no"}));
        assert_eq!(r.value, "Bearer s3cr3t {{x}}");
        assert_eq!(r.secrets, ["KEY"]);
        let j = check(
            "{% if true %}Bearer ${ENV:KEY}{% endif %}",
            json!({"x": "no"}),
        );
        assert_eq!(j.value, "Bearer s3cr3t {{x}}");
        let vars = Map::new();
        let scope = Scope {
            vars: &vars,
            system: &System::ready(Map::new()),
            context: &vars,
            metadata: &vars,
            args: None,
        };
        let err = Renderer::new()
            .render_text("${ENV:NOPE}", &scope, &NoSecrets, Mode::Text)
            .unwrap_err();
        assert_eq!(err.kind, "secret_missing");
    }

    #[test]
    fn typed_single_placeholders_keep_their_type() {
        let vars = obj(json!({"n": 3, "o": {"a": [1]}, "s": "x"}));
        let e = Map::new();
        let scope = Scope {
            vars: &vars,
            system: &System::ready(Map::new()),
            context: &e,
            metadata: &e,
            args: None,
        };
        let r = Renderer::new()
            .render_value(&json!({"n": "{{ n }}", "o": "{{o}}", "s": "v={{s}}", "m": "{{ missing }}", "e": "{{ n + 1 }}"}), &scope, &NoSecrets)
            .unwrap();
        assert_eq!(
            r.value,
            json!({"n": 3, "o": {"a": [1]}, "s": "v=x", "m": null, "e": 4})
        );
        assert_eq!(r.missing, ["missing"]);
    }

    #[test]
    fn url_mode_encodes_values_only() {
        let vars = obj(json!({"q": "a b/c?&"}));
        let e = Map::new();
        let scope = Scope {
            vars: &vars,
            system: &System::ready(Map::new()),
            context: &e,
            metadata: &e,
            args: None,
        };
        let r = Renderer::new()
            .render_text("https://x.io/s?q={{q}}&z=1", &scope, &NoSecrets, Mode::Url)
            .unwrap();
        assert_eq!(r.value, "https://x.io/s?q=a%20b%2Fc%3F%26&z=1");
    }

    #[test]
    fn syntax_errors_are_template_errors() {
        let e = Map::new();
        let scope = Scope {
            vars: &e,
            system: &System::ready(Map::new()),
            context: &e,
            metadata: &e,
            args: None,
        };
        let err = Renderer::new()
            .render_text("{% if %}", &scope, &NoSecrets, Mode::Text)
            .unwrap_err();
        assert_eq!(err.kind, "template_error");
    }

    #[test]
    fn tool_arguments_come_before_vars_for_bare_names() {
        let vars = obj(json!({"sku": "from-vars", "shop": "Crumb"}));
        let args = json!({"sku": "A1", "size": {"cm": 20}});
        let system = System::ready(Map::new());
        let empty = Map::new();
        let scope = Scope {
            vars: &vars,
            system: &system,
            context: &empty,
            metadata: &empty,
            args: Some(&args),
        };
        let r = Renderer::new();
        for (template, expected) in [
            // The fast path and the Jinja path agree.
            (
                "/inventory/{{sku}}/{{shop}}/{{size.cm}}",
                "/inventory/A1/Crumb/20",
            ),
            (
                "{{ sku | upper }}-{{ args.sku }}-{{ vars.sku }}",
                "A1-A1-from-vars",
            ),
        ] {
            let out = r
                .render_text(template, &scope, &NoSecrets, Mode::Text)
                .unwrap();
            assert_eq!(out.value, expected, "{template}");
            assert!(out.missing.is_empty(), "{template}: {:?}", out.missing);
        }
    }
}
