//! Execution stores: where conversations, executions, events, timers and idempotency records
//! live, and the two queues around them — the inbox of accepted inbound items and the outbox of
//! effects (messages, project events) — with the leases that keep one worker on a conversation.
//! A turn's changes are committed atomically with optimistic versioning, so a turn is
//! acknowledged only once its state is durable (for durable stores), and two processes racing
//! on one conversation cannot both win.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Mutex;

use async_trait::async_trait;
use serde_json::Value;

use serde::{Deserialize, Serialize};

use crate::adapters::{OutboundMessage, ProjectEvent};
use crate::error::StoreError;
use crate::event::{Event, EventType};
use crate::request::InboundMessage;
use crate::state::{Conversation, Execution, Status, WaitingReason};
use crate::time::Timestamp;

/// Everything a turn changed, committed at once. Each conversation, execution and message id
/// appears at most once.
#[derive(Clone, Debug, Default)]
pub struct TurnCommit {
    /// Conversations to write; each carries the version it was loaded with (0: new).
    pub conversations: Vec<Conversation>,
    /// Executions to write; each carries the version it was loaded with (0: new).
    pub executions: Vec<Execution>,
    /// Events to append.
    pub events: Vec<Event>,
    /// Inbound message ids processed by this turn: `(conversation id, message id, received at)`.
    pub message_ids: Vec<(String, String, Timestamp)>,
    /// An idempotency record: `(key, result, at)`.
    pub idempotency: Option<(String, Value, Timestamp)>,
    /// Outbox records to write (inserted, or replaced by id).
    pub outbox: Vec<OutboxRecord>,
    /// Inbox items this turn consumed (their `seq`): removed in the same transaction.
    pub consumed: Vec<u64>,
}

// --- The inbox -----------------------------------------------------------------------------

/// A delivery status of an outbound message, as a webhook reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryStatus {
    /// The WhatsApp message id of the outbound message.
    pub message_id: String,
    /// `sent`, `delivered`, `read` or `failed`.
    pub status: String,
    /// When (from the webhook).
    pub at: Timestamp,
    /// The recipient's WhatsApp id (the contact's number without `+`).
    pub recipient_id: String,
    /// The business number.
    pub phone_number_id: String,
    /// The outbox record it belongs to, when the message carried one
    /// (`biz_opaque_callback_data`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outbox_id: Option<String>,
    /// Meta's errors, for `failed`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<Value>,
}

/// Something accepted from a webhook, waiting for its conversation's worker.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum InboundItem {
    /// A message from the contact.
    Message(InboundMessage),
    /// A delivery status of a message sent to the contact.
    Status(DeliveryStatus),
}

/// An item to put in the inbox.
#[derive(Clone, Debug, PartialEq)]
pub struct NewInbound {
    /// The conversation it belongs to.
    pub conversation_id: String,
    /// Deduplication key within the conversation: the message id, or `<message id>:<status>`
    /// for a status. A message whose id was processed before (see
    /// [`ExecutionStore::seen_message`]) or is already queued is not queued again.
    pub key: String,
    /// The item.
    pub item: InboundItem,
    /// When it was accepted.
    pub received_at: Timestamp,
    /// When it may be processed (debounce: the batch of a conversation is due when its latest
    /// message is).
    pub due_at: Timestamp,
}

/// What [`ExecutionStore::enqueue`] did with an item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Enqueued {
    /// Queued with this sequence number (arrival order, store-wide).
    Queued(u64),
    /// Already queued or processed: dropped.
    Duplicate,
}

/// An item in the inbox.
#[derive(Clone, Debug, PartialEq)]
pub struct QueuedInbound {
    /// Arrival order, store-wide.
    pub seq: u64,
    /// The conversation.
    pub conversation_id: String,
    /// Its deduplication key.
    pub key: String,
    /// The item.
    pub item: InboundItem,
    /// When it was accepted.
    pub received_at: Timestamp,
    /// When it may be processed.
    pub due_at: Timestamp,
}

/// What a worker reads when it claims a conversation: its queued items, the conversation and
/// its active execution, so the turn that follows need not read them again.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ConversationWork {
    /// Queued items, in arrival order (without those in `processed`).
    pub queued: Vec<QueuedInbound>,
    /// Queued messages whose id was processed already: a redelivery that reached the inbox
    /// while its first copy's turn was committing (the inbox's check and that commit can
    /// interleave on a networked store). They are removed without a turn.
    pub processed: Vec<u64>,
    /// The conversation (`None` before its first commit).
    pub conversation: Option<Conversation>,
    /// Its active (innermost) execution.
    pub active: Option<Execution>,
}

impl ConversationWork {
    /// `true` when something is due at `now`: a queued delivery status; queued messages whose
    /// latest `due_at` has passed, unless the active execution has a pending effect (messages
    /// wait for it); a pending effect that is due ([`effect_due`]); a due wait timeout. The
    /// same rule as [`ExecutionStore::due_work`], for one conversation.
    pub fn is_due(&self, now: Timestamp) -> bool {
        let statuses = self
            .queued
            .iter()
            .any(|q| matches!(q.item, InboundItem::Status(_)));
        let effect = self.active.as_ref().and_then(effect_due);
        let mut messages = self
            .queued
            .iter()
            .filter(|q| matches!(q.item, InboundItem::Message(_)))
            .peekable();
        let messages_due =
            messages.peek().is_some() && messages.all(|q| q.due_at <= now) && effect.is_none();
        let timer_due = self
            .active
            .as_ref()
            .and_then(|e| e.timer.as_ref())
            .is_some_and(|t| t.due_at <= now);
        !self.processed.is_empty()
            || statuses
            || messages_due
            || effect.is_some_and(|d| d <= now)
            || timer_due
    }
}

