//! A chat session: one flow registered with an [`Engine`] on offline adapters, one contact
//! talking to it on a fixed business number, turn by turn.
//!
//! The session knows nothing about terminals: it takes user actions and returns what the bot
//! sent and how the execution's status changed. [`crate::chat`] does the reading and printing.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use serde_json::{Value, json};
use switchboard_model::Flow;
use switchboard_runtime::adapters::{Choice, OutboundBody, OutboundMessage};
use switchboard_runtime::config::Delays;
use switchboard_runtime::offline::OfflineAdapters;
use switchboard_runtime::store::{ExecutionFilter, MemoryStore};
use switchboard_runtime::{
    Adapters, Dispatch, Engine, EngineConfig, Event, EventType, Execution, FlowDefinition,
    InboundMessage, Reply, Status, TemplateLimits, Trigger, WaitingReason,
};

use crate::display;

/// The business number the chat's inbound trigger listens on.
pub const BUSINESS_NUMBER: &str = "15550001111";

/// Who is chatting, and with what help.
#[derive(Clone)]
pub struct SessionOptions {
    /// The contact's number (E.164).
    pub phone: String,
    /// The contact's profile name.
    pub name: Option<String>,
    /// A directory of `<function>.json` answers for function nodes.
    pub functions: Option<std::path::PathBuf>,
    /// A configuration whose adapters replace the offline ones (see
    /// [`Config::apply`](crate::config::Config::apply)); the messenger stays offline.
    pub config: Option<Arc<crate::config::Config>>,
    /// Other flows registered beside the chatted one (without a trigger), by id: the
    /// workflows a project's `call` nodes reach.
    pub others: Vec<(String, Flow)>,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions {
            phone: "+14155550100".into(),
            name: None,
            functions: None,
            config: None,
            others: Vec::new(),
        }
    }
}

/// What the user does in one turn.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Writes a text message.
    Text(String),
    /// Taps a button or picks a list row.
    Reply(Reply),
    /// Lets time pass (seconds) and fires due timers.
    Clock(f64),
}

/// What came of one turn.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// Messages the bot sent, in order.
    pub outbound: Vec<OutboundMessage>,
    /// Status lines (`-- waiting`, `-- ended (leaf)`, …), without a newline.
    pub status: Vec<String>,
    /// `-- note:` lines: adapters that fell back or failed while the flow went on.
    pub notes: Vec<String>,
}

/// The choices offered by the last interactive message.
#[derive(Clone, Debug)]
struct Offered {
    kind: &'static str,
    choices: Vec<Choice>,
}

/// One contact chatting with one flow.
pub struct Session {
    engine: Engine,
    offline: OfflineAdapters,
    options: SessionOptions,
    counter: u64,
    main: Option<String>,
    offered: Option<Offered>,
    last_state: Option<(String, Status, Option<WaitingReason>)>,
    /// Events already looked at for notes: `(execution id, seq)` of the last seen per execution.
    noted: std::collections::HashMap<String, u64>,
}

impl Session {
    /// Registers `flow` under `flow_id` on a fresh engine with offline adapters (environment
    /// secrets, manual clock, in-memory store) and an inbound trigger on [`BUSINESS_NUMBER`].
    pub fn new(flow_id: &str, flow: Flow, options: SessionOptions) -> anyhow::Result<Session> {
        let store = Arc::new(MemoryStore::new());
        let (engine, offline) = engine(store, &options, |_, _| Ok(()))?;
        engine
            .register_flow(FlowDefinition {
                id: flow_id.to_owned(),
                slug: None,
                version: "1".into(),
                flow,
            })
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        for (id, other) in &options.others {
            if id == flow_id {
                continue;
            }
            engine
                .register_flow(FlowDefinition {
                    id: id.clone(),
                    slug: Some(id.clone()),
                    version: "1".into(),
                    flow: other.clone(),
                })
                .map_err(|e| anyhow::anyhow!("{id}: {e}"))?;
        }
        Session::started(engine, offline, options, flow_id)
    }

