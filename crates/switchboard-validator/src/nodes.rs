//! Node configuration (validation-rules §2 and §4): required keys, ranges, variable names,
//! timeouts, methods, URLs, decide conditions, and model and function references.

use rustc_hash::FxHashSet as HashSet;

use switchboard_model::config::HttpMethod;
use switchboard_model::config::{
    DecisionType, FlowAction, HeaderType, InteractiveType, NodeConfig, SendInteractive, TextField,
    ValueType,
};
use switchboard_model::{Map, Value};

use crate::context::Ctx;
use crate::rules;
use switchboard_model::is_http_url;

use crate::util::{RESERVED_NAMES, excerpt, is_dynamic, is_var_name, tok};

pub(crate) fn check(cx: &mut Ctx) {
    settings(cx);
    for i in 0..cx.flow.nodes.len() {
        let node = cx.node(i);
        let empty = Map::new();
        let raw = cx.config_map(i).unwrap_or(&empty);
        match node.config() {
            NodeConfig::SendText(c) => {
                required(cx, i, raw, "", &["message"]);
                at_least(
                    cx,
                    i,
                    "/delay_seconds",
                    c.delay_seconds,
                    0.0,
                    "delay_seconds",
                );
            }
            NodeConfig::SendTemplate(_) => required(cx, i, raw, "", &["template_id"]),
            NodeConfig::SendInteractive(c) => send_interactive(cx, i, raw, c),
            NodeConfig::WaitForResponse(c) => {
                variable_name(cx, i, "save_response_to", c.save_response_to.as_deref());
                if c.has_timeout == Some(true)
                    && c.timeout_seconds.is_none()
                    && raw.get("timeout_seconds").is_none_or(Value::is_null)
                {
                    cx.at_config(
                        rules::INVALID_TIMEOUT,
                        i,
                        "/has_timeout",
                        "`has_timeout` is true but `timeout_seconds` is not set".into(),
                        "set `timeout_seconds` (10 to 604800) or set `has_timeout` to false",
                    );
                }
                if let Some(t) = c.armed_timeout()
                    && !(t.fract() == 0.0 && (10.0..=604_800.0).contains(&t))
                {
                    cx.at_config(
                        rules::INVALID_TIMEOUT,
                        i,
                        "/timeout_seconds",
                        format!("wait timeout {} is not a whole number of seconds from 10 to 604800 (7 days)", fmt_num(t)),
                        "use a whole number of seconds between 10 and 604800",
                    );
                }
            }
            NodeConfig::Decide(c) => {
                let ai = c.mode() == DecisionType::Ai;
                match &c.conditions {
                    Some(conds) if !conds.is_empty() => {
                        let mut labels = HashSet::default();
                        for (k, cond) in conds.iter().enumerate() {
                            let suffix = format!("/conditions/{k}");
                            if let Some(m) = raw.get("conditions").and_then(|v| v.as_array()).and_then(|a| a.get(k)).and_then(Value::as_object) {
                                required(cx, i, m, &suffix, &["label"]);
                            }
                            if let Some(l) = cond.label.as_deref().filter(|l| !l.is_empty())
                                && !labels.insert(l)
                            {
                                cx.at_config(
                                    rules::DUPLICATE_CONDITION_LABEL,
                                    i,
                                    &format!("{suffix}/label"),
                                    format!("condition label `{l}` is used twice"),
                                    "each condition needs its own label (edges are matched by label)",
                                );
                            }
                        }
                    }
                    _ if raw_wrong_type(raw, "conditions", |v| v.as_array().is_some()) => {}
                    _ => cx.at_config(
                        rules::DECIDE_WITHOUT_CONDITIONS,
                        i,
                        "/conditions",
                        "the decide node has no conditions".into(),
                        "add at least one condition `{\"label\": …, \"description\": …}` and an edge per label",
                    ),
                }
                if ai {
                    if !c.model.is_set() {
                        missing_model(cx, i, "an AI decide node");
                    }
                    in_range(
                        cx,
                        i,
                        "/llm_temperature",
                        c.llm_temperature,
                        0.0,
                        2.0,
                        "llm_temperature",
                    );
                    at_least(
                        cx,
                        i,
                        "/llm_max_tokens",
                        c.llm_max_tokens.map(|v| v as f64),
                        1.0,
                        "llm_max_tokens",
                    );
                } else if !c.function.is_set() {
                    cx.at_config(
                        rules::MISSING_FUNCTION,
                        i,
                        "/function_id",
                        "a function decide node has neither `function_id` nor `function_slug`".into(),
                        "set `function_id` (or `function_slug`) to the function that picks the condition",
                    );
                }
            }
            NodeConfig::Function(c) => {
                if !c.function.is_set() {
                    cx.at_config(
                        rules::MISSING_FUNCTION,
                        i,
                        "/function_id",
                        "the function node has neither `function_id` nor `function_slug`".into(),
                        "set `function_id` (or `function_slug`) to the function to call",
                    );
                }
                variable_name(cx, i, "save_response_to", c.save_response_to.as_deref());
            }
            NodeConfig::Webhook(c) => {
                required(cx, i, raw, "", &["url"]);
                if let Some(TextField::Text(url)) = &c.url {
                    url_check(cx, i, "/url", url, "webhook `url`");
                }
                let method_key = if raw.get("method").is_some_and(|v| !v.is_null()) {
                    "method"
                } else {
                    "http_method"
                };
                if let Some(m) = &c.method {
                    method_check(cx, i, &format!("/{method_key}"), m);
                }
                let is_get = c
                    .method
                    .as_deref()
                    .is_some_and(|m| m.eq_ignore_ascii_case("GET"));
                if is_get && c.body_template.is_some() {
                    let key = ["body_template", "body", "request_body"]
                        .into_iter()
                        .find(|k| raw.get(k).is_some_and(|v| !v.is_null()))
                        .unwrap_or("body_template");
                    cx.at_config(
                        rules::WEBHOOK_BODY_IGNORED,
                        i,
                        &format!("/{key}"),
                        format!("`{key}` is set on a GET webhook, which sends no body"),
                        "remove the body, or use POST/PUT/PATCH to send it",
                    );
                }
                variable_name(cx, i, "save_response_to", c.save_response_to.as_deref());
            }
            NodeConfig::SetVariable(c) => {
                required(cx, i, raw, "", &["variable_name"]);
                variable_name(cx, i, "variable_name", c.variable_name.as_deref());
                set_variable_type(cx, i, c.variable_value.as_ref(), c.value_type);
            }
            NodeConfig::Call(c) => {
                if !c.workflow.is_set()
                    && !raw_wrong_type(raw, "workflow_id", |v| v.as_str().is_some())
                    && !raw_wrong_type(raw, "workflow_slug", |v| v.as_str().is_some())
                {
                    cx.at_config(
                        rules::MISSING_REQUIRED_FIELD,
                        i,
                        "/workflow_id",
                        "the call node has neither `workflow_id` nor `workflow_slug`".into(),
                        "set `workflow_slug` (or `workflow_id`) to the flow to call",
                    );
                }
                variable_name(cx, i, "save_error_to", c.save_error_to.as_deref());
            }
            NodeConfig::Agent(c) => {
                required(cx, i, raw, "", &["system_prompt"]);
                if !c.model.is_set() {
                    missing_model(cx, i, "an agent");
                }
                in_range(
                    cx,
                    i,
                    "/temperature",
                    c.temperature,
                    0.0,
                    2.0,
                    "temperature",
                );
                at_least(
                    cx,
                    i,
                    "/max_iterations",
                    c.max_iterations.map(|v| v as f64),
                    1.0,
                    "max_iterations",
                );
                at_least(
                    cx,
                    i,
                    "/max_tokens",
                    c.max_tokens.map(|v| v as f64),
                    1.0,
                    "max_tokens",
                );
                if c.sandbox_enabled == Some(true) {
                    cx.at_config(
                        rules::IGNORED_FEATURE,
                        i,
                        "/sandbox_enabled",
                        "`sandbox_enabled` is kept but the sandbox is not supported by Switchboard"
                            .into(),
                        "remove it, or set it to false: the agent runs without a sandbox",
                    );
                }
                for (key, n) in [
                    ("flow_agent_resources", c.resources),
                    ("flow_agent_app_integration_tools", c.app_integration_tools),
                ] {
                    if n > 0 {
                        cx.at_config(
                            rules::IGNORED_FEATURE,
                            i,
                            &format!("/{key}"),
                            format!("`{key}` has {n} entries, which Switchboard keeps but does not offer to the agent"),
                            "replace them with webhook, function or MCP tools",
                        );
                    }
                }
                for (k, _) in c.webhooks.iter().enumerate() {
                    tool_required(cx, i, raw, "flow_agent_webhooks", k, &["name", "url"]);
                }
                for (k, t) in c.function_tools.iter().enumerate() {
                    tool_required(cx, i, raw, "flow_agent_function_tools", k, &["name"]);
                    if !t.function.is_set() {
                        cx.at_config(
                            rules::MISSING_REQUIRED_FIELD,
                            i,
                            &format!("/flow_agent_function_tools/{k}"),
                            "the function tool has neither `function_id` nor `function_slug`"
                                .into(),
                            "set `function_id` (or `function_slug`)",
                        );
                    }
                }
                for (k, _) in c.mcp_servers.iter().enumerate() {
                    tool_required(cx, i, raw, "flow_agent_mcp_servers", k, &["name", "url"]);
                }
                for (k, _) in c.knowledge_bases.iter().enumerate() {
                    tool_required(
                        cx,
                        i,
                        raw,
                        "flow_agent_knowledge_bases",
                        k,
                        &["name", "knowledge_base_text"],
                    );
                }
                for (k, t) in c.webhooks.iter().enumerate() {
                    if let Some(m) = &t.http_method {
                        let key = tool_key(raw, "flow_agent_webhooks", k, "http_method", "method");
                        method_check(cx, i, &format!("/flow_agent_webhooks/{k}/{key}"), m);
                    }
                    if let Some(u) = &t.url {
                        url_check(
                            cx,
                            i,
                            &format!("/flow_agent_webhooks/{k}/url"),
                            u,
                            "webhook tool `url`",
                        );
                    }
                }
                for (k, t) in c.mcp_servers.iter().enumerate() {
                    if let Some(u) = &t.url {
                        url_check(
                            cx,
                            i,
                            &format!("/flow_agent_mcp_servers/{k}/url"),
                            u,
                            "MCP server `url`",
                        );
                    }
                }
            }
            NodeConfig::EmitEvent(_) => required(cx, i, raw, "", &["event_name"]),
            NodeConfig::Pipedream(c) => {
                cx.at_node(
                    rules::UNSUPPORTED_NODE_TYPE,
                    i,
                    "/data/node_type",
                    "node type `pipedream` is loaded but not run by Switchboard: reaching this node fails it with `unsupported_node`".into(),
                    "replace it with a `webhook` node calling the same action, or give it an `error` edge",
                );
                required(cx, i, raw, "", &["app_slug", "action_id"]);
                variable_name(cx, i, "save_response_to", c.save_response_to.as_deref());
            }
            NodeConfig::Start | NodeConfig::Handoff(_) | NodeConfig::Unknown => {}
        }
    }
}

