//! Kapso projects — the repository `kapso pull` writes — as the validator sees them: the
//! `workflow.yaml` settings file (`invalid-workflow-file`, `invalid-trigger`,
//! `unsupported-trigger`), `function.yaml`, `.kapso/remote-map.json`, the checks across a
//! project's workflows (`duplicate-inbound-trigger`, `missing-definition`, `stale-definition`),
//! and the project as the registry of `unresolved-reference` and `call-cycle`.
//!
//! Pure like the rest of the core: every function takes text or values. The file-system front
//! end (`fs`, for command-line tools) finds the files, reads them and hands their text over.
//!
//! ```
//! use switchboard_validator::project::{WorkflowStatus, read_workflow_file};
//!
//! let (file, diagnostics) = read_workflow_file(
//!     "name: Support\nslug: support\nstatus: live\ntriggers:\n  - {triggerType: inbound_message}\n",
//!     "support",
//! );
//! let rules: Vec<&str> = diagnostics.iter().map(|d| d.rule).collect();
//! assert_eq!(rules, ["invalid-workflow-file", "invalid-trigger"]);
//! assert_eq!(file.unwrap().status, WorkflowStatus::Draft);
//! ```

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use switchboard_model::config::NodeConfig;
use switchboard_model::{Flow, Pos, Value};

use crate::rules::{self, Rule};
use crate::{Diagnostic, FlowEntry, Registries};

/// The file whose presence makes a directory a Kapso project.
pub const PROJECT_MARKER: &str = "kapso.yaml";

/// The keys a `workflow.yaml` may hold.
pub const WORKFLOW_KEYS: &[&str] = &["definition", "name", "slug", "status", "triggers"];

/// The keys a trigger of a `workflow.yaml` may hold.
pub const TRIGGER_KEYS: &[&str] = &[
    "triggerType",
    "active",
    "phoneNumberId",
    "event",
    "triggerableAttributes",
];

/// The events a `whatsapp_event` trigger may name.
pub const WHATSAPP_EVENTS: &[&str] = &[
    "whatsapp.message.received",
    "whatsapp.message.sent",
    "whatsapp.message.failed",
    "whatsapp.conversation.created",
    "whatsapp.conversation.ended",
];

/// The operators of a `project_event` trigger's filter (`gt`, `gte`, `lt`, `lte` compare
/// numbers).
pub const PROJECT_EVENT_OPERATORS: &[&str] = &["eq", "gt", "gte", "lt", "lte"];

/// The definition file of a workflow whose `workflow.yaml` names none.
pub const DEFAULT_DEFINITION: &str = "definition.json";

/// A workflow's `status`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkflowStatus {
    /// Not started by messages (the default).
    #[default]
    Draft,
    /// Live: its `inbound_message` triggers start it.
    Active,
    /// Stopped: not started by messages.
    Paused,
}

impl WorkflowStatus {
    /// `draft`, `active` or `paused`.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkflowStatus::Draft => "draft",
            WorkflowStatus::Active => "active",
            WorkflowStatus::Paused => "paused",
        }
    }

    fn parse(s: &str) -> Option<WorkflowStatus> {
        match s {
            "draft" => Some(WorkflowStatus::Draft),
            "active" => Some(WorkflowStatus::Active),
            "paused" => Some(WorkflowStatus::Paused),
            _ => None,
        }
    }
}

/// A trigger's `triggerType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerKind {
    /// A WhatsApp message on `phoneNumberId` starts the workflow.
    InboundMessage,
    /// The executions API starts it.
    ApiCall,
    /// A WhatsApp event (accepted, not yet run: `unsupported-trigger`).
    WhatsappEvent,
    /// A project event (accepted, not yet run: `unsupported-trigger`).
    ProjectEvent,
}

impl TriggerKind {
    /// The `triggerType` spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            TriggerKind::InboundMessage => "inbound_message",
            TriggerKind::ApiCall => "api_call",
            TriggerKind::WhatsappEvent => "whatsapp_event",
            TriggerKind::ProjectEvent => "project_event",
        }
    }

    fn parse(s: &str) -> Option<TriggerKind> {
        match s {
            "inbound_message" => Some(TriggerKind::InboundMessage),
            "api_call" => Some(TriggerKind::ApiCall),
            "whatsapp_event" => Some(TriggerKind::WhatsappEvent),
            "project_event" => Some(TriggerKind::ProjectEvent),
            _ => None,
        }
    }
}

