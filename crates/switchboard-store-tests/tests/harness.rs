//! The harness reports a broken store as violations instead of passing it: a store that forgets
//! every commit must fail the round-trip check (and others), with the check named.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;
use switchboard_runtime::StoreError;
use switchboard_runtime::event::{Event, EventType};
use switchboard_runtime::state::{Conversation, Execution};
use switchboard_runtime::store::{
    DueTimer, DueWork, Enqueued, ExecutionFilter, ExecutionStore, MemoryStore, NewInbound,
    OutboxQuery, OutboxRecord, QueuedInbound, TurnCommit,
};
use switchboard_runtime::time::Timestamp;
use switchboard_store_tests::{Check, run};

/// Accepts every commit and remembers nothing.
struct Forgetful;

#[async_trait]
impl ExecutionStore for Forgetful {
    async fn conversation(&self, _: &str) -> Result<Option<Conversation>, StoreError> {
        Ok(None)
    }
    async fn execution(&self, _: &str) -> Result<Option<Execution>, StoreError> {
        Ok(None)
    }
    async fn commit(&self, _: TurnCommit) -> Result<(), StoreError> {
        Ok(())
    }
    async fn seen_message(&self, _: &str, _: &str) -> Result<bool, StoreError> {
        Ok(false)
    }
    async fn idempotent_result(&self, _: &str, _: Timestamp) -> Result<Option<Value>, StoreError> {
        Ok(None)
    }
    async fn due_timers(&self, _: Timestamp, _: usize) -> Result<Vec<DueTimer>, StoreError> {
        Ok(Vec::new())
    }
    async fn events(
        &self,
        _: &str,
        _: u64,
        _: usize,
        _: Option<EventType>,
    ) -> Result<Vec<Event>, StoreError> {
        Ok(Vec::new())
    }
    async fn executions(&self, _: &ExecutionFilter) -> Result<Vec<Execution>, StoreError> {
        Ok(Vec::new())
    }
    async fn enqueue(&self, items: Vec<NewInbound>) -> Result<Vec<Enqueued>, StoreError> {
        Ok(items.iter().map(|_| Enqueued::Queued(1)).collect())
    }
    async fn queued(&self, _: &str) -> Result<Vec<QueuedInbound>, StoreError> {
        Ok(Vec::new())
    }
    async fn due_work(&self, _: Timestamp, _: usize) -> Result<Vec<DueWork>, StoreError> {
        Ok(Vec::new())
    }
    async fn outbox(&self, _: &OutboxQuery) -> Result<Vec<OutboxRecord>, StoreError> {
        Ok(Vec::new())
    }
    async fn acquire_lease(
        &self,
        _: &str,
        _: &str,
        _: Timestamp,
        _: i64,
    ) -> Result<bool, StoreError> {
        Ok(true)
    }
    async fn release_lease(&self, _: &str, _: &str) -> Result<(), StoreError> {
        Ok(())
    }
    async fn kv_get(&self, _: &str, _: &str) -> Result<Option<String>, StoreError> {
        Ok(None)
    }
    async fn kv_put(&self, _: &str, _: &str, _: &str) -> Result<(), StoreError> {
        Ok(())
    }
    async fn kv_delete(&self, _: &str, _: &str) -> Result<(), StoreError> {
        Ok(())
    }
    async fn kv_list(&self, _: &str, _: &str, _: usize) -> Result<Vec<String>, StoreError> {
        Ok(Vec::new())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_forgets_fails_with_named_checks() {
    let err = run(|| Arc::new(Forgetful) as Arc<dyn ExecutionStore>)
        .await
        .expect_err("a store that keeps nothing must not conform");
    let failed: Vec<Check> = err.0.iter().map(|v| v.check).collect();
    assert!(failed.contains(&Check::RoundTrip), "{err}");
    assert!(failed.contains(&Check::Versions), "{err}");
    assert!(failed.contains(&Check::KeyValue), "{err}");
    assert!(err.to_string().contains("round_trip: "), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_store_passes_every_check() {
    for check in Check::ALL {
        check
            .run(Arc::new(MemoryStore::new()))
            .await
            .unwrap_or_else(|v| panic!("{v}"));
    }
}
