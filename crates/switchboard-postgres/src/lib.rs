//! The PostgreSQL execution store: the store for many `serve` processes on many machines sharing
//! one database. It implements the runtime's [`ExecutionStore`] (executions, conversations,
//! events, the inbox, the outbox, leases, idempotency records) and passes the same conformance
//! suite as the memory and SQLite stores. It depends on the runtime's store trait, tokio-postgres
//! and deadpool-postgres; nothing below it may depend on it.
//!
//! * **Driver**: tokio-postgres with a deadpool connection pool (limits and timeouts in
//!   [`PoolOptions`]). Queries are written by hand and every value is a bound parameter; a
//!   turn's commit is one call of the `switchboard_commit` function (one round trip, one
//!   transaction).
//! * **Schema**: versioned SQL files (`migrations/`), applied by [`PostgresStore::migrate`]
//!   (`switchboard migrate`, or `serve --migrate`) under an advisory lock, recorded in
//!   `switchboard_schema_migrations`; applying them twice is a no-op.
//! * **Key-value namespaces** (`env.KV` of local functions): `switchboard_kv`, keys and values
//!   as BYTEA (UTF-8 text that may hold a NUL, ordered by its bytes), with a per-namespace key
//!   count in `switchboard_kv_namespaces` that a put of a new key checks and locks.
//! * **Many workers**: conversations are held by leases in `switchboard_leases` (unlogged); a
//!   worker's claim (`ExecutionStore::claim`) is one statement that takes or renews the lease
//!   and reads the conversation's inbox, the conversation and its active execution — or lets
//!   the lease go when nothing is due. Versions on every record make a stale writer's commit
//!   fail (`StoreError::Conflict`, SQLSTATE `SB409`) before anything is sent.
//! * **Cost**: a turn that sends one message is 4 round trips (claim, the commit before the
//!   send, the commit after it, the claim that finds nothing more and lets the lease go);
//!   [`PostgresStore::round_trips`] counts the statements this process sent and
//!   [`PostgresStore::database_transactions`] those of every process.
//!
//! # Schema (version 3)
//!
//! | table | columns | keys and indexes |
//! |---|---|---|
//! | `switchboard_conversations` | `id`, `version`, `body` (JSON text) | `id` |
//! | `switchboard_executions` | `seq` (creation order), `id`, `version`, `flow_id`, `conversation_id`, `status`, `waiting_reason`, `started_at`, `ended_at`, `timer_due_at`, `effect_due_at`, `body` | `id`; listing by start time, per flow, per conversation, per status; due timers, due effects and ended executions (partial) |
//! | `switchboard_events` | `execution_id`, `seq`, `event_type`, `created_at`, `body` | `execution_id, seq` |
//! | `switchboard_message_ids` | `conversation_id`, `message_id`, `received_at` | both ids; `received_at` (pruning) |
//! | `switchboard_idempotency` | `key`, `result`, `recorded_at` | `key`; `recorded_at` (pruning) |
//! | `switchboard_inbox` | `seq` (arrival order), `conversation_id`, `key`, `kind`, `received_at`, `due_at`, `body` | `seq`; unique `conversation_id, key` |
//! | `switchboard_outbox` | `seq`, `id`, `conversation_id`, `execution_id`, `whatsapp_id`, `state`, `body` | `id`; per execution; per WhatsApp id (partial) |
//! | `switchboard_leases` (unlogged since version 2) | `conversation_id`, `owner`, `expires_at` | `conversation_id` |
//! | `switchboard_kv` (version 3) | `namespace`, `key` (BYTEA), `value` (BYTEA) — `env.KV` of local functions, one namespace per function | `namespace, key` |
//! | `switchboard_kv_namespaces` (version 3) | `namespace`, `keys` (how many it holds) | `namespace` |
//! | `switchboard_schema_migrations` | `version`, `name`, `applied_at` | `version` |
//!
//! Functions: `switchboard_commit(json)` (a turn's commit), `switchboard_kv_put(namespace, key,
//! value, max_keys)` and `switchboard_kv_delete(namespace, key)`. Times are milliseconds since
//! the Unix epoch.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use serde_json::{Value, json};
use switchboard_runtime::store::{
    Claimed, ConversationWork, DueTimer, DueWork, Enqueued, ExecutionFilter, ExecutionStore,
    InboundItem, KV_MAX_KEYS, NewInbound, OutboxQuery, OutboxRecord, OutboxState, QueuedInbound,
    TurnCommit, effect_due, kv_check, kv_full,
};
use switchboard_runtime::{
    Conversation, Event, EventType, Execution, Status, StoreError, Timestamp,
};
use tokio_postgres::NoTls;
use tokio_postgres::types::ToSql;

/// The migrations, in order: `(version, name, SQL)`.
pub const MIGRATIONS: &[(i32, &str, &str)] = &[
    (1, "schema", include_str!("../migrations/0001_schema.sql")),
    (
        2,
        "unlogged_leases",
        include_str!("../migrations/0002_unlogged_leases.sql"),
    ),
    (3, "kv", include_str!("../migrations/0003_kv.sql")),
];

/// The schema version this build needs.
pub const SCHEMA_VERSION: i32 = MIGRATIONS.len() as i32;

