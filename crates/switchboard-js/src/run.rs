//! One function call (or one load-time check) in a fresh QuickJS runtime, on the calling
//! thread: the prelude, the function's code, the request, and the event loop driven until
//! the handler's promise settles or the deadline passes.

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use rquickjs::context::EvalOptions;
use rquickjs::promise::PromiseState;
use rquickjs::{Coerced, Context, Ctx, Function, Module, Object, Promise, Runtime, Value};
use serde_json::json;
use switchboard_runtime::adapters::{HttpClient, HttpRequest};

use crate::kv::KvHandle;
use crate::{Loaded, MAX_FETCHES, Settings};

/// The prelude: Headers, Request, Response, Deno, env.KV, timers, console.
const PRELUDE: &str = include_str!("prelude.js");

/// The JS stack QuickJS may use (the thread running it has 4 MiB).
const MAX_STACK: usize = 1024 * 1024;

/// The stack of the thread a call runs on.
pub(super) const THREAD_STACK: usize = 4 * 1024 * 1024;

/// What the host asks of a run.
pub(super) struct Job {
    /// The function.
    pub function: Arc<Loaded>,
    /// Limits and env.
    pub settings: Arc<Settings>,
    /// The KV namespace.
    pub kv: Arc<KvHandle>,
    /// `None`: only evaluate the code and find the handler (load-time check).
    pub request: Option<RequestParts>,
    /// How `fetch` reaches the network; `None`: `fetch` throws.
    pub fetch: Option<Fetcher>,
}

/// What `fetch` needs: the client and a handle on the tokio runtime the call came from (the
/// request is sent with `Handle::block_on` on the call's own thread, not a tokio worker).
pub(super) struct Fetcher {
    /// The client (the one webhook nodes use).
    pub client: Arc<dyn HttpClient>,
    /// The runtime of the caller.
    pub handle: tokio::runtime::Handle,
}

/// The request given to the handler.
pub(super) struct RequestParts {
    /// The JSON body.
    pub body: String,
    /// `X-Switchboard-Execution-Id`.
    pub execution_id: String,
    /// `X-Switchboard-Node-Id`.
    pub node_id: String,
}

/// How a run ended (messages may still hold secrets: the caller redacts).
#[derive(Debug)]
pub(super) enum Outcome {
    /// The load-time check passed.
    Ready,
    /// The handler answered (`body` is `None` when it returned nothing).
    Answered {
        /// The status.
        status: u16,
        /// The body text.
        body: Option<String>,
        /// `response`, `value` or `nothing`.
        returned: String,
    },
    /// Evaluating the code failed (at load time: a syntax error, a top-level throw).
    Failed(String),
    /// The handler threw or its promise rejected.
    Threw(String),
    /// The code defines no handler.
    NoHandler,
    /// The deadline passed.
    TimedOut,
    /// The promise can never settle: no jobs, no timers.
    NeverSettled,
    /// The memory limit was hit.
    OutOfMemory,
    /// QuickJS itself failed (could not create a runtime, an unexpected value).
    Internal(String),
}

/// Why the run stopped early, inside the context.
enum Stop {
    Exception(String),
    TimedOut,
    OutOfMemory,
    NeverSettled,
    Internal(String),
}

