//! The HTTP adapters against real servers on 127.0.0.1: `wiremock` for ordinary exchanges, a
//! tiny blocking TCP server (std threads) for what wiremock cannot express (chunked bodies
//! without a length, a body that stalls half way).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use switchboard_http::{FunctionConfig, HttpClientConfig, HttpFunctionInvoker, ReqwestHttpClient};
use switchboard_runtime::adapters::{
    AdapterError, FunctionCall, FunctionInvoker, HttpClient, HttpRequest, HttpResponse,
};
use switchboard_runtime::offline::{MapSecrets, OfflineAdapters};
use switchboard_runtime::state::TriggerType;
use switchboard_runtime::store::MemoryStore;
use switchboard_runtime::{Engine, FlowDefinition, StartRequest, Status, Trigger};
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SECRET: &str = "sk-SECRET-4242";
const MIB: usize = 1024 * 1024;

fn client() -> ReqwestHttpClient {
    ReqwestHttpClient::new().unwrap()
}

fn request(method: &str, url: &str) -> HttpRequest {
    HttpRequest {
        method: method.into(),
        url: url.into(),
        headers: Vec::new(),
        body: None,
        timeout: Duration::from_secs(10),
    }
}

/// A request carrying a secret header.
fn secret_request(method: &str, url: &str) -> HttpRequest {
    HttpRequest {
        headers: vec![
            ("Authorization".into(), format!("Bearer {SECRET}")),
            ("X-Api-Key".into(), SECRET.into()),
        ],
        ..request(method, url)
    }
}

fn header_of<'a>(resp: &'a HttpResponse, name: &str) -> Option<&'a str> {
    resp.headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Asserts the error has `kind` and does not leak the secret.
#[track_caller]
fn assert_failure(result: Result<HttpResponse, AdapterError>, kind: &str) -> AdapterError {
    let e = result.expect_err("expected a failure");
    assert_eq!(e.kind, kind, "{e:?}");
    assert!(
        !format!("{e:?} {e}").contains(SECRET),
        "secret leaked: {e:?}"
    );
    e
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A blocking server answering up to `connections` connections with `respond` after reading
/// the request head. Returns its base URL.
fn raw_server(connections: usize, respond: fn(&mut TcpStream)) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(connections) {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && head.len() < 64 * 1024 {
                match stream.read(&mut byte) {
                    Ok(1) => head.push(byte[0]),
                    _ => break,
                }
            }
            respond(&mut stream);
        }
    });
    format!("http://{addr}")
}

// --- ReqwestHttpClient ---------------------------------------------------------------------------

#[tokio::test]
async fn status_headers_and_json_body_round_trip() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/orders"))
        .and(header("x-request", "r1"))
        .and(body_json(json!({"order": 7})))
        .respond_with(
            ResponseTemplate::new(201)
                .insert_header("X-Single", "one")
                .append_header("X-Multi", "a")
                .append_header("X-Multi", "b")
                .set_body_json(json!({"id": "o_7", "items": [1, 2]})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let resp = client()
        .send(HttpRequest {
            headers: vec![
                ("X-Request".into(), "r1".into()),
                ("Content-Type".into(), "application/json".into()),
            ],
            body: Some(br#"{"order":7}"#.to_vec()),
            ..request("POST", &format!("{}/orders", server.uri()))
        })
        .await
        .unwrap();
    assert_eq!(resp.status, 201);
    assert_eq!(header_of(&resp, "x-single"), Some("one"));
    assert_eq!(header_of(&resp, "x-multi"), Some("a, b"));
    assert_eq!(header_of(&resp, "content-type"), Some("application/json"));
    assert!(
        resp.headers
            .iter()
            .all(|(k, _)| *k == k.to_ascii_lowercase()),
        "{:?}",
        resp.headers
    );
    assert_eq!(
        resp.headers.iter().filter(|(k, _)| k == "x-multi").count(),
        1,
        "repeated headers are joined into one"
    );
    let body: Value = serde_json::from_slice(&resp.body).unwrap();
    assert_eq!(body, json!({"id": "o_7", "items": [1, 2]}));
}

#[tokio::test]
async fn text_bodies_and_any_status_are_responses() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/hello"))
        .respond_with(ResponseTemplate::new(200).set_body_string("héllo"))
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/gone"))
        .respond_with(ResponseTemplate::new(404).set_body_string("not here"))
        .mount(&server)
        .await;
    let resp = client()
        .send(request("GET", &format!("{}/hello", server.uri())))
        .await
        .unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body, "héllo".as_bytes());
    // Lower-case methods are accepted too.
    let resp = client()
        .send(request("delete", &format!("{}/gone", server.uri())))
        .await
        .unwrap();
    assert_eq!((resp.status, resp.body.as_slice()), (404, &b"not here"[..]));
}

