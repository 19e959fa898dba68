//! `switchboard-js`: local JavaScript functions — [`JsFunctionInvoker`], a [`FunctionInvoker`]
//! that runs a project's `functions/*.js` in embedded QuickJS ([`rquickjs`]) instead of
//! POSTing to a deployed endpoint. It depends on `switchboard-runtime` (the traits, and the
//! function-answer contract it shares with the HTTP invoker) and `rquickjs`; it must not depend
//! on an HTTP library (`fetch` goes through the runtime's [`HttpClient`] trait) or another
//! adapter crate, and the model, the validator and the runtime must never depend on it.
//!
//! It speaks the same contract as `switchboard_http::HttpFunctionInvoker`
//! (runtime-semantics §7.5, §8): the function gets a `POST` [`Request`] whose body is the §8
//! payload ([`FunctionCall::payload`]) with the headers `content-type: application/json`,
//! `x-switchboard-execution-id` and `x-switchboard-node-id`, and its answer is judged the
//! same way: a 2xx whose body parses as a JSON object is the result, any other status is
//! `http_status`, any other body is `invalid_json`.
//!
//! Three forms of function are understood (see `docs/functions.md`):
//!
//! ```js
//! // 1. A global handler (it may return a plain object: a JSON 200 body).
//! async function handler(request, env) {
//!   const { execution_context } = await request.json();
//!   return new Response(JSON.stringify({ vars: { seen: true } }), { status: 200 });
//! }
//! // 2. Deno.serve (also Deno.serve(options, handler) and Deno.serve({ handler })).
//! Deno.serve(async (req) => Response.json({ vars: { key: Deno.env.get("API_KEY") } }));
//! // 3. An ES module in the Cloudflare Workers style.
//! export default { async fetch(request, env) { return Response.json({ vars: {} }); } };
//! ```
//!
//! Every call runs in a fresh QuickJS runtime and context on its own thread, with a memory
//! limit, a stack limit and an interrupt handler that stops the code at the deadline (both may
//! differ per function: [`JsOptions::limits`]); no state survives a call except what the
//! function stores in `env.KV`, a bounded namespace of its own — in memory, shared by the calls
//! of one invoker, or, with [`JsOptions::kv_store`], in the execution store (surviving
//! restarts, shared by every process on the store). The code has no file system or process
//! access, and no network unless [`JsOptions::http`] is set: then `fetch(input, init)` sends
//! its requests through that [`HttpClient`] (the one webhook nodes use, so its limits apply),
//! synchronously on the call's thread, with the time left until the call's deadline as the
//! request timeout, at most [`MAX_FETCHES`] per call and only to `http`/`https` URLs. Any
//! status is a `Response`; a failed request rejects with `TypeError("fetch failed: <kind>:
//! <message>")`. Without a client, calling `fetch` throws. Failures:
//!
//! | what happened | kind |
//! |---|---|
//! | no function for the id or slug | `not_found` |
//! | the code threw or its promise rejected | `adapter` (`function `x` threw: Error: … (at x.js:3)`) |
//! | an uncaught `fetch` failure | `adapter` (`… threw: TypeError: fetch failed: transport: …`) |
//! | the call ran past the timeout | `timeout` |
//! | the promise can never settle (nothing left to run) | `adapter` |
//! | the memory limit was hit | `adapter` (`… ran out of memory …`) |
//! | a non-2xx status | `http_status` (with `status`) |
//! | a body that is not a JSON object, or no return value | `invalid_json` |
//! | a body over `max_response_bytes` | `transport` (as an HTTP body over the cap) |
//!
//! Error messages never contain the value of an `env` entry (values of 4 characters or more
//! are replaced by `[redacted]`; so does the message of a `fetch` `TypeError`, even one the
//! code catches), and nothing the code logs reaches them (`console` is a no-op).
//!
//! [`FunctionInvoker`]: switchboard_runtime::adapters::FunctionInvoker
//! [`HttpClient`]: switchboard_runtime::adapters::HttpClient
//! [`Request`]: https://developer.mozilla.org/en-US/docs/Web/API/Request

