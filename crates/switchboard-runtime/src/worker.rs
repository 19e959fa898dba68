//! The worker: what runs a conversation's work from the store, one conversation at a time, in
//! any number of processes sharing that store.
//!
//! A webhook hands its items to [`Worker::accept`], which writes them to the store's inbox in one
//! transaction (deduplicated by message id) and returns: the webhook can be answered at once,
//! and nothing accepted is lost if the process dies. [`Worker::run`] then finds conversations
//! with due work ([`ExecutionStore::due_work`](crate::store::ExecutionStore::due_work)) and processes each under two locks — a
//! per-conversation mutex in this process and a lease in the store for the others — with a
//! bound on how many conversations run at once. The lease comes with a claim
//! ([`ExecutionStore::claim`](crate::store::ExecutionStore::claim)), which also reads the
//! conversation's queued items, the conversation and its active execution; each step below
//! starts from the latest claim and is followed by a new one, and the claim that finds nothing
//! due lets the lease go. For one conversation it:
//!
//! 0. removes queued messages that were processed already (a redelivery that raced its first
//!    copy's commit);
//! 1. applies queued delivery statuses (they may settle an interrupted send);
//! 2. continues an execution left with a pending effect (a scheduled `delay_seconds` that is
//!    due, or a send a crash interrupted); while that effect is not due, messages wait;
//! 3. runs queued messages as turns, in arrival order: one turn per message, or the whole
//!    batch once the debounce window has passed;
//! 4. fires the active execution's wait timeout when it is due.
//!
//! API operations take the same two locks through [`Worker::with_conversation`], so every entry
//! point of a conversation is serialised, within a process and across processes. The engine
//! commits a turn's state before any message leaves (see the turn's effects), and a conflict
//! between two writers is detected by the store's versions before a send.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustc_hash::{FxHashMap, FxHashSet};
use tokio::sync::{Notify, Semaphore};

use crate::engine::Engine;
use crate::error::EngineError;
use crate::request::{Dispatch, conversation_id, normalise_phone};
use crate::store::{
    Claimed, ConversationWork, DeliveryStatus, Enqueued, InboundItem, NewInbound, QueuedInbound,
};
use crate::time::Timestamp;
use crate::turn::Resumed;

/// How a [`Worker`] runs.
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    /// This process's name on leases: unique among the processes sharing a store.
    pub owner: String,
    /// How long a lease lasts (renewed while a conversation is processed); a dead worker's
    /// conversations are taken over after it expires. Default 30 s.
    pub lease: Duration,
    /// Conversations processed at once. Default 32.
    pub concurrency: usize,
    /// How often the store is asked for due work when nothing wakes the worker. Default 200 ms.
    pub poll: Duration,
    /// Due conversations fetched per look. Default 256.
    pub batch: usize,
    /// Turns run for one conversation before it yields to others. Default 64.
    pub max_turns: usize,
    /// How long an API operation waits for a conversation held elsewhere. Default 5 s.
    pub api_wait: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            owner: default_owner(),
            lease: Duration::from_secs(30),
            concurrency: 32,
            poll: Duration::from_millis(200),
            batch: 256,
            max_turns: 64,
            api_wait: Duration::from_secs(5),
        }
    }
}

/// `worker-<pid>-<random>`: unique per process in practice.
fn default_owner() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    format!("worker-{}-{:08x}", std::process::id(), h.finish() as u32)
}

/// What [`Worker::process`] did with a conversation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Processed {
    /// Another process holds the conversation: nothing was done.
    pub busy: bool,
    /// Delivery statuses applied.
    pub statuses: usize,
    /// Turns run (message batches, resumed effects, timeouts).
    pub turns: usize,
}

struct Inner {
    engine: Engine,
    config: WorkerConfig,
    locks: Mutex<FxHashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    in_flight: Mutex<FxHashSet<String>>,
    /// Business numbers whose messages started nothing (no active trigger), logged once each.
    unrouted: Mutex<FxHashSet<String>>,
    permits: Arc<Semaphore>,
    wake: Notify,
    stopping: AtomicBool,
}

