//! The engine: built explicitly from a store and one adapter per family, it registers flows and
//! triggers and runs the operations of runtime-semantics §10.
//!
//! Every operation loads what it needs from the store, runs at most one turn in memory (the
//! private `turn` module, which sees only the engine's shared context, never the engine),
//! and commits the turn's changes atomically; what a turn sends leaves only after the state that
//! produced it is committed. Operations on one conversation should not overlap: the
//! [`Worker`](crate::worker::Worker) serialises every entry point per conversation (a local
//! lock and a store lease), and the store's optimistic versions reject a concurrent turn —
//! before it sends anything.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::adapters::{
    Adapters, Clock, Family, FunctionInvoker, HttpClient, IdGenerator, LanguageModel, McpClient,
    Messenger, ProjectEventSink, Secrets,
};
use crate::config::EngineConfig;
use crate::context::EngineContext;
use crate::error::{EngineError, StoreError};
use crate::event::{Event, EventType};
use crate::registry::{FlowDefinition, FlowRegistry, RegisterError, Trigger};
use crate::request::{
    Dispatch, ExecutionSummary, InboundMessage, ResumeRequest, StartRequest, conversation_id,
    normalise_phone,
};
use crate::state::{Contact, Conversation, Execution, Status, TriggerType};
use crate::store::{
    ConversationWork, ExecutionFilter, ExecutionStore, InboundItem, OutboxQuery, OutboxRecord,
    QueuedInbound, TurnCommit,
};
use crate::template::Renderer;
use crate::time::Timestamp;
use crate::turn::{Resumed, Turn, system_namespace};

/// The flow engine. Cheap to clone (an `Arc` inside); share one per process.
#[derive(Clone)]
pub struct Engine {
    ctx: Arc<EngineContext>,
    unconfigured: Arc<[Family]>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("unconfigured", &self.unconfigured)
            .finish_non_exhaustive()
    }
}

/// Builds an [`Engine`] on a store, one adapter family at a time.
///
/// Construction fails closed: a family that is neither set nor filled by
/// [`EngineBuilder::offline`] is [`Unconfigured`](crate::adapters::Unconfigured) — its calls fail the node that makes them
/// (kind `adapter`, naming the setter to call), so a forgotten family never runs a fake. The
/// clock and ids default to the production [`SystemClock`](crate::adapters::SystemClock) and
/// [`UniqueIds`](crate::adapters::UniqueIds).
///
/// ```
/// use std::sync::Arc;
/// use switchboard_runtime::Engine;
/// use switchboard_runtime::offline::RecordingMessenger;
/// use switchboard_runtime::store::MemoryStore;
///
/// let messenger = Arc::new(RecordingMessenger::default());
/// let engine = Engine::builder(Arc::new(MemoryStore::new()))
///     .messenger(messenger.clone())
///     .build();
/// assert!(engine.unconfigured().contains(&switchboard_runtime::adapters::Family::Model));
/// ```
#[must_use]
pub struct EngineBuilder {
    store: Arc<dyn ExecutionStore>,
    messenger: Option<Arc<dyn Messenger>>,
    model: Option<Arc<dyn LanguageModel>>,
    functions: Option<Arc<dyn FunctionInvoker>>,
    http: Option<Arc<dyn HttpClient>>,
    mcp: Option<Arc<dyn McpClient>>,
    project_events: Option<Arc<dyn ProjectEventSink>>,
    secrets: Option<Arc<dyn Secrets>>,
    clock: Option<Arc<dyn Clock>>,
    ids: Option<Arc<dyn IdGenerator>>,
    offline: bool,
    config: EngineConfig,
}

impl std::fmt::Debug for EngineBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineBuilder")
            .field("offline", &self.offline)
            .finish_non_exhaustive()
    }
}

impl EngineBuilder {
    /// Sends WhatsApp messages through `messenger`.
    pub fn messenger(mut self, messenger: Arc<dyn Messenger>) -> Self {
        self.messenger = Some(messenger);
        self
    }

    /// Calls `model` for AI decides, AI fields and agents.
    pub fn model(mut self, model: Arc<dyn LanguageModel>) -> Self {
        self.model = Some(model);
        self
    }

