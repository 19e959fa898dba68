//! `switchboard-server`: the HTTP server (axum) — WhatsApp webhooks and the executions API of
//! runtime-semantics §10 in front of an [`Inbox`] (and through it an
//! [`switchboard_runtime::Engine`]). It depends on `switchboard-runtime` (the engine and the
//! inbox), `switchboard-whatsapp` (webhook parsing and signatures) and `axum`; it must not
//! depend on a store, a language model or any other adapter crate (the engine it is handed
//! carries those), and the model, the validator and the runtime must never depend on it.
//!
//! | route | what |
//! |---|---|
//! | `GET /webhooks/whatsapp` | the `hub.challenge` handshake ([`verify_subscription`](switchboard_whatsapp::verify_subscription)): 200 with the challenge, else 403 |
//! | `POST /webhooks/whatsapp` | `X-Hub-Signature-256` checked on the raw body first (401, nothing processed), then [`parse_webhook`](switchboard_whatsapp::parse_webhook) (400 when malformed), delivery statuses handed to [`ServerState::on_status`], and every message handed to [`Inbox::receive`] in order: 200 `{"received": n}` once each message's turn has committed (or been held by the debounce window) |
//! | `POST /v1/executions` | `start_execution` (a [`StartRequest`](switchboard_runtime::StartRequest)): 201 `{execution_id, tracking_id, status}` |
//! | `GET /v1/executions/{id}` | `get_execution` |
//! | `GET /v1/executions?flow=&conversation_id=&status=&waiting_reason=&created_after=&created_before=&limit=&after=&before=` | `list_executions`: `{data, paging: {after, before}}`, newest first (`flow` is the flow id); `after` pages to older executions, `before` to newer ones |
//! | `POST /v1/executions/{id}/resume` | `resume_execution` `{message?, variables?}` |
//! | `POST /v1/executions/{id}/status` | `update_status` `{status}` |
//! | `POST /v1/executions/{id}/jump` | `jump_to_node` `{node_id, actor?}` (`actor` defaults to `api`) |
//! | `GET /v1/executions/{id}/events?event_type=&limit=&after=` | `list_events`: `{data, paging: {after}}` (`after` is an event `seq`) |
//! | `GET /v1/events/{event_id}` | `get_event` (`event_id` is `<execution id>:<seq>`) |
//!
//! Errors are `{"error": {"code", "message"}}` with the status of [`status_for`]: `not_found`
//! 404, `invalid_request` 400, `conflict` 409, `invalid_transition` 409, `flow_inactive` 422,
//! `unauthorized` 401, `forbidden` 403, `payload_too_large` 413, `internal` 500. Every route has
//! a request body limit ([`DEFAULT_BODY_LIMIT`] unless [`ServerState::with_body_limit`]). The
//! engine redacts what it returns; the server adds no execution data of its own, and never
//! echoes the app secret or the verify token.
//!
//! [`serve`] runs the router with a background ticker (wait timeouts and due debounced batches)
//! and shuts down without losing an accepted message.

mod api;
mod webhook;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use switchboard_runtime::Engine;
use switchboard_runtime::inbox::Inbox;

pub use switchboard_whatsapp::Status as DeliveryStatus;

pub use api::status_for;

/// The default request body limit: 1 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

/// The default interval of the background ticker of [`serve`].
pub const DEFAULT_TICK: Duration = Duration::from_secs(1);

/// What the handlers share: the inbox (and its engine) and the WhatsApp credentials.
///
/// The credentials are passed in (the caller reads them from its environment); `Debug` does not
/// show them.
#[derive(Clone)]
pub struct ServerState {
    inbox: Inbox,
    app_secret: Arc<[u8]>,
    verify_token: Arc<str>,
    body_limit: usize,
    tick: Duration,
    on_status: Option<StatusHook>,
}

/// Receives the delivery statuses of signed webhooks ([`ServerState::on_status`]).
pub type StatusHook = Arc<dyn Fn(&DeliveryStatus) + Send + Sync>;

impl std::fmt::Debug for ServerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerState")
            .field("body_limit", &self.body_limit)
            .field("tick", &self.tick)
            .finish_non_exhaustive()
    }
}

