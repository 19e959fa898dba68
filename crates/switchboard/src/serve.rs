//! `switchboard serve`: the HTTP server (WhatsApp webhooks and the executions API) over the
//! flows of a directory.
//!
//! Every flow file of `--flows DIR` (`*.yaml`, `*.yml`, `*.json`, in file-name order) is
//! registered under its file stem with an `api_call` trigger; one of them — `--inbound FLOW`,
//! else the only one, else the first in file-name order (with a warning) — also gets the
//! inbound-message trigger on the business number (`--phone-number-id`, else
//! `[whatsapp] phone_number_id`, else a test number). A flow with error diagnostics refuses the
//! start. The WhatsApp app secret and verify token come from the environment variables
//! `[whatsapp]` names (default `WHATSAPP_APP_SECRET`, `WHATSAPP_VERIFY_TOKEN`; unset: every
//! webhook, or handshake, is refused). Outbound messages go to the Cloud API of `[whatsapp]`;
//! without that section `serve` refuses to start unless `--offline` is given, in which case
//! they are logged (at `info`, target `switchboard::outbound`) and dropped. Every other family
//! is named explicitly: `[llm]` and `[functions]` when configured, a real HTTP and MCP client
//! (with `[http]`/`[mcp]` limits or the defaults), environment secrets, the system clock;
//! with `--offline`, families the configuration leaves out get their offline fakes; without
//! it they fail their calls (and a warning says so at start). Ctrl-C or SIGTERM shuts down gracefully (see
//! [`switchboard_server::serve`]). Logs go to stderr (`SWITCHBOARD_LOG`, default
//! `info`), redacted ([`crate::logging`]).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, bail};
use async_trait::async_trait;
use switchboard_runtime::adapters::{
    AdapterResult, Messenger, OutboundBody, OutboundMessage, ProjectEvent, ProjectEventSink,
    SendReceipt,
};
use switchboard_runtime::adapters::{EnvSecrets, Family, SystemClock, UniqueIds};
use switchboard_runtime::state::TriggerType;
use switchboard_runtime::worker::{Worker, WorkerConfig};
use switchboard_runtime::{Engine, EngineConfig, FlowDefinition, Trigger};
use switchboard_server::{ApiAccess, Limits, ServerState, serve};

use crate::chat::load_flow;
use crate::config::{
    Config, DEFAULT_APP_SECRET_ENV, DEFAULT_VERIFY_TOKEN_ENV, ServerSection, seconds,
};
use crate::logging::{Redactor, env_references};
use crate::session::BUSINESS_NUMBER;
use crate::store::StoreSpec;

/// Arguments of `switchboard serve`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A Kapso project (a directory holding `kapso.yaml`): every workflow is served, started by
    /// the triggers of its `workflow.yaml`. Or a directory of flow files (as `--flows`).
    #[arg(value_name = "PROJECT_DIR", conflicts_with = "flows")]
    pub path: Option<PathBuf>,
    /// A directory of flow files; each is registered under its file stem.
    #[arg(long, value_name = "DIR")]
    pub flows: Option<PathBuf>,
    /// The address to listen on (port 0: any free port; the address is printed).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Where executions live: `memory`, `sqlite://PATH`, `postgres://…`, or `env:NAME` (the
    /// value of a variable, so a password stays off the command line).
    #[arg(long, value_name = "STORE", default_value = "memory")]
    pub store: String,
    /// Apply the store's migrations before serving (PostgreSQL); without it the schema must
    /// already be current.
    #[arg(long)]
    pub migrate: bool,
    /// A `switchboard.toml` (docs/configuration.md).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The WhatsApp business number (`phone_number_id`) the inbound trigger of a flow folder
    /// listens on, and API starts use by default (default: `[whatsapp] phone_number_id`, else
    /// a project's first inbound number, else a test number).
    #[arg(long, value_name = "ID")]
    pub phone_number_id: Option<String>,
    /// For a folder of flows: the flow (file stem) a new conversation starts (default: the only
    /// flow, else the first). A project's workflow.yaml triggers choose instead.
    #[arg(long, value_name = "FLOW")]
    pub inbound: Option<String>,
    /// Serve without WhatsApp and with offline fakes for every family the configuration does
    /// not set: outbound messages are logged and dropped. For trying `serve` out; without it,
    /// `serve` refuses to start with no `[whatsapp]` section.
    #[arg(long)]
    pub offline: bool,
}

