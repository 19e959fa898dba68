//! Shared test helpers: temporary directories and a self-cleaning SQLite store.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use serde_json::Value;
use switchboard_runtime::store::{
    DueTimer, DueWork, Enqueued, ExecutionFilter, ExecutionStore, NewInbound, OutboxQuery,
    OutboxRecord, QueuedInbound, TurnCommit,
};
use switchboard_runtime::{Conversation, Event, EventType, Execution, StoreError, Timestamp};
use switchboard_sqlite::SqliteStore;

/// A directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    /// A new, empty, uniquely named directory.
    pub fn new(name: &str) -> TempDir {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir = std::env::temp_dir().join(format!(
            "switchboard-{name}-{}-{nanos}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// A file in it.
    pub fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A file-backed [`SqliteStore`] whose directory goes away with it.
pub struct TempStore {
    // Declared first: the store closes before its directory is removed.
    pub store: SqliteStore,
    pub dir: TempDir,
}

impl TempStore {
    pub fn new() -> TempStore {
        let dir = TempDir::new("store");
        let store = SqliteStore::open(dir.file("switchboard.db")).unwrap();
        TempStore { store, dir }
    }
}

/// A fresh file-backed store, as the conformance suite wants it.
pub fn file_store() -> Arc<dyn ExecutionStore> {
    Arc::new(TempStore::new())
}

/// A fresh in-memory store.
pub fn memory_store() -> Arc<dyn ExecutionStore> {
    Arc::new(SqliteStore::in_memory().unwrap())
}

#[async_trait]
impl ExecutionStore for TempStore {
    async fn conversation(&self, id: &str) -> Result<Option<Conversation>, StoreError> {
        self.store.conversation(id).await
    }
    async fn execution(&self, id: &str) -> Result<Option<Execution>, StoreError> {
        self.store.execution(id).await
    }
    async fn commit(&self, commit: TurnCommit) -> Result<(), StoreError> {
        self.store.commit(commit).await
    }
    async fn seen_message(&self, c: &str, m: &str) -> Result<bool, StoreError> {
        self.store.seen_message(c, m).await
    }
    async fn idempotent_result(
        &self,
        key: &str,
        since: Timestamp,
    ) -> Result<Option<Value>, StoreError> {
        self.store.idempotent_result(key, since).await
    }
    async fn due_timers(&self, now: Timestamp, limit: usize) -> Result<Vec<DueTimer>, StoreError> {
        self.store.due_timers(now, limit).await
    }
    async fn events(
        &self,
        execution_id: &str,
        after: u64,
        limit: usize,
        event_type: Option<EventType>,
    ) -> Result<Vec<Event>, StoreError> {
        self.store
            .events(execution_id, after, limit, event_type)
            .await
    }
    async fn executions(&self, filter: &ExecutionFilter) -> Result<Vec<Execution>, StoreError> {
        self.store.executions(filter).await
    }
    async fn enqueue(&self, items: Vec<NewInbound>) -> Result<Vec<Enqueued>, StoreError> {
        self.store.enqueue(items).await
    }
    async fn queued(&self, conversation_id: &str) -> Result<Vec<QueuedInbound>, StoreError> {
        self.store.queued(conversation_id).await
    }
    async fn due_work(&self, now: Timestamp, limit: usize) -> Result<Vec<DueWork>, StoreError> {
        self.store.due_work(now, limit).await
    }
    async fn outbox(&self, query: &OutboxQuery) -> Result<Vec<OutboxRecord>, StoreError> {
        self.store.outbox(query).await
    }
    async fn acquire_lease(
        &self,
        conversation_id: &str,
        owner: &str,
        now: Timestamp,
        ttl_ms: i64,
    ) -> Result<bool, StoreError> {
        self.store
            .acquire_lease(conversation_id, owner, now, ttl_ms)
            .await
    }
    async fn release_lease(&self, conversation_id: &str, owner: &str) -> Result<(), StoreError> {
        self.store.release_lease(conversation_id, owner).await
    }
    async fn kv_get(&self, namespace: &str, key: &str) -> Result<Option<String>, StoreError> {
        self.store.kv_get(namespace, key).await
    }
    async fn kv_put(&self, namespace: &str, key: &str, value: &str) -> Result<(), StoreError> {
        self.store.kv_put(namespace, key, value).await
    }
    async fn kv_delete(&self, namespace: &str, key: &str) -> Result<(), StoreError> {
        self.store.kv_delete(namespace, key).await
    }
    async fn kv_list(
        &self,
        namespace: &str,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        self.store.kv_list(namespace, prefix, limit).await
    }
}
