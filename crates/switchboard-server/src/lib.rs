//! `switchboard-server`: the HTTP server (axum on hyper) — WhatsApp webhooks and the executions
//! API in front of a [`Worker`] (and through it an [`switchboard_runtime::Engine`]). It depends
//! on `switchboard-runtime` (the engine and the worker), `switchboard-whatsapp` (webhook parsing
//! and signatures), axum and hyper; it must not depend on a store, a language model or any other
//! adapter crate (the engine it is handed carries those), and the model, the validator and the
//! runtime must never depend on it.
//!
//! | route | what |
//! |---|---|
//! | `GET /webhooks/whatsapp` | the `hub.challenge` handshake ([`verify_subscription`](switchboard_whatsapp::verify_subscription)): 200 with the challenge, else 403 |
//! | `POST /webhooks/whatsapp` | `X-Hub-Signature-256` checked on the raw body first (401, nothing processed), then [`parse_webhook`](switchboard_whatsapp::parse_webhook) (400 when malformed); its messages and delivery statuses are written to the store's inbox in one transaction ([`Worker::accept`]) and the webhook is answered 200 `{"received": n}` at once — the turns run afterwards, in the worker. A store failure answers 503 so WhatsApp redelivers |
//! | `POST /v1/executions` | `start_execution` (a [`StartRequest`](switchboard_runtime::StartRequest)): 201 `{execution_id, tracking_id, status}`; 403 for a `phone_number_id` the server does not allow; 422 for `variables`/`context` over the limit |
//! | `GET /v1/executions/{id}` | `get_execution` |
//! | `GET /v1/executions?flow=&conversation_id=&status=&waiting_reason=&created_after=&created_before=&limit=&after=&before=` | `list_executions`: `{data, paging: {after, before}}`, newest first (`flow` is the flow id); `after` pages to older executions, `before` to newer ones |
//! | `GET /v1/executions/{id}/messages` | the execution's outbound messages and project events: the outbox records, their state (`scheduled`, `sending`, `sent` with the WhatsApp id, `failed` with the error) and delivery statuses |
//! | `POST /v1/executions/{id}/resume` | `resume_execution` `{message?, variables?}` |
//! | `POST /v1/executions/{id}/status` | `update_status` `{status}` |
//! | `POST /v1/executions/{id}/jump` | `jump_to_node` `{node_id, actor?}` (`actor` defaults to `api`) |
//! | `GET /v1/executions/{id}/events?event_type=&limit=&after=` | `list_events`: `{data, paging: {after}}` (`after` is an event `seq`) |
//! | `GET /v1/events/{event_id}` | `get_event` (`event_id` is `<execution id>:<seq>`) |
//!
//! **The API fails closed.** `/v1` is served only when [`ServerState::with_api`] gave it at least
//! one bearer token; every request needs `Authorization: Bearer <token>` (compared in constant
//! time, 401 otherwise). Operations on a conversation run through [`Worker::with_conversation`],
//! in the conversation's order with webhooks and timers, in this process and across processes.
//!
//! Errors are `{"error": {"code", "message"}}` with the status of [`status_for`]: `not_found`
//! 404, `invalid_request` 400, `conflict` 409, `invalid_transition` 409, `flow_inactive` 422,
//! `unauthorized` 401, `forbidden` 403, `payload_too_large` 413, `unavailable` 503, `internal`
//! 500. Bodies are limited ([`Limits`]). The engine redacts what it returns; the server adds no
//! execution data of its own, and never echoes the app secret, the verify token or an API token.
//!
//! [`serve`] runs the router and the worker, with header-read and request timeouts and a bound
//! on connections, and shuts down without losing an accepted message.

mod api;
mod http;
mod webhook;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use switchboard_runtime::Engine;
use switchboard_runtime::worker::Worker;

pub use switchboard_whatsapp::Status as DeliveryStatus;

pub use api::status_for;

/// Sizes and times the server holds to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest webhook body (default 1 MiB; larger: 413).
    pub webhook_body: usize,
    /// Largest API request body (default 64 KiB; larger: 413).
    pub api_body: usize,
    /// Largest `variables` + `context` of a start, or `variables` of a resume, as JSON (default
    /// 16 KiB; larger: 422).
    pub variables: usize,
    /// Time a client has to send a request's headers before its connection is closed (default
    /// 10 s).
    pub header_read_timeout: Duration,
    /// Time a request may take before it is answered 503 (default 60 s).
    pub request_timeout: Duration,
    /// Connections served at once; more are closed as they arrive (default 1024).
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            webhook_body: 1024 * 1024,
            api_body: 64 * 1024,
            variables: 16 * 1024,
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            max_connections: 1024,
        }
    }
}

/// Who may use the executions API, and with which business numbers.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ApiAccess {
    /// Bearer tokens, any of which opens the API. Empty: the API is not served.
    pub tokens: Vec<String>,
    /// The business numbers (`phone_number_id`) a start may use. A start naming none uses the
    /// engine's default number, which must be listed too; an empty list allows only that
    /// default.
    pub phone_number_ids: Vec<String>,
}

impl std::fmt::Debug for ApiAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiAccess")
            .field("tokens", &format_args!("[{} redacted]", self.tokens.len()))
            .field("phone_number_ids", &self.phone_number_ids)
            .finish()
    }
}