/// How long idempotency records are kept by [`PostgresStore::prune`] (a key is honoured for
/// 24 hours).
pub const IDEMPOTENCY_RETENTION_MS: i64 = 7 * 24 * 3600 * 1000;

/// Connection-pool limits and timeouts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolOptions {
    /// Connections at most (default 16).
    pub max_size: usize,
    /// How long a caller waits for a free connection (default 10 s).
    pub wait_timeout: Duration,
    /// How long opening a connection may take (default 10 s).
    pub connect_timeout: Duration,
    /// How long one statement may run before the server cancels it (default 30 s).
    pub statement_timeout: Duration,
    /// The schema Switchboard's tables live in (default: the server's `search_path`, usually
    /// `public`): lets several deployments — or tests — share one database.
    pub schema: Option<String>,
}

impl Default for PoolOptions {
    fn default() -> Self {
        PoolOptions {
            max_size: 16,
            wait_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(10),
            statement_timeout: Duration::from_secs(30),
            schema: None,
        }
    }
}

/// What [`PostgresStore::prune`] removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Ended or failed executions (with their events and outbox records).
    pub executions: u64,
    /// Their events.
    pub events: u64,
    /// Their outbox records.
    pub outbox: u64,
    /// Processed message ids older than the cutoff (and at least seven days old).
    pub message_ids: u64,
    /// Idempotency records older than seven days.
    pub idempotency: u64,
}

/// The PostgreSQL store (see the [crate docs](crate)). Cheap to clone.
#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
    round_trips: Arc<AtomicU64>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("round_trips", &self.round_trips())
            .finish_non_exhaustive()
    }
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("postgres: {e}"))
}

fn pg(e: tokio_postgres::Error) -> StoreError {
    if let Some(db) = e.as_db_error()
        && db.code().code() == "SB409"
    {
        return StoreError::Conflict(db.message().to_owned());
    }
    match e.as_db_error() {
        Some(db) => {
            StoreError::Backend(format!("postgres: {} ({})", db.message(), db.code().code()))
        }
        None => backend(e),
    }
}

fn decode<T: serde::de::DeserializeOwned>(text: &str, what: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Decode(format!("{what}: {e}")))
}

fn encode<T: serde::Serialize>(v: &T, what: &str) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Backend(format!("cannot encode {what}: {e}")))
}

fn int(v: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::Backend(format!("{what} {v} is too large to store")))
}

fn version_of(v: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Decode(format!("{what}: negative version {v}")))
}

