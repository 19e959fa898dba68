//! Scripted conversations: a flow, the user's turns, the adapters' answers and expectations, run
//! end to end offline, producing a transcript (outbound payloads, events, final variables).
//!
//! The format (`fixtures/conversations/*.yaml`) is documented in `docs/embedding.md`. A script is
//! pure data; [`run_script_file`] reads the script and the flow files it names, and
//! [`run_script`] takes a file loader so it can run anywhere. [`function_answers`] reads a
//! directory of canned function answers (`switchboard chat --functions DIR`).
//!
//! A script may run a Kapso project instead of flow files: `project: <dir>` (relative to the
//! script) and `flow: <workflow slug>`. Every workflow of the project is then registered (by
//! slug and Kapso uuid), and the project's functions run in the local JavaScript runner
//! (`switchboard-project`) with their `.env`, `env.KV` kept in the script's store and `fetch`
//! answered by the script's `http` entries; functions the script answers itself (`functions:`)
//! are answered by the script first.
//!
//! This crate is a test and tooling kit on top of the runtime's offline adapters: it is used by
//! `switchboard test`, `switchboard chat` and the fixture tests, and must not be a dependency of
//! the runtime or of any adapter crate. It reads files (the only I/O here) but reaches no network.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use switchboard_runtime::adapters::{AdapterError, ChatResponse, HttpResponse, ToolSpec};
use switchboard_runtime::config::Delays;
use switchboard_runtime::failure::{FailureKind, UnknownFailureKind};
use switchboard_runtime::offline::{
    CannedResponse, MapSecrets, OfflineAdapters, ScriptedFunctions,
};
use switchboard_runtime::state::{Status, ToolCall, TriggerType};
use switchboard_runtime::store::{ExecutionFilter, ExecutionStore, MemoryStore};
use switchboard_runtime::{
    Adapters, Engine, EngineConfig, FlowDefinition, InboundMessage, Reply, ResumeRequest,
    StartRequest, Trigger,
};

/// Why a script could not run, or what it expected that did not happen.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScriptError {
    /// A file could not be read.
    #[error("cannot read {path}: {message}")]
    Io {
        /// The path.
        path: String,
        /// The error.
        message: String,
    },
    /// The script is malformed.
    #[error("invalid script: {0}")]
    Invalid(String),
    /// A flow did not load or has error diagnostics.
    #[error("flow {path}: {message}")]
    Flow {
        /// The flow file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// An expectation failed.
    #[error("turn {turn}: {message}")]
    Expectation {
        /// 1-based turn index (0: the final expectations).
        turn: usize,
        /// What differs.
        message: String,
    },
}

/// A conversation script.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Script {
    /// What it shows.
    #[serde(default)]
    pub name: Option<String>,
    /// The flow file, relative to the script; with [`Script::project`], the slug of one of the
    /// project's workflows.
    pub flow: String,
    /// A Kapso project directory (holding `kapso.yaml`), relative to the script: its workflows
    /// are the flows, its functions run locally.
    #[serde(default)]
    pub project: Option<String>,
    /// The flow's id (default: the file stem).
    #[serde(default)]
    pub flow_id: Option<String>,
    /// Other flows (for `call` nodes): id → file.
    #[serde(default)]
    pub flows: BTreeMap<String, String>,
    /// `inbound` (default: the first user turn starts it) or `api` (started with `start`).
    #[serde(default)]
    pub trigger: Option<String>,
    /// API start: variables and context.
    #[serde(default)]
    pub start: Option<StartSpec>,
    /// The contact.
    #[serde(default)]
    pub contact: Option<ContactSpec>,
    /// Secrets (`${ENV:NAME}`).
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
    /// Function answers: name → answer, or `{answers: [...]}` played in order.
    #[serde(default)]
    pub functions: BTreeMap<String, Value>,
    /// Canned HTTP responses.
    #[serde(default)]
    pub http: Vec<HttpSpec>,
    /// Queued model answers, in order (the offline model answers when the queue is empty).
    #[serde(default)]
    pub llm: Vec<LlmSpec>,
    /// Scripted MCP tools.
    #[serde(default)]
    pub mcp: Vec<McpSpec>,
    /// `max_steps_per_turn` override.
    #[serde(default)]
    pub max_steps_per_turn: Option<i64>,
    /// The turns.
    pub turns: Vec<TurnSpec>,
    /// Expectations at the end.
    #[serde(default)]
    pub expect: Option<Expect>,
}

/// API start parameters.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartSpec {
    /// Initial `vars`.
    #[serde(default)]
    pub variables: Map<String, Value>,
    /// Extra `context`.
    #[serde(default)]
    pub context: Map<String, Value>,
}

