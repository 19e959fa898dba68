//! The Switchboard runtime: executes flows.
//!
//! The [`Engine`] runs every node kind of a Kapso-compatible flow against adapters it reaches
//! only through traits ([`adapters`]): a messenger, language models, functions, an HTTP client,
//! MCP servers, a project-event sink, secrets and a clock. Executions and conversations are
//! plain serializable values kept in an [`store::ExecutionStore`], so a conversation can pause
//! for days and resume in another process. Offline adapters ([`offline`]) are the default, so
//! everything runs with no network. This crate knows no HTTP library and no SQL: real adapters
//! live in `switchboard-adapters`.

pub mod adapters;
mod agent;
pub mod engine;
pub mod error;
pub mod event;
pub mod function_answer;
pub mod inbox;
pub mod offline;
pub mod script;
pub mod state;
pub mod store;
pub mod template;
pub mod testing;
pub mod time;
mod turn;

pub use engine::{
    Adapters, Dispatch, Engine, EngineBuilder, EngineConfig, ExecutionSummary, FlowDefinition,
    InboundMessage, Reply, ResumeRequest, StartRequest, Trigger,
};
pub use error::{EngineError, StoreError};
pub use event::{Event, EventType};
pub use state::{Conversation, Execution, Status, WaitingReason};
pub use time::Timestamp;