impl PostgresStore {
    /// A store on the database at `url` (`postgres://user:password@host:port/database`); no
    /// connection is opened until the first use. Call [`PostgresStore::migrate`] (or check
    /// [`PostgresStore::schema_version`]) before serving.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the URL does not parse or the pool cannot be built. The
    /// message never holds the password.
    pub fn connect(url: &str, options: &PoolOptions) -> Result<PostgresStore, StoreError> {
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|_| StoreError::Backend("the PostgreSQL URL does not parse".into()))?;
        if config.get_ssl_mode() == tokio_postgres::config::SslMode::Require {
            return Err(StoreError::Backend(
                "the PostgreSQL URL asks for TLS (sslmode=require), which this store does not \
                 speak: connect over a private network or through a local TLS proxy"
                    .into(),
            ));
        }
        config.connect_timeout(options.connect_timeout);
        let mut server_options = format!(
            "-c statement_timeout={}",
            options.statement_timeout.as_millis()
        );
        if let Some(schema) = &options.schema {
            check_identifier(schema)?;
            server_options.push_str(&format!(" -c search_path={schema}"));
        }
        config.options(server_options);
        config.application_name("switchboard");
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.max_size.max(1))
            .wait_timeout(Some(options.wait_timeout))
            .create_timeout(Some(options.connect_timeout))
            .recycle_timeout(Some(options.connect_timeout))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(backend)?;
        Ok(PostgresStore {
            pool,
            round_trips: Arc::default(),
        })
    }

    /// Statements sent to the server so far (each is one round trip).
    pub fn round_trips(&self) -> u64 {
        self.round_trips.load(Ordering::Relaxed)
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool.get().await.map_err(backend)
    }

    fn count(&self, n: u64) {
        self.round_trips.fetch_add(n, Ordering::Relaxed);
    }

    async fn query(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, StoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(sql).await.map_err(pg)?;
        self.count(1);
        client.query(&statement, params).await.map_err(pg)
    }

    async fn execute(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(sql).await.map_err(pg)?;
        self.count(1);
        client.execute(&statement, params).await.map_err(pg)
    }

    /// Creates a schema (for [`PoolOptions::schema`]) if it does not exist.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] for a name that is not a plain identifier, or when the database
    /// refuses.
    pub async fn create_schema(&self, schema: &str) -> Result<(), StoreError> {
        check_identifier(schema)?;
        let client = self.client().await?;
        self.count(1);
        client
            .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
            .await
            .map_err(pg)
    }

    /// Drops a schema and everything in it (tests and tools).
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] for a name that is not a plain identifier, or when the database
    /// refuses.
    pub async fn drop_schema(&self, schema: &str) -> Result<(), StoreError> {
        check_identifier(schema)?;
        let client = self.client().await?;
        self.count(1);
        client
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
            .await
            .map_err(pg)
    }

    /// Transactions committed and rolled back in this store's database so far, by every
    /// session (`pg_stat_database`): outside migrations each statement this store sends is one
    /// transaction, so the difference over a run counts the round trips of every process on
    /// the database (benchmarks and monitoring). PostgreSQL publishes a session's counts when
    /// it ends or goes idle, so read it after the processes measured have stopped.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the database cannot be reached.
    pub async fn database_transactions(&self) -> Result<u64, StoreError> {
        let client = self.client().await?;
        client
            .batch_execute("SELECT pg_stat_clear_snapshot()")
            .await
            .map_err(pg)?;
        let row = client
            .query_one(
                "SELECT (xact_commit + xact_rollback)::BIGINT FROM pg_stat_database
                 WHERE datname = current_database()",
                &[],
            )
            .await
            .map_err(pg)?;
        Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0))
    }

    /// The schema version of the database (0: no Switchboard schema).
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the database cannot be reached.
    pub async fn schema_version(&self) -> Result<i32, StoreError> {
        let rows = self
            .query(
                "SELECT to_regclass('switchboard_schema_migrations') IS NOT NULL",
                &[],
            )
            .await?;
        let exists: bool = rows.first().map(|r| r.get(0)).unwrap_or(false);
        if !exists {
            return Ok(0);
        }
        let rows = self
            .query(
                "SELECT coalesce(max(version), 0) FROM switchboard_schema_migrations",
                &[],
            )
            .await?;
        Ok(rows.first().map_or(0, |r| r.get(0)))
    }

    /// Brings the schema to [`SCHEMA_VERSION`]: applies every missing migration, each in its own
    /// transaction, under an advisory lock (several processes may call it at once). Returns the
    /// versions applied (empty when the schema was already current).
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when a migration fails (it is rolled back) or the database holds
    /// a newer schema than this build knows.
    pub async fn migrate(&self) -> Result<Vec<i32>, StoreError> {
        let mut client = self.client().await?;
        {
            // Under the lock: two processes creating the table at once would collide.
            let tx = client.transaction().await.map_err(pg)?;
            self.count(4);
            tx.execute("SELECT pg_advisory_xact_lock(7304611820231)", &[])
                .await
                .map_err(pg)?;
            tx.batch_execute(
                "CREATE TABLE IF NOT EXISTS switchboard_schema_migrations (
                     version    INTEGER NOT NULL PRIMARY KEY,
                     name       TEXT    NOT NULL,
                     applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
                 )",
            )
            .await
            .map_err(pg)?;
            tx.commit().await.map_err(pg)?;
        }
        let mut applied = Vec::new();
        for (version, name, sql) in MIGRATIONS {
            let tx = client.transaction().await.map_err(pg)?;
            self.count(3);
            // One migrator at a time (the key is arbitrary but fixed).
            tx.execute("SELECT pg_advisory_xact_lock(7304611820231)", &[])
                .await
                .map_err(pg)?;
            let done = tx
                .query_opt(
                    "SELECT 1 FROM switchboard_schema_migrations WHERE version = $1",
                    &[version],
                )
                .await
                .map_err(pg)?
                .is_some();
            if done {
                tx.commit().await.map_err(pg)?;
                continue;
            }
            self.count(2);
            tx.batch_execute(sql).await.map_err(|e| {
                StoreError::Backend(format!("migration {version} ({name}): {}", pg(e)))
            })?;
            tx.execute(
                "INSERT INTO switchboard_schema_migrations (version, name) VALUES ($1, $2)",
                &[version, name],
            )
            .await
            .map_err(pg)?;
            tx.commit().await.map_err(pg)?;
            applied.push(*version);
        }
        let newest: i32 = client
            .query_one(
                "SELECT coalesce(max(version), 0) FROM switchboard_schema_migrations",
                &[],
            )
            .await
            .map_err(pg)?
            .get(0);
        if newest > SCHEMA_VERSION {
            return Err(StoreError::Backend(format!(
                "the database schema is at version {newest}, newer than this build's {SCHEMA_VERSION}"
            )));
        }
        Ok(applied)
    }

    /// Fails unless the schema is exactly [`SCHEMA_VERSION`] (a `serve` that did not migrate
    /// checks this before it starts).
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] naming the versions.
    pub async fn check_schema(&self) -> Result<(), StoreError> {
        let v = self.schema_version().await?;
        if v == SCHEMA_VERSION {
            Ok(())
        } else {
            Err(StoreError::Backend(format!(
                "the database schema is at version {v}, this build needs {SCHEMA_VERSION}: run `switchboard migrate`"
            )))
        }
    }

    /// Removes ended and failed executions that ended before `before`, with their events and
    /// outbox records, `batch` executions per transaction (live conversations are never
    /// touched: only terminal executions are selected, and each batch is short); then processed
    /// message ids received before `before` (never younger than seven days) and idempotency
    /// records older than seven days.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the database fails (batches already done stay done).
    pub async fn prune(&self, before: Timestamp, batch: usize) -> Result<Pruned, StoreError> {
        let batch = i64::try_from(batch.max(1)).unwrap_or(1000);
        let mut pruned = Pruned::default();
        loop {
            let rows = self
                .query(
                    "WITH gone AS (
                         DELETE FROM switchboard_executions
                         WHERE id IN (
                             SELECT id FROM switchboard_executions
                             WHERE ended_at IS NOT NULL AND ended_at < $1
                               AND status IN ('ended', 'failed')
                             ORDER BY ended_at LIMIT $2
                             FOR UPDATE SKIP LOCKED)
                         RETURNING id),
                     ev AS (DELETE FROM switchboard_events WHERE execution_id IN (SELECT id FROM gone)
                            RETURNING 1),
                     ob AS (DELETE FROM switchboard_outbox WHERE execution_id IN (SELECT id FROM gone)
                            RETURNING 1)
                     SELECT (SELECT count(*) FROM gone), (SELECT count(*) FROM ev),
                            (SELECT count(*) FROM ob)",
                    &[&before.millis(), &batch],
                )
                .await?;
            let (e, v, o): (i64, i64, i64) = rows
                .first()
                .map_or((0, 0, 0), |r| (r.get(0), r.get(1), r.get(2)));
            pruned.executions += e as u64;
            pruned.events += v as u64;
            pruned.outbox += o as u64;
            if e < batch {
                break;
            }
        }
        let ids_before = before.millis().min(
            Timestamp::from_millis(now_ms()).millis()
                - switchboard_runtime::store::MESSAGE_ID_RETENTION_MS,
        );
        pruned.message_ids = self
            .execute(
                "DELETE FROM switchboard_message_ids WHERE received_at < $1",
                &[&ids_before],
            )
            .await?;
        pruned.idempotency = self
            .execute(
                "DELETE FROM switchboard_idempotency WHERE recorded_at < $1",
                &[&(now_ms() - IDEMPOTENCY_RETENTION_MS)],
            )
            .await?;
        Ok(pruned)
    }
}