impl ServerState {
    /// State for an inbox, the WhatsApp app secret (signs webhooks) and the verify token (the
    /// subscription handshake). An empty secret or token refuses every webhook or handshake.
    pub fn new(inbox: Inbox, app_secret: &str, verify_token: &str) -> ServerState {
        ServerState {
            inbox,
            app_secret: Arc::from(app_secret.as_bytes()),
            verify_token: Arc::from(verify_token),
            body_limit: DEFAULT_BODY_LIMIT,
            tick: DEFAULT_TICK,
            on_status: None,
        }
    }

    /// Calls `hook` with every delivery status (`sent`, `delivered`, `read`, `failed`) of a
    /// signed webhook, in order, before the webhook is answered (builder style). Keep it quick:
    /// hand the status to a channel or a store of your own. Without a hook, statuses are only
    /// logged (`failed` ones at `warn`, with their Graph error codes).
    pub fn on_status(
        mut self,
        hook: impl Fn(&DeliveryStatus) + Send + Sync + 'static,
    ) -> ServerState {
        self.on_status = Some(Arc::new(hook));
        self
    }

    /// Sets the request body limit in bytes (larger bodies get 413).
    pub fn with_body_limit(mut self, bytes: usize) -> ServerState {
        self.body_limit = bytes;
        self
    }

    /// Sets the interval of the background ticker of [`serve`].
    pub fn with_tick(mut self, every: Duration) -> ServerState {
        self.tick = every.max(Duration::from_millis(1));
        self
    }

    /// The inbox.
    pub fn inbox(&self) -> &Inbox {
        &self.inbox
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        self.inbox.engine()
    }
}

/// The router of every route (see the [module documentation](self)).
pub fn router(state: ServerState) -> Router {
    let limit = state.body_limit;
    Router::new()
        .route(
            "/webhooks/whatsapp",
            get(webhook::handshake).post(webhook::receive),
        )
        .route("/v1/executions", post(api::start).get(api::list))
        .route("/v1/executions/{id}", get(api::get_one))
        .route("/v1/executions/{id}/resume", post(api::resume))
        .route("/v1/executions/{id}/status", post(api::status))
        .route("/v1/executions/{id}/jump", post(api::jump))
        .route("/v1/executions/{id}/events", get(api::events))
        .route("/v1/events/{id}", get(api::get_event))
        .fallback(api::no_route)
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

/// Serves [`router`]`(state)` on `listener` until `shutdown` completes.
///
/// A background task calls [`Engine::fire_due_timers`] and [`Inbox::flush_due`] every tick
/// ([`ServerState::with_tick`]). On shutdown: new connections stop, requests in flight finish
/// (a webhook answered 200 has handed its messages to the inbox), the ticker stops between two
/// ticks (never in the middle of a turn), and then every batch still held by the debounce window
/// is dispatched at once with [`Inbox::flush_all`]: the window is *ignored*, not waited out, so
/// shutdown is prompt and no accepted message is lost (a burst cut short is answered as one
/// turn). Errors of the ticker and of that final flush are not reported (the engine records
/// failures in its store); the result is the listener's.
pub async fn serve<F>(
    listener: tokio::net::TcpListener,
    state: ServerState,
    shutdown: F,
) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let ticker = tokio::spawn(tick(state.clone(), stopped));
    let served = axum::serve(listener, router(state.clone()))
        .with_graceful_shutdown(shutdown)
        .await;
    let _ = stop.send(true);
    let _ = ticker.await;
    drain(state.inbox()).await;
    served
}

/// Dispatches every held batch (a failing batch does not keep the others waiting).
async fn drain(inbox: &Inbox) {
    let mut rounds = inbox.pending() + 1;
    while inbox.pending() > 0 && rounds > 0 {
        let _ = inbox.flush_all().await;
        rounds -= 1;
    }
}

async fn tick(state: ServerState, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut interval = tokio::time::interval(state.tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = stop.changed() => break,
        }
        if *stop.borrow() {
            break;
        }
        let _ = state.engine().fire_due_timers().await;
        let _ = state.inbox().flush_due().await;
    }
}