mod kv;
mod run;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use switchboard_runtime::FailureKind;

use async_trait::async_trait;
use serde_json::Value;
use switchboard_runtime::adapters::{
    AdapterError, AdapterResult, FunctionCall, FunctionInvoker, HttpClient,
};
use switchboard_runtime::store::ExecutionStore;

pub use kv::{MAX_KV_KEY_BYTES, MAX_KV_KEYS, MAX_KV_VALUE_BYTES};

use kv::{Kv, KvHandle};
use run::{Fetcher, Job, Outcome, RequestParts};
use switchboard_runtime::function_answer::{judge, unresolved};

/// How long past its timeout the host waits for a call's thread before it reports a timeout
/// anyway.
const HOST_GRACE: Duration = Duration::from_secs(1);

/// The default time a call may take: 30 s (as an HTTP function, runtime-semantics §7.5).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The default memory limit of a call's QuickJS runtime: 64 MiB.
pub const DEFAULT_MEMORY_LIMIT: usize = 64 * 1024 * 1024;

/// The default cap on a response body: 5 MiB (as an HTTP response, runtime-semantics §7.6).
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 5 * 1024 * 1024;

/// The default cap on a function's source file: 1 MiB.
pub const DEFAULT_MAX_SOURCE_BYTES: usize = 1024 * 1024;

/// The most `fetch` requests one call may make; the next one throws a `TypeError`.
pub const MAX_FETCHES: usize = 50;

/// What replaces secret values in error messages.
pub const REDACTED: &str = "[redacted]";

/// Limits and environment of a [`JsFunctionInvoker`].
#[derive(Clone)]
pub struct JsOptions {
    /// The time a call may take, code and promises included (default 30 s).
    pub timeout: Duration,
    /// The memory limit of a call's QuickJS runtime, in bytes (default 64 MiB).
    pub memory_limit: usize,
    /// The variables and secrets the functions see as `env.NAME` (second argument of the
    /// handler and `fetch` forms) and `Deno.env.get("NAME")`. Values are never shown: not by
    /// `Debug`, not in error messages.
    pub env: BTreeMap<String, String>,
    /// The cap on a response body, in bytes (default 5 MiB).
    pub max_response_bytes: usize,
    /// The cap on a source file, in bytes (default 1 MiB).
    pub max_source_bytes: usize,
    /// Function ids that name a local function: id → slug (a flow's `function_id` is tried
    /// before its `function_slug`, as by the HTTP invoker).
    pub ids: HashMap<String, String>,
    /// The client `fetch` sends its requests through (the one webhook nodes use, so its
    /// limits apply: timeouts, body caps, http(s)-only redirects). `None` (the default):
    /// there is no network, and calling `fetch` throws.
    pub http: Option<Arc<dyn HttpClient>>,
    /// Where `env.KV` lives. `None` (the default): in memory, one namespace per function,
    /// lost when the invoker is dropped. `Some(store)`: in the store's key-value namespaces
    /// (one per function, named by its slug), surviving restarts — the engine's store, so
    /// `env.KV` is as durable as the executions. [`invoke`](FunctionInvoker::invoke) must
    /// then run inside a tokio runtime.
    pub kv_store: Option<Arc<dyn ExecutionStore>>,
    /// Limits of single functions (by slug) that differ from [`JsOptions::timeout`] and
    /// [`JsOptions::memory_limit`] — a Kapso project's `function.yaml` `runtime_config`.
    pub limits: HashMap<String, FunctionLimits>,
}

/// The limits of one function that differ from the invoker's ([`JsOptions::limits`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FunctionLimits {
    /// Its time per call (default: [`JsOptions::timeout`]).
    pub timeout: Option<Duration>,
    /// Its memory limit in bytes (default: [`JsOptions::memory_limit`]).
    pub memory_limit: Option<usize>,
}

impl Default for JsOptions {
    fn default() -> Self {
        JsOptions {
            timeout: DEFAULT_TIMEOUT,
            memory_limit: DEFAULT_MEMORY_LIMIT,
            env: BTreeMap::new(),
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            max_source_bytes: DEFAULT_MAX_SOURCE_BYTES,
            ids: HashMap::new(),
            http: None,
            kv_store: None,
            limits: HashMap::new(),
        }
    }
}