    /// Every workflow of a Kapso project on a fresh engine, as [`Session::new`] does for one
    /// flow, talking to the workflow `slug`: the project's functions run in the local
    /// JavaScript runner (after those `[functions]` configures and the `--functions` answers),
    /// with `env.KV` in the session's store and the project's `.env`. Returns the session and
    /// the values of the `.env` variables (secrets, for the log redactor).
    pub fn with_project(
        project: &switchboard_project::Project,
        slug: &str,
        options: SessionOptions,
    ) -> anyhow::Result<(Session, Vec<String>)> {
        let store = Arc::new(MemoryStore::new());
        let mut secrets = Vec::new();
        let (engine, offline) = engine(store.clone(), &options, |adapters, canned| {
            let config = options.config.as_deref();
            let http = match config {
                Some(c) => c.http_client()?,
                None => switchboard_http::ReqwestHttpClient::new()
                    .map_err(|e| anyhow::anyhow!("{e}"))?,
            };
            // `fetch` goes where webhook nodes go: offline, the scripted client.
            let (functions, values) = crate::project::functions(
                project,
                config,
                store.clone(),
                &http,
                Some(adapters.http.clone()),
            )?;
            secrets = values;
            let mut chain: Vec<Arc<dyn switchboard_runtime::adapters::FunctionInvoker>> =
                Vec::new();
            if canned {
                chain.push(adapters.functions.clone());
            }
            chain.extend(functions);
            if !chain.is_empty() {
                adapters.functions = Arc::new(switchboard_project::FunctionChain(chain));
            }
            Ok(())
        })?;
        let registered = switchboard_project::register(&engine, project)?;
        if !registered.workflows.iter().any(|w| w == slug) {
            anyhow::bail!(
                "workflow `{slug}` cannot run (workflows: {})",
                registered.workflows.join(", ")
            );
        }
        Ok((Session::started(engine, offline, options, slug)?, secrets))
    }

    fn started(
        engine: Engine,
        offline: OfflineAdapters,
        options: SessionOptions,
        flow_id: &str,
    ) -> anyhow::Result<Session> {
        engine.add_trigger(Trigger {
            flow_id: flow_id.to_owned(),
            trigger_type: switchboard_runtime::state::TriggerType::InboundMessage,
            phone_number_id: Some(BUSINESS_NUMBER.into()),
            active: true,
        })?;
        Ok(Session {
            engine,
            offline,
            options,
            counter: 0,
            main: None,
            offered: None,
            last_state: None,
            noted: std::collections::HashMap::new(),
        })
    }

    /// A button/list reply for the `n`th (1-based) choice of the last interactive message.
    pub fn numbered_choice(&self, n: usize) -> Option<Reply> {
        let offered = self.offered.as_ref()?;
        let c = offered.choices.get(n.checked_sub(1)?)?;
        Some(Reply {
            kind: offered.kind.to_owned(),
            id: c.id.clone(),
            title: c.title.clone(),
        })
    }

    /// How many choices the last interactive message offered (0 when it offered none, or the
    /// last message was not interactive).
    pub fn choice_count(&self) -> usize {
        self.offered.as_ref().map_or(0, |o| o.choices.len())
    }

    /// A reply for `#button ID` (`kind` `button_reply`) or `#list ID` (`list_reply`), checked
    /// against the last interactive message: an error names the ids it offers.
    pub fn checked_reply(&self, kind: &str, id: &str) -> Result<Reply, String> {
        let (what, directive) = if kind == "list_reply" {
            ("list row", "#list")
        } else {
            ("button", "#button")
        };
        let Some(offered) = &self.offered else {
            return Err(format!(
                "no {what} `{id}` to tap: the last message offers no choices (not sent)"
            ));
        };
        if !offered.choices.iter().any(|c| c.id == id) {
            let ids: Vec<&str> = offered.choices.iter().map(|c| c.id.as_str()).collect();
            return Err(format!(
                "no {what} `{id}` in the last message: it offers {} (not sent)",
                ids.join(", ")
            ));
        }
        if offered.kind != kind {
            let other = if offered.kind == "list_reply" {
                "#list"
            } else {
                "#button"
            };
            return Err(format!(
                "`{id}` is not a {what}: use `{other} {id}` instead of `{directive}` (not sent)"
            ));
        }
        Ok(self.reply_by_id(kind, id))
    }

    /// `/resume`: hands a handed-off execution back to the flow (operator resume: it waits
    /// for the next message).
    pub async fn resume(&mut self) -> anyhow::Result<Outcome> {
        let Some(e) = self.execution().await? else {
            anyhow::bail!("nothing to resume: no execution has started");
        };
        if e.status != Status::Handoff {
            anyhow::bail!(
                "nothing to resume: the execution is {}, not handed off",
                e.status.as_str()
            );
        }
        self.engine
            .update_status(&e.id, Status::Waiting)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let status = self.status_change().await?.into_iter().collect();
        Ok(Outcome {
            outbound: self.offline.messenger.take(),
            status,
            notes: self.notes().await?,
        })
    }

