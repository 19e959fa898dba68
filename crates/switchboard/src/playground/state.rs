//! The playground's state: the workflows, the diagram of the chosen one as it is on disk, the
//! conversation (a [`Session`]) with its chat log, and the JSON the page reads.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::{Context, bail};
use serde_json::{Map, Value, json};
use switchboard_model::Flow;
use switchboard_runtime::{Event, EventType, Reply, normalise_phone};
use switchboard_validator::Severity;

use super::Args;
use crate::session::{Action, Session, SessionOptions};
use crate::workflows::{Workflow, workflows};

/// At most this many chat lines are kept (the oldest go first).
const CHAT_LIMIT: usize = 2_000;
/// At most this many user actions are kept for a replay.
const ACTION_LIMIT: usize = 1_000;

/// The diagram and diagnostics of one flow file as read from disk.
struct View {
    bytes: Vec<u8>,
    stamp: Option<(u64, SystemTime)>,
    svg: String,
    nodes: Vec<String>,
    diagnostics: Vec<Value>,
    errors: usize,
    warnings: usize,
    /// The flow, when it loads and has no error diagnostics (it can run).
    flow: Option<Flow>,
    /// Why it cannot run, when it cannot.
    refusal: Option<String>,
}

fn stamp(path: &std::path::Path) -> Option<(u64, SystemTime)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.len(), m.modified().ok()?))
}

impl View {
    fn read(w: &Workflow, options: &switchboard_graph::Options) -> anyhow::Result<View> {
        let stamp = stamp(&w.path);
        let bytes =
            std::fs::read(&w.path).with_context(|| format!("cannot read {}", w.path.display()))?;
        Ok(View::from_bytes(w, bytes, stamp, options))
    }

    fn from_bytes(
        w: &Workflow,
        bytes: Vec<u8>,
        stamp: Option<(u64, SystemTime)>,
        options: &switchboard_graph::Options,
    ) -> View {
        let name = w.path.display().to_string();
        match switchboard_model::load_bytes(&bytes, Some(&name), &Default::default()) {
            Err(e) => View {
                bytes,
                stamp,
                svg: String::new(),
                nodes: Vec::new(),
                diagnostics: vec![
                    json!({"rule": e.rule(), "severity": "error", "message": e.to_string()}),
                ],
                errors: 1,
                warnings: 0,
                flow: None,
                refusal: Some(format!("{name} is not a flow: {e}")),
            },
            Ok(loaded) => {
                let diagnostics =
                    switchboard_validator::validate_loaded(&loaded, &Default::default());
                let graph = switchboard_graph::extract(&loaded.flow, &diagnostics);
                let svg = switchboard_graph::svg(&graph, options);
                let errors = diagnostics
                    .iter()
                    .filter(|d| d.severity == Severity::Error)
                    .count();
                let warnings = diagnostics.len() - errors;
                let refusal = (errors > 0).then(|| {
                    format!("{name} has {errors} error diagnostic(s): fix them and save to run it")
                });
                View {
                    bytes,
                    stamp,
                    svg,
                    nodes: loaded
                        .flow
                        .nodes
                        .iter()
                        .map(|n| n.id().to_owned())
                        .collect(),
                    diagnostics: diagnostics
                        .iter()
                        .map(|d| serde_json::to_value(d).unwrap_or(Value::Null))
                        .collect(),
                    errors,
                    warnings,
                    flow: (errors == 0).then_some(loaded.flow),
                    refusal,
                }
            }
        }
    }
}

/// Everything the page shows.
pub struct Play {
    /// Bumped on every change (the long poll waits for it).
    pub version: u64,
    root: PathBuf,
    workflows: Vec<Workflow>,
    current: usize,
    config: Option<Arc<crate::config::Config>>,
    functions: Option<PathBuf>,
    phone: String,
    name: String,
    options: switchboard_graph::Options,
    view: View,
    session: Option<Session>,
    session_error: Option<String>,
    /// The file changed on disk since the conversation started.
    changed: bool,
    chat: Vec<Value>,
    actions: Vec<Action>,
    last_inbound: Option<switchboard_runtime::Timestamp>,
}