impl fmt::Debug for JsOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsOptions")
            .field("timeout", &self.timeout)
            .field("memory_limit", &self.memory_limit)
            .field("env", &self.env.keys().collect::<Vec<_>>())
            .field("max_response_bytes", &self.max_response_bytes)
            .field("max_source_bytes", &self.max_source_bytes)
            .field("ids", &self.ids)
            .field("http", &self.http.is_some())
            .field("kv_store", &self.kv_store.is_some())
            .field("limits", &self.limits)
            .finish()
    }
}

/// Why functions could not be loaded. Messages name files and lines, never `env` values.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JsError {
    /// The functions directory cannot be listed.
    #[error("cannot read the functions directory `{}`: {source}", path.display())]
    ReadDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A source file cannot be read.
    #[error("cannot read `{}`: {source}", path.display())]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A source file is over [`JsOptions::max_source_bytes`].
    #[error("`{}` is {size} bytes, over the {limit}-byte limit", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        size: u64,
        /// The limit.
        limit: usize,
    },
    /// A source file is not UTF-8.
    #[error("`{}` is not UTF-8 text", path.display())]
    NotUtf8 {
        /// The file.
        path: PathBuf,
    },
    /// Two sources give the same slug.
    #[error("function `{slug}` is defined twice (`{first}` and `{second}`)")]
    Duplicate {
        /// The slug.
        slug: String,
        /// The first source.
        first: String,
        /// The second source.
        second: String,
    },
    /// A slug is empty or contains `/`.
    #[error("`{slug}` is not a valid function slug (empty, or contains `/` or `\\`)")]
    BadSlug {
        /// The slug.
        slug: String,
    },
    /// [`JsOptions::ids`] maps an id to a slug with no function.
    #[error("function id `{id}` names `{slug}`, which is not a loaded function")]
    UnknownAlias {
        /// The id.
        id: String,
        /// The slug it names.
        slug: String,
    },
    /// The code does not compile, or its top level throws (with the file and line).
    #[error("`{file}`: {message}")]
    Compile {
        /// The file (as named in stack traces).
        file: String,
        /// The error, e.g. `SyntaxError: unexpected token in expression: ')' (at f.js:3)`.
        message: String,
    },
    /// The code defines no handler.
    #[error(
        "`{file}` defines no handler (expected `handler`, `Deno.serve(...)` or `export default {{ fetch }}`)"
    )]
    NoHandler {
        /// The file.
        file: String,
    },
}

/// A loaded function.
#[derive(Debug)]
struct Loaded {
    slug: String,
    /// The name in stack traces: `slug.js`, `slug/index.js`.
    file: String,
    source: String,
    /// Evaluated as an ES module (`export`/`import` at statement level).
    module: bool,
    /// Its limits and environment.
    settings: Arc<Settings>,
    /// Its in-memory `env.KV` (used without [`JsOptions::kv_store`]).
    kv: Arc<Kv>,
}

/// What every call needs.
#[derive(Clone, Debug)]
struct Settings {
    timeout: Duration,
    memory_limit: usize,
    max_response_bytes: usize,
    /// `env` as a JSON object.
    env_json: String,
    /// The `env` values to redact, longest first.
    secrets: Vec<String>,
    /// Whether `fetch` has a client ([`JsOptions::http`]).
    fetch_enabled: bool,
}

impl Settings {
    fn redact(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), REDACTED);
            }
        }
        out
    }
}

/// A [`FunctionInvoker`] running local JavaScript functions in embedded QuickJS: see the
/// [module documentation](self).
///
/// Cloning is cheap and shares the functions, their `env.KV` namespaces and the `fetch` client.
///
/// With [`JsOptions::http`] set, the functions can `fetch` (see the module documentation);
/// [`invoke`](FunctionInvoker::invoke) must then run inside a tokio runtime, whose handle
/// sends the requests.
#[derive(Clone)]
pub struct JsFunctionInvoker {
    functions: Arc<HashMap<String, Arc<Loaded>>>,
    ids: Arc<HashMap<String, String>>,
    settings: Arc<Settings>,
    kv_store: Option<Arc<dyn ExecutionStore>>,
    http: Option<Arc<dyn HttpClient>>,
}