/// One trigger of a `workflow.yaml` (only the well-formed ones are kept).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkflowTrigger {
    /// `triggerType`
    pub kind: TriggerKind,
    /// `active` (default true)
    pub active: bool,
    /// `phoneNumberId` (inbound messages and WhatsApp events)
    pub phone_number_id: Option<String>,
    /// `event` (WhatsApp events)
    pub event: Option<String>,
    /// Its JSON pointer in the file (`/triggers/0`).
    pub pointer: String,
}

/// A `workflow.yaml`: a workflow's settings and triggers.
#[derive(Clone, Debug)]
pub struct WorkflowFile {
    /// `name`
    pub name: Option<String>,
    /// `slug` (when well formed)
    pub slug: Option<String>,
    /// `status` (default `draft`)
    pub status: WorkflowStatus,
    /// `definition`: the graph's path relative to the file (default `definition.json`).
    pub definition: String,
    /// The well-formed triggers, in file order.
    pub triggers: Vec<WorkflowTrigger>,
    root: Value,
}

impl WorkflowFile {
    /// The position of a JSON pointer into the file (its nearest known ancestor's).
    pub fn pos_at(&self, pointer: &str) -> Pos {
        self.root.pos_at(pointer).or(Pos::new(0))
    }

    /// `true` when the file has a `definition` key.
    fn names_definition(&self) -> bool {
        matches!(&self.root, Value::Object(m) if m.contains_key("definition"))
    }
}

/// `^[a-z0-9]+(?:-[a-z0-9]+)*$`: a Kapso slug.
pub fn is_slug(s: &str) -> bool {
    !s.is_empty()
        && s.split('-').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

/// A diagnostic at `pointer` of a project file whose root value is `root`.
fn at(root: Option<&Value>, rule: Rule, pointer: &str, message: String, help: &str) -> Diagnostic {
    let pos = root.map_or(Pos::new(0), |r| r.pos_at(pointer).or(Pos::new(0)));
    Diagnostic {
        rule: rule.name,
        severity: rule.severity,
        message,
        node: None,
        edge: None,
        pointer: pointer.to_owned(),
        line: None,
        column: None,
        help: Some(help.to_owned()),
        pos,
    }
}

/// Parses YAML project files (`workflow.yaml`, `function.yaml`, `kapso.yaml`).
#[cfg(feature = "yaml")]
fn parse_yaml(text: &str) -> Result<Value, switchboard_model::SyntaxError> {
    switchboard_model::yaml::parse(text.trim_start_matches('\u{feff}'))
}

#[cfg(not(feature = "yaml"))]
fn parse_yaml(_text: &str) -> Result<Value, switchboard_model::SyntaxError> {
    Err(switchboard_model::SyntaxError {
        message: "YAML support is not compiled in (the validator's `yaml` feature is off)".into(),
        pos: Pos::new(0),
    })
}

/// Reads a `workflow.yaml` (in the folder `folder` of `workflows/`): its settings, and every
/// problem as a diagnostic with a position (lines and columns are added by
/// [`crate::project_report`]). The settings are `None` when the file is not a YAML mapping.
pub fn read_workflow_file(text: &str, folder: &str) -> (Option<WorkflowFile>, Vec<Diagnostic>) {
    let mut out = Vec::new();
    let root = match parse_yaml(text) {
        Ok(v) => v,
        Err(e) => {
            let mut d = at(
                None,
                rules::INVALID_WORKFLOW_FILE,
                "",
                format!("`workflow.yaml` is not valid YAML: {}", e.message),
                "fix the syntax: the file is written by `kapso pull` as one YAML mapping",
            );
            d.pos = e.pos;
            out.push(d);
            return (None, out);
        }
    };
    let Value::Object(map) = &root else {
        out.push(at(
            Some(&root),
            rules::INVALID_WORKFLOW_FILE,
            "",
            format!(
                "`workflow.yaml` must be a mapping, found {}",
                article(root.type_name())
            ),
            "write `name`, `slug`, `status`, `definition` and `triggers` as keys of one mapping",
        ));
        return (None, out);
    };
    let bad = |out: &mut Vec<Diagnostic>, pointer: &str, message: String, help: &str| {
        out.push(at(
            Some(&root),
            rules::INVALID_WORKFLOW_FILE,
            pointer,
            message,
            help,
        ));
    };
    for key in map.keys() {
        if !WORKFLOW_KEYS.contains(&key) {
            bad(
                &mut out,
                &format!("/{}", crate::util::tok(key)),
                format!("unknown key `{key}` in `workflow.yaml`"),
                "`workflow.yaml` holds `definition`, `name`, `slug`, `status` and `triggers`; remove the key",
            );
        }
    }
    let string = |out: &mut Vec<Diagnostic>, key: &str| -> Option<String> {
        match map.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.to_string()),
            Some(v) => {
                out.push(at(
                    Some(&root),
                    rules::INVALID_WORKFLOW_FILE,
                    &format!("/{key}"),
                    format!("`{key}` must be a string, found {}", article(v.type_name())),
                    "write a string here",
                ));
                None
            }
        }
    };
    let name = string(&mut out, "name");
    let mut slug = string(&mut out, "slug");
    if let Some(s) = &slug {
        if !is_slug(s) {
            bad(
                &mut out,
                "/slug",
                format!(
                    "slug `{}` is not kebab-case (lowercase letters and digits joined by `-`)",
                    crate::util::excerpt(s)
                ),
                "use lowercase letters, digits and single hyphens, e.g. `order-status`",
            );
            slug = None;
        } else if s != folder {
            bad(
                &mut out,
                "/slug",
                format!("slug `{s}` is not the workflow's folder name `{folder}`"),
                "the slug and the folder under `workflows/` must be equal: rename one of them",
            );
        }
    }
    let status = match string(&mut out, "status") {
        None => WorkflowStatus::Draft,
        Some(s) => match WorkflowStatus::parse(&s) {
            Some(st) => st,
            None => {
                bad(
                    &mut out,
                    "/status",
                    format!(
                        "status `{}` is not `draft`, `active` or `paused`",
                        crate::util::excerpt(&s)
                    ),
                    "use `draft` (the default), `active` or `paused`",
                );
                WorkflowStatus::Draft
            }
        },
    };
    let definition = string(&mut out, "definition")
        .filter(|d| !d.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_DEFINITION.to_owned());
    let mut triggers = Vec::new();
    match map.get("triggers") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for (k, item) in items.iter().enumerate() {
                if let Some(t) = trigger(&root, k, item, &mut out) {
                    triggers.push(t);
                }
            }
        }
        Some(v) => bad(
            &mut out,
            "/triggers",
            format!(
                "`triggers` must be a list, found {}",
                article(v.type_name())
            ),
            "write `triggers:` as a list of `{triggerType: …}` mappings",
        ),
    }
    let file = WorkflowFile {
        name,
        slug,
        status,
        definition,
        triggers,
        root: root.clone(),
    };
    (Some(file), out)
}

