//! The Switchboard flow model: typed, Kapso-compatible flows.
//!
//! This crate reads every flow file shape Kapso's tools write (SDK compiled JSON, SDK YAML/dict,
//! platform `definition.json`, with or without a `flow`/`workflow` envelope), keeps the document
//! losslessly so it can be written back exactly, projects each node's `config` onto a typed
//! configuration, and offers a fluent builder. It is pure: it parses strings and builds values,
//! and must not depend on I/O, async runtimes, HTTP clients or graph libraries (no tokio,
//! reqwest, sqlx or petgraph; `docs/architecture.md` states the check).
//!
//! Cargo feature `yaml` (on by default): YAML reading and writing, the `yaml` module (built on
//! `saphyr-parser`). Without it the crate reads and writes JSON only: loading a YAML document
//! fails with [`LoadError::InvalidDocument`] saying so, and a write with `Encoding::Yaml` writes
//! JSON text, which is a YAML 1.2 document too.
//!
//! ```
//! use switchboard_model::{load, NodeConfig, config::TextField};
//!
//! let loaded = load(r#"{"name": "hi", "nodes": [
//!     {"id": "start", "data": {"node_type": "start"}},
//!     {"id": "greet", "data": {"node_type": "send_text", "config": {"message": "Hi {{name}}", "colour": "red"}}}
//!   ], "edges": [{"source": "start", "target": "greet"}]}"#).unwrap();
//! let greet = loaded.flow.get_node("greet").unwrap();
//! let NodeConfig::SendText(cfg) = greet.config() else { panic!() };
//! assert_eq!(cfg.message, Some(TextField::Text("Hi {{name}}".into())));
//! assert_eq!(loaded.issues[0].rule(), "unknown-config-key");
//! assert_eq!(loaded.flow.edges[0].label(), "next");
//! // The unknown key survives a round trip.
//! assert!(loaded.flow.to_text().contains("colour"));
//! ```

pub mod builder;
pub mod config;
mod decode;
pub mod error;
pub mod flow;
pub mod issue;
pub mod json;
pub mod load;
pub mod secrets;
pub mod source;
pub mod url;
pub mod value;
mod write;
#[cfg(feature = "yaml")]
pub mod yaml;

pub use config::{NodeConfig, NodeKind};
pub use decode::parse_decimal;
pub use error::{LoadError, SyntaxError};
pub use flow::{Edge, Encoding, Envelope, Flow, Format, Metadata, Node, Settings, Shape};
pub use issue::{Issue, IssueKind};
pub use load::{LoadOptions, Loaded, detect_encoding, from_value, load, load_bytes, load_str};
pub use source::{LineCol, Source};
pub use url::is_http_url;
pub use value::{Entry, Map, Pos, Value};
pub use write::WriteOptions;
