//! `switchboard-sqlite`: the SQLite [`ExecutionStore`] of the Switchboard runtime, for
//! deployments that keep conversations on one machine. It depends on `switchboard-runtime` (the
//! store trait and the state it stores) and `rusqlite` (bundled SQLite) only; it must not depend
//! on an HTTP library or another adapter crate, and the model, the validator and the runtime
//! must never depend on it.
//!
//! The SQLite execution store: embedded and durable, for single-machine deployments.
//!
//! [`SqliteStore`] keeps conversations and executions as JSON documents next to the columns it
//! queries (versions, status, waiting reason, flow, conversation, start time, the due time of
//! a waiting execution's timer), plus tables for events, processed inbound message ids and
//! idempotency records. A [`TurnCommit`] is one SQLite transaction whose version checks
//! (`UPDATE … WHERE version = ?`, insert-if-absent for new records) roll it back entirely on a
//! conflict. The schema is migrated when a store is opened (`PRAGMA user_version`).
//!
//! rusqlite is synchronous: every call runs on [`tokio::task::spawn_blocking`] with the
//! connection behind a [`std::sync::Mutex`], so it must be awaited inside a Tokio runtime.
//! Commits go through one writer task that batches concurrent commits ([`SqliteStore`]: group
//! commit). A
//! file-backed store has two connections — one writer, one reader — so loads, timer scans and
//! dedupe checks are not held up by a commit waiting on the disk (WAL readers never block the
//! writer and see only committed turns), and a third on its own thread that checkpoints the
//! write-ahead log into the database file, so no commit waits for a checkpoint. Several processes on one machine may open the same
//! file: writes serialize on SQLite's lock (`BEGIN IMMEDIATE`, 5 s busy timeout) and the
//! version checks keep their turns apart. Network file systems are not supported.
//!
//! # Schema (version 3)
//!
//! | table | columns | indexes |
//! |---|---|---|
//! | `conversations` | `id` (key), `version`, `body` (JSON) | |
//! | `executions` | `seq` (creation order), `id` (unique), `version`, `flow_id`, `conversation_id`, `status`, `waiting_reason`, `started_at`, `timer_due_at`, `effect_due_at`, `body` (JSON) | listing by start time, per flow, per conversation, per status and waiting reason; due timers (`timer_due_at, id`, only rows with one); due effects (`effect_due_at, id`, only rows with one) |
//! | `events` | `execution_id`, `seq` (key together), `event_type`, `created_at`, `body` (JSON) | |
//! | `message_ids` | `conversation_id`, `message_id` (key together), `received_at` | `received_at` (pruning) |
//! | `idempotency` | `key`, `result` (JSON), `recorded_at` | `recorded_at` (pruning) |
//! | `inbox` | `seq` (arrival order, key), `conversation_id`, `key` (unique together), `kind` (`message`, `status`), `received_at`, `due_at`, `body` (JSON) | |
//! | `outbox` | `id` (unique; rowid is creation order), `conversation_id`, `execution_id`, `whatsapp_id`, `state`, `body` (JSON) | per execution; per WhatsApp id (rows with one) |
//! | `leases` | `conversation_id` (key), `owner`, `expires_at` | |
//! | `kv` | `namespace`, `key` (key together), `value` — `env.KV` of local functions, one namespace per function | |
//!
//! `version` is a plain column: every versioned write finds its row by primary key, so an
//! index on it would only cost writes. `timer_due_at` is set only while the execution is
//! `waiting` with a timer, which is exactly what [`ExecutionStore::due_timers`] returns;
//! `effect_due_at` only while it is `running` with a pending effect. The inbox holds only what
//! is not processed yet (a turn deletes what it consumed in its own transaction), so scanning it
//! for due work stays cheap. Writes of every kind — turns, inbox items, leases — go through the
//! one writer and share its group commits.
//! Times are milliseconds since the Unix epoch.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::config::DbConfig;
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, TransactionBehavior, params};
use serde_json::Value;
use switchboard_runtime::store::{
    DueTimer, DueWork, Enqueued, ExecutionFilter, ExecutionStore, InboundItem, KV_MAX_KEYS,
    MESSAGE_ID_RETENTION_MS, NewInbound, OutboxQuery, OutboxRecord, OutboxState, QueuedInbound,
    TurnCommit, effect_due, kv_check, kv_full,
};
use switchboard_runtime::{
    Conversation, Event, EventType, Execution, Status, StoreError, Timestamp,
};
use tokio::sync::oneshot;

/// The schema version this build writes (`PRAGMA user_version`).
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// How long idempotency records are kept after the newest one (the API honours a key for
/// 24 hours; records are kept a week).
pub const IDEMPOTENCY_RETENTION_MS: i64 = 7 * 24 * 3600 * 1000;

/// How long a write waits for another process's lock on the file.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Schema migrations: entry `n` brings a database from version `n` to `n + 1`.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE conversations (
    id      TEXT    NOT NULL PRIMARY KEY,
    version INTEGER NOT NULL,
    body    TEXT    NOT NULL
);

CREATE TABLE executions (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT    NOT NULL UNIQUE,
    version         INTEGER NOT NULL,
    flow_id         TEXT    NOT NULL,
    conversation_id TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    waiting_reason  TEXT,
    started_at      INTEGER NOT NULL,
    timer_due_at    INTEGER,
    body            TEXT    NOT NULL
);
CREATE INDEX executions_by_start ON executions (started_at, seq);
CREATE INDEX executions_by_flow ON executions (flow_id, started_at, seq);
CREATE INDEX executions_by_conversation ON executions (conversation_id, started_at, seq);
CREATE INDEX executions_by_status ON executions (status, waiting_reason, started_at, seq);
CREATE INDEX executions_by_waiting_reason ON executions (waiting_reason, started_at, seq)
    WHERE waiting_reason IS NOT NULL;
CREATE INDEX executions_due_timers ON executions (timer_due_at, id)
    WHERE timer_due_at IS NOT NULL;

CREATE TABLE events (
    execution_id TEXT    NOT NULL,
    seq          INTEGER NOT NULL,
    event_type   TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    body         TEXT    NOT NULL,
    PRIMARY KEY (execution_id, seq)
);

CREATE TABLE message_ids (
    conversation_id TEXT    NOT NULL,
    message_id      TEXT    NOT NULL,
    received_at     INTEGER NOT NULL,
    PRIMARY KEY (conversation_id, message_id)
) WITHOUT ROWID;
CREATE INDEX message_ids_by_time ON message_ids (received_at);

CREATE TABLE idempotency (
    key         TEXT    NOT NULL PRIMARY KEY,
    result      TEXT    NOT NULL,
    recorded_at INTEGER NOT NULL
);
CREATE INDEX idempotency_by_time ON idempotency (recorded_at);
"#,
    r#"
ALTER TABLE executions ADD COLUMN effect_due_at INTEGER;
CREATE INDEX executions_due_effects ON executions (effect_due_at, id)
    WHERE effect_due_at IS NOT NULL;