    /// `/restart`: ends the current execution if it is still active, so that the next
    /// message starts a new one.
    pub async fn restart(&mut self) -> anyhow::Result<Outcome> {
        let mut status = Vec::new();
        if let Some(e) = self.execution().await?
            && matches!(
                e.status,
                Status::Running | Status::Waiting | Status::Handoff
            )
        {
            self.engine
                .update_status(&e.id, Status::Ended)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            status.extend(self.status_change().await?);
        }
        self.main = None;
        self.offered = None;
        self.last_state = None;
        status.push("-- restarted: your next message starts a new execution".to_owned());
        Ok(Outcome {
            outbound: self.offline.messenger.take(),
            status,
            notes: Vec::new(),
        })
    }

    /// `-- note:` lines for the events since the last call that show an adapter falling back
    /// or failing without failing the execution (see [`note_for`]).
    pub async fn notes(&mut self) -> anyhow::Result<Vec<String>> {
        let mut notes = Vec::new();
        let events = self.all_events().await?;
        let failed: std::collections::HashSet<&str> = events
            .iter()
            .filter(|e| e.event_type == EventType::ExecutionFailed)
            .map(|e| e.execution_id.as_str())
            .collect();
        for e in &events {
            let seen = self.noted.get(&e.execution_id).copied().unwrap_or(0);
            if e.seq <= seen {
                continue;
            }
            // An execution that failed says so on its `-- failed` line already.
            if failed.contains(e.execution_id.as_str()) && e.event_type == EventType::ActionFailed {
                continue;
            }
            if let Some(n) = note_for(e.event_type.as_str(), e.node_id.as_deref(), &e.payload) {
                notes.push(n);
            }
        }
        for e in &events {
            let seen = self.noted.entry(e.execution_id.clone()).or_insert(0);
            *seen = (*seen).max(e.seq);
        }
        Ok(notes)
    }

    /// A reply with this id; its title comes from the last interactive message's choices (the
    /// id when none matches).
    pub fn reply_by_id(&self, kind: &str, id: &str) -> Reply {
        let title = self
            .offered
            .as_ref()
            .and_then(|o| o.choices.iter().find(|c| c.id == id))
            .map_or_else(|| id.to_owned(), |c| c.title.clone());
        Reply {
            kind: kind.to_owned(),
            id: id.to_owned(),
            title,
        }
    }

    /// Runs one turn.
    pub async fn act(&mut self, action: Action) -> anyhow::Result<Outcome> {
        let mut status = Vec::new();
        match action {
            Action::Text(text) => {
                let m = self.inbound("text", &text, None);
                status.extend(self.dispatch(m).await?);
            }
            Action::Reply(reply) => {
                let title = reply.title.clone();
                let m = self.inbound("interactive", &title, Some(reply));
                status.extend(self.dispatch(m).await?);
            }
            Action::Clock(seconds) => {
                self.offline
                    .clock
                    .advance(Duration::from_secs_f64(seconds.max(0.0)));
                self.engine.fire_due_timers().await?;
            }
        }
        let outbound = self.offline.messenger.take();
        for m in &outbound {
            self.offered = match &m.body {
                OutboundBody::Interactive(i) => Some(Offered {
                    kind: display::reply_kind(i),
                    choices: display::choices(i),
                })
                .filter(|o| !o.choices.is_empty()),
                _ => None,
            };
        }
        status.extend(self.status_change().await?);
        let notes = self.notes().await?;
        Ok(Outcome {
            outbound,
            status,
            notes,
        })
    }

    fn inbound(&mut self, kind: &str, text: &str, reply: Option<Reply>) -> InboundMessage {
        self.counter += 1;
        InboundMessage {
            id: format!("wamid.in.{}", self.counter),
            phone_number_id: BUSINESS_NUMBER.into(),
            from: self.options.phone.clone(),
            profile_name: self.options.name.clone(),
            kind: kind.to_owned(),
            text: text.to_owned(),
            reply,
            timestamp: None,
            interactive: None,
        }
    }

