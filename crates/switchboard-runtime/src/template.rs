//! Templates (runtime-semantics §3): Jinja-compatible rendering with the four namespaces, bare
//! names resolving in `vars`, chainable undefined values recorded as missing, typed
//! single-placeholder values, percent-encoded URL values and `${ENV:…}` secrets.
//!
//! Most templates only interpolate paths (`Hi {{ vars.name }}`); those are compiled once into
//! literal and path parts and rendered without the Jinja engine, with exactly the same output.
//! Everything else goes through minijinja with a formatter implementing the §3.1 value rules.
//!
//! Every evaluation is bounded ([`TemplateLimits`]): minijinja's fuel (instructions, and the data
//! a template creates), the size of what one field renders to, and the recursion depth. A
//! template that exceeds one fails with `template_error` naming the limit, so a flow cannot hold
//! a turn for hours or exhaust the memory of the process.

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
    /// `args` (agent webhook-tool arguments), when rendering a tool.
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

/// Bounds on every template evaluation (`[templates]` in `switchboard.toml`).
///
/// Exceeding one is a `template_error` that names it; the node fails (its `error` edge, else the
/// execution fails) and nothing else is affected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TemplateLimits {
    /// minijinja fuel per render: every instruction costs one, and the data a template creates
    /// or processes (output, captured blocks, strings and lists built by operators and filters)
    /// about one per 64 bytes. It bounds both the time and the memory of a render (default
    /// [`TemplateLimits::DEFAULT_FUEL`]: about 10 ms and at most about 32 MB).
    pub fuel: u64,
    /// The largest text one field renders to, in bytes (default 1 MiB). For a JSON-valued field
    /// (webhook bodies, `set_variable` values, template parameters, …) it bounds the rendered
    /// leaves together, typed `{{ … }}` values counted as compact JSON. No single value written
    /// by `{{ … }}` or `tojson` may be larger either.
    pub max_output_bytes: usize,
    /// How deeply loops, conditions, macro calls and includes may nest while rendering (default
    /// and maximum 500, minijinja's own limit; larger values are taken as 500).
    pub recursion_limit: usize,
}

impl TemplateLimits {
    /// The default fuel.
    pub const DEFAULT_FUEL: u64 = 500_000;
    /// The default output size: 1 MiB.
    pub const DEFAULT_MAX_OUTPUT_BYTES: usize = 1 << 20;
    /// The default (and largest) recursion limit.
    pub const MAX_RECURSION_LIMIT: usize = 500;
}

impl Default for TemplateLimits {
    fn default() -> Self {
        TemplateLimits {
            fuel: TemplateLimits::DEFAULT_FUEL,
            max_output_bytes: TemplateLimits::DEFAULT_MAX_OUTPUT_BYTES,
            recursion_limit: TemplateLimits::MAX_RECURSION_LIMIT,
        }
    }
}

/// Values nested deeper than this are not written out (writing them recurses).
const MAX_VALUE_DEPTH: usize = 128;

/// Stack per unit of fuel for a Jinja render. A template can nest a list about one level per
/// three units of fuel (`{% set ns.l = [ns.l] %}` in a loop), and minijinja drops, compares and
/// prints such a value recursively, using up to about a kilobyte of stack per level in a debug
/// build; the stack of a tokio worker (2 MiB) is far too small for the thousands of levels the
/// default fuel allows. The stack is mapped for each render and only the pages touched are used.
const STACK_PER_FUEL: u64 = 512;

/// The largest `tojson` indentation.
const MAX_JSON_INDENT: usize = 64;

/// Which limit a render exceeded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Limit {
    Fuel,
    Output,
    Recursion,
    Depth,
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
    limits: TemplateLimits,
    /// The stack a Jinja render runs on ([`STACK_PER_FUEL`]).
    stack: usize,
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
    /// A limit the formatter or a filter refused to exceed.
    hit: Option<Limit>,
}

fn note_limit(limit: Limit) {
    RENDER.with(|r| {
        r.borrow_mut().hit.get_or_insert(limit);
    });
}

/// The error a formatter or filter returns when it refuses to exceed a limit.
fn limit_refusal(limit: Limit) -> minijinja::Error {
    note_limit(limit);
    minijinja::Error::new(
        minijinja::ErrorKind::InvalidOperation,
        match limit {
            Limit::Depth => "value nested too deeply to write",
            _ => "value too large to write",
        },
    )
}