CREATE TABLE inbox (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id TEXT    NOT NULL,
    key             TEXT    NOT NULL,
    kind            TEXT    NOT NULL,
    received_at     INTEGER NOT NULL,
    due_at          INTEGER NOT NULL,
    body            TEXT    NOT NULL,
    UNIQUE (conversation_id, key)
);

CREATE TABLE outbox (
    id              TEXT    NOT NULL UNIQUE,
    conversation_id TEXT    NOT NULL,
    execution_id    TEXT    NOT NULL,
    whatsapp_id     TEXT,
    state           TEXT    NOT NULL,
    body            TEXT    NOT NULL
);
CREATE INDEX outbox_by_execution ON outbox (execution_id);
CREATE INDEX outbox_by_whatsapp_id ON outbox (whatsapp_id) WHERE whatsapp_id IS NOT NULL;

CREATE TABLE leases (
    conversation_id TEXT    NOT NULL PRIMARY KEY,
    owner           TEXT    NOT NULL,
    expires_at      INTEGER NOT NULL
) WITHOUT ROWID;
"#,
    r#"
CREATE TABLE kv (
    namespace TEXT NOT NULL,
    key       TEXT NOT NULL,
    value     TEXT NOT NULL,
    PRIMARY KEY (namespace, key)
) WITHOUT ROWID;
"#,
];

type Shared = Arc<Mutex<Connection>>;

/// What [`SqliteStore::prune`] removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Ended or failed executions.
    pub executions: u64,
    /// Their events.
    pub events: u64,
    /// Their outbox records.
    pub outbox: u64,
}

/// The most commits written in one transaction (group commit).
const MAX_GROUP: usize = 128;

/// About how many bytes of rows the writer writes between two checkpoints of the write-ahead
/// log by the background checkpointer (SQLite's own automatic checkpoint comes every 1,000
/// pages, about 4 MB of log).
const CHECKPOINT_BYTES: usize = 2 << 20;

/// The log size (pages) at which the writer checkpoints by itself, should the background
/// checkpointer fall behind: a bound on the log, not the usual path.
const WRITER_CHECKPOINT_PAGES: i64 = 16_000;

/// Wakes the background checkpointer of a file-backed store.
#[derive(Default)]
struct Checkpoints {
    state: Mutex<CheckpointState>,
    wake: Condvar,
}

#[derive(Default)]
struct CheckpointState {
    /// Bytes written since the last checkpoint was requested.
    written: usize,
    /// A checkpoint is due.
    due: bool,
    /// The store is gone: the checkpointer stops.
    closed: bool,
}

impl Checkpoints {
    /// Counts what a group commit wrote; asks for a checkpoint every [`CHECKPOINT_BYTES`].
    fn wrote(&self, bytes: usize) {
        let mut s = lock(&self.state);
        s.written += bytes;
        if s.written >= CHECKPOINT_BYTES && !s.due {
            s.written = 0;
            s.due = true;
            self.wake.notify_one();
        }
    }

    fn close(&self) {
        lock(&self.state).closed = true;
        self.wake.notify_one();
    }
}