/// Checks one trigger; returns it when it is well formed enough to act on.
fn trigger(
    root: &Value,
    k: usize,
    item: &Value,
    out: &mut Vec<Diagnostic>,
) -> Option<WorkflowTrigger> {
    let base = format!("/triggers/{k}");
    let invalid = |out: &mut Vec<Diagnostic>, suffix: &str, message: String, help: &str| {
        out.push(at(
            Some(root),
            rules::INVALID_TRIGGER,
            &format!("{base}{suffix}"),
            message,
            help,
        ));
    };
    let Value::Object(m) = item else {
        invalid(
            out,
            "",
            format!(
                "trigger {k} must be a mapping, found {}",
                article(item.type_name())
            ),
            "write the trigger as `{triggerType: inbound_message, phoneNumberId: \"…\"}`",
        );
        return None;
    };
    for key in m.keys() {
        if !TRIGGER_KEYS.contains(&key) {
            out.push(at(
                Some(root),
                rules::INVALID_WORKFLOW_FILE,
                &format!("{base}/{}", crate::util::tok(key)),
                format!("unknown key `{key}` in trigger {k}"),
                "a trigger holds `triggerType`, `active`, `phoneNumberId`, `event` and `triggerableAttributes`",
            ));
        }
    }
    let active = match m.get("active") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(v) => {
            out.push(at(
                Some(root),
                rules::INVALID_WORKFLOW_FILE,
                &format!("{base}/active"),
                format!(
                    "`active` must be a boolean, found {}",
                    article(v.type_name())
                ),
                "write `active: true` or `active: false`",
            ));
            true
        }
    };
    let kind = match m.get("triggerType") {
        Some(Value::String(s)) => match TriggerKind::parse(s) {
            Some(kind) => kind,
            None => {
                invalid(
                    out,
                    "/triggerType",
                    format!("unknown trigger type `{}`", crate::util::excerpt(s)),
                    "use `inbound_message`, `api_call`, `whatsapp_event` or `project_event`",
                );
                return None;
            }
        },
        None | Some(Value::Null) => {
            invalid(
                out,
                "",
                format!("trigger {k} has no `triggerType`"),
                "add `triggerType: inbound_message` (or `api_call`, `whatsapp_event`, `project_event`)",
            );
            return None;
        }
        Some(v) => {
            invalid(
                out,
                "/triggerType",
                format!(
                    "`triggerType` must be a string, found {}",
                    article(v.type_name())
                ),
                "use `inbound_message`, `api_call`, `whatsapp_event` or `project_event`",
            );
            return None;
        }
    };
    // A phone number id is text; YAML writes an unquoted one as an integer, which is kept.
    let phone_number_id = match m.get("phoneNumberId") {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Some(Value::Int(n)) if *n >= 0 => Some(n.to_string()),
        None | Some(Value::Null) | Some(Value::String(_)) => None,
        Some(v) => {
            invalid(
                out,
                "/phoneNumberId",
                format!(
                    "`phoneNumberId` must be a string, found {}",
                    article(v.type_name())
                ),
                "quote the number: `phoneNumberId: \"1116152648243594\"`",
            );
            return None;
        }
    };
    let mut event = None;
    match kind {
        TriggerKind::InboundMessage => {
            if phone_number_id.is_none() {
                invalid(
                    out,
                    "",
                    format!("the inbound_message trigger {k} has no `phoneNumberId`"),
                    "add the business number it listens on: `phoneNumberId: \"1116152648243594\"`",
                );
                return None;
            }
        }
        TriggerKind::ApiCall => {}
        TriggerKind::WhatsappEvent => {
            match m.get("event") {
                Some(Value::String(s)) if WHATSAPP_EVENTS.contains(&s.as_str()) => {
                    event = Some(s.to_string());
                }
                Some(Value::String(s)) if !s.is_empty() => {
                    invalid(
                        out,
                        "/event",
                        format!("unknown WhatsApp event `{}`", crate::util::excerpt(s)),
                        "use one of `whatsapp.message.received`, `whatsapp.message.sent`, `whatsapp.message.failed`, `whatsapp.conversation.created`, `whatsapp.conversation.ended`",
                    );
                    return None;
                }
                _ => {
                    let suffix = if m.contains_key("event") {
                        "/event"
                    } else {
                        ""
                    };
                    invalid(
                        out,
                        suffix,
                        format!("the whatsapp_event trigger {k} names no `event`"),
                        "add `event: whatsapp.message.received` (or another WhatsApp event)",
                    );
                    return None;
                }
            }
            unsupported(root, &base, kind, out);
        }
        TriggerKind::ProjectEvent => {
            if !project_event_filter(root, &base, m.get("triggerableAttributes"), out) {
                return None;
            }
            unsupported(root, &base, kind, out);
        }
    }
    Some(WorkflowTrigger {
        kind,
        active,
        phone_number_id,
        event,
        pointer: base,
    })
}