impl fmt::Debug for JsFunctionInvoker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsFunctionInvoker")
            .field("functions", &self.slugs())
            .field("timeout", &self.settings.timeout)
            .field("memory_limit", &self.settings.memory_limit)
            .field("http", &self.http.is_some())
            .finish_non_exhaustive()
    }
}

impl JsFunctionInvoker {
    /// Loads the functions of a project's functions directory `dir` (e.g.
    /// `my-project/functions`): each `<slug>.js` or `<slug>.mjs` file, and each
    /// `<slug>/index.js` or `<slug>/index.mjs`; other entries are ignored.
    ///
    /// Each file is read (at most [`JsOptions::max_source_bytes`], UTF-8), then evaluated
    /// once in a throwaway context to report syntax errors, a throwing top level and a
    /// missing handler now, with the file and line, rather than at the first call.
    pub fn from_dir(
        dir: impl AsRef<Path>,
        options: JsOptions,
    ) -> Result<JsFunctionInvoker, JsError> {
        let dir = dir.as_ref();
        let read_dir = |path: &Path| {
            std::fs::read_dir(path).map_err(|source| JsError::ReadDir {
                path: path.to_owned(),
                source,
            })
        };
        let mut found: Vec<(String, String, PathBuf)> = Vec::new();
        for entry in read_dir(dir)? {
            let entry = entry.map_err(|source| JsError::ReadDir {
                path: dir.to_owned(),
                source,
            })?;
            let path = entry.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if path.is_dir() {
                for index in ["index.js", "index.mjs"] {
                    let file = path.join(index);
                    if file.is_file() {
                        found.push((name.to_owned(), format!("{name}/{index}"), file));
                    }
                }
            } else if let Some(stem) = name
                .strip_suffix(".js")
                .or_else(|| name.strip_suffix(".mjs"))
            {
                found.push((stem.to_owned(), name.to_owned(), path.clone()));
            }
        }
        found.sort_by(|a, b| a.1.cmp(&b.1));
        let mut sources = Vec::with_capacity(found.len());
        for (slug, file, path) in found {
            let source = read_source(&path, options.max_source_bytes)?;
            sources.push((slug, file, source));
        }
        JsFunctionInvoker::load(sources, options)
    }

    /// Functions given as `(slug, file)` pairs — a Kapso project's `functions/<slug>/` with
    /// the entrypoint its `function.yaml` names — each read and checked as by
    /// [`JsFunctionInvoker::from_dir`] and named `<slug>/<file name>` in stack traces.
    pub fn from_files<I, S>(files: I, options: JsOptions) -> Result<JsFunctionInvoker, JsError>
    where
        I: IntoIterator<Item = (S, PathBuf)>,
        S: Into<String>,
    {
        let mut sources = Vec::new();
        for (slug, path) in files {
            let slug = slug.into();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("index.js")
                .to_owned();
            let source = read_source(&path, options.max_source_bytes)?;
            sources.push((slug.clone(), format!("{slug}/{name}"), source));
        }
        JsFunctionInvoker::load(sources, options)
    }

    /// Functions given as `(slug, source)` pairs (embedding, tests); each is named
    /// `<slug>.js` in stack traces and checked as by [`JsFunctionInvoker::from_dir`].
    pub fn from_sources<I, S, C>(
        sources: I,
        options: JsOptions,
    ) -> Result<JsFunctionInvoker, JsError>
    where
        I: IntoIterator<Item = (S, C)>,
        S: Into<String>,
        C: Into<String>,
    {
        let sources = sources
            .into_iter()
            .map(|(slug, source)| {
                let slug = slug.into();
                let file = format!("{slug}.js");
                (slug, file, source.into())
            })
            .collect::<Vec<_>>();
        for (slug, _, source) in &sources {
            if source.len() > options.max_source_bytes {
                return Err(JsError::TooLarge {
                    path: PathBuf::from(format!("{slug}.js")),
                    size: source.len() as u64,
                    limit: options.max_source_bytes,
                });
            }
        }
        JsFunctionInvoker::load(sources, options)
    }