/// The background checkpointer: copies the write-ahead log into the database file on its own
/// connection, so a commit never waits for a checkpoint (its writes and two syncs) as it does
/// when SQLite checkpoints automatically inside the commit that fills the log. Passive: it
/// never blocks the writer or readers. Durability does not depend on it (a commit is durable
/// once its log frames are synced).
fn checkpointer(conn: &Connection, checkpoints: &Checkpoints) {
    loop {
        {
            let mut s = lock(&checkpoints.state);
            while !s.due && !s.closed {
                s = checkpoints
                    .wake
                    .wait(s)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            if s.closed {
                return;
            }
            s.due = false;
        }
        // A busy or failed checkpoint is retried at the next request; the writer's own
        // automatic checkpoint bounds the log meanwhile.
        let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
    }
}

/// A commit waiting for the writer, and where its own result goes.
struct Job {
    write: Write,
    done: oneshot::Sender<Result<Written, StoreError>>,
}

/// What a job writes.
enum Write {
    /// A turn.
    Commit(Encoded),
    /// Inbox items (a message is checked against processed message ids).
    Enqueue(Vec<InboxRow>),
    /// Take or renew a lease.
    Lease {
        conversation_id: String,
        owner: String,
        now: i64,
        until: i64,
    },
    /// Give a lease up.
    Release {
        conversation_id: String,
        owner: String,
    },
    /// Store a key-value pair (limits of key and value already checked).
    KvPut {
        namespace: String,
        key: String,
        value: String,
    },
    /// Remove a key-value pair.
    KvDelete { namespace: String, key: String },
}

impl Write {
    /// About how many bytes of rows it writes.
    fn size(&self) -> usize {
        match self {
            Write::Commit(c) => {
                c.conversations.iter().map(|r| r.body.len()).sum::<usize>()
                    + c.executions.iter().map(|r| r.body.len()).sum::<usize>()
                    + c.events.iter().map(|r| r.body.len()).sum::<usize>()
                    + c.outbox.iter().map(|r| r.body.len()).sum::<usize>()
                    + 64 * (c.message_ids.len() + c.consumed.len() + 1)
            }
            Write::Enqueue(rows) => rows.iter().map(|r| r.body.len() + 64).sum(),
            Write::KvPut { value, .. } => value.len() + 64,
            _ => 64,
        }
    }
}

/// What a job wrote.
enum Written {
    Done,
    Enqueued(Vec<Enqueued>),
    Lease(bool),
}

/// An inbox item ready to write.
struct InboxRow {
    conversation_id: String,
    key: String,
    kind: &'static str,
    received_at: i64,
    due_at: i64,
    body: String,
}

/// Commits waiting for the writer.
#[derive(Default)]
struct Queue {
    jobs: Vec<Job>,
    /// A blocking task is writing queued commits (at most one at a time).
    writing: bool,
}

/// An [`ExecutionStore`] in an SQLite database: embedded and durable.
///
/// # Durability
///
/// The database runs in WAL mode with `synchronous = FULL`: the write-ahead log is synced to
/// disk at every commit, so once [`ExecutionStore::commit`] (or [`ExecutionStore::enqueue`])
/// returns, the write survives a crash of the process *and* of the machine (power loss). A
/// webhook is answered only after its items are enqueued, and a turn's messages leave only
/// after the commit that records them. With
/// `synchronous = NORMAL` (WAL synced only at checkpoints) a power loss could undo turns
/// already acknowledged: a redelivered message would no longer be recognised as a duplicate
/// and the contact would receive the same messages again, or a wait would restart. FULL costs
/// an `fsync` per transaction; group commit (below) shares it between concurrent turns.
///
/// # Group commit
///
/// Commits queue for a single writer task. When it takes the queue it writes every waiting
/// commit (up to 128) in one transaction — each inside its own savepoint, so a commit that
/// conflicts is rolled back alone and every caller gets its own success or
/// [`StoreError::Conflict`] — and answers them all only after that transaction is on disk.
/// A lone commit is written on its own. Measured on the development machine (release build,
/// a turn = conversation + execution + 5 events + 1 message id): one conversation at a time
/// ~800–1,100 turns/s (bound by `fsync`); 32 conversations at once ~1,400 turns/s with a
/// transaction per commit, ~2,500–6,000 turns/s with group commit. Served
/// (`cargo xtask bench serve`), about 7,000 webhooks/s are acknowledged durably with 200
/// clients writing at once. Those figures depend on the disk's sync rate: measured later on
/// the same (shared) machine with the runtime bench (`throughput:sqlite:1000:20`, ~3 commits
/// a turn) while `fdatasync` ran at 227–330/s, 623 turns/s one at a time and 1,189–1,252
/// turns/s at 32 at once (351 and 751–851 before checkpoints moved off the commit path;
/// 1,360 and 2,274–2,285 with the sync switched off). `examples/wal_commit_rate.rs` measures
/// a machine's syncs.
pub struct SqliteStore {
    writer: Shared,
    reader: Shared,
    queue: Arc<Mutex<Queue>>,
    path: Option<PathBuf>,
    /// The background checkpointer of a file-backed store.
    checkpoints: Option<(Arc<Checkpoints>, std::thread::JoinHandle<()>)>,
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        if let Some((checkpoints, thread)) = self.checkpoints.take() {
            checkpoints.close();
            let _ = thread.join();
        }
    }
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and migrates its schema. This blocks
    /// on file I/O: call it at startup or inside `spawn_blocking`.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the file cannot be opened, is not an SQLite database,
    /// cannot use WAL mode, or has a schema newer than this build.
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteStore, StoreError> {
        let path = path.as_ref();
        let mut writer = Connection::open(path).map_err(|e| open_error(path, &e))?;
        configure(&writer)?;
        let mode: String = writer
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
            .map_err(backend)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Backend(format!(
                "{}: cannot use WAL mode (journal mode is {mode})",
                path.display()
            )));
        }
        writer
            .pragma_update(None, "synchronous", "FULL")
            .map_err(backend)?;
        migrate(&mut writer)?;
        let reader = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| open_error(path, &e))?;
        configure(&reader)?;
        // Checkpoints happen on their own connection (see `checkpointer`); the writer keeps
        // SQLite's automatic checkpoint only as a bound should that one fall behind.
        writer
            .pragma_update(None, "wal_autocheckpoint", WRITER_CHECKPOINT_PAGES)
            .map_err(backend)?;
        let ckpt = Connection::open(path).map_err(|e| open_error(path, &e))?;
        configure(&ckpt)?;
        ckpt.pragma_update(None, "synchronous", "FULL")
            .map_err(backend)?;
        ckpt.pragma_update(None, "wal_autocheckpoint", 0)
            .map_err(backend)?;
        let checkpoints = Arc::new(Checkpoints::default());
        let thread = {
            let checkpoints = checkpoints.clone();
            std::thread::Builder::new()
                .name("sqlite-checkpoint".into())
                .spawn(move || checkpointer(&ckpt, &checkpoints))
                .map_err(|e| StoreError::Backend(format!("cannot start the checkpointer: {e}")))?
        };
        Ok(SqliteStore {
            writer: Arc::new(Mutex::new(writer)),
            reader: Arc::new(Mutex::new(reader)),
            queue: Arc::default(),
            path: Some(path.to_owned()),
            checkpoints: Some((checkpoints, thread)),
        })
    }

    /// A private in-memory database (one connection), gone when the store is dropped: for
    /// tests and tools.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when SQLite cannot allocate the database.
    pub fn in_memory() -> Result<SqliteStore, StoreError> {
        let mut conn = Connection::open_in_memory().map_err(backend)?;
        configure(&conn)?;
        migrate(&mut conn)?;
        let conn = Arc::new(Mutex::new(conn));
        Ok(SqliteStore {
            writer: conn.clone(),
            reader: conn,
            queue: Arc::default(),
            path: None,
            checkpoints: None,
        })
    }

    /// The database file (`None` in memory).
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Forgets inbound message ids received before `before` (commits already forget those
    /// older than [`MESSAGE_ID_RETENTION_MS`] before the newest one). Returns how many were
    /// removed.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the database fails.
    pub async fn prune_message_ids(&self, before: Timestamp) -> Result<usize, StoreError> {
        run(&self.writer, move |conn| {
            conn.execute(
                "DELETE FROM message_ids WHERE received_at < ?1",
                params![before.millis()],
            )
            .map_err(backend)
        })
        .await
    }

    /// Queues a write for the writer task (group commit) and waits for its own result.
    async fn submit(&self, write: Write) -> Result<Written, StoreError> {
        let (done, result) = oneshot::channel();
        let start_writer = {
            let mut q = lock(&self.queue);
            q.jobs.push(Job { write, done });
            !std::mem::replace(&mut q.writing, true)
        };
        if start_writer {
            let (queue, writer) = (self.queue.clone(), self.writer.clone());
            let checkpoints = self.checkpoints.as_ref().map(|(c, _)| c.clone());
            // Detached: it drains the queue, including writes queued while it writes.
            drop(tokio::task::spawn_blocking(move || {
                write_queued(&queue, &writer, checkpoints.as_deref());
            }));
        }
        result.await.map_err(|_| {
            StoreError::Backend("the sqlite writer stopped before answering a write".into())
        })?
    }

    /// Removes executions that ended or failed before `before`, with their events and outbox
    /// records, `batch` executions per transaction, so live conversations never wait long on
    /// the write lock. Returns what was removed.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the database fails (batches already done stay done).
    pub async fn prune(&self, before: Timestamp, batch: usize) -> Result<Pruned, StoreError> {
        let batch = i64::try_from(batch.max(1)).unwrap_or(500);
        let mut total = Pruned::default();
        loop {
            let done = run(&self.writer, move |conn| {
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(backend)?;
                let ids: Vec<String> = {
                    let mut s = tx
                        .prepare_cached(
                            "SELECT id FROM executions
                             WHERE status IN ('ended', 'failed')
                               AND json_extract(body, '$.ended_at') < ?1
                             ORDER BY seq LIMIT ?2",
                        )
                        .map_err(backend)?;
                    let rows = s
                        .query_map(params![before.millis(), batch], |r| r.get(0))
                        .map_err(backend)?;
                    rows.collect::<Result<_, _>>().map_err(backend)?
                };
                let mut p = Pruned::default();
                for id in &ids {
                    p.events += tx
                        .prepare_cached("DELETE FROM events WHERE execution_id = ?1")
                        .and_then(|mut s| s.execute([id]))
                        .map_err(backend)? as u64;
                    p.outbox += tx
                        .prepare_cached("DELETE FROM outbox WHERE execution_id = ?1")
                        .and_then(|mut s| s.execute([id]))
                        .map_err(backend)? as u64;
                    p.executions += tx
                        .prepare_cached("DELETE FROM executions WHERE id = ?1")
                        .and_then(|mut s| s.execute([id]))
                        .map_err(backend)? as u64;
                }
                tx.commit().map_err(backend)?;
                Ok(p)
            })
            .await?;
            total.executions += done.executions;
            total.events += done.events;
            total.outbox += done.outbox;
            if (done.executions as i64) < batch {
                return Ok(total);
            }
        }
    }

    /// The schema version of the open database.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the database fails.
    pub async fn schema_version(&self) -> Result<u32, StoreError> {
        run(&self.reader, |conn| {
            conn.pragma_query_value(None, "user_version", |r| r.get::<_, u32>(0))
                .map_err(backend)
        })
        .await
    }
}