    /// Invokes functions through `functions`.
    pub fn functions(mut self, functions: Arc<dyn FunctionInvoker>) -> Self {
        self.functions = Some(functions);
        self
    }

    /// Sends webhook requests through `http`.
    pub fn http(mut self, http: Arc<dyn HttpClient>) -> Self {
        self.http = Some(http);
        self
    }

    /// Reaches MCP servers through `mcp`.
    pub fn mcp(mut self, mcp: Arc<dyn McpClient>) -> Self {
        self.mcp = Some(mcp);
        self
    }

    /// Hands `emit_event` events to `sink`.
    pub fn project_events(mut self, sink: Arc<dyn ProjectEventSink>) -> Self {
        self.project_events = Some(sink);
        self
    }

    /// Resolves `${ENV:NAME}` through `secrets`.
    pub fn secrets(mut self, secrets: Arc<dyn Secrets>) -> Self {
        self.secrets = Some(secrets);
        self
    }

    /// Tells time with `clock` (default: the system clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Names executions with `ids` (default: ids unique across processes).
    pub fn ids(mut self, ids: Arc<dyn IdGenerator>) -> Self {
        self.ids = Some(ids);
        self
    }

    /// Sets every family, the clock and the ids at once.
    pub fn adapters(self, adapters: Adapters) -> Self {
        let Adapters {
            messenger,
            model,
            functions,
            http,
            mcp,
            project_events,
            secrets,
            clock,
            ids,
        } = adapters;
        self.messenger(messenger)
            .model(model)
            .functions(functions)
            .http(http)
            .mcp(mcp)
            .project_events(project_events)
            .secrets(secrets)
            .clock(clock)
            .ids(ids)
    }

    /// Fills every family not set (before or after this call) with its offline fake
    /// ([`OfflineAdapters`](crate::offline::OfflineAdapters): a recording messenger, the offline
    /// model, scripted functions, HTTP and MCP, environment secrets, a manual clock and
    /// sequential ids). Only for tests, local runs and tools: nothing leaves the process.
    pub fn offline(mut self) -> Self {
        self.offline = true;
        self
    }

    /// Uses this configuration.
    pub fn config(mut self, config: EngineConfig) -> Self {
        self.config = config;
        self
    }

    /// The engine.
    pub fn build(self) -> Engine {
        let fallback = if self.offline {
            crate::offline::OfflineAdapters::default().adapters()
        } else {
            Adapters::unconfigured()
        };
        let mut unconfigured = Vec::new();
        let mut pick = |family: Family, set: bool| {
            if !set && !self.offline {
                unconfigured.push(family);
            }
        };
        pick(Family::Messenger, self.messenger.is_some());
        pick(Family::Model, self.model.is_some());
        pick(Family::Functions, self.functions.is_some());
        pick(Family::Http, self.http.is_some());
        pick(Family::Mcp, self.mcp.is_some());
        pick(Family::ProjectEvents, self.project_events.is_some());
        pick(Family::Secrets, self.secrets.is_some());
        let adapters = Adapters {
            messenger: self.messenger.unwrap_or(fallback.messenger),
            model: self.model.unwrap_or(fallback.model),
            functions: self.functions.unwrap_or(fallback.functions),
            http: self.http.unwrap_or(fallback.http),
            mcp: self.mcp.unwrap_or(fallback.mcp),
            project_events: self.project_events.unwrap_or(fallback.project_events),
            secrets: self.secrets.unwrap_or(fallback.secrets),
            clock: self.clock.unwrap_or(fallback.clock),
            ids: self.ids.unwrap_or(fallback.ids),
        };
        if !unconfigured.is_empty() {
            tracing::debug!(
                families = ?unconfigured,
                "engine built with unconfigured adapter families: their calls fail"
            );
        }
        Engine {
            ctx: Arc::new(EngineContext {
                registry: FlowRegistry::default(),
                adapters,
                store: self.store,
                renderer: Renderer::with_limits(self.config.templates),
                config: self.config,
            }),
            unconfigured: unconfigured.into(),
        }
    }
}