fn settings(cx: &mut Ctx) {
    let s = cx.flow.settings();
    let base = cx.flow.body_pointer() + "/settings";
    if let Some(d) = s.message_debounce_seconds
        && d < 0.0
    {
        cx.at_flow(
            rules::VALUE_OUT_OF_RANGE,
            format!("{base}/message_debounce_seconds"),
            format!("`message_debounce_seconds` is {}, below 0", fmt_num(d)),
            "use 0 (no debounce) or a positive number of seconds",
        );
    }
    if let Some(m) = s.max_steps_per_turn
        && m < 1
    {
        cx.at_flow(
            rules::VALUE_OUT_OF_RANGE,
            format!("{base}/max_steps_per_turn"),
            format!("`max_steps_per_turn` is {m}, below 1"),
            "use a positive whole number (default 1000)",
        );
    }
}

/// `true` when `key` holds a non-null value that the typed projection could not read (a wrong
/// type, already reported as `invalid-field-type`).
fn raw_wrong_type(raw: &Map, key: &str, accepted: fn(&Value) -> bool) -> bool {
    matches!(raw.get(key), Some(v) if !v.is_null() && !accepted(v))
}

/// Reports each key that is absent, `null`, `""` or only whitespace in `map` (found at config
/// path `suffix`).
fn required(cx: &mut Ctx, i: usize, map: &Map, suffix: &str, keys: &[&str]) {
    for key in keys {
        let missing = match map.get(key) {
            None | Some(Value::Null) => true,
            // A required text holding only whitespace is empty (kapso-project §4.6).
            Some(Value::String(s)) => s.trim().is_empty(),
            Some(_) => false,
        };
        if missing {
            let what = if suffix.is_empty() {
                format!("`{key}` is required")
            } else {
                format!(
                    "`{key}` is required in `{}`",
                    suffix.trim_start_matches('/').replace('/', ".")
                )
            };
            let present = map.contains_key(key);
            let ptr = if present {
                format!("{suffix}/{}", tok(key))
            } else {
                suffix.to_owned()
            };
            let blank = matches!(map.get(key), Some(Value::String(s)) if !s.is_empty());
            cx.at_config(
                rules::MISSING_REQUIRED_FIELD,
                i,
                &ptr,
                format!(
                    "{what} for a {} node{}",
                    cx.node(i).node_type().unwrap_or("?"),
                    if blank {
                        " (it holds only whitespace)"
                    } else {
                        ""
                    }
                ),
                format!("set `{key}` to a non-empty value"),
            );
        }
    }
}