impl Play {
    /// Reads the workflows of `args.path` and starts a conversation on the chosen one.
    pub async fn open(
        args: &Args,
        config: Option<Arc<crate::config::Config>>,
    ) -> anyhow::Result<Play> {
        let all = workflows(&args.path)?;
        let current = match &args.workflow {
            Some(name) => all
                .iter()
                .position(|w| &w.name == name)
                .with_context(|| format!("no workflow `{name}` in {}", args.path.display()))?,
            None => 0,
        };
        let phone = normalise_phone(&args.phone)
            .with_context(|| format!("--phone `{}` is not an E.164 number", args.phone))?;
        // Top down: a tall diagram fits the page's column better than a wide one.
        let mut options = switchboard_graph::Options {
            direction: switchboard_graph::Direction::TopDown,
            ..Default::default()
        };
        if all.len() > 1 {
            // In a project, a call node links to the called workflow's page.
            for w in &all {
                options
                    .links
                    .insert(w.name.clone(), format!("#workflow={}", w.name));
            }
        }
        let view = View::read(&all[current], &options)?;
        let mut play = Play {
            version: 1,
            root: args.path.clone(),
            workflows: all,
            current,
            config,
            functions: args.functions.clone(),
            phone,
            name: args.name.clone(),
            options,
            view,
            session: None,
            session_error: None,
            changed: false,
            chat: Vec::new(),
            actions: Vec::new(),
            last_inbound: None,
        };
        play.start();
        Ok(play)
    }

    /// A fresh conversation on the flow as it is now (none when it cannot run).
    fn start(&mut self) {
        self.chat.clear();
        self.actions.clear();
        self.changed = false;
        self.last_inbound = None;
        self.session = None;
        self.session_error = None;
        let Some(flow) = self.view.flow.clone() else {
            return;
        };
        let w = &self.workflows[self.current];
        let others = self
            .workflows
            .iter()
            .filter(|o| o.name != w.name)
            .filter_map(|o| {
                let bytes = std::fs::read(&o.path).ok()?;
                let report =
                    switchboard_validator::check_file(&o.name, &bytes, &Default::default());
                if report.has_errors() {
                    return None;
                }
                let loaded =
                    switchboard_model::load_bytes(&bytes, Some(&o.name), &Default::default())
                        .ok()?;
                Some((o.name.clone(), loaded.flow))
            })
            .collect();
        let options = SessionOptions {
            phone: self.phone.clone(),
            name: Some(self.name.clone()).filter(|n| !n.is_empty()),
            functions: self.functions.clone(),
            config: self.config.clone(),
            others,
        };
        match Session::new(&w.name, flow, options) {
            Ok(s) => self.session = Some(s),
            Err(e) => self.session_error = Some(format!("{e:#}")),
        }
    }

    /// A reply to the last interactive message's choice `id`.
    pub fn reply(&self, kind: &str, id: &str) -> Option<Reply> {
        Some(self.session.as_ref()?.reply_by_id(kind, id))
    }