fn unsupported(root: &Value, base: &str, kind: TriggerKind, out: &mut Vec<Diagnostic>) {
    out.push(at(
        Some(root),
        rules::UNSUPPORTED_TRIGGER,
        &format!("{base}/triggerType"),
        format!(
            "`{}` triggers are accepted but not run by Switchboard yet",
            kind.as_str()
        ),
        "start this workflow with an `inbound_message` trigger or through the executions API",
    ));
}

/// Checks a `project_event` trigger's `triggerableAttributes`; `false` when it is unusable.
fn project_event_filter(
    root: &Value,
    base: &str,
    attrs: Option<&Value>,
    out: &mut Vec<Diagnostic>,
) -> bool {
    let ptr = format!("{base}/triggerableAttributes");
    let invalid = |out: &mut Vec<Diagnostic>, pointer: &str, message: String, help: &str| {
        out.push(at(
            Some(root),
            rules::INVALID_TRIGGER,
            pointer,
            message,
            help,
        ));
    };
    let m = match attrs {
        Some(Value::Object(m)) => m,
        None | Some(Value::Null) => {
            invalid(
                out,
                base,
                "the project_event trigger has no `triggerableAttributes`".into(),
                "add `triggerableAttributes: {event_name: order_paid}` (and optionally a filter)",
            );
            return false;
        }
        Some(v) => {
            invalid(
                out,
                &ptr,
                format!(
                    "`triggerableAttributes` must be a mapping, found {}",
                    article(v.type_name())
                ),
                "write `triggerableAttributes: {event_name: …, property_key: …, operator: …, property_value: …}`",
            );
            return false;
        }
    };
    match m.get("event_name") {
        Some(Value::String(s)) if !s.trim().is_empty() => {}
        _ => {
            invalid(
                out,
                &ptr,
                "the project_event trigger names no `event_name`".into(),
                "add the project event it listens to: `event_name: order_paid`",
            );
            return false;
        }
    }
    let filter = ["property_key", "operator", "property_value"];
    let present: Vec<&str> = filter
        .iter()
        .copied()
        .filter(|k| m.get(k).is_some_and(|v| !v.is_null()))
        .collect();
    if !present.is_empty() && present.len() < filter.len() {
        let missing: Vec<String> = filter
            .iter()
            .filter(|k| !present.contains(k))
            .map(|k| format!("`{k}`"))
            .collect();
        invalid(
            out,
            &ptr,
            format!(
                "the filter of the project_event trigger lacks {}",
                missing.join(" and ")
            ),
            "give all three of `property_key`, `operator` and `property_value`, or none",
        );
        return false;
    }
    if present.len() == filter.len() {
        match m.get("operator") {
            Some(Value::String(op)) if PROJECT_EVENT_OPERATORS.contains(&op.as_str()) => {
                let numeric = op != "eq";
                let value = m.get("property_value");
                if numeric && !matches!(value, Some(Value::Int(_) | Value::Float(_))) {
                    invalid(
                        out,
                        &format!("{ptr}/property_value"),
                        format!(
                            "operator `{op}` compares numbers, but `property_value` is not a number"
                        ),
                        "write a number (`property_value: 100`), or use `eq`",
                    );
                    return false;
                }
            }
            Some(other) => {
                let shown = other
                    .as_str()
                    .map_or_else(|| other.type_name().to_owned(), crate::util::excerpt);
                invalid(
                    out,
                    &format!("{ptr}/operator"),
                    format!("unknown operator `{shown}`"),
                    "use `eq`, `gt`, `gte`, `lt` or `lte`",
                );
                return false;
            }
            None => return false,
        }
    }
    true
}

