//! Execution ids: [`UniqueIds`] for production (unique across processes), [`SequentialIds`]
//! for deterministic runs (tests, scripts, benchmarks).

use std::sync::atomic::{AtomicU64, Ordering};

/// Produces ids for executions and events' owners.
pub trait IdGenerator: Send + Sync {
    /// A new id with a prefix (`ex`, `tr`).
    fn next(&self, prefix: &str) -> String;
}

/// Sequential ids (`ex_1`, `ex_2`, …): deterministic, for tests and scripted runs.
#[derive(Debug, Default)]
pub struct SequentialIds(AtomicU64);

impl IdGenerator for SequentialIds {
    fn next(&self, prefix: &str) -> String {
        format!("{prefix}_{}", self.0.fetch_add(1, Ordering::Relaxed) + 1)
    }
}

/// Ids unique across processes: time, a per-process random value, and a counter.
#[derive(Debug)]
pub struct UniqueIds {
    seed: u64,
    counter: AtomicU64,
}

impl Default for UniqueIds {
    fn default() -> Self {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        h.write_u32(std::process::id());
        UniqueIds {
            seed: h.finish(),
            counter: AtomicU64::new(0),
        }
    }
}

impl IdGenerator for UniqueIds {
    fn next(&self, prefix: &str) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        format!(
            "{prefix}_{:012x}{:06x}",
            self.seed & 0xffff_ffff_ffff,
            n & 0xff_ffff
        )
    }
}
