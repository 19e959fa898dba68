//! The in-memory store passes the store conformance suite (`switchboard-store-tests`).

use std::sync::Arc;

use switchboard_runtime::store::{ExecutionStore, MemoryStore};

fn memory() -> Arc<dyn ExecutionStore> {
    Arc::new(MemoryStore::new())
}

/// The whole suite in one go, as other stores run it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_suite() {
    switchboard_store_tests::run(memory).await.unwrap();
}

/// A store capping events per execution still passes everything the cap does not touch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_limited_store() {
    switchboard_store_tests::run(|| {
        Arc::new(MemoryStore::with_event_limit(10_000)) as Arc<dyn ExecutionStore>
    })
    .await
    .unwrap();
}
