//! The engine: flows, triggers, adapters, and the operations of runtime-semantics §10.
//!
//! Every operation loads what it needs from the store, runs at most one turn in memory (the
//! private `turn` module), and commits the turn's changes atomically. Operations on one conversation
//! must not overlap; [`crate::inbox::Inbox`] serialises inbound traffic per conversation, and the
//! store's optimistic versions reject a concurrent turn from another process.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use switchboard_model::{Flow, NodeKind};
use switchboard_validator::{Diagnostic, Options, Severity};

use crate::adapters::{
    Clock, FunctionInvoker, HttpClient, LanguageModel, McpClient, Messenger, ProjectEventSink,
    Secrets,
};
use crate::error::EngineError;
use crate::event::{Event, EventType};
use crate::state::{Contact, Conversation, Execution, Status, TriggerType, WaitingReason};
use crate::store::{ExecutionFilter, ExecutionStore, MemoryStore};
use crate::template::Renderer;
use crate::time::Timestamp;
use crate::turn::Turn;

/// A flow to register.
#[derive(Clone, Debug)]
pub struct FlowDefinition {
    /// Flow id (`system.flow_id`).
    pub id: String,
    /// Slug, another name callers may use.
    pub slug: Option<String>,
    /// Version label.
    pub version: String,
    /// The flow.
    pub flow: Flow,
}

/// A registered flow with its routing indexes.
#[derive(Debug)]
pub(crate) struct CompiledFlow {
    pub id: String,
    pub name: String,
    pub version: String,
    pub flow: Flow,
    pub index: FxHashMap<String, usize>,
    /// Node index → edge indices leaving it.
    pub out: Vec<Vec<usize>>,
    pub start: usize,
    pub max_steps: Option<i64>,
    pub debounce_seconds: Option<f64>,
}

impl CompiledFlow {
    pub fn node_index(&self, id: &str) -> Option<usize> {
        self.index.get(id).copied()
    }

    /// The single non-error edge (§6 advancing).
    pub fn next_edge(&self, node: usize) -> Option<usize> {
        self.out[node]
            .iter()
            .copied()
            .find(|&k| !self.flow.edges[k].is_error())
    }

    pub fn error_edge(&self, node: usize) -> Option<usize> {
        self.out[node]
            .iter()
            .copied()
            .find(|&k| self.flow.edges[k].is_error())
    }

    pub fn edge_labelled(&self, node: usize, label: &str) -> Option<usize> {
        self.out[node]
            .iter()
            .copied()
            .find(|&k| self.flow.edges[k].label() == label)
    }

    pub fn target(&self, edge: usize) -> Option<usize> {
        self.flow.edges[edge]
            .target()
            .and_then(|t| self.node_index(t))
    }
}

/// Why a flow was not registered.
#[derive(Debug, thiserror::Error)]
#[error("flow `{flow_id}` has {} error diagnostic(s); the first: {}", .diagnostics.len(), .diagnostics.first().map_or("", |d| d.message.as_str()))]
pub struct RegisterError {
    /// The flow.
    pub flow_id: String,
    /// Its error diagnostics.
    pub diagnostics: Vec<Diagnostic>,
}

/// A trigger: deployment configuration (runtime-semantics §4.1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trigger {
    /// The flow it starts.
    pub flow_id: String,
    /// `inbound_message` (with the number) or `api_call`.
    pub trigger_type: TriggerType,
    /// For `inbound_message`: the business number it listens on.
    pub phone_number_id: Option<String>,
    /// Whether it is active.
    pub active: bool,
}

/// Engine settings.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Conversation messages kept for prompts and function payloads (default 20).
    pub history_window: usize,
    /// Overrides every flow's `max_steps_per_turn` (deployment configuration).
    pub max_steps_per_turn: Option<i64>,
    /// Overrides every flow's `message_debounce_seconds`.
    pub message_debounce_seconds: Option<f64>,
    /// The business number used when a request names none.
    pub default_phone_number_id: String,
    /// The business number's display number (`system.whatsapp_config`).
    pub display_phone_number: Option<String>,
    /// Fail `send_text`/`send_interactive` outside the 24-hour service window (default true).
    /// Turn it off only where the window is enforced elsewhere, or in benchmarks and tests that
    /// start conversations through the API.
    pub enforce_service_window: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            history_window: 20,
            max_steps_per_turn: None,
            message_debounce_seconds: None,
            default_phone_number_id: "default".to_owned(),
            display_phone_number: None,
            enforce_service_window: true,
        }
    }
}