/// The contact.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactSpec {
    /// E.164 number.
    pub phone: String,
    /// Profile name.
    #[serde(default)]
    pub name: Option<String>,
}

/// A canned HTTP response.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSpec {
    /// URL prefix.
    pub url: String,
    /// Method (any when absent).
    #[serde(default)]
    pub method: Option<String>,
    /// Status (default 200).
    #[serde(default)]
    pub status: Option<u16>,
    /// JSON body.
    #[serde(default)]
    pub json: Option<Value>,
    /// Text body.
    #[serde(default)]
    pub body: Option<String>,
    /// Extra headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// A transport error instead of a response: `{kind, message}`.
    #[serde(default)]
    pub error: Option<ErrorSpec>,
    /// Used once (default: every time).
    #[serde(default)]
    pub once: bool,
}

/// An adapter error.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorSpec {
    /// Failure kind.
    pub kind: FailureKind,
    /// Message.
    #[serde(default)]
    pub message: String,
    /// HTTP status (for `http_status`).
    #[serde(default)]
    pub status: Option<u16>,
}

impl ErrorSpec {
    fn to_error(&self) -> AdapterError {
        AdapterError {
            status: self.status,
            ..AdapterError::new(self.kind, self.message.clone())
        }
    }
}

/// A queued model answer.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlmSpec {
    /// Text.
    #[serde(default)]
    pub text: Option<String>,
    /// Tool calls.
    #[serde(default)]
    pub tool_calls: Vec<ToolCallSpec>,
    /// An error instead of an answer.
    #[serde(default)]
    pub error: Option<ErrorSpec>,
}

/// A tool call in a queued answer.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolCallSpec {
    /// Tool name.
    pub name: String,
    /// Arguments.
    #[serde(default)]
    pub arguments: Value,
}

/// A scripted MCP tool.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpSpec {
    /// Server name.
    pub server: String,
    /// Tool name.
    pub tool: String,
    /// Description.
    #[serde(default)]
    pub description: String,
    /// Result.
    #[serde(default)]
    pub result: Value,
}

/// One step of a script (a map with exactly one of these keys).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TurnSpec {
    /// The user writes this text.
    #[serde(default)]
    pub user: Option<String>,
    /// The user taps a reply button `{id, title}`.
    #[serde(default)]
    pub button: Option<ReplySpec>,
    /// The user picks a list row `{id, title}`.
    #[serde(default)]
    pub list: Option<ReplySpec>,
    /// Several messages arriving together (one debounced batch).
    #[serde(default)]
    pub batch: Option<Vec<String>>,
    /// Re-delivers the previous message id (a duplicate).
    #[serde(default)]
    pub duplicate: Option<bool>,
    /// Advances the clock by this many seconds and fires due timers.
    #[serde(default)]
    pub clock: Option<f64>,
    /// API resume.
    #[serde(default)]
    pub resume: Option<ResumeSpec>,
    /// API/operator status change.
    #[serde(default)]
    pub status: Option<String>,
    /// Operator jump to a node.
    #[serde(default)]
    pub jump: Option<String>,
    /// The next send fails with this error.
    #[serde(default)]
    pub fail_next_send: Option<ErrorSpec>,
    /// Expectations now.
    #[serde(default)]
    pub expect: Option<Expect>,
}

/// A reply.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplySpec {
    /// Id.
    pub id: String,
    /// Title.
    pub title: String,
}

/// API resume parameters.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResumeSpec {
    /// `{kind: payload, data}` or just the data.
    #[serde(default)]
    pub message: Option<Value>,
    /// Variables merged first.
    #[serde(default)]
    pub variables: Map<String, Value>,
}

/// Expectations about the main (outermost) execution.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// Status.
    #[serde(default)]
    pub status: Option<String>,
    /// Waiting reason.
    #[serde(default)]
    pub waiting_reason: Option<String>,
    /// Current node.
    #[serde(default)]
    pub node: Option<String>,
    /// These variables have these values.
    #[serde(default)]
    pub vars: Map<String, Value>,
    /// Total messages sent so far.
    #[serde(default)]
    pub sent: Option<usize>,
    /// The last text sent.
    #[serde(default)]
    pub last_text: Option<String>,
    /// The last message sent contains this (recursive subset: object keys not listed are
    /// ignored; arrays and scalars compare equal), e.g. `{parameters: {"1": "A-7"}}`.
    #[serde(default)]
    pub last_message: Option<Value>,
    /// `error_details.kind`.
    #[serde(default)]
    pub error_kind: Option<String>,
    /// Events of these types were recorded (any execution).
    #[serde(default)]
    pub events: Vec<String>,
}