fn configure(conn: &Connection) -> Result<(), StoreError> {
    conn.busy_timeout(BUSY_TIMEOUT).map_err(backend)?;
    // Plans that do not depend on bound values. Without this, SQLite re-prepares (parses
    // again) a cached statement whenever the value bound to its `LIMIT ?` changes, which the
    // event reads of every turn did: ~4% of a turn's instructions.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)
        .map_err(backend)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(())
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(backend)?;
    let current: u32 = tx
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(backend)?;
    if current > SCHEMA_VERSION {
        return Err(StoreError::Backend(format!(
            "the database schema is at version {current}, newer than this build's {SCHEMA_VERSION}"
        )));
    }
    for (n, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        tx.execute_batch(sql)
            .map_err(|e| StoreError::Backend(format!("migration to schema {}: {e}", n + 1)))?;
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)
        .map_err(backend)?;
    tx.commit().map_err(backend)
}

fn open_error(path: &Path, e: &rusqlite::Error) -> StoreError {
    StoreError::Backend(format!("cannot open {}: {e}", path.display()))
}

fn backend(e: rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
            StoreError::Backend(format!("database is locked by another writer: {e}"))
        }
        _ => StoreError::Backend(format!("sqlite: {e}")),
    }
}

fn int(v: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::Backend(format!("{what} {v} is too large to store")))
}

fn encode<T: serde::Serialize>(v: &T, what: &str) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Backend(format!("cannot encode {what}: {e}")))
}

fn decode<T: serde::de::DeserializeOwned>(text: &str, what: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Decode(format!("{what}: {e}")))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs `f` on a connection on the blocking pool.
async fn run<T, F>(conn: &Shared, f: F) -> Result<T, StoreError>
where
    T: Send + 'static,
    F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
{
    let conn = conn.clone();
    tokio::task::spawn_blocking(move || {
        // A panic while the lock was held cannot leave a transaction open (rusqlite rolls back
        // on drop), but be sure before reusing the connection.
        let mut guard = lock(&conn);
        if !guard.is_autocommit() {
            guard.execute_batch("ROLLBACK").map_err(backend)?;
        }
        f(&mut guard)
    })
    .await
    .map_err(|e| StoreError::Backend(format!("sqlite task failed: {e}")))?
}

/// A conversation ready to write.
struct ConversationRow {
    id: String,
    expected: i64,
    body: String,
}

/// An execution ready to write.
struct ExecutionRow {
    id: String,
    expected: i64,
    flow_id: String,
    conversation_id: String,
    status: &'static str,
    waiting_reason: Option<&'static str>,
    started_at: i64,
    timer_due_at: Option<i64>,
    effect_due_at: Option<i64>,
    body: String,
}

struct EventRow {
    execution_id: String,
    seq: i64,
    event_type: &'static str,
    created_at: i64,
    body: String,
}

/// A [`TurnCommit`] encoded outside the lock.
struct Encoded {
    conversations: Vec<ConversationRow>,
    executions: Vec<ExecutionRow>,
    events: Vec<EventRow>,
    message_ids: Vec<(String, String, i64)>,
    idempotency: Option<(String, String, i64)>,
    outbox: Vec<OutboxRow>,
    consumed: Vec<i64>,
}

/// An outbox record ready to write.
struct OutboxRow {
    id: String,
    conversation_id: String,
    execution_id: String,
    whatsapp_id: Option<String>,
    state: &'static str,
    body: String,
}

fn encode_commit(commit: TurnCommit) -> Result<Encoded, StoreError> {
    let mut conversations = Vec::with_capacity(commit.conversations.len());
    for mut c in commit.conversations {
        let expected = int(c.version, "conversation version")?;
        c.version += 1;
        conversations.push(ConversationRow {
            body: encode(&c, "conversation")?,
            id: c.id,
            expected,
        });
    }
    let mut executions = Vec::with_capacity(commit.executions.len());
    for mut e in commit.executions {
        let expected = int(e.version, "execution version")?;
        e.version += 1;
        let timer_due_at = match (&e.timer, e.status) {
            (Some(t), Status::Waiting) => Some(t.due_at.millis()),
            _ => None,
        };
        let effect_due_at = effect_due(&e).map(Timestamp::millis);
        executions.push(ExecutionRow {
            effect_due_at,
            body: encode(&e, "execution")?,
            status: e.status.as_str(),
            waiting_reason: e.waiting_reason.map(|w| w.as_str()),
            started_at: e.started_at.millis(),
            timer_due_at,
            id: e.id,
            flow_id: e.flow_id,
            conversation_id: e.conversation_id,
            expected,
        });
    }
    let mut events = Vec::with_capacity(commit.events.len());
    for ev in commit.events {
        events.push(EventRow {
            body: encode(&ev, "event")?,
            seq: int(ev.seq, "event seq")?,
            event_type: ev.event_type.as_str(),
            created_at: ev.created_at.millis(),
            execution_id: ev.execution_id,
        });
    }
    let mut seen = HashSet::new();
    let message_ids = commit
        .message_ids
        .into_iter()
        .filter(|(c, m, _)| seen.insert((c.clone(), m.clone())))
        .map(|(c, m, at)| (c, m, at.millis()))
        .collect();
    let idempotency = match commit.idempotency {
        Some((key, value, at)) => Some((key, encode(&value, "idempotency result")?, at.millis())),
        None => None,
    };
    let mut outbox = Vec::with_capacity(commit.outbox.len());
    for r in commit.outbox {
        outbox.push(OutboxRow {
            body: encode(&r, "outbox record")?,
            whatsapp_id: r.whatsapp_id().map(str::to_owned),
            state: match r.state {
                OutboxState::Scheduled => "scheduled",
                OutboxState::Sending { .. } => "sending",
                OutboxState::Sent { .. } => "sent",
                OutboxState::Failed { .. } => "failed",
            },
            id: r.id,
            conversation_id: r.conversation_id,
            execution_id: r.execution_id,
        });
    }
    let consumed = commit
        .consumed
        .into_iter()
        .map(|s| int(s, "inbox seq"))
        .collect::<Result<_, _>>()?;
    Ok(Encoded {
        conversations,
        executions,
        events,
        message_ids,
        idempotency,
        outbox,
        consumed,
    })
}

fn stored_version(tx: &Connection, table: &str, id: &str) -> Result<Option<i64>, StoreError> {
    tx.prepare_cached(&format!("SELECT version FROM {table} WHERE id = ?1"))
        .and_then(|mut s| s.query_row([id], |r| r.get(0)).optional())
        .map_err(backend)
}

fn version_conflict(
    tx: &Connection,
    table: &str,
    what: &str,
    id: &str,
    expected: i64,
) -> StoreError {
    match stored_version(tx, table, id) {
        Ok(Some(v)) => {
            StoreError::Conflict(format!("{what} {id} is at version {v}, not {expected}"))
        }
        Ok(None) => StoreError::Conflict(format!("{what} {id} is not stored (version {expected})")),
        Err(e) => e,
    }
}