impl Engine {
    /// A builder on `store` (e.g. [`MemoryStore`](crate::store::MemoryStore)). Set one adapter
    /// per family the flows use, or call [`EngineBuilder::offline`].
    pub fn builder(store: Arc<dyn ExecutionStore>) -> EngineBuilder {
        EngineBuilder {
            store,
            messenger: None,
            model: None,
            functions: None,
            http: None,
            mcp: None,
            project_events: None,
            secrets: None,
            clock: None,
            ids: None,
            offline: false,
            config: EngineConfig::default(),
        }
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn ExecutionStore> {
        &self.ctx.store
    }

    /// The adapters.
    pub fn adapters(&self) -> &Adapters {
        &self.ctx.adapters
    }

    /// The configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.ctx.config
    }

    /// The families that were neither set nor filled with offline fakes: their calls fail.
    pub fn unconfigured(&self) -> &[Family] {
        &self.unconfigured
    }

    /// Registers a flow (replacing one with the same id). A flow with any error diagnostic is
    /// refused: it must not be started.
    pub fn register_flow(&self, def: FlowDefinition) -> Result<(), RegisterError> {
        self.ctx.registry.register(def)
    }

    /// Adds a trigger.
    pub fn add_trigger(&self, trigger: Trigger) -> Result<(), EngineError> {
        self.ctx.registry.add_trigger(trigger)
    }

    /// The debounce window for messages on a business number (0 when none).
    pub fn debounce_seconds(&self, phone_number_id: &str) -> Result<f64, EngineError> {
        if let Some(d) = self.ctx.config.message_debounce_seconds {
            return Ok(d);
        }
        Ok(self
            .ctx
            .registry
            .inbound_trigger(phone_number_id)?
            .and_then(|f| f.debounce_seconds)
            .unwrap_or(0.0))
    }

    /// The conversation id of a contact on a business number.
    pub fn conversation_id(phone_number_id: &str, phone_number: &str) -> String {
        conversation_id(phone_number_id, phone_number)
    }

    /// Starts an execution through the API trigger.
    pub async fn start_execution(&self, req: StartRequest) -> Result<Value, EngineError> {
        let now = self.ctx.adapters.clock.now();
        if let Some(key) = &req.idempotency_key
            && let Some(v) = self
                .ctx
                .store
                .idempotent_result(key, Timestamp(now.0 - 24 * 3600 * 1000))
                .await?
        {
            return Ok(v);
        }
        let flow = self.ctx.flow(&req.flow)?;
        if !self.ctx.registry.api_trigger_active(&flow.id)? {
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
            .unwrap_or_else(|| self.ctx.config.default_phone_number_id.clone());
        let conv_id = conversation_id(&pnid, &phone);
        let conv = match self.ctx.store.conversation(&conv_id).await? {
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
            )
            .created(self.ctx.adapters.clock.now()),
        };
        if let Some(active) = &conv.active_execution_id
            && let Some(e) = self.ctx.store.execution(active).await?
            && e.status.is_active()
        {
            return Err(EngineError::Conflict(format!(
                "conversation {conv_id} has the active execution {active}"
            )));
        }
        let mut turn = Turn::new(&self.ctx, conv, now);
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
        self.inbound_turn(batch, Vec::new(), None).await
    }

    /// Handles a conversation's queued messages (one debounced batch, in arrival order) and
    /// removes them from the inbox with the same commit. Messages already processed are
    /// dropped (and removed). The conversation's worker calls it, holding its lease.
    pub async fn handle_queued(&self, items: &[QueuedInbound]) -> Result<Dispatch, EngineError> {
        self.queued_turn(items, None).await
    }

    /// [`Engine::handle_queued`] for a conversation the worker claimed: the turn starts from
    /// the conversation and active execution read with the claim (no further reads), and
    /// trusts the inbox's deduplication (a message id already processed is never queued; the
    /// commit refuses one all the same).
    pub async fn handle_claimed(
        &self,
        work: &ConversationWork,
        items: &[QueuedInbound],
    ) -> Result<Dispatch, EngineError> {
        self.queued_turn(items, Some(work)).await
    }

    /// The turn of queued items: their messages as one batch, every item consumed with its
    /// commit (only consumed when none is a message).
    async fn queued_turn(
        &self,
        items: &[QueuedInbound],
        claimed: Option<&ConversationWork>,
    ) -> Result<Dispatch, EngineError> {
        let consumed: Vec<u64> = items.iter().map(|q| q.seq).collect();
        let batch: Vec<InboundMessage> = items
            .iter()
            .filter_map(|q| match &q.item {
                InboundItem::Message(m) => Some(m.clone()),
                InboundItem::Status(_) => None,
            })
            .collect();
        if batch.is_empty() {
            self.consume(consumed).await?;
            return Ok(Dispatch::Duplicate);
        }
        self.inbound_turn(batch, consumed, claimed).await
    }