/// Runs a script file: reads it and the flows it names (relative to it).
pub async fn run_script_file(path: &Path) -> Result<Value, ScriptError> {
    run_script_file_with(path, &|_, _| Ok(())).await
}

/// Changes the adapters a script runs on, and the engine configuration (e.g. the template
/// limits of a `switchboard.toml`; see [`run_script_with`]).
pub type Adapt<'a> = &'a dyn Fn(&mut Adapters, &mut EngineConfig) -> Result<(), String>;

/// [`run_script_file`] on adapters that `adapt` changes (e.g. a real language model).
pub async fn run_script_file_with(path: &Path, adapt: Adapt<'_>) -> Result<Value, ScriptError> {
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let text = read(path)?;
    let loader = move |rel: &str| read(&base.join(rel)).map(|t| (t, base.join(rel)));
    run_script_with(&text, &loader, adapt).await
}

fn read(path: &Path) -> Result<String, ScriptError> {
    std::fs::read_to_string(path).map_err(|e| ScriptError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

/// Loads `<name>.json` files of a directory as fixed function answers (read once, here): the
/// offline stand-in for a project's functions.
pub fn function_answers(dir: &Path) -> std::io::Result<ScriptedFunctions> {
    let f = ScriptedFunctions::default();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let Some(name) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        let text = std::fs::read_to_string(&path)?;
        let value: Value = serde_json::from_str(&text).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}: {e}", path.display()),
            )
        })?;
        f.answer(name, value);
    }
    Ok(f)
}

/// Parses a script (YAML or JSON).
pub fn parse_script(text: &str) -> Result<Script, ScriptError> {
    let value = switchboard_model::yaml::parse(text)
        .map_err(|e| ScriptError::Invalid(e.message))?
        .to_json();
    serde_json::from_value(value).map_err(|e| ScriptError::Invalid(e.to_string()))
}

/// Loads a file named in a script (a path relative to the script): its text and full path.
pub type Loader<'a> = &'a dyn Fn(&str) -> Result<(String, PathBuf), ScriptError>;

/// Runs a script; `load` returns a file's text and path for a path relative to the script.
pub async fn run_script(text: &str, load: Loader<'_>) -> Result<Value, ScriptError> {
    run_script_with(text, load, &|_, _| Ok(())).await
}

