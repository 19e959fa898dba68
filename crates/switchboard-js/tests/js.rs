//! The local JavaScript function runner (`JsFunctionInvoker`) on the fixture functions of
//! `tests/data/functions/`: the three forms, the request/response contract of
//! runtime-semantics §8 as `HttpFunctionInvoker` implements it, env and env.KV, the failure
//! modes (throw, timeout, never settling, out of memory, bad bodies), secret redaction, and a
//! function node run end to end by the engine.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchboard_js::{FunctionLimits, JsError, JsFunctionInvoker, JsOptions};
use switchboard_runtime::adapters::{AdapterError, FunctionCall, FunctionInvoker};
use switchboard_runtime::offline::OfflineAdapters;
use switchboard_runtime::state::TriggerType;
use switchboard_runtime::store::{ExecutionStore, MemoryStore};
use switchboard_runtime::{Engine, FlowDefinition, StartRequest, Status, Trigger};

const SECRET: &str = "sk-SECRET-4242";

fn functions_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/functions")
}

fn options() -> JsOptions {
    JsOptions {
        timeout: Duration::from_millis(200),
        memory_limit: 16 * 1024 * 1024,
        env: BTreeMap::from([
            ("API_KEY".to_owned(), SECRET.to_owned()),
            ("REGION".to_owned(), "eu-west".to_owned()),
        ]),
        ..JsOptions::default()
    }
}

fn invoker() -> JsFunctionInvoker {
    JsFunctionInvoker::from_dir(functions_dir(), options()).unwrap()
}

fn payload(vars: Value, edges: Option<Value>) -> Value {
    let mut p = json!({
        "execution_context": {"vars": vars, "system": {"execution_id": "ex_1"},
                              "context": {}, "metadata": {}},
        "flow_info": {"id": "f_1", "name": "Support", "step_id": "route"},
        "flow_events": [],
        "whatsapp_context": {"conversation": {"id": "cv_1"}, "messages": []},
    });
    if let Some(edges) = edges {
        p["available_edges"] = edges;
    }
    p
}

/// Calls `invoker` for `slug` with `vars` (and `edges`, for decide).
async fn call_with(
    invoker: &JsFunctionInvoker,
    id: Option<&str>,
    slug: Option<&str>,
    vars: Value,
    edges: Option<&[String]>,
) -> Result<Value, AdapterError> {
    let map = vars.as_object().cloned().unwrap_or_default();
    let body = payload(vars, edges.map(|e| json!(e)));
    let build = move || body.clone();
    let call = FunctionCall::new(id, slug, "ex_1", "route", &map, edges, None, &build);
    invoker.invoke(&call).await
}

async fn call(invoker: &JsFunctionInvoker, slug: &str) -> Result<Value, AdapterError> {
    call_with(
        invoker,
        None,
        Some(slug),
        json!({"customer_name": "Ana", "points": 21}),
        None,
    )
    .await
}

fn failure(result: Result<Value, AdapterError>, kind: &str) -> AdapterError {
    let e = result.expect_err("the call should fail");
    assert_eq!(e.kind, kind, "{e:?}");
    assert!(!e.message.contains(SECRET), "{e:?}");
    e
}

// --- Loading ---------------------------------------------------------------------------------

#[test]
fn a_directory_loads_every_form() {
    let invoker = invoker();
    let slugs = invoker.slugs();
    for slug in [
        "decide-route",
        "deno-serve",
        "deno-serve-options",
        "greet-handler",
        "greet-worker",
        "infinite-loop",
        "kv-counter",
        "kv-store-counter",
        "memory-hog",
        "never-settles",
        "not-json",
        "plain-object",
        "server-error",
        "throws",
    ] {
        assert!(slugs.contains(&slug), "{slug} in {slugs:?}");
    }
    let shown = format!("{invoker:?}");
    assert!(shown.contains("greet-worker"));
    assert!(!shown.contains(SECRET));
}

struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "switchboard-js-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn broken_files_are_reported_at_load_time() {
    let missing = JsFunctionInvoker::from_dir("/no/such/functions", JsOptions::default());
    let e = missing.unwrap_err();
    assert!(matches!(e, JsError::ReadDir { .. }), "{e:?}");
    assert!(e.to_string().contains("/no/such/functions"), "{e}");

    let dir = TempDir::new();
    std::fs::write(dir.0.join("ok.js"), "function handler() { return {}; }").unwrap();
    std::fs::write(
        dir.0.join("broken.js"),
        "// fine\nasync function handler() {\n  return {vars: {a: 1,}};;\n  let = = 3;\n}\n",
    )
    .unwrap();
    let e = JsFunctionInvoker::from_dir(&dir.0, JsOptions::default()).unwrap_err();
    let JsError::Compile { file, message } = &e else {
        panic!("{e:?}");
    };
    assert_eq!(file, "broken.js");
    assert!(message.starts_with("SyntaxError: "), "{message}");
    assert!(message.contains("(at broken.js:4)"), "{message}");
    assert!(e.to_string().starts_with("`broken.js`: SyntaxError"), "{e}");
    std::fs::remove_file(dir.0.join("broken.js")).unwrap();

    std::fs::write(dir.0.join("latin1.js"), b"// caf\xe9\n").unwrap();
    let e = JsFunctionInvoker::from_dir(&dir.0, JsOptions::default()).unwrap_err();
    assert!(matches!(e, JsError::NotUtf8 { .. }), "{e:?}");
    assert!(e.to_string().contains("latin1.js"), "{e}");
    std::fs::remove_file(dir.0.join("latin1.js")).unwrap();

    std::fs::write(dir.0.join("big.js"), "x".repeat(2048)).unwrap();
    let small = JsOptions {
        max_source_bytes: 1024,
        ..JsOptions::default()
    };
    let e = JsFunctionInvoker::from_dir(&dir.0, small).unwrap_err();
    assert!(matches!(e, JsError::TooLarge { size: 2048, .. }), "{e:?}");
    std::fs::remove_file(dir.0.join("big.js")).unwrap();

    std::fs::write(dir.0.join("nothing.js"), "const x = 1;").unwrap();
    let e = JsFunctionInvoker::from_dir(&dir.0, JsOptions::default()).unwrap_err();
    assert!(matches!(e, JsError::NoHandler { .. }), "{e:?}");
    assert!(
        e.to_string().contains("nothing.js` defines no handler"),
        "{e}"
    );
    std::fs::remove_file(dir.0.join("nothing.js")).unwrap();

    std::fs::create_dir(dir.0.join("ok")).unwrap();
    std::fs::write(
        dir.0.join("ok/index.js"),
        "function handler() { return {}; }",
    )
    .unwrap();
    let e = JsFunctionInvoker::from_dir(&dir.0, JsOptions::default()).unwrap_err();
    assert!(matches!(e, JsError::Duplicate { .. }), "{e:?}");
    assert!(e.to_string().contains("`ok.js` and `ok/index.js`"), "{e}");

    // A top level that throws a secret: reported, redacted.
    let e = JsFunctionInvoker::from_sources(
        [("leaky", "throw new Error('no ' + Deno.env.get('API_KEY'));")],
        options(),
    )
    .unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("Error: no [redacted] (at leaky.js:1)"),
        "{text}"
    );
    assert!(!text.contains(SECRET));

    // Imports are not resolved: no modules, no npm, no Node built-ins.
    let e = JsFunctionInvoker::from_sources(
        [(
            "imports",
            "import fs from 'node:fs';\nexport default { fetch() { return {}; } };",
        )],
        options(),
    )
    .unwrap_err();
    assert!(matches!(e, JsError::Compile { .. }), "{e:?}");
    assert!(
        e.to_string()
            .starts_with("`imports.js`: ReferenceError: could not load module 'node:fs'"),
        "{e}"
    );

    // An id alias must name a loaded function.
    let aliased = JsOptions {
        ids: HashMap::from([("fn_1".to_owned(), "nope".to_owned())]),
        ..JsOptions::default()
    };
    let e =
        JsFunctionInvoker::from_sources([("ok", "function handler() {}")], aliased).unwrap_err();
    assert!(matches!(e, JsError::UnknownAlias { .. }), "{e:?}");
}

// --- The three forms ---------------------------------------------------------------------------

#[tokio::test]
async fn the_handler_form_gets_the_request_and_returns_vars() {
    let invoker = invoker();
    let out = call(&invoker, "greet-handler").await.unwrap();
    assert_eq!(
        out,
        json!({"vars": {
            "greeting": "Hello, Ana!",
            "name_length": 3,
            "method": "POST",
            "url": "http://localhost/functions/greet-handler",
            "content_type": "application/json",
            "execution_id": "ex_1",
            "node_id": "route",
            "step_id": "route",
        }})
    );
    // A plain object is a JSON 200 body.
    let out = call(&invoker, "plain-object").await.unwrap();
    assert_eq!(out, json!({"vars": {"doubled": 42}}));
}

#[tokio::test]
async fn the_deno_serve_form_reads_deno_env() {
    let invoker = invoker();
    let out = call(&invoker, "deno-serve").await.unwrap();
    assert_eq!(
        out,
        json!({"vars": {"served_by": "deno", "region": "eu-west", "missing": true, "customer": "Ana"}})
    );
    let out = call(&invoker, "deno-serve-options").await.unwrap();
    assert_eq!(
        out,
        json!({"vars": {"form": "options-handler", "method": "POST"}})
    );
    let inline = JsFunctionInvoker::from_sources(
        [(
            "inline",
            "Deno.serve({ handler: (req) => Response.json({ vars: { form: 'handler-option' } }) });",
        )],
        options(),
    )
    .unwrap();
    assert_eq!(
        call(&inline, "inline").await.unwrap(),
        json!({"vars": {"form": "handler-option"}})
    );
}

