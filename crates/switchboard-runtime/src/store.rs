//! Execution stores: where conversations, executions, events, timers and idempotency records
//! live. A turn's changes are committed atomically with optimistic versioning, so a turn is
//! acknowledged only once its state is durable (for durable stores), and two processes racing
//! on one conversation cannot both win.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;
use serde_json::Value;

use crate::error::StoreError;
use crate::event::{Event, EventType};
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
}

/// How long inbound message ids are remembered for deduplication.
pub const MESSAGE_ID_RETENTION_MS: i64 = 7 * 24 * 3600 * 1000;

/// An in-memory store: the default, for tests, the CLI and single-process deployments that can
/// lose state on restart. Events can be capped per execution ([`MemoryStore::with_event_limit`]).
#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
    event_limit: Option<usize>,
}

#[derive(Default)]
struct Inner {
    conversations: HashMap<String, Conversation>,
    executions: HashMap<String, Execution>,
    /// Executions in listing order, oldest first: `(started_at, creation number, id)`.
    order: BTreeSet<(Timestamp, u64, String)>,
    /// The listing key of each execution.
    order_key: HashMap<String, (Timestamp, u64)>,
    /// Executions created so far (the creation number of the next one).
    created: u64,
    events: HashMap<String, Vec<Event>>,
    timers: BTreeSet<(Timestamp, String)>,
    timer_of: HashMap<String, Timestamp>,
    messages: HashMap<(String, String), Timestamp>,
    idempotency: HashMap<String, (Value, Timestamp)>,
    commits: u64,
}

impl MemoryStore {
    /// An empty store keeping every event.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// An empty store keeping at most `limit` events per execution (the oldest are dropped).
    pub fn with_event_limit(limit: usize) -> MemoryStore {
        MemoryStore {
            inner: Mutex::default(),
            event_limit: Some(limit),
        }
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Inner>, StoreError> {
        self.inner
            .lock()
            .map_err(|_| StoreError::Backend("memory store lock poisoned".into()))
    }
}

#[async_trait]
impl ExecutionStore for MemoryStore {
    async fn conversation(&self, id: &str) -> Result<Option<Conversation>, StoreError> {
        Ok(self.lock()?.conversations.get(id).cloned())
    }

    async fn execution(&self, id: &str) -> Result<Option<Execution>, StoreError> {
        Ok(self.lock()?.executions.get(id).cloned())
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
            if inner.messages.contains_key(&(conv.clone(), id.clone())) {
                return Err(StoreError::Conflict(format!(
                    "message {id} was already processed"
                )));
            }
        }
        for mut c in commit.conversations {
            c.version += 1;
            inner.conversations.insert(c.id.clone(), c);
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
            inner.executions.insert(e.id.clone(), e);
        }
        for ev in commit.events {
            let list = inner.events.entry(ev.execution_id.clone()).or_default();
            list.push(ev);
            if let Some(limit) = self.event_limit
                && list.len() > limit
            {
                let excess = list.len() - limit;
                list.drain(..excess);
            }
        }
        for (conv, id, at) in commit.message_ids {
            inner.messages.insert((conv, id), at);
        }
        if let Some((key, value, at)) = commit.idempotency {
            inner.idempotency.insert(key, (value, at));
        }
        inner.commits += 1;
        if inner.commits % 4096 == 0 {
            // Forget message ids older than the retention window.
            let newest = inner.messages.values().copied().max().unwrap_or_default();
            let cutoff = newest.millis() - MESSAGE_ID_RETENTION_MS;
            inner.messages.retain(|_, at| at.millis() >= cutoff);
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
            .contains_key(&(conversation_id.to_owned(), message_id.to_owned())))
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
                list.iter()
                    .filter(|e| e.seq > after && event_type.is_none_or(|t| t == e.event_type))
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
                out.push(e.clone());
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