/// [`run_script`] on adapters that `adapt` changes after the script's own answers are set up.
/// An adapter it replaces no longer plays the script's answers for that family (a real model
/// answers instead of the queued `llm` answers), so expectations written for the scripted
/// answers may fail; outbound messages are still recorded, never sent. An error of `adapt`
/// is [`ScriptError::Invalid`].
pub async fn run_script_with(
    text: &str,
    load: Loader<'_>,
    adapt: Adapt<'_>,
) -> Result<Value, ScriptError> {
    let script = parse_script(text)?;
    let offline = OfflineAdapters::default();
    let secrets = Arc::new(MapSecrets::default());
    for (k, v) in &script.secrets {
        secrets.set(k, v);
    }
    let offline = OfflineAdapters {
        secrets: secrets.clone(),
        ..offline
    };
    setup_adapters(&script, &offline)?;
    let store = Arc::new(MemoryStore::new());
    let mut config = EngineConfig {
        default_phone_number_id: "15550001111".into(),
        max_steps_per_turn: script.max_steps_per_turn,
        // Scripts run on a manual clock: a delay moves it and the turn goes on.
        delays: Delays::Sleep,
        ..EngineConfig::default()
    };
    let mut adapters = offline.adapters();
    let project = match &script.project {
        Some(dir) => Some(open_project(&script, dir, load, &store, &mut adapters)?),
        None => None,
    };
    adapt(&mut adapters, &mut config).map_err(ScriptError::Invalid)?;
    let engine = Engine::builder(store.clone())
        .adapters(adapters)
        .config(config)
        .build();

    let main_id = match &project {
        Some(project) => {
            let registered =
                switchboard_project::register(&engine, project).map_err(|e| ScriptError::Flow {
                    path: project.root.display().to_string(),
                    message: e.to_string(),
                })?;
            let slug = project
                .workflow(&script.flow)
                .map(|w| w.slug.clone())
                .filter(|s| registered.workflows.contains(s))
                .ok_or_else(|| ScriptError::Flow {
                    path: project.root.display().to_string(),
                    message: format!(
                        "no workflow `{}` to run (workflows: {})",
                        script.flow,
                        registered.workflows.join(", ")
                    ),
                })?;
            script.flow_id.clone().unwrap_or(slug)
        }
        None => {
            let (main_text, main_path) = load(&script.flow)?;
            let main_id = script.flow_id.clone().unwrap_or_else(|| {
                main_path
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .unwrap_or("flow")
                    .to_owned()
            });
            register(&engine, &main_id, &main_text, &main_path)?;
            main_id
        }
    };
    for (id, rel) in &script.flows {
        let (t, p) = load(rel)?;
        register(&engine, id, &t, &p)?;
    }
    let pnid = "15550001111".to_owned();
    engine
        .add_trigger(Trigger {
            flow_id: main_id.clone(),
            trigger_type: TriggerType::InboundMessage,
            phone_number_id: Some(pnid.clone()),
            active: true,
        })
        .map_err(|e| ScriptError::Invalid(e.to_string()))?;
    engine
        .add_trigger(Trigger {
            flow_id: main_id.clone(),
            trigger_type: TriggerType::ApiCall,
            phone_number_id: None,
            active: true,
        })
        .map_err(|e| ScriptError::Invalid(e.to_string()))?;
    let contact = script.contact.clone().unwrap_or(ContactSpec {
        phone: "+14155550100".into(),
        name: Some("Ana".into()),
    });

    let mut steps = Vec::new();
    let mut main_exec: Option<String> = None;
    if script.trigger.as_deref() == Some("api") {
        let start = script.start.clone().unwrap_or_default();
        let r = engine
            .start_execution(StartRequest {
                flow: main_id.clone(),
                phone_number: contact.phone.clone(),
                phone_number_id: Some(pnid.clone()),
                variables: start.variables,
                context: start.context,
                request: None,
                idempotency_key: None,
            })
            .await;
        let out = outbound(&offline);
        match r {
            Ok(v) => {
                main_exec = v
                    .get("execution_id")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                steps.push(json!({"start": "api", "outbound": out}));
            }
            Err(e) => steps.push(json!({"start": "api", "error": e.to_string(), "outbound": out})),
        }
    }
    let mut counter = 0u64;
    let mut last_id = String::new();
    let mut sent_so_far: Vec<Value> = steps
        .iter()
        .flat_map(|s| s["outbound"].as_array().cloned().unwrap_or_default())
        .collect();
    for (t, turn) in script.turns.iter().enumerate() {
        let n = t + 1;
        let mut step = Map::new();
        let message = |id: String, kind: &str, text: &str, reply: Option<Reply>| InboundMessage {
            id,
            phone_number_id: pnid.clone(),
            from: contact.phone.clone(),
            profile_name: contact.name.clone(),
            kind: kind.to_owned(),
            text: text.to_owned(),
            reply,
            timestamp: None,
            interactive: None,
        };
        let mut batch = Vec::new();
        if let Some(text) = &turn.user {
            counter += 1;
            last_id = format!("wamid.in.{counter}");
            step.insert("user".into(), json!(text));
            batch.push(message(last_id.clone(), "text", text, None));
        }
        for (kind, spec) in [("button_reply", &turn.button), ("list_reply", &turn.list)] {
            if let Some(r) = spec {
                counter += 1;
                last_id = format!("wamid.in.{counter}");
                step.insert(
                    kind.replace("_reply", ""),
                    json!({"id": r.id, "title": r.title}),
                );
                let reply = Reply {
                    kind: kind.to_owned(),
                    id: r.id.clone(),
                    title: r.title.clone(),
                };
                batch.push(message(
                    last_id.clone(),
                    "interactive",
                    &r.title,
                    Some(reply),
                ));
            }
        }
        if let Some(texts) = &turn.batch {
            step.insert("batch".into(), json!(texts));
            for text in texts {
                counter += 1;
                last_id = format!("wamid.in.{counter}");
                batch.push(message(last_id.clone(), "text", text, None));
            }
        }
        if turn.duplicate == Some(true) {
            step.insert("duplicate".into(), json!(last_id));
            batch.push(message(last_id.clone(), "text", "(duplicate)", None));
        }
        if let Some(e) = &turn.fail_next_send {
            step.insert("fail_next_send".into(), json!(e.kind));
            offline.messenger.fail_next(e.to_error());
        }
        if !batch.is_empty() {
            match engine.handle_inbound(batch).await {
                Ok(d) => {
                    if let switchboard_runtime::Dispatch::Started(id) = &d
                        && main_exec.is_none()
                    {
                        main_exec = Some(id.clone());
                    }
                    step.insert(
                        "dispatch".into(),
                        serde_json::to_value(&d).unwrap_or(Value::Null),
                    );
                }
                Err(e) => {
                    step.insert("error".into(), json!(e.to_string()));
                }
            }
        }
        if let Some(secs) = turn.clock {
            offline
                .clock
                .advance(Duration::from_secs_f64(secs.max(0.0)));
            step.insert("clock".into(), json!(secs));
            match engine.fire_due_timers().await {
                Ok(n) => step.insert("timers_fired".into(), json!(n)),
                Err(e) => step.insert("error".into(), json!(e.to_string())),
            };
        }
        if let Some(r) = &turn.resume {
            step.insert(
                "resume".into(),
                json!({"message": r.message, "variables": r.variables}),
            );
            let id = innermost(&engine, main_exec.as_deref()).await;
            let message = r.message.clone().map(|m| {
                if m.get("kind").is_some() {
                    m
                } else {
                    json!({"kind": "payload", "data": m})
                }
            });
            if let Err(e) = engine
                .resume_execution(ResumeRequest {
                    execution_id: id,
                    message,
                    variables: r.variables.clone(),
                })
                .await
            {
                step.insert("error".into(), json!(e.to_string()));
            }
        }
        if let Some(s) = &turn.status {
            step.insert("status".into(), json!(s));
            let status: Status = serde_json::from_value(json!(s))
                .map_err(|e| ScriptError::Invalid(format!("turn {n}: {e}")))?;
            let id = innermost(&engine, main_exec.as_deref()).await;
            if let Err(e) = engine.update_status(&id, status).await {
                step.insert("error".into(), json!(e.to_string()));
            }
        }
        if let Some(node) = &turn.jump {
            step.insert("jump".into(), json!(node));
            let id = innermost(&engine, main_exec.as_deref()).await;
            if let Err(e) = engine.jump_to_node(&id, node, "operator").await {
                step.insert("error".into(), json!(e.to_string()));
            }
        }
        let out = outbound(&offline);
        sent_so_far.extend(out.iter().cloned());
        if !out.is_empty() {
            step.insert("outbound".into(), Value::Array(out));
        }
        if let Some(x) = &turn.expect {
            check(
                &engine,
                &sent_so_far,
                store.as_ref(),
                main_exec.as_deref(),
                x,
                n,
            )
            .await?;
        }
        steps.push(Value::Object(step));
    }
    if let Some(x) = &script.expect {
        check(
            &engine,
            &sent_so_far,
            store.as_ref(),
            main_exec.as_deref(),
            x,
            0,
        )
        .await?;
    }
    transcript(&script, &engine, &offline, store.as_ref(), steps).await
}

