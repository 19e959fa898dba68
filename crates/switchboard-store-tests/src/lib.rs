//! The conformance suite for [`ExecutionStore`] implementations: every store (the in-memory one
//! of the runtime, SQLite, PostgreSQL, …) runs it as a dev-dependency, so the engine can rely on
//! one contract whatever the backend. This crate is a test kit: it must never be a normal
//! dependency of a library or binary, and it depends only on the runtime's store trait and
//! state types (plus tokio to run the checks).
//!
//! [`run`] runs every [`Check`], each on a fresh store, and returns every violation; a store's
//! test is one line:
//!
//! ```no_run
//! use std::sync::Arc;
//! use switchboard_runtime::store::{ExecutionStore, MemoryStore};
//!
//! #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
//! async fn conformance() {
//!     switchboard_store_tests::run(|| Arc::new(MemoryStore::new()) as Arc<dyn ExecutionStore>)
//!         .await
//!         .unwrap();
//! }
//! ```
//!
//! The contract, as checked:
//!
//! * **Round trip** ([`Check::RoundTrip`]): a committed conversation or execution loads back
//!   equal, field by field, with JSON object key order kept (nested `vars`, agent transcripts,
//!   timers, unicode, `u64::MAX`, `i64::MIN`, NUL characters). A record written again replaces
//!   the old one entirely (cleared options stay cleared).
//! * **Versions** ([`Check::Versions`]): a record committed with version `v` is stored at
//!   `v + 1`. Version 0 means "new": it fails if the record exists. Any other version must equal
//!   the stored one.
//! * **Atomicity** ([`Check::StaleCommitChangesNothing`]): a commit that fails with
//!   [`StoreError::Conflict`](switchboard_runtime::StoreError::Conflict) changes nothing —
//!   conversations, executions, events, message ids, idempotency records, timers and listings
//!   are untouched, wherever the stale record sits in the commit.
//! * **Message ids** ([`Check::MessageIds`]): ids are remembered per conversation; committing an
//!   id already recorded for its conversation conflicts; ids are kept at least
//!   [`MESSAGE_ID_RETENTION_MS`](switchboard_runtime::store::MESSAGE_ID_RETENTION_MS) after the
//!   newest recorded id.
//! * **Idempotency** ([`Check::Idempotency`]): a record is returned when recorded at or after
//!   `since`; recording a key again replaces it.
//! * **Due timers** ([`Check::DueTimers`]): only `waiting` executions with a timer, due at or
//!   before `now`, earliest first (ties by execution id), at most `limit`; a timer disappears
//!   when it is cleared or its execution leaves `waiting`, and moves when it is re-armed.
//! * **Events** ([`Check::Events`]): appended in order; `events(after, limit, event_type)`
//!   returns `seq > after`, oldest first, the type filter applied before the limit.
//! * **Listing** ([`Check::ExecutionsListing`]): newest first — `started_at` descending, ties by
//!   creation (first commit) order, newest created first; every
//!   [`ExecutionFilter`](switchboard_runtime::store::ExecutionFilter) field (`created_after`
//!   inclusive, `created_before` exclusive); `limit` clamped to 1–100; `after` pages past an
//!   execution id in that order (an unknown id yields nothing); filters see the current state of
//!   an execution.
//! * **Races** ([`Check::ConcurrentCommits`]): two tasks committing on the same loaded version:
//!   exactly one wins, the other gets a conflict and leaves no trace.
//!
//! * **Inbox** ([`Check::Inbox`]): items queued in arrival order per conversation, deduplicated
//!   by key (and, for messages, against processed message ids), removed by the commit that
//!   consumes them, and only when that commit succeeds.
//! * **Outbox** ([`Check::Outbox`]): records written and replaced by id by commits, found by id,
//!   by execution in creation order, and by WhatsApp id once sent; a conflicting commit writes
//!   none.
//! * **Due work** ([`Check::DueWork`]): statuses at once, a message batch when its latest
//!   message is due and no execution of the conversation has a pending effect, pending effects
//!   and wait timeouts when due; leased conversations left out until the lease expires.
//! * **Leases** ([`Check::Leases`]): one owner at a time, renewable by its owner, taken over once
//!   expired, released only by its owner.
//! * **Claims** ([`Check::Claims`]): a claim takes the lease with the conversation's work (queued
//!   items in order, the conversation, its active execution) when something is due, is busy
//!   while another owner's lease lives, and lets the caller's lease go when nothing is due.
//! * **Key-value** ([`Check::KeyValue`], `env.KV` of local functions): get, put (replacing),
//!   delete and list by prefix (byte order, bounded by `limit`) per namespace, namespaces apart;
//!   unicode and empty values kept exactly; limits refused with
//!   [`StoreError::Limit`](switchboard_runtime::StoreError::Limit) changing nothing (an empty
//!   key, a key over [`KV_MAX_KEY_BYTES`](switchboard_runtime::store::KV_MAX_KEY_BYTES), a
//!   value over [`KV_MAX_VALUE_BYTES`](switchboard_runtime::store::KV_MAX_VALUE_BYTES), a new
//!   key in a namespace of [`KV_MAX_KEYS`](switchboard_runtime::store::KV_MAX_KEYS), where
//!   replacing a key still works); concurrent puts of distinct keys all land.
//!
//! Records appear at most once per commit (the engine never writes one twice in a turn); what
//! a store does with duplicates inside one commit is not specified.

mod checks;

use std::sync::Arc;

