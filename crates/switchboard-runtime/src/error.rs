//! Errors of the runtime crate.

use crate::state::Status;

/// Why an engine operation was refused or could not complete.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The execution, flow, node or event does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The request is malformed (bad phone number, missing message, …).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The conversation already has an active execution, or a concurrent turn won.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The status change is not allowed (runtime-semantics §5).
    #[error("invalid transition from {from:?}: {message}")]
    InvalidTransition {
        /// The current status.
        from: Status,
        /// What was asked.
        message: String,
    },
    /// The flow is not active, has no active trigger, or has error diagnostics.
    #[error("flow inactive: {0}")]
    FlowInactive(String),
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The engine itself is broken (a lock poisoned by a panic): not the caller's fault.
    #[error("internal: {0}")]
    Internal(String),
}

impl EngineError {
    /// The API error code (runtime-semantics §10).
    pub fn code(&self) -> &'static str {
        match self {
            EngineError::NotFound(_) => "not_found",
            EngineError::InvalidRequest(_) => "invalid_request",
            EngineError::Conflict(_) => "conflict",
            EngineError::InvalidTransition { .. } => "invalid_transition",
            EngineError::FlowInactive(_) => "flow_inactive",
            EngineError::Store(StoreError::Conflict(_)) => "conflict",
            EngineError::Store(_) | EngineError::Internal(_) => "internal",
        }
    }
}

/// Errors of an execution store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Optimistic concurrency: the stored version is not the expected one.
    #[error("version conflict: {0}")]
    Conflict(String),
    /// The backend failed (I/O, corruption, …).
    #[error("backend: {0}")]
    Backend(String),
    /// A stored value could not be decoded.
    #[error("decode: {0}")]
    Decode(String),
    /// A limit of the store forbids the operation (a key-value key, value or namespace too
    /// large); nothing was changed.
    #[error("limit: {0}")]
    Limit(String),
}