/// What [`ExecutionStore::claim`] found.
#[derive(Clone, Debug, PartialEq)]
pub enum Claimed {
    /// Work is due and the lease is the caller's (taken or renewed). Boxed: the conversation
    /// and its execution are large next to the other variants.
    Work(Box<ConversationWork>),
    /// Nothing is due: the caller's lease, if it held one, was let go.
    Idle,
    /// Work is due but another owner holds a live lease.
    Busy,
}

/// A conversation with work that is due, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DueWork {
    /// The conversation.
    pub conversation_id: String,
    /// The earliest due time of its work (for ordering).
    pub due_at: Timestamp,
}

// --- The outbox ----------------------------------------------------------------------------

/// What an outbox record carries out.
// Records are built once per effect and moved, never kept in bulk in memory.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Effect {
    /// A WhatsApp message.
    Message(OutboundMessage),
    /// A project event.
    ProjectEvent(ProjectEvent),
}

/// Where an outbox record is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum OutboxState {
    /// Waiting for its time (`not_before`).
    Scheduled,
    /// Committed as being carried out since `since`: a crash leaves it here. Whether it
    /// reached WhatsApp is then unknown until a delivery status names it.
    Sending {
        /// When the attempt started.
        since: Timestamp,
    },
    /// Carried out.
    Sent {
        /// When.
        at: Timestamp,
        /// The WhatsApp message id (messages only).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        whatsapp_id: Option<String>,
    },
    /// Refused (by the window check, the adapter, or WhatsApp).
    Failed {
        /// When.
        at: Timestamp,
        /// `{kind, message, status?}`.
        error: Value,
    },
}

/// A delivery status recorded on an outbox record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusRecord {
    /// `sent`, `delivered`, `read` or `failed`.
    pub status: String,
    /// When.
    pub at: Timestamp,
    /// Meta's errors, for `failed`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<Value>,
}

/// An effect of a turn: committed before it is carried out, then updated with the outcome and
/// the delivery statuses WhatsApp reports.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutboxRecord {
    /// `<execution id>.<n>`: stable, sent to WhatsApp as `biz_opaque_callback_data`.
    pub id: String,
    /// The conversation.
    pub conversation_id: String,
    /// The execution.
    pub execution_id: String,
    /// The node.
    pub node_id: String,
    /// What to do.
    pub effect: Effect,
    /// Where it is.
    pub state: OutboxState,
    /// Not before this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<Timestamp>,
    /// Delivery statuses reported so far, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub statuses: Vec<StatusRecord>,
    /// When it was created.
    pub created_at: Timestamp,
}

impl OutboxRecord {
    /// The WhatsApp message id, once sent.
    pub fn whatsapp_id(&self) -> Option<&str> {
        match &self.state {
            OutboxState::Sent { whatsapp_id, .. } => whatsapp_id.as_deref(),
            _ => None,
        }
    }
}

/// Which outbox records to list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OutboxQuery {
    /// One record by id.
    Id(String),
    /// The record of a WhatsApp message id.
    WhatsappId(String),
    /// An execution's records, oldest first.
    Execution(String),
}

/// A wait timeout that is due.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DueTimer {
    /// The execution.
    pub execution_id: String,
    /// When it was due.
    pub due_at: Timestamp,
}

/// Filters of `list_executions` (runtime-semantics §10).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ExecutionFilter {
    /// Flow id.
    pub flow_id: Option<String>,
    /// Conversation id.
    pub conversation_id: Option<String>,
    /// Status.
    pub status: Option<Status>,
    /// Waiting reason.
    pub waiting_reason: Option<WaitingReason>,
    /// Started at or after.
    pub created_after: Option<Timestamp>,
    /// Started before.
    pub created_before: Option<Timestamp>,
    /// At most this many (1–100).
    pub limit: usize,
    /// Page after this execution id (newest first): older executions.
    pub after: Option<String>,
    /// Page before this execution id: the `limit` executions just newer than it, still listed
    /// newest first. Ignored when `after` is set.
    pub before: Option<String>,
}