fn article(type_name: &str) -> String {
    let a = match type_name.as_bytes().first() {
        Some(b'a' | b'e' | b'i' | b'o' | b'u') => "an",
        _ => "a",
    };
    format!("{a} {type_name}")
}

/// A `function.yaml`: a function's settings (the keys Switchboard uses; others are ignored).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FunctionFile {
    /// `name`
    pub name: Option<String>,
    /// `slug`
    pub slug: Option<String>,
    /// `entrypoint` (default `index.js`)
    pub entrypoint: Option<String>,
    /// `function_type`: `cloudflare_worker` or `supabase_function`.
    pub function_type: Option<String>,
    /// `runtime_config.timeout`, in seconds.
    pub timeout_seconds: Option<f64>,
    /// `runtime_config.memory`, in MB.
    pub memory_mb: Option<f64>,
}

/// Reads a `function.yaml`; `Err` says why it cannot be used (a message without a position).
pub fn read_function_file(text: &str) -> Result<FunctionFile, String> {
    let root = parse_yaml(text).map_err(|e| format!("not valid YAML: {}", e.message))?;
    let Value::Object(m) = &root else {
        return Err(format!(
            "must be a mapping, found {}",
            article(root.type_name())
        ));
    };
    let string = |key: &str| -> Result<Option<String>, String> {
        match m.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.to_string())),
            Some(v) => Err(format!(
                "`{key}` must be a string, found {}",
                article(v.type_name())
            )),
        }
    };
    let mut file = FunctionFile {
        name: string("name")?,
        slug: string("slug")?,
        entrypoint: string("entrypoint")?,
        function_type: string("function_type")?,
        ..FunctionFile::default()
    };
    match m.get("runtime_config") {
        None | Some(Value::Null) => {}
        Some(Value::Object(rc)) => {
            let positive = |key: &str| -> Result<Option<f64>, String> {
                match rc.get(key) {
                    None | Some(Value::Null) => Ok(None),
                    Some(v) => match v
                        .as_f64()
                        .or_else(|| v.as_str().and_then(switchboard_model::parse_decimal))
                    {
                        Some(n) if n.is_finite() && n > 0.0 => Ok(Some(n)),
                        _ => Err(format!("`runtime_config.{key}` must be a positive number")),
                    },
                }
            };
            file.timeout_seconds = positive("timeout")?;
            file.memory_mb = positive("memory")?;
        }
        Some(v) => {
            return Err(format!(
                "`runtime_config` must be a mapping, found {}",
                article(v.type_name())
            ));
        }
    }
    Ok(file)
}