fn tool_required(cx: &mut Ctx, i: usize, raw: &Map, list: &str, k: usize, keys: &[&str]) {
    if let Some(m) = raw
        .get(list)
        .and_then(Value::as_array)
        .and_then(|a| a.get(k))
        .and_then(Value::as_object)
    {
        required(cx, i, m, &format!("/{list}/{k}"), keys);
    }
}

/// Which spelling of an aliased tool key is in use.
fn tool_key(
    raw: &Map,
    list: &str,
    k: usize,
    canonical: &'static str,
    alias: &'static str,
) -> &'static str {
    let m = raw
        .get(list)
        .and_then(Value::as_array)
        .and_then(|a| a.get(k))
        .and_then(Value::as_object);
    match m {
        Some(m) if m.get(canonical).is_none_or(Value::is_null) && m.contains_key(alias) => alias,
        _ => canonical,
    }
}

fn send_interactive(cx: &mut Ctx, i: usize, raw: &Map, c: &SendInteractive) {
    required(cx, i, raw, "", &["interactive_type", "body_text"]);
    let Some(t) = c.interactive_type else { return };
    if !t.is_supported() {
        cx.at_config(
            rules::UNSUPPORTED_INTERACTIVE_TYPE,
            i,
            "/interactive_type",
            format!(
                "interactive type `{}` is a Kapso type that Switchboard does not send",
                t.as_str()
            ),
            "use `button`, `list`, `cta_url`, `flow` or `location_request_message`",
        );
        return;
    }
    match t {
        InteractiveType::Button => required(cx, i, raw, "", &["buttons"]),
        InteractiveType::List => required(cx, i, raw, "", &["list_sections", "list_button_text"]),
        InteractiveType::CtaUrl => {
            required(cx, i, raw, "", &["cta_display_text", "cta_url"]);
            if let Some(u) = &c.cta_url {
                url_check(cx, i, "/cta_url", u, "`cta_url`");
            }
        }
        InteractiveType::Flow => {
            required(cx, i, raw, "", &["flow_id", "flow_cta"]);
            let _ = FlowAction::Navigate;
        }
        _ => {}
    }
    if t == InteractiveType::LocationRequestMessage {
        return; // header and footer keys are ignored for location requests
    }
    if let Some(buttons) = raw.get("buttons").and_then(Value::as_array)
        && t == InteractiveType::Button
    {
        for (k, b) in buttons.iter().enumerate() {
            if let Some(m) = b.as_object() {
                required(cx, i, m, &format!("/buttons/{k}"), &["id", "title"]);
            }
        }
    }
    if t == InteractiveType::List
        && let Some(sections) = raw.get("list_sections").and_then(Value::as_array)
    {
        for (s, sec) in sections.iter().enumerate() {
            let rows = sec
                .as_object()
                .and_then(|m| m.get("rows"))
                .and_then(Value::as_array);
            for (r, row) in rows.into_iter().flatten().enumerate() {
                if let Some(m) = row.as_object() {
                    required(
                        cx,
                        i,
                        m,
                        &format!("/list_sections/{s}/rows/{r}"),
                        &["id", "title"],
                    );
                }
            }
        }
    }
    match c.header_type {
        Some(HeaderType::Text) => required(cx, i, raw, "", &["header_text"]),
        Some(h) if h.is_media() => {
            required(cx, i, raw, "", &["header_media_url"]);
            if let Some(u) = &c.header_media_url {
                url_check(cx, i, "/header_media_url", u, "`header_media_url`");
            }
        }
        _ => {}
    }
}