/// Where executions live. Implementations: [`MemoryStore`] here, SQLite (and others) in
/// `switchboard-sqlite`. All pass the conformance suite of `switchboard-store-tests`.
#[async_trait]
pub trait ExecutionStore: Send + Sync {
    /// A conversation.
    async fn conversation(&self, id: &str) -> Result<Option<Conversation>, StoreError>;
    /// An execution.
    async fn execution(&self, id: &str) -> Result<Option<Execution>, StoreError>;
    /// Commits a turn atomically. Fails with [`StoreError::Conflict`] (changing nothing) when a
    /// record's version differs from the stored one, or an inbound message id was already
    /// recorded for its conversation. Stored versions become `version + 1`.
    async fn commit(&self, commit: TurnCommit) -> Result<(), StoreError>;
    /// `true` when the message id was processed for the conversation (remembered ≥ 7 days).
    async fn seen_message(
        &self,
        conversation_id: &str,
        message_id: &str,
    ) -> Result<bool, StoreError>;
    /// The result recorded for an idempotency key at or after `since`.
    async fn idempotent_result(
        &self,
        key: &str,
        since: Timestamp,
    ) -> Result<Option<Value>, StoreError>;
    /// Wait timeouts due at `now`, earliest first.
    async fn due_timers(&self, now: Timestamp, limit: usize) -> Result<Vec<DueTimer>, StoreError>;
    /// Events of an execution with `seq > after`, oldest first.
    async fn events(
        &self,
        execution_id: &str,
        after: u64,
        limit: usize,
        event_type: Option<EventType>,
    ) -> Result<Vec<Event>, StoreError>;
    /// Executions matching a filter, newest first: `started_at` descending, ties by creation
    /// (first commit) order, the latest created first. `filter.after` pages past that
    /// execution in this order, `filter.before` gives the page just before that execution
    /// (the `limit` nearest newer ones, newest first); an unknown cursor gives an empty page.
    /// `filter.limit` is clamped to 1–100.
    async fn executions(&self, filter: &ExecutionFilter) -> Result<Vec<Execution>, StoreError>;

    /// Puts items in the inbox, all in one transaction (durably, for a durable store, before it
    /// returns): each is queued unless its key is already queued for its conversation or (for
    /// messages) was processed before.
    async fn enqueue(&self, items: Vec<NewInbound>) -> Result<Vec<Enqueued>, StoreError>;
    /// A conversation's queued items, in arrival order.
    async fn queued(&self, conversation_id: &str) -> Result<Vec<QueuedInbound>, StoreError>;
    /// Conversations with work due at `now` whose lease is free (or expired): queued statuses,
    /// queued messages whose latest `due_at` has passed (unless an execution of the conversation
    /// has a pending effect: messages wait for it), executions with a pending effect due
    /// ([`effect_due`]), and due wait timeouts. Earliest first, at most `limit`.
    async fn due_work(&self, now: Timestamp, limit: usize) -> Result<Vec<DueWork>, StoreError>;
    /// Outbox records.
    async fn outbox(&self, query: &OutboxQuery) -> Result<Vec<OutboxRecord>, StoreError>;
    /// Takes (or renews) the lease on a conversation for `owner` until `now + ttl_ms`: `true`
    /// when it is free, expired, or already `owner`'s.
    async fn acquire_lease(
        &self,
        conversation_id: &str,
        owner: &str,
        now: Timestamp,
        ttl_ms: i64,
    ) -> Result<bool, StoreError>;
    /// Gives a lease up (nothing when `owner` does not hold it).
    async fn release_lease(&self, conversation_id: &str, owner: &str) -> Result<(), StoreError>;

    /// A worker's look at one conversation: when work is due ([`ConversationWork::is_due`]),
    /// takes or renews the lease for `owner` until `now + ttl_ms` and returns what the next
    /// turn needs ([`Claimed::Work`]), or [`Claimed::Busy`] when another owner holds a live
    /// lease; when nothing is due, lets `owner`'s lease go ([`Claimed::Idle`]).
    ///
    /// The default composes the other methods; a networked store does it in one round trip.
    async fn claim(
        &self,
        conversation_id: &str,
        owner: &str,
        now: Timestamp,
        ttl_ms: i64,
    ) -> Result<Claimed, StoreError> {
        if !self
            .acquire_lease(conversation_id, owner, now, ttl_ms)
            .await?
        {
            let work = self.conversation_work(conversation_id).await?;
            return Ok(if work.is_due(now) {
                Claimed::Busy
            } else {
                Claimed::Idle
            });
        }
        let work = self.conversation_work(conversation_id).await?;
        if work.is_due(now) {
            Ok(Claimed::Work(Box::new(work)))
        } else {
            self.release_lease(conversation_id, owner).await?;
            Ok(Claimed::Idle)
        }
    }

    /// A conversation's queued items, the conversation and its active execution.
    async fn conversation_work(
        &self,
        conversation_id: &str,
    ) -> Result<ConversationWork, StoreError> {
        let mut queued = Vec::new();
        let mut processed = Vec::new();
        for q in self.queued(conversation_id).await? {
            if matches!(q.item, InboundItem::Message(_))
                && self.seen_message(conversation_id, &q.key).await?
            {
                processed.push(q.seq);
            } else {
                queued.push(q);
            }
        }
        let conversation = self.conversation(conversation_id).await?;
        let active = match conversation
            .as_ref()
            .and_then(|c| c.active_execution_id.as_deref())
        {
            Some(id) => self.execution(id).await?,
            None => None,
        };
        Ok(ConversationWork {
            queued,
            processed,
            conversation,
            active,
        })
    }

    // --- key-value namespaces (`env.KV` of local functions: one namespace per function) ---
    //
    // Contract: each call is atomic on its own (a get never sees half a put); there are no
    // transactions across calls, so a read-modify-write may lose a concurrent update. Keys and
    // values are UTF-8 strings compared and ordered by their bytes. Limits, checked before
    // anything changes: a key is 1 to [`KV_MAX_KEY_BYTES`] bytes, a value at most
    // [`KV_MAX_VALUE_BYTES`] bytes, and a namespace holds at most [`KV_MAX_KEYS`] keys (a put
    // replacing an existing key is always allowed); a breach is [`StoreError::Limit`]. Values
    // survive restarts in a durable store.