#[tokio::test]
async fn the_export_default_form_is_a_module() {
    let invoker = invoker();
    let out = call(&invoker, "greet-worker").await.unwrap();
    assert_eq!(
        out,
        json!({"vars": {"greeting": "Hi Ana", "region": "eu-west"}})
    );
}

#[tokio::test]
async fn a_decide_function_picks_an_available_edge() {
    let invoker = invoker();
    let edges = vec!["sales".to_owned(), "support".to_owned()];
    let out = call_with(
        &invoker,
        None,
        Some("decide-route"),
        json!({"last_user_input": "I want to BUY shoes"}),
        Some(&edges),
    )
    .await
    .unwrap();
    assert_eq!(
        out,
        json!({"next_edge": "sales", "vars": {"decision_reason": "matched sales", "edges_seen": 2}})
    );
    let out = call_with(
        &invoker,
        None,
        Some("decide-route"),
        json!({"last_user_input": "my order is late"}),
        Some(&edges),
    )
    .await
    .unwrap();
    assert_eq!(out["next_edge"], "support");
}

#[tokio::test]
async fn functions_resolve_by_id_then_slug() {
    let options = JsOptions {
        ids: HashMap::from([("3f6c-greet".to_owned(), "greet-worker".to_owned())]),
        ..options()
    };
    let invoker = JsFunctionInvoker::from_dir(functions_dir(), options).unwrap();
    let vars = json!({"customer_name": "Ana"});
    // An id alias wins over the slug.
    let out = call_with(
        &invoker,
        Some("3f6c-greet"),
        Some("greet-handler"),
        vars.clone(),
        None,
    )
    .await
    .unwrap();
    assert_eq!(out["vars"]["greeting"], "Hi Ana");
    // An id that is a slug resolves too.
    let out = call_with(&invoker, Some("greet-handler"), None, vars.clone(), None)
        .await
        .unwrap();
    assert_eq!(out["vars"]["greeting"], "Hello, Ana!");
    // An unknown id falls back to the slug.
    let out = call_with(
        &invoker,
        Some("unknown"),
        Some("plain-object"),
        json!({"points": 1}),
        None,
    )
    .await
    .unwrap();
    assert_eq!(out["vars"]["doubled"], 2);
    // Neither resolves.
    let e = failure(
        call_with(&invoker, Some("x-id"), Some("x-slug"), vars.clone(), None).await,
        "not_found",
    );
    assert_eq!(
        e.message,
        "no local function for id `x-id` or slug `x-slug`"
    );
    let e = failure(
        call_with(&invoker, None, None, vars, None).await,
        "not_found",
    );
    assert!(e.message.contains("names no function"), "{e:?}");
}

// --- env and env.KV ------------------------------------------------------------------------------

#[tokio::test]
async fn secrets_are_visible_to_functions_and_redacted_from_errors() {
    let invoker = invoker();
    let out = call(&invoker, "use-secret").await.unwrap();
    assert_eq!(
        out,
        json!({"vars": {"has_key": true, "key_length": SECRET.len(), "same_in_deno": true}})
    );
    let e = failure(call(&invoker, "leak-secret").await, "adapter");
    assert_eq!(
        e.message,
        "function `leak-secret` threw: Error: key=[redacted] (at leak-secret.js:4)"
    );
}

#[tokio::test]
async fn kv_state_persists_across_calls_of_one_invoker() {
    let invoker = invoker();
    let mut counts = Vec::new();
    for _ in 0..3 {
        let out = call(&invoker, "kv-counter").await.unwrap();
        counts.push(out["vars"]["count"].clone());
    }
    assert_eq!(counts, vec![json!(1), json!(2), json!(3)]);
    let out = call(&invoker, "kv-counter").await.unwrap();
    assert_eq!(
        out["vars"],
        json!({"count": 4, "listed": ["seen:1", "seen:2", "seen:3", "seen:4"],
               "complete": true, "text": "{\"n\":4}", "missing": null})
    );
    // A clone shares the namespace; another invoker has its own.
    let clone = invoker.clone();
    assert_eq!(
        call(&clone, "kv-counter").await.unwrap()["vars"]["count"],
        5
    );
    let other = JsFunctionInvoker::from_dir(functions_dir(), options()).unwrap();
    assert_eq!(
        call(&other, "kv-counter").await.unwrap()["vars"]["count"],
        1
    );
    // Values are strings.
    let e = failure(call(&invoker, "kv-misuse").await, "adapter");
    assert!(
        e.message.contains(
            "TypeError: KV.put: the value must be a string (use JSON.stringify for objects)"
        ),
        "{e:?}"
    );
}