    /// Runs one user action, recording it and what the bot did in the chat.
    pub async fn act(&mut self, action: Action) -> anyhow::Result<()> {
        let Some(session) = self.session.as_mut() else {
            bail!(
                "{}",
                self.view
                    .refusal
                    .clone()
                    .or_else(|| self.session_error.clone())
                    .unwrap_or_else(|| "the flow is not running".into())
            );
        };
        let before = session.now();
        let entry = match &action {
            Action::Text(t) => json!({"from": "user", "text": t}),
            Action::Reply(r) => {
                json!({"from": "user", "text": r.title, "reply": {"id": r.id, "kind": r.kind}})
            }
            Action::Clock(s) => json!({"from": "clock", "seconds": s}),
        };
        let inbound = !matches!(action, Action::Clock(_));
        let outcome = session.act(action.clone()).await?;
        let after = session.now();
        let mut lines = vec![with_time(entry, before)];
        if inbound {
            self.last_inbound = Some(before);
            let moved = (after.0 - before.0) as f64 / 1000.0;
            if moved > 0.0 {
                lines.push(with_time(json!({"from": "delay", "seconds": moved}), after));
            }
        }
        for m in &outcome.outbound {
            lines.push(with_time(
                json!({"from": "bot", "message": crate::display::payload(m)}),
                after,
            ));
        }
        for s in &outcome.status {
            lines.push(with_time(json!({"from": "status", "text": s}), after));
        }
        self.chat.extend(lines);
        if self.chat.len() > CHAT_LIMIT {
            let cut = self.chat.len() - CHAT_LIMIT;
            self.chat.drain(..cut);
        }
        if self.actions.len() < ACTION_LIMIT {
            self.actions.push(action);
        }
        Ok(())
    }

    /// Restarts the conversation, optionally as another contact.
    pub async fn restart(&mut self, phone: Option<&str>, name: Option<&str>) -> anyhow::Result<()> {
        if let Some(p) = phone {
            self.phone =
                normalise_phone(p).with_context(|| format!("`{p}` is not an E.164 number"))?;
        }
        if let Some(n) = name {
            if n.chars().count() > 100 || n.chars().any(char::is_control) {
                bail!("a name is at most 100 characters, without control characters");
            }
            n.clone_into(&mut self.name);
        }
        self.start();
        Ok(())
    }

    /// Switches to another workflow of the project.
    pub async fn select(&mut self, name: &str) -> anyhow::Result<()> {
        let Some(i) = self.workflows.iter().position(|w| w.name == name) else {
            bail!("no workflow `{name}`");
        };
        self.current = i;
        self.view = View::read(&self.workflows[i], &self.options)?;
        self.start();
        Ok(())
    }

    /// Takes the flow as it is on disk now: `keep` replays the user's turns on it, otherwise
    /// the conversation restarts.
    pub async fn reload(&mut self, keep: bool) -> anyhow::Result<()> {
        self.view = View::read(&self.workflows[self.current], &self.options)?;
        let actions = std::mem::take(&mut self.actions);
        self.start();
        if keep && self.session.is_some() {
            for a in actions {
                if let Err(e) = self.act(a).await {
                    self.chat.push(
                        json!({"from": "status", "text": format!("-- replay stopped: {e:#}")}),
                    );
                    break;
                }
            }
        }
        Ok(())
    }

    /// Looks at the current file; `true` when it changed (the diagram is redrawn).
    pub fn poll_files(&mut self) -> bool {
        let w = &self.workflows[self.current];
        let now = stamp(&w.path);
        if now == self.view.stamp {
            return false;
        }
        let Ok(bytes) = std::fs::read(&w.path) else {
            self.view.stamp = now;
            return false;
        };
        if bytes == self.view.bytes {
            self.view.stamp = now;
            return false;
        }
        self.view = View::from_bytes(w, bytes, now, &self.options);
        if self.session.is_none() {
            // Nothing to keep: run the new flow straight away.
            self.start();
        } else {
            self.changed = true;
        }
        true
    }

