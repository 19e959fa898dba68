//! `switchboard serve`: the HTTP server (WhatsApp webhooks and the executions API) over the
//! flows of a directory.
//!
//! Every flow file of `--flows DIR` (`*.yaml`, `*.yml`, `*.json`, in file-name order) is
//! registered under its file stem, with an `api_call` trigger and an inbound-message trigger on
//! the business number (`--phone-number-id`); a new conversation starts the first of them. A
//! flow with error diagnostics refuses the start. The WhatsApp app secret and verify token come
//! from `WHATSAPP_APP_SECRET` and `WHATSAPP_VERIFY_TOKEN` (unset: every webhook, or handshake,
//! is refused). Outbound messages go to the offline recording messenger: `switchboard.toml`
//! has no `[whatsapp]` section yet, so nothing reaches the Cloud API. `[llm]` is honoured.
//! Ctrl-C shuts down gracefully (see [`switchboard_adapters::server::serve`]).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use switchboard_adapters::SqliteStore;
use switchboard_adapters::server::{ServerState, serve};
use switchboard_runtime::engine::UniqueIds;
use switchboard_runtime::inbox::Inbox;
use switchboard_runtime::offline::{OfflineAdapters, SystemClock};
use switchboard_runtime::state::TriggerType;
use switchboard_runtime::store::{ExecutionStore, MemoryStore};
use switchboard_runtime::{Engine, EngineConfig, FlowDefinition, Trigger};

use crate::chat::load_flow;
use crate::config::Config;
use crate::session::BUSINESS_NUMBER;

/// Arguments of `switchboard serve`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A directory of flow files; each is registered under its file stem.
    #[arg(long, value_name = "DIR")]
    pub flows: PathBuf,
    /// The address to listen on (port 0: any free port; the address is printed).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Where executions live: `memory` or `sqlite://PATH`.
    #[arg(long, value_name = "sqlite://PATH|memory", default_value = "memory")]
    pub store: String,
    /// A `switchboard.toml` (today: the language models of `[llm]`).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The WhatsApp business number (`phone_number_id`) the inbound triggers listen on.
    #[arg(long, value_name = "ID", default_value = BUSINESS_NUMBER)]
    pub phone_number_id: String,
}

/// The store named by `--store`.
pub fn open_store(spec: &str) -> anyhow::Result<Arc<dyn ExecutionStore>> {
    if spec == "memory" {
        return Ok(Arc::new(MemoryStore::new()));
    }
    match spec.strip_prefix("sqlite://") {
        Some(path) if !path.is_empty() => {
            let store = SqliteStore::open(path)
                .map_err(|e| anyhow::anyhow!("cannot open the SQLite store {path}: {e}"))?;
            Ok(Arc::new(store))
        }
        _ => bail!("--store must be `memory` or `sqlite://PATH`, not `{spec}`"),
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

/// An engine with every flow of `args.flows` registered and triggered.
pub fn engine(args: &Args) -> anyhow::Result<Engine> {
    let config = match &args.config {
        Some(path) => Config::read(path)?,
        None => Config::default(),
    };
    let offline = OfflineAdapters::default();
    let mut adapters = offline.adapters();
    adapters.clock = Arc::new(SystemClock);
    adapters.ids = Arc::new(UniqueIds::default());
    if let Some(model) = config.language_model()? {
        adapters.model = model;
    }
    let engine = Engine::builder()
        .adapters(adapters)
        .store(open_store(&args.store)?)
        .config(EngineConfig {
            default_phone_number_id: args.phone_number_id.clone(),
            ..EngineConfig::default()
        })
        .build();
    for path in flow_files(&args.flows)? {
        let Some(id) = path.file_stem().and_then(|s| s.to_str()) else {
            bail!("{}: the file name is not UTF-8", path.display());
        };
        let flow = match load_flow(&path)? {
            Ok(flow) => flow,
            Err(report) => bail!("{} has errors:\n{report}", path.display()),
        };
        engine
            .register_flow(FlowDefinition {
                id: id.to_owned(),
                slug: None,
                version: "1".into(),
                flow,
            })
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        for (trigger_type, phone_number_id) in [
            (
                TriggerType::InboundMessage,
                Some(args.phone_number_id.clone()),
            ),
            (TriggerType::ApiCall, None),
        ] {
            engine.add_trigger(Trigger {
                flow_id: id.to_owned(),
                trigger_type,
                phone_number_id,
                active: true,
            });
        }
    }
    Ok(engine)
}

/// Runs `switchboard serve` until Ctrl-C; returns the exit status.
pub async fn main(args: Args, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<u8> {
    let engine = engine(&args)?;
    let secret = std::env::var("WHATSAPP_APP_SECRET").unwrap_or_default();
    let token = std::env::var("WHATSAPP_VERIFY_TOKEN").unwrap_or_default();
    if secret.is_empty() {
        writeln!(
            err,
            "warning: WHATSAPP_APP_SECRET is not set: every webhook will be refused (401)"
        )?;
    }
    if token.is_empty() {
        writeln!(
            err,
            "warning: WHATSAPP_VERIFY_TOKEN is not set: the subscription handshake will fail (403)"
        )?;
    }
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    writeln!(out, "listening on http://{addr}")?;
    out.flush()?;
    let state = ServerState::new(Inbox::new(engine), &secret, &token);
    serve(listener, state, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
    .context("the server failed")?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores() {
        assert!(open_store("memory").is_ok());
        assert!(open_store("postgres://x").is_err());
        assert!(open_store("sqlite://").is_err());
    }

    #[test]
    fn every_valid_flow_registers() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/flows/valid");
        let args = Args {
            flows: dir.clone(),
            listen: "127.0.0.1:0".into(),
            store: "memory".into(),
            config: None,
            phone_number_id: BUSINESS_NUMBER.into(),
        };
        assert!(engine(&args).is_ok());
        assert!(!flow_files(&dir).unwrap().is_empty());
    }
}