#[tokio::test]
async fn kv_namespaces_are_per_function() {
    // Two functions writing the same key do not see each other's value.
    let invoker = JsFunctionInvoker::from_sources(
        [
            ("a", "async function handler(r, env) { await env.KV.put('k', 'from a'); return { vars: { seen: await env.KV.get('k') } }; }"),
            ("b", "async function handler(r, env) { return { vars: { seen: await env.KV.get('k') } }; }"),
        ],
        options(),
    )
    .unwrap();
    assert_eq!(call(&invoker, "a").await.unwrap()["vars"]["seen"], "from a");
    assert_eq!(
        call(&invoker, "b").await.unwrap()["vars"]["seen"],
        Value::Null
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_in_a_store_survives_the_invoker_and_keeps_its_limits() {
    // `kv_store`: env.KV lives in the execution store, one namespace per function — a new
    // invoker (a restarted process) on the same store goes on counting.
    let store: Arc<dyn ExecutionStore> = Arc::new(MemoryStore::new());
    let with_store = || JsOptions {
        kv_store: Some(Arc::clone(&store)),
        ..options()
    };
    let first = JsFunctionInvoker::from_dir(functions_dir(), with_store()).unwrap();
    for n in 1..=2 {
        let out = call(&first, "kv-store-counter").await.unwrap();
        assert_eq!(out["vars"]["count"], n);
    }
    drop(first);
    let second = JsFunctionInvoker::from_dir(functions_dir(), with_store()).unwrap();
    let out = call(&second, "kv-store-counter").await.unwrap();
    assert_eq!(out["vars"]["count"], 3, "{out}");
    assert_eq!(out["vars"]["keys"], json!(["count"]));
    assert_eq!(
        out["vars"]["too_big"],
        "KV.put: the value is 1048577 bytes, over the 1048576-byte limit"
    );
    assert_eq!(
        store
            .kv_get("kv-store-counter", "count")
            .await
            .unwrap()
            .as_deref(),
        Some("3"),
        "the namespace is the function's slug"
    );
    assert!(store.kv_get("kv-counter", "count").await.unwrap().is_none());
    // Without a store, the memory namespace starts empty again.
    let memory = invoker();
    assert_eq!(
        call(&memory, "kv-store-counter").await.unwrap()["vars"]["count"],
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_in_sqlite_survives_a_restart() {
    // The durable store: a process counts to 2, stops; the next one (a new store on the same
    // file, a new invoker) counts on from 3.
    let dir = TempDir::new();
    let path = dir.0.join("state.sqlite");
    for expected in [1, 2, 3] {
        let store: Arc<dyn ExecutionStore> =
            Arc::new(switchboard_sqlite::SqliteStore::open(&path).unwrap());
        let invoker = JsFunctionInvoker::from_dir(
            functions_dir(),
            JsOptions {
                kv_store: Some(store),
                ..options()
            },
        )
        .unwrap();
        let out = call(&invoker, "kv-store-counter").await.unwrap();
        assert_eq!(out["vars"]["count"], expected, "{out}");
    }
}

#[tokio::test]
async fn url_search_params_base64_and_abort_controller_work() {
    let out = call(&invoker(), "url-and-friends").await.unwrap();
    assert_eq!(
        out["vars"],
        json!({
            "href": "https://shop.example.com/a/cakes?q=carrot+cake&size=3&note=%C3%BCber+%26+more#top",
            "host": "shop.example.com",
            "origin": "https://shop.example.com",
            "pathname": "/a/cakes",
            "search": "?q=carrot+cake&size=3&note=%C3%BCber+%26+more",
            "q": "carrot cake",
            "note": "über & more",
            "hash": "#top",
            "relative": "https://api.example.com/v1/orders/42?x=1",
            "params": "a=1&b=two+words&a=3",
            "all_a": ["1", "3"],
            "sorted": "a=2&a=1&z=1",
            "can_parse": [true, false],
            "invalid": "TypeError",
            "btoa": "aOlsbG8=",
            "atob": "hello world",
            "bad_atob": "InvalidCharacterError",
            "heard": "abort",
            "aborted": "AbortError",
            "signal_aborted": true,
            "uuid": "string",
            "json": "{\"u\":\"https://x.io/p\"}",
        })
    );
}

#[tokio::test]
async fn a_function_can_have_its_own_limits() {
    // `limits` (a Kapso function.yaml's runtime_config): one function gets more time.
    let source = "async function handler() { const end = Date.now() + 400; while (Date.now() < end) {} return { vars: { done: true } }; }";
    let mut opts = options();
    opts.limits.insert(
        "patient".to_owned(),
        FunctionLimits {
            timeout: Some(Duration::from_secs(5)),
            memory_limit: None,
        },
    );
    let invoker =
        JsFunctionInvoker::from_sources([("patient", source), ("hasty", source)], opts).unwrap();
    assert_eq!(
        call(&invoker, "patient").await.unwrap()["vars"]["done"],
        true
    );
    let e = failure(call(&invoker, "hasty").await, "timeout");
    assert!(e.message.contains("200 ms"), "{e:?}");
}

// --- Failures --------------------------------------------------------------------------------------

#[tokio::test]
async fn a_throw_is_an_adapter_failure_with_its_location() {
    let e = failure(call(&invoker(), "throws").await, "adapter");
    assert_eq!(
        e.message,
        "function `throws` threw: TypeError: order route is not valid (at throws.js:4)"
    );
    assert_eq!(e.status, None);
}

#[tokio::test]
async fn an_infinite_loop_is_interrupted_at_the_deadline() {
    let invoker = invoker();
    let started = Instant::now();
    let e = failure(call(&invoker, "infinite-loop").await, "timeout");
    let took = started.elapsed();
    assert_eq!(
        e.message,
        "function `infinite-loop` did not finish within 200 ms"
    );
    assert!(took >= Duration::from_millis(200), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[tokio::test]
async fn a_promise_that_never_settles_fails_at_once() {
    let invoker = invoker();
    let started = Instant::now();
    let e = failure(call(&invoker, "never-settles").await, "adapter");
    assert!(
        e.message.contains("the function's promise never settled"),
        "{e:?}"
    );
    assert!(started.elapsed() < Duration::from_millis(200));
}

#[tokio::test]
async fn timers_run_on_a_virtual_clock() {
    let started = Instant::now();
    let out = call(&invoker(), "timers").await.unwrap();
    assert_eq!(out, json!({"vars": {"order": ["early", "late"]}}));
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn a_memory_hog_runs_out_of_memory_without_harm() {
    // A generous deadline: the memory limit, not the clock, must stop it.
    let invoker = JsFunctionInvoker::from_dir(
        functions_dir(),
        JsOptions {
            timeout: Duration::from_secs(20),
            ..options()
        },
    )
    .unwrap();
    let e = failure(call(&invoker, "memory-hog").await, "adapter");
    assert!(e.message.contains("ran out of memory"), "{e:?}");
    assert!(e.message.contains("16777216 bytes"), "{e:?}");
    // The host and the invoker are fine.
    assert_eq!(
        call(&invoker, "plain-object").await.unwrap(),
        json!({"vars": {"doubled": 42}})
    );
}

#[tokio::test]
async fn bodies_are_judged_as_http_responses() {
    let invoker = invoker();
    let e = failure(call(&invoker, "not-json").await, "invalid_json");
    assert!(
        e.message
            .starts_with("function `not-json` answered with a body that is not JSON"),
        "{e:?}"
    );
    let e = failure(call(&invoker, "server-error").await, "http_status");
    assert_eq!(e.status, Some(500));
    assert_eq!(e.message, "function `server-error` answered HTTP 500");
    let e = failure(call(&invoker, "returns-array").await, "invalid_json");
    assert_eq!(
        e.message,
        "function `returns-array` answered with a JSON array, not an object"
    );
    let e = failure(call(&invoker, "returns-nothing").await, "invalid_json");
    assert!(e.message.contains("returned nothing"), "{e:?}");

    let small = JsOptions {
        max_response_bytes: 64,
        ..options()
    };
    let big = JsFunctionInvoker::from_sources(
        [(
            "big",
            "function handler() { return { vars: { s: 'x'.repeat(100) } }; }",
        )],
        small,
    )
    .unwrap();
    let e = failure(call(&big, "big").await, "transport");
    assert!(e.message.contains("over the 64-byte cap"), "{e:?}");
}

#[tokio::test]
async fn the_web_apis_of_the_prelude_work() {
    let out = call(&invoker(), "web-apis").await.unwrap();
    assert_eq!(
        out["vars"],
        json!({
            "headers": ["two=b", "x-one=1, 2"],
            "has": true,
            "entries": 2,
            "byte_length": 10,
            "round_trip": "héllo €",
            "uuid_ok": true,
            "text_status": 201,
            "text_ok": true,
            "text_type": "text/plain;charset=UTF-8",
            "text_body": "plain text",
            "fetch_error": "fetch is not available in the local function runner (functions run sandboxed in QuickJS, without network access)",
        })
    );
}

#[tokio::test]
async fn calls_do_not_share_globals() {
    let invoker = JsFunctionInvoker::from_sources(
        [(
            "counter",
            "var n = 0; globalThis.hits = (globalThis.hits || 0) + 1;\n\
             function handler() { n += 1; return { vars: { n, hits } }; }",
        )],
        options(),
    )
    .unwrap();
    for _ in 0..2 {
        assert_eq!(
            call(&invoker, "counter").await.unwrap(),
            json!({"vars": {"n": 1, "hits": 1}})
        );
    }
}

#[tokio::test]
async fn other_handler_shapes_are_found() {
    let invoker = JsFunctionInvoker::from_sources(
        [
            (
                "arrow",
                "const handler = async (request, env) => ({ vars: { shape: 'const arrow', region: env.REGION } });",
            ),
            (
                "default-fn",
                "export default async function (request, env) { return Response.json({ vars: { shape: 'default function' } }); }",
            ),
            (
                "named-export",
                "export async function handler(request) { return { vars: { shape: 'exported handler' } }; }",
            ),
        ],
        options(),
    )
    .unwrap();
    assert_eq!(
        call(&invoker, "arrow").await.unwrap(),
        json!({"vars": {"shape": "const arrow", "region": "eu-west"}})
    );
    assert_eq!(
        call(&invoker, "default-fn").await.unwrap(),
        json!({"vars": {"shape": "default function"}})
    );
    assert_eq!(
        call(&invoker, "named-export").await.unwrap(),
        json!({"vars": {"shape": "exported handler"}})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deep_recursion_and_parallel_calls_are_contained() {
    let invoker = JsFunctionInvoker::from_sources(
        [
            ("recurse", "function f(n) { return f(n + 1) + 1; }\nfunction handler() { return { vars: { n: f(0) } }; }"),
            ("echo", "async function handler(request) {\n  const p = await request.json();\n  return { vars: { back: p.execution_context.vars.i } };\n}"),
        ],
        // Sixteen calls at once on a loaded machine can each take longer than the other
        // tests' 200 ms; what is checked here is containment, not speed.
        JsOptions {
            timeout: Duration::from_secs(5),
            ..options()
        },
    )
    .unwrap();
    let e = failure(call(&invoker, "recurse").await, "adapter");
    assert!(
        e.message
            .starts_with("function `recurse` threw: RangeError: Maximum call stack size exceeded"),
        "{e:?}"
    );
    let calls = (0..16).map(|i| {
        let invoker = invoker.clone();
        async move { call_with(&invoker, None, Some("echo"), json!({"i": i}), None).await }
    });
    let results = futures_join(calls).await;
    for (i, r) in results.into_iter().enumerate() {
        assert_eq!(r.unwrap(), json!({"vars": {"back": i}}));
    }
}

/// Runs the futures concurrently (spawned on the runtime), in order.
async fn futures_join<F>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

// --- End to end ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_runs_a_function_node_with_a_local_js_function() {
    use switchboard_model::{Flow, Node};

    let functions = invoker();
    let offline = OfflineAdapters::default();
    let mut adapters = offline.adapters();
    adapters.functions = Arc::new(functions);
    let engine = Engine::builder(Arc::new(MemoryStore::new()))
        .adapters(adapters)
        .build();

    let flow = Flow::new("JS end to end")
        .node(Node::start("start"))
        .node(
            Node::function("greet", "unknown-id")
                .with("function_slug", "greet-handler")
                .with("save_response_to", "fn_response"),
        )
        .edge("start", "greet");
    engine
        .register_flow(FlowDefinition {
            id: "e2e".into(),
            slug: None,
            version: "1".into(),
            flow,
        })
        .unwrap();
    engine
        .add_trigger(Trigger {
            flow_id: "e2e".into(),
            trigger_type: TriggerType::ApiCall,
            phone_number_id: None,
            active: true,
        })
        .unwrap();
    let mut variables = serde_json::Map::new();
    variables.insert("customer_name".into(), json!("Ana"));
    let started = engine
        .start_execution(StartRequest {
            flow: "e2e".into(),
            phone_number: "+14155550100".into(),
            variables,
            ..StartRequest::default()
        })
        .await
        .unwrap();
    let id = started["execution_id"].as_str().unwrap();
    let exec = engine.get_execution(id).await.unwrap();
    assert_eq!(exec.status, Status::Ended, "{:?}", exec.error_details);
    let vars = &exec.execution_context["vars"];
    assert_eq!(vars["greeting"], "Hello, Ana!");
    assert_eq!(vars["name_length"], 3);
    assert_eq!(vars["execution_id"], id);
    assert_eq!(vars["node_id"], "greet");
    assert_eq!(vars["step_id"], "greet");
    assert_eq!(vars["fn_response"]["vars"]["greeting"], "Hello, Ana!");
    assert_eq!(vars["customer_name"], "Ana");
}

// --- fetch ---------------------------------------------------------------------------------

/// A one-function invoker whose `fetch` goes through `http`, with `BASE_URL` in its env.
fn fetching(
    source: &str,
    http: Arc<dyn switchboard_runtime::adapters::HttpClient>,
    base_url: &str,
) -> JsFunctionInvoker {
    let mut options = options();
    options.timeout = Duration::from_secs(10);
    options
        .env
        .insert("BASE_URL".to_owned(), base_url.to_owned());
    options.http = Some(http);
    JsFunctionInvoker::from_sources([("fetcher", source)], options).unwrap()
}

/// A client that records the request and answers a fixed response.
#[derive(Default)]
struct FakeHttp {
    seen: std::sync::Mutex<Vec<switchboard_runtime::adapters::HttpRequest>>,
}

#[async_trait::async_trait]
impl switchboard_runtime::adapters::HttpClient for FakeHttp {
    async fn send(
        &self,
        request: switchboard_runtime::adapters::HttpRequest,
    ) -> switchboard_runtime::adapters::AdapterResult<switchboard_runtime::adapters::HttpResponse>
    {
        self.seen.lock().unwrap().push(request);
        Ok(switchboard_runtime::adapters::HttpResponse {
            status: 299,
            headers: vec![("x-fake".to_owned(), "yes".to_owned())],
            body: b"caf\xc3\xa9 \xff".to_vec(),
        })
    }
}

#[tokio::test]
async fn fetch_sends_through_the_given_client() {
    let fake = Arc::new(FakeHttp::default());
    let invoker = fetching(
        r#"async function handler(request, env) {
          const r = await fetch(new Request("https://api.example.test/x", { method: "put" }), {
            headers: [["X-Token", env.API_KEY]],
            body: "payload",
          });
          let typeError = null;
          try { await fetch("https://api.example.test/y", { method: "POST", body: { a: 1 } }); }
          catch (e) { typeError = e.name + ": " + e.message; }
          return { vars: { status: r.status, ok: r.ok, fake: r.headers.get("x-fake"),
                           body: await r.text(), type_error: typeError } };
        }"#,
        fake.clone(),
        "http://127.0.0.1:9",
    );
    let out = call(&invoker, "fetcher").await.unwrap();
    assert_eq!(
        out["vars"],
        json!({"status": 299, "ok": true, "fake": "yes", "body": "café \u{fffd}",
               "type_error": "TypeError: fetch: the body must be a string (use JSON.stringify for objects)"})
    );
    let seen = fake.seen.lock().unwrap();
    assert_eq!(seen.len(), 1, "the bad body is refused before sending");
    assert_eq!(seen[0].method, "PUT");
    assert_eq!(seen[0].url, "https://api.example.test/x");
    assert_eq!(
        seen[0].headers,
        vec![("x-token".to_owned(), SECRET.to_owned())]
    );
    assert_eq!(seen[0].body.as_deref(), Some(&b"payload"[..]));
    assert!(seen[0].timeout <= Duration::from_secs(10) && seen[0].timeout > Duration::ZERO);
}

#[tokio::test]
async fn without_a_client_fetch_is_not_available() {
    let invoker = JsFunctionInvoker::from_sources(
        [(
            "fetcher",
            r#"async function handler() {
              try { await fetch("http://127.0.0.1:9/"); } catch (e) { return { vars: { e: e.message } }; }
              return { vars: {} };
            }"#,
        )],
        options(),
    )
    .unwrap();
    let out = call(&invoker, "fetcher").await.unwrap();
    assert_eq!(
        out["vars"]["e"],
        "fetch is not available in the local function runner (functions run sandboxed in QuickJS, without network access)"
    );
    assert!(format!("{:?}", options()).contains("http: false"));
}

mod over_http {
    use super::*;
    use switchboard_http::ReqwestHttpClient;
    use wiremock::matchers::{body_json, header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    fn reqwest_client() -> Arc<dyn switchboard_runtime::adapters::HttpClient> {
        Arc::new(ReqwestHttpClient::new().unwrap())
    }

    #[tokio::test]
    async fn a_function_gets_a_json_api_with_a_secret_header() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/v1/customer"))
            .and(header("authorization", format!("Bearer {SECRET}").as_str()))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({"tier": "gold", "points": 7})),
            )
            .expect(1)
            .mount(&server)
            .await;
        let invoker = fetching(
            r#"async function handler(request, env) {
              const r = await fetch(env.BASE_URL + "/v1/customer", {
                headers: { Authorization: "Bearer " + env.API_KEY, Accept: "application/json" },
              });
              const data = await r.json();
              return { vars: { tier: data.tier, points: data.points, status: r.status, ok: r.ok,
                               type: r.headers.get("content-type") } };
            }"#,
            reqwest_client(),
            &server.uri(),
        );
        let out = call(&invoker, "fetcher").await.unwrap();
        assert_eq!(
            out["vars"],
            json!({"tier": "gold", "points": 7, "status": 200, "ok": true, "type": "application/json"})
        );
        let received = server.received_requests().await.unwrap();
        assert_eq!(received.len(), 1);
        assert_eq!(
            received[0]
                .headers
                .get("authorization")
                .unwrap()
                .to_str()
                .unwrap(),
            format!("Bearer {SECRET}")
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_function_posts_json() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v1/orders"))
            .and(header("content-type", "application/json"))
            .and(body_json(json!({"item": "tea", "qty": 2})))
            .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": "ord_1"})))
            .expect(1)
            .mount(&server)
            .await;
        let invoker = fetching(
            r#"export default { async fetch(request, env) {
              const r = await fetch(env.BASE_URL + "/v1/orders", {
                method: "POST",
                headers: new Headers({ "Content-Type": "application/json" }),
                body: JSON.stringify({ item: "tea", qty: 2 }),
              });
              return Response.json({ vars: { status: r.status, order: (await r.json()).id } });
            } };"#,
            reqwest_client(),
            &server.uri(),
        );
        let out = call(&invoker, "fetcher").await.unwrap();
        assert_eq!(out["vars"], json!({"status": 201, "order": "ord_1"}));
    }

    #[tokio::test]
    async fn a_non_2xx_answer_is_a_response_not_an_exception() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/missing"))
            .respond_with(ResponseTemplate::new(404).set_body_string("nope"))
            .mount(&server)
            .await;
        let invoker = fetching(
            r#"async function handler(request, env) {
              const r = await fetch(new Request(env.BASE_URL + "/missing"));
              return { vars: { status: r.status, ok: r.ok, text: await r.text() } };
            }"#,
            reqwest_client(),
            &server.uri(),
        );
        let out = call(&invoker, "fetcher").await.unwrap();
        assert_eq!(
            out["vars"],
            json!({"status": 404, "ok": false, "text": "nope"})
        );
    }

    /// A 127.0.0.1 port nothing listens on.
    fn closed_port() -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        format!("http://127.0.0.1:{port}")
    }

    #[tokio::test]
    async fn a_refused_connection_is_a_type_error_the_function_can_catch() {
        let invoker = fetching(
            r#"async function handler(request, env) {
              try {
                await fetch(env.BASE_URL + "/?key=" + env.API_KEY);
                return { vars: { caught: false } };
              } catch (e) {
                return { vars: { caught: true, type_error: e instanceof TypeError, message: e.message } };
              }
            }"#,
            reqwest_client(),
            &closed_port(),
        );
        let out = call(&invoker, "fetcher").await.unwrap();
        assert_eq!(out["vars"]["caught"], true);
        assert_eq!(out["vars"]["type_error"], true);
        let message = out["vars"]["message"].as_str().unwrap();
        assert!(message.starts_with("fetch failed"), "{message}");
        assert!(!message.contains(SECRET), "{message}");
    }

    #[tokio::test]
    async fn an_uncaught_fetch_failure_fails_the_call_without_the_secret() {
        let invoker = fetching(
            r#"async function handler(request, env) {
              await fetch(env.BASE_URL + "/?key=" + env.API_KEY, { headers: { "x-key": env.API_KEY } });
              return { vars: {} };
            }"#,
            reqwest_client(),
            &closed_port(),
        );
        let e = failure(call(&invoker, "fetcher").await, "adapter");
        assert!(e.message.contains("fetch failed"), "{e:?}");
        assert!(e.message.contains("TypeError"), "{e:?}");
    }

    #[tokio::test]
    async fn only_http_urls_and_fifty_requests_per_call() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/ping"))
            .respond_with(ResponseTemplate::new(204))
            .expect(50)
            .mount(&server)
            .await;
        let invoker = fetching(
            r#"async function handler(request, env) {
              let file = null;
              try { await fetch("file:///etc/passwd"); } catch (e) { file = e.name + ": " + e.message; }
              let done = 0, limit = null;
              try {
                for (let i = 0; i < 51; i++) { await fetch(env.BASE_URL + "/ping"); done++; }
              } catch (e) { limit = e.name + ": " + e.message; }
              return { vars: { file, done, limit } };
            }"#,
            reqwest_client(),
            &server.uri(),
        );
        let out = call(&invoker, "fetcher").await.unwrap();
        assert_eq!(
            out["vars"],
            json!({
                "file": "TypeError: fetch: only http and https URLs can be fetched",
                "done": 50,
                "limit": "TypeError: fetch: a function may make at most 50 requests per call",
            })
        );
    }
}
