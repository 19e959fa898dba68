//! Serving a real number, in process on 127.0.0.1: webhooks acknowledged at once while the turns
//! run concurrently, an API that only its owner can use, API operations and webhooks taking
//! turns on one conversation, delivery statuses on the outbox records, and connections that
//! cannot hold the server by sending their headers slowly.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use switchboard_model::{Flow, Node};
use switchboard_runtime::adapters::{AdapterResult, ChatRequest, ChatResponse, LanguageModel};
use switchboard_runtime::offline::OfflineAdapters;
use switchboard_runtime::state::TriggerType;
use switchboard_runtime::store::{ExecutionFilter, MemoryStore};
use switchboard_runtime::worker::{Worker, WorkerConfig};
use switchboard_runtime::{Engine, EngineConfig, FlowDefinition, Trigger};
use switchboard_server::{ApiAccess, Limits, ServerState, serve};
use tokio::sync::oneshot;

const SECRET: &str = "app-secret-91c";
const TOKEN: &str = "verify-0a2";
const API_TOKEN: &str = "api-token-7d44e1";
const PNID: &str = "15550001111";

fn sign(body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

/// One webhook carrying a text message from each `(id, from, text)`.
fn webhook(messages: &[(&str, &str, &str)]) -> Vec<u8> {
    let messages: Vec<Value> = messages
        .iter()
        .map(|(id, from, text)| {
            json!({"from": from, "id": id, "timestamp": "1767607200", "type": "text", "text": {"body": text}})
        })
        .collect();
    serde_json::to_vec(&json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": PNID, "phone_number_id": PNID},
            "messages": messages
        }}]}]
    }))
    .unwrap()
}

/// start → wait → echo → wait … (every input answered once).
fn echo_loop() -> Flow {
    Flow::new("echo_loop")
        .node(Node::start("start"))
        .node(Node::wait_for_response("wait"))
        .node(Node::send_text("echo", "echo {{last_user_input}}"))
        .edge("start", "wait")
        .edge("wait", "echo")
        .edge("echo", "wait")
}