/// A schema name that can be written into SQL as is (identifiers cannot be bound parameters):
/// 1 to 63 lowercase letters, digits and underscores, not starting with a digit.
fn check_identifier(name: &str) -> Result<(), StoreError> {
    let valid = !name.is_empty()
        && name.len() <= 63
        && !name.as_bytes()[0].is_ascii_digit()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if valid {
        Ok(())
    } else {
        Err(StoreError::Backend(format!(
            "schema `{name}`: use 1 to 63 lowercase letters, digits and underscores"
        )))
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The commit document `switchboard_commit` takes.
/// A stored conversation: its body with the version of its row.
fn conversation_row(version: i64, body: &str) -> Result<Conversation, StoreError> {
    let mut c: Conversation = decode(body, "conversation")?;
    c.version = version_of(version, "conversation")?;
    Ok(c)
}

/// A stored execution: its body with the version of its row.
fn execution_row(version: i64, body: &str) -> Result<Execution, StoreError> {
    let mut e: Execution = decode(body, "execution")?;
    e.version = version_of(version, "execution")?;
    Ok(e)
}

/// A stored inbox item of a conversation.
fn queued_row(
    conversation_id: &str,
    seq: i64,
    key: String,
    received_at: i64,
    due_at: i64,
    body: &str,
) -> Result<QueuedInbound, StoreError> {
    Ok(QueuedInbound {
        seq: u64::try_from(seq).unwrap_or(0),
        conversation_id: conversation_id.to_owned(),
        key,
        item: decode(body, "inbox item")?,
        received_at: Timestamp(received_at),
        due_at: Timestamp(due_at),
    })
}

fn commit_document(commit: TurnCommit) -> Result<String, StoreError> {
    let mut conversations = Vec::with_capacity(commit.conversations.len());
    for mut c in commit.conversations {
        let expected = int(c.version, "conversation version")?;
        c.version += 1;
        conversations
            .push(json!({"id": c.id, "expected": expected, "body": encode(&c, "conversation")?}));
    }
    let mut executions = Vec::with_capacity(commit.executions.len());
    for mut e in commit.executions {
        let expected = int(e.version, "execution version")?;
        e.version += 1;
        let timer_due_at = match (&e.timer, e.status) {
            (Some(t), Status::Waiting) => Some(t.due_at.millis()),
            _ => None,
        };
        let ended_at = e
            .ended_at
            .filter(|_| e.status.is_terminal())
            .map(Timestamp::millis);
        executions.push(json!({
            "id": e.id,
            "expected": expected,
            "flow_id": e.flow_id,
            "conversation_id": e.conversation_id,
            "status": e.status.as_str(),
            "waiting_reason": e.waiting_reason.map(|w| w.as_str()),
            "started_at": e.started_at.millis(),
            "ended_at": ended_at,
            "timer_due_at": timer_due_at,
            "effect_due_at": effect_due(&e).map(Timestamp::millis),
            "body": encode(&e, "execution")?,
        }));
    }
    let mut events = Vec::with_capacity(commit.events.len());
    for ev in commit.events {
        events.push(json!({
            "execution_id": ev.execution_id,
            "seq": int(ev.seq, "event seq")?,
            "event_type": ev.event_type.as_str(),
            "created_at": ev.created_at.millis(),
            "body": encode(&ev, "event")?,
        }));
    }
    let mut seen = std::collections::HashSet::new();
    let message_ids: Vec<Value> = commit
        .message_ids
        .into_iter()
        .filter(|(c, m, _)| seen.insert((c.clone(), m.clone())))
        .map(
            |(c, m, at)| json!({"conversation_id": c, "message_id": m, "received_at": at.millis()}),
        )
        .collect();
    let idempotency = match commit.idempotency {
        Some((key, value, at)) => {
            json!({"key": key, "result": encode(&value, "idempotency result")?, "recorded_at": at.millis()})
        }
        None => Value::Null,
    };
    let mut outbox = Vec::with_capacity(commit.outbox.len());
    for r in commit.outbox {
        outbox.push(json!({
            "id": r.id,
            "conversation_id": r.conversation_id,
            "execution_id": r.execution_id,
            "whatsapp_id": r.whatsapp_id(),
            "state": match r.state {
                OutboxState::Scheduled => "scheduled",
                OutboxState::Sending { .. } => "sending",
                OutboxState::Sent { .. } => "sent",
                OutboxState::Failed { .. } => "failed",
            },
            "body": encode(&r, "outbox record")?,
        }));
    }
    let consumed: Vec<i64> = commit
        .consumed
        .into_iter()
        .map(|s| int(s, "inbox seq"))
        .collect::<Result<_, _>>()?;
    encode(
        &json!({
            "conversations": conversations,
            "executions": executions,
            "events": events,
            "message_ids": message_ids,
            "idempotency": idempotency,
            "outbox": outbox,
            "consumed": consumed,
        }),
        "commit",
    )
}

#[async_trait]
impl ExecutionStore for PostgresStore {
    async fn conversation(&self, id: &str) -> Result<Option<Conversation>, StoreError> {
        let rows = self
            .query(
                "SELECT version, body FROM switchboard_conversations WHERE id = $1",
                &[&id],
            )
            .await?;
        rows.first()
            .map(|r| conversation_row(r.get(0), r.get(1)))
            .transpose()
    }

    async fn execution(&self, id: &str) -> Result<Option<Execution>, StoreError> {
        let rows = self
            .query(
                "SELECT version, body FROM switchboard_executions WHERE id = $1",
                &[&id],
            )
            .await?;
        rows.first()
            .map(|r| execution_row(r.get(0), r.get(1)))
            .transpose()
    }

    async fn commit(&self, commit: TurnCommit) -> Result<(), StoreError> {
        let doc = commit_document(commit)?;
        self.execute("SELECT switchboard_commit($1::text::json)", &[&doc])
            .await
            .map(|_| ())
    }

    async fn seen_message(
        &self,
        conversation_id: &str,
        message_id: &str,
    ) -> Result<bool, StoreError> {
        let rows = self
            .query(
                "SELECT 1 FROM switchboard_message_ids
                 WHERE conversation_id = $1 AND message_id = $2",
                &[&conversation_id, &message_id],
            )
            .await?;
        Ok(!rows.is_empty())
    }

    async fn idempotent_result(
        &self,
        key: &str,
        since: Timestamp,
    ) -> Result<Option<Value>, StoreError> {
        let rows = self
            .query(
                "SELECT result FROM switchboard_idempotency WHERE key = $1 AND recorded_at >= $2",
                &[&key, &since.millis()],
            )
            .await?;
        rows.first()
            .map(|r| decode(r.get::<_, &str>(0), "idempotency result"))
            .transpose()
    }

    async fn due_timers(&self, now: Timestamp, limit: usize) -> Result<Vec<DueTimer>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .query(
                "SELECT id, timer_due_at FROM switchboard_executions
                 WHERE timer_due_at IS NOT NULL AND timer_due_at <= $1
                 ORDER BY timer_due_at, id LIMIT $2",
                &[&now.millis(), &limit],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| DueTimer {
                execution_id: r.get(0),
                due_at: Timestamp(r.get(1)),
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
        let after = i64::try_from(after).unwrap_or(i64::MAX);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let kind = event_type.map(EventType::as_str);
        let rows = self
            .query(
                "SELECT body FROM switchboard_events
                 WHERE execution_id = $1 AND seq > $2 AND ($3::text IS NULL OR event_type = $3)
                 ORDER BY seq LIMIT $4",
                &[&execution_id, &after, &kind, &limit],
            )
            .await?;
        rows.iter()
            .map(|r| decode(r.get::<_, &str>(0), "event"))
            .collect()
    }

    async fn executions(&self, filter: &ExecutionFilter) -> Result<Vec<Execution>, StoreError> {
        let limit = i64::try_from(filter.limit.clamp(1, 100)).unwrap_or(100);
        let newer = filter.after.is_none() && filter.before.is_some();
        let status = filter.status.map(|s| s.as_str());
        let reason = filter.waiting_reason.map(|w| w.as_str());
        let after_ms = filter.created_after.map(Timestamp::millis);
        let before_ms = filter.created_before.map(Timestamp::millis);
        let cursor = if newer {
            filter.before.clone()
        } else {
            filter.after.clone()
        };
        let (cmp, order) = if newer { (">", "ASC") } else { ("<", "DESC") };
        // The cursor clause: strictly past the cursor execution in (started_at, seq) order; an
        // unknown cursor compares with NULL and selects nothing.
        let sql = format!(
            "SELECT version, body FROM switchboard_executions
             WHERE ($1::text IS NULL OR flow_id = $1)
               AND ($2::text IS NULL OR conversation_id = $2)
               AND ($3::text IS NULL OR status = $3)
               AND ($4::text IS NULL OR waiting_reason = $4)
               AND ($5::bigint IS NULL OR started_at >= $5)
               AND ($6::bigint IS NULL OR started_at < $6)
               AND ($7::text IS NULL OR (started_at, seq) {cmp}
                    (SELECT started_at, seq FROM switchboard_executions WHERE id = $7))
             ORDER BY started_at {order}, seq {order} LIMIT $8"
        );
        let rows = self
            .query(
                &sql,
                &[
                    &filter.flow_id,
                    &filter.conversation_id,
                    &status,
                    &reason,
                    &after_ms,
                    &before_ms,
                    &cursor,
                    &limit,
                ],
            )
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.push(execution_row(r.get(0), r.get(1))?);
        }
        if newer {
            out.reverse();
        }
        Ok(out)
    }

    async fn enqueue(&self, items: Vec<NewInbound>) -> Result<Vec<Enqueued>, StoreError> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let mut rows = Vec::with_capacity(items.len());
        for (i, n) in items.iter().enumerate() {
            rows.push(json!({
                "i": i,
                "conversation_id": n.conversation_id,
                "key": n.key,
                "kind": match n.item {
                    InboundItem::Message(_) => "message",
                    InboundItem::Status(_) => "status",
                },
                "received_at": n.received_at.millis(),
                "due_at": n.due_at.millis(),
                "body": encode(&n.item, "inbox item")?,
            }));
        }
        let doc = encode(&rows, "inbox items")?;
        // One statement: items already queued, and messages already processed, are left out;
        // the rest are queued in the order given.
        let inserted = self
            .query(
                "WITH items AS (
                     SELECT (x ->> 'i')::int AS i, x ->> 'conversation_id' AS conversation_id,
                            x ->> 'key' AS key, x ->> 'kind' AS kind,
                            (x ->> 'received_at')::bigint AS received_at,
                            (x ->> 'due_at')::bigint AS due_at, x ->> 'body' AS body
                     FROM json_array_elements($1::text::json) AS x)
                 INSERT INTO switchboard_inbox (conversation_id, key, kind, received_at, due_at, body)
                 SELECT conversation_id, key, kind, received_at, due_at, body FROM items
                 WHERE NOT (kind = 'message' AND EXISTS (
                     SELECT 1 FROM switchboard_message_ids m
                     WHERE m.conversation_id = items.conversation_id AND m.message_id = items.key))
                 ORDER BY i
                 ON CONFLICT (conversation_id, key) DO NOTHING
                 RETURNING seq, conversation_id, key",
                &[&doc],
            )
            .await?;
        let mut out = vec![Enqueued::Duplicate; items.len()];
        for r in &inserted {
            let (seq, conv, key): (i64, String, String) = (r.get(0), r.get(1), r.get(2));
            if let Some(i) = items
                .iter()
                .position(|n| n.conversation_id == conv && n.key == key)
            {
                out[i] = Enqueued::Queued(u64::try_from(seq).unwrap_or(0));
            }
        }
        Ok(out)
    }

    async fn queued(&self, conversation_id: &str) -> Result<Vec<QueuedInbound>, StoreError> {
        let rows = self
            .query(
                "SELECT seq, key, received_at, due_at, body FROM switchboard_inbox
                 WHERE conversation_id = $1 ORDER BY seq",
                &[&conversation_id],
            )
            .await?;
        rows.iter()
            .map(|r| {
                queued_row(
                    conversation_id,
                    r.get(0),
                    r.get(1),
                    r.get(2),
                    r.get(3),
                    r.get(4),
                )
            })
            .collect()
    }

    async fn due_work(&self, now: Timestamp, limit: usize) -> Result<Vec<DueWork>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .query(
                "WITH work (conversation_id, due_at) AS (
                     SELECT conversation_id, min(received_at) FROM switchboard_inbox
                     WHERE kind = 'status' GROUP BY conversation_id
                     UNION ALL
                     SELECT i.conversation_id, min(i.received_at) FROM switchboard_inbox i
                     WHERE i.kind = 'message' GROUP BY i.conversation_id
                     HAVING max(i.due_at) <= $1 AND NOT EXISTS (
                         SELECT 1 FROM switchboard_executions e
                         WHERE e.conversation_id = i.conversation_id
                           AND e.effect_due_at IS NOT NULL)
                     UNION ALL
                     SELECT conversation_id, effect_due_at FROM switchboard_executions
                     WHERE effect_due_at IS NOT NULL AND effect_due_at <= $1
                     UNION ALL
                     SELECT conversation_id, timer_due_at FROM switchboard_executions
                     WHERE timer_due_at IS NOT NULL AND timer_due_at <= $1
                 )
                 SELECT w.conversation_id, min(w.due_at) FROM work w
                 WHERE NOT EXISTS (
                     SELECT 1 FROM switchboard_leases l
                     WHERE l.conversation_id = w.conversation_id AND l.expires_at > $1)
                 GROUP BY w.conversation_id
                 ORDER BY 2, 1 LIMIT $2",
                &[&now.millis(), &limit],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| DueWork {
                conversation_id: r.get(0),
                due_at: Timestamp(r.get(1)),
            })
            .collect())
    }

    async fn outbox(&self, query: &OutboxQuery) -> Result<Vec<OutboxRecord>, StoreError> {
        let (sql, arg) = match query {
            OutboxQuery::Id(id) => ("SELECT body FROM switchboard_outbox WHERE id = $1", id),
            OutboxQuery::WhatsappId(w) => (
                "SELECT body FROM switchboard_outbox WHERE whatsapp_id = $1
                 ORDER BY seq DESC LIMIT 1",
                w,
            ),
            OutboxQuery::Execution(e) => (
                "SELECT body FROM switchboard_outbox WHERE execution_id = $1 ORDER BY seq",
                e,
            ),
        };
        let rows = self.query(sql, &[arg]).await?;
        rows.iter()
            .map(|r| decode(r.get::<_, &str>(0), "outbox record"))
            .collect()
    }

    async fn acquire_lease(
        &self,
        conversation_id: &str,
        owner: &str,
        now: Timestamp,
        ttl_ms: i64,
    ) -> Result<bool, StoreError> {
        let until = now.millis().saturating_add(ttl_ms);
        let rows = self
            .query(
                "INSERT INTO switchboard_leases (conversation_id, owner, expires_at)
                 VALUES ($1, $2, $4)
                 ON CONFLICT (conversation_id) DO UPDATE
                     SET owner = excluded.owner, expires_at = excluded.expires_at
                     WHERE switchboard_leases.owner = excluded.owner
                        OR switchboard_leases.expires_at <= $3
                 RETURNING 1",
                &[&conversation_id, &owner, &now.millis(), &until],
            )
            .await?;
        Ok(!rows.is_empty())
    }

    async fn claim(
        &self,
        conversation_id: &str,
        owner: &str,
        now: Timestamp,
        ttl_ms: i64,
    ) -> Result<Claimed, StoreError> {
        // One statement: read the conversation's inbox (marking messages already processed:
        // a redelivery whose insert waited on its first copy's commit slips past `enqueue`'s
        // check under READ COMMITTED), the conversation and its active execution; decide
        // whether work is due (the rule of `ConversationWork::is_due`, as
        // `due_work` applies it); then either take or renew the lease, or let ours go. The
        // two writes exclude each other, so they never touch the lease row twice.
        let until = now.millis().saturating_add(ttl_ms);
        let rows = self
            .query(
                "WITH conv AS (
                     SELECT version, body FROM switchboard_conversations WHERE id = $1
                 ),
                 active AS (
                     SELECT e.version, e.body, e.timer_due_at, e.effect_due_at
                     FROM switchboard_executions e
                     WHERE e.id = (SELECT body::json ->> 'active_execution_id' FROM conv)
                 ),
                 queued AS (
                     SELECT i.seq, i.key, i.kind, i.received_at, i.due_at, i.body,
                            (i.kind = 'message' AND EXISTS (
                                SELECT 1 FROM switchboard_message_ids m
                                WHERE m.conversation_id = $1 AND m.message_id = i.key)) AS seen
                     FROM switchboard_inbox i
                     WHERE i.conversation_id = $1
                 ),
                 inbox AS (SELECT * FROM queued WHERE NOT seen),
                 due AS (
                     SELECT EXISTS (SELECT 1 FROM queued WHERE seen)
                         OR EXISTS (SELECT 1 FROM inbox WHERE kind = 'status')
                         OR (EXISTS (SELECT 1 FROM inbox WHERE kind = 'message')
                             AND (SELECT max(due_at) FROM inbox WHERE kind = 'message') <= $3
                             AND NOT EXISTS (SELECT 1 FROM active
                                             WHERE effect_due_at IS NOT NULL))
                         OR EXISTS (SELECT 1 FROM active
                                    WHERE effect_due_at <= $3 OR timer_due_at <= $3) AS due
                 ),
                 taken AS (
                     INSERT INTO switchboard_leases (conversation_id, owner, expires_at)
                     SELECT $1, $2, $4 FROM due WHERE due.due
                     ON CONFLICT (conversation_id) DO UPDATE
                         SET owner = excluded.owner, expires_at = excluded.expires_at
                         WHERE switchboard_leases.owner = excluded.owner
                            OR switchboard_leases.expires_at <= $3
                     RETURNING 1
                 ),
                 freed AS (
                     DELETE FROM switchboard_leases
                     WHERE conversation_id = $1 AND owner = $2 AND NOT (SELECT due FROM due)
                     RETURNING 1
                 )
                 SELECT (SELECT due FROM due), EXISTS (SELECT 1 FROM taken),
                        (SELECT count(*) FROM freed),
                        (SELECT version FROM conv), (SELECT body FROM conv),
                        (SELECT version FROM active), (SELECT body FROM active),
                        (SELECT json_agg(json_build_array(seq, key, received_at, due_at, body)
                                         ORDER BY seq)::text FROM inbox),
                        (SELECT json_agg(seq ORDER BY seq)::text FROM queued WHERE seen)",
                &[&conversation_id, &owner, &now.millis(), &until],
            )
            .await?;
        let Some(row) = rows.first() else {
            return Err(backend("claim returned no row"));
        };
        let due: bool = row.get(0);
        if !due {
            return Ok(Claimed::Idle);
        }
        if !row.get::<_, bool>(1) {
            return Ok(Claimed::Busy);
        }
        let conversation = match (row.get::<_, Option<i64>>(3), row.get::<_, Option<&str>>(4)) {
            (Some(v), Some(body)) => Some(conversation_row(v, body)?),
            _ => None,
        };
        let active = match (row.get::<_, Option<i64>>(5), row.get::<_, Option<&str>>(6)) {
            (Some(v), Some(body)) => Some(execution_row(v, body)?),
            _ => None,
        };
        let items: Vec<(i64, String, i64, i64, String)> = match row.get::<_, Option<&str>>(7) {
            Some(text) => decode(text, "inbox items")?,
            None => Vec::new(),
        };
        let queued = items
            .into_iter()
            .map(|(seq, key, received_at, due_at, body)| {
                queued_row(conversation_id, seq, key, received_at, due_at, &body)
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let processed: Vec<u64> = match row.get::<_, Option<&str>>(8) {
            Some(text) => decode(text, "processed inbox items")?,
            None => Vec::new(),
        };
        Ok(Claimed::Work(Box::new(ConversationWork {
            queued,
            processed,
            conversation,
            active,
        })))
    }

    async fn release_lease(&self, conversation_id: &str, owner: &str) -> Result<(), StoreError> {
        self.execute(
            "DELETE FROM switchboard_leases WHERE conversation_id = $1 AND owner = $2",
            &[&conversation_id, &owner],
        )
        .await
        .map(|_| ())
    }

    async fn kv_get(&self, namespace: &str, key: &str) -> Result<Option<String>, StoreError> {
        let rows = self
            .query(
                "SELECT value FROM switchboard_kv WHERE namespace = $1 AND key = $2",
                &[&namespace, &key.as_bytes()],
            )
            .await?;
        rows.first()
            .map(|r| utf8(r.get::<_, Vec<u8>>(0), "key-value value"))
            .transpose()
    }

    async fn kv_put(&self, namespace: &str, key: &str, value: &str) -> Result<(), StoreError> {
        kv_check(key, value)?;
        let max_keys = i32::try_from(KV_MAX_KEYS).unwrap_or(i32::MAX);
        let rows = self
            .query(
                "SELECT switchboard_kv_put($1, $2, $3, $4)",
                &[&namespace, &key.as_bytes(), &value.as_bytes(), &max_keys],
            )
            .await?;
        if rows.first().is_some_and(|r| r.get::<_, bool>(0)) {
            Ok(())
        } else {
            Err(kv_full())
        }
    }

    async fn kv_delete(&self, namespace: &str, key: &str) -> Result<(), StoreError> {
        self.execute(
            "SELECT switchboard_kv_delete($1, $2)",
            &[&namespace, &key.as_bytes()],
        )
        .await
        .map(|_| ())
    }

    async fn kv_list(
        &self,
        namespace: &str,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        // Keys compare by their bytes (BYTEA), so those starting with `prefix` are the first
        // from `prefix` on: the scan stops at the first key that does not start with it.
        let rows = self
            .query(
                "SELECT key FROM switchboard_kv WHERE namespace = $1 AND key >= $2
                 ORDER BY key LIMIT $3",
                &[&namespace, &prefix.as_bytes(), &limit],
            )
            .await?;
        let mut keys = Vec::with_capacity(rows.len());
        for r in &rows {
            let key: Vec<u8> = r.get(0);
            if !key.starts_with(prefix.as_bytes()) {
                break;
            }
            keys.push(utf8(key, "key-value key")?);
        }
        Ok(keys)
    }
}