/// A messenger for a server without `[whatsapp]`: logs each message (kind and addresses, not
/// its content) and drops it, so nothing accumulates.
#[derive(Debug, Default)]
struct LoggedMessenger {
    sent: AtomicU64,
}

#[async_trait]
impl Messenger for LoggedMessenger {
    async fn send(&self, message: OutboundMessage) -> AdapterResult<SendReceipt> {
        let n = self.sent.fetch_add(1, Ordering::Relaxed) + 1;
        let kind = match &message.body {
            OutboundBody::Text { .. } => "text",
            OutboundBody::Template { .. } => "template",
            OutboundBody::Interactive(_) => "interactive",
            OutboundBody::Media { .. } => "media",
        };
        tracing::info!(
            target: "switchboard::outbound",
            from = %message.from,
            to = %message.to,
            execution_id = %message.execution_id,
            node_id = %message.node_id,
            kind,
            "message not sent: no [whatsapp] configuration"
        );
        Ok(SendReceipt {
            message_id: format!("wamid.offline.{n}"),
        })
    }
}

/// Project events of `emit_event` nodes: logged (name and execution), then dropped.
#[derive(Debug, Default)]
struct LoggedEvents;

#[async_trait]
impl ProjectEventSink for LoggedEvents {
    async fn emit(&self, event: ProjectEvent) -> AdapterResult<()> {
        tracing::info!(
            target: "switchboard::project_events",
            event_name = %event.event_name,
            execution_id = %event.execution_id,
            flow_id = %event.flow_id,
            "project event"
        );
        Ok(())
    }
}

/// The flow files of a directory, in file-name order.
pub fn flow_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && p.extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"))
        })
        .collect();
    files.sort();
    if files.is_empty() {
        bail!("no flow files (*.yaml, *.yml, *.json) in {}", dir.display());
    }
    Ok(files)
}

/// What `serve` runs: the engine and what the process needs around it.
pub struct Prepared {
    /// The engine, flows registered and triggered.
    pub engine: Engine,
    /// The configuration read (default when there is none).
    pub config: Config,
    /// Redacts every secret the process knows of from logs.
    pub redactor: Redactor,
    /// What inbound messages start (a flow, or each project workflow with its number).
    pub inbound: String,
    /// Printed before serving (`warning: …`).
    pub warnings: Vec<String>,
}