use switchboard_runtime::store::ExecutionStore;

pub use checks::{T0, conversation, event, execution, record};

/// One rule of the store contract (see the [crate docs](crate)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Check {
    /// Commit then load round-trips records exactly; a second write replaces a record entirely.
    RoundTrip,
    /// Versions increase by one per commit; 0 inserts only when absent.
    Versions,
    /// A conflicting commit changes nothing.
    StaleCommitChangesNothing,
    /// Inbound message ids are remembered per conversation and conflict when recorded twice.
    MessageIds,
    /// Idempotency records are found from `since` on and replaced when recorded again.
    Idempotency,
    /// Due wait timeouts: which, in what order, how many.
    DueTimers,
    /// Events are appended in order and listed with `after`, `limit` and a type filter.
    Events,
    /// Executions are listed newest first, filtered and paged.
    ExecutionsListing,
    /// Two commits racing on one version: exactly one wins.
    ConcurrentCommits,
    /// The inbox: arrival order, deduplication, consumption with the commit.
    Inbox,
    /// The outbox: records written and replaced by commits, and their queries.
    Outbox,
    /// Due work: what is due when, blocked messages, leased conversations.
    DueWork,
    /// Leases: one owner at a time, renewal, expiry, release.
    Leases,
    /// Key-value namespaces: get, put, delete, list by prefix, limits.
    KeyValue,
    /// Claims: the lease with the conversation's work when something is due, else let go.
    Claims,
}

impl Check {
    /// Every check, in the order [`run`] runs them.
    pub const ALL: [Check; 15] = [
        Check::RoundTrip,
        Check::Versions,
        Check::StaleCommitChangesNothing,
        Check::MessageIds,
        Check::Idempotency,
        Check::DueTimers,
        Check::Events,
        Check::ExecutionsListing,
        Check::ConcurrentCommits,
        Check::Inbox,
        Check::Outbox,
        Check::DueWork,
        Check::Leases,
        Check::KeyValue,
        Check::Claims,
    ];

    /// The check's name (`round_trip`, `versions`, …).
    pub fn name(self) -> &'static str {
        match self {
            Check::RoundTrip => "round_trip",
            Check::Versions => "versions",
            Check::StaleCommitChangesNothing => "stale_commit_changes_nothing",
            Check::MessageIds => "message_ids",
            Check::Idempotency => "idempotency",
            Check::DueTimers => "due_timers",
            Check::Events => "events",
            Check::ExecutionsListing => "executions_listing",
            Check::ConcurrentCommits => "concurrent_commits",
            Check::Inbox => "inbox",
            Check::Outbox => "outbox",
            Check::DueWork => "due_work",
            Check::Leases => "leases",
            Check::KeyValue => "key_value",
            Check::Claims => "claims",
        }
    }

    /// Runs the check on `store` (which must be fresh and empty) in a task of its own, so a
    /// broken rule is reported as a [`Violation`] rather than unwinding through the caller.
    /// Needs a tokio runtime.
    pub async fn run(self, store: Arc<dyn ExecutionStore>) -> Result<(), Violation> {
        let task = match self {
            Check::RoundTrip => tokio::spawn(checks::round_trip(store)),
            Check::Versions => tokio::spawn(checks::versions(store)),
            Check::StaleCommitChangesNothing => {
                tokio::spawn(checks::stale_commit_changes_nothing(store))
            }
            Check::MessageIds => tokio::spawn(checks::message_ids(store)),
            Check::Idempotency => tokio::spawn(checks::idempotency(store)),
            Check::DueTimers => tokio::spawn(checks::due_timers(store)),
            Check::Events => tokio::spawn(checks::events(store)),
            Check::ExecutionsListing => tokio::spawn(checks::executions_listing(store)),
            Check::ConcurrentCommits => tokio::spawn(checks::concurrent_commits(store)),
            Check::Inbox => tokio::spawn(checks::inbox(store)),
            Check::Outbox => tokio::spawn(checks::outbox(store)),
            Check::DueWork => tokio::spawn(checks::due_work(store)),
            Check::Leases => tokio::spawn(checks::leases(store)),
            Check::KeyValue => tokio::spawn(checks::key_value(store)),
            Check::Claims => tokio::spawn(checks::claims(store)),
        };
        task.await.map_err(|e| Violation {
            check: self,
            message: if e.is_panic() {
                let payload = e.into_panic();
                payload
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_else(|| "the check panicked".to_owned())
            } else {
                format!("the check did not finish: {e}")
            },
        })
    }
}

impl std::fmt::Display for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A broken rule: which check, and what it saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The check.
    pub check: Check,
    /// What differs from the contract.
    pub message: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.check, self.message)
    }
}

/// Every violation of one run of the suite.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violations(pub Vec<Violation>);

impl std::fmt::Display for Violations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "the store breaks {} of {} conformance checks:",
            self.0.len(),
            Check::ALL.len()
        )?;
        for v in &self.0 {
            writeln!(f, "- {v}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Violations {}

/// Runs every check, each on a fresh store from `make`, and returns every violation. Needs a
/// tokio runtime (a multi-threaded one exercises the race check properly).
pub async fn run(make: impl Fn() -> Arc<dyn ExecutionStore>) -> Result<(), Violations> {
    let mut violations = Vec::new();
    for check in Check::ALL {
        if let Err(v) = check.run(make()).await {
            violations.push(v);
        }
    }
    if violations.is_empty() {
        Ok(())
    } else {
        Err(Violations(violations))
    }
}