impl Default for Renderer {
    fn default() -> Self {
        Renderer::new()
    }
}

impl Renderer {
    /// A renderer with the §3.1 formatter, chainable undefined values and the default
    /// [`TemplateLimits`].
    pub fn new() -> Renderer {
        Renderer::with_limits(TemplateLimits::default())
    }

    /// A renderer bounded by `limits` (a zero fuel or output size is taken as 1, a recursion
    /// limit above 500 as 500).
    pub fn with_limits(limits: TemplateLimits) -> Renderer {
        let limits = TemplateLimits {
            fuel: limits.fuel.max(1),
            max_output_bytes: limits.max_output_bytes.max(1),
            recursion_limit: limits
                .recursion_limit
                .min(TemplateLimits::MAX_RECURSION_LIMIT),
        };
        let max_output = limits.max_output_bytes;
        let mut env = minijinja::Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Chainable);
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
        env.set_fuel(Some(limits.fuel));
        env.set_recursion_limit(limits.recursion_limit);
        // minijinja's `tojson` builds its indentation before fuel can refuse it, and pays for
        // the text only once it is built: bound both first.
        env.add_filter(
            "tojson",
            move |state: &minijinja::State,
                  value: &minijinja::Value,
                  indent: Option<minijinja::Value>,
                  kwargs: minijinja::value::Kwargs|
                  -> Result<minijinja::Value, minijinja::Error> {
                let asked = match &indent {
                    Some(v) => Some(v.clone()),
                    None => kwargs.peek::<Option<minijinja::Value>>("indent")?,
                };
                let width = match asked {
                    None => 0,
                    Some(v) if v.kind() == minijinja::value::ValueKind::Bool => {
                        usize::from(v.is_true()) * 2
                    }
                    Some(v) => usize::try_from(v)?,
                };
                if width > MAX_JSON_INDENT {
                    return Err(minijinja::Error::new(
                        minijinja::ErrorKind::InvalidOperation,
                        format!("tojson indentation {width} is larger than {MAX_JSON_INDENT}"),
                    ));
                }
                written_size(value, width, max_output).map_err(limit_refusal)?;
                let text = minijinja::filters::tojson(value, indent, kwargs)?;
                // What minijinja's own `tojson` charges: 16 units (a quarter fuel) per byte.
                let len = text.as_str().map_or(0, str::len) as u64;
                state.consume_fuel(len / 4)?;
                Ok(text)
            },
        );
        env.set_formatter(move |out, _state, value| {
            if value.is_undefined() {
                RENDER.with(|r| {
                    let mut r = r.borrow_mut();
                    let path = r.missed.last().cloned().unwrap_or_else(|| "?".to_owned());
                    r.written_undefined.push(path);
                });
                return Ok(());
            }
            // A list or map may share one big list many times or nest very deeply: measure it
            // (within the output size) before writing it out.
            if is_container(value) {
                written_size(value, 0, max_output).map_err(limit_refusal)?;
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
        let stack = limits
            .fuel
            .saturating_mul(STACK_PER_FUEL)
            .clamp(16 << 20, 4 << 30);
        Renderer {
            env,
            cache: Mutex::default(),
            limits,
            stack: usize::try_from(stack).unwrap_or(usize::MAX),
        }
    }

    /// The limits this renderer applies.
    pub fn limits(&self) -> &TemplateLimits {
        &self.limits
    }

    fn limit_error(&self, limit: Limit) -> TemplateError {
        let l = &self.limits;
        TemplateError {
            kind: FailureKind::TemplateError,
            message: match limit {
                Limit::Fuel => format!(
                    "template ran out of fuel: it needs more work or memory than \
                     `templates.fuel` = {} allows",
                    l.fuel
                ),
                Limit::Output => format!(
                    "rendered text is larger than `templates.max_output_bytes` = {} bytes",
                    l.max_output_bytes
                ),
                Limit::Recursion => format!(
                    "template nests deeper than `templates.recursion_limit` = {}",
                    l.recursion_limit
                ),
                Limit::Depth => {
                    format!("template writes a value nested deeper than {MAX_VALUE_DEPTH} levels")
                }
            },
        }
    }

    /// A minijinja error as a [`TemplateError`], naming the limit it hit if any.
    fn jinja_error(&self, e: &minijinja::Error, hit: Option<Limit>) -> TemplateError {
        let limit = hit.or(match e.kind() {
            minijinja::ErrorKind::OutOfFuel => Some(Limit::Fuel),
            minijinja::ErrorKind::InvalidOperation
                if e.detail()
                    .is_some_and(|d| d.contains("recursion limit exceeded")) =>
            {
                Some(Limit::Recursion)
            }
            _ => None,
        });
        match limit {
            Some(limit) => self.limit_error(limit),
            None => TemplateError {
                kind: FailureKind::TemplateError,
                message: describe(e),
            },
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
                let max = self.limits.max_output_bytes;
                let mut out = Rendered::<String>::default();
                for part in parts {
                    if out.value.len() > max {
                        return Err(self.limit_error(Limit::Output));
                    }
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
                                if json_size(v, max.saturating_sub(out.value.len())).is_none() {
                                    return Err(self.limit_error(Limit::Output));
                                }
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
                if out.value.len() > max {
                    return Err(self.limit_error(Limit::Output));
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
                let mut out = CappedOutput::new(self.limits.max_output_bytes);
                // Everything the template builds is created and dropped on the big stack.
                let result = stacker::grow(self.stack, || {
                    self.env
                        .template_from_str(source)
                        .and_then(|t| t.render_captured_to(ctx, &mut out).map(drop))
                });
                let state = RENDER.with(|r| std::mem::take(&mut *r.borrow_mut()));
                let hit = state.hit.or(out.exceeded.then_some(Limit::Output));
                result.map_err(|e| self.jinja_error(&e, hit))?;
                let mut text = String::from_utf8(out.buf).map_err(|e| TemplateError {
                    kind: FailureKind::TemplateError,
                    message: e.to_string(),
                })?;
                let mut used = Vec::new();
                for (i, name) in names.iter().enumerate() {
                    let token = secret_token(i);
                    if text.contains(&token) {
                        text = text.replace(&token, &secret(secrets, name)?);
                        used.push(name.clone());
                    }
                }
                if text.len() > self.limits.max_output_bytes {
                    return Err(self.limit_error(Limit::Output));
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
        let mut acc = Accumulated {
            missing: &mut out.missing,
            secrets: &mut out.secrets,
            budget: self.limits.max_output_bytes,
        };
        out.value = self.render_value_into(value, scope, secrets, &mut acc, 0)?;
        Ok(out)
    }

    fn render_value_into(
        &self,
        value: &Value,
        scope: &Scope,
        secrets: &dyn Secrets,
        acc: &mut Accumulated<'_>,
        depth: usize,
    ) -> Result<Value, TemplateError> {
        if depth > 128 {
            return Ok(value.clone());
        }
        Ok(match value {
            Value::String(s) => {
                let rendered = if let Some(expr) = single_expression(s) {
                    let (v, miss) = self.eval(expr, scope)?;
                    acc.missing.extend(miss);
                    v
                } else {
                    let r = self.render_text(s, scope, secrets, Mode::Text)?;
                    acc.missing.extend(r.missing);
                    for s in r.secrets {
                        if !acc.secrets.contains(&s) {
                            acc.secrets.push(s);
                        }
                    }
                    Value::String(r.value)
                };
                // The rendered leaves of one field share one output budget.
                let size = match &rendered {
                    Value::String(s) => Some(s.len()).filter(|n| *n <= acc.budget),
                    other => json_size(other, acc.budget),
                };
                match size {
                    Some(n) => acc.budget -= n,
                    None => return Err(self.limit_error(Limit::Output)),
                }
                rendered
            }
            Value::Array(a) => Value::Array(
                a.iter()
                    .map(|v| self.render_value_into(v, scope, secrets, acc, depth + 1))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(m) => {
                let mut out = Map::with_capacity(m.len());
                for (k, v) in m {
                    out.insert(
                        k.clone(),
                        self.render_value_into(v, scope, secrets, acc, depth + 1)?,
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
        let root = minijinja::Value::from_object(Root::new(scope));
        stacker::grow(self.stack, || self.eval_compiled(&compiled, root, trimmed))
    }

    /// Evaluates a compiled expression and converts its value (run on the big stack, so that
    /// every value it builds is dropped there).
    fn eval_compiled(
        &self,
        compiled: &minijinja::Expression<'_, '_>,
        root: minijinja::Value,
        trimmed: &str,
    ) -> Result<(Value, Vec<String>), TemplateError> {
        let result = compiled.eval(root);
        let state = RENDER.with(|r| std::mem::take(&mut *r.borrow_mut()));
        let v = result.map_err(|e| self.jinja_error(&e, state.hit))?;
        if v.is_undefined() {
            let path = state
                .missed
                .last()
                .cloned()
                .unwrap_or_else(|| trimmed.to_owned());
            return Ok((Value::Null, vec![path]));
        }
        match v.as_str() {
            Some(s) if s.len() > self.limits.max_output_bytes => {
                return Err(self.limit_error(Limit::Output));
            }
            Some(_) => {}
            None => {
                written_size(&v, 0, self.limits.max_output_bytes)
                    .map_err(|limit| self.limit_error(limit))?;
            }
        }
        let json = serde_json::to_value(&v).map_err(|e| TemplateError {
            kind: FailureKind::TemplateError,
            message: e.to_string(),
        })?;
        Ok((json, Vec::new()))
    }
}

/// What the leaves of one JSON-valued field have accumulated while rendering.
struct Accumulated<'a> {
    missing: &'a mut Vec<String>,
    secrets: &'a mut Vec<String>,
    /// Output bytes left for the field.
    budget: usize,
}

/// The rendered text of a Jinja template, refusing to grow past its limit.
struct CappedOutput {
    buf: Vec<u8>,
    limit: usize,
    exceeded: bool,
}

impl CappedOutput {
    fn new(limit: usize) -> CappedOutput {
        CappedOutput {
            buf: Vec::new(),
            limit,
            exceeded: false,
        }
    }
}

impl std::io::Write for CappedOutput {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.buf.len().saturating_add(data.len()) > self.limit {
            self.exceeded = true;
            return Err(std::io::Error::other("rendered text too large"));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn is_container(v: &minijinja::Value) -> bool {
    use minijinja::value::ValueKind;
    matches!(
        v.kind(),
        ValueKind::Seq | ValueKind::Map | ValueKind::Iterable | ValueKind::Plain
    )
}

/// At least how many bytes writing `v` takes — as text, or as JSON indented by `indent` spaces
/// per level — if that is at most `limit`. Walks iteratively and stops as soon as the limit is
/// passed, so a value that shares one big list many times, or nests thousands of levels deep,
/// cannot make the check itself expensive.
fn written_size(v: &minijinja::Value, indent: usize, limit: usize) -> Result<usize, Limit> {
    use minijinja::value::ValueKind;
    enum Frame {
        Seq(minijinja::value::ValueIter),
        Map(minijinja::Value, minijinja::value::ValueIter),
    }
    fn open(v: &minijinja::Value) -> Option<Frame> {
        match v.kind() {
            ValueKind::Seq | ValueKind::Iterable => v.try_iter().ok().map(Frame::Seq),
            ValueKind::Map | ValueKind::Plain => {
                v.try_iter().ok().map(|keys| Frame::Map(v.clone(), keys))
            }
            _ => None,
        }
    }
    fn scalar(v: &minijinja::Value) -> usize {
        match v.kind() {
            ValueKind::String => v.as_str().map_or(0, str::len) + 2,
            ValueKind::Bytes => v.as_bytes().map_or(0, <[u8]>::len) + 2,
            _ => 4,
        }
    }
    let mut total = scalar(v);
    let mut stack: Vec<Frame> = open(v).into_iter().collect();
    loop {
        let depth = stack.len();
        let Some(top) = stack.last_mut() else { break };
        let item = match top {
            Frame::Seq(items) => items.next(),
            Frame::Map(map, keys) => keys.next().map(|k| {
                total = total.saturating_add(scalar(&k) + 2);
                map.get_item(&k).unwrap_or_default()
            }),
        };
        let Some(item) = item else {
            stack.pop();
            continue;
        };
        total = total
            .saturating_add(scalar(&item))
            .saturating_add(1 + depth.saturating_mul(indent));
        if total > limit {
            return Err(Limit::Output);
        }
        if let Some(frame) = open(&item) {
            if depth >= MAX_VALUE_DEPTH {
                return Err(Limit::Depth);
            }
            stack.push(frame);
        }
    }
    if total > limit {
        return Err(Limit::Output);
    }
    Ok(total)
}

/// About how many bytes `v` takes as compact JSON, if at most `limit` (iteratively, stopping as
/// soon as the limit is passed).
fn json_size(v: &Value, limit: usize) -> Option<usize> {
    let mut total = 0usize;
    let mut stack = vec![v];
    while let Some(v) = stack.pop() {
        total = total.saturating_add(match v {
            Value::Null | Value::Bool(true) => 4,
            Value::Bool(false) => 5,
            Value::Number(n) => n.to_string().len(),
            Value::String(s) => s.len() + 2,
            Value::Array(a) => 2 + a.len(),
            Value::Object(m) => m.keys().map(|k| k.len() + 4).sum::<usize>() + 2,
        });
        if total > limit {
            return None;
        }
        match v {
            Value::Array(a) => stack.extend(a.iter()),
            Value::Object(m) => stack.extend(m.values()),
            _ => {}
        }
    }
    Some(total)
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
                .vars_json
                .get(name)
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

    /// The two templates of issue 15: 10^10 loop steps, and about 49 GB of output.
    const NESTED_LOOPS: &str =
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}";
    const HUGE_OUTPUT: &str =
        "{% set a = range(100000)|join %}{% for i in range(100000) %}{{ a }}{% endfor %}";

    fn render(
        limits: TemplateLimits,
        template: &str,
        vars: Value,
    ) -> Result<String, TemplateError> {
        let vars = obj(vars);
        let e = Map::new();
        let scope = Scope {
            vars: &vars,
            system: &System::ready(Map::new()),
            context: &e,
            metadata: &e,
            args: None,
        };
        Renderer::with_limits(limits)
            .render_text(template, &scope, &NoSecrets, Mode::Text)
            .map(|r| r.value)
    }

    fn render_json(
        limits: TemplateLimits,
        value: Value,
        vars: Value,
    ) -> Result<Value, TemplateError> {
        let vars = obj(vars);
        let e = Map::new();
        let scope = Scope {
            vars: &vars,
            system: &System::ready(Map::new()),
            context: &e,
            metadata: &e,
            args: None,
        };
        Renderer::with_limits(limits)
            .render_value(&value, &scope, &NoSecrets)
            .map(|r| r.value)
    }

    /// Renders `template` with the default limits and expects a `template_error` mentioning
    /// `what`, within 15 s (a guard against the hours an unbounded template runs; the
    /// measured times, tens of milliseconds, are in the docs).
    fn refused(template: &str, vars: Value, what: &str) {
        let start = std::time::Instant::now();
        let err = render(TemplateLimits::default(), template, vars).unwrap_err();
        let took = start.elapsed();
        assert_eq!(err.kind, "template_error", "{template}: {err}");
        assert!(err.message.contains(what), "{template}: {err}");
        assert!(
            took < std::time::Duration::from_secs(15),
            "{template}: took {took:?}"
        );
    }

    #[test]
    fn nested_loops_run_out_of_fuel() {
        refused(NESTED_LOOPS, json!({}), "`templates.fuel` = 500000");
        // Fuel is per render: the same renderer renders the next template normally.
        let r = Renderer::new();
        let e = Map::new();
        let scope = Scope {
            vars: &e,
            system: &System::ready(Map::new()),
            context: &e,
            metadata: &e,
            args: None,
        };
        assert!(
            r.render_text(NESTED_LOOPS, &scope, &NoSecrets, Mode::Text)
                .is_err()
        );
        let ok = r
            .render_text(
                "{% for i in range(3) %}{{ i }}{% endfor %}",
                &scope,
                &NoSecrets,
                Mode::Text,
            )
            .unwrap();
        assert_eq!(ok.value, "012");
    }

    #[test]
    fn huge_output_stops_at_the_size_cap() {
        refused(
            HUGE_OUTPUT,
            json!({}),
            "`templates.max_output_bytes` = 1048576 bytes",
        );
        // Captured output never reaches the writer: fuel bounds it instead.
        refused(
            "{% set a = range(100000)|join %}{% set b %}{% for i in range(100000) %}{{ a }}{% endfor %}{% endset %}{{ b|length }}",
            json!({}),
            "templates.",
        );
        // Just under the cap is fine, just over is not.
        let limits = TemplateLimits {
            max_output_bytes: 10,
            ..TemplateLimits::default()
        };
        assert_eq!(
            render(
                limits,
                "{% for i in range(10) %}{{ i }}{% endfor %}",
                json!({})
            )
            .unwrap(),
            "0123456789"
        );
        let err = render(
            limits,
            "{% for i in range(11) %}{{ i % 10 }}{% endfor %}",
            json!({}),
        )
        .unwrap_err();
        assert!(
            err.message.contains("max_output_bytes` = 10 bytes"),
            "{err}"
        );
    }

    #[test]
    fn runaway_recursion_hits_the_recursion_limit() {
        // On a thread with the stack of a tokio worker (2 MiB), in a debug build.
        let handle = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(|| {
                let limits = TemplateLimits {
                    fuel: 10_000_000,
                    ..TemplateLimits::default()
                };
                let err = render(
                    limits,
                    "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
                    json!({}),
                )
                .unwrap_err();
                assert!(
                    err.message.contains("`templates.recursion_limit` = 500"),
                    "{err}"
                );
                let shallow = TemplateLimits {
                    recursion_limit: 3,
                    ..TemplateLimits::default()
                };
                let err = render(
                    shallow,
                    "{% for a in [1] %}{% for b in [1] %}{% for c in [1] %}{% for d in [1] %}x{% endfor %}{% endfor %}{% endfor %}{% endfor %}",
                    json!({}),
                )
                .unwrap_err();
                assert!(err.message.contains("recursion_limit` = 3"), "{err}");
            })
            .unwrap();
        handle.join().unwrap();
    }

    #[test]
    fn single_operations_cannot_allocate_past_the_fuel() {
        for t in [
            "{{ \"x\" * 100000000 }}",
            "{{ ((0,) * 100000000)|length }}",
            "{{ ([0] * 100000000)|list|length }}",
            "{{ \"a\\nb\"|indent(99999999999) }}",
            "{{ \"%99999999999s\"|format(1) }}",
            "{% set ns = namespace(a=\"x\") %}{% for i in range(60) %}{% set ns.a = ns.a ~ ns.a %}{% endfor %}",
        ] {
            refused(t, json!({}), "templates.");
        }
    }

    #[test]
    fn tojson_indentation_is_bounded() {
        for t in [
            "{{ [1]|tojson(indent=99999999999) }}",
            "{{ [1]|tojson(indent=65) }}",
            "{{ [1]|tojson(99999) }}",
        ] {
            let err = render(TemplateLimits::default(), t, json!({})).unwrap_err();
            assert!(err.message.contains("larger than 64"), "{t}: {err}");
        }
        // Pretty JSON of a deep value grows with depth × indentation: measured before it is built.
        refused(
            "{% set x = [[[[[[[[[[range(20000)|list]]]]]]]]]] %}{{ x|tojson(indent=64)|length }}",
            json!({}),
            "max_output_bytes",
        );
        // What fits is minijinja's own output.
        assert_eq!(
            render(
                TemplateLimits::default(),
                "{{ {'a': [1, '<']}|tojson(indent=2) }}",
                json!({})
            )
            .unwrap(),
            "{\n  \"a\": [\n    1,\n    \"\\u003c\"\n  ]\n}"
        );
        assert_eq!(
            render(
                TemplateLimits::default(),
                "{{ x|tojson }}|{{ x|tojson(true) }}",
                json!({"x": [1]})
            )
            .unwrap(),
            "[1]|[\n  1\n]"
        );
    }

    #[test]
    fn shared_and_deep_values_are_measured_before_they_are_written() {
        // Each level shares the one before ten times: 10^9 numbers once written out.
        let shared = "{% set a = range(10000)|list %}{% set b = [a,a,a,a,a,a,a,a,a,a] %}\
                      {% set c = [b,b,b,b,b,b,b,b,b,b] %}{% set d = [c,c,c,c,c,c,c,c,c,c] %}\
                      {% set e = [d,d,d,d,d,d,d,d,d,d] %}{% set f = [e,e,e,e,e,e,e,e,e,e] %}";
        refused(
            &format!("{shared}{{{{ f }}}}"),
            json!({}),
            "max_output_bytes",
        );
        refused(
            &format!("{shared}{{{{ f|tojson }}}}"),
            json!({}),
            "max_output_bytes",
        );
        // 50 000 levels of nesting would overflow the stack of a recursive writer.
        let deep = "{% set ns = namespace(l=[]) %}{% for i in range(50000) %}{% set ns.l = [ns.l] %}{% endfor %}";
        refused(
            &format!("{deep}{{{{ ns.l }}}}"),
            json!({}),
            "nested deeper than 128",
        );
        refused(
            &format!("{deep}{{{{ ns.l|tojson }}}}"),
            json!({}),
            "nested deeper than 128",
        );
        // Building, measuring, comparing and printing such a value through minijinja itself
        // recurses (and so does dropping it): it all runs on a stack sized for the fuel.
        let limits = TemplateLimits::default();
        assert_eq!(
            render(limits, &format!("{deep}{{{{ ns.l|length }}}}"), json!({})).unwrap(),
            "1"
        );
        assert_eq!(
            render(limits, &format!("{deep}{{{{ ns.l == ns.l }}}}"), json!({})).unwrap(),
            "true"
        );
        let printed = render(
            limits,
            &format!("{deep}{{{{ (ns.l ~ '')|length }}}}"),
            json!({}),
        );
        assert_eq!(printed.unwrap(), "100002");
        // Ordinary containers are written as before.
        assert_eq!(
            render(
                TemplateLimits::default(),
                "{{ [1, 'a', {'k': none}] }}",
                json!({})
            )
            .unwrap(),
            "[1,\"a\",{\"k\":null}]"
        );
    }

    #[test]
    fn the_fast_path_is_capped_and_unchanged_below_the_cap() {
        let limits = TemplateLimits {
            max_output_bytes: 12,
            ..TemplateLimits::default()
        };
        let vars = json!({"name": "Ana", "big": "0123456789"});
        assert_eq!(
            render(limits, "Hi {{ name }}!", vars.clone()).unwrap(),
            "Hi Ana!"
        );
        assert_eq!(
            render(limits, "{{ big }}ab", vars.clone()).unwrap(),
            "0123456789ab"
        );
        for t in ["{{ big }}abc", "{{ big }}{{ big }}", "{{ name }}{{ big }}"] {
            let err = render(limits, t, vars.clone()).unwrap_err();
            assert!(err.message.contains("max_output_bytes` = 12"), "{t}: {err}");
        }
        // The Jinja path gives the same answer for the same text.
        assert!(render(limits, "{% if true %}{{ big }}abc{% endif %}", vars).is_err());
    }

    #[test]
    fn one_json_field_shares_one_output_budget() {
        let limits = TemplateLimits {
            max_output_bytes: 30,
            ..TemplateLimits::default()
        };
        let vars = json!({"s": "0123456789", "list": [1, 2, 3]});
        assert_eq!(
            render_json(
                limits,
                json!({"a": "{{ s }}", "b": ["{{ list }}"]}),
                vars.clone()
            )
            .unwrap(),
            json!({"a": "0123456789", "b": [[1, 2, 3]]})
        );
        // Each leaf fits, together they do not.
        let err = render_json(
            limits,
            json!({"a": "{{ s }}", "b": "{{ s }}", "c": "x{{ s }}"}),
            vars.clone(),
        )
        .unwrap_err();
        assert!(err.message.contains("max_output_bytes` = 30"), "{err}");
        // A typed expression that builds a big value is refused too.
        let err = render_json(
            TemplateLimits::default(),
            json!({"a": "{{ range(100000)|join * 3 }}"}),
            vars,
        )
        .unwrap_err();
        assert!(err.message.contains("max_output_bytes` = 1048576"), "{err}");
    }

    #[test]
    fn fuel_is_configurable() {
        let small = TemplateLimits {
            fuel: 100,
            ..TemplateLimits::default()
        };
        let t = "{% for i in range(200) %}{{ i }}{% endfor %}";
        let err = render(small, t, json!({})).unwrap_err();
        assert!(err.message.contains("`templates.fuel` = 100 "), "{err}");
        assert_eq!(
            render(TemplateLimits::default(), t, json!({}))
                .unwrap()
                .len(),
            490
        );
        // Out-of-range limits are clamped, never a panic.
        let odd = TemplateLimits {
            fuel: 0,
            max_output_bytes: 0,
            recursion_limit: usize::MAX,
        };
        let r = Renderer::with_limits(odd);
        assert_eq!(r.limits().fuel, 1);
        assert_eq!(r.limits().max_output_bytes, 1);
        assert_eq!(r.limits().recursion_limit, 500);
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
}