/// Text stored as BYTEA, back as a string ([`StoreError::Decode`] when it is not UTF-8; the
/// message does not show the bytes).
fn utf8(bytes: Vec<u8>, what: &str) -> Result<String, StoreError> {
    String::from_utf8(bytes).map_err(|_| StoreError::Decode(format!("{what}: not UTF-8")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(url: &str) -> String {
        match PostgresStore::connect(url, &PoolOptions::default()) {
            Ok(_) => panic!("{url} was accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn a_url_asking_for_tls_is_refused_with_a_reason() {
        let e = refused("postgres://u:secret@127.0.0.1:5432/db?sslmode=require");
        assert!(e.contains("sslmode=require"), "{e}");
        assert!(!e.contains("secret"), "{e}");
    }

    #[test]
    fn a_url_that_does_not_parse_is_refused_without_echoing_it() {
        let e = refused("postgres://u:secret@[::1/db");
        assert!(e.contains("does not parse"), "{e}");
        assert!(!e.contains("secret"), "{e}");
    }

    #[test]
    fn a_schema_must_be_a_plain_identifier() {
        let e = match PostgresStore::connect(
            "postgres://u@127.0.0.1:5432/db",
            &PoolOptions {
                schema: Some("x; DROP TABLE y".into()),
                ..PoolOptions::default()
            },
        ) {
            Ok(_) => panic!("accepted"),
            Err(e) => e.to_string(),
        };
        assert!(e.contains("schema") || e.contains("identifier"), "{e}");
    }
}