/// Runs conversations' work from the store (see the [module docs](self)). Cheap to clone.
#[derive(Clone)]
pub struct Worker {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("owner", &self.inner.config.owner)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Holds a conversation: the in-process lock and the store lease (released on drop of the
/// owning call, see [`Worker::hold`]).
struct Held {
    _local: tokio::sync::OwnedMutexGuard<()>,
    renewal: tokio::task::JoinHandle<()>,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.renewal.abort();
    }
}

impl Worker {
    /// A worker over `engine` (and its store).
    pub fn new(engine: Engine, config: WorkerConfig) -> Worker {
        let concurrency = config.concurrency.max(1);
        Worker {
            inner: Arc::new(Inner {
                engine,
                config,
                locks: Mutex::default(),
                in_flight: Mutex::default(),
                unrouted: Mutex::default(),
                permits: Arc::new(Semaphore::new(concurrency)),
                wake: Notify::new(),
                stopping: AtomicBool::new(false),
            }),
        }
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// The configuration.
    pub fn config(&self) -> &WorkerConfig {
        &self.inner.config
    }

    /// Accepts inbound items (a webhook's messages and statuses): writes them to the store's
    /// inbox in one transaction — durably, for a durable store — and wakes the worker. Returns,
    /// per item, whether it was queued or is a duplicate of a queued or processed message; an
    /// item that cannot be queued (a sender that is not a phone number) is refused alone
    /// (`invalid_request`). The outer error is the store's: nothing was queued.
    pub async fn accept(
        &self,
        items: Vec<InboundItem>,
    ) -> Result<Vec<Result<Enqueued, EngineError>>, EngineError> {
        let engine = &self.inner.engine;
        let now = engine.adapters().clock.now();
        let mut out: Vec<Result<Enqueued, EngineError>> = Vec::with_capacity(items.len());
        let mut new = Vec::with_capacity(items.len());
        let mut slots = Vec::with_capacity(items.len());
        for item in items {
            let (conv, key, due_at) = match &item {
                InboundItem::Message(m) => {
                    let Some(phone) = normalise_phone(&m.from) else {
                        out.push(Err(EngineError::InvalidRequest(format!(
                            "`{}` is not a phone number",
                            m.from
                        ))));
                        continue;
                    };
                    let debounce = engine.debounce_seconds(&m.phone_number_id)?;
                    (
                        conversation_id(&m.phone_number_id, &phone),
                        m.id.clone(),
                        now.plus_seconds(debounce),
                    )
                }
                InboundItem::Status(s) => (
                    conversation_id(&s.phone_number_id, &s.recipient_id),
                    status_key(s),
                    now,
                ),
            };
            slots.push(out.len());
            out.push(Ok(Enqueued::Duplicate));
            new.push(NewInbound {
                conversation_id: conv,
                key,
                item,
                received_at: now,
                due_at,
            });
        }
        if new.is_empty() {
            return Ok(out);
        }
        let result = engine.store().enqueue(new).await?;
        let queued = result.iter().any(|e| matches!(e, Enqueued::Queued(_)));
        for (slot, r) in slots.into_iter().zip(result) {
            out[slot] = Ok(r);
        }
        if queued {
            self.inner.wake.notify_one();
        }
        Ok(out)
    }

    /// Conversations being processed right now by [`Worker::run`].
    pub fn in_progress(&self) -> usize {
        lock(&self.inner.in_flight).len()
    }

    /// Wakes the worker (work may be due now).
    pub fn wake(&self) {
        self.inner.wake.notify_one();
    }

    /// Finds and processes due work until `shutdown` completes; then stops taking work and
    /// waits for the conversations being processed (each ends at its next commit).
    pub async fn run<F>(&self, shutdown: F)
    where
        F: Future<Output = ()> + Send,
    {
        tokio::pin!(shutdown);
        loop {
            if self.inner.stopping.load(Ordering::SeqCst) {
                break;
            }
            self.dispatch_due().await;
            // A task that made progress wakes the worker (more may be due at once); otherwise
            // the next look is on a notification (an accepted item) or after `poll`.
            tokio::select! {
                () = &mut shutdown => break,
                () = self.inner.wake.notified() => {}
                () = tokio::time::sleep(self.inner.config.poll) => {}
            }
        }
        self.stop().await;
    }

    /// Stops taking work and waits until every conversation being processed is done.
    pub async fn stop(&self) {
        self.inner.stopping.store(true, Ordering::SeqCst);
        let n = u32::try_from(self.inner.config.concurrency.max(1)).unwrap_or(u32::MAX);
        if let Ok(all) = self.inner.permits.acquire_many(n).await {
            all.forget();
            self.inner.permits.add_permits(n as usize);
        }
    }

    /// Starts tasks for due conversations; returns how many were started.
    async fn dispatch_due(&self) -> usize {
        let engine = &self.inner.engine;
        let now = engine.adapters().clock.now();
        let due = match engine.store().due_work(now, self.inner.config.batch).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "looking for due work failed");
                return 0;
            }
        };
        let mut started = 0;
        for d in due {
            if self.inner.stopping.load(Ordering::SeqCst) {
                break;
            }
            if !lock(&self.inner.in_flight).insert(d.conversation_id.clone()) {
                continue;
            }
            let Ok(permit) = self.inner.permits.clone().acquire_owned().await else {
                break;
            };
            started += 1;
            let worker = self.clone();
            tokio::spawn(async move {
                let conv = d.conversation_id;
                let progressed = match worker.process(&conv).await {
                    Ok(p) => p.turns + p.statuses > 0,
                    Err(e) => {
                        tracing::warn!(conversation_id = %conv, code = e.code(), error = %e, "conversation work failed");
                        false
                    }
                };
                lock(&worker.inner.in_flight).remove(&conv);
                drop(permit);
                if progressed {
                    worker.wake();
                }
            });
        }
        started
    }

    /// This process's lock on a conversation.
    async fn local_lock(&self, conversation_id: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let local = {
            let mut locks = lock(&self.inner.locks);
            locks.entry(conversation_id.to_owned()).or_default().clone()
        };
        local.lock_owned().await
    }

    fn lease_ttl_ms(&self) -> i64 {
        i64::try_from(self.inner.config.lease.as_millis()).unwrap_or(i64::MAX)
    }

    /// Renews the store lease every third of its time until the returned task is aborted.
    fn renew_in_background(&self, conversation_id: &str) -> tokio::task::JoinHandle<()> {
        let engine = &self.inner.engine;
        let store = engine.store().clone();
        let clock = engine.adapters().clock.clone();
        let conv = conversation_id.to_owned();
        let owner = self.inner.config.owner.clone();
        let ttl = self.lease_ttl_ms();
        let every = self.inner.config.lease / 3;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let now = clock.now();
                match store.acquire_lease(&conv, &owner, now, ttl).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!(conversation_id = %conv, "lease lost to another worker");
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(conversation_id = %conv, error = %e, "lease renewal failed")
                    }
                }
            }
        })
    }

    /// Takes the conversation: this process's lock, then the store lease (renewed in the
    /// background). `None` when another process holds the lease.
    async fn hold(&self, conversation_id: &str) -> Result<Option<Held>, EngineError> {
        let guard = self.local_lock(conversation_id).await;
        let engine = &self.inner.engine;
        let now = engine.adapters().clock.now();
        if !engine
            .store()
            .acquire_lease(
                conversation_id,
                &self.inner.config.owner,
                now,
                self.lease_ttl_ms(),
            )
            .await?
        {
            return Ok(None);
        }
        Ok(Some(Held {
            _local: guard,
            renewal: self.renew_in_background(conversation_id),
        }))
    }

    async fn release(&self, conversation_id: &str, held: Held) {
        drop(held);
        let store = self.inner.engine.store();
        if let Err(e) = store
            .release_lease(conversation_id, &self.inner.config.owner)
            .await
        {
            tracing::warn!(conversation_id = %conversation_id, error = %e, "lease release failed");
        }
        self.tidy(conversation_id);
    }

    /// Forgets the in-process lock of an idle conversation.
    fn tidy(&self, conversation_id: &str) {
        let mut locks = lock(&self.inner.locks);
        if let Some(l) = locks.get(conversation_id)
            && Arc::strong_count(l) == 1
        {
            locks.remove(conversation_id);
        }
    }

    /// The store's look at a conversation for this worker ([`ExecutionStore::claim`]): the
    /// lease taken or renewed with what the next turn needs, or let go when nothing is due.
    ///
    /// [`ExecutionStore::claim`]: crate::store::ExecutionStore::claim
    async fn claim(&self, conversation_id: &str) -> Result<Claimed, EngineError> {
        let engine = &self.inner.engine;
        let now = engine.adapters().clock.now();
        Ok(engine
            .store()
            .claim(
                conversation_id,
                &self.inner.config.owner,
                now,
                self.lease_ttl_ms(),
            )
            .await?)
    }

    /// Processes one conversation's due work (see the [module docs](self)).
    ///
    /// Cost in store calls: one claim (the lease with the queued items, the conversation and
    /// its active execution), the turn's commits, then one claim per further turn — the last
    /// of which, finding nothing due, lets the lease go.
    pub async fn process(&self, conversation_id: &str) -> Result<Processed, EngineError> {
        let local = self.local_lock(conversation_id).await;
        let work = match self.claim(conversation_id).await {
            Ok(Claimed::Work(work)) => *work,
            Ok(Claimed::Idle) => {
                drop(local);
                self.tidy(conversation_id);
                return Ok(Processed::default());
            }
            Ok(Claimed::Busy) => {
                drop(local);
                self.tidy(conversation_id);
                return Ok(Processed {
                    busy: true,
                    ..Processed::default()
                });
            }
            Err(e) => {
                drop(local);
                self.tidy(conversation_id);
                return Err(e);
            }
        };
        let held = Held {
            _local: local,
            renewal: self.renew_in_background(conversation_id),
        };
        let mut done = Processed::default();
        let result = self.work(conversation_id, work, &mut done).await;
        match result {
            // The last claim found nothing due (and let the lease go) or another owner.
            Ok(true) => {
                drop(held);
                self.tidy(conversation_id);
            }
            Ok(false) | Err(_) => self.release(conversation_id, held).await,
        }
        result.map(|_| done)
    }

    /// Runs turns from claims until nothing is due or `max_turns`; `Ok(true)` when the lease
    /// is no longer this worker's (the last claim let it go).
    async fn work(
        &self,
        conversation_id: &str,
        mut work: ConversationWork,
        done: &mut Processed,
    ) -> Result<bool, EngineError> {
        for _ in 0..self.inner.config.max_turns.max(1) {
            if !self.step(conversation_id, &work, done).await? {
                return Ok(false);
            }
            match self.claim(conversation_id).await? {
                Claimed::Work(next) => work = *next,
                Claimed::Idle | Claimed::Busy => return Ok(true),
            }
        }
        Ok(false)
    }

    /// One piece of a claimed conversation's work; `false` when there was nothing to do (or a
    /// race to leave for later).
    async fn step(
        &self,
        conversation_id: &str,
        work: &ConversationWork,
        done: &mut Processed,
    ) -> Result<bool, EngineError> {
        let engine = &self.inner.engine;
        if !work.processed.is_empty() {
            engine.remove_queued(work.processed.clone()).await?;
            return Ok(true);
        }
        let (statuses, messages): (Vec<_>, Vec<_>) = work
            .queued
            .iter()
            .partition(|q| matches!(q.item, InboundItem::Status(_)));
        if !statuses.is_empty() {
            // One commit for all of them: what the claim read is stale afterwards.
            match engine.apply_claimed_statuses(work, &statuses).await {
                Ok(()) => done.statuses += statuses.len(),
                Err(EngineError::Conflict(_)) => return Ok(false),
                Err(e) => return Err(e),
            }
            return Ok(true);
        }
        match engine.resume_claimed(work).await? {
            Resumed::Continued => {
                done.turns += 1;
                return Ok(true);
            }
            // Messages wait for the pending effect.
            Resumed::NotDue => return Ok(false),
            Resumed::Nothing => {}
        }
        let now = engine.adapters().clock.now();
        if !messages.is_empty() && messages.iter().all(|q| q.due_at <= now) {
            let debounced = messages.iter().any(|q| q.due_at > q.received_at);
            let batch: Vec<QueuedInbound> = if debounced {
                messages.into_iter().cloned().collect()
            } else {
                messages.into_iter().take(1).cloned().collect()
            };
            match engine.handle_claimed(work, &batch).await {
                Ok(Dispatch::Dropped) => {
                    // Recorded in the history, started nothing: said once per number.
                    let number = batch.iter().find_map(|q| match &q.item {
                        InboundItem::Message(m) => Some(m.phone_number_id.clone()),
                        InboundItem::Status(_) => None,
                    });
                    if let Some(number) = number
                        && lock(&self.inner.unrouted).insert(number.clone())
                    {
                        tracing::info!(
                            phone_number_id = %number,
                            "no active inbound trigger on this number: its messages are recorded and start nothing"
                        );
                    }
                }
                Ok(_) => {}
                // Another writer changed the conversation first: its items stay queued and
                // are taken up again on the next look.
                Err(EngineError::Conflict(m)) => {
                    tracing::debug!(conversation_id = %conversation_id, conflict = %m, "turn lost a race; retrying later");
                    return Ok(false);
                }
                // A message that cannot be handled (a sender that is not a number) must not
                // block the ones after it: it is dropped and logged.
                Err(e @ EngineError::InvalidRequest(_)) => {
                    tracing::warn!(conversation_id = %conversation_id, error = %e, "inbound message dropped");
                    engine.drop_queued(&batch).await?;
                }
                Err(e) => return Err(e),
            }
            done.turns += 1;
            return Ok(true);
        }
        match engine.fire_claimed(work).await {
            Ok(true) => {
                done.turns += 1;
                Ok(true)
            }
            Ok(false) | Err(EngineError::Conflict(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Runs `op` holding the conversation (this process's lock and the store lease, waiting up
    /// to [`WorkerConfig::api_wait`] for another process to let it go): how API operations
    /// (start, resume, status, jump) join the conversation's order. `conflict` when the wait is
    /// over. The worker is woken afterwards (messages may have waited).
    pub async fn with_conversation<T, F>(
        &self,
        conversation_id: &str,
        op: F,
    ) -> Result<T, EngineError>
    where
        F: Future<Output = Result<T, EngineError>>,
    {
        let deadline = tokio::time::Instant::now() + self.inner.config.api_wait;
        let held = loop {
            if let Some(h) = self.hold(conversation_id).await? {
                break h;
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(EngineError::Conflict(format!(
                    "conversation {conversation_id} is busy in another process"
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let result = op.await;
        self.release(conversation_id, held).await;
        self.wake();
        result
    }

    /// Processes due work until none is left (for tests and tools that drive time themselves):
    /// returns the turns run.
    pub async fn run_until_idle(&self) -> Result<usize, EngineError> {
        let mut turns = 0;
        loop {
            let now: Timestamp = self.inner.engine.adapters().clock.now();
            let due = self
                .inner
                .engine
                .store()
                .due_work(now, self.inner.config.batch)
                .await?;
            if due.is_empty() {
                return Ok(turns);
            }
            let mut progressed = false;
            for d in due {
                let p = self.process(&d.conversation_id).await?;
                if p.turns + p.statuses > 0 {
                    progressed = true;
                }
                turns += p.turns;
            }
            if !progressed {
                return Ok(turns);
            }
        }
    }
}

/// The inbox key of a delivery status: one per message and status.
fn status_key(s: &DeliveryStatus) -> String {
    format!("{}:{}", s.message_id, s.status)
}