#[tokio::test]
async fn bodies_over_the_cap_are_transport_failures() {
    let server = MockServer::start().await;
    Mock::given(path("/exact"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(vec![b'x'; 5 * MIB]))
        .mount(&server)
        .await;
    Mock::given(path("/over"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(vec![b'x'; 5 * MIB + 1]))
        .mount(&server)
        .await;
    let c = client();
    let resp = c
        .send(request("GET", &format!("{}/exact", server.uri())))
        .await
        .unwrap();
    assert_eq!(resp.body.len(), 5 * MIB, "exactly the cap is fine");
    let e = assert_failure(
        c.send(secret_request("GET", &format!("{}/over", server.uri())))
            .await,
        "transport",
    );
    assert_eq!(e.message, "response larger than 5 MiB");
}

#[tokio::test]
async fn streamed_bodies_without_a_length_are_capped_too() {
    // Chunked, no Content-Length: the cap applies while streaming.
    let url = raw_server(2, |s| {
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n");
        for _ in 0..64 {
            let mut chunk = b"400\r\n".to_vec();
            chunk.extend_from_slice(&[b'y'; 1024]);
            chunk.extend_from_slice(b"\r\n");
            if s.write_all(&chunk).is_err() {
                return;
            }
        }
        let _ = s.write_all(b"0\r\n\r\n");
    });
    let small = ReqwestHttpClient::with_config(HttpClientConfig {
        max_response_bytes: 10 * 1024,
        ..HttpClientConfig::default()
    })
    .unwrap();
    assert_eq!(small.config().max_response_bytes, 10 * 1024);
    let e = assert_failure(
        small.send(secret_request("GET", &format!("{url}/"))).await,
        "transport",
    );
    assert_eq!(e.message, "response larger than 10 KiB");
    // The default cap takes the whole 64 KiB.
    let resp = client()
        .send(request("GET", &format!("{url}/")))
        .await
        .unwrap();
    assert_eq!(resp.body.len(), 64 * 1024);
}

#[tokio::test]
async fn slow_servers_time_out() {
    let server = MockServer::start().await;
    Mock::given(path("/slow"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(3)))
        .mount(&server)
        .await;
    let started = std::time::Instant::now();
    let e = assert_failure(
        client()
            .send(HttpRequest {
                timeout: Duration::from_millis(300),
                ..secret_request("GET", &format!("{}/slow", server.uri()))
            })
            .await,
        "timeout",
    );
    assert!(started.elapsed() < Duration::from_secs(2), "{e:?}");
}

#[tokio::test]
async fn a_body_that_stalls_times_out() {
    let url = raw_server(1, |s| {
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nab");
        let _ = s.flush();
        std::thread::sleep(Duration::from_secs(3));
    });
    let started = std::time::Instant::now();
    assert_failure(
        client()
            .send(HttpRequest {
                timeout: Duration::from_millis(400),
                ..secret_request("GET", &format!("{url}/"))
            })
            .await,
        "timeout",
    );
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn refused_connections_are_transport_failures() {
    let port = closed_port();
    let e = assert_failure(
        client()
            .send(secret_request(
                "POST",
                &format!("http://127.0.0.1:{port}/x"),
            ))
            .await,
        "transport",
    );
    assert!(e.message.contains("connect"), "{e:?}");
    assert!(!e.message.contains(&port.to_string()), "no URL in messages");
}

#[tokio::test]
async fn redirects_are_followed_up_to_ten_times() {
    let server = MockServer::start().await;
    // /r/N redirects to /r/N-1; /r/0 answers.
    for n in 1..=11 {
        Mock::given(path(format!("/r/{n}")))
            .respond_with(
                ResponseTemplate::new(302).insert_header("Location", format!("/r/{}", n - 1)),
            )
            .mount(&server)
            .await;
    }
    Mock::given(path("/r/0"))
        .respond_with(ResponseTemplate::new(200).set_body_string("arrived"))
        .mount(&server)
        .await;
    Mock::given(path("/loop"))
        .respond_with(ResponseTemplate::new(307).insert_header("Location", "/loop"))
        .mount(&server)
        .await;
    let c = client();
    let resp = c
        .send(request("GET", &format!("{}/r/10", server.uri())))
        .await
        .unwrap();
    assert_eq!((resp.status, resp.body.as_slice()), (200, &b"arrived"[..]));
    let e = assert_failure(
        c.send(secret_request("GET", &format!("{}/r/11", server.uri())))
            .await,
        "transport",
    );
    assert!(e.message.contains("too many redirects"), "{e:?}");
    let e = assert_failure(
        c.send(secret_request("GET", &format!("{}/loop", server.uri())))
            .await,
        "transport",
    );
    assert!(e.message.contains("too many redirects"), "{e:?}");

    let none = ReqwestHttpClient::with_config(HttpClientConfig {
        max_redirects: 0,
        ..HttpClientConfig::default()
    })
    .unwrap();
    assert_failure(
        none.send(request("GET", &format!("{}/r/1", server.uri())))
            .await,
        "transport",
    );
}

#[tokio::test]
async fn redirects_to_other_schemes_are_refused() {
    let server = MockServer::start().await;
    Mock::given(path("/ftp"))
        .respond_with(
            ResponseTemplate::new(301).insert_header("Location", "ftp://127.0.0.1/file.txt"),
        )
        .mount(&server)
        .await;
    Mock::given(path("/file"))
        .respond_with(ResponseTemplate::new(302).insert_header("Location", "file:///etc/passwd"))
        .mount(&server)
        .await;
    for p in ["/ftp", "/file"] {
        let e = assert_failure(
            client()
                .send(secret_request("GET", &format!("{}{p}", server.uri())))
                .await,
            "transport",
        );
        assert!(e.message.contains("redirect"), "{e:?}");
    }
}

#[tokio::test]
async fn only_http_requests_are_sent() {
    let c = client();
    for url in [
        "ftp://127.0.0.1/file",
        "file:///etc/passwd",
        "/relative",
        "",
    ] {
        assert_failure(c.send(secret_request("GET", url)).await, "invalid_request");
    }
    let port = closed_port();
    assert_failure(
        c.send(secret_request(
            "BAD METHOD",
            &format!("http://127.0.0.1:{port}/"),
        ))
        .await,
        "invalid_request",
    );
    // A header value HTTP cannot carry: the error names the header, not the value.
    let e = assert_failure(
        c.send(HttpRequest {
            headers: vec![("Authorization".into(), format!("Bearer {SECRET}\r\nX: y"))],
            ..request("GET", &format!("http://127.0.0.1:{port}/"))
        })
        .await,
        "invalid_request",
    );
    assert!(e.message.contains("authorization"), "{e:?}");
    assert_failure(
        c.send(HttpRequest {
            headers: vec![("Bad Name".into(), SECRET.into())],
            ..request("GET", &format!("http://127.0.0.1:{port}/"))
        })
        .await,
        "invalid_request",
    );
}

// --- HttpFunctionInvoker ---------------------------------------------------------------------

fn payload() -> Value {
    json!({
        "execution_context": {"vars": {"customer_name": "Ana"}, "system": {"execution_id": "ex_1"},
                              "context": {}, "metadata": {}},
        "flow_info": {"id": "f_1", "name": "Support", "step_id": "route"},
        "flow_events": [],
        "whatsapp_context": {"conversation": {"id": "cv_1"}, "messages": []},
    })
}

/// Invokes `invoker` with these names.
async fn invoke(
    invoker: &HttpFunctionInvoker,
    id: Option<&str>,
    slug: Option<&str>,
) -> Result<Value, AdapterError> {
    let vars = serde_json::Map::new();
    let build = payload;
    let call = FunctionCall::new(id, slug, "ex_1", "route", &vars, None, None, &build);
    invoker.invoke(&call).await
}

fn secrets() -> Arc<MapSecrets> {
    let s = MapSecrets::default();
    s.set("LOOKUP_KEY", SECRET);
    Arc::new(s)
}

#[tokio::test]
async fn functions_receive_the_payload_and_headers() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/lookup"))
        .and(header("content-type", "application/json"))
        .and(header("x-switchboard-execution-id", "ex_1"))
        .and(header("x-switchboard-node-id", "route"))
        .and(header("x-api-key", SECRET))
        .and(body_json(payload()))
        .respond_with(
            // The content type is not checked.
            ResponseTemplate::new(200)
                .set_body_string(r#"{"vars": {"processed": true}, "extra": 1}"#)
                .insert_header("content-type", "text/plain"),
        )
        .expect(1)
        .mount(&server)
        .await;
    let invoker = HttpFunctionInvoker::new(
        client(),
        &[
            FunctionConfig::with_id("fn_1", format!("{}/lookup", server.uri()))
                .api_key("X-Api-Key", "LOOKUP_KEY"),
        ],
    )
    .unwrap()
    .with_secrets(secrets());
    let v = invoke(&invoker, Some("fn_1"), None).await.unwrap();
    assert_eq!(v, json!({"vars": {"processed": true}, "extra": 1}));
    let received = server.received_requests().await.unwrap();
    assert_eq!(received.len(), 1);
    assert_eq!(
        received[0].body,
        serde_json::to_vec(&payload()).unwrap(),
        "the body is exactly payload()"
    );
    assert!(!format!("{invoker:?}").contains(SECRET));

    // Without the secret: secret_missing, naming the variable only.
    let bare = HttpFunctionInvoker::new(
        client(),
        &[
            FunctionConfig::with_id("fn_1", format!("{}/lookup", server.uri()))
                .api_key("X-Api-Key", "LOOKUP_KEY"),
        ],
    )
    .unwrap()
    .with_secrets(Arc::new(MapSecrets::default()));
    let e = invoke(&bare, Some("fn_1"), None).await.unwrap_err();
    assert_eq!(e.kind, "secret_missing");
    assert!(e.message.contains("LOOKUP_KEY"));
}

#[tokio::test]
async fn functions_resolve_by_id_then_slug() {
    let server = MockServer::start().await;
    for (p, who) in [("/by-id", "id"), ("/by-slug", "slug"), ("/both", "both")] {
        Mock::given(path(p))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"who": who})))
            .mount(&server)
            .await;
    }
    let invoker = HttpFunctionInvoker::new(
        client(),
        &[
            FunctionConfig::with_id("fn_1", format!("{}/by-id", server.uri())),
            FunctionConfig::with_slug("lookup", format!("{}/by-slug", server.uri())),
            FunctionConfig::with_id("fn_2", format!("{}/both", server.uri())).slug("both"),
        ],
    )
    .unwrap();
    let who = |r: Result<Value, AdapterError>| r.unwrap()["who"].clone();
    assert_eq!(
        who(invoke(&invoker, Some("fn_1"), Some("lookup")).await),
        "id"
    );
    assert_eq!(
        who(invoke(&invoker, Some("nope"), Some("lookup")).await),
        "slug"
    );
    assert_eq!(who(invoke(&invoker, None, Some("lookup")).await), "slug");
    assert_eq!(who(invoke(&invoker, None, Some("both")).await), "both");
    assert_eq!(who(invoke(&invoker, Some("fn_2"), None).await), "both");
    for (id, slug) in [
        (Some("nope"), Some("nada")),
        (Some("nope"), None),
        (None, None),
    ] {
        let e = invoke(&invoker, id, slug).await.unwrap_err();
        assert_eq!(e.kind, "not_found", "{id:?} {slug:?}");
    }
}