    /// The value of `key` in `namespace`, if any.
    async fn kv_get(&self, namespace: &str, key: &str) -> Result<Option<String>, StoreError>;
    /// Stores `value` under `key` in `namespace`, replacing any value ([`StoreError::Limit`]
    /// when a limit forbids it, changing nothing).
    async fn kv_put(&self, namespace: &str, key: &str, value: &str) -> Result<(), StoreError>;
    /// Removes `key` from `namespace` (nothing when it is absent).
    async fn kv_delete(&self, namespace: &str, key: &str) -> Result<(), StoreError>;
    /// The keys of `namespace` that start with `prefix`, in byte order, at most `limit`.
    async fn kv_list(
        &self,
        namespace: &str,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<String>, StoreError>;
}

/// The longest key of a key-value namespace, in bytes (as Cloudflare KV).
pub const KV_MAX_KEY_BYTES: usize = 512;

/// The largest value of a key-value namespace, in bytes.
pub const KV_MAX_VALUE_BYTES: usize = 1024 * 1024;

/// The most keys a key-value namespace holds.
pub const KV_MAX_KEYS: usize = 10_000;

/// Checks a put's key and value against the limits (the key count is the store's to check):
/// the [`StoreError::Limit`] to return, if any. Messages never contain the key or the value.
pub fn kv_check(key: &str, value: &str) -> Result<(), StoreError> {
    if key.is_empty() {
        return Err(StoreError::Limit("the key must not be empty".into()));
    }
    if key.len() > KV_MAX_KEY_BYTES {
        return Err(StoreError::Limit(format!(
            "the key is {} bytes, over the {KV_MAX_KEY_BYTES}-byte limit",
            key.len()
        )));
    }
    if value.len() > KV_MAX_VALUE_BYTES {
        return Err(StoreError::Limit(format!(
            "the value is {} bytes, over the {KV_MAX_VALUE_BYTES}-byte limit",
            value.len()
        )));
    }
    Ok(())
}

/// The error of a put of a new key into a full namespace.
pub fn kv_full() -> StoreError {
    StoreError::Limit(format!("the namespace is full ({KV_MAX_KEYS} keys)"))
}

/// The memory store's hash maps: foldhash, seeded per process (SipHash, the standard library's
/// default, was an eighth of a turn's instructions on the memory store).
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// How long inbound message ids are remembered for deduplication.
pub const MESSAGE_ID_RETENTION_MS: i64 = 7 * 24 * 3600 * 1000;

/// An in-memory store: the default, for tests, the CLI and single-process deployments that can
/// lose state on restart.
///
/// Its events are a bounded log: the last [`MemoryStore::DEFAULT_EVENT_CAPACITY`] events of all
/// executions are kept, the oldest dropped first ([`MemoryStore::with_event_capacity`] sets
/// another bound), so memory does not grow with the number of turns. They can also be capped
/// per execution ([`MemoryStore::with_event_limit`]).
///
/// Its settled outbox records (sent or failed) are a bounded log too: the last
/// [`MemoryStore::DEFAULT_OUTBOX_CAPACITY`] of all executions are kept
/// ([`MemoryStore::with_outbox_capacity`] sets another bound). A record still to be carried out
/// (scheduled, or being sent) or that an execution's pending effect names is never dropped. A
/// delivery status naming a dropped record finds no record, as one naming an unknown message.
pub struct MemoryStore {
    inner: Mutex<Inner>,
    event_limit: Option<usize>,
    event_capacity: usize,
    outbox_capacity: usize,
}

impl Default for MemoryStore {
    fn default() -> MemoryStore {
        MemoryStore {
            inner: Mutex::default(),
            event_limit: None,
            event_capacity: MemoryStore::DEFAULT_EVENT_CAPACITY,
            outbox_capacity: MemoryStore::DEFAULT_OUTBOX_CAPACITY,
        }
    }
}

#[derive(Default)]
struct Inner {
    /// Conversations and executions, boxed: the tables hold a pointer per entry (and some
    /// free slots), not a whole value.
    conversations: HashMap<String, Box<Conversation>>,
    executions: HashMap<String, Box<Execution>>,
    /// Executions in listing order, oldest first: `(started_at, creation number, id)`.
    order: BTreeSet<(Timestamp, u64, String)>,
    /// The listing key of each execution.
    order_key: HashMap<String, (Timestamp, u64)>,
    /// Executions created so far (the creation number of the next one).
    created: u64,
    /// Each execution's events, oldest first.
    events: HashMap<String, VecDeque<Event>>,
    /// The log's order: `(execution id, seq)` of each event kept, oldest first (entries of events
    /// a per-execution limit dropped stay until they reach the front or are compacted away).
    event_order: VecDeque<(String, u64)>,
    /// Events kept, in all.
    events_kept: usize,
    timers: BTreeSet<(Timestamp, String)>,
    timer_of: HashMap<String, Timestamp>,
    /// Processed inbound message ids, by conversation: id → when.
    messages: HashMap<String, HashMap<String, Timestamp>>,
    idempotency: HashMap<String, (Value, Timestamp)>,
    commits: u64,
    /// Executions with a pending effect: `(due, id)`.
    effects: BTreeSet<(Timestamp, String)>,
    effect_of: HashMap<String, Timestamp>,
    /// The inbox by sequence number, and each conversation's sequence numbers.
    inbox: BTreeMap<u64, QueuedInbound>,
    inbox_of: HashMap<String, BTreeSet<u64>>,
    inbox_seq: u64,
    /// Outbox records (boxed: a record is large and the table moves its entries as it grows),
    /// an execution's record ids in creation order, and WhatsApp ids.
    outbox: HashMap<String, Box<OutboxRecord>>,
    outbox_of: HashMap<String, VecDeque<String>>,
    by_whatsapp_id: HashMap<String, String>,
    /// The settled records' log, oldest first: `(record id, settling number)`. A record
    /// committed again is logged again; an entry counts only while its number is the record's
    /// last (`settled_as`).
    settled: VecDeque<(String, u64)>,
    /// Each settled record's last settling number.
    settled_as: HashMap<String, u64>,
    /// Settling numbers given so far.
    settlings: u64,
    /// Leases: conversation → (owner, expires at).
    leases: HashMap<String, (String, Timestamp)>,
    /// Key-value namespaces: namespace → key → value.
    kv: HashMap<String, BTreeMap<String, String>>,
}

impl MemoryStore {
    /// Events kept by default, in all executions together (about 700 bytes each for a typical
    /// step event: some 7 MB).
    pub const DEFAULT_EVENT_CAPACITY: usize = 10_000;

