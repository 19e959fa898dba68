//! The Switchboard flow model: typed, Kapso-compatible flows.
//!
//! This crate reads every flow file shape Kapso's tools write (SDK compiled JSON, SDK YAML/dict,
//! platform `definition.json`, with or without a `flow`/`workflow` envelope), keeps the document
//! losslessly so it can be written back exactly, projects each node's `config` onto a typed
//! configuration, and offers a fluent builder. It is pure: it parses strings and builds values,
//! and must not depend on I/O, async runtimes, HTTP clients or graph libraries (no tokio,
//! reqwest, sqlx or petgraph; `docs/architecture.md` states the check).

pub mod error;
pub mod json;
pub mod source;
pub mod value;
pub mod yaml;

pub use error::{LoadError, SyntaxError};
pub use source::{LineCol, Source};
pub use value::{Entry, Map, Pos, Value};