/// Reads the script's project (found through its `kapso.yaml`), refuses it when it has error
/// diagnostics, and puts its functions — behind the script's own answers — into `adapters`.
fn open_project(
    script: &Script,
    dir: &str,
    load: Loader<'_>,
    store: &Arc<MemoryStore>,
    adapters: &mut Adapters,
) -> Result<switchboard_project::Project, ScriptError> {
    let marker = format!("{}/kapso.yaml", dir.trim_end_matches('/'));
    let (_, marker_path) = load(&marker)?;
    let root = marker_path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let flow_error = |message: String| ScriptError::Flow {
        path: root.display().to_string(),
        message,
    };
    let project =
        switchboard_project::Project::load(&root).map_err(|e| flow_error(e.to_string()))?;
    let broken: String = project
        .check(None, &switchboard_validator::Options::default())
        .iter()
        .filter(|r| r.has_errors())
        .map(switchboard_validator::render_human)
        .collect();
    if !broken.is_empty() {
        return Err(flow_error(format!(
            "the project has error diagnostics:\n{broken}"
        )));
    }
    let env =
        switchboard_project::environment(&root, None).map_err(|e| flow_error(e.to_string()))?;
    let store: Arc<dyn ExecutionStore> = store.clone();
    let functions = switchboard_project::functions(
        &project,
        switchboard_project::FunctionOptions {
            env,
            kv_store: Some(store),
            http: Some(adapters.http.clone()),
            ..Default::default()
        },
    )
    .map_err(|e| flow_error(e.to_string()))?;
    if let Some(js) = functions {
        let mut chain: Vec<Arc<dyn switchboard_runtime::adapters::FunctionInvoker>> = Vec::new();
        if !script.functions.is_empty() {
            chain.push(adapters.functions.clone());
        }
        chain.push(Arc::new(js));
        adapters.functions = Arc::new(switchboard_project::FunctionChain(chain));
    }
    Ok(project)
}