/// Produces ids for executions and events' owners.
pub trait IdGenerator: Send + Sync {
    /// A new id with a prefix (`ex`, `tr`).
    fn next(&self, prefix: &str) -> String;
}

/// Sequential ids (`ex_1`, `ex_2`, …): deterministic, for tests and scripted runs.
#[derive(Debug, Default)]
pub struct SequentialIds(AtomicU64);

impl IdGenerator for SequentialIds {
    fn next(&self, prefix: &str) -> String {
        format!("{prefix}_{}", self.0.fetch_add(1, Ordering::Relaxed) + 1)
    }
}

/// Ids unique across processes: time, a per-process random value, and a counter.
#[derive(Debug)]
pub struct UniqueIds {
    seed: u64,
    counter: AtomicU64,
}

impl Default for UniqueIds {
    fn default() -> Self {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        h.write_u32(std::process::id());
        UniqueIds {
            seed: h.finish(),
            counter: AtomicU64::new(0),
        }
    }
}

impl IdGenerator for UniqueIds {
    fn next(&self, prefix: &str) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        format!(
            "{prefix}_{:012x}{:06x}",
            self.seed & 0xffff_ffff_ffff,
            n & 0xff_ffff
        )
    }
}

/// The adapters an engine uses.
#[derive(Clone)]
pub struct Adapters {
    /// Sends WhatsApp messages.
    pub messenger: Arc<dyn Messenger>,
    /// Language models.
    pub model: Arc<dyn LanguageModel>,
    /// Functions.
    pub functions: Arc<dyn FunctionInvoker>,
    /// HTTP (webhooks).
    pub http: Arc<dyn HttpClient>,
    /// MCP servers.
    pub mcp: Arc<dyn McpClient>,
    /// Project events.
    pub project_events: Arc<dyn ProjectEventSink>,
    /// Secrets.
    pub secrets: Arc<dyn Secrets>,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// Ids.
    pub ids: Arc<dyn IdGenerator>,
}

impl Default for Adapters {
    /// The offline adapters (no network anywhere).
    fn default() -> Self {
        crate::offline::OfflineAdapters::default().adapters()
    }
}

/// A request to start an execution (API trigger).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StartRequest {
    /// Flow id or slug.
    pub flow: String,
    /// The contact's number, E.164.
    pub phone_number: String,
    /// The business number.
    #[serde(default)]
    pub phone_number_id: Option<String>,
    /// Initial `vars`.
    #[serde(default)]
    pub variables: Map<String, Value>,
    /// Extra `context` keys.
    #[serde(default)]
    pub context: Map<String, Value>,
    /// Request metadata (`metadata.request`).
    #[serde(default)]
    pub request: Option<Value>,
    /// Repeating the key within 24 h returns the first result.
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

/// An inbound WhatsApp message, normalised.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct InboundMessage {
    /// WhatsApp message id (deduplication key).
    pub id: String,
    /// The business number it arrived on.
    pub phone_number_id: String,
    /// The sender, E.164 (`+` optional).
    pub from: String,
    /// The sender's profile name.
    #[serde(default)]
    pub profile_name: Option<String>,
    /// `text`, `interactive`, `button`, `image`, `location`, …
    #[serde(rename = "type")]
    pub kind: String,
    /// Text (§4.3).
    #[serde(default)]
    pub text: String,
    /// For interactive replies: `{type, id, title}`.
    #[serde(default)]
    pub reply: Option<Reply>,
    /// When it was sent.
    #[serde(default)]
    pub timestamp: Option<Timestamp>,
}

/// An interactive reply (`vars.last_user_reply`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    /// `button_reply`, `list_reply` or `button` (template quick reply).
    #[serde(rename = "type")]
    pub kind: String,
    /// Button/row id (template quick reply: its payload).
    pub id: String,
    /// Title.
    pub title: String,
}

/// A resume request (API).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ResumeRequest {
    /// The execution.
    pub execution_id: String,
    /// `{kind: "payload", data}`: a string is the text; an object is stored as is.
    #[serde(default)]
    pub message: Option<Value>,
    /// Merged into `vars` first.
    #[serde(default)]
    pub variables: Map<String, Value>,
}

