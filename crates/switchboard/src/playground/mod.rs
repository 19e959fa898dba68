//! `switchboard playground`: a page, served by the binary, to look at a flow and talk to it.
//!
//! The page (HTML, JavaScript and CSS embedded with `include_str!`: no CDN, no Node at run
//! time) shows the diagram drawn by `switchboard-graph` with the validator's diagnostics, a
//! WhatsApp-like chat, and Events, Variables and Errors tabs. It talks to a small JSON API
//! (docs/graph-and-playground.md): `GET /api/state?since=N` long-polls for the whole state,
//! and `POST /api/{message,reply,clock,restart,workflow,reload}` act. The conversation runs on a
//! [`Session`](crate::session::Session) (the same engine `switchboard chat` builds: offline adapters and a manual clock
//! unless `--config` names real ones; the messenger always stays in the page).
//!
//! It binds loopback by default, refuses requests whose `Host` is not the address it serves
//! (DNS rebinding), takes JSON bodies only (a cross-site form cannot post) of at most
//! [`BODY_LIMIT`] bytes, and bounds what it keeps (chat lines, replayed actions).

mod state;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::{Mutex, watch};

use crate::session::Action;
use state::Play;

/// The largest request body accepted.
pub const BODY_LIMIT: usize = 16 * 1024;
/// The longest text message accepted (characters).
pub const TEXT_LIMIT: usize = 4096;

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");

/// Arguments of `switchboard playground`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A flow file, a directory of flow files, or a Kapso project (workflows/*/definition.json).
    #[arg(value_name = "FLOW|PROJECT", default_value = ".")]
    pub path: PathBuf,
    /// The address to serve on (port 0: any free port). Loopback unless you say otherwise.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8787")]
    pub listen: SocketAddr,
    /// A `switchboard.toml`: real language models, functions, HTTP and MCP instead of the
    /// offline fakes. Messages are never sent to WhatsApp.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// A directory of `<function>.json` answers for function nodes (offline mode).
    #[arg(long, value_name = "DIR")]
    pub functions: Option<PathBuf>,
    /// The contact's phone number (E.164); changeable in the page.
    #[arg(long, value_name = "+E164", default_value = "+14155550100")]
    pub phone: String,
    /// The contact's profile name; changeable in the page.
    #[arg(long, default_value = "Alex")]
    pub name: String,
    /// Start with this workflow of a project.
    #[arg(long, value_name = "NAME")]
    pub workflow: Option<String>,
}

/// What the handlers share.
#[derive(Clone)]
struct App {
    play: Arc<Mutex<Play>>,
    version: watch::Sender<u64>,
    hosts: Arc<Vec<String>>,
}

impl App {
    /// Bumps the version after a change, waking the long polls.
    fn changed(&self, play: &mut Play) {
        play.version += 1;
        self.version.send_replace(play.version);
    }
}

/// Runs `switchboard playground` until Ctrl-C.
pub async fn main(args: Args) -> anyhow::Result<u8> {
    crate::logging::init(
        "warn",
        crate::logging::Redactor::from_env(std::iter::empty::<&str>()),
    );
    let config = match &args.config {
        Some(path) => Some(Arc::new(crate::config::Config::read(path)?)),
        None => None,
    };
    let play = Play::open(&args, config).await?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    let (tx, _) = watch::channel(play.version);
    let app = App {
        play: Arc::new(Mutex::new(play)),
        version: tx,
        hosts: Arc::new(allowed_hosts(addr)),
    };
    tokio::spawn(watch_files(app.clone()));
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        writeln!(out, "playground on http://{addr}/")?;
        out.flush()?;
    }
    axum::serve(listener, router(app))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(0)
}

/// The `Host` values a request may carry: the served address, and `localhost` on loopback.
fn allowed_hosts(addr: SocketAddr) -> Vec<String> {
    let mut hosts = vec![addr.to_string()];
    if addr.ip().is_loopback() {
        hosts.push(format!("localhost:{}", addr.port()));
        hosts.push(format!("127.0.0.1:{}", addr.port()));
        hosts.push(format!("[::1]:{}", addr.port()));
    }
    hosts
}

fn router(app: App) -> Router {
    Router::new()
        .route(
            "/",
            get(|| async { page(INDEX_HTML, "text/html; charset=utf-8") }),
        )
        .route(
            "/app.js",
            get(|| async { page(APP_JS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/app.css",
            get(|| async { page(APP_CSS, "text/css; charset=utf-8") }),
        )
        .route("/api/state", get(state_handler))
        .route("/api/message", post(message))
        .route("/api/reply", post(reply))
        .route("/api/clock", post(clock))
        .route("/api/restart", post(restart))
        .route("/api/workflow", post(workflow))
        .route("/api/reload", post(reload))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn_with_state(app.clone(), guard))
        .with_state(app)
}

fn page(body: &'static str, kind: &'static str) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

/// Refuses a request whose `Host` is not ours (a page elsewhere resolving its name to
/// 127.0.0.1), and a body declared larger than the limit.
async fn guard(State(app): State<App>, req: Request, next: Next) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if !app.hosts.iter().any(|h| h == host) {
        return error(StatusCode::FORBIDDEN, "unexpected Host header");
    }
    next.run(req).await
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({"error": message}))).into_response()
}