/// What `.kapso/remote-map.json` says about one function or workflow.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RemoteEntry {
    /// The Kapso uuid (`function_id`, `workflow_id` in pulled files).
    pub id: Option<String>,
    /// The slug.
    pub slug: Option<String>,
    /// `generatedSource.hash`: the sha256 (hex) of the pulled `workflow.js`.
    pub generated_hash: Option<String>,
}

/// `.kapso/remote-map.json`: the last pulled remote state, the only local map from Kapso uuids
/// to slugs. Only the parts Switchboard uses are kept.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RemoteMap {
    /// Functions by slug.
    pub functions: BTreeMap<String, RemoteEntry>,
    /// Workflows by slug.
    pub workflows: BTreeMap<String, RemoteEntry>,
}

impl RemoteMap {
    /// Reads the map; `Err` when it is not JSON or not an object.
    pub fn parse(text: &str) -> Result<RemoteMap, String> {
        let root: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
        let Some(root) = root.as_object() else {
            return Err("not a JSON object".to_owned());
        };
        let section = |key: &str| -> BTreeMap<String, RemoteEntry> {
            let Some(entries) = root.get(key).and_then(serde_json::Value::as_object) else {
                return BTreeMap::new();
            };
            entries
                .iter()
                .map(|(slug, e)| {
                    let text = |k: &str| {
                        e.get(k)
                            .and_then(serde_json::Value::as_str)
                            .map(str::to_owned)
                    };
                    let entry = RemoteEntry {
                        id: text("id").filter(|s| !s.is_empty()),
                        slug: text("slug"),
                        generated_hash: e
                            .get("generatedSource")
                            .and_then(|g| g.get("hash"))
                            .and_then(serde_json::Value::as_str)
                            .map(|h| h.trim().to_ascii_lowercase()),
                    };
                    (slug.clone(), entry)
                })
                .collect()
        };
        Ok(RemoteMap {
            functions: section("functions"),
            workflows: section("workflows"),
        })
    }

    /// The Kapso uuid of a workflow slug.
    pub fn workflow_id(&self, slug: &str) -> Option<&str> {
        self.workflows.get(slug).and_then(|e| e.id.as_deref())
    }

    /// The Kapso uuid of a function slug.
    pub fn function_id(&self, slug: &str) -> Option<&str> {
        self.functions.get(slug).and_then(|e| e.id.as_deref())
    }
}

/// What the checks across a project need to know about one workflow.
#[derive(Clone, Copy, Debug)]
pub struct WorkflowFacts<'a> {
    /// Its slug (its id).
    pub slug: &'a str,
    /// Its `workflow.yaml`.
    pub file: &'a WorkflowFile,
    /// Whether its definition file exists.
    pub definition_exists: bool,
    /// Why its definition may be stale: `Some("workflow.ts")` when a `workflow.ts` exists,
    /// `Some("workflow.js")` when `workflow.js` differs from the remote map's hash.
    pub stale_source: Option<&'a str>,
}

