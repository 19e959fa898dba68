//! `switchboard-project`: a Kapso project — the repository `kapso pull` writes — on a
//! Switchboard engine: every workflow registered by its slug (and its Kapso uuid), the triggers
//! of each `workflow.yaml`, the functions of `functions/<slug>/` in the local JavaScript runner
//! with their `function.yaml` limits, and their environment (the process environment and an
//! optional `.env` at the project root).
//!
//! Reading and validating the project is the validator's (`switchboard_validator::fs::project`,
//! re-exported here); this crate only puts a loaded project to work, for `switchboard chat`,
//! `test` and `serve`. It depends on the model, the validator's file-system front end, the
//! runtime and `switchboard-js`; it must not depend on an HTTP, SQL or MCP crate (the caller
//! hands over the HTTP client and the store).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use switchboard_runtime::{Engine, store::MemoryStore};
//!
//! let project = switchboard_project::Project::load("fixtures/projects/bakery".as_ref())?;
//! let store = Arc::new(MemoryStore::new());
//! let functions = switchboard_project::functions(
//!     &project,
//!     switchboard_project::FunctionOptions {
//!         env: switchboard_project::environment(&project.root, None)?,
//!         kv_store: Some(store.clone()),
//!         ..Default::default()
//!     },
//! )?;
//! let mut builder = Engine::builder(store).offline();
//! if let Some(f) = functions {
//!     builder = builder.functions(Arc::new(f));
//! }
//! let engine = builder.build();
//! let registered = switchboard_project::register(&engine, &project)?;
//! for trigger in switchboard_project::inbound_triggers(&project) {
//!     engine.add_trigger(trigger)?;
//! }
//! # Ok(()) }
//! ```

mod env;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use switchboard_js::{FunctionLimits, JsFunctionInvoker, JsOptions};
use switchboard_runtime::adapters::{
    AdapterError, AdapterResult, FunctionCall, FunctionInvoker, HttpClient,
};
use switchboard_runtime::state::TriggerType;
use switchboard_runtime::store::ExecutionStore;
use switchboard_runtime::{Engine, FailureKind, FlowDefinition, Trigger};
use switchboard_validator::project::{TriggerKind, WorkflowStatus};

pub use env::{environment, parse_dotenv};
pub use switchboard_validator::fs::RunError;
pub use switchboard_validator::fs::project::{Function, Project, Workflow, locate, locate_slug};

/// Why a project could not be put to work. Messages never contain the value of a variable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProjectError {
    /// The project could not be read.
    #[error(transparent)]
    Read(#[from] RunError),
    /// `.env` cannot be read or has a line that is not `NAME=value`.
    #[error("{path}: {message}")]
    Env {
        /// The file.
        path: String,
        /// What is wrong (a line number, never a value).
        message: String,
    },
    /// A variable `[functions] env` names is set neither in the environment nor in `.env`.
    #[error("the variable `{name}` is set neither in the environment nor in the project's .env")]
    MissingVariable {
        /// Its name.
        name: String,
    },
    /// The local functions cannot be loaded (a syntax error, a missing handler, …).
    #[error("the project's functions: {0}")]
    Functions(#[from] switchboard_js::JsError),
    /// The engine refused something (a poisoned registry).
    #[error(transparent)]
    Engine(#[from] switchboard_runtime::EngineError),
}

/// What [`register`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Registered {
    /// The workflows registered, by slug, in folder order.
    pub workflows: Vec<String>,
    /// The workflows left out, with why: no definition, a definition that does not load, or
    /// error diagnostics.
    pub refused: Vec<(String, String)>,
}

/// Registers every workflow of `project` whose definition loads without error diagnostics: its
/// id is its slug, its Kapso uuid (from the remote map) a second name, so `call` nodes reach it
/// by `workflow_slug` or `workflow_id`. Each gets an `api_call` trigger (Kapso's API starts any
/// workflow). Inbound triggers are the caller's: [`inbound_triggers`] for a server, a chat's own
/// number for `chat`.
pub fn register(engine: &Engine, project: &Project) -> Result<Registered, ProjectError> {
    let mut out = Registered::default();
    for w in &project.workflows {
        let flow = match w.load() {
            None => {
                out.refused
                    .push((w.slug.clone(), "it has no definition".into()));
                continue;
            }
            Some(Err(e)) => {
                out.refused.push((w.slug.clone(), e.to_string()));
                continue;
            }
            Some(Ok(loaded)) => loaded.flow,
        };
        let def = FlowDefinition {
            id: w.slug.clone(),
            slug: w.id.clone(),
            version: "1".into(),
            flow,
        };
        match engine.register_flow(def) {
            Ok(()) => {}
            Err(switchboard_runtime::RegisterError::Engine(e)) => return Err(e.into()),
            Err(e) => {
                out.refused.push((w.slug.clone(), e.to_string()));
                continue;
            }
        }
        engine.add_trigger(Trigger {
            flow_id: w.slug.clone(),
            trigger_type: TriggerType::ApiCall,
            phone_number_id: None,
            active: true,
        })?;
        out.workflows.push(w.slug.clone());
    }
    Ok(out)
}

/// The `inbound_message` triggers a server runs: the active ones of the workflows whose status
/// is `active` (a draft or paused workflow is not started by messages), each on its number.
pub fn inbound_triggers(project: &Project) -> Vec<Trigger> {
    project
        .workflows
        .iter()
        .filter(|w| w.status() == WorkflowStatus::Active)
        .flat_map(|w| {
            w.triggers()
                .iter()
                .filter(|t| t.kind == TriggerKind::InboundMessage && t.active)
                .map(|t| Trigger {
                    flow_id: w.slug.clone(),
                    trigger_type: TriggerType::InboundMessage,
                    phone_number_id: t.phone_number_id.clone(),
                    active: true,
                })
        })
        .collect()
}

/// The triggers a server accepts but does not run (`whatsapp_event`, `project_event`), as
/// `(workflow slug, trigger type)`.
pub fn unsupported_triggers(project: &Project) -> Vec<(String, &'static str)> {
    project
        .workflows
        .iter()
        .flat_map(|w| {
            w.triggers()
                .iter()
                .filter(|t| {
                    matches!(
                        t.kind,
                        TriggerKind::WhatsappEvent | TriggerKind::ProjectEvent
                    )
                })
                .map(|t| (w.slug.clone(), t.kind.as_str()))
        })
        .collect()
}

/// How the project's functions run.
#[derive(Clone, Default)]
pub struct FunctionOptions {
    /// Their environment (`env.NAME`, `Deno.env`): see [`environment`].
    pub env: BTreeMap<String, String>,
    /// Where `env.KV` lives (the engine's store, so it survives restarts); `None`: in memory.
    pub kv_store: Option<Arc<dyn ExecutionStore>>,
    /// The client `fetch` uses (the one of webhook nodes); `None`: no network.
    pub http: Option<Arc<dyn HttpClient>>,
    /// The time a call may take when its `function.yaml` says nothing (default 30 s).
    pub timeout: Option<Duration>,
    /// The memory limit when its `function.yaml` says nothing, in bytes (default 64 MiB).
    pub memory_limit: Option<usize>,
}

impl std::fmt::Debug for FunctionOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FunctionOptions")
            .field("env", &self.env.keys().collect::<Vec<_>>())
            .field("kv_store", &self.kv_store.is_some())
            .field("http", &self.http.is_some())
            .field("timeout", &self.timeout)
            .field("memory_limit", &self.memory_limit)
            .finish()
    }
}