fn missing_model(cx: &mut Ctx, i: usize, what: &str) {
    cx.at_config(
        rules::MISSING_MODEL,
        i,
        "",
        format!(
            "{what} needs a model, but neither `provider_model_id` nor `provider_model_name` is set"
        ),
        "set `provider_model_name` (e.g. \"gpt-4o-mini\") or `provider_model_id`",
    );
}

pub(crate) fn url_check(cx: &mut Ctx, i: usize, suffix: &str, url: &str, what: &str) {
    if url.is_empty() || is_dynamic(url) || is_http_url(url) {
        return;
    }
    cx.at_config(
        rules::INVALID_URL,
        i,
        suffix,
        format!("{what} `{}` is not an absolute http(s) URL", excerpt(url)),
        "write the full URL, starting with https://",
    );
}

fn method_check(cx: &mut Ctx, i: usize, suffix: &str, m: &str) {
    if HttpMethod::parse(m).is_none() {
        cx.at_config(
            rules::INVALID_HTTP_METHOD,
            i,
            suffix,
            format!(
                "HTTP method `{}` is not one of GET, POST, PUT, PATCH, DELETE",
                excerpt(m)
            ),
            "use GET, POST, PUT, PATCH or DELETE",
        );
    }
}

fn variable_name(cx: &mut Ctx, i: usize, key: &str, name: Option<&str>) {
    let Some(name) = name.filter(|n| !n.is_empty()) else {
        return;
    };
    if !is_var_name(name) {
        let hint = if name.contains('.') {
            "a dotted name is not a path: write the plain variable name (e.g. `crm`, not `vars.crm`)"
        } else {
            "use letters, digits and `_`, not starting with a digit"
        };
        cx.at_config(
            rules::INVALID_VARIABLE_NAME,
            i,
            &format!("/{key}"),
            format!(
                "`{key}` is `{}`, not a variable name (^[A-Za-z_][A-Za-z0-9_]*$)",
                excerpt(name)
            ),
            hint,
        );
    } else if RESERVED_NAMES.contains(&name) {
        cx.at_config(
            rules::RESERVED_VARIABLE_NAME,
            i,
            &format!("/{key}"),
            format!("`{key}` is `{name}`, a reserved name"),
            "`vars`, `system`, `context`, `metadata` and `last_user_input` cannot be written: choose another name",
        );
    }
}