/// An engine with every flow of the directory (or every workflow of the project) registered
/// and triggered.
pub fn prepare(args: &Args) -> anyhow::Result<Prepared> {
    let config = match &args.config {
        Some(path) => Config::read(path)?,
        None => Config::default(),
    };
    let Some(dir) = args.path.clone().or_else(|| args.flows.clone()) else {
        bail!("give a Kapso project (PROJECT_DIR) or a directory of flows (--flows DIR)");
    };
    let project = match switchboard_project::locate(&dir) {
        Some((root, _)) => {
            if args.inbound.is_some() {
                bail!(
                    "--inbound is for a directory of flows: in a Kapso project the triggers of each workflow.yaml choose"
                );
            }
            let validate = crate::project::options(Some(&config));
            let (project, errors) = crate::project::open(&root, None, &validate)?;
            if let Some(report) = errors {
                bail!(
                    "the project {} has error diagnostics:\n{report}",
                    crate::project::shown(&root)
                );
            }
            Some(project)
        }
        None => None,
    };
    let inbound_triggers = project
        .as_ref()
        .map(switchboard_project::inbound_triggers)
        .unwrap_or_default();
    let phone_number_id = args
        .phone_number_id
        .clone()
        .or_else(|| {
            config
                .whatsapp
                .as_ref()
                .and_then(|w| w.phone_number_id.clone())
        })
        .or_else(|| {
            inbound_triggers
                .first()
                .and_then(|t| t.phone_number_id.clone())
        })
        .unwrap_or_else(|| BUSINESS_NUMBER.to_owned());
    let mut warnings = Vec::new();
    let server = config.server.clone().unwrap_or_default();
    let store = StoreSpec::parse(&args.store)?.open(&config)?;
    // Every family is named here: production adapters where the configuration has them (or
    // needs none), offline fakes only with --offline, and otherwise nothing — a family nobody
    // configured fails its calls rather than faking them.
    let mut builder = Engine::builder(store.clone())
        .config(EngineConfig {
            default_phone_number_id: phone_number_id.clone(),
            resend_after_ms: server
                .resend_after_seconds
                .map(|s| seconds("[server] resend_after_seconds", s))
                .transpose()?
                .map_or(60_000, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
            model_ids: config.model_ids(),
            templates: config.template_limits()?,
            ..EngineConfig::default()
        })
        .clock(Arc::new(SystemClock))
        .ids(Arc::new(UniqueIds::default()))
        .secrets(Arc::new(EnvSecrets))
        .project_events(Arc::new(LoggedEvents));
    builder = match config.messenger()? {
        Some(m) => builder.messenger(Arc::new(m)),
        None if args.offline => {
            warnings.push(
                "--offline and no [whatsapp] configuration: outbound messages are logged, not sent"
                    .to_owned(),
            );
            builder.messenger(Arc::new(LoggedMessenger::default()))
        }
        None => bail!(
            "no messenger: add a [whatsapp] section to the configuration (--config FILE) so \
             replies reach WhatsApp, or pass --offline to try serve with outbound messages \
             logged and dropped"
        ),
    };
    if let Some(model) = config.language_model()? {
        builder = builder.model(model);
    }
    let http = config.http_client()?;
    let mut secret_values = Vec::new();
    let functions = match &project {
        // A project's own functions run locally, after those [functions] configures; their
        // env.KV lives in the store.
        Some(project) => {
            let (functions, values) = crate::project::functions(
                project,
                Some(&config),
                store.clone(),
                &http,
                Some(Arc::new(http.clone())),
            )?;
            secret_values = values;
            functions
        }
        // Local functions of [functions] dir keep env.KV in the store too.
        None => config.function_invoker_with(&http, Some(store.clone()))?,
    };
    if let Some(functions) = functions {
        builder = builder.functions(functions);
    }
    if config.http.is_some() || !args.offline {
        builder = builder.http(Arc::new(http));
    }
    if config.mcp.is_some() || !args.offline {
        builder = builder.mcp(Arc::new(config.mcp_client()?));
    }
    if args.offline {
        builder = builder.offline();
    }
    let engine = builder.build();
    for family in engine.unconfigured() {
        warnings.push(match family {
            Family::Model => "no [llm] configuration: AI decides fall back to their first \
                              condition, AI fields and agents fail"
                .to_owned(),
            Family::Functions => "no [functions] configuration: function nodes fail".to_owned(),
            other => format!("no {} configured: its calls fail", other.noun()),
        });
    }
    let mut secret_names = config.secret_variables();
    let inbound = match &project {
        Some(project) => {
            register_project(&engine, project, &inbound_triggers, &mut warnings)?;
            for w in &project.workflows {
                if let Some(bytes) = &w.definition {
                    secret_names.extend(env_references(&String::from_utf8_lossy(bytes)));
                }
            }
            if inbound_triggers.is_empty() {
                "none (no active workflow has an active inbound_message trigger)".to_owned()
            } else {
                inbound_triggers
                    .iter()
                    .map(|t| {
                        format!(
                            "{} on {}",
                            t.flow_id,
                            t.phone_number_id.as_deref().unwrap_or("?")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        }
        None => register_flows(
            &engine,
            args,
            &dir,
            &phone_number_id,
            &mut warnings,
            &mut secret_names,
        )?,
    };
    if config.whatsapp.is_some() {
        let served: Vec<switchboard_model::Flow> = match &project {
            Some(project) => project
                .workflows
                .iter()
                .filter_map(|w| w.load().and_then(Result::ok).map(|l| l.flow))
                .collect(),
            None => flow_files(&dir)?
                .iter()
                .filter_map(|p| load_flow(p).ok().and_then(Result::ok))
                .collect(),
        };
        for id in template_ids(&served, &config) {
            warnings.push(format!(
                "template id `{id}` is not in [whatsapp.templates]: it is sent as the template's name, in the configured language"
            ));
        }
    }
    secret_names.extend([
        app_secret_env(&config).to_owned(),
        verify_token_env(&config).to_owned(),
    ]);
    let redactor = Redactor::new(
        secret_names
            .iter()
            .filter_map(|n| std::env::var(n).ok())
            .chain(secret_values),
    );
    Ok(Prepared {
        engine,
        config,
        redactor,
        inbound,
        warnings,
    })
}

/// Registers a project's workflows (by slug and uuid, each startable through the API) and the
/// inbound triggers of its active workflows; says what will not start.
fn register_project(
    engine: &Engine,
    project: &switchboard_project::Project,
    inbound: &[Trigger],
    warnings: &mut Vec<String>,
) -> anyhow::Result<()> {
    let registered = switchboard_project::register(engine, project)?;
    for (slug, why) in &registered.refused {
        warnings.push(format!("workflow `{slug}` is not served: {why}"));
    }
    for t in inbound {
        engine.add_trigger(t.clone())?;
    }
    for w in &project.workflows {
        let listens = w.triggers().iter().any(|t| {
            t.kind == switchboard_validator::project::TriggerKind::InboundMessage && t.active
        });
        if listens && w.status() != switchboard_validator::project::WorkflowStatus::Active {
            warnings.push(format!(
                "workflow `{}` is {}: its inbound_message triggers start nothing (API starts still work)",
                w.slug,
                w.status().as_str()
            ));
        }
    }
    for (slug, kind) in switchboard_project::unsupported_triggers(project) {
        warnings.push(format!(
            "workflow `{slug}`: `{kind}` triggers are not run by Switchboard yet"
        ));
    }
    Ok(())
}

/// Registers the flow files of a directory (each under its file stem, with an API trigger)
/// and the inbound trigger of `--inbound` (else the only or first flow); returns that flow.
fn register_flows(
    engine: &Engine,
    args: &Args,
    dir: &Path,
    phone_number_id: &str,
    warnings: &mut Vec<String>,
    secret_names: &mut Vec<String>,
) -> anyhow::Result<String> {
    let mut ids = Vec::new();
    let mut paths: Vec<PathBuf> = Vec::new();
    for path in flow_files(dir)? {
        let Some(id) = path.file_stem().and_then(|s| s.to_str()) else {
            bail!("{}: the file name is not UTF-8", path.display());
        };
        // A flow's id is its file stem: `a.json` and `a.yaml` would be one flow twice.
        if let Some(k) = ids.iter().position(|x: &String| x == id) {
            bail!(
                "two flow files have the id `{id}`: {} and {} (a flow's id is its file name \
                 without the extension): rename or remove one",
                paths[k].display(),
                path.display()
            );
        }
        paths.push(path.clone());
        let flow = match load_flow(&path)? {
            Ok(flow) => flow,
            Err(report) => bail!("{} has errors:\n{report}", path.display()),
        };
        if let Ok(text) = std::fs::read_to_string(&path) {
            secret_names.extend(env_references(&text));
        }
        engine
            .register_flow(FlowDefinition {
                id: id.to_owned(),
                slug: None,
                version: "1".into(),
                flow,
            })
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        engine.add_trigger(Trigger {
            flow_id: id.to_owned(),
            trigger_type: TriggerType::ApiCall,
            phone_number_id: None,
            active: true,
        })?;
        ids.push(id.to_owned());
    }
    let inbound = match &args.inbound {
        Some(flow) if ids.contains(flow) => flow.clone(),
        Some(flow) => bail!(
            "--inbound {flow}: no such flow in {} (flows: {})",
            dir.display(),
            ids.join(", ")
        ),
        None => {
            if ids.len() > 1 {
                warnings.push(format!(
                    "{} flows and no --inbound: new conversations start `{}` (the first by file name)",
                    ids.len(),
                    ids[0]
                ));
            }
            ids[0].clone()
        }
    };
    engine.add_trigger(Trigger {
        flow_id: inbound.clone(),
        trigger_type: TriggerType::InboundMessage,
        phone_number_id: Some(phone_number_id.to_owned()),
        active: true,
    })?;
    Ok(inbound)
}

/// The `send_template` ids of the served flows that `[whatsapp.templates]` does not map (each
/// once, sorted).
fn template_ids(flows: &[switchboard_model::Flow], config: &Config) -> Vec<String> {
    let mapped = config
        .whatsapp
        .as_ref()
        .map(|w| w.templates.clone())
        .unwrap_or_default();
    let mut ids = std::collections::BTreeSet::new();
    for flow in flows {
        for node in &flow.nodes {
            if let switchboard_model::NodeConfig::SendTemplate(t) = node.config()
                && let Some(id) = t.template_id.as_deref().filter(|id| !id.trim().is_empty())
                && !mapped.contains_key(id)
            {
                ids.insert(id.to_owned());
            }
        }
    }
    ids.into_iter().collect()
}

/// The worker of `[server]`.
fn worker_config(server: &ServerSection) -> anyhow::Result<WorkerConfig> {
    let mut c = WorkerConfig::default();
    if let Some(n) = server.worker_concurrency {
        if n == 0 {
            bail!("[server] worker_concurrency must be positive");
        }
        c.concurrency = n;
    }
    if let Some(s) = server.lease_seconds {
        c.lease = seconds("[server] lease_seconds", s)?;
    }
    Ok(c)
}

/// The limits of `[server]`.
fn limits(server: &ServerSection) -> anyhow::Result<Limits> {
    let mut l = Limits::default();
    let positive = |what: &str, n: usize| {
        if n == 0 {
            bail!("[server] {what} must be positive");
        }
        Ok(n)
    };
    if let Some(n) = server.webhook_body_bytes {
        l.webhook_body = positive("webhook_body_bytes", n)?;
    }
    if let Some(n) = server.api_body_bytes {
        l.api_body = positive("api_body_bytes", n)?;
    }
    if let Some(n) = server.variables_bytes {
        l.variables = positive("variables_bytes", n)?;
    }
    if let Some(n) = server.max_connections {
        l.max_connections = positive("max_connections", n)?;
    }
    if let Some(s) = server.header_read_timeout_seconds {
        l.header_read_timeout = seconds("[server] header_read_timeout_seconds", s)?;
    }
    if let Some(s) = server.request_timeout_seconds {
        l.request_timeout = seconds("[server] request_timeout_seconds", s)?;
    }
    Ok(l)
}

fn app_secret_env(config: &Config) -> &str {
    config
        .whatsapp
        .as_ref()
        .map_or(DEFAULT_APP_SECRET_ENV, |w| w.app_secret_env())
}

fn verify_token_env(config: &Config) -> &str {
    config
        .whatsapp
        .as_ref()
        .map_or(DEFAULT_VERIFY_TOKEN_ENV, |w| w.verify_token_env())
}

/// Completes on Ctrl-C or (on Unix) SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    {
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            () = ctrl_c => {}
            () = term => {}
        }
    }
    #[cfg(not(unix))]
    ctrl_c.await;
    tracing::info!("shutting down: finishing requests and held messages");
}

/// Runs `switchboard serve` until Ctrl-C or SIGTERM; returns the exit status.
pub async fn main(args: Args, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<u8> {
    {
        // A PostgreSQL schema is migrated when asked, else it must already be current.
        let config = match &args.config {
            Some(path) => Config::read(path)?,
            None => Config::default(),
        };
        let spec = StoreSpec::parse(&args.store)?;
        if args.migrate {
            writeln!(err, "{}", spec.migrate(&config).await?)?;
        } else {
            spec.check(&config).await?;
        }
    }
    let prepared = prepare(&args)?;
    crate::logging::init("info", prepared.redactor.clone());
    let secret_env = app_secret_env(&prepared.config).to_owned();
    let token_env = verify_token_env(&prepared.config).to_owned();
    let secret = std::env::var(&secret_env).unwrap_or_default();
    let token = std::env::var(&token_env).unwrap_or_default();
    let mut warnings = prepared.warnings;
    if secret.is_empty() {
        warnings.push(format!(
            "{secret_env} is not set: every webhook will be refused (401)"
        ));
    }
    if token.is_empty() {
        warnings.push(format!(
            "{token_env} is not set: the subscription handshake will fail (403)"
        ));
    }
    for w in &warnings {
        writeln!(err, "warning: {w}")?;
    }
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    writeln!(out, "listening on http://{addr}")?;
    out.flush()?;
    // Routes and a first request to try, on stderr: stdout carries only the address line.
    write!(
        err,
        "{}",
        routes_help(
            &addr.to_string(),
            &token_env,
            prepared
                .config
                .api
                .as_ref()
                .map(|a| a.token_envs.as_slice()),
            &prepared.inbound
        )
    )?;
    let store = StoreSpec::parse(&args.store)?.describe();
    tracing::info!(%addr, inbound = %prepared.inbound, %store, "serving");
    let server = prepared.config.server.clone().unwrap_or_default();
    let worker = Worker::new(prepared.engine, worker_config(&server)?);
    let mut state = ServerState::new(worker, &secret, &token).with_limits(limits(&server)?);
    match &prepared.config.api {
        Some(api) => {
            let mut tokens = Vec::new();
            for name in &api.token_envs {
                let value = std::env::var(name).unwrap_or_default();
                if value.is_empty() {
                    bail!("[api] token_envs: the variable `{name}` is not set");
                }
                tokens.push(value);
            }
            if tokens.is_empty() {
                bail!("[api] token_envs names no variable: the API needs a token");
            }
            state = state.with_api(ApiAccess {
                tokens,
                phone_number_ids: api.phone_number_ids.clone(),
            });
        }
        None => writeln!(
            err,
            "note: the executions API (/v1) is off: add an [api] section with token_envs to serve it"
        )?,
    }
    serve(listener, state, shutdown_signal())
        .await
        .context("the server failed")?;
    tracing::info!("stopped");
    Ok(0)
}

/// What `serve` answers and a first `curl` to try each part, printed at start.
fn routes_help(addr: &str, verify_env: &str, api_tokens: Option<&[String]>, flow: &str) -> String {
    let host = match addr.strip_prefix("0.0.0.0:") {
        Some(port) => format!("127.0.0.1:{port}"),
        None => addr.to_owned(),
    };
    let mut s = format!(
        "routes:\n  GET  /webhooks/whatsapp  Meta's subscription handshake (hub.verify_token = ${verify_env})\n  \
         POST /webhooks/whatsapp  WhatsApp messages and statuses (signed with the app secret)\n"
    );
    match api_tokens.and_then(|t| t.first()) {
        Some(token) => s.push_str(&format!(
            "  POST /v1/executions, GET /v1/executions[/ID[/events|/messages]], POST /v1/executions/ID/{{resume,status,jump}}, GET /v1/events/ID  the executions API (Authorization: Bearer ${token})\n\
             try:\n  curl \"http://{host}/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=${verify_env}&hub.challenge=42\"\n  \
             curl -H \"Authorization: Bearer ${token}\" -H 'content-type: application/json' \\\n    \
             -d '{{\"flow\": \"{flow}\", \"phone_number\": \"+14155550100\"}}' http://{host}/v1/executions\n  \
             (a start whose flow sends free text to a contact who has not written in the last 24 hours fails: GET /v1/executions/ID shows error_details.kind outside_service_window; open such flows with a template, see docs/serving.md)\n"
        )),
        None => s.push_str(&format!(
            "  /v1/...  the executions API: off (add an [api] section)\n\
             try:\n  curl \"http://{host}/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=${verify_env}&hub.challenge=42\"\n"
        )),
    }
    s
}

#[cfg(test)]
mod tests {

    #[test]
    fn routes_help_shows_a_first_request_for_each_part() {
        let on = routes_help(
            "0.0.0.0:8080",
            "WHATSAPP_VERIFY_TOKEN",
            Some(&["SWITCHBOARD_API_TOKEN".to_owned()]),
            "support",
        );
        assert!(on.contains("curl \"http://127.0.0.1:8080/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=$WHATSAPP_VERIFY_TOKEN&hub.challenge=42\""), "{on}");
        assert!(
            on.contains("Authorization: Bearer $SWITCHBOARD_API_TOKEN"),
            "{on}"
        );
        assert!(on.contains("\"flow\": \"support\""), "{on}");
        assert!(on.contains("http://127.0.0.1:8080/v1/executions"), "{on}");
        assert!(on.contains("outside_service_window"), "{on}");
        let off = routes_help("127.0.0.1:9000", "V", None, "support");
        assert!(off.contains("/v1/...  the executions API: off"), "{off}");
        assert!(!off.contains("Bearer"), "{off}");
    }
    use super::*;

    /// The valid fixtures in a directory of their own, each file under a distinct stem (a file
    /// whose stem is taken, as `all_sdk_nodes.yaml` next to `all_sdk_nodes.json`, is copied as
    /// `all_sdk_nodes_yaml.yaml`): serve refuses two files with one flow id.
    fn valid_flows_dir(name: &str) -> PathBuf {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/flows/valid");
        let dir =
            std::env::temp_dir().join(format!("switchboard-serve-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut stems = std::collections::HashSet::new();
        for path in flow_files(&src).unwrap() {
            let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
            let ext = path.extension().unwrap().to_string_lossy().into_owned();
            let stem = if stems.insert(stem.clone()) {
                stem
            } else {
                format!("{stem}_{ext}")
            };
            assert!(stems.insert(format!("{stem}.")), "{stem}");
            std::fs::copy(&path, dir.join(format!("{stem}.{ext}"))).unwrap();
        }
        dir
    }

    #[test]
    fn every_valid_flow_registers() {
        let dir = valid_flows_dir("every");
        let args = Args {
            path: None,
            flows: Some(dir.clone()),
            listen: "127.0.0.1:0".into(),
            store: "memory".into(),
            config: None,
            phone_number_id: None,
            inbound: Some("echo".into()),
            offline: true,
            migrate: false,
        };
        let prepared = prepare(&args).unwrap();
        assert_eq!(prepared.inbound, "echo");
        let unknown = Args {
            inbound: Some("nope".into()),
            ..args
        };
        let err = prepare(&unknown).err().unwrap().to_string();
        assert!(err.contains("--inbound nope"), "{err}");
        assert!(!flow_files(&dir).unwrap().is_empty());
    }

    #[test]
    fn a_project_is_served_by_its_triggers() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/projects/bakery");
        let args = Args {
            path: Some(dir),
            flows: None,
            listen: "127.0.0.1:0".into(),
            store: "memory".into(),
            config: None,
            phone_number_id: None,
            inbound: None,
            offline: true,
            migrate: false,
        };
        let prepared = prepare(&args).unwrap();
        assert_eq!(
            prepared.inbound,
            "order-bot on 111000111, support-desk on 222000222"
        );
        for expected in [
            "workflow `holiday-hours` is paused: its inbound_message triggers start nothing",
            "workflow `new-menu` is draft: its inbound_message triggers start nothing",
            "workflow `support-desk`: `whatsapp_event` triggers are not run by Switchboard yet",
        ] {
            assert!(
                prepared.warnings.iter().any(|w| w.starts_with(expected)),
                "{expected}: {:?}",
                prepared.warnings
            );
        }
        let err = prepare(&Args {
            inbound: Some("order-bot".into()),
            ..args
        })
        .err()
        .unwrap()
        .to_string();
        assert!(
            err.contains("--inbound is for a directory of flows"),
            "{err}"
        );
    }

    #[test]
    fn without_a_messenger_serve_refuses_unless_offline() {
        let dir = valid_flows_dir("messenger");
        let args = Args {
            path: None,
            flows: Some(dir),
            listen: "127.0.0.1:0".into(),
            store: "memory".into(),
            config: None,
            phone_number_id: None,
            inbound: Some("echo".into()),
            offline: false,
            migrate: false,
        };
        let err = prepare(&args).err().unwrap().to_string();
        assert!(
            err.contains("[whatsapp]") && err.contains("--offline"),
            "{err}"
        );
        let offline = prepare(&Args {
            offline: true,
            ..args
        })
        .unwrap();
        assert!(offline.engine.unconfigured().is_empty());
    }
}