/// The project's functions in the local JavaScript runner (`None` when it has none): each
/// `functions/<slug>/` with the entrypoint of its `function.yaml` (default `index.js`) and the
/// `runtime_config` limits (`timeout` seconds, `memory` MB), reachable by slug and, through the
/// remote map, by Kapso uuid. Loading checks every file (a syntax error is an error now).
pub fn functions(
    project: &Project,
    options: FunctionOptions,
) -> Result<Option<JsFunctionInvoker>, ProjectError> {
    if project.functions.is_empty() {
        return Ok(None);
    }
    let mut js = JsOptions {
        env: options.env,
        http: options.http,
        kv_store: options.kv_store,
        ..JsOptions::default()
    };
    if let Some(t) = options.timeout {
        js.timeout = t;
    }
    if let Some(m) = options.memory_limit {
        js.memory_limit = m;
    }
    let mut ids = HashMap::new();
    let mut limits = HashMap::new();
    for f in &project.functions {
        if let Some(id) = &f.id {
            ids.insert(id.clone(), f.slug.clone());
        }
        let own = FunctionLimits {
            timeout: f
                .settings
                .timeout_seconds
                .and_then(|s| Duration::try_from_secs_f64(s).ok()),
            memory_limit: f
                .settings
                .memory_mb
                .map(|mb| (mb * 1024.0 * 1024.0).min(usize::MAX as f64) as usize),
        };
        if own != FunctionLimits::default() {
            limits.insert(f.slug.clone(), own);
        }
    }
    js.ids = ids;
    js.limits = limits;
    let files = project
        .functions
        .iter()
        .map(|f| (f.slug.clone(), f.entrypoint.clone()));
    Ok(Some(JsFunctionInvoker::from_files(files, js)?))
}

/// Function invokers tried in order: a call goes to the first that knows the function (one
/// answering `not_found` passes it on), e.g. configured HTTP endpoints, then the project's own.
pub struct FunctionChain(pub Vec<Arc<dyn FunctionInvoker>>);

#[async_trait]
impl FunctionInvoker for FunctionChain {
    async fn invoke(&self, call: &FunctionCall<'_>) -> AdapterResult<Value> {
        let mut last = None;
        for invoker in &self.0 {
            match invoker.invoke(call).await {
                Err(e) if e.kind == FailureKind::NotFound => last = Some(e),
                other => return other,
            }
        }
        Err(last.unwrap_or_else(|| {
            AdapterError::new(FailureKind::NotFound, "no function is configured")
        }))
    }
}

/// `true` when `path` is (in) a Kapso project, or — from inside one — names one of its
/// workflows.
pub fn is_project_path(path: &Path) -> bool {
    if path.exists() {
        locate(path).is_some()
    } else {
        path.to_str()
            .filter(|s| !s.contains(['/', '\\']))
            .and_then(locate_slug)
            .is_some()
    }
}