    fn load(
        sources: Vec<(String, String, String)>,
        options: JsOptions,
    ) -> Result<JsFunctionInvoker, JsError> {
        let mut secrets: Vec<String> = options
            .env
            .values()
            .filter(|v| v.chars().count() >= 4)
            .cloned()
            .collect();
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        let settings = Arc::new(Settings {
            timeout: options.timeout,
            memory_limit: options.memory_limit,
            max_response_bytes: options.max_response_bytes,
            // A map of strings always serializes.
            env_json: serde_json::to_string(&options.env).unwrap_or_else(|_| "{}".to_owned()),
            secrets,
            fetch_enabled: options.http.is_some(),
        });
        let mut functions: HashMap<String, Arc<Loaded>> = HashMap::new();
        for (slug, file, source) in sources {
            if slug.is_empty() || slug.contains(['/', '\\']) {
                return Err(JsError::BadSlug { slug });
            }
            if let Some(first) = functions.get(&slug) {
                return Err(JsError::Duplicate {
                    slug,
                    first: first.file.clone(),
                    second: file,
                });
            }
            let own = options.limits.get(&slug).copied().unwrap_or_default();
            let mine = if own == FunctionLimits::default() {
                Arc::clone(&settings)
            } else {
                Arc::new(Settings {
                    timeout: own.timeout.unwrap_or(settings.timeout),
                    memory_limit: own.memory_limit.unwrap_or(settings.memory_limit),
                    ..(*settings).clone()
                })
            };
            let loaded = Arc::new(Loaded {
                module: file.ends_with(".mjs") || is_module(&source),
                slug: slug.clone(),
                file,
                source,
                settings: mine,
                kv: Arc::new(Kv::default()),
            });
            check(&loaded)?;
            functions.insert(slug, loaded);
        }
        for (id, slug) in &options.ids {
            if !functions.contains_key(slug) {
                return Err(JsError::UnknownAlias {
                    id: id.clone(),
                    slug: slug.clone(),
                });
            }
        }
        Ok(JsFunctionInvoker {
            functions: Arc::new(functions),
            ids: Arc::new(options.ids),
            settings,
            kv_store: options.kv_store,
            http: options.http,
        })
    }

    /// The slugs of the loaded functions, sorted.
    pub fn slugs(&self) -> Vec<&str> {
        let mut slugs: Vec<&str> = self.functions.keys().map(String::as_str).collect();
        slugs.sort_unstable();
        slugs
    }

    /// The slug a call resolves to, if any: its `function_id` (a slug, or an id of
    /// [`JsOptions::ids`]), then its `function_slug`.
    pub fn resolve(&self, call: &FunctionCall<'_>) -> Option<&str> {
        self.find(call).map(|f| f.slug.as_str())
    }

    fn find(&self, call: &FunctionCall<'_>) -> Option<&Arc<Loaded>> {
        let by_id = call.function_id.and_then(|id| {
            self.functions
                .get(id)
                .or_else(|| self.ids.get(id).and_then(|slug| self.functions.get(slug)))
        });
        by_id.or_else(|| call.function_slug.and_then(|s| self.functions.get(s)))
    }
}

/// Reads a source file: at most `limit` bytes, UTF-8.
fn read_source(path: &Path, limit: usize) -> Result<String, JsError> {
    let size = std::fs::metadata(path)
        .map_err(|source| JsError::ReadFile {
            path: path.to_owned(),
            source,
        })?
        .len();
    if size > limit as u64 {
        return Err(JsError::TooLarge {
            path: path.to_owned(),
            size,
            limit,
        });
    }
    let bytes = std::fs::read(path).map_err(|source| JsError::ReadFile {
        path: path.to_owned(),
        source,
    })?;
    String::from_utf8(bytes).map_err(|_| JsError::NotUtf8 {
        path: path.to_owned(),
    })
}