/// The checks across a project's workflows (`missing-definition`, `stale-definition`,
/// `duplicate-inbound-trigger`): one list of diagnostics per workflow, in the order given,
/// each positioned in that workflow's `workflow.yaml`.
pub fn check_workflows(workflows: &[WorkflowFacts<'_>]) -> Vec<Vec<Diagnostic>> {
    let mut out: Vec<Vec<Diagnostic>> = vec![Vec::new(); workflows.len()];
    for (w, facts) in workflows.iter().enumerate() {
        let file = facts.file;
        let ptr = if file.names_definition() {
            "/definition"
        } else {
            ""
        };
        if !facts.definition_exists {
            out[w].push(at(
                Some(&file.root),
                rules::MISSING_DEFINITION,
                ptr,
                format!(
                    "the definition file `{}` of workflow `{}` does not exist",
                    file.definition, facts.slug
                ),
                "run `kapso build` to write it from the workflow's source, or fix `definition`",
            ));
        } else if let Some(source) = facts.stale_source {
            let why = if source == "workflow.ts" {
                "a `workflow.ts` exists".to_owned()
            } else {
                format!("`{source}` was edited since it was pulled")
            };
            out[w].push(at(
                Some(&file.root),
                rules::STALE_DEFINITION,
                ptr,
                format!(
                    "`{}` may not match the workflow's source: {why}",
                    file.definition
                ),
                "run `kapso build` to write the definition from the source again",
            ));
        }
    }
    // One number starts one workflow: the first active workflow claiming a number keeps it.
    let mut claimed: BTreeMap<&str, &str> = BTreeMap::new();
    for (w, facts) in workflows.iter().enumerate() {
        if facts.file.status != WorkflowStatus::Active {
            continue;
        }
        let mut mine: BTreeSet<&str> = BTreeSet::new();
        for t in &facts.file.triggers {
            let (TriggerKind::InboundMessage, true, Some(number)) =
                (t.kind, t.active, t.phone_number_id.as_deref())
            else {
                continue;
            };
            let first = if mine.contains(number) {
                Some(facts.slug)
            } else {
                claimed.get(number).copied()
            };
            if let Some(first) = first {
                out[w].push(at(
                    Some(&facts.file.root),
                    rules::DUPLICATE_INBOUND_TRIGGER,
                    &format!("{}/phoneNumberId", t.pointer),
                    format!("number `{number}` already starts the active workflow `{first}`"),
                    "a number starts one workflow: deactivate one trigger (`active: false`) or set one workflow's status to `paused`",
                ));
            } else {
                claimed.insert(number, facts.slug);
                mine.insert(number);
            }
        }
    }
    out
}

/// One workflow as a registry entry: its identifiers and its flow (when it loaded).
#[derive(Clone, Copy, Debug)]
pub struct RegistryWorkflow<'a> {
    /// Its slug.
    pub slug: &'a str,
    /// Its Kapso uuid (from the remote map).
    pub id: Option<&'a str>,
    /// Its flow.
    pub flow: Option<&'a Flow>,
}