fn register(engine: &Engine, id: &str, text: &str, path: &Path) -> Result<(), ScriptError> {
    let loaded = switchboard_model::load_bytes(text.as_bytes(), path.to_str(), &Default::default())
        .map_err(|e| ScriptError::Flow {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
    engine
        .register_flow(FlowDefinition {
            id: id.to_owned(),
            slug: None,
            version: "1".into(),
            flow: loaded.flow,
        })
        .map_err(|e| ScriptError::Flow {
            path: path.display().to_string(),
            message: e.to_string(),
        })
}

fn setup_adapters(script: &Script, offline: &OfflineAdapters) -> Result<(), ScriptError> {
    for (name, answer) in &script.functions {
        match answer.get("answers").and_then(Value::as_array) {
            Some(list) if answer.as_object().is_some_and(|m| m.len() == 1) => {
                for a in list {
                    let r = match a.get("error") {
                        Some(e) => Err(adapter_error(e)?),
                        None => Ok(a.clone()),
                    };
                    offline.functions.push(name, r);
                }
            }
            _ => match answer
                .get("error")
                .filter(|_| answer.as_object().is_some_and(|m| m.len() == 1))
            {
                Some(e) => {
                    let e = adapter_error(e)?;
                    offline.functions.register(name, move |_| Err(e.clone()));
                }
                None => offline.functions.answer(name, answer.clone()),
            },
        }
    }
    for h in &script.http {
        let response = match &h.error {
            Some(e) => Err(e.to_error()),
            None => {
                let (ct, body) = match (&h.json, &h.body) {
                    (Some(j), _) => ("application/json", j.to_string().into_bytes()),
                    (None, Some(b)) => ("text/plain", b.clone().into_bytes()),
                    (None, None) => ("text/plain", Vec::new()),
                };
                // An explicit Content-Type replaces the default one (e.g. JSON sent as text).
                let mut headers = Vec::new();
                if !h
                    .headers
                    .keys()
                    .any(|k| k.eq_ignore_ascii_case("content-type"))
                {
                    headers.push(("content-type".to_owned(), ct.to_owned()));
                }
                headers.extend(
                    h.headers
                        .iter()
                        .map(|(k, v)| (k.to_ascii_lowercase(), v.clone())),
                );
                Ok(HttpResponse {
                    status: h.status.unwrap_or(200),
                    headers,
                    body,
                })
            }
        };
        offline.http.push(CannedResponse {
            method: h.method.clone(),
            url_prefix: h.url.clone(),
            response,
            once: h.once,
        });
    }
    for (k, l) in script.llm.iter().enumerate() {
        let answer = match &l.error {
            Some(e) => Err(e.to_error()),
            None => Ok(ChatResponse {
                text: l.text.clone(),
                tool_calls: l
                    .tool_calls
                    .iter()
                    .enumerate()
                    .map(|(i, c)| ToolCall {
                        id: format!("call_{k}_{i}"),
                        name: c.name.clone(),
                        arguments: c.arguments.clone(),
                    })
                    .collect(),
            }),
        };
        offline.model.push(answer);
    }
    for m in &script.mcp {
        offline.mcp.tool(
            &m.server,
            ToolSpec {
                name: m.tool.clone(),
                description: m.description.clone(),
                parameters: json!({"type": "object"}),
            },
            m.result.clone(),
        );
    }
    Ok(())
}

/// A scripted function error `{kind?, message?, status?}` (kind `adapter` when absent).
fn adapter_error(e: &Value) -> Result<AdapterError, ScriptError> {
    let kind = match e.get("kind").and_then(Value::as_str) {
        Some(k) => k
            .parse()
            .map_err(|e: UnknownFailureKind| ScriptError::Invalid(e.to_string()))?,
        None => FailureKind::Adapter,
    };
    Ok(AdapterError {
        status: e
            .get("status")
            .and_then(Value::as_u64)
            .and_then(|s| u16::try_from(s).ok()),
        ..AdapterError::new(
            kind,
            e.get("message")
                .and_then(Value::as_str)
                .unwrap_or("scripted failure"),
        )
    })
}

fn outbound(offline: &OfflineAdapters) -> Vec<Value> {
    offline
        .messenger
        .take()
        .into_iter()
        .map(|m| {
            let mut v = serde_json::to_value(&m.body).unwrap_or(Value::Null);
            if let Value::Object(o) = &mut v {
                o.insert("to".into(), json!(m.to));
                o.insert("node".into(), json!(m.node_id));
                if m.from != "15550001111" {
                    o.insert("from".into(), json!(m.from));
                }
            }
            v
        })
        .collect()
}

/// The innermost active execution of the main one (follows children), or the main one.
async fn innermost(engine: &Engine, main: Option<&str>) -> String {
    let Some(main) = main else {
        return String::new();
    };
    let mut id = main.to_owned();
    for _ in 0..16 {
        match engine.store().execution(&id).await {
            Ok(Some(e)) => match e.child_execution_id {
                Some(c) => id = c,
                None => break,
            },
            _ => break,
        }
    }
    id
}

async fn check(
    engine: &Engine,
    sent: &[Value],
    store: &dyn ExecutionStore,
    main: Option<&str>,
    x: &Expect,
    turn: usize,
) -> Result<(), ScriptError> {
    let fail = |message: String| ScriptError::Expectation { turn, message };
    let Some(main) = main else {
        return Err(fail("no execution was started".into()));
    };
    let e = store
        .execution(main)
        .await
        .ok()
        .flatten()
        .ok_or_else(|| fail(format!("execution {main} is not stored")))?;
    if let Some(s) = &x.status
        && e.status.as_str() != s
    {
        return Err(fail(format!(
            "status is {}, expected {s}",
            e.status.as_str()
        )));
    }
    if let Some(w) = &x.waiting_reason
        && e.waiting_reason.map(|r| r.as_str()) != Some(w.as_str())
    {
        return Err(fail(format!(
            "waiting reason is {:?}, expected {w}",
            e.waiting_reason.map(|r| r.as_str())
        )));
    }
    if let Some(n) = &x.node
        && e.current_node_id.as_deref() != Some(n.as_str())
    {
        return Err(fail(format!(
            "current node is {:?}, expected {n}",
            e.current_node_id
        )));
    }
    for (k, v) in &x.vars {
        if e.vars.get(k) != Some(v) {
            return Err(fail(format!(
                "vars.{k} is {}, expected {v}",
                e.vars.get(k).map_or("absent".into(), Value::to_string)
            )));
        }
    }
    if let Some(kind) = &x.error_kind {
        let got = e
            .error_details
            .as_ref()
            .and_then(|d| d.get("kind"))
            .and_then(Value::as_str);
        if got != Some(kind.as_str()) {
            return Err(fail(format!("error kind is {got:?}, expected {kind}")));
        }
    }
    let all = engine
        .list_executions(&ExecutionFilter {
            conversation_id: Some(e.conversation_id.clone()),
            limit: 100,
            ..Default::default()
        })
        .await
        .map_err(|er| fail(er.to_string()))?;
    let mut types = Vec::new();
    for ex in &all {
        for ev in store
            .events(&ex.id, 0, 100_000, None)
            .await
            .map_err(|er| fail(er.to_string()))?
        {
            types.push(ev.event_type.as_str().to_owned());
        }
    }
    for t in &x.events {
        if !types.contains(t) {
            return Err(fail(format!("no `{t}` event was recorded")));
        }
    }
    if let Some(n) = x.sent
        && sent.len() != n
    {
        return Err(fail(format!(
            "{} messages were sent, expected {n}",
            sent.len()
        )));
    }
    if let Some(want) = &x.last_message {
        match sent.last() {
            Some(got) if contains(got, want) => {}
            got => {
                return Err(fail(format!(
                    "the last message sent is {}, expected it to contain {want}",
                    got.map_or("nothing".into(), Value::to_string)
                )));
            }
        }
    }
    if let Some(t) = &x.last_text {
        let last = sent.iter().rev().find_map(|m| {
            m.get("text")
                .or_else(|| m.get("body"))
                .and_then(Value::as_str)
        });
        if last != Some(t.as_str()) {
            return Err(fail(format!(
                "the last text sent is {last:?}, expected {t:?}"
            )));
        }
    }
    Ok(())
}

async fn transcript(
    script: &Script,
    engine: &Engine,
    offline: &OfflineAdapters,
    store: &dyn ExecutionStore,
    steps: Vec<Value>,
) -> Result<Value, ScriptError> {
    let mut executions = Vec::new();
    let mut all = engine
        .list_executions(&ExecutionFilter {
            limit: 100,
            ..Default::default()
        })
        .await
        .map_err(|e| ScriptError::Invalid(e.to_string()))?;
    all.reverse(); // oldest first
    for e in all {
        let events: Vec<Value> = store
            .events(&e.id, 0, 100_000, None)
            .await
            .map_err(|er| ScriptError::Invalid(er.to_string()))?
            .into_iter()
            .map(|ev| {
                let mut line = format!("{} {}", ev.seq, ev.event_type.as_str());
                if let Some(n) = &ev.node_id {
                    line.push(' ');
                    line.push_str(n);
                }
                line.push(' ');
                line.push_str(&ev.payload.to_string());
                Value::String(line)
            })
            .collect();
        executions.push(json!({
            "id": e.id,
            "flow": e.flow,
            "status": e.status,
            "waiting_reason": e.waiting_reason,
            "current_node_id": e.current_node_id,
            "vars": e.execution_context["vars"],
            "error_details": e.error_details,
            "events": events,
        }));
    }
    // Requests as they went on the wire (secrets included) are shown redacted; everything
    // else in the transcript comes redacted from the engine, which `leaked_secret` checks.
    let http: Vec<Value> = offline
        .http
        .requests()
        .into_iter()
        .map(|r| {
            let mut v = json!({"method": r.method, "url": r.url, "headers": r.headers,
                   "body": r.body.map(|b| String::from_utf8_lossy(&b).into_owned())});
            redact_secrets(&mut v, &script.secrets);
            v
        })
        .collect();
    let functions: Vec<Value> = offline
        .functions
        .calls()
        .into_iter()
        .map(|c| json!({"function": c.function, "node": c.node_id, "available_edges": c.available_edges, "input": c.input}))
        .collect();
    let project_events: Vec<Value> = offline.project_events.events().into_iter().map(|e| json!({"event_name": e.event_name, "properties": e.properties, "occurred_at": e.occurred_at})).collect();
    let out = json!({
        "name": script.name,
        "steps": steps,
        "executions": executions,
        "http_requests": http,
        "function_calls": functions,
        "project_events": project_events,
    });
    if let Some(name) = leaked_secret(&out, &script.secrets) {
        return Err(ScriptError::Expectation {
            turn: 0,
            message: format!("the value of secret `{name}` appears in the transcript"),
        });
    }
    Ok(out)
}

/// Whether `got` contains `want` (see [`Expect::last_message`]).
fn contains(got: &Value, want: &Value) -> bool {
    match (got, want) {
        (Value::Object(g), Value::Object(w)) => w
            .iter()
            .all(|(k, wv)| g.get(k).is_some_and(|gv| contains(gv, wv))),
        _ => got == want,
    }
}

fn redact_secrets(v: &mut Value, secrets: &BTreeMap<String, String>) {
    match v {
        Value::String(s) => {
            for (name, value) in secrets.iter().filter(|(_, v)| !v.is_empty()) {
                if s.contains(value.as_str()) {
                    *s = s.replace(value.as_str(), &format!("[REDACTED:{name}]"));
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| redact_secrets(x, secrets)),
        Value::Object(m) => m.values_mut().for_each(|x| redact_secrets(x, secrets)),
        _ => {}
    }
}

/// The name of a secret whose value appears somewhere in `v`.
fn leaked_secret(v: &Value, secrets: &BTreeMap<String, String>) -> Option<String> {
    match v {
        Value::String(s) => secrets
            .iter()
            .find(|(_, value)| !value.is_empty() && s.contains(value.as_str()))
            .map(|(name, _)| name.clone()),
        Value::Array(a) => a.iter().find_map(|x| leaked_secret(x, secrets)),
        Value::Object(m) => m.iter().find_map(|(k, x)| {
            leaked_secret(&Value::String(k.clone()), secrets).or_else(|| leaked_secret(x, secrets))
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_message_is_a_recursive_subset() {
        let got = json!({"type": "template", "parameters": {"1": "a", "2": "b"}, "to": "+1"});
        assert!(contains(&got, &json!({"parameters": {"1": "a"}})));
        assert!(!contains(&got, &json!({"parameters": {"1": "b"}})));
        assert!(!contains(&got, &json!({"missing": null})));
        assert!(
            !contains(&json!([1, 2]), &json!([1])),
            "arrays compare whole"
        );
    }

    #[test]
    fn secrets_are_found_and_redacted_anywhere() {
        let secrets = BTreeMap::from([("KEY".to_owned(), "s3cr3t".to_owned())]);
        let mut v = json!({"a": ["x", {"b": "Bearer s3cr3t"}]});
        assert_eq!(leaked_secret(&v, &secrets).as_deref(), Some("KEY"));
        redact_secrets(&mut v, &secrets);
        assert_eq!(v, json!({"a": ["x", {"b": "Bearer [REDACTED:KEY]"}]}));
        assert_eq!(leaked_secret(&v, &secrets), None);
        assert_eq!(
            leaked_secret(&json!({"s3cr3t": 1}), &secrets).as_deref(),
            Some("KEY")
        );
    }
}