/// Runs `job` on this thread.
pub(super) fn run(job: &Job) -> Outcome {
    let deadline = Instant::now() + job.settings.timeout;
    let tripped = Arc::new(AtomicBool::new(false));
    let runtime = match Runtime::new() {
        Ok(rt) => rt,
        Err(e) => return Outcome::Internal(format!("cannot start QuickJS ({e})")),
    };
    runtime.set_memory_limit(job.settings.memory_limit);
    runtime.set_max_stack_size(MAX_STACK);
    let flag = Arc::clone(&tripped);
    runtime.set_interrupt_handler(Some(Box::new(move || {
        if Instant::now() >= deadline {
            flag.store(true, Ordering::Relaxed);
            true
        } else {
            false
        }
    })));
    let context = match Context::full(&runtime) {
        Ok(c) => c,
        Err(e) => return Outcome::Internal(format!("cannot create a QuickJS context ({e})")),
    };
    let evaluating = std::cell::Cell::new(true);
    let result = context.with(|ctx| run_in(&ctx, job, deadline, &tripped, &evaluating));
    let outcome = match result {
        Ok(outcome) => outcome,
        Err(_) if tripped.load(Ordering::Relaxed) => Outcome::TimedOut,
        Err(Stop::TimedOut) => Outcome::TimedOut,
        Err(Stop::OutOfMemory) => Outcome::OutOfMemory,
        Err(Stop::NeverSettled) => Outcome::NeverSettled,
        Err(Stop::Internal(m)) => Outcome::Internal(m),
        Err(Stop::Exception(m)) if m.contains("out of memory") => Outcome::OutOfMemory,
        Err(Stop::Exception(m)) if evaluating.get() => Outcome::Failed(m),
        Err(Stop::Exception(m)) => Outcome::Threw(m),
    };
    drop(context);
    drop(runtime);
    outcome
}

fn run_in<'js>(
    ctx: &Ctx<'js>,
    job: &Job,
    deadline: Instant,
    tripped: &AtomicBool,
    evaluating: &std::cell::Cell<bool>,
) -> Result<Outcome, Stop> {
    let loaded = &job.function;
    let file = loaded.file.as_str();
    macro_rules! js {
        ($e:expr) => {
            $e.map_err(|e| stop(ctx, e, file))
        };
    }

    // The prelude and the host bindings.
    let setup: Function = js!(ctx.eval_with_options(PRELUDE, options("switchboard-prelude.js")))?;
    let host = js!(Object::new(ctx.clone()))?;
    install_kv(ctx, &host, &job.kv).map_err(|e| stop(ctx, e, file))?;
    let fetch_mode = if job.fetch.is_some() {
        "on"
    } else if job.settings.fetch_enabled {
        "unavailable"
    } else {
        "off"
    };
    js!(host.set("fetchMode", fetch_mode))?;
    if let Some(fetcher) = &job.fetch {
        install_fetch(ctx, &host, fetcher, &job.settings, deadline)
            .map_err(|e| stop(ctx, e, file))?;
    }
    let hooks: Object = js!(setup.call((host, job.settings.env_json.as_str())))?;

    // The function's own code.
    let namespace: Value = if loaded.module {
        let module = js!(Module::declare(ctx.clone(), file, loaded.source.as_bytes()))?;
        let (module, promise) = js!(module.eval())?;
        drive(ctx, &hooks, &promise, deadline, tripped, file)?;
        if promise.state() == PromiseState::Rejected {
            return Err(rejection(ctx, &promise, file));
        }
        js!(module.namespace())?.into_value()
    } else {
        js!(ctx.eval_with_options::<(), _>(loaded.source.as_bytes(), options(file)))?;
        Value::new_undefined(ctx.clone())
    };
    let lexical: Value = js!(ctx.eval_with_options(
        "typeof handler === 'function' ? handler : undefined",
        options("switchboard-lookup.js"),
    ))?;
    let pick: Function = js!(hooks.get("pick"))?;
    let picked: Value = js!(pick.call((namespace, lexical)))?;
    if picked.is_null() || picked.is_undefined() {
        return Ok(Outcome::NoHandler);
    }
    let Some(request) = &job.request else {
        return Ok(Outcome::Ready);
    };

    // The call.
    evaluating.set(false);
    let invoke: Function = js!(hooks.get("invoke"))?;
    let url = format!("http://localhost/functions/{}", loaded.slug);
    let promise: Promise = js!(invoke.call((
        picked,
        url,
        request.body.as_str(),
        request.execution_id.as_str(),
        request.node_id.as_str(),
    )))?;
    drive(ctx, &hooks, &promise, deadline, tripped, file)?;
    if promise.state() == PromiseState::Rejected {
        return Err(rejection(ctx, &promise, file));
    }
    let answer: Object = match promise.result::<Object>() {
        Some(r) => js!(r)?,
        None => return Err(Stop::NeverSettled),
    };
    let status: f64 = js!(answer.get("status"))?;
    let body: Option<String> = js!(answer.get("body"))?;
    let returned: String = js!(answer.get("returned"))?;
    if !(0.0..=f64::from(u16::MAX)).contains(&status) {
        return Err(Stop::Internal(format!("unexpected status {status}")));
    }
    Ok(Outcome::Answered {
        // In range (checked above) and an integer (the prelude's Response checks).
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        status: status as u16,
        body,
        returned,
    })
}