    async fn dispatch(&mut self, m: InboundMessage) -> anyhow::Result<Option<String>> {
        Ok(match self.engine.handle_inbound(vec![m]).await? {
            Dispatch::Started(id) => {
                self.main = Some(id);
                None
            }
            Dispatch::Resumed(_) | Dispatch::Duplicate => None,
            Dispatch::Ignored(_) => {
                Some("-- ignored: the conversation is handed off to a human".into())
            }
            Dispatch::Dropped => Some("-- dropped: no active execution or trigger".into()),
        })
    }

    /// A status line when the main execution's status changed since the last turn.
    async fn status_change(&mut self) -> anyhow::Result<Option<String>> {
        let Some(e) = self.execution().await? else {
            return Ok(None);
        };
        let state = (e.id.clone(), e.status, e.waiting_reason);
        if self.last_state.as_ref() == Some(&state) {
            return Ok(None);
        }
        self.last_state = Some(state);
        let line = match e.status {
            Status::Waiting => match e.waiting_reason {
                None | Some(WaitingReason::WaitForResponse) => "-- waiting".to_owned(),
                Some(r) => format!("-- waiting ({})", r.as_str()),
            },
            Status::Ended => {
                let reason = self
                    .engine
                    .list_events(&e.id, Some(EventType::ExecutionEnded), 1000, 0)
                    .await?
                    .last()
                    .and_then(|ev| ev.payload.get("reason").and_then(Value::as_str))
                    .map(str::to_owned);
                match reason {
                    Some(r) => format!("-- ended ({r})"),
                    None => "-- ended".to_owned(),
                }
            }
            Status::Handoff => "-- handoff".to_owned(),
            Status::Failed => failure_line(e.error_details.as_ref()),
            Status::Running => "-- running".to_owned(),
        };
        Ok(Some(line))
    }

    /// The time on the session's manual clock.
    pub fn now(&self) -> switchboard_runtime::Timestamp {
        use switchboard_runtime::adapters::Clock;
        self.offline.clock.now()
    }

    /// The current (most recently started) execution.
    pub async fn execution(&self) -> anyhow::Result<Option<Execution>> {
        match &self.main {
            Some(id) => Ok(self.engine.store().execution(id).await?),
            None => Ok(None),
        }
    }

    /// The current execution's events, oldest first.
    pub async fn events(&self) -> anyhow::Result<Vec<Event>> {
        match &self.main {
            Some(id) => Ok(self.engine.list_events(id, None, 1000, 0).await?),
            None => Ok(Vec::new()),
        }
    }

    /// The events of every execution of the conversation, oldest execution first.
    pub async fn all_events(&self) -> anyhow::Result<Vec<Event>> {
        let conversation = Engine::conversation_id(BUSINESS_NUMBER, &self.options.phone);
        let mut executions = self
            .engine
            .list_executions(&ExecutionFilter {
                conversation_id: Some(conversation),
                limit: 1000,
                ..Default::default()
            })
            .await?;
        executions.sort_by(|a, b| a.started_at.cmp(&b.started_at).then(a.id.cmp(&b.id)));
        let mut all = Vec::new();
        for e in executions {
            let mut after = 0;
            loop {
                let page = self.engine.list_events(&e.id, None, 1000, after).await?;
                let Some(last) = page.last() else { break };
                after = last.seq;
                all.extend(page);
            }
        }
        Ok(all)
    }

    /// The current execution as `{id, status, waiting_reason, current_node_id, vars,
    /// error_details}` (`null` when none started).
    pub async fn execution_json(&self) -> anyhow::Result<Value> {
        Ok(match self.execution().await? {
            Some(e) => json!({
                "id": e.id,
                "status": e.status,
                "waiting_reason": e.waiting_reason,
                "current_node_id": e.current_node_id,
                "vars": e.vars,
                "error_details": e.error_details,
            }),
            None => Value::Null,
        })
    }
}

