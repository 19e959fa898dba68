//! The in-memory store passes the store conformance suite (`switchboard_runtime::testing`).

use std::sync::Arc;

use switchboard_runtime::store::{ExecutionStore, MemoryStore};

fn memory() -> Arc<dyn ExecutionStore> {
    Arc::new(MemoryStore::new())
}

switchboard_runtime::store_conformance_tests!(memory);

/// The whole suite in one go, as other stores run it.
#[tokio::test]
async fn whole_suite() {
    switchboard_runtime::testing::store_conformance(memory).await;
}

/// A store capping events per execution still passes everything the cap does not touch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_limited_store() {
    switchboard_runtime::testing::store_conformance(|| {
        Arc::new(MemoryStore::with_event_limit(10_000)) as Arc<dyn ExecutionStore>
    })
    .await;
}