fn options(filename: &str) -> EvalOptions {
    let mut o = EvalOptions::default();
    o.global = true;
    o.strict = false;
    o.filename = Some(filename.to_owned());
    o
}

/// Runs jobs (and virtual timers) until `promise` settles.
fn drive<'js>(
    ctx: &Ctx<'js>,
    hooks: &Object<'js>,
    promise: &Promise<'js>,
    deadline: Instant,
    tripped: &AtomicBool,
    file: &str,
) -> Result<(), Stop> {
    let fire: Function = hooks.get("fireTimer").map_err(|e| stop(ctx, e, file))?;
    loop {
        if tripped.load(Ordering::Relaxed) || Instant::now() >= deadline {
            return Err(Stop::TimedOut);
        }
        if promise.state() != PromiseState::Pending {
            return Ok(());
        }
        if ctx.execute_pending_job() {
            continue;
        }
        let fired: bool = fire.call(()).map_err(|e| stop(ctx, e, file))?;
        if !fired {
            return Err(Stop::NeverSettled);
        }
    }
}

/// The rejection reason of a rejected `promise`, described.
fn rejection<'js>(ctx: &Ctx<'js>, promise: &Promise<'js>, file: &str) -> Stop {
    match promise.result::<Value>() {
        Some(Err(e)) => stop(ctx, e, file),
        _ => Stop::Internal("the promise was rejected without a reason".to_owned()),
    }
}

/// An rquickjs error as a [`Stop`]: exceptions are described (name, message, location).
fn stop(ctx: &Ctx<'_>, error: rquickjs::Error, file: &str) -> Stop {
    match error {
        rquickjs::Error::Exception => Stop::Exception(describe(&ctx.catch(), file)),
        rquickjs::Error::Allocation => Stop::OutOfMemory,
        other => Stop::Internal(other.to_string()),
    }
}

/// `Name: message (at file:line)` for an Error, the string form of anything else.
fn describe(value: &Value<'_>, file: &str) -> String {
    if let Some(object) = value.as_object() {
        let name: Option<Coerced<String>> = object.get("name").ok();
        let message: Option<Coerced<String>> = object.get("message").ok();
        if let Some(Coerced(message)) = message {
            let name = name.map_or_else(|| "Error".to_owned(), |n| n.0);
            let stack: Option<String> = object.get("stack").ok().flatten();
            let at = stack
                .as_deref()
                .and_then(|s| line_of(s, file))
                .map(|line| format!(" (at {file}:{line})"))
                .unwrap_or_default();
            return format!("{name}: {message}{at}");
        }
    }
    if value.is_null() {
        return "null".to_owned();
    }
    if value.is_undefined() {
        return "undefined".to_owned();
    }
    match value.get::<Coerced<String>>() {
        Ok(Coerced(s)) => s,
        Err(_) => "a value that cannot be shown".to_owned(),
    }
}