    /// Removes queued items without handling them (a message that cannot be handled must not
    /// hold up the ones after it).
    pub async fn drop_queued(&self, items: &[QueuedInbound]) -> Result<(), EngineError> {
        self.consume(items.iter().map(|q| q.seq).collect()).await
    }

    /// Removes inbox items (by their `seq`) without a turn: a worker drops queued messages
    /// its claim found processed already.
    pub async fn remove_queued(&self, seqs: Vec<u64>) -> Result<(), EngineError> {
        self.consume(seqs).await
    }

    /// Removes inbox items without a turn.
    async fn consume(&self, consumed: Vec<u64>) -> Result<(), EngineError> {
        if consumed.is_empty() {
            return Ok(());
        }
        self.ctx
            .store
            .commit(TurnCommit {
                consumed,
                ..TurnCommit::default()
            })
            .await
            .map_err(EngineError::from)
    }

    async fn inbound_turn(
        &self,
        batch: Vec<InboundMessage>,
        consumed: Vec<u64>,
        claimed: Option<&ConversationWork>,
    ) -> Result<Dispatch, EngineError> {
        let Some(first) = batch.first() else {
            return Err(EngineError::InvalidRequest("empty batch".into()));
        };
        let now = self.ctx.adapters.clock.now();
        let phone = normalise_phone(&first.from).ok_or_else(|| {
            EngineError::InvalidRequest(format!("`{}` is not a phone number", first.from))
        })?;
        let pnid = first.phone_number_id.clone();
        let conv_id = conversation_id(&pnid, &phone);
        let mut fresh = Vec::with_capacity(batch.len());
        for m in batch {
            if fresh.iter().any(|f: &InboundMessage| f.id == m.id) {
                continue;
            }
            if claimed.is_none() && self.ctx.store.seen_message(&conv_id, &m.id).await? {
                continue;
            }
            fresh.push(m);
        }
        if fresh.is_empty() {
            self.consume(consumed).await?;
            return Ok(Dispatch::Duplicate);
        }
        let stored = match claimed {
            Some(work) => work.conversation.clone().filter(|c| c.id == conv_id),
            None => self.ctx.store.conversation(&conv_id).await?,
        };
        let mut conv = match stored {
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
            )
            .created(self.ctx.adapters.clock.now()),
        };
        if let Some(name) = fresh.iter().rev().find_map(|m| m.profile_name.clone()) {
            conv.contact.profile_name = Some(name.clone());
            if conv.contact.name.is_none() {
                conv.contact.name = Some(name);
            }
        }
        let mut turn = Turn::new(&self.ctx, conv, now);
        turn.consumed = consumed;
        if let Some(work) = claimed {
            turn.preload(work.active.clone());
        }
        let dispatch = turn.inbound(fresh).await?;
        turn.commit().await?;
        Ok(dispatch)
    }

    /// Continues the conversation's active execution when it was left with a pending effect
    /// (a scheduled send that is due, or an effect a crash interrupted): see
    /// [`Resumed`]. The conversation's worker calls it, holding its lease.
    pub async fn resume_pending(&self, conversation_id: &str) -> Result<Resumed, EngineError> {
        let conv = self.ctx.store.conversation(conversation_id).await?;
        self.resume(conv, None).await
    }

    /// [`Engine::resume_pending`] for a conversation the worker claimed (no further reads).
    pub async fn resume_claimed(&self, work: &ConversationWork) -> Result<Resumed, EngineError> {
        self.resume(work.conversation.clone(), work.active.clone())
            .await
    }

    async fn resume(
        &self,
        conv: Option<Conversation>,
        active_execution: Option<Execution>,
    ) -> Result<Resumed, EngineError> {
        let Some(conv) = conv else {
            return Ok(Resumed::Nothing);
        };
        let Some(active) = conv.active_execution_id.clone() else {
            return Ok(Resumed::Nothing);
        };
        let now = self.ctx.adapters.clock.now();
        let mut turn = Turn::new(&self.ctx, conv, now);
        turn.preload(active_execution);
        let xi = turn.load(&active).await?;
        let resumed = turn.resume_effect(xi).await?;
        if resumed == Resumed::Continued {
            turn.commit().await?;
        }
        Ok(resumed)
    }

    /// Applies a queued delivery status: the outbox record it names (by
    /// `biz_opaque_callback_data`, else by WhatsApp message id) records it — an interrupted
    /// send it confirms counts as sent — and the execution gets a `message_status` event. The
    /// item is removed from the inbox with the same commit; a status naming no record is only
    /// removed.
    pub async fn apply_status(&self, item: &QueuedInbound) -> Result<(), EngineError> {
        let InboundItem::Status(status) = &item.item else {
            return Err(EngineError::InvalidRequest("not a delivery status".into()));
        };
        let consumed = vec![item.seq];
        let Some(record) = self.status_record(status).await? else {
            return self.consume(consumed).await;
        };
        let Some(conv) = self.ctx.store.conversation(&record.conversation_id).await? else {
            return self.consume(consumed).await;
        };
        let now = self.ctx.adapters.clock.now();
        let mut turn = Turn::new(&self.ctx, conv, now);
        turn.consumed = consumed;
        turn.delivery_status(record, status).await?;
        turn.commit().await
    }

    /// Applies a claimed conversation's queued delivery statuses (see
    /// [`Engine::apply_status`]) as one turn with one commit, starting from the conversation
    /// and active execution read with the claim. Statuses naming no outbox record of this
    /// conversation are only removed.
    pub async fn apply_claimed_statuses(
        &self,
        work: &ConversationWork,
        items: &[&QueuedInbound],
    ) -> Result<(), EngineError> {
        let consumed: Vec<u64> = items.iter().map(|q| q.seq).collect();
        let Some(conv) = work.conversation.clone() else {
            return self.consume(consumed).await;
        };
        let now = self.ctx.adapters.clock.now();
        let mut turn = Turn::new(&self.ctx, conv, now);
        turn.preload(work.active.clone());
        turn.consumed = consumed;
        for item in items {
            let InboundItem::Status(status) = &item.item else {
                continue;
            };
            let Some(record) = self.status_record(status).await? else {
                continue;
            };
            if record.conversation_id != turn.conv.id {
                continue;
            }
            turn.delivery_status(record, status).await?;
        }
        turn.commit().await
    }

    /// The outbox record a delivery status names: by `biz_opaque_callback_data`, else by
    /// WhatsApp message id.
    async fn status_record(
        &self,
        status: &crate::store::DeliveryStatus,
    ) -> Result<Option<OutboxRecord>, EngineError> {
        if let Some(id) = &status.outbox_id
            && let Some(r) = self
                .ctx
                .store
                .outbox(&OutboxQuery::Id(id.clone()))
                .await?
                .into_iter()
                .next()
        {
            return Ok(Some(r));
        }
        Ok(self
            .ctx
            .store
            .outbox(&OutboxQuery::WhatsappId(status.message_id.clone()))
            .await?
            .into_iter()
            .next())
    }

    /// Fires one execution's wait timeout if it is due (see [`Engine::fire_due_timers`]).
    /// Returns whether it fired.
    pub async fn fire_timer(&self, execution_id: &str) -> Result<bool, EngineError> {
        let now = self.ctx.adapters.clock.now();
        let Some(exec) = self.ctx.store.execution(execution_id).await? else {
            return Ok(false);
        };
        let conv = self.ctx.load_conversation(&exec.conversation_id).await?;
        self.fire(conv, exec, now).await
    }

    /// Fires the wait timeout of a claimed conversation's active execution if it is due (no
    /// further reads). Returns whether it fired.
    pub async fn fire_claimed(&self, work: &ConversationWork) -> Result<bool, EngineError> {
        let now = self.ctx.adapters.clock.now();
        let (Some(conv), Some(exec)) = (work.conversation.clone(), work.active.clone()) else {
            return Ok(false);
        };
        if exec.timer.as_ref().is_none_or(|t| t.due_at > now) {
            return Ok(false);
        }
        self.fire(conv, exec, now).await
    }

    async fn fire(
        &self,
        conv: Conversation,
        exec: Execution,
        now: Timestamp,
    ) -> Result<bool, EngineError> {
        let mut turn = Turn::new(&self.ctx, conv, now);
        let fired = turn.timeout(exec).await?;
        if fired {
            turn.commit().await?;
        }
        Ok(fired)
    }

    /// Resumes a waiting execution (API).
    pub async fn resume_execution(
        &self,
        req: ResumeRequest,
    ) -> Result<ExecutionSummary, EngineError> {
        let now = self.ctx.adapters.clock.now();
        let exec = self.ctx.load_execution(&req.execution_id).await?;
        let conv = self.ctx.load_conversation(&exec.conversation_id).await?;
        let mut turn = Turn::new(&self.ctx, conv, now);
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
        let now = self.ctx.adapters.clock.now();
        let exec = self.ctx.load_execution(execution_id).await?;
        let conv = self.ctx.load_conversation(&exec.conversation_id).await?;
        let mut turn = Turn::new(&self.ctx, conv, now);
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
        let now = self.ctx.adapters.clock.now();
        let exec = self.ctx.load_execution(execution_id).await?;
        let conv = self.ctx.load_conversation(&exec.conversation_id).await?;
        let mut turn = Turn::new(&self.ctx, conv, now);
        turn.jump(exec, node_id, actor).await?;
        turn.commit().await?;
        self.get_execution(execution_id).await
    }

    /// Fires due wait timeouts. Returns how many executions timed out.
    pub async fn fire_due_timers(&self) -> Result<usize, EngineError> {
        let now = self.ctx.adapters.clock.now();
        let due = self.ctx.store.due_timers(now, 256).await?;
        let mut fired = 0;
        for t in due {
            let Some(exec) = self.ctx.store.execution(&t.execution_id).await? else {
                continue;
            };
            let conv = self.ctx.load_conversation(&exec.conversation_id).await?;
            let mut turn = Turn::new(&self.ctx, conv, now);
            if turn.timeout(exec).await? {
                fired += 1;
            }
            match turn.commit().await {
                // Another process (or an inbound message) changed the execution first: its turn
                // decided what happens to the timer.
                Ok(())
                | Err(EngineError::Conflict(_) | EngineError::Store(StoreError::Conflict(_))) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(fired)
    }

    /// An execution (redacted).
    pub async fn get_execution(&self, execution_id: &str) -> Result<ExecutionSummary, EngineError> {
        let exec = self.ctx.load_execution(execution_id).await?;
        Ok(self.summary(&exec))
    }

    /// Executions matching a filter, newest first.
    pub async fn list_executions(
        &self,
        filter: &ExecutionFilter,
    ) -> Result<Vec<ExecutionSummary>, EngineError> {
        Ok(self
            .ctx
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
            .ctx
            .store
            .events(execution_id, after, limit.clamp(1, 1000), event_type)
            .await?)
    }

    /// An execution's outbox records — its messages and project events, their state and
    /// delivery statuses — oldest first, with the execution's secret values redacted.
    pub async fn outbox(&self, execution_id: &str) -> Result<Vec<OutboxRecord>, EngineError> {
        let exec = self.ctx.load_execution(execution_id).await?;
        let records = self
            .ctx
            .store
            .outbox(&OutboxQuery::Execution(execution_id.to_owned()))
            .await?;
        Ok(crate::turn::redact_records(&self.ctx, &exec, records))
    }

    /// One event by its id (`<execution id>:<seq>`, as [`Event::id`] gives it).
    pub async fn get_event(&self, event_id: &str) -> Result<Event, EngineError> {
        let not_found = || EngineError::NotFound(format!("event `{event_id}`"));
        let (execution_id, seq) = event_id.rsplit_once(':').ok_or_else(not_found)?;
        let seq: u64 = seq.parse().map_err(|_| not_found())?;
        if seq == 0 {
            return Err(not_found());
        }
        self.ctx
            .store
            .events(execution_id, seq - 1, 1, None)
            .await?
            .into_iter()
            .find(|e| e.seq == seq)
            .ok_or_else(not_found)
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
                "system": system_namespace(e, &self.ctx.config),
                "context": e.context,
                "metadata": e.metadata,
            }),
        }
    }
}
