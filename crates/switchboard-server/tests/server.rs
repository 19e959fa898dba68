//! The HTTP server on a real `127.0.0.1:0` listener: the webhook handshake and signature,
//! signed conversations matching the offline runs (of the engine, and of conversation scripts), body limits, the executions API, secrecy of
//! the app secret, and a graceful shutdown that loses no accepted message.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use switchboard_runtime::offline::OfflineAdapters;
use switchboard_runtime::state::TriggerType;
use switchboard_runtime::store::{ExecutionFilter, MemoryStore};
use switchboard_runtime::worker::{Worker, WorkerConfig};
use switchboard_runtime::{Engine, EngineConfig, FlowDefinition, Status, Trigger};
use switchboard_server::{ApiAccess, Limits, ServerState, serve};
use switchboard_whatsapp::parse_webhook;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const SECRET: &str = "app-secret-3f9a1c77d2";
const TOKEN: &str = "verify-token-81bb";
const PNID: &str = "15550001111";
const ANA: &str = "14155550100";
const API_TOKEN: &str = "api-token-5e1d0c";
const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

/// A worker for tests: looks for work every 10 ms.
fn worker(engine: &Engine) -> Worker {
    Worker::new(
        engine.clone(),
        WorkerConfig {
            poll: Duration::from_millis(10),
            ..WorkerConfig::default()
        },
    )
}

fn echo_flow() -> switchboard_model::Flow {
    let file = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/flows/valid/echo.yaml"
    );
    let bytes = std::fs::read(file).unwrap();
    switchboard_model::load_bytes(&bytes, Some(file), &Default::default())
        .unwrap()
        .flow
}

/// An engine on offline adapters with `echo` behind an inbound and an api_call trigger, and
/// `inbound_only` behind an inbound trigger on another number only.
fn engine(config: EngineConfig) -> (Engine, OfflineAdapters) {
    let offline = OfflineAdapters::default();
    let engine = Engine::builder(Arc::new(MemoryStore::new()))
        .adapters(offline.adapters())
        .config(config)
        .build();
    for id in ["echo", "inbound_only"] {
        engine
            .register_flow(FlowDefinition {
                id: id.into(),
                slug: None,
                version: "1".into(),
                flow: echo_flow(),
            })
            .unwrap();
    }
    engine
        .add_trigger(Trigger {
            flow_id: "echo".into(),
            trigger_type: TriggerType::InboundMessage,
            phone_number_id: Some(PNID.into()),
            active: true,
        })
        .unwrap();
    engine
        .add_trigger(Trigger {
            flow_id: "echo".into(),
            trigger_type: TriggerType::ApiCall,
            phone_number_id: None,
            active: true,
        })
        .unwrap();
    engine
        .add_trigger(Trigger {
            flow_id: "inbound_only".into(),
            trigger_type: TriggerType::InboundMessage,
            phone_number_id: Some("15559999999".into()),
            active: true,
        })
        .unwrap();
    (engine, offline)
}

struct Server {
    base: String,
    engine: Engine,
    worker: Worker,
    offline: OfflineAdapters,
    client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    handle: JoinHandle<std::io::Result<()>>,
}

impl Server {
    async fn start(config: EngineConfig, body_limit: usize) -> Server {
        Server::with(config, |state| {
            state.with_limits(Limits {
                webhook_body: body_limit,
                api_body: body_limit,
                ..Limits::default()
            })
        })
        .await
    }

    /// A server whose state `setup` finishes.
    async fn with(config: EngineConfig, setup: impl FnOnce(ServerState) -> ServerState) -> Server {
        let (engine, offline) = engine(config);
        let state = setup(
            ServerState::new(worker(&engine), SECRET, TOKEN).with_api(ApiAccess {
                tokens: vec![API_TOKEN.into()],
                phone_number_ids: vec![PNID.into()],
            }),
        );
        let worker = state.worker().clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(serve(listener, state, async move {
            let _ = rx.await;
        }));
        Server {
            base: format!("http://{addr}"),
            engine,
            worker,
            offline,
            // A fresh connection per request: a connection the server closed after a 413 is
            // never reused.
            client: reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .build()
                .unwrap(),
            stop: Some(tx),
            handle,
        }
    }