/// The first line number of `file` in a QuickJS stack trace (`at f (file:3:5)`, `at file:3`).
fn line_of(stack: &str, file: &str) -> Option<u32> {
    let needle = format!("{file}:");
    let start = stack.find(&needle)? + needle.len();
    let digits: String = stack[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// `host.kvGet`, `kvPut`, `kvDelete`, `kvList`.
fn install_kv<'js>(ctx: &Ctx<'js>, host: &Object<'js>, kv: &Arc<KvHandle>) -> rquickjs::Result<()> {
    // Each binding answers `{"v": value}` or `{"e": message}` (see the prelude's `kvCall`).
    fn answer(r: Result<serde_json::Value, String>) -> String {
        match r {
            Ok(v) => json!({ "v": v }).to_string(),
            Err(e) => json!({ "e": e }).to_string(),
        }
    }
    let k = Arc::clone(kv);
    host.set(
        "kvGet",
        Function::new(ctx.clone(), move |key: String| {
            answer(k.get(&key).map(|v| json!(v)))
        })?,
    )?;
    let k = Arc::clone(kv);
    host.set(
        "kvPut",
        Function::new(ctx.clone(), move |key: String, value: String| {
            answer(k.put(key, value).map(|()| json!(null)))
        })?,
    )?;
    let k = Arc::clone(kv);
    host.set(
        "kvDelete",
        Function::new(ctx.clone(), move |key: String| {
            answer(k.delete(&key).map(|()| json!(null)))
        })?,
    )?;
    let k = Arc::clone(kv);
    host.set(
        "kvList",
        Function::new(ctx.clone(), move |prefix: String| {
            answer(k.list(&prefix).map(|v| json!(v)))
        })?,
    )?;
    Ok(())
}

fn install_fetch<'js>(
    ctx: &Ctx<'js>,
    host: &Object<'js>,
    fetcher: &Fetcher,
    settings: &Arc<Settings>,
    deadline: Instant,
) -> rquickjs::Result<()> {
    let client = Arc::clone(&fetcher.client);
    let handle = fetcher.handle.clone();
    let settings = Arc::clone(settings);
    let count = Cell::new(0_usize);
    let send = move |method: String, url: String, headers: String, body: Option<String>| {
        let answer = fetch_once(
            &*client, &handle, &settings, deadline, &count, method, &url, &headers, body,
        );
        match answer {
            Ok(value) => value.to_string(),
            Err(message) => json!({ "error": settings.redact(&message) }).to_string(),
        }
    };
    host.set("fetch", Function::new(ctx.clone(), send)?)?;
    Ok(())
}

/// One `fetch` (see [`install_fetch`]); an error is the `TypeError`'s message.
#[allow(clippy::too_many_arguments)]
fn fetch_once(
    client: &dyn HttpClient,
    handle: &tokio::runtime::Handle,
    settings: &Settings,
    deadline: Instant,
    count: &Cell<usize>,
    method: String,
    url: &str,
    headers: &str,
    body: Option<String>,
) -> Result<serde_json::Value, String> {
    if count.get() >= MAX_FETCHES {
        return Err(format!(
            "fetch: a function may make at most {MAX_FETCHES} requests per call"
        ));
    }
    let scheme = url.split_once(':').map(|(s, _)| s.to_ascii_lowercase());
    if !matches!(scheme.as_deref(), Some("http" | "https")) || !url.contains("://") {
        return Err("fetch: only http and https URLs can be fetched".to_owned());
    }
    let headers: Vec<(String, String)> = serde_json::from_str(headers)
        .map_err(|_| "fetch: the headers must be name/value string pairs".to_owned())?;
    let now = Instant::now();
    let timeout = deadline.saturating_duration_since(now);
    if timeout.is_zero() {
        return Err("fetch: the function's time is up".to_owned());
    }
    count.set(count.get() + 1);
    let request = HttpRequest {
        method: method.to_ascii_uppercase(),
        url: url.to_owned(),
        headers,
        body: body.map(String::into_bytes),
        timeout,
    };
    let response = handle
        .block_on(client.send(request))
        .map_err(|e| format!("fetch failed: {}: {}", e.kind, e.message))?;
    if response.body.len() > settings.max_response_bytes {
        return Err(format!(
            "fetch failed: transport: the response body of {} bytes is over the {}-byte cap",
            response.body.len(),
            settings.max_response_bytes
        ));
    }
    let headers: Vec<[String; 2]> = response.headers.into_iter().map(|(k, v)| [k, v]).collect();
    Ok(json!({
        "status": response.status,
        "headers": headers,
        "body": String::from_utf8_lossy(&response.body),
    }))
}

#[cfg(test)]
mod tests {
    use super::line_of;

    #[test]
    fn lines_are_found_in_stacks() {
        assert_eq!(line_of("    at handler (a.js:3:11)\n", "a.js"), Some(3));
        assert_eq!(line_of("    at a.js:12\n", "a.js"), Some(12));
        assert_eq!(line_of("    at <eval> (b.js:1:1)\n", "a.js"), None);
    }
}