/// Reads the flow id a chat registers a file under: its file stem.
/// An engine on offline adapters (environment secrets, manual clock, `store`), with the
/// `--functions` answers and the configuration's adapters; `more` changes the adapters last
/// (told whether `--functions` gave answers).
fn engine(
    store: Arc<MemoryStore>,
    options: &SessionOptions,
    more: impl FnOnce(&mut Adapters, bool) -> anyhow::Result<()>,
) -> anyhow::Result<(Engine, OfflineAdapters)> {
    let mut offline = OfflineAdapters::default();
    if let Some(dir) = &options.functions {
        let functions = switchboard_script::function_answers(dir)
            .with_context(|| format!("cannot read function answers in {}", dir.display()))?;
        offline.functions = Arc::new(functions);
    }
    let mut adapters = offline.adapters();
    let mut model_ids = Default::default();
    let mut templates = TemplateLimits::default();
    if let Some(config) = &options.config {
        config.apply(&mut adapters)?;
        model_ids = config.model_ids();
        templates = config.template_limits()?;
    }
    more(&mut adapters, options.functions.is_some())?;
    let engine = Engine::builder(store)
        .adapters(adapters)
        .config(EngineConfig {
            default_phone_number_id: BUSINESS_NUMBER.into(),
            // The chat runs on a manual clock: a delay moves it and the turn goes on.
            delays: Delays::Sleep,
            model_ids,
            templates,
            ..EngineConfig::default()
        })
        .build();
    Ok((engine, offline))
}

pub fn flow_id(path: &Path) -> String {
    path.file_stem()
        .and_then(|s| s.to_str())
        .filter(|s| !s.is_empty())
        .unwrap_or("flow")
        .to_owned()
}

/// A `-- note:` line for an event that shows an adapter falling back or failing while the
/// execution goes on: an AI decide that fell back to its first condition (the model failed or
/// answered no condition), or an action that failed and was handled (an `error` edge). `None`
/// for every other event.
pub fn note_for(event_type: &str, node: Option<&str>, payload: &Value) -> Option<String> {
    let node = node
        .or_else(|| payload.get("node_id").and_then(Value::as_str))
        .unwrap_or("?");
    let text = |k: &str| payload.get(k).and_then(Value::as_str).unwrap_or("");
    match event_type {
        "decision_evaluated" if payload.get("fallback") == Some(&Value::Bool(true)) => {
            let chosen = text("chosen_label");
            Some(match text("reason") {
                "adapter_error" => format!(
                    "-- note: decide `{node}`: the model call failed, so it took the first condition `{chosen}` (adapter_error; SWITCHBOARD_LOG=warn shows the error)"
                ),
                "no_match" => format!(
                    "-- note: decide `{node}`: the model answered `{}`, which names no condition, so it took the first condition `{chosen}` (no_match)",
                    text("response").trim()
                ),
                other => format!(
                    "-- note: decide `{node}`: fell back to the first condition `{chosen}` ({other})"
                ),
            })
        }
        "action_failed" => {
            let error = payload.get("error");
            let field = |k: &str| {
                error
                    .and_then(|e| e.get(k))
                    .and_then(Value::as_str)
                    .unwrap_or("")
            };
            let action = text("action");
            Some(format!(
                "-- note: node `{node}`: {action} failed: {}: {} (the flow goes on)",
                field("kind"),
                field("message")
            ))
        }
        _ => None,
    }
}

/// Notes for the event lines of a conversation-script transcript
/// (`<seq> <type> [<node>] <payload JSON>`), in order.
pub fn transcript_notes(transcript: &Value) -> Vec<String> {
    let mut notes = Vec::new();
    let executions = transcript
        .get("executions")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for x in executions {
        let lines = x.get("events").and_then(Value::as_array);
        let failed = lines.is_some_and(|l| {
            l.iter()
                .filter_map(Value::as_str)
                .any(|s| s.split(' ').nth(1) == Some("execution_failed"))
        });
        for line in lines.into_iter().flatten().filter_map(Value::as_str) {
            let Some(brace) = line.find('{') else {
                continue;
            };
            let mut head = line[..brace].split_whitespace().skip(1);
            let (Some(event_type), node) = (head.next(), head.next()) else {
                continue;
            };
            if failed && event_type == "action_failed" {
                continue;
            }
            let payload: Value = serde_json::from_str(&line[brace..]).unwrap_or(Value::Null);
            notes.extend(note_for(event_type, node, &payload));
        }
    }
    notes
}