    async fn default() -> Server {
        Server::start(api_config(), DEFAULT_BODY_LIMIT).await
    }

    async fn shutdown(mut self) -> (Engine, OfflineAdapters) {
        if let Some(tx) = self.stop.take() {
            tx.send(()).unwrap();
        }
        tokio::time::timeout(Duration::from_secs(10), self.handle)
            .await
            .expect("serve returns")
            .unwrap()
            .unwrap();
        (self.engine, self.offline)
    }

    async fn webhook(&self, body: &[u8], signature: Option<String>) -> (u16, String) {
        let mut req = self
            .client
            .post(format!("{}/webhooks/whatsapp", self.base))
            .header("content-type", "application/json")
            .body(body.to_vec());
        if let Some(s) = signature {
            req = req.header("x-hub-signature-256", s);
        }
        let resp = req.send().await.unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    }

    /// Waits until the worker has processed everything due (webhooks are answered before their
    /// turns run).
    async fn settle(&self) {
        settle(&self.engine, &self.worker).await;
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let resp = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(API_TOKEN)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let resp = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(API_TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn executions(&self) -> usize {
        self.engine
            .list_executions(&ExecutionFilter {
                limit: 100,
                ..Default::default()
            })
            .await
            .unwrap()
            .len()
    }
}

/// Waits until `worker` has processed everything due.
async fn settle(engine: &Engine, worker: &Worker) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut quiet = 0;
    while quiet < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "the worker never settled"
        );
        let now = engine.adapters().clock.now();
        let due = engine.store().due_work(now, 1).await.unwrap();
        if due.is_empty() && worker.in_progress() == 0 {
            quiet += 1;
        } else {
            quiet = 0;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn api_config() -> EngineConfig {
    EngineConfig {
        default_phone_number_id: PNID.into(),
        enforce_service_window: false,
        ..EngineConfig::default()
    }
}

fn sign(body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body);
    let tag = mac.finalize().into_bytes();
    let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

fn text_webhook(id: &str, from: &str, text: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "object": "whatsapp_business_account",
        "entry": [{
            "id": "102290129340398",
            "changes": [{
                "field": "messages",
                "value": {
                    "messaging_product": "whatsapp",
                    "metadata": {"display_phone_number": "15550001111", "phone_number_id": PNID},
                    "contacts": [{"profile": {"name": "Ana"}, "wa_id": from}],
                    "messages": [{
                        "from": from, "id": id, "timestamp": "1767607200",
                        "type": "text", "text": {"body": text}
                    }]
                }
            }]
        }]
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn handshake_echoes_the_challenge_or_is_forbidden() {
    let s = Server::default().await;
    let url = |mode: &str, token: &str| {
        format!(
            "{}/webhooks/whatsapp?hub.mode={mode}&hub.verify_token={token}&hub.challenge=1158201444",
            s.base
        )
    };
    let ok = s.client.get(url("subscribe", TOKEN)).send().await.unwrap();
    assert_eq!(ok.status().as_u16(), 200);
    assert_eq!(ok.text().await.unwrap(), "1158201444");
    for u in [
        url("subscribe", "wrong"),
        url("unsubscribe", TOKEN),
        format!("{}/webhooks/whatsapp", s.base),
    ] {
        let r = s.client.get(u).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 403);
        assert!(!r.text().await.unwrap().contains(TOKEN));
    }
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unsigned_and_badly_signed_webhooks_are_401_and_process_nothing() {
    let s = Server::default().await;
    let body = text_webhook("wamid.1", ANA, "hi");
    let mut tampered = body.clone();
    tampered.extend_from_slice(b" ");
    for sig in [
        None,
        Some("sha256=00".to_owned()),
        Some("sha1=abcdef".to_owned()),
        Some(sign(&tampered)),
        Some(sign(&body).replace("sha256=", "")),
    ] {
        let (status, text) = s.webhook(&body, sig).await;
        assert_eq!(status, 401, "{text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["error"]["code"], "unauthorized");
    }
    assert_eq!(s.executions().await, 0);
    let conv = Engine::conversation_id(PNID, ANA);
    assert!(
        s.engine
            .store()
            .conversation(&conv)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        !s.engine
            .store()
            .seen_message(&conv, "wamid.1")
            .await
            .unwrap()
    );
    assert!(s.offline.messenger.sent().is_empty());
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn signed_webhooks_run_echo_like_the_offline_engine() {
    let s = Server::start(
        EngineConfig {
            default_phone_number_id: PNID.into(),
            ..EngineConfig::default()
        },
        DEFAULT_BODY_LIMIT,
    )
    .await;
    let first = text_webhook("wamid.1", ANA, "hi");
    let second = text_webhook("wamid.2", ANA, "A-123");
    let (status, text) = s.webhook(&first, Some(sign(&first))).await;
    assert_eq!((status, text.as_str()), (200, r#"{"received":1}"#));
    s.settle().await;
    let filter = ExecutionFilter {
        limit: 10,
        ..Default::default()
    };
    let list = s.engine.list_executions(&filter).await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].status, Status::Waiting);
    let (status, _) = s.webhook(&second, Some(sign(&second))).await;
    assert_eq!(status, 200);
    // A redelivery is acknowledged and deduplicated.
    let (status, _) = s.webhook(&second, Some(sign(&second))).await;
    assert_eq!(status, 200);
    s.settle().await;
    let (engine, offline) = s.shutdown().await;
    let summary = engine.get_execution(&list[0].id).await.unwrap();
    assert_eq!(summary.status, Status::Ended);
    let served = offline.messenger.sent();
    let bodies: Vec<String> = served.iter().map(|m| format!("{:?}", m.body)).collect();
    assert_eq!(bodies.len(), 2, "{bodies:?}");
    assert!(
        bodies[0].contains("What is your order number?"),
        "{bodies:?}"
    );
    assert!(
        bodies[1].contains("Thanks, looking up A-123."),
        "{bodies:?}"
    );

    // The same messages straight into an offline engine.
    let (direct, direct_offline) = engine_offline();
    for body in [&first, &second] {
        let messages = parse_webhook(body).unwrap().messages;
        direct.handle_inbound(messages).await.unwrap();
    }
    assert_eq!(served, direct_offline.messenger.sent());
}

fn engine_offline() -> (Engine, OfflineAdapters) {
    engine(EngineConfig {
        default_phone_number_id: PNID.into(),
        ..EngineConfig::default()
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_webhooks_are_400() {
    let s = Server::default().await;
    for body in [
        &b"{not json"[..],
        br#"{"object":"page","entry":[]}"#,
        br#"[1,2]"#,
    ] {
        let (status, text) = s.webhook(body, Some(sign(body))).await;
        assert_eq!(status, 400, "{text}");
    }
    assert_eq!(s.executions().await, 0);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn too_large_bodies_are_413() {
    // One byte over the limit: the server reads the whole body before refusing it, so it
    // closes the connection cleanly (no reset racing the response).
    let s = Server::start(api_config(), 8 * 1024).await;
    let big = vec![b' '; 8 * 1024 + 1];
    let (status, text) = s.webhook(&big, Some(sign(&big))).await;
    assert_eq!(status, 413, "{text}");
    let resp = s
        .client
        .post(format!("{}/v1/executions", s.base))
        .bearer_auth(API_TOKEN)
        .header("content-type", "application/json")
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 413);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "payload_too_large");
    assert_eq!(s.executions().await, 0);
    s.shutdown().await;

    // The default limit is 1 MiB.
    let s = Server::default().await;
    let big = vec![b' '; DEFAULT_BODY_LIMIT + 1];
    let (status, _) = s.webhook(&big, Some(sign(&big))).await;
    assert_eq!(status, 413);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn executions_api() {
    let s = Server::default().await;
    // Start.
    let (status, started) = s
        .post(
            "/v1/executions",
            json!({"flow": "echo", "phone_number": "+14155550100", "variables": {"plan": "gold"}}),
        )
        .await;
    assert_eq!(status, 201, "{started}");
    let id = started["execution_id"].as_str().unwrap().to_owned();
    assert!(started["tracking_id"].is_string());

    // Get.
    let (status, got) = s.get(&format!("/v1/executions/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(got["id"], id.as_str());
    assert_eq!(got["status"], "waiting");
    assert_eq!(got["waiting_reason"], "wait_for_response");
    assert_eq!(got["current_node_id"], "wait");
    assert_eq!(got["flow"]["id"], "echo");
    assert_eq!(got["execution_context"]["vars"]["plan"], "gold");

    // A second start on the same conversation conflicts.
    let (status, err) = s
        .post(
            "/v1/executions",
            json!({"flow": "echo", "phone_number": "+14155550100"}),
        )
        .await;
    assert_eq!((status, &err["error"]["code"]), (409, &json!("conflict")));

    // List.
    let (status, list) = s.get("/v1/executions?flow=echo&status=waiting").await;
    assert_eq!(status, 200);
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    assert_eq!(list["data"][0]["id"], id.as_str());
    assert!(list["paging"]["after"].is_null());
    let (_, list) = s.get("/v1/executions?status=ended").await;
    assert!(list["data"].as_array().unwrap().is_empty());
    let (status, _) = s.get("/v1/executions?status=sleeping").await;
    assert_eq!(status, 400);
    let (status, _) = s.get("/v1/executions?limit=0").await;
    assert_eq!(status, 400);

    // Events.
    let (status, events) = s.get(&format!("/v1/executions/{id}/events")).await;
    assert_eq!(status, 200);
    let all = events["data"].as_array().unwrap();
    assert!(all.iter().any(|e| e["event_type"] == "execution_started"));
    let (_, page) = s.get(&format!("/v1/executions/{id}/events?limit=2")).await;
    assert_eq!(page["data"].as_array().unwrap().len(), 2);
    let after = page["paging"]["after"].as_u64().unwrap();
    let (_, rest) = s
        .get(&format!("/v1/executions/{id}/events?after={after}"))
        .await;
    assert_eq!(rest["data"].as_array().unwrap().len(), all.len() - 2);
    let (_, typed) = s
        .get(&format!(
            "/v1/executions/{id}/events?event_type=execution_started"
        ))
        .await;
    assert_eq!(typed["data"].as_array().unwrap().len(), 1);
    let (status, _) = s
        .get(&format!("/v1/executions/{id}/events?event_type=nope"))
        .await;
    assert_eq!(status, 400);

    // Handoff, operator resume, jump.
    let (status, v) = s
        .post(
            &format!("/v1/executions/{id}/status"),
            json!({"status": "handoff"}),
        )
        .await;
    assert_eq!((status, &v["status"]), (200, &json!("handoff")), "{v}");
    let (status, v) = s
        .post(
            &format!("/v1/executions/{id}/status"),
            json!({"status": "waiting"}),
        )
        .await;
    assert_eq!((status, &v["status"]), (200, &json!("waiting")), "{v}");
    let (status, v) = s
        .post(
            &format!("/v1/executions/{id}/jump"),
            json!({"node_id": "wait", "actor": "ops@example.com"}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let (status, v) = s
        .post(
            &format!("/v1/executions/{id}/jump"),
            json!({"node_id": "no_such_node"}),
        )
        .await;
    assert!(status == 404 || status == 400, "{status} {v}");

    // Resume with a payload ends the echo flow.
    let (status, v) = s
        .post(
            &format!("/v1/executions/{id}/resume"),
            json!({"message": {"kind": "payload", "data": "A-7"}}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["status"], "ended");
    let sent: Vec<String> = s
        .offline
        .messenger
        .sent()
        .iter()
        .map(|m| format!("{:?}", m.body))
        .collect();
    assert!(sent.last().unwrap().contains("looking up A-7"), "{sent:?}");

    // Invalid transitions.
    let (status, err) = s
        .post(
            &format!("/v1/executions/{id}/status"),
            json!({"status": "waiting"}),
        )
        .await;
    assert_eq!(status, 409, "{err}");
    assert_eq!(err["error"]["code"], "invalid_transition");
    let (status, err) = s
        .post(&format!("/v1/executions/{id}/resume"), json!({}))
        .await;
    assert_eq!(
        (status, &err["error"]["code"]),
        (409, &json!("invalid_transition"))
    );

    // Unknown ids, flows, bad requests.
    for (status, err) in [
        s.get("/v1/executions/ex_nope").await,
        s.get("/v1/executions/ex_nope/events").await,
        s.post("/v1/executions/ex_nope/resume", json!({})).await,
        s.post("/v1/executions/ex_nope/status", json!({"status": "ended"}))
            .await,
        s.post(
            "/v1/executions",
            json!({"flow": "nope", "phone_number": "+14155550111"}),
        )
        .await,
        s.get("/v1/nothing_here").await,
    ] {
        assert_eq!(status, 404, "{err}");
        assert_eq!(err["error"]["code"], "not_found");
        assert!(err["error"]["message"].is_string());
    }
    let (status, err) = s
        .post(
            "/v1/executions",
            json!({"flow": "inbound_only", "phone_number": "+14155550111"}),
        )
        .await;
    assert_eq!(
        (status, &err["error"]["code"]),
        (422, &json!("flow_inactive"))
    );
    let (status, err) = s
        .post(
            "/v1/executions",
            json!({"flow": "echo", "phone_number": "call me"}),
        )
        .await;
    assert_eq!(
        (status, &err["error"]["code"]),
        (400, &json!("invalid_request"))
    );
    let (status, _) = s
        .post(&format!("/v1/executions/{id}/status"), json!({"status": 3}))
        .await;
    assert_eq!(status, 400);
    let resp = s
        .client
        .post(format!("{}/v1/executions", s.base))
        .bearer_auth(API_TOKEN)
        .body("{oops")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_app_secret_never_appears_in_a_response() {
    let s = Server::default().await;
    let body = text_webhook("wamid.9", ANA, "hi");
    let mut texts = Vec::new();
    let mut push = |status: u16, headers: String, text: String| {
        texts.push(format!("{status} {headers} {text}"));
    };
    let requests = vec![
        s.client.get(format!(
            "{}/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=x",
            s.base
        )),
        s.client
            .post(format!("{}/webhooks/whatsapp", s.base))
            .body(body.clone()),
        s.client
            .post(format!("{}/webhooks/whatsapp", s.base))
            .header("x-hub-signature-256", format!("sha256={SECRET}"))
            .body(body.clone()),
        s.client
            .post(format!("{}/webhooks/whatsapp", s.base))
            .header("x-hub-signature-256", sign(&body))
            .body(body.clone()),
        s.client
            .post(format!("{}/v1/executions", s.base))
            .bearer_auth(API_TOKEN)
            .json(&json!({"flow": "echo", "phone_number": "+14155550122", "variables": {"x": 1}})),
        s.client
            .get(format!("{}/v1/executions", s.base))
            .bearer_auth(API_TOKEN),
        s.client
            .get(format!("{}/v1/executions/ex_1", s.base))
            .bearer_auth(API_TOKEN),
        s.client
            .get(format!("{}/v1/executions/ex_1/events", s.base))
            .bearer_auth(API_TOKEN),
        s.client
            .get(format!("{}/v1/executions/ex_2", s.base))
            .bearer_auth(API_TOKEN),
        s.client
            .get(format!("{}/v1/executions", s.base))
            .bearer_auth(SECRET),
    ];
    for r in requests {
        let resp = r.send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = format!("{:?}", resp.headers());
        push(status, headers, resp.text().await.unwrap());
    }
    assert_eq!(texts.len(), 10);
    for t in &texts {
        assert!(!t.contains(SECRET), "{t}");
    }
    assert!(
        !format!(
            "{:?}",
            ServerState::new(worker(&s.engine), SECRET, TOKEN).with_api(ApiAccess {
                tokens: vec![API_TOKEN.into()],
                phone_number_ids: Vec::new(),
            })
        )
        .contains(SECRET)
    );
    assert!(
        !format!(
            "{:?}",
            ApiAccess {
                tokens: vec![API_TOKEN.into()],
                phone_number_ids: Vec::new(),
            }
        )
        .contains(API_TOKEN),
        "API tokens are not shown"
    );
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_accepted_before_shutdown_stays_in_the_store_for_the_next_start() {
    // A long debounce window: the message is held in the inbox when shutdown begins.
    let s = Server::start(
        EngineConfig {
            default_phone_number_id: PNID.into(),
            message_debounce_seconds: Some(3600.0),
            ..EngineConfig::default()
        },
        DEFAULT_BODY_LIMIT,
    )
    .await;
    let body = text_webhook("wamid.1", ANA, "hi");
    let (status, _) = s.webhook(&body, Some(sign(&body))).await;
    assert_eq!(status, 200);
    assert_eq!(s.executions().await, 0, "held by the debounce window");
    let (engine, offline) = s.shutdown().await;
    let conv = Engine::conversation_id(PNID, ANA);
    let queued = engine.store().queued(&conv).await.unwrap();
    assert_eq!(queued.len(), 1, "acknowledged, hence in the store");
    // The next start (here: another worker on the same store) answers it when its window has
    // passed.
    offline.clock.advance(Duration::from_secs(3600));
    worker(&engine).run_until_idle().await.unwrap();
    let list = engine
        .list_executions(&ExecutionFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].status, Status::Waiting);
    assert_eq!(offline.messenger.sent().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_ticker_fires_wait_timeouts() {
    let s = Server::default().await;
    let (_, started) = s
        .post(
            "/v1/executions",
            json!({"flow": "echo", "phone_number": "+14155550100"}),
        )
        .await;
    let id = started["execution_id"].as_str().unwrap().to_owned();
    s.offline.clock.advance(Duration::from_secs(601));
    let mut status = Value::Null;
    for _ in 0..200 {
        let (_, v) = s.get(&format!("/v1/executions/{id}")).await;
        status = v["status"].clone();
        if status != "waiting" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_ne!(status, "waiting");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn listings_page_both_ways_and_events_are_fetched_one_by_one() {
    let s = Server::default().await;
    let mut ids = Vec::new();
    for n in 0..5 {
        let (status, started) = s
            .post(
                "/v1/executions",
                json!({"flow": "echo", "phone_number": format!("+1415555010{n}")}),
            )
            .await;
        assert_eq!(status, 201, "{started}");
        ids.push(started["execution_id"].as_str().unwrap().to_owned());
    }
    ids.reverse(); // newest first
    let page = |v: &Value| -> Vec<String> {
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let (_, first) = s.get("/v1/executions?limit=2").await;
    assert_eq!(page(&first), ids[0..2]);
    assert_eq!(first["paging"]["before"], Value::Null);
    let after = first["paging"]["after"].as_str().unwrap().to_owned();
    assert_eq!(after, ids[1]);
    let (_, second) = s
        .get(&format!("/v1/executions?limit=2&after={after}"))
        .await;
    assert_eq!(page(&second), ids[2..4]);
    // Back from the second page: the first page again.
    let before = second["paging"]["before"].as_str().unwrap().to_owned();
    assert_eq!(before, ids[2]);
    let (_, back) = s
        .get(&format!("/v1/executions?limit=2&before={before}"))
        .await;
    assert_eq!(page(&back), ids[0..2]);
    assert_eq!(back["paging"]["after"], json!(ids[1]));
    // A before page that is not full has reached the newest.
    let (_, top) = s
        .get(&format!("/v1/executions?limit=5&before={}", ids[1]))
        .await;
    assert_eq!(page(&top), ids[0..1]);
    assert_eq!(top["paging"]["before"], Value::Null);

    // get_event.
    let (_, events) = s.get(&format!("/v1/executions/{}/events", ids[0])).await;
    let second_event = &events["data"][1];
    let event_id = second_event["id"].as_str().unwrap();
    let (status, one) = s.get(&format!("/v1/events/{event_id}")).await;
    assert_eq!(status, 200);
    assert_eq!(&one, second_event);
    for missing in [
        format!("{}:999", ids[0]),
        format!("{}:0", ids[0]),
        "nope".into(),
    ] {
        let (status, err) = s.get(&format!("/v1/events/{missing}")).await;
        assert_eq!(
            (status, &err["error"]["code"]),
            (404, &json!("not_found")),
            "{missing}"
        );
    }
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn delivery_statuses_reach_the_hook_only_when_signed() {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = seen.clone();
    let s = Server::with(api_config(), move |state| {
        state.on_status(move |st| {
            sink.lock()
                .unwrap()
                .push((st.message_id.clone(), st.status.clone()))
        })
    })
    .await;
    let body = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../switchboard-whatsapp/tests/data/whatsapp/statuses.json"
    ))
    .unwrap();
    let expected: Vec<(String, String)> = parse_webhook(&body)
        .unwrap()
        .statuses
        .into_iter()
        .map(|st| (st.message_id, st.status))
        .collect();
    assert!(!expected.is_empty());
    let (status, _) = s.webhook(&body, Some("sha256=00".into())).await;
    assert_eq!(status, 401);
    assert!(
        seen.lock().unwrap().is_empty(),
        "an unsigned status is not handed on"
    );
    let (status, text) = s.webhook(&body, Some(sign(&body))).await;
    assert_eq!((status, text.as_str()), (200, r#"{"received":0}"#));
    assert_eq!(*seen.lock().unwrap(), expected);
    s.settle().await;
    s.shutdown().await;
}

/// A signed-webhook body with one interactive reply (`button_reply` or `list_reply`) from Ana.
fn reply_webhook(id: &str, kind: &str, reply_id: &str, title: &str) -> Vec<u8> {
    let mut text = serde_json::from_slice::<Value>(&text_webhook(id, ANA, "")).unwrap();
    let message = &mut text["entry"][0]["changes"][0]["value"]["messages"][0];
    message["type"] = json!("interactive");
    message.as_object_mut().unwrap().remove("text");
    message["interactive"] = json!({"type": kind, kind: {"id": reply_id, "title": title}});
    serde_json::to_vec(&text).unwrap()
}

/// The outbound messages as a conversation script's transcript shows them.
fn as_transcript(sent: &[switchboard_runtime::adapters::OutboundMessage]) -> Vec<Value> {
    sent.iter()
        .map(|m| {
            let mut v = serde_json::to_value(&m.body).unwrap();
            let o = v.as_object_mut().unwrap();
            o.insert("to".into(), json!(m.to));
            o.insert("node".into(), json!(m.node_id));
            if m.from != PNID {
                o.insert("from".into(), json!(m.from));
            }
            v
        })
        .collect()
}

/// Every conversation script made only of user messages — typed text, button taps, list picks;
/// no scripted adapter answers, clocks or API calls — yields, driven through signed webhooks against the server, the
/// outbound messages its offline run records.
#[tokio::test(flavor = "multi_thread")]
async fn text_scripts_play_the_same_through_signed_webhooks() {
    use switchboard_script::{parse_script, run_script_file};
    let dir = std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/conversations"
    ));
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    paths.sort();
    let mut compared = Vec::new();
    for path in paths {
        let script = parse_script(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let typed_only = script.turns.iter().all(|t| {
            [t.user.is_some(), t.button.is_some(), t.list.is_some()]
                .into_iter()
                .filter(|x| *x)
                .count()
                == 1
                && t.batch.is_none()
                && t.duplicate.is_none()
                && t.clock.is_none()
                && t.resume.is_none()
                && t.status.is_none()
                && t.jump.is_none()
                && t.fail_next_send.is_none()
        });
        let offline_only = script.llm.is_empty()
            && script.functions.is_empty()
            && script.http.is_empty()
            && script.mcp.is_empty()
            && script.secrets.is_empty()
            && script.flows.is_empty()
            // A project script runs a whole project, not one flow file (its own tests cover
            // serving a project through webhooks).
            && script.project.is_none()
            && script.trigger.is_none()
            && script.contact.is_none()
            && script.max_steps_per_turn.is_none();
        if !(typed_only && offline_only) {
            continue;
        }
        // The offline run.
        let transcript = run_script_file(&path).await.unwrap();
        let expected: Vec<Value> = transcript["steps"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| s["outbound"].as_array().cloned().unwrap_or_default())
            .collect();

        // The same turns as signed webhooks.
        let flow_path = path.parent().unwrap().join(&script.flow);
        let flow_id = script
            .flow_id
            .clone()
            .unwrap_or_else(|| flow_path.file_stem().unwrap().to_str().unwrap().to_owned());
        let bytes = std::fs::read(&flow_path).unwrap();
        let flow = switchboard_model::load_bytes(&bytes, flow_path.to_str(), &Default::default())
            .unwrap()
            .flow;
        let offline = OfflineAdapters::default();
        let engine = Engine::builder(Arc::new(MemoryStore::new()))
            .adapters(offline.adapters())
            .config(EngineConfig {
                default_phone_number_id: PNID.into(),
                ..EngineConfig::default()
            })
            .build();
        engine
            .register_flow(FlowDefinition {
                id: flow_id.clone(),
                slug: None,
                version: "1".into(),
                flow,
            })
            .unwrap();
        engine
            .add_trigger(Trigger {
                flow_id,
                trigger_type: TriggerType::InboundMessage,
                phone_number_id: Some(PNID.into()),
                active: true,
            })
            .unwrap();
        let w = worker(&engine);
        let state = ServerState::new(w.clone(), SECRET, TOKEN);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(serve(listener, state, async move {
            let _ = rx.await;
        }));
        let client = reqwest::Client::new();
        for (n, turn) in script.turns.iter().enumerate() {
            let id = format!("wamid.in.{n}");
            let body = match (&turn.user, &turn.button, &turn.list) {
                (Some(text), _, _) => text_webhook(&id, ANA, text),
                (_, Some(b), _) => reply_webhook(&id, "button_reply", &b.id, &b.title),
                (_, _, Some(l)) => reply_webhook(&id, "list_reply", &l.id, &l.title),
                _ => unreachable!(),
            };
            let resp = client
                .post(format!("{base}/webhooks/whatsapp"))
                .header("x-hub-signature-256", sign(&body))
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status().as_u16(), 200, "{}", path.display());
        }
        settle(&engine, &w).await;
        tx.send(()).unwrap();
        handle.await.unwrap().unwrap();
        assert_eq!(
            as_transcript(&offline.messenger.sent()),
            expected,
            "{}",
            path.display()
        );
        compared.push(path.file_name().unwrap().to_string_lossy().into_owned());
    }
    assert_eq!(
        compared,
        [
            "echo.yaml",
            "interactive_messages.yaml",
            "pipedream_unsupported.yaml"
        ],
        "the scripts made only of user messages"
    );
}