/// Evaluates a function's top level once, in a throwaway context with its own empty KV.
fn check(loaded: &Arc<Loaded>) -> Result<(), JsError> {
    let settings = &loaded.settings;
    let job = Job {
        function: Arc::clone(loaded),
        settings: Arc::clone(settings),
        kv: Arc::new(KvHandle::Memory(Arc::new(Kv::default()))),
        request: None,
        fetch: None,
    };
    let outcome = on_thread(job).unwrap_or_else(Outcome::Internal);
    let file = loaded.file.clone();
    let compile = |message: String| JsError::Compile {
        file: loaded.file.clone(),
        message: settings.redact(&message),
    };
    match outcome {
        Outcome::Ready | Outcome::Answered { .. } => Ok(()),
        Outcome::NoHandler => Err(JsError::NoHandler { file }),
        Outcome::Failed(m) | Outcome::Threw(m) | Outcome::Internal(m) => Err(compile(m)),
        Outcome::TimedOut => Err(compile(format!(
            "the top level did not finish within {}",
            show(settings.timeout)
        ))),
        Outcome::NeverSettled => Err(compile(
            "the module's top-level await never settled".to_owned(),
        )),
        Outcome::OutOfMemory => Err(compile(format!(
            "the top level ran out of memory (limit {} bytes)",
            settings.memory_limit
        ))),
    }
}

/// Runs `job` on a fresh thread (QuickJS runtimes stay on one thread; the caller's stack
/// size does not matter), waiting for it.
fn on_thread(job: Job) -> Result<Outcome, String> {
    std::thread::Builder::new()
        .name("switchboard-js".to_owned())
        .stack_size(run::THREAD_STACK)
        .spawn(move || run::run(&job))
        .map_err(|e| format!("cannot start a thread ({e})"))?
        .join()
        .map_err(|_| "the JavaScript thread panicked".to_owned())
}

/// Statement-level `export` or `import` (not `import(`): an ES module.
fn is_module(source: &str) -> bool {
    source.lines().any(|line| {
        let line = line.trim_start();
        let rest = line
            .strip_prefix("export")
            .or_else(|| line.strip_prefix("import"));
        rest.is_some_and(|r| r.starts_with([' ', '{', '*', '\t']) || r.is_empty())
    })
}

/// `200 ms`, `30 s`, `1.5 s`.
fn show(d: Duration) -> String {
    if d.as_millis() < 1000 {
        format!("{} ms", d.as_millis())
    } else if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.3} s", d.as_secs_f64())
    }
}

#[async_trait]
impl FunctionInvoker for JsFunctionInvoker {
    async fn invoke(&self, call: &FunctionCall<'_>) -> AdapterResult<Value> {
        let Some(function) = self.find(call) else {
            return Err(unresolved(call, "local function"));
        };
        let name = function.slug.clone();
        let body = serde_json::to_string(&call.payload()).map_err(|e| {
            AdapterError::new(
                FailureKind::InvalidRequest,
                format!("function `{name}`: cannot encode the request ({e})"),
            )
        })?;
        let runtime = tokio::runtime::Handle::try_current().ok();
        let kv = match (&self.kv_store, &runtime) {
            (Some(store), Some(handle)) => KvHandle::Store {
                store: Arc::clone(store),
                namespace: function.slug.clone(),
                handle: handle.clone(),
            },
            _ => KvHandle::Memory(Arc::clone(&function.kv)),
        };
        let settings = Arc::clone(&function.settings);
        let job = Job {
            function: Arc::clone(function),
            settings: Arc::clone(&settings),
            kv: Arc::new(kv),
            request: Some(RequestParts {
                body,
                execution_id: call.execution_id.to_owned(),
                node_id: call.node_id.to_owned(),
            }),
            // `invoke` runs inside tokio: the call's thread sends `fetch` requests on this
            // runtime with `Handle::block_on`.
            fetch: self.http.as_ref().and_then(|client| {
                runtime.clone().map(|handle| Fetcher {
                    client: Arc::clone(client),
                    handle,
                })
            }),
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("switchboard-js".to_owned())
            .stack_size(run::THREAD_STACK)
            .spawn(move || {
                let _ = tx.send(run::run(&job));
            })
            .map_err(|e| {
                AdapterError::new(
                    FailureKind::Adapter,
                    format!("function `{name}`: cannot start a thread ({e})"),
                )
            })?;
        // The interrupt handler stops the JavaScript at the deadline; this bound also holds if
        // QuickJS sits in one long native operation that never checks for interrupts (the
        // thread is then left to finish on its own; the conversation moves on).
        let bound = settings.timeout.saturating_add(HOST_GRACE);
        let outcome = match tokio::time::timeout(bound, rx).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => Outcome::Internal("the JavaScript thread panicked".to_owned()),
            Err(_) => Outcome::TimedOut,
        };
        judge_outcome(&settings, &name, outcome).map_err(|mut e| {
            e.message = settings.redact(&e.message);
            e
        })
    }
}

