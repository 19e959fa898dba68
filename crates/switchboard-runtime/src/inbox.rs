//! The per-conversation inbox (runtime-semantics §4.2): one turn at a time per conversation in
//! arrival order, duplicates dropped, bursts debounced into one turn, and different
//! conversations running concurrently.
//!
//! Every conversation has a FIFO lock: a message arriving while a turn runs waits for it, and
//! messages are processed in the order they arrived. With `message_debounce_seconds` = d > 0,
//! messages are collected until d seconds pass without a new one (each restarts the timer); the
//! caller drives time by calling [`Inbox::flush_due`] (a server runs it on a ticker; tests call it
//! after moving a manual clock). Deduplication is durable: the store remembers processed message
//! ids, and the inbox also drops a duplicate that is still waiting in a batch.

use std::sync::{Arc, Mutex};

use rustc_hash::FxHashMap;

use crate::engine::Engine;
use crate::error::EngineError;
use crate::request::{Dispatch, InboundMessage};
use crate::time::Timestamp;

/// What happened to a received message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Received {
    /// Processed now (debounce 0).
    Dispatched(Dispatch),
    /// Held in the conversation's batch until the debounce window passes.
    Queued {
        /// When the batch becomes due (if no other message arrives).
        due_at: Timestamp,
    },
    /// A duplicate of a message already held in the batch.
    Duplicate,
}

#[derive(Default)]
struct Conversation {
    /// Held while a turn of this conversation runs (FIFO: tokio's mutex is fair).
    turn: tokio::sync::Mutex<()>,
    batch: Mutex<Batch>,
}

#[derive(Default)]
struct Batch {
    messages: Vec<InboundMessage>,
    due_at: Option<Timestamp>,
}

/// Serialises inbound traffic per conversation in front of an [`Engine`].
#[derive(Clone)]
pub struct Inbox {
    engine: Engine,
    conversations: Arc<Mutex<FxHashMap<String, Arc<Conversation>>>>,
}

impl std::fmt::Debug for Inbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inbox").finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Inbox {
    /// An inbox in front of `engine`.
    pub fn new(engine: Engine) -> Inbox {
        Inbox {
            engine,
            conversations: Arc::default(),
        }
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    fn conversation(&self, id: &str) -> Arc<Conversation> {
        lock(&self.conversations)
            .entry(id.to_owned())
            .or_default()
            .clone()
    }

    /// Drops idle conversation entries (no batch, no turn running, no one waiting).
    fn tidy(&self, id: &str) {
        let mut map = lock(&self.conversations);
        if let Some(c) = map.get(id)
            && Arc::strong_count(c) == 1
            && lock(&c.batch).messages.is_empty()
        {
            map.remove(id);
        }
    }

    /// Receives one inbound message.
    pub async fn receive(&self, message: InboundMessage) -> Result<Received, EngineError> {
        let Some(phone) = crate::request::normalise_phone(&message.from) else {
            return Err(EngineError::InvalidRequest(format!(
                "`{}` is not a phone number",
                message.from
            )));
        };
        let conv_id = Engine::conversation_id(&message.phone_number_id, &phone);
        let debounce = self.engine.debounce_seconds(&message.phone_number_id)?;
        let conv = self.conversation(&conv_id);
        if debounce > 0.0 {
            let now = self.engine.adapters().clock.now();
            let due_at = now.plus_seconds(debounce);
            let mut batch = lock(&conv.batch);
            if batch.messages.iter().any(|m| m.id == message.id) {
                return Ok(Received::Duplicate);
            }
            batch.messages.push(message);
            batch.due_at = Some(due_at);
            return Ok(Received::Queued { due_at });
        }
        let result = {
            let _turn = conv.turn.lock().await;
            self.engine.handle_inbound(vec![message]).await
        };
        drop(conv);
        self.tidy(&conv_id);
        result.map(Received::Dispatched)
    }

    /// Dispatches every batch whose debounce window has passed. Returns the dispatches made.
    pub async fn flush_due(&self) -> Result<Vec<Dispatch>, EngineError> {
        let now = self.engine.adapters().clock.now();
        self.flush_until(now).await
    }

    /// Dispatches every waiting batch now, ignoring the debounce window (a server shutting
    /// down uses it so that no accepted message is lost). Returns the dispatches made.
    pub async fn flush_all(&self) -> Result<Vec<Dispatch>, EngineError> {
        self.flush_until(Timestamp(i64::MAX)).await
    }

    /// Dispatches every batch due at or before `now`.
    async fn flush_until(&self, now: Timestamp) -> Result<Vec<Dispatch>, EngineError> {
        let due: Vec<(String, Arc<Conversation>)> = lock(&self.conversations)
            .iter()
            .filter(|(_, c)| lock(&c.batch).due_at.is_some_and(|d| d <= now))
            .map(|(k, c)| (k.clone(), c.clone()))
            .collect();
        let mut out = Vec::with_capacity(due.len());
        for (id, conv) in due {
            let result = {
                let _turn = conv.turn.lock().await;
                let messages = {
                    let mut batch = lock(&conv.batch);
                    if batch.due_at.is_none_or(|d| d > now) {
                        continue;
                    }
                    batch.due_at = None;
                    std::mem::take(&mut batch.messages)
                };
                if messages.is_empty() {
                    continue;
                }
                self.engine.handle_inbound(messages).await
            };
            drop(conv);
            self.tidy(&id);
            out.push(result?);
        }
        Ok(out)
    }

    /// Conversations with a batch waiting.
    pub fn pending(&self) -> usize {
        lock(&self.conversations)
            .values()
            .filter(|c| !lock(&c.batch).messages.is_empty())
            .count()
    }
}