/// `-- failed: <kind>: <message>`.
fn failure_line(details: Option<&Value>) -> String {
    let field = |k: &str| {
        details
            .and_then(|d| d.get(k))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    let (kind, message) = (field("kind"), field("message"));
    match (kind.is_empty(), message.is_empty()) {
        (true, true) => "-- failed".to_owned(),
        (false, true) => format!("-- failed: {kind}"),
        (true, false) => format!("-- failed: {message}"),
        (false, false) => format!("-- failed: {kind}: {message}"),
    }
}

/// One line per event: `<seq> <type> [<node>] <payload JSON>`.
pub fn event_line(e: &Event) -> String {
    let mut s = format!("{} {}", e.seq, e.event_type.as_str());
    if let Some(n) = &e.node_id {
        s.push(' ');
        s.push_str(n);
    }
    if let Some(l) = &e.edge_label {
        s.push_str(&format!(" ->{l}"));
    }
    s.push(' ');
    s.push_str(&e.payload.to_string());
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn echo() -> Flow {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../fixtures/flows/valid/echo.yaml"
        ))
        .unwrap();
        switchboard_model::load(&text).unwrap().flow
    }

    fn texts(o: &Outcome) -> Vec<String> {
        o.outbound
            .iter()
            .map(|m| display::render(&m.body, display::ChoiceLabel::Id))
            .collect()
    }

    #[tokio::test]
    async fn echo_turns_and_status_lines() {
        let mut s = Session::new("echo", echo(), SessionOptions::default()).unwrap();
        let o = s.act(Action::Text("hi".into())).await.unwrap();
        assert_eq!(texts(&o), ["bot: What is your order number?\n"]);
        assert_eq!(o.status, ["-- waiting"]);
        let o = s.act(Action::Text("A-1234".into())).await.unwrap();
        assert_eq!(texts(&o), ["bot: Thanks, looking up A-1234.\n"]);
        assert_eq!(o.status, ["-- ended (leaf)"]);
        let x = s.execution_json().await.unwrap();
        assert_eq!(x["status"], "ended");
        assert_eq!(x["vars"]["last_user_input"], "A-1234");
        assert!(!s.events().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn clock_fires_wait_timeouts() {
        let mut s = Session::new("echo", echo(), SessionOptions::default()).unwrap();
        s.act(Action::Text("hi".into())).await.unwrap();
        let o = s.act(Action::Clock(10.0)).await.unwrap();
        assert!(o.status.is_empty(), "600 s not elapsed yet");
        let o = s.act(Action::Clock(600.0)).await.unwrap();
        assert_eq!(o.status.len(), 1, "{:?}", o.status);
        let events = s.all_events().await.unwrap();
        assert!(
            events
                .iter()
                .any(|e| e.event_type == EventType::WaitTimeout)
        );
    }

    #[test]
    fn failure_lines() {
        assert_eq!(
            failure_line(Some(
                &json!({"kind": "not_found", "message": "function `x` is not registered"})
            )),
            "-- failed: not_found: function `x` is not registered"
        );
        assert_eq!(failure_line(None), "-- failed");
    }

    #[test]
    fn notes_for_fallbacks_and_handled_failures_only() {
        let fell = json!({"node_id": "route", "chosen_label": "a", "fallback": true, "reason": "adapter_error"});
        let note = note_for("decision_evaluated", Some("route"), &fell).unwrap();
        assert!(
            note.starts_with("-- note: decide `route`: the model call failed"),
            "{note}"
        );
        let chose = json!({"node_id": "route", "chosen_label": "a", "fallback": false});
        assert_eq!(note_for("decision_evaluated", Some("route"), &chose), None);
        assert_eq!(note_for("step_entered", Some("x"), &json!({})), None);
        let transcript = json!({"executions": [
            {"events": [
                "3 decision_evaluated route {\"chosen_label\":\"a\",\"fallback\":true,\"reason\":\"no_match\",\"response\":\"maybe\"}",
                "4 action_failed lookup {\"action\":\"function\",\"error\":{\"kind\":\"timeout\",\"message\":\"took too long\"}}"
            ]},
            {"events": [
                "2 action_failed lookup {\"action\":\"function\",\"error\":{\"kind\":\"timeout\",\"message\":\"x\"}}",
                "3 execution_failed {\"error\":{\"kind\":\"timeout\"}}"
            ]}
        ]});
        assert_eq!(
            transcript_notes(&transcript),
            [
                "-- note: decide `route`: the model answered `maybe`, which names no condition, so it took the first condition `a` (no_match)",
                "-- note: node `lookup`: function failed: timeout: took too long (the flow goes on)",
            ]
        );
    }

    #[test]
    fn flow_ids_are_file_stems() {
        assert_eq!(flow_id(Path::new("a/b/lead_capture.yaml")), "lead_capture");
        assert_eq!(flow_id(Path::new("")), "flow");
    }
}