/// An outcome as the HTTP invoker would judge the equivalent response.
fn judge_outcome(settings: &Settings, name: &str, outcome: Outcome) -> AdapterResult<Value> {
    let (status, body, returned) = match outcome {
        Outcome::Answered {
            status,
            body,
            returned,
        } => (status, body, returned),
        Outcome::Threw(m) | Outcome::Failed(m) => {
            return Err(AdapterError::new(
                FailureKind::Adapter,
                format!("function `{name}` threw: {m}"),
            ));
        }
        Outcome::TimedOut => {
            return Err(AdapterError::new(
                FailureKind::Timeout,
                format!(
                    "function `{name}` did not finish within {}",
                    show(settings.timeout)
                ),
            ));
        }
        Outcome::NeverSettled => {
            return Err(AdapterError::new(
                FailureKind::Adapter,
                format!(
                    "function `{name}` cannot finish: the function's promise never settled \
                     (nothing left to run)"
                ),
            ));
        }
        Outcome::OutOfMemory => {
            return Err(AdapterError::new(
                FailureKind::Adapter,
                format!(
                    "function `{name}` ran out of memory (limit {} bytes)",
                    settings.memory_limit
                ),
            ));
        }
        Outcome::NoHandler => {
            return Err(AdapterError::new(
                FailureKind::Adapter,
                format!("function `{name}` defines no handler"),
            ));
        }
        Outcome::Ready => {
            return Err(AdapterError::new(
                FailureKind::Adapter,
                format!("function `{name}`: no request was made"),
            ));
        }
        Outcome::Internal(m) => {
            return Err(AdapterError::new(
                FailureKind::Adapter,
                format!("function `{name}`: {m}"),
            ));
        }
    };
    let body = body.unwrap_or_default();
    if body.len() > settings.max_response_bytes {
        return Err(AdapterError::new(
            FailureKind::Transport,
            format!(
                "function `{name}` answered with a body of {} bytes, over the {}-byte cap",
                body.len(),
                settings.max_response_bytes
            ),
        ));
    }
    if (200..300).contains(&status) && returned == "nothing" {
        return Err(AdapterError::new(
            FailureKind::InvalidJson,
            format!("function `{name}` returned nothing (return a Response or a JSON object)"),
        ));
    }
    judge(name, status, body.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modules_are_detected_at_statement_level() {
        assert!(is_module("export default { fetch() {} }"));
        assert!(is_module("import { x } from './x.js';\n"));
        assert!(is_module("  export async function handler() {}"));
        assert!(!is_module(
            "async function handler() { return import('x'); }"
        ));
        assert!(!is_module("const exported = 1; // export me"));
        assert!(!is_module("Deno.serve(() => exports)"));
    }

    #[test]
    fn durations_are_shown_briefly() {
        assert_eq!(show(Duration::from_millis(200)), "200 ms");
        assert_eq!(show(Duration::from_secs(30)), "30 s");
        assert_eq!(show(Duration::from_millis(1500)), "1.500 s");
    }

    #[test]
    fn options_debug_hides_env_values() {
        let mut options = JsOptions::default();
        options
            .env
            .insert("API_KEY".into(), "sk-very-secret".into());
        let shown = format!("{options:?}");
        assert!(shown.contains("API_KEY"));
        assert!(!shown.contains("sk-very-secret"));
    }
}
