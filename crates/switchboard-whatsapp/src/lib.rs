//! `switchboard-whatsapp`: the WhatsApp Cloud API (Meta Graph API) at the edge of the system —
//! the runtime's messenger, webhook parsing and webhook authentication. It depends on
//! `switchboard-runtime` (the traits and message types), `switchboard-http` (the transport) and
//! HMAC-SHA256; it must not depend on another adapter crate, a server framework or the CLI,
//! and the model, the validator and the runtime must never depend on it.
//!
//! * [`CloudApiMessenger`]: the runtime's [`Messenger`](switchboard_runtime::adapters::Messenger),
//!   sending `POST {base_url}/{api_version}/{phone_number_id}/messages`. The JSON of each message
//!   kind is built by [`message_payload`], a pure function.
//! * [`parse_webhook`]: the WhatsApp Business Account webhook payload →
//!   [`InboundMessage`](switchboard_runtime::InboundMessage)s (with the text of
//!   runtime-semantics §4.3) and delivery [`Status`] records. Pure, no I/O, never panics.
//! * [`verify_signature`] (`X-Hub-Signature-256`) and [`verify_subscription`] (the `GET`
//!   `hub.challenge` handshake), both comparing secrets in constant time.
//!
//! The messenger sits behind the default `client` feature; without it the crate is the pure part
//! only (parsing, signatures, payloads).
//!
//! The HTTP server receiving webhooks lives elsewhere (`switchboard-server`); it calls these
//! functions.

#[cfg(feature = "client")]
mod client;
mod payload;
mod signature;
mod webhook;

#[cfg(feature = "client")]
pub use client::{CloudApiConfig, CloudApiMessenger, TemplateName};
pub use payload::{message_payload, template_parameters};
pub use signature::{verify_signature, verify_subscription};
pub use webhook::{Status, StatusError, WebhookError, WebhookEvents, parse_webhook};