    /// Settled outbox records kept by default, in all executions together (about 1 KB each for
    /// a text message: some 10 MB).
    pub const DEFAULT_OUTBOX_CAPACITY: usize = 10_000;

    /// An empty store keeping the last [`MemoryStore::DEFAULT_EVENT_CAPACITY`] events and
    /// [`MemoryStore::DEFAULT_OUTBOX_CAPACITY`] settled outbox records.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// An empty store keeping the last `capacity` events of all executions together (the
    /// oldest are dropped first; 0 keeps none).
    pub fn with_event_capacity(capacity: usize) -> MemoryStore {
        MemoryStore {
            event_capacity: capacity,
            ..MemoryStore::default()
        }
    }

    /// An empty store keeping at most `limit` events per execution (the oldest are dropped),
    /// and at most [`MemoryStore::DEFAULT_EVENT_CAPACITY`] in all.
    pub fn with_event_limit(limit: usize) -> MemoryStore {
        MemoryStore {
            event_limit: Some(limit),
            ..MemoryStore::default()
        }
    }

    /// The same store keeping the last `capacity` settled (sent or failed) outbox records of all
    /// executions together, the oldest dropped first. Records still to be carried out are
    /// always kept.
    pub fn with_outbox_capacity(mut self, capacity: usize) -> MemoryStore {
        self.outbox_capacity = capacity;
        self
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Inner>, StoreError> {
        self.inner
            .lock()
            .map_err(|_| StoreError::Backend("memory store lock poisoned".into()))
    }

    /// Drops the oldest settled outbox records beyond the capacity. One an execution's pending
    /// effect names is kept, outside the count, and logged again to be looked at later.
    fn drop_settled(&self, inner: &mut Inner) {
        let mut kept_back = Vec::new();
        while inner.settled_as.len() > self.outbox_capacity + kept_back.len() {
            let Some((id, n)) = inner.settled.pop_front() else {
                break;
            };
            if inner.settled_as.get(&id) != Some(&n) {
                // Committed again since (or no longer settled): a later entry stands for it.
                continue;
            }
            let pending = inner.outbox.get(&id).is_some_and(|r| {
                inner
                    .executions
                    .get(&r.execution_id)
                    .and_then(|e| e.pending_effect.as_ref())
                    .is_some_and(|p| p.outbox_id == id)
            });
            if pending {
                kept_back.push((id, n));
                continue;
            }
            inner.settled_as.remove(&id);
            if let Some(r) = inner.outbox.remove(&id) {
                if let Some(w) = r.whatsapp_id()
                    && inner.by_whatsapp_id.get(w) == Some(&id)
                {
                    inner.by_whatsapp_id.remove(w);
                }
                if let Some(ids) = inner.outbox_of.get_mut(&r.execution_id) {
                    if ids.front() == Some(&id) {
                        ids.pop_front();
                    } else {
                        ids.retain(|x| *x != id);
                    }
                    if ids.is_empty() {
                        inner.outbox_of.remove(&r.execution_id);
                    }
                }
            }
        }
        inner.settled.extend(kept_back);
    }

    /// Appends an event to the log, dropping the oldest beyond the bounds.
    fn log_event(&self, inner: &mut Inner, ev: Event) {
        let limit = self
            .event_limit
            .unwrap_or(usize::MAX)
            .min(self.event_capacity);
        if limit == 0 {
            return;
        }
        let Inner {
            events,
            event_order,
            events_kept,
            ..
        } = inner;
        event_order.push_back((ev.execution_id.clone(), ev.seq));
        let list = match events.get_mut(&ev.execution_id) {
            Some(list) => list,
            None => events.entry(ev.execution_id.clone()).or_default(),
        };
        list.push_back(ev);
        *events_kept += 1;
        if list.len() > limit {
            list.pop_front();
            *events_kept -= 1;
        }
        while *events_kept > self.event_capacity {
            let Some((id, seq)) = event_order.pop_front() else {
                break;
            };
            if let Some(list) = events.get_mut(&id)
                && list.front().is_some_and(|e| e.seq == seq)
            {
                list.pop_front();
                *events_kept -= 1;
                if list.is_empty() {
                    events.remove(&id);
                }
            }
        }
        // Entries of events a per-execution limit dropped: compacted away once they are many.
        if event_order.len() > 2 * *events_kept + 1024 {
            event_order.retain(|(id, seq)| {
                events
                    .get(id)
                    .and_then(|l| l.front())
                    .is_some_and(|first| *seq >= first.seq)
            });
        }
    }
}

#[async_trait]
impl ExecutionStore for MemoryStore {
    async fn conversation(&self, id: &str) -> Result<Option<Conversation>, StoreError> {
        Ok(self
            .lock()?
            .conversations
            .get(id)
            .map(|c| Conversation::clone(c)))
    }