/// Writes a commit's rows inside the caller's transaction (or savepoint); on an error the
/// caller rolls back.
fn apply(tx: &Connection, c: &Encoded) -> Result<(), StoreError> {
    for row in &c.conversations {
        let changed = if row.expected == 0 {
            tx.prepare_cached(
                "INSERT INTO conversations (id, version, body) VALUES (?1, 1, ?2)
                 ON CONFLICT (id) DO NOTHING",
            )
            .and_then(|mut s| s.execute(params![row.id, row.body]))
        } else {
            tx.prepare_cached(
                "UPDATE conversations SET version = version + 1, body = ?2
                 WHERE id = ?1 AND version = ?3",
            )
            .and_then(|mut s| s.execute(params![row.id, row.body, row.expected]))
        }
        .map_err(backend)?;
        if changed == 0 {
            return Err(version_conflict(
                tx,
                "conversations",
                "conversation",
                &row.id,
                row.expected,
            ));
        }
    }
    for row in &c.executions {
        // One parameter list for the insert and both updates (the insert does not use ?9, the
        // version it was loaded with).
        let args = params![
            row.id,
            row.flow_id,
            row.conversation_id,
            row.status,
            row.waiting_reason,
            row.started_at,
            row.timer_due_at,
            row.body,
            row.expected,
            row.effect_due_at
        ];
        let changed = if row.expected == 0 {
            tx.prepare_cached(
                "INSERT INTO executions (id, version, flow_id, conversation_id, status,
                     waiting_reason, started_at, timer_due_at, body, effect_due_at)
                 VALUES (?1, 1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?10)
                 ON CONFLICT (id) DO NOTHING",
            )
            .and_then(|mut s| s.execute(args))
        } else {
            // The flow, the conversation and the start time of an execution do not change once
            // it is stored, so the usual update leaves them (and the three indexes on them)
            // alone: SQLite rewrites an index only when its columns are assigned. Should one
            // differ after all, the full update below writes it.
            let changed = tx
                .prepare_cached(
                    "UPDATE executions SET version = version + 1, status = ?4,
                         waiting_reason = ?5, timer_due_at = ?7, body = ?8, effect_due_at = ?10
                     WHERE id = ?1 AND version = ?9
                       AND flow_id = ?2 AND conversation_id = ?3 AND started_at = ?6",
                )
                .and_then(|mut s| s.execute(args));
            match changed {
                Ok(0) => tx
                    .prepare_cached(
                        "UPDATE executions SET version = version + 1, flow_id = ?2,
                             conversation_id = ?3, status = ?4, waiting_reason = ?5,
                             started_at = ?6, timer_due_at = ?7, body = ?8, effect_due_at = ?10
                         WHERE id = ?1 AND version = ?9",
                    )
                    .and_then(|mut s| s.execute(args)),
                other => other,
            }
        }
        .map_err(backend)?;
        if changed == 0 {
            return Err(version_conflict(
                tx,
                "executions",
                "execution",
                &row.id,
                row.expected,
            ));
        }
    }
    if !c.events.is_empty() {
        let mut insert = tx
            .prepare_cached(
                "INSERT INTO events (execution_id, seq, event_type, created_at, body)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (execution_id, seq) DO NOTHING",
            )
            .map_err(backend)?;
        for ev in &c.events {
            let changed = insert
                .execute(params![
                    ev.execution_id,
                    ev.seq,
                    ev.event_type,
                    ev.created_at,
                    ev.body
                ])
                .map_err(backend)?;
            if changed == 0 {
                return Err(StoreError::Conflict(format!(
                    "event {} of execution {} is already recorded",
                    ev.seq, ev.execution_id
                )));
            }
        }
    }
    if !c.message_ids.is_empty() {
        let mut insert = tx
            .prepare_cached(
                "INSERT INTO message_ids (conversation_id, message_id, received_at)
                 VALUES (?1, ?2, ?3)
                 ON CONFLICT (conversation_id, message_id) DO NOTHING",
            )
            .map_err(backend)?;
        for (conv, id, at) in &c.message_ids {
            if insert.execute(params![conv, id, at]).map_err(backend)? == 0 {
                return Err(StoreError::Conflict(format!(
                    "message {id} was already processed in conversation {conv}"
                )));
            }
        }
        drop(insert);
        // Forget ids older than the retention window before the newest one (index range).
        tx.prepare_cached(
            "DELETE FROM message_ids
             WHERE received_at < (SELECT max(received_at) FROM message_ids) - ?1",
        )
        .and_then(|mut s| s.execute([MESSAGE_ID_RETENTION_MS]))
        .map_err(backend)?;
    }
    if let Some((key, result, at)) = &c.idempotency {
        tx.prepare_cached(
            "INSERT INTO idempotency (key, result, recorded_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (key) DO UPDATE SET result = excluded.result,
                 recorded_at = excluded.recorded_at",
        )
        .and_then(|mut s| s.execute(params![key, result, at]))
        .map_err(backend)?;
        tx.prepare_cached(
            "DELETE FROM idempotency
             WHERE recorded_at < (SELECT max(recorded_at) FROM idempotency) - ?1",
        )
        .and_then(|mut s| s.execute([IDEMPOTENCY_RETENTION_MS]))
        .map_err(backend)?;
    }
    for r in &c.outbox {
        tx.prepare_cached(
            "INSERT INTO outbox (id, conversation_id, execution_id, whatsapp_id, state, body)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (id) DO UPDATE SET whatsapp_id = excluded.whatsapp_id,
                 state = excluded.state, body = excluded.body",
        )
        .and_then(|mut s| {
            s.execute(params![
                r.id,
                r.conversation_id,
                r.execution_id,
                r.whatsapp_id,
                r.state,
                r.body
            ])
        })
        .map_err(backend)?;
    }
    for seq in &c.consumed {
        tx.prepare_cached("DELETE FROM inbox WHERE seq = ?1")
            .and_then(|mut s| s.execute([seq]))
            .map_err(backend)?;
    }
    Ok(())
}