    /// The JSON the page reads (docs/graph-and-playground.md).
    pub async fn state(&self) -> Value {
        let w = &self.workflows[self.current];
        let mut execution = Value::Null;
        let mut variables = json!({"vars": {}, "system": {}, "context": {}, "metadata": {}});
        let mut path: Vec<String> = Vec::new();
        let mut events: Vec<Event> = Vec::new();
        let mut errors: Vec<Value> = Vec::new();
        let mut clock = Value::Null;
        if let Some(s) = &self.session {
            clock = json!(s.now());
            if let Ok(Some(x)) = s.execution().await {
                execution = json!({
                    "id": x.id,
                    "status": x.status,
                    "waiting_reason": x.waiting_reason,
                    "current_node_id": x.current_node_id,
                    "error_details": x.error_details,
                });
                variables = json!({
                    "vars": x.vars,
                    "system": {
                        "execution_id": x.id,
                        "flow_id": x.flow_id,
                        "flow_name": x.flow_name,
                        "flow_version": x.flow_version,
                        "conversation_id": x.conversation_id,
                        "status": x.status,
                        "current_node_id": x.current_node_id,
                        "trigger_type": x.trigger_type,
                        "started_at": x.started_at,
                        "last_event_at": x.last_event_at,
                        "call_depth": x.call_depth,
                        "timer": x.timer,
                    },
                    "context": x.context,
                    "metadata": x.metadata,
                });
                if let Ok(mine) = s.events().await {
                    path = mine
                        .iter()
                        .filter(|e| e.event_type == EventType::StepEntered)
                        .filter_map(|e| e.node_id.clone())
                        .collect();
                }
            }
            match s.all_events().await {
                Ok(all) => events = all,
                Err(e) => {
                    errors.push(json!({"type": "playground", "message": super::message_value(&e)}))
                }
            }
        }
        for e in &events {
            if e.event_type.as_str().ends_with("_failed") {
                let (kind, message) = failure(&e.payload);
                errors.push(json!({
                    "seq": e.seq,
                    "execution_id": e.execution_id,
                    "type": e.event_type.as_str(),
                    "node": e.node_id,
                    "kind": kind,
                    "message": message,
                    "payload": e.payload,
                }));
            }
        }
        let window = self
            .last_inbound
            .map(|t| json!({"last_inbound": t, "closes_at": t.plus_seconds(86_400.0)}));
        json!({
            "version": self.version,
            "root": self.root.display().to_string(),
            "workflow": w.name,
            "file": w.path.display().to_string(),
            "workflows": self.workflows.iter().map(|w| w.name.as_str()).collect::<Vec<_>>(),
            "contact": {"phone": self.phone, "name": self.name},
            "mode": if self.config.is_some() { "configured" } else { "offline" },
            "diagram": {"svg": self.view.svg, "nodes": self.view.nodes},
            "diagnostics": self.view.diagnostics,
            "counts": {"errors": self.view.errors, "warnings": self.view.warnings},
            "runnable": self.session.is_some(),
            "refusal": self.view.refusal.clone().or_else(|| self.session_error.clone()),
            "changed": self.changed,
            "chat": self.chat,
            "execution": execution,
            "path": path,
            "variables": variables,
            "events": events,
            "errors": errors,
            "clock": clock,
            "window": window,
            "choices": self.choices(),
        })
    }

    /// The choices of the last interactive message, for the page's buttons.
    fn choices(&self) -> Value {
        let last = self.chat.iter().rev().find(|c| c["from"] == "bot");
        match last {
            Some(c) if c["message"]["type"] == "interactive" => c["message"].clone(),
            _ => Value::Null,
        }
    }
}

fn with_time(mut v: Value, t: switchboard_runtime::Timestamp) -> Value {
    if let Value::Object(o) = &mut v {
        o.insert("at".into(), json!(t));
    }
    v
}

/// The failure kind and message in an event payload (`kind`/`message` at the top, or under
/// `error` or `error_details`).
fn failure(payload: &Value) -> (Value, Value) {
    let empty = Map::new();
    let o = payload.as_object().unwrap_or(&empty);
    for inner in [
        Some(o),
        o.get("error").and_then(Value::as_object),
        o.get("error_details").and_then(Value::as_object),
    ]
    .into_iter()
    .flatten()
    {
        if inner.contains_key("kind") || inner.contains_key("message") {
            return (
                inner.get("kind").cloned().unwrap_or(Value::Null),
                inner.get("message").cloned().unwrap_or(Value::Null),
            );
        }
    }
    (Value::Null, Value::Null)
}