/// The project as the registries of `unresolved-reference` and `call-cycle`: its workflows (by
/// slug and uuid, each with the flows its `call` nodes name) and its functions (by slug and
/// uuid). Models and templates are not checked.
pub fn registries<'a>(
    workflows: impl IntoIterator<Item = RegistryWorkflow<'a>>,
    functions: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
) -> Registries {
    let mut flows = BTreeMap::new();
    for w in workflows {
        let calls: Vec<String> = w
            .flow
            .map(|f| {
                f.nodes
                    .iter()
                    .filter_map(|n| match n.config() {
                        NodeConfig::Call(c) => c.workflow.candidates().next().map(str::to_owned),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        for key in std::iter::once(w.slug).chain(w.id) {
            flows.insert(
                key.to_owned(),
                FlowEntry {
                    calls: calls.clone(),
                },
            );
        }
    }
    let mut known = BTreeSet::new();
    for (slug, id) in functions {
        known.insert(slug.to_owned());
        known.extend(id.map(str::to_owned));
    }
    Registries {
        functions: Some(known),
        flows: Some(flows),
        models: None,
        templates: None,
    }
}

#[cfg(all(test, feature = "yaml"))]
mod tests {
    use super::*;

    fn rules_of(text: &str, folder: &str) -> Vec<&'static str> {
        read_workflow_file(text, folder)
            .1
            .iter()
            .map(|d| d.rule)
            .collect()
    }

    #[test]
    fn a_pulled_workflow_file_reads_cleanly() {
        let (file, d) = read_workflow_file(
            "definition: definition.json\nname: MediCopay\nslug: medicopay\nstatus: active\ntriggers:\n  - {triggerType: inbound_message, active: true, phoneNumberId: \"1116152648243594\"}\n  - {triggerType: api_call, active: true}\n",
            "medicopay",
        );
        assert!(d.is_empty(), "{d:?}");
        let file = file.unwrap();
        assert_eq!(file.status, WorkflowStatus::Active);
        assert_eq!(file.slug.as_deref(), Some("medicopay"));
        assert_eq!(file.triggers.len(), 2);
        assert_eq!(
            file.triggers[0].phone_number_id.as_deref(),
            Some("1116152648243594")
        );
    }

    #[test]
    fn every_kind_of_problem_is_reported() {
        assert_eq!(rules_of("- a\n- b\n", "x"), ["invalid-workflow-file"]);
        assert_eq!(
            rules_of("name: [unclosed\n", "x"),
            ["invalid-workflow-file"]
        );
        assert_eq!(rules_of("slug: Big_Slug\n", "x"), ["invalid-workflow-file"]);
        assert_eq!(rules_of("slug: other\n", "x"), ["invalid-workflow-file"]);
        assert_eq!(rules_of("colour: red\n", "x"), ["invalid-workflow-file"]);
        assert_eq!(rules_of("name: 3\n", "x"), ["invalid-workflow-file"]);
        assert_eq!(
            rules_of("triggers:\n  - {triggerType: sms}\n", "x"),
            ["invalid-trigger"]
        );
        assert_eq!(
            rules_of(
                "triggers:\n  - {triggerType: whatsapp_event, event: \"\"}\n",
                "x"
            ),
            ["invalid-trigger"]
        );
        assert_eq!(
            rules_of(
                "triggers:\n  - {triggerType: whatsapp_event, event: whatsapp.message.received}\n",
                "x"
            ),
            ["unsupported-trigger"]
        );
        assert_eq!(
            rules_of(
                "triggers:\n  - triggerType: project_event\n    triggerableAttributes: {event_name: paid, property_key: total}\n",
                "x"
            ),
            ["invalid-trigger"]
        );
        assert_eq!(
            rules_of(
                "triggers:\n  - triggerType: project_event\n    triggerableAttributes: {event_name: paid, property_key: total, operator: gte, property_value: \"100\"}\n",
                "x"
            ),
            ["invalid-trigger"]
        );
        assert_eq!(
            rules_of(
                "triggers:\n  - triggerType: project_event\n    triggerableAttributes: {event_name: paid, property_key: total, operator: gte, property_value: 100}\n",
                "x"
            ),
            ["unsupported-trigger"]
        );
    }

    #[test]
    fn slugs_are_kebab_case() {
        assert!(is_slug("order-status-2"));
        for bad in ["", "-a", "a-", "a--b", "A", "a_b", "a b"] {
            assert!(!is_slug(bad), "{bad}");
        }
    }

    #[test]
    fn the_first_active_workflow_keeps_a_number() {
        let read = |t: &str, f: &str| read_workflow_file(t, f).0.unwrap();
        let a = read(
            "slug: a\nstatus: active\ntriggers: [{triggerType: inbound_message, phoneNumberId: \"111\"}]\n",
            "a",
        );
        let b = read(
            "slug: b\nstatus: active\ntriggers: [{triggerType: inbound_message, phoneNumberId: \"111\"}]\n",
            "b",
        );
        let c = read(
            "slug: c\nstatus: paused\ntriggers: [{triggerType: inbound_message, phoneNumberId: \"111\"}]\n",
            "c",
        );
        let facts = |slug, file| WorkflowFacts {
            slug,
            file,
            definition_exists: true,
            stale_source: None,
        };
        let out = check_workflows(&[facts("a", &a), facts("b", &b), facts("c", &c)]);
        assert!(out[0].is_empty());
        assert_eq!(
            out[1].iter().map(|d| d.rule).collect::<Vec<_>>(),
            ["duplicate-inbound-trigger"]
        );
        assert!(out[2].is_empty());
    }

    #[test]
    fn remote_maps_and_function_files_are_read_leniently() {
        let map = RemoteMap::parse(r#"{"version": 1, "functions": {"route": {"id": "f-1", "slug": "route", "files": {}}},
            "workflows": {"support": {"id": "w-1", "generatedSource": {"path": "workflows/support/workflow.js", "hash": "ABC"}}}}"#).unwrap();
        assert_eq!(map.function_id("route"), Some("f-1"));
        assert_eq!(map.workflow_id("support"), Some("w-1"));
        assert_eq!(
            map.workflows["support"].generated_hash.as_deref(),
            Some("abc")
        );
        assert!(RemoteMap::parse("[1]").is_err());
        let f = read_function_file("entrypoint: index.js\nfunction_type: cloudflare_worker\ninvoke_response_mode: passthrough\nname: Route\npublic_endpoint: false\nruntime_config: {timeout: 5, memory: 32}\nslug: route\n").unwrap();
        assert_eq!((f.timeout_seconds, f.memory_mb), (Some(5.0), Some(32.0)));
        assert!(read_function_file("runtime_config: {timeout: -1}\n").is_err());
    }
}
