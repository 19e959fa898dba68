//! Real adapters for the Switchboard runtime: the implementations of the runtime's traits
//! that reach the world (the server; the SQLite store is `switchboard-sqlite`, HTTP is
//! `switchboard-http`, the LLM clients are `switchboard-llm`, the WhatsApp Cloud API is
//! `switchboard-whatsapp`, MCP is `switchboard-mcp`, local JavaScript is `switchboard-js`).
//!
//! This crate is the edge of the system. It depends on `switchboard-runtime` and implements
//! its traits; `switchboard-model`, `switchboard-validator` and `switchboard-runtime` must
//! never depend on it (they stay free of SQL, HTTP and other I/O libraries). Binaries such as
//! the `switchboard` CLI wire these adapters into an [`switchboard_runtime::Engine`].
//!
//! Each adapter family sits behind its own cargo feature, so a deployment compiles only what
//! it uses:
//!
//! | feature | default | adapters |
//! |---|---|---|
//! | `server` | yes | [`server`]: the axum HTTP server (WhatsApp webhooks, the executions API) in front of an [`Inbox`](switchboard_runtime::inbox::Inbox) |

#[cfg(feature = "server")]
pub mod server;
