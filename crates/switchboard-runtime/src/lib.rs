//! The Switchboard runtime: executes flows.
//!
//! The [`Engine`] runs every node kind of a Kapso-compatible flow against adapters it reaches
//! only through traits ([`adapters`]): a messenger, language models, functions, an HTTP client,
//! MCP servers, a project-event sink, secrets and a clock. Executions and conversations are
//! plain serializable values kept in an [`store::ExecutionStore`], so a conversation can pause
//! for days and resume in another process. An engine is built explicitly
//! ([`Engine::builder`]): each family is set, filled with its offline fake only when asked
//! ([`EngineBuilder::offline`]), or fails its calls — never a silent fake.
//!
//! This crate must not depend on an HTTP library, a database driver, a JavaScript engine or a
//! YAML parser, and it never touches the file system: real adapters live in their own crates
//! (`switchboard-sqlite`, `switchboard-llm`, `switchboard-whatsapp`, …), conversation scripts in
//! `switchboard-script`, the store conformance suite in `switchboard-store-tests`.

pub mod adapters;
pub mod config;
mod context;
pub mod engine;
pub mod error;
pub mod event;
pub mod failure;
pub mod function_answer;
pub mod offline;
pub mod registry;
pub mod request;
pub mod state;
pub mod store;
pub mod template;
pub mod time;
mod turn;
pub mod worker;

pub use adapters::Adapters;
pub use config::{Delays, EngineConfig};
pub use engine::{Engine, EngineBuilder};
pub use error::{EngineError, StoreError};
pub use event::{Event, EventType};
pub use failure::FailureKind;
pub use registry::{FlowDefinition, RegisterError, Trigger};
pub use request::{
    Dispatch, ExecutionSummary, InboundMessage, Reply, ResumeRequest, StartRequest, normalise_phone,
};
pub use state::{Conversation, Execution, Status, WaitingReason};
pub use template::TemplateLimits;
pub use time::Timestamp;
pub use turn::Resumed;