/// Writes one job inside the caller's transaction (or savepoint).
fn apply_write(tx: &Connection, w: &Write) -> Result<Written, StoreError> {
    match w {
        Write::KvPut {
            namespace,
            key,
            value,
        } => {
            let exists = tx
                .prepare_cached("SELECT 1 FROM kv WHERE namespace = ?1 AND key = ?2")
                .and_then(|mut s| s.exists(params![namespace, key]))
                .map_err(backend)?;
            if !exists {
                let n: i64 = tx
                    .prepare_cached("SELECT count(*) FROM kv WHERE namespace = ?1")
                    .and_then(|mut s| s.query_row([namespace], |r| r.get(0)))
                    .map_err(backend)?;
                if usize::try_from(n).unwrap_or(usize::MAX) >= KV_MAX_KEYS {
                    return Err(kv_full());
                }
            }
            tx.prepare_cached(
                "INSERT INTO kv (namespace, key, value) VALUES (?1, ?2, ?3)
                 ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value",
            )
            .and_then(|mut s| s.execute(params![namespace, key, value]))
            .map_err(backend)?;
            Ok(Written::Done)
        }
        Write::KvDelete { namespace, key } => {
            tx.prepare_cached("DELETE FROM kv WHERE namespace = ?1 AND key = ?2")
                .and_then(|mut s| s.execute(params![namespace, key]))
                .map_err(backend)?;
            Ok(Written::Done)
        }
        Write::Commit(c) => apply(tx, c).map(|()| Written::Done),
        Write::Enqueue(rows) => {
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                if r.kind == "message" {
                    let processed = tx
                        .prepare_cached(
                            "SELECT 1 FROM message_ids
                             WHERE conversation_id = ?1 AND message_id = ?2",
                        )
                        .and_then(|mut s| s.exists(params![r.conversation_id, r.key]))
                        .map_err(backend)?;
                    if processed {
                        out.push(Enqueued::Duplicate);
                        continue;
                    }
                }
                let changed = tx
                    .prepare_cached(
                        "INSERT INTO inbox (conversation_id, key, kind, received_at, due_at, body)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                         ON CONFLICT (conversation_id, key) DO NOTHING",
                    )
                    .and_then(|mut s| {
                        s.execute(params![
                            r.conversation_id,
                            r.key,
                            r.kind,
                            r.received_at,
                            r.due_at,
                            r.body
                        ])
                    })
                    .map_err(backend)?;
                out.push(if changed == 0 {
                    Enqueued::Duplicate
                } else {
                    let seq = u64::try_from(tx.last_insert_rowid()).unwrap_or(0);
                    Enqueued::Queued(seq)
                });
            }
            Ok(Written::Enqueued(out))
        }
        Write::Lease {
            conversation_id,
            owner,
            now,
            until,
        } => {
            let changed = tx
                .prepare_cached(
                    "INSERT INTO leases (conversation_id, owner, expires_at) VALUES (?1, ?2, ?4)
                     ON CONFLICT (conversation_id) DO UPDATE SET owner = excluded.owner,
                         expires_at = excluded.expires_at
                     WHERE leases.owner = excluded.owner OR leases.expires_at <= ?3",
                )
                .and_then(|mut s| s.execute(params![conversation_id, owner, now, until]))
                .map_err(backend)?;
            Ok(Written::Lease(changed > 0))
        }
        Write::Release {
            conversation_id,
            owner,
        } => {
            tx.prepare_cached("DELETE FROM leases WHERE conversation_id = ?1 AND owner = ?2")
                .and_then(|mut s| s.execute(params![conversation_id, owner]))
                .map_err(backend)?;
            Ok(Written::Done)
        }
    }
}

/// Resets the queue if the writer panics: the commits it held fail (their senders are
/// dropped) and the next commit starts a new writer.
struct WriterGuard<'a>(&'a Mutex<Queue>);

impl Drop for WriterGuard<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let mut q = lock(self.0);
            q.jobs.clear();
            q.writing = false;
        }
    }
}

/// The writer: takes queued commits in groups of up to [`MAX_GROUP`] and writes each group,
/// until the queue is empty.
fn write_queued(
    queue: &Mutex<Queue>,
    writer: &Mutex<Connection>,
    checkpoints: Option<&Checkpoints>,
) {
    let _guard = WriterGuard(queue);
    loop {
        let jobs: Vec<Job> = {
            let mut q = lock(queue);
            if q.jobs.is_empty() {
                q.writing = false;
                return;
            }
            let n = q.jobs.len().min(MAX_GROUP);
            q.jobs.drain(..n).collect()
        };
        let results = {
            let mut conn = lock(writer);
            write_group(&mut conn, &jobs)
        };
        if let Some(c) = checkpoints {
            c.wrote(jobs.iter().map(|j| j.write.size()).sum());
        }
        for (job, result) in jobs.into_iter().zip(results) {
            // The caller may have gone away; its commit stands.
            let _ = job.done.send(result);
        }
    }
}

/// Writes commits, each with its own result: several at once in one transaction (one sync to
/// disk), each inside a savepoint so a conflicting one is rolled back alone. Should the group
/// fail otherwise, nothing of it is kept and each commit is written in its own transaction.
fn write_group(conn: &mut Connection, jobs: &[Job]) -> Vec<Result<Written, StoreError>> {
    if !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    if jobs.len() > 1 {
        match write_together(conn, jobs) {
            Ok(results) => return results,
            Err(_) if !conn.is_autocommit() => {
                let _ = conn.execute_batch("ROLLBACK");
            }
            Err(_) => {}
        }
    }
    jobs.iter().map(|j| write_alone(conn, &j.write)).collect()
}

fn write_alone(conn: &mut Connection, w: &Write) -> Result<Written, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(backend)?;
    let written = apply_write(&tx, w)?;
    tx.commit().map_err(backend)?;
    Ok(written)
}

fn write_together(
    conn: &mut Connection,
    jobs: &[Job],
) -> Result<Vec<Result<Written, StoreError>>, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(backend)?;
    let mut results = Vec::with_capacity(jobs.len());
    // Cached statements: `execute_batch` would parse these again for every job.
    let step = |sql: &str| {
        tx.prepare_cached(sql)
            .and_then(|mut s| s.execute([]))
            .map_err(backend)
    };
    for job in jobs {
        step("SAVEPOINT turn")?;
        match apply_write(&tx, &job.write) {
            Ok(written) => {
                step("RELEASE turn")?;
                results.push(Ok(written));
            }
            // A job's own refusal (a version conflict, a key-value limit) undoes only that
            // job; the group goes on.
            Err(e @ (StoreError::Conflict(_) | StoreError::Limit(_))) => {
                step("ROLLBACK TO turn")?;
                step("RELEASE turn")?;
                results.push(Err(e));
            }
            Err(e) => return Err(e),
        }
    }
    tx.commit().map_err(backend)?;
    Ok(results)
}

fn load_record<T: serde::de::DeserializeOwned>(
    conn: &Connection,
    sql: &str,
    id: &str,
    what: &str,
) -> Result<Option<(i64, T)>, StoreError> {
    let row: Option<(i64, String)> = conn
        .prepare_cached(sql)
        .and_then(|mut s| s.query_row([id], |r| Ok((r.get(0)?, r.get(1)?))).optional())
        .map_err(backend)?;
    match row {
        Some((version, body)) => Ok(Some((version, decode(&body, &format!("{what} {id}"))?))),
        None => Ok(None),
    }
}

fn version_of(v: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Decode(format!("{what}: negative version {v}")))
}

fn decode_execution(version: i64, body: &str) -> Result<Execution, StoreError> {
    let mut e: Execution = decode(body, "execution")?;
    e.version = version_of(version, "execution")?;
    Ok(e)
}