#[tokio::test]
async fn function_failures() {
    let server = MockServer::start().await;
    let routes = [
        ("/boom", ResponseTemplate::new(500).set_body_string("oops")),
        (
            "/array",
            ResponseTemplate::new(200).set_body_json(json!([1, 2])),
        ),
        ("/text", ResponseTemplate::new(200).set_body_string("ok")),
        ("/empty", ResponseTemplate::new(204)),
        (
            "/slow",
            ResponseTemplate::new(200)
                .set_body_json(json!({}))
                .set_delay(Duration::from_secs(3)),
        ),
    ];
    for (p, r) in routes {
        Mock::given(path(p)).respond_with(r).mount(&server).await;
    }
    let port = closed_port();
    let url = |p: &str| format!("{}{p}", server.uri());
    let key = |f: FunctionConfig| f.api_key("Authorization", "LOOKUP_KEY");
    let invoker = HttpFunctionInvoker::new(
        client(),
        &[
            key(FunctionConfig::with_id("boom", url("/boom"))),
            key(FunctionConfig::with_id("array", url("/array"))),
            key(FunctionConfig::with_id("text", url("/text"))),
            key(FunctionConfig::with_id("empty", url("/empty"))),
            key(FunctionConfig::with_id("slow", url("/slow")).timeout_seconds(0.3)),
            key(FunctionConfig::with_id(
                "down",
                format!("http://127.0.0.1:{port}/"),
            )),
        ],
    )
    .unwrap()
    .with_secrets(secrets());
    let cases = [
        ("boom", "http_status"),
        ("array", "invalid_json"),
        ("text", "invalid_json"),
        ("empty", "invalid_json"),
        ("slow", "timeout"),
        ("down", "transport"),
    ];
    for (id, kind) in cases {
        let e = invoke(&invoker, Some(id), None).await.unwrap_err();
        assert_eq!(e.kind, kind, "{id}: {e:?}");
        assert!(e.message.contains(&format!("`{id}`")), "{e:?}");
        assert!(!format!("{e:?}").contains(SECRET), "{e:?}");
    }
    let e = invoke(&invoker, Some("boom"), None).await.unwrap_err();
    assert_eq!(e.status, Some(500));

    // The default timeout applies to entries without their own.
    let quick = HttpFunctionInvoker::new(client(), &[FunctionConfig::with_id("s", url("/slow"))])
        .unwrap()
        .with_default_timeout(Duration::from_millis(300));
    assert_eq!(
        invoke(&quick, Some("s"), None).await.unwrap_err().kind,
        "timeout"
    );
}