struct Server {
    base: String,
    engine: Engine,
    offline: OfflineAdapters,
    client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    handle: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Server {
    async fn start(
        flow: Flow,
        model: Option<Arc<dyn LanguageModel>>,
        setup: impl FnOnce(ServerState) -> ServerState,
    ) -> Server {
        let offline = OfflineAdapters::default();
        let mut builder = Engine::builder(Arc::new(MemoryStore::new()))
            .adapters(offline.adapters())
            .config(EngineConfig {
                default_phone_number_id: PNID.into(),
                enforce_service_window: false,
                ..EngineConfig::default()
            });
        if let Some(m) = model {
            builder = builder.model(m);
        }
        let engine = builder.build();
        engine
            .register_flow(FlowDefinition {
                id: "f".into(),
                slug: None,
                version: "1".into(),
                flow,
            })
            .unwrap();
        for (trigger_type, phone) in [
            (TriggerType::InboundMessage, Some(PNID.to_owned())),
            (TriggerType::ApiCall, None),
        ] {
            engine
                .add_trigger(Trigger {
                    flow_id: "f".into(),
                    trigger_type,
                    phone_number_id: phone,
                    active: true,
                })
                .unwrap();
        }
        let worker = Worker::new(
            engine.clone(),
            WorkerConfig {
                poll: Duration::from_millis(10),
                ..WorkerConfig::default()
            },
        );
        let state = setup(ServerState::new(worker, SECRET, TOKEN));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(serve(listener, state, async move {
            let _ = rx.await;
        }));
        Server {
            base,
            engine,
            offline,
            client: reqwest::Client::new(),
            stop: Some(tx),
            handle,
        }
    }

    fn api() -> ApiAccess {
        ApiAccess {
            tokens: vec!["another-token".into(), API_TOKEN.into()],
            phone_number_ids: vec![PNID.into(), "15550002222".into()],
        }
    }

    async fn webhook(&self, body: Vec<u8>) -> u16 {
        self.client
            .post(format!("{}/webhooks/whatsapp", self.base))
            .header("x-hub-signature-256", sign(&body))
            .body(body)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Value,
    ) -> (u16, Value) {
        let mut req = self
            .client
            .request(method.parse().unwrap(), format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if method == "POST" {
            req = req.json(&body);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn executions(&self) -> usize {
        self.engine
            .list_executions(&ExecutionFilter {
                limit: 100,
                ..ExecutionFilter::default()
            })
            .await
            .unwrap()
            .len()
    }

    fn sent_texts(&self) -> Vec<String> {
        self.offline
            .messenger
            .sent()
            .iter()
            .map(|m| match &m.body {
                switchboard_runtime::adapters::OutboundBody::Text { text } => text.clone(),
                other => format!("{other:?}"),
            })
            .collect()
    }

    async fn shutdown(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        tokio::time::timeout(Duration::from_secs(20), self.handle)
            .await
            .expect("serve returns")
            .unwrap()
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_is_not_served_without_a_token() {
    let s = Server::start(echo_loop(), None, |st| {
        st.with_api(ApiAccess {
            tokens: vec![String::new()],
            phone_number_ids: Vec::new(),
        })
    })
    .await;
    let (status, v) = s
        .call(
            "POST",
            "/v1/executions",
            Some(""),
            json!({"flow": "f", "phone_number": "+14155550100"}),
        )
        .await;
    assert_eq!((status, &v["error"]["code"]), (404, &json!("not_found")));
    let (status, _) = s.call("GET", "/v1/executions", None, Value::Null).await;
    assert_eq!(status, 404);
    assert_eq!(s.executions().await, 0);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_needs_a_bearer_token() {
    let s = Server::start(echo_loop(), None, |st| st.with_api(Server::api())).await;
    let start = json!({"flow": "f", "phone_number": "+14155550100"});
    for token in [
        None,
        Some("wrong"),
        Some("api-token-7d44e"),
        Some("api-token-7d44e1x"),
    ] {
        let (status, v) = s.call("POST", "/v1/executions", token, start.clone()).await;
        assert_eq!(
            (status, &v["error"]["code"]),
            (401, &json!("unauthorized")),
            "{token:?}"
        );
        let (status, _) = s.call("GET", "/v1/executions", token, Value::Null).await;
        assert_eq!(status, 401);
    }
    assert_eq!(s.executions().await, 0, "nothing started without a token");
    let (status, v) = s
        .call("POST", "/v1/executions", Some(API_TOKEN), start.clone())
        .await;
    assert_eq!(status, 201, "{v}");
    let (status, v) = s
        .call("GET", "/v1/executions", Some("another-token"), Value::Null)
        .await;
    assert_eq!(status, 200, "either token opens it");
    assert_eq!(v["data"].as_array().unwrap().len(), 1);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn starts_use_only_listed_numbers_and_bounded_variables() {
    let s = Server::start(echo_loop(), None, |st| {
        st.with_api(Server::api()).with_limits(Limits {
            variables: 1024,
            api_body: 8 * 1024,
            ..Limits::default()
        })
    })
    .await;
    let (status, v) = s
        .call(
            "POST",
            "/v1/executions",
            Some(API_TOKEN),
            json!({"flow": "f", "phone_number": "+14155550100", "phone_number_id": "19999999999"}),
        )
        .await;
    assert_eq!(
        (status, &v["error"]["code"]),
        (403, &json!("forbidden")),
        "{v}"
    );
    let (status, v) = s
        .call(
            "POST",
            "/v1/executions",
            Some(API_TOKEN),
            json!({"flow": "f", "phone_number": "+14155550100", "phone_number_id": "15550002222"}),
        )
        .await;
    assert_eq!(status, 201, "a listed number: {v}");
    // Variables over the limit: 422, nothing stored.
    let (status, v) = s
        .call(
            "POST",
            "/v1/executions",
            Some(API_TOKEN),
            json!({"flow": "f", "phone_number": "+14155550101", "variables": {"blob": "x".repeat(2000)}}),
        )
        .await;
    assert_eq!(
        (status, &v["error"]["code"]),
        (422, &json!("invalid_request")),
        "{v}"
    );
    // A body over the limit: 413, nothing stored.
    let (status, v) = s
        .call(
            "POST",
            "/v1/executions",
            Some(API_TOKEN),
            json!({"flow": "f", "phone_number": "+14155550102", "context": {"blob": "y".repeat(9000)}}),
        )
        .await;
    assert_eq!(
        (status, &v["error"]["code"]),
        (413, &json!("payload_too_large")),
        "{v}"
    );
    assert_eq!(s.executions().await, 1, "only the allowed start exists");
    s.shutdown().await;
}

/// A model that takes 3 s for every answer.
struct SlowModel;

#[async_trait]
impl LanguageModel for SlowModel {
    async fn complete(&self, _: ChatRequest) -> AdapterResult<ChatResponse> {
        tokio::time::sleep(Duration::from_secs(3)).await;
        Ok(ChatResponse {
            text: Some("thought about it".into()),
            tool_calls: Vec::new(),
        })
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_webhook_for_ten_contacts_is_answered_at_once_and_their_turns_run_side_by_side() {
    let flow = Flow::new("slow")
        .node(Node::start("start"))
        .node(
            Node::send_text("answer", "x")
                .with_ai_field("message", "Answer {{last_user_input}}")
                .with("provider_model_name", "m"),
        )
        .edge("start", "answer");
    let s = Server::start(flow, Some(Arc::new(SlowModel)), |st| st).await;
    let contacts: Vec<(String, String)> = (0..10)
        .map(|i| (format!("wamid.{i}"), format!("1415555{i:04}")))
        .collect();
    let messages: Vec<(&str, &str, &str)> = contacts
        .iter()
        .map(|(id, from)| (id.as_str(), from.as_str(), "question"))
        .collect();
    let started = Instant::now();
    assert_eq!(s.webhook(webhook(&messages)).await, 200);
    let acked = started.elapsed();
    assert!(
        acked < Duration::from_millis(200),
        "acknowledged after {acked:?}"
    );
    while s.offline.messenger.sent().len() < 10 {
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "replies never came"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let answered = started.elapsed();
    assert!(
        answered < Duration::from_secs(4),
        "ten 3 s turns took {answered:?}: they must run side by side"
    );
    // Redelivered while the slow turns ran: acknowledged, never answered twice.
    assert_eq!(s.webhook(webhook(&messages)).await, 200);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(s.offline.messenger.sent().len(), 10);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn api_resumes_racing_webhooks_answer_each_input_once() {
    let s = Server::start(echo_loop(), None, |st| st.with_api(Server::api())).await;
    let phones: Vec<String> = (0..40).map(|i| format!("1415556{i:04}")).collect();
    let mut ids = Vec::new();
    for p in &phones {
        let (status, v) = s
            .call(
                "POST",
                "/v1/executions",
                Some(API_TOKEN),
                json!({"flow": "f", "phone_number": format!("+{p}")}),
            )
            .await;
        assert_eq!(status, 201, "{v}");
        ids.push(v["execution_id"].as_str().unwrap().to_owned());
    }
    // For each contact, a resume and a webhook at the same moment.
    let mut tasks = Vec::new();
    for (i, (p, id)) in phones.iter().zip(&ids).enumerate() {
        let (base, client) = (s.base.clone(), s.client.clone());
        let (p, id) = (p.clone(), id.clone());
        tasks.push(tokio::spawn(async move {
            let body = webhook(&[(&format!("wamid.race.{i}"), &p, &format!("W{i}"))]);
            let hook = client
                .post(format!("{base}/webhooks/whatsapp"))
                .header("x-hub-signature-256", sign(&body))
                .body(body)
                .send();
            let resume = client
                .post(format!("{base}/v1/executions/{id}/resume"))
                .bearer_auth(API_TOKEN)
                .json(&json!({"message": {"kind": "payload", "data": format!("R{i}")}}))
                .send();
            let (hook, resume) = tokio::join!(hook, resume);
            assert_eq!(hook.unwrap().status().as_u16(), 200);
            resume.unwrap().status().as_u16()
        }));
    }
    let mut resumed = Vec::new();
    for t in tasks {
        resumed.push(t.await.unwrap());
    }
    assert!(
        resumed.iter().all(|s| *s == 200 || *s == 409),
        "{resumed:?}"
    );
    // Let the worker answer every webhook.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let texts = s.sent_texts();
        let webhooks = (0..40)
            .filter(|i| texts.contains(&format!("echo W{i}")))
            .count();
        if webhooks == 40 {
            break;
        }
        assert!(Instant::now() < deadline, "webhooks unanswered: {texts:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let texts = s.sent_texts();
    for (i, resume_status) in resumed.iter().enumerate() {
        let w = texts.iter().filter(|t| **t == format!("echo W{i}")).count();
        let r = texts.iter().filter(|t| **t == format!("echo R{i}")).count();
        assert_eq!(w, 1, "webhook input {i} answered {w} times");
        let expected = usize::from(*resume_status == 200);
        assert_eq!(
            r, expected,
            "resume {i} ({resume_status}) answered {r} times"
        );
    }
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn delivery_statuses_are_recorded_on_the_outbox_and_shown_by_the_api() {
    let s = Server::start(echo_loop(), None, |st| st.with_api(Server::api())).await;
    let (_, v) = s
        .call(
            "POST",
            "/v1/executions",
            Some(API_TOKEN),
            json!({"flow": "f", "phone_number": "+14155550100"}),
        )
        .await;
    let id = v["execution_id"].as_str().unwrap().to_owned();
    assert_eq!(
        s.webhook(webhook(&[("wamid.in.1", "14155550100", "hello")]))
            .await,
        200
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while s.offline.messenger.sent().is_empty() {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let sent = s.offline.messenger.sent();
    let reference = sent[0]
        .reference
        .clone()
        .expect("the outbox id goes with the message");
    // WhatsApp reports delivered, then failed with an error (by WhatsApp id only).
    let statuses = serde_json::to_vec(&json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": PNID, "phone_number_id": PNID},
            "statuses": [
                {"id": "wamid.out.1", "status": "delivered", "timestamp": "1767607300",
                 "recipient_id": "14155550100", "biz_opaque_callback_data": reference},
                {"id": "wamid.out.1", "status": "read", "timestamp": "1767607400",
                 "recipient_id": "14155550100"}
            ]
        }}]}]
    }))
    .unwrap();
    assert_eq!(s.webhook(statuses).await, 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    let messages = loop {
        let (status, v) = s
            .call(
                "GET",
                &format!("/v1/executions/{id}/messages"),
                Some(API_TOKEN),
                Value::Null,
            )
            .await;
        assert_eq!(status, 200, "{v}");
        if v["data"][0]["statuses"]
            .as_array()
            .is_some_and(|a| a.len() == 2)
        {
            break v;
        }
        assert!(Instant::now() < deadline, "statuses never recorded: {v}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let record = &messages["data"][0];
    assert_eq!(record["id"], reference.as_str());
    assert_eq!(record["state"]["state"], "sent");
    assert_eq!(record["state"]["whatsapp_id"], "wamid.out.1");
    assert_eq!(record["statuses"][0]["status"], "delivered");
    assert_eq!(record["statuses"][1]["status"], "read");
    let (_, events) = s
        .call(
            "GET",
            &format!("/v1/executions/{id}/events?event_type=message_status"),
            Some(API_TOKEN),
            Value::Null,
        )
        .await;
    assert_eq!(events["data"].as_array().unwrap().len(), 2, "{events}");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_header_connections_are_closed_while_requests_are_served() {
    let s = Server::start(echo_loop(), None, |st| {
        st.with_limits(Limits {
            header_read_timeout: Duration::from_secs(1),
            ..Limits::default()
        })
    })
    .await;
    let addr = s.base.trim_start_matches("http://").to_owned();
    // 300 clients that start a request and never finish its headers.
    let slow: Vec<std::net::TcpStream> = (0..300)
        .map(|_| {
            let mut c = std::net::TcpStream::connect(&addr).unwrap();
            c.write_all(b"POST /webhooks/whatsapp HTTP/1.1\r\nHost: x\r\n")
                .unwrap();
            c
        })
        .collect();
    // Normal requests are served meanwhile.
    let handshake = format!(
        "{}/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token={TOKEN}&hub.challenge=7",
        s.base
    );
    let served = Instant::now();
    let r = s.client.get(&handshake).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(served.elapsed() < Duration::from_millis(500));
    // Within the header timeout (and a margin), every slow connection is closed.
    let closed = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut closed = 0;
        for mut c in slow {
            let left = deadline.saturating_duration_since(Instant::now());
            c.set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .unwrap();
            let mut buf = [0u8; 512];
            // EOF (or a reset, or a 408 then EOF) means the server let it go.
            loop {
                match c.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => continue,
                }
            }
            if Instant::now() < deadline {
                closed += 1;
            }
        }
        closed
    })
    .await
    .unwrap();
    assert_eq!(closed, 300, "slow connections left open");
    // A new connection: the header timeout also closes idle keep-alive connections, so the
    // shared client's pooled one may be gone by now.
    let r = reqwest::Client::new().get(&handshake).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200, "still serving");
    s.shutdown().await;
}