/// The `WHERE` clause and parameters of a listing.
fn listing_query(f: &ExecutionFilter) -> (String, Vec<rusqlite::types::Value>) {
    use rusqlite::types::Value as V;
    let mut sql = String::from("SELECT version, body FROM executions WHERE 1 = 1");
    let mut args: Vec<V> = Vec::new();
    let mut arg = |sql: &mut String, clause: &str, v: V| {
        args.push(v);
        sql.push_str(&clause.replace('?', &format!("?{}", args.len())));
    };
    if let Some(x) = &f.flow_id {
        arg(&mut sql, " AND flow_id = ?", V::Text(x.clone()));
    }
    if let Some(x) = &f.conversation_id {
        arg(&mut sql, " AND conversation_id = ?", V::Text(x.clone()));
    }
    if let Some(x) = f.status {
        arg(&mut sql, " AND status = ?", V::Text(x.as_str().to_owned()));
    }
    if let Some(x) = f.waiting_reason {
        arg(
            &mut sql,
            " AND waiting_reason = ?",
            V::Text(x.as_str().to_owned()),
        );
    }
    if let Some(x) = f.created_after {
        arg(&mut sql, " AND started_at >= ?", V::Integer(x.millis()));
    }
    if let Some(x) = f.created_before {
        arg(&mut sql, " AND started_at < ?", V::Integer(x.millis()));
    }
    if let Some(x) = &f.after {
        // Strictly after the cursor in (started_at desc, seq desc) order; an unknown cursor
        // compares as NULL and selects nothing.
        arg(
            &mut sql,
            " AND (started_at, seq) < (SELECT started_at, seq FROM executions WHERE id = ?)",
            V::Text(x.clone()),
        );
    }
    let newer = f.after.is_none() && f.before.is_some();
    if let Some(x) = f.before.as_ref().filter(|_| newer) {
        // Strictly newer than the cursor, nearest first (the caller reverses the page).
        arg(
            &mut sql,
            " AND (started_at, seq) > (SELECT started_at, seq FROM executions WHERE id = ?)",
            V::Text(x.clone()),
        );
    }
    let limit = f.limit.clamp(1, 100);
    let order = if newer {
        " ORDER BY started_at ASC, seq ASC LIMIT ?"
    } else {
        " ORDER BY started_at DESC, seq DESC LIMIT ?"
    };
    arg(&mut sql, order, V::Integer(limit as i64));
    (sql, args)
}

#[async_trait]
impl ExecutionStore for SqliteStore {
    async fn conversation(&self, id: &str) -> Result<Option<Conversation>, StoreError> {
        let id = id.to_owned();
        run(&self.reader, move |conn| {
            let row = load_record::<Conversation>(
                conn,
                "SELECT version, body FROM conversations WHERE id = ?1",
                &id,
                "conversation",
            )?;
            row.map(|(version, mut c)| {
                c.version = version_of(version, "conversation")?;
                Ok(c)
            })
            .transpose()
        })
        .await
    }

    async fn execution(&self, id: &str) -> Result<Option<Execution>, StoreError> {
        let id = id.to_owned();
        run(&self.reader, move |conn| {
            let row = load_record::<Execution>(
                conn,
                "SELECT version, body FROM executions WHERE id = ?1",
                &id,
                "execution",
            )?;
            row.map(|(version, mut e)| {
                e.version = version_of(version, "execution")?;
                Ok(e)
            })
            .transpose()
        })
        .await
    }

    async fn commit(&self, commit: TurnCommit) -> Result<(), StoreError> {
        let encoded = encode_commit(commit)?;
        self.submit(Write::Commit(encoded)).await.map(|_| ())
    }

    async fn seen_message(
        &self,
        conversation_id: &str,
        message_id: &str,
    ) -> Result<bool, StoreError> {
        let (conv, id) = (conversation_id.to_owned(), message_id.to_owned());
        run(&self.reader, move |conn| {
            conn.prepare_cached(
                "SELECT 1 FROM message_ids WHERE conversation_id = ?1 AND message_id = ?2",
            )
            .and_then(|mut s| s.exists(params![conv, id]))
            .map_err(backend)
        })
        .await
    }

    async fn idempotent_result(
        &self,
        key: &str,
        since: Timestamp,
    ) -> Result<Option<Value>, StoreError> {
        let key = key.to_owned();
        run(&self.reader, move |conn| {
            let row: Option<String> = conn
                .prepare_cached(
                    "SELECT result FROM idempotency WHERE key = ?1 AND recorded_at >= ?2",
                )
                .and_then(|mut s| {
                    s.query_row(params![key, since.millis()], |r| r.get(0))
                        .optional()
                })
                .map_err(backend)?;
            row.map(|r| decode(&r, "idempotency result")).transpose()
        })
        .await
    }

    async fn due_timers(&self, now: Timestamp, limit: usize) -> Result<Vec<DueTimer>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        run(&self.reader, move |conn| {
            let mut s = conn
                .prepare_cached(
                    "SELECT id, timer_due_at FROM executions
                     WHERE timer_due_at IS NOT NULL AND timer_due_at <= ?1
                     ORDER BY timer_due_at, id LIMIT ?2",
                )
                .map_err(backend)?;
            let rows = s
                .query_map(params![now.millis(), limit], |r| {
                    Ok(DueTimer {
                        execution_id: r.get(0)?,
                        due_at: Timestamp(r.get(1)?),
                    })
                })
                .map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
    }

    async fn events(
        &self,
        execution_id: &str,
        after: u64,
        limit: usize,
        event_type: Option<EventType>,
    ) -> Result<Vec<Event>, StoreError> {
        let id = execution_id.to_owned();
        let after = i64::try_from(after).unwrap_or(i64::MAX);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        run(&self.reader, move |conn| {
            let mut s = conn
                .prepare_cached(
                    "SELECT body FROM events
                     WHERE execution_id = ?1 AND seq > ?2 AND (?3 IS NULL OR event_type = ?3)
                     ORDER BY seq LIMIT ?4",
                )
                .map_err(backend)?;
            let rows = s
                .query_map(
                    params![id, after, event_type.map(EventType::as_str), limit],
                    |r| r.get::<_, String>(0),
                )
                .map_err(backend)?;
            let mut out = Vec::new();
            for body in rows {
                out.push(decode(&body.map_err(backend)?, "event")?);
            }
            Ok(out)
        })
        .await
    }

    async fn executions(&self, filter: &ExecutionFilter) -> Result<Vec<Execution>, StoreError> {
        let (sql, args) = listing_query(filter);
        let newer = filter.after.is_none() && filter.before.is_some();
        run(&self.reader, move |conn| {
            let mut s = conn.prepare_cached(&sql).map_err(backend)?;
            let rows = s
                .query_map(rusqlite::params_from_iter(args), |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
                })
                .map_err(backend)?;
            let mut out = Vec::new();
            for row in rows {
                let (version, body) = row.map_err(backend)?;
                out.push(decode_execution(version, &body)?);
            }
            if newer {
                out.reverse();
            }
            Ok(out)
        })
        .await
    }