    async fn execution(&self, id: &str) -> Result<Option<Execution>, StoreError> {
        Ok(self.lock()?.executions.get(id).map(|e| Execution::clone(e)))
    }

    async fn commit(&self, commit: TurnCommit) -> Result<(), StoreError> {
        let mut inner = self.lock()?;
        // Check everything first: a failed commit changes nothing.
        for c in &commit.conversations {
            let stored = inner.conversations.get(&c.id).map_or(0, |s| s.version);
            if stored != c.version {
                return Err(StoreError::Conflict(format!(
                    "conversation {} is at version {stored}, not {}",
                    c.id, c.version
                )));
            }
        }
        for e in &commit.executions {
            let stored = inner.executions.get(&e.id).map_or(0, |s| s.version);
            if stored != e.version {
                return Err(StoreError::Conflict(format!(
                    "execution {} is at version {stored}, not {}",
                    e.id, e.version
                )));
            }
        }
        for (conv, id, _) in &commit.message_ids {
            if inner
                .messages
                .get(conv)
                .is_some_and(|ids| ids.contains_key(id))
            {
                return Err(StoreError::Conflict(format!(
                    "message {id} was already processed"
                )));
            }
        }
        for mut c in commit.conversations {
            c.version += 1;
            inner.conversations.insert(c.id.clone(), Box::new(c));
        }
        for mut e in commit.executions {
            e.version += 1;
            if let Some(old) = inner.timer_of.remove(&e.id) {
                inner.timers.remove(&(old, e.id.clone()));
            }
            if let Some(t) = &e.timer
                && e.status == Status::Waiting
            {
                inner.timers.insert((t.due_at, e.id.clone()));
                inner.timer_of.insert(e.id.clone(), t.due_at);
            }
            if let Some(old) = inner.effect_of.remove(&e.id) {
                inner.effects.remove(&(old, e.id.clone()));
            }
            if let Some(due) = effect_due(&e) {
                inner.effects.insert((due, e.id.clone()));
                inner.effect_of.insert(e.id.clone(), due);
            }
            let created = match inner.order_key.get(&e.id) {
                Some(&(started, _)) if started == e.started_at => None,
                Some(&(started, n)) => {
                    inner.order.remove(&(started, n, e.id.clone()));
                    Some(n)
                }
                None => {
                    inner.created += 1;
                    Some(inner.created)
                }
            };
            if let Some(n) = created {
                inner.order.insert((e.started_at, n, e.id.clone()));
                inner.order_key.insert(e.id.clone(), (e.started_at, n));
            }
            inner.executions.insert(e.id.clone(), Box::new(e));
        }
        for ev in commit.events {
            self.log_event(&mut inner, ev);
        }
        for (conv, id, at) in commit.message_ids {
            inner.messages.entry(conv).or_default().insert(id, at);
        }
        if let Some((key, value, at)) = commit.idempotency {
            inner.idempotency.insert(key, (value, at));
        }
        let mut settled_now = false;
        for r in commit.outbox {
            if let Some(w) = r.whatsapp_id() {
                inner.by_whatsapp_id.insert(w.to_owned(), r.id.clone());
            }
            if !inner.outbox.contains_key(&r.id) {
                inner
                    .outbox_of
                    .entry(r.execution_id.clone())
                    .or_default()
                    .push_back(r.id.clone());
            }
            if matches!(
                r.state,
                OutboxState::Sent { .. } | OutboxState::Failed { .. }
            ) {
                inner.settlings += 1;
                let n = inner.settlings;
                inner.settled.push_back((r.id.clone(), n));
                inner.settled_as.insert(r.id.clone(), n);
                settled_now = true;
            } else {
                inner.settled_as.remove(&r.id);
            }
            inner.outbox.insert(r.id.clone(), Box::new(r));
        }
        if settled_now {
            self.drop_settled(&mut inner);
        }
        for seq in commit.consumed {
            if let Some(q) = inner.inbox.remove(&seq)
                && let Some(set) = inner.inbox_of.get_mut(&q.conversation_id)
            {
                set.remove(&seq);
                if set.is_empty() {
                    inner.inbox_of.remove(&q.conversation_id);
                }
            }
        }
        inner.commits += 1;
        if inner.commits % 4096 == 0 {
            // Forget message ids older than the retention window.
            let newest = inner
                .messages
                .values()
                .flat_map(|ids| ids.values().copied())
                .max()
                .unwrap_or_default();
            let cutoff = newest.millis() - MESSAGE_ID_RETENTION_MS;
            inner.messages.retain(|_, ids| {
                ids.retain(|_, at| at.millis() >= cutoff);
                !ids.is_empty()
            });
        }
        Ok(())
    }