// --- End to end ------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_runs_webhook_and_function_nodes_over_http() {
    use switchboard_model::{Flow, Node};

    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .and(header("x-token", "t-1"))
        .and(header("content-type", "application/json"))
        .and(body_json(json!({"name": "Ana"})))
        .respond_with(
            ResponseTemplate::new(200)
                .append_header("X-Multi", "a")
                .append_header("X-Multi", "b")
                .set_body_json(json!({"order": {"id": "o_7", "total": 12.5}})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/enrich"))
        .and(header("x-switchboard-node-id", "enrich"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"vars": {"tier": "gold", "points": 3}, "note": "hi"})),
        )
        .expect(1)
        .mount(&server)
        .await;

    let http = client();
    let functions = HttpFunctionInvoker::new(
        http.clone(),
        &[FunctionConfig::with_slug(
            "enrich-customer",
            format!("{}/enrich", server.uri()),
        )],
    )
    .unwrap();
    let offline = OfflineAdapters::default();
    let mut adapters = offline.adapters();
    adapters.http = Arc::new(http);
    adapters.functions = Arc::new(functions);
    let engine = Engine::builder(Arc::new(MemoryStore::new()))
        .adapters(adapters)
        .build();

    let flow = Flow::new("HTTP end to end")
        .node(Node::start("start"))
        .node(
            Node::webhook("hook", &format!("{}/hook", server.uri()))
                .with("method", "POST")
                .with("headers", json!({"X-Token": "t-1"}))
                .with("body_template", json!({"name": "{{customer}}"}))
                .with("save_response_to", "hook_response"),
        )
        .node(
            Node::function("enrich", "unknown-id")
                .with("function_slug", "enrich-customer")
                .with("save_response_to", "fn_response"),
        )
        .edge("start", "hook")
        .edge("hook", "enrich");
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
    variables.insert("customer".into(), json!("Ana"));
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
    let saved = &vars["hook_response"];
    assert_eq!(saved["status"], 200);
    assert_eq!(saved["headers"]["x-multi"], "a, b");
    assert_eq!(saved["headers"]["content-type"], "application/json");
    assert_eq!(
        saved["body"],
        json!({"order": {"id": "o_7", "total": 12.5}})
    );
    assert_eq!(vars["tier"], "gold");
    assert_eq!(vars["points"], 3);
    assert_eq!(
        vars["fn_response"],
        json!({"vars": {"tier": "gold", "points": 3}, "note": "hi"})
    );
    assert_eq!(vars["customer"], "Ana");

    // The function got the §8 payload of this execution.
    let requests = server.received_requests().await.unwrap();
    let call = requests
        .iter()
        .find(|r| r.url.path() == "/enrich")
        .expect("the function was called");
    assert_eq!(
        call.headers
            .get("x-switchboard-execution-id")
            .and_then(|v| v.to_str().ok()),
        Some(id)
    );
    let body: Value = serde_json::from_slice(&call.body).unwrap();
    assert_eq!(body["flow_info"]["step_id"], "enrich");
    assert_eq!(body["execution_context"]["vars"]["customer"], "Ana");
    assert_eq!(
        body["execution_context"]["vars"]["hook_response"]["status"],
        200
    );
}
