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
    Dispatch, Engine, EngineConfig, Event, EventType, Execution, FlowDefinition, InboundMessage,
    Reply, Status, TemplateLimits, Trigger, WaitingReason,
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
}

impl Session {
    /// Registers `flow` under `flow_id` on a fresh engine with offline adapters (environment
    /// secrets, manual clock, in-memory store) and an inbound trigger on [`BUSINESS_NUMBER`].
    pub fn new(flow_id: &str, flow: Flow, options: SessionOptions) -> anyhow::Result<Session> {
        let mut offline = OfflineAdapters::default();
        if let Some(dir) = &options.functions {
            let functions = switchboard_script::function_answers(dir)
                .with_context(|| format!("cannot read function answers in {}", dir.display()))?;
            offline.functions = Arc::new(functions);
        }
        let mut adapters = offline.adapters();
        let mut templates = TemplateLimits::default();
        if let Some(config) = &options.config {
            config.apply(&mut adapters)?;
            templates = config.template_limits()?;
        }
        let engine = Engine::builder(Arc::new(MemoryStore::new()))
            .adapters(adapters)
            .config(EngineConfig {
                default_phone_number_id: BUSINESS_NUMBER.into(),
                templates,
                // The chat runs on a manual clock: a delay moves it and the turn goes on.
                delays: Delays::Sleep,
                ..EngineConfig::default()
            })
            .build();
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
        Ok(Outcome { outbound, status })
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
pub fn flow_id(path: &Path) -> String {
    path.file_stem()
        .and_then(|s| s.to_str())
        .filter(|s| !s.is_empty())
        .unwrap_or("flow")
        .to_owned()
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
    fn flow_ids_are_file_stems() {
        assert_eq!(flow_id(Path::new("a/b/lead_capture.yaml")), "lead_capture");
        assert_eq!(flow_id(Path::new("")), "flow");
    }
}