/// What an operation returns about an execution (runtime-semantics §10 `get_execution`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExecutionSummary {
    /// Id.
    pub id: String,
    /// `{id, name, version}`.
    pub flow: Value,
    /// Status.
    pub status: Status,
    /// Waiting reason.
    pub waiting_reason: Option<WaitingReason>,
    /// Current node.
    pub current_node_id: Option<String>,
    /// Tracking id.
    pub tracking_id: String,
    /// Conversation.
    pub conversation_id: String,
    /// Parent.
    pub parent_execution_id: Option<String>,
    /// Start (RFC 3339).
    pub started_at: String,
    /// Last event (RFC 3339).
    pub last_event_at: String,
    /// End (RFC 3339).
    pub ended_at: Option<String>,
    /// Failure.
    pub error_details: Option<Value>,
    /// `{vars, system, context, metadata}` (redacted).
    pub execution_context: Value,
}

/// What happened in one inbound dispatch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dispatch {
    /// The message id was seen before: dropped.
    Duplicate,
    /// A new execution was started.
    Started(String),
    /// A waiting execution was resumed.
    Resumed(String),
    /// The execution is in handoff: recorded as `inbound_ignored`.
    Ignored(String),
    /// No execution and no active trigger: dropped.
    Dropped,
}

pub(crate) struct Inner {
    pub flows: std::sync::RwLock<FxHashMap<String, Arc<CompiledFlow>>>,
    pub triggers: std::sync::RwLock<Vec<Trigger>>,
    pub adapters: Adapters,
    pub store: Arc<dyn ExecutionStore>,
    pub config: EngineConfig,
    pub renderer: Renderer,
}

/// The flow engine. Cheap to clone (an `Arc` inside); share one per process.
#[derive(Clone)]
pub struct Engine {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").finish_non_exhaustive()
    }
}

/// Builds an [`Engine`]: offline adapters and an in-memory store unless told otherwise.
pub struct EngineBuilder {
    adapters: Adapters,
    store: Arc<dyn ExecutionStore>,
    config: EngineConfig,
}

impl Default for EngineBuilder {
    fn default() -> Self {
        EngineBuilder {
            adapters: Adapters::default(),
            store: Arc::new(MemoryStore::new()),
            config: EngineConfig::default(),
        }
    }
}

impl EngineBuilder {
    /// Uses these adapters.
    pub fn adapters(mut self, adapters: Adapters) -> Self {
        self.adapters = adapters;
        self
    }

    /// Uses this store.
    pub fn store(mut self, store: Arc<dyn ExecutionStore>) -> Self {
        self.store = store;
        self
    }

    /// Uses this configuration.
    pub fn config(mut self, config: EngineConfig) -> Self {
        self.config = config;
        self
    }

    /// The engine.
    pub fn build(self) -> Engine {
        Engine {
            inner: Arc::new(Inner {
                flows: Default::default(),
                triggers: Default::default(),
                adapters: self.adapters,
                store: self.store,
                config: self.config,
                renderer: Renderer::new(),
            }),
        }
    }
}