/// What the handlers share: the worker (and its engine), the WhatsApp credentials, the API
/// access and the limits.
///
/// The credentials are passed in (the caller reads them from its environment); `Debug` does not
/// show them.
#[derive(Clone)]
pub struct ServerState {
    worker: Worker,
    app_secret: Arc<[u8]>,
    verify_token: Arc<str>,
    api: Option<Arc<ApiAccess>>,
    limits: Limits,
    on_status: Option<StatusHook>,
}

/// Receives the delivery statuses of signed webhooks ([`ServerState::on_status`]).
pub type StatusHook = Arc<dyn Fn(&DeliveryStatus) + Send + Sync>;

impl std::fmt::Debug for ServerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerState")
            .field("limits", &self.limits)
            .field("api", &self.api)
            .finish_non_exhaustive()
    }
}

impl ServerState {
    /// State for a worker, the WhatsApp app secret (signs webhooks) and the verify token (the
    /// subscription handshake). An empty secret or token refuses every webhook or handshake.
    /// The executions API is off until [`ServerState::with_api`].
    pub fn new(worker: Worker, app_secret: &str, verify_token: &str) -> ServerState {
        ServerState {
            worker,
            app_secret: Arc::from(app_secret.as_bytes()),
            verify_token: Arc::from(verify_token),
            api: None,
            limits: Limits::default(),
            on_status: None,
        }
    }

    /// Serves the executions API to holders of one of `access.tokens` (builder style). Without
    /// a token the API stays off.
    pub fn with_api(mut self, access: ApiAccess) -> ServerState {
        let tokens: Vec<String> = access
            .tokens
            .into_iter()
            .filter(|t| !t.is_empty())
            .collect();
        self.api = (!tokens.is_empty()).then(|| {
            Arc::new(ApiAccess {
                tokens,
                phone_number_ids: access.phone_number_ids,
            })
        });
        self
    }

    /// Calls `hook` with every delivery status (`sent`, `delivered`, `read`, `failed`) of a
    /// signed webhook, in order, before the webhook is answered (builder style). Keep it quick.
    /// Statuses are also recorded on their outbox records and as `message_status` events.
    pub fn on_status(
        mut self,
        hook: impl Fn(&DeliveryStatus) + Send + Sync + 'static,
    ) -> ServerState {
        self.on_status = Some(Arc::new(hook));
        self
    }

    /// Sets the limits (builder style).
    pub fn with_limits(mut self, limits: Limits) -> ServerState {
        self.limits = limits;
        self
    }

    /// The limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Whether the executions API is served.
    pub fn api_enabled(&self) -> bool {
        self.api.is_some()
    }

    /// The worker.
    pub fn worker(&self) -> &Worker {
        &self.worker
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        self.worker.engine()
    }
}

/// The router of every route (see the [module documentation](self)); the `/v1` routes only
/// when the API is on.
pub fn router(state: ServerState) -> Router {
    let limits = state.limits.clone();
    let webhooks = Router::new()
        .route(
            "/webhooks/whatsapp",
            get(webhook::handshake).post(webhook::receive),
        )
        .layer(DefaultBodyLimit::max(limits.webhook_body));
    let mut app = Router::new().merge(webhooks);
    if state.api.is_some() {
        let api = Router::new()
            .route("/v1/executions", post(api::start).get(api::list))
            .route("/v1/executions/{id}", get(api::get_one))
            .route("/v1/executions/{id}/messages", get(api::messages))
            .route("/v1/executions/{id}/resume", post(api::resume))
            .route("/v1/executions/{id}/status", post(api::status))
            .route("/v1/executions/{id}/jump", post(api::jump))
            .route("/v1/executions/{id}/events", get(api::events))
            .route("/v1/events/{id}", get(api::get_event))
            .layer(axum::middleware::from_fn_with_state(
                state.clone(),
                api::authorize,
            ))
            .layer(DefaultBodyLimit::max(limits.api_body));
        app = app.merge(api);
    }
    app.fallback(api::no_route)
        .layer(axum::middleware::from_fn_with_state(
            limits.request_timeout,
            http::request_timeout,
        ))
        .with_state(state)
}

/// Serves [`router`]`(state)` on `listener`, and runs the state's worker, until `shutdown`
/// completes.
///
/// Connections: a client gets [`Limits::header_read_timeout`] to send its headers, a request
/// [`Limits::request_timeout`] to be answered, and at most [`Limits::max_connections`] are
/// served at once. On shutdown: the listener stops accepting, requests in flight are answered
/// (a webhook answered 200 has its items in the store), the worker stops taking work and lets
/// the conversations it is processing finish their turns (each commits before anything it
/// sends), and then the function returns. What is queued or scheduled stays in the store for
/// the next start.
pub async fn serve<F>(
    listener: tokio::net::TcpListener,
    state: ServerState,
    shutdown: F,
) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let worker = state.worker.clone();
    let running = tokio::spawn({
        let worker = worker.clone();
        let mut stopped = stopped.clone();
        async move {
            worker
                .run(async move {
                    let _ = stopped.wait_for(|s| *s).await;
                })
                .await;
        }
    });
    let limits = state.limits.clone();
    let served = http::serve_connections(listener, router(state), &limits, shutdown).await;
    let _ = stop.send(true);
    let _ = running.await;
    served
}