    async fn seen_message(
        &self,
        conversation_id: &str,
        message_id: &str,
    ) -> Result<bool, StoreError> {
        Ok(self
            .lock()?
            .messages
            .get(conversation_id)
            .is_some_and(|ids| ids.contains_key(message_id)))
    }

    async fn idempotent_result(
        &self,
        key: &str,
        since: Timestamp,
    ) -> Result<Option<Value>, StoreError> {
        Ok(self
            .lock()?
            .idempotency
            .get(key)
            .filter(|(_, at)| *at >= since)
            .map(|(v, _)| v.clone()))
    }

    async fn due_timers(&self, now: Timestamp, limit: usize) -> Result<Vec<DueTimer>, StoreError> {
        let inner = self.lock()?;
        Ok(inner
            .timers
            .iter()
            .take_while(|(due, _)| *due <= now)
            .take(limit)
            .map(|(due, id)| DueTimer {
                execution_id: id.clone(),
                due_at: *due,
            })
            .collect())
    }

    async fn events(
        &self,
        execution_id: &str,
        after: u64,
        limit: usize,
        event_type: Option<EventType>,
    ) -> Result<Vec<Event>, StoreError> {
        let inner = self.lock()?;
        Ok(inner
            .events
            .get(execution_id)
            .map(|list| {
                // Sequence numbers only grow: skip to the first one after `after`.
                let from = list.partition_point(|e| e.seq <= after);
                list.range(from..)
                    .filter(|e| event_type.is_none_or(|t| t == e.event_type))
                    .take(limit)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn executions(&self, filter: &ExecutionFilter) -> Result<Vec<Execution>, StoreError> {
        let inner = self.lock()?;
        let limit = filter.limit.clamp(1, 100);
        let mut out = Vec::new();
        let page: Box<dyn Iterator<Item = &(Timestamp, u64, String)>> =
            match (&filter.after, &filter.before) {
                (None, None) => Box::new(inner.order.range(..).rev()),
                (Some(after), _) => match inner.order_key.get(after) {
                    // Strictly older than the cursor.
                    Some(&(started, n)) => {
                        Box::new(inner.order.range(..(started, n, after.clone())).rev())
                    }
                    // An unknown cursor pages past nothing: an empty page.
                    None => return Ok(out),
                },
                (None, Some(before)) => {
                    match inner.order_key.get(before) {
                        // Strictly newer than the cursor, nearest first; reversed below.
                        Some(&(started, n)) => {
                            let from = (started, n, before.clone());
                            Box::new(inner.order.range((
                                std::ops::Bound::Excluded(from),
                                std::ops::Bound::Unbounded,
                            )))
                        }
                        None => return Ok(out),
                    }
                }
            };
        for (_, _, id) in page {
            let Some(e) = inner.executions.get(id) else {
                continue;
            };
            if matches_filter(e, filter) {
                out.push(Execution::clone(e));
                if out.len() >= limit {
                    break;
                }
            }
        }
        if filter.after.is_none() && filter.before.is_some() {
            out.reverse();
        }
        Ok(out)
    }

    async fn enqueue(&self, items: Vec<NewInbound>) -> Result<Vec<Enqueued>, StoreError> {
        let mut inner = self.lock()?;
        let mut out = Vec::with_capacity(items.len());
        for n in items {
            let queued = inner.inbox_of.get(&n.conversation_id).is_some_and(|seqs| {
                seqs.iter()
                    .any(|s| inner.inbox.get(s).is_some_and(|q| q.key == n.key))
            });
            let processed = matches!(n.item, InboundItem::Message(_))
                && inner
                    .messages
                    .get(&n.conversation_id)
                    .is_some_and(|ids| ids.contains_key(&n.key));
            if queued || processed {
                out.push(Enqueued::Duplicate);
                continue;
            }
            inner.inbox_seq += 1;
            let seq = inner.inbox_seq;
            inner
                .inbox_of
                .entry(n.conversation_id.clone())
                .or_default()
                .insert(seq);
            inner.inbox.insert(
                seq,
                QueuedInbound {
                    seq,
                    conversation_id: n.conversation_id,
                    key: n.key,
                    item: n.item,
                    received_at: n.received_at,
                    due_at: n.due_at,
                },
            );
            out.push(Enqueued::Queued(seq));
        }
        Ok(out)
    }

    async fn queued(&self, conversation_id: &str) -> Result<Vec<QueuedInbound>, StoreError> {
        let inner = self.lock()?;
        Ok(inner
            .inbox_of
            .get(conversation_id)
            .into_iter()
            .flatten()
            .filter_map(|s| inner.inbox.get(s).cloned())
            .collect())
    }

    async fn due_work(&self, now: Timestamp, limit: usize) -> Result<Vec<DueWork>, StoreError> {
        let inner = self.lock()?;
        let mut due: HashMap<String, Timestamp> = HashMap::default();
        let mut add = |conv: &str, at: Timestamp| {
            let slot = due.entry(conv.to_owned()).or_insert(at);
            if at < *slot {
                *slot = at;
            }
        };
        for (conv, seqs) in &inner.inbox_of {
            let items: Vec<&QueuedInbound> =
                seqs.iter().filter_map(|s| inner.inbox.get(s)).collect();
            if let Some(first) = items
                .iter()
                .filter(|q| matches!(q.item, InboundItem::Status(_)))
                .map(|q| q.received_at)
                .min()
            {
                add(conv, first);
            }
            let blocked = inner.effect_of.keys().any(|id| {
                inner
                    .executions
                    .get(id)
                    .is_some_and(|e| e.conversation_id == *conv)
            });
            let messages = items
                .iter()
                .filter(|q| matches!(q.item, InboundItem::Message(_)));
            if !blocked
                && let Some(latest) = messages.clone().map(|q| q.due_at).max()
                && latest <= now
                && let Some(first) = messages.map(|q| q.received_at).min()
            {
                add(conv, first);
            }
        }
        for (at, id) in inner.effects.iter().take_while(|(at, _)| *at <= now) {
            if let Some(e) = inner.executions.get(id) {
                add(&e.conversation_id, *at);
            }
        }
        for (at, id) in inner.timers.iter().take_while(|(at, _)| *at <= now) {
            if let Some(e) = inner.executions.get(id) {
                add(&e.conversation_id, *at);
            }
        }
        let mut out: Vec<DueWork> = due
            .into_iter()
            .filter(|(conv, _)| {
                inner
                    .leases
                    .get(conv)
                    .is_none_or(|(_, expires)| *expires <= now)
            })
            .map(|(conversation_id, due_at)| DueWork {
                conversation_id,
                due_at,
            })
            .collect();
        out.sort_by(|a, b| (a.due_at, &a.conversation_id).cmp(&(b.due_at, &b.conversation_id)));
        out.truncate(limit);
        Ok(out)
    }

    async fn outbox(&self, query: &OutboxQuery) -> Result<Vec<OutboxRecord>, StoreError> {
        let inner = self.lock()?;
        Ok(match query {
            OutboxQuery::Id(id) => inner
                .outbox
                .get(id)
                .map(|r| OutboxRecord::clone(r))
                .into_iter()
                .collect(),
            OutboxQuery::WhatsappId(w) => inner
                .by_whatsapp_id
                .get(w)
                .and_then(|id| inner.outbox.get(id))
                .map(|r| OutboxRecord::clone(r))
                .into_iter()
                .collect(),
            OutboxQuery::Execution(e) => inner
                .outbox_of
                .get(e)
                .into_iter()
                .flatten()
                .filter_map(|id| inner.outbox.get(id).map(|r| OutboxRecord::clone(r)))
                .collect(),
        })
    }

    async fn acquire_lease(
        &self,
        conversation_id: &str,
        owner: &str,
        now: Timestamp,
        ttl_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut inner = self.lock()?;
        let free = inner
            .leases
            .get(conversation_id)
            .is_none_or(|(o, expires)| o == owner || *expires <= now);
        if free {
            inner.leases.insert(
                conversation_id.to_owned(),
                (owner.to_owned(), Timestamp(now.0.saturating_add(ttl_ms))),
            );
        }
        Ok(free)
    }

    async fn release_lease(&self, conversation_id: &str, owner: &str) -> Result<(), StoreError> {
        let mut inner = self.lock()?;
        if inner
            .leases
            .get(conversation_id)
            .is_some_and(|(o, _)| o == owner)
        {
            inner.leases.remove(conversation_id);
        }
        Ok(())
    }

    async fn kv_get(&self, namespace: &str, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .lock()?
            .kv
            .get(namespace)
            .and_then(|n| n.get(key))
            .cloned())
    }

    async fn kv_put(&self, namespace: &str, key: &str, value: &str) -> Result<(), StoreError> {
        kv_check(key, value)?;
        let mut inner = self.lock()?;
        let n = inner.kv.entry(namespace.to_owned()).or_default();
        if n.len() >= KV_MAX_KEYS && !n.contains_key(key) {
            return Err(kv_full());
        }
        n.insert(key.to_owned(), value.to_owned());
        Ok(())
    }

    async fn kv_delete(&self, namespace: &str, key: &str) -> Result<(), StoreError> {
        let mut inner = self.lock()?;
        if let Some(n) = inner.kv.get_mut(namespace) {
            n.remove(key);
            if n.is_empty() {
                inner.kv.remove(namespace);
            }
        }
        Ok(())
    }

    async fn kv_list(
        &self,
        namespace: &str,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let inner = self.lock()?;
        let Some(n) = inner.kv.get(namespace) else {
            return Ok(Vec::new());
        };
        Ok(n.range(prefix.to_owned()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .take(limit)
            .map(|(k, _)| k.clone())
            .collect())
    }
}

/// When an execution's pending effect is due (`pending_effect.due_at`). `None` without one,
/// or when the execution is no longer running.
pub fn effect_due(e: &Execution) -> Option<Timestamp> {
    let p = e.pending_effect.as_ref()?;
    (e.status == Status::Running).then_some(p.due_at)
}

/// `true` when an execution matches a filter (paging aside).
pub fn matches_filter(e: &Execution, f: &ExecutionFilter) -> bool {
    f.flow_id.as_ref().is_none_or(|x| *x == e.flow_id)
        && f.conversation_id
            .as_ref()
            .is_none_or(|x| *x == e.conversation_id)
        && f.status.is_none_or(|s| s == e.status)
        && f.waiting_reason.is_none_or(|w| Some(w) == e.waiting_reason)
        && f.created_after.is_none_or(|t| e.started_at >= t)
        && f.created_before.is_none_or(|t| e.started_at < t)
}