    async fn enqueue(&self, items: Vec<NewInbound>) -> Result<Vec<Enqueued>, StoreError> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let mut rows = Vec::with_capacity(items.len());
        for n in items {
            rows.push(InboxRow {
                kind: match n.item {
                    InboundItem::Message(_) => "message",
                    InboundItem::Status(_) => "status",
                },
                body: encode(&n.item, "inbox item")?,
                conversation_id: n.conversation_id,
                key: n.key,
                received_at: n.received_at.millis(),
                due_at: n.due_at.millis(),
            });
        }
        match self.submit(Write::Enqueue(rows)).await? {
            Written::Enqueued(out) => Ok(out),
            _ => Err(StoreError::Backend(
                "the writer answered an enqueue wrongly".into(),
            )),
        }
    }

    async fn queued(&self, conversation_id: &str) -> Result<Vec<QueuedInbound>, StoreError> {
        let conv = conversation_id.to_owned();
        run(&self.reader, move |conn| {
            let mut s = conn
                .prepare_cached(
                    "SELECT seq, key, received_at, due_at, body FROM inbox
                     WHERE conversation_id = ?1 ORDER BY seq",
                )
                .map_err(backend)?;
            let rows = s
                .query_map([&conv], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, i64>(3)?,
                        r.get::<_, String>(4)?,
                    ))
                })
                .map_err(backend)?;
            let mut out = Vec::new();
            for row in rows {
                let (seq, key, received_at, due_at, body) = row.map_err(backend)?;
                out.push(QueuedInbound {
                    seq: u64::try_from(seq).unwrap_or(0),
                    conversation_id: conv.clone(),
                    key,
                    item: decode(&body, "inbox item")?,
                    received_at: Timestamp(received_at),
                    due_at: Timestamp(due_at),
                });
            }
            Ok(out)
        })
        .await
    }

    async fn due_work(&self, now: Timestamp, limit: usize) -> Result<Vec<DueWork>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        run(&self.reader, move |conn| {
            let mut s = conn
                .prepare_cached(
                    "WITH work (conversation_id, due_at) AS (
                         SELECT conversation_id, min(received_at) FROM inbox
                         WHERE kind = 'status' GROUP BY conversation_id
                         UNION ALL
                         SELECT i.conversation_id, min(i.received_at) FROM inbox i
                         WHERE i.kind = 'message' GROUP BY i.conversation_id
                         HAVING max(i.due_at) <= ?1 AND NOT EXISTS (
                             SELECT 1 FROM executions e
                             WHERE e.conversation_id = i.conversation_id
                               AND e.effect_due_at IS NOT NULL)
                         UNION ALL
                         SELECT conversation_id, effect_due_at FROM executions
                         WHERE effect_due_at IS NOT NULL AND effect_due_at <= ?1
                         UNION ALL
                         SELECT conversation_id, timer_due_at FROM executions
                         WHERE timer_due_at IS NOT NULL AND timer_due_at <= ?1
                     )
                     SELECT w.conversation_id, min(w.due_at) FROM work w
                     WHERE NOT EXISTS (
                         SELECT 1 FROM leases l
                         WHERE l.conversation_id = w.conversation_id AND l.expires_at > ?1)
                     GROUP BY w.conversation_id
                     ORDER BY 2, 1 LIMIT ?2",
                )
                .map_err(backend)?;
            let rows = s
                .query_map(params![now.millis(), limit], |r| {
                    Ok(DueWork {
                        conversation_id: r.get(0)?,
                        due_at: Timestamp(r.get(1)?),
                    })
                })
                .map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
    }

    async fn outbox(&self, query: &OutboxQuery) -> Result<Vec<OutboxRecord>, StoreError> {
        let query = query.clone();
        run(&self.reader, move |conn| {
            let (sql, arg) = match &query {
                OutboxQuery::Id(id) => ("SELECT body FROM outbox WHERE id = ?1", id),
                OutboxQuery::WhatsappId(w) => (
                    "SELECT body FROM outbox WHERE whatsapp_id = ?1 ORDER BY rowid DESC LIMIT 1",
                    w,
                ),
                OutboxQuery::Execution(e) => (
                    "SELECT body FROM outbox WHERE execution_id = ?1 ORDER BY rowid",
                    e,
                ),
            };
            let mut s = conn.prepare_cached(sql).map_err(backend)?;
            let rows = s
                .query_map([arg], |r| r.get::<_, String>(0))
                .map_err(backend)?;
            let mut out = Vec::new();
            for body in rows {
                out.push(decode(&body.map_err(backend)?, "outbox record")?);
            }
            Ok(out)
        })
        .await
    }

    async fn acquire_lease(
        &self,
        conversation_id: &str,
        owner: &str,
        now: Timestamp,
        ttl_ms: i64,
    ) -> Result<bool, StoreError> {
        let write = Write::Lease {
            conversation_id: conversation_id.to_owned(),
            owner: owner.to_owned(),
            now: now.millis(),
            until: now.millis().saturating_add(ttl_ms),
        };
        match self.submit(write).await? {
            Written::Lease(taken) => Ok(taken),
            _ => Err(StoreError::Backend(
                "the writer answered a lease wrongly".into(),
            )),
        }
    }

    async fn release_lease(&self, conversation_id: &str, owner: &str) -> Result<(), StoreError> {
        self.submit(Write::Release {
            conversation_id: conversation_id.to_owned(),
            owner: owner.to_owned(),
        })
        .await
        .map(|_| ())
    }

    async fn kv_get(&self, namespace: &str, key: &str) -> Result<Option<String>, StoreError> {
        let (namespace, key) = (namespace.to_owned(), key.to_owned());
        run(&self.reader, move |conn| {
            conn.prepare_cached("SELECT value FROM kv WHERE namespace = ?1 AND key = ?2")
                .and_then(|mut s| {
                    s.query_row(params![namespace, key], |r| r.get(0))
                        .optional()
                })
                .map_err(backend)
        })
        .await
    }

    async fn kv_put(&self, namespace: &str, key: &str, value: &str) -> Result<(), StoreError> {
        kv_check(key, value)?;
        self.submit(Write::KvPut {
            namespace: namespace.to_owned(),
            key: key.to_owned(),
            value: value.to_owned(),
        })
        .await
        .map(|_| ())
    }

    async fn kv_delete(&self, namespace: &str, key: &str) -> Result<(), StoreError> {
        self.submit(Write::KvDelete {
            namespace: namespace.to_owned(),
            key: key.to_owned(),
        })
        .await
        .map(|_| ())
    }

    async fn kv_list(
        &self,
        namespace: &str,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let (namespace, prefix) = (namespace.to_owned(), prefix.to_owned());
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        run(&self.reader, move |conn| {
            // Keys sort by their bytes (BINARY collation), so those starting with `prefix`
            // come first from `prefix` on.
            let mut s = conn
                .prepare_cached(
                    "SELECT key FROM kv WHERE namespace = ?1 AND key >= ?2 ORDER BY key LIMIT ?3",
                )
                .map_err(backend)?;
            let rows = s
                .query_map(params![namespace, prefix, limit], |r| r.get::<_, String>(0))
                .map_err(backend)?;
            let mut out = Vec::new();
            for key in rows {
                let key = key.map_err(backend)?;
                if !key.starts_with(prefix.as_str()) {
                    break;
                }
                out.push(key);
            }
            Ok(out)
        })
        .await
    }
}