fn contains_template(v: &Value) -> bool {
    match v {
        Value::String(s) => crate::util::has_template(s),
        Value::Array(a) => a.iter().any(contains_template),
        Value::Object(m) => m.iter().any(|(_, v)| contains_template(v)),
        _ => false,
    }
}

fn set_variable_type(cx: &mut Ctx, i: usize, value: Option<&Value>, value_type: Option<ValueType>) {
    let Some(vt) = value_type else { return };
    let null = Value::Null;
    let v = value.unwrap_or(&null);
    if contains_template(v) {
        return;
    }
    let ok = match vt {
        ValueType::String | ValueType::Json if !matches!(v, Value::String(_)) => true,
        ValueType::String => true,
        ValueType::Number => match v {
            Value::Int(_) | Value::Float(_) => true,
            Value::String(s) => matches!(
                switchboard_model::json::parse(s.trim()),
                Ok(Value::Int(_) | Value::Float(_))
            ),
            _ => false,
        },
        ValueType::Boolean => match v {
            Value::Bool(_) => true,
            Value::String(s) => {
                let t = s.trim();
                t.eq_ignore_ascii_case("true") || t.eq_ignore_ascii_case("false")
            }
            _ => false,
        },
        ValueType::Json => match v {
            Value::String(s) => switchboard_model::json::parse(s).is_ok(),
            _ => true,
        },
    };
    if !ok {
        let shown = match v {
            Value::String(s) => format!("\"{}\"", excerpt(s)),
            Value::Null => "null".to_owned(),
            other => excerpt(&switchboard_model::json::to_string(
                other,
                switchboard_model::json::Style::Compact,
            )),
        };
        let ty = match vt {
            ValueType::String => "string",
            ValueType::Number => "number",
            ValueType::Boolean => "boolean",
            ValueType::Json => "json",
        };
        cx.at_config(
            rules::INVALID_SET_VARIABLE_TYPE,
            i,
            "/variable_value",
            format!("`variable_value` {shown} cannot be converted to `{ty}`"),
            format!("write a value that converts to `{ty}`, or change `value_type`"),
        );
    }
}

fn in_range(cx: &mut Ctx, i: usize, suffix: &str, v: Option<f64>, lo: f64, hi: f64, key: &str) {
    if let Some(v) = v
        && !(lo..=hi).contains(&v)
    {
        cx.at_config(
            rules::VALUE_OUT_OF_RANGE,
            i,
            suffix,
            format!(
                "`{key}` is {}, outside {}–{}",
                fmt_num(v),
                fmt_num(lo),
                fmt_num(hi)
            ),
            format!("use a value from {} to {}", fmt_num(lo), fmt_num(hi)),
        );
    }
}

fn at_least(cx: &mut Ctx, i: usize, suffix: &str, v: Option<f64>, lo: f64, key: &str) {
    if let Some(v) = v
        && v < lo
    {
        cx.at_config(
            rules::VALUE_OUT_OF_RANGE,
            i,
            suffix,
            format!("`{key}` is {}, below {}", fmt_num(v), fmt_num(lo)),
            format!("use a value of at least {}", fmt_num(lo)),
        );
    }
}

pub(crate) fn fmt_num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}