#[derive(Deserialize)]
struct Since {
    since: Option<u64>,
}

/// The whole state; with `since=N` equal to the current version, waits (up to 20 s) for a
/// change first.
async fn state_handler(State(app): State<App>, Query(q): Query<Since>) -> Response {
    if let Some(since) = q.since {
        let mut rx = app.version.subscribe();
        if *rx.borrow_and_update() == since {
            let _ = tokio::time::timeout(Duration::from_secs(20), rx.changed()).await;
        }
    }
    let play = app.play.lock().await;
    axum::Json(play.state().await).into_response()
}

/// Runs one action and answers with the new state.
async fn act(app: &App, action: Action) -> Response {
    let mut play = app.play.lock().await;
    let result = play.act(action).await;
    app.changed(&mut play);
    match result {
        Ok(()) => axum::Json(play.state().await).into_response(),
        Err(e) => error(StatusCode::CONFLICT, &format!("{e:#}")),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MessageBody {
    text: String,
}

async fn message(State(app): State<App>, axum::Json(b): axum::Json<MessageBody>) -> Response {
    let text = b.text.trim();
    if text.is_empty() || text.chars().count() > TEXT_LIMIT {
        return error(StatusCode::BAD_REQUEST, "a message is 1 to 4096 characters");
    }
    act(&app, Action::Text(text.to_owned())).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplyBody {
    id: String,
    kind: Option<String>,
}

async fn reply(State(app): State<App>, axum::Json(b): axum::Json<ReplyBody>) -> Response {
    let kind = match b.kind.as_deref() {
        None | Some("button_reply") => "button_reply",
        Some("list_reply") => "list_reply",
        Some(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "kind is button_reply or list_reply",
            );
        }
    };
    if b.id.is_empty() || b.id.chars().count() > 256 {
        return error(StatusCode::BAD_REQUEST, "a reply id is 1 to 256 characters");
    }
    let r = {
        let play = app.play.lock().await;
        play.reply(kind, &b.id)
    };
    match r {
        Some(r) => act(&app, Action::Reply(r)).await,
        None => error(StatusCode::CONFLICT, "the flow is not running"),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClockBody {
    seconds: f64,
}

async fn clock(State(app): State<App>, axum::Json(b): axum::Json<ClockBody>) -> Response {
    if !b.seconds.is_finite() || b.seconds <= 0.0 || b.seconds > 366.0 * 86_400.0 {
        return error(
            StatusCode::BAD_REQUEST,
            "seconds: more than 0, at most a year",
        );
    }
    act(&app, Action::Clock(b.seconds)).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RestartBody {
    phone: Option<String>,
    name: Option<String>,
}

async fn restart(State(app): State<App>, axum::Json(b): axum::Json<RestartBody>) -> Response {
    let mut play = app.play.lock().await;
    let result = play.restart(b.phone.as_deref(), b.name.as_deref()).await;
    app.changed(&mut play);
    respond(&play, result).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WorkflowBody {
    name: String,
}

async fn workflow(State(app): State<App>, axum::Json(b): axum::Json<WorkflowBody>) -> Response {
    let mut play = app.play.lock().await;
    let result = play.select(&b.name).await;
    app.changed(&mut play);
    respond(&play, result).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReloadBody {
    /// `true`: replay the conversation's user turns on the new flow; `false`: restart.
    keep: bool,
}

async fn reload(State(app): State<App>, axum::Json(b): axum::Json<ReloadBody>) -> Response {
    let mut play = app.play.lock().await;
    let result = play.reload(b.keep).await;
    app.changed(&mut play);
    respond(&play, result).await
}

async fn respond(play: &Play, result: anyhow::Result<()>) -> Response {
    match result {
        Ok(()) => axum::Json(play.state().await).into_response(),
        Err(e) => error(StatusCode::BAD_REQUEST, &format!("{e:#}")),
    }
}

/// Checks the flow files twice a second; a change redraws the diagram and diagnostics at
/// once, and the page offers to replay or restart the conversation.
async fn watch_files(app: App) {
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tick.tick().await;
        let mut play = app.play.lock().await;
        if play.poll_files() {
            app.changed(&mut play);
        }
    }
}

/// A JSON value for an error message (used by the state).
pub(crate) fn message_value(e: &anyhow::Error) -> Value {
    json!(format!("{e:#}"))
}