impl Engine {
    /// A builder.
    pub fn builder() -> EngineBuilder {
        EngineBuilder::default()
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn ExecutionStore> {
        &self.inner.store
    }

    /// The adapters.
    pub fn adapters(&self) -> &Adapters {
        &self.inner.adapters
    }

    /// Registers a flow (replacing one with the same id). A flow with any error diagnostic is
    /// refused: it must not be started.
    pub fn register_flow(&self, def: FlowDefinition) -> Result<(), RegisterError> {
        let mut options = Options::default();
        options.flow_ids.push(def.id.clone());
        options.flow_ids.extend(def.slug.clone());
        let diagnostics: Vec<Diagnostic> = switchboard_validator::validate(&def.flow, &options)
            .into_iter()
            .filter(|d| d.severity == Severity::Error)
            .collect();
        if !diagnostics.is_empty() {
            return Err(RegisterError {
                flow_id: def.id,
                diagnostics,
            });
        }
        let flow = def.flow;
        let mut index = FxHashMap::default();
        for (i, n) in flow.nodes.iter().enumerate() {
            index.entry(n.id().to_owned()).or_insert(i);
        }
        let mut out = vec![Vec::new(); flow.nodes.len()];
        for (k, e) in flow.edges.iter().enumerate() {
            if let Some(&s) = e.source().and_then(|s| index.get(s)) {
                out[s].push(k);
            }
        }
        let start = flow
            .nodes
            .iter()
            .position(|n| n.kind() == Some(NodeKind::Start))
            .unwrap_or(0);
        let settings = flow.settings();
        let compiled = Arc::new(CompiledFlow {
            id: def.id.clone(),
            name: flow.name().unwrap_or(&def.id).to_owned(),
            version: def.version,
            index,
            out,
            start,
            max_steps: settings.max_steps_per_turn,
            debounce_seconds: settings.message_debounce_seconds,
            flow,
        });
        if let Ok(mut flows) = self.inner.flows.write() {
            if let Some(slug) = &def.slug {
                flows.insert(slug.clone(), compiled.clone());
            }
            if let Some(name) = compiled.flow.name() {
                flows
                    .entry(name.to_owned())
                    .or_insert_with(|| compiled.clone());
            }
            flows.insert(def.id, compiled);
        }
        Ok(())
    }

    /// Adds a trigger.
    pub fn add_trigger(&self, trigger: Trigger) {
        if let Ok(mut t) = self.inner.triggers.write() {
            t.push(trigger);
        }
    }

    pub(crate) fn flow(&self, id_or_slug: &str) -> Option<Arc<CompiledFlow>> {
        self.inner.flows.read().ok()?.get(id_or_slug).cloned()
    }

    /// The debounce window for messages on a business number (0 when none).
    pub fn debounce_seconds(&self, phone_number_id: &str) -> f64 {
        if let Some(d) = self.inner.config.message_debounce_seconds {
            return d;
        }
        self.inbound_trigger(phone_number_id)
            .and_then(|f| f.debounce_seconds)
            .unwrap_or(0.0)
    }

    /// The flow of the active `inbound_message` trigger on a business number.
    pub(crate) fn inbound_trigger(&self, phone_number_id: &str) -> Option<Arc<CompiledFlow>> {
        let triggers = self.inner.triggers.read().ok()?;
        let t = triggers.iter().find(|t| {
            t.active
                && t.trigger_type == TriggerType::InboundMessage
                && t.phone_number_id
                    .as_deref()
                    .is_none_or(|p| p == phone_number_id)
        })?;
        self.flow(&t.flow_id)
    }

    fn api_trigger_active(&self, flow_id: &str) -> bool {
        self.inner.triggers.read().is_ok_and(|t| {
            t.iter()
                .any(|t| t.active && t.trigger_type == TriggerType::ApiCall && t.flow_id == flow_id)
        })
    }

    /// The conversation id of a contact on a business number.
    pub fn conversation_id(phone_number_id: &str, phone_number: &str) -> String {
        format!("{phone_number_id}:{}", phone_number.trim_start_matches('+'))
    }

    /// Starts an execution through the API trigger.
    pub async fn start_execution(&self, req: StartRequest) -> Result<Value, EngineError> {
        let now = self.inner.adapters.clock.now();
        if let Some(key) = &req.idempotency_key
            && let Some(v) = self
                .inner
                .store
                .idempotent_result(key, Timestamp(now.0 - 24 * 3600 * 1000))
                .await?
        {
            return Ok(v);
        }
        let flow = self
            .flow(&req.flow)
            .ok_or_else(|| EngineError::NotFound(format!("flow `{}`", req.flow)))?;
        if !self.api_trigger_active(&flow.id) {
            return Err(EngineError::FlowInactive(format!(
                "flow `{}` has no active api_call trigger",
                flow.id
            )));
        }
        let phone = normalise_phone(&req.phone_number).ok_or_else(|| {
            EngineError::InvalidRequest(format!(
                "`{}` is not an E.164 phone number",
                req.phone_number
            ))
        })?;
        let pnid = req
            .phone_number_id
            .clone()
            .unwrap_or_else(|| self.inner.config.default_phone_number_id.clone());
        let conv_id = Engine::conversation_id(&pnid, &phone);
        let conv = match self.inner.store.conversation(&conv_id).await? {
            Some(c) => c,
            None => Conversation::new(
                conv_id.clone(),
                phone.clone(),
                pnid.clone(),
                Contact {
                    wa_id: phone.trim_start_matches('+').to_owned(),
                    name: None,
                    profile_name: None,
                },
            ),
        };
        if let Some(active) = &conv.active_execution_id
            && let Some(e) = self.inner.store.execution(active).await?
            && e.status.is_active()
        {
            return Err(EngineError::Conflict(format!(
                "conversation {conv_id} has the active execution {active}"
            )));
        }
        let mut turn = Turn::new(self, conv, now);
        let exec_id = turn
            .start(
                &flow,
                TriggerType::ApiCall,
                req.variables,
                req.context,
                req.request,
                None,
            )
            .await?;
        let (tracking, status) = turn
            .execution(&exec_id)
            .map(|e| (e.tracking_id.clone(), e.status))
            .unwrap_or((String::new(), Status::Running));
        let result =
            json!({"execution_id": exec_id, "tracking_id": tracking, "status": status.as_str()});
        if let Some(key) = req.idempotency_key {
            turn.idempotency = Some((key, result.clone(), now));
        }
        turn.commit().await?;
        Ok(result)
    }

    /// Handles one inbound message (or a debounced batch: pass several).
    pub async fn handle_inbound(
        &self,
        batch: Vec<InboundMessage>,
    ) -> Result<Dispatch, EngineError> {
        let Some(first) = batch.first() else {
            return Err(EngineError::InvalidRequest("empty batch".into()));
        };
        let now = self.inner.adapters.clock.now();
        let phone = normalise_phone(&first.from).ok_or_else(|| {
            EngineError::InvalidRequest(format!("`{}` is not a phone number", first.from))
        })?;
        let pnid = first.phone_number_id.clone();
        let conv_id = Engine::conversation_id(&pnid, &phone);
        let mut fresh = Vec::with_capacity(batch.len());
        for m in batch {
            if !self.inner.store.seen_message(&conv_id, &m.id).await?
                && !fresh.iter().any(|f: &InboundMessage| f.id == m.id)
            {
                fresh.push(m);
            }
        }
        if fresh.is_empty() {
            return Ok(Dispatch::Duplicate);
        }
        let mut conv = match self.inner.store.conversation(&conv_id).await? {
            Some(c) => c,
            None => Conversation::new(
                conv_id.clone(),
                phone.clone(),
                pnid.clone(),
                Contact {
                    wa_id: phone.trim_start_matches('+').to_owned(),
                    name: None,
                    profile_name: None,
                },
            ),
        };
        if let Some(name) = fresh.iter().rev().find_map(|m| m.profile_name.clone()) {
            conv.contact.profile_name = Some(name.clone());
            if conv.contact.name.is_none() {
                conv.contact.name = Some(name);
            }
        }
        let mut turn = Turn::new(self, conv, now);
        let dispatch = turn.inbound(fresh).await?;
        turn.commit().await?;
        Ok(dispatch)
    }

    /// Resumes a waiting execution (API).
    pub async fn resume_execution(
        &self,
        req: ResumeRequest,
    ) -> Result<ExecutionSummary, EngineError> {
        let now = self.inner.adapters.clock.now();
        let exec = self.load_execution(&req.execution_id).await?;
        let conv = self.load_conversation(&exec.conversation_id).await?;
        let mut turn = Turn::new(self, conv, now);
        turn.api_resume(exec, req.message, req.variables).await?;
        let id = req.execution_id;
        turn.commit().await?;
        self.get_execution(&id).await
    }

    /// Changes an execution's status (API/operator): `ended`, `handoff`, or `waiting` from
    /// `handoff` (operator resume).
    pub async fn update_status(
        &self,
        execution_id: &str,
        status: Status,
    ) -> Result<ExecutionSummary, EngineError> {
        let now = self.inner.adapters.clock.now();
        let exec = self.load_execution(execution_id).await?;
        let conv = self.load_conversation(&exec.conversation_id).await?;
        let mut turn = Turn::new(self, conv, now);
        turn.set_status(exec, status).await?;
        turn.commit().await?;
        self.get_execution(execution_id).await
    }

    /// Jumps a waiting or handed-off execution to a node (operator).
    pub async fn jump_to_node(
        &self,
        execution_id: &str,
        node_id: &str,
        actor: &str,
    ) -> Result<ExecutionSummary, EngineError> {
        let now = self.inner.adapters.clock.now();
        let exec = self.load_execution(execution_id).await?;
        let conv = self.load_conversation(&exec.conversation_id).await?;
        let mut turn = Turn::new(self, conv, now);
        turn.jump(exec, node_id, actor).await?;
        turn.commit().await?;
        self.get_execution(execution_id).await
    }

    /// Fires due wait timeouts. Returns how many executions timed out.
    pub async fn fire_due_timers(&self) -> Result<usize, EngineError> {
        let now = self.inner.adapters.clock.now();
        let due = self.inner.store.due_timers(now, 256).await?;
        let mut fired = 0;
        for t in due {
            let Some(exec) = self.inner.store.execution(&t.execution_id).await? else {
                continue;
            };
            let conv = self.load_conversation(&exec.conversation_id).await?;
            let mut turn = Turn::new(self, conv, now);
            if turn.timeout(exec).await? {
                fired += 1;
            }
            match turn.commit().await {
                Ok(()) | Err(EngineError::Store(crate::StoreError::Conflict(_))) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(fired)
    }

    /// An execution (redacted).
    pub async fn get_execution(&self, execution_id: &str) -> Result<ExecutionSummary, EngineError> {
        let exec = self.load_execution(execution_id).await?;
        Ok(self.summary(&exec))
    }

    /// Executions matching a filter, newest first.
    pub async fn list_executions(
        &self,
        filter: &ExecutionFilter,
    ) -> Result<Vec<ExecutionSummary>, EngineError> {
        Ok(self
            .inner
            .store
            .executions(filter)
            .await?
            .iter()
            .map(|e| self.summary(e))
            .collect())
    }

    /// Events of an execution with `seq > after`.
    pub async fn list_events(
        &self,
        execution_id: &str,
        event_type: Option<EventType>,
        limit: usize,
        after: u64,
    ) -> Result<Vec<Event>, EngineError> {
        Ok(self
            .inner
            .store
            .events(execution_id, after, limit.clamp(1, 1000), event_type)
            .await?)
    }

    /// One event by its id (`<execution id>:<seq>`, as [`Event::id`] gives it).
    pub async fn get_event(&self, event_id: &str) -> Result<Event, EngineError> {
        let not_found = || EngineError::NotFound(format!("event `{event_id}`"));
        let (execution_id, seq) = event_id.rsplit_once(':').ok_or_else(not_found)?;
        let seq: u64 = seq.parse().map_err(|_| not_found())?;
        if seq == 0 {
            return Err(not_found());
        }
        self.inner
            .store
            .events(execution_id, seq - 1, 1, None)
            .await?
            .into_iter()
            .find(|e| e.seq == seq)
            .ok_or_else(not_found)
    }

    pub(crate) async fn load_execution(&self, id: &str) -> Result<Execution, EngineError> {
        self.inner
            .store
            .execution(id)
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("execution `{id}`")))
    }

    async fn load_conversation(&self, id: &str) -> Result<Conversation, EngineError> {
        self.inner
            .store
            .conversation(id)
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("conversation `{id}`")))
    }

    /// The API view of an execution.
    pub fn summary(&self, e: &Execution) -> ExecutionSummary {
        ExecutionSummary {
            id: e.id.clone(),
            flow: json!({"id": e.flow_id, "name": e.flow_name, "version": e.flow_version}),
            status: e.status,
            waiting_reason: e.waiting_reason,
            current_node_id: e.current_node_id.clone(),
            tracking_id: e.tracking_id.clone(),
            conversation_id: e.conversation_id.clone(),
            parent_execution_id: e.parent_execution_id.clone(),
            started_at: e.started_at.rfc3339(),
            last_event_at: e.last_event_at.rfc3339(),
            ended_at: e.ended_at.map(Timestamp::rfc3339),
            error_details: e.error_details.clone(),
            execution_context: json!({
                "vars": e.vars,
                "system": crate::turn::system_namespace(e, &self.inner.config),
                "context": e.context,
                "metadata": e.metadata,
            }),
        }
    }
}

/// Normalises a phone number to E.164 with `+` (digits only, 7–15 of them).
pub fn normalise_phone(s: &str) -> Option<String> {
    let t = s.trim();
    let digits = t.strip_prefix('+').unwrap_or(t);
    (digits.len() >= 7 && digits.len() <= 15 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| format!("+{digits}"))
}
