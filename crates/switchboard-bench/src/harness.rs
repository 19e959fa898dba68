//! Driving `switchboard serve` from outside, as WhatsApp does, entirely on 127.0.0.1: spawned
//! `serve` processes (killable with `kill -9` and restartable on the same store), a fake Graph
//! API that records every outbound message and reports delivery statuses back the way Meta does
//! (signed webhooks, retried until answered 200), and a load driver that sends signed webhooks
//! and redelivers every one not answered 200. Used by the durability tests of the CLI and by
//! `cargo xtask bench serve`.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use axum::Json;
use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::routing::post;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

/// The business number the harness uses.
pub const PHONE_NUMBER_ID: &str = "15550001111";

/// Signs a webhook body as Meta does (`X-Hub-Signature-256`).
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

/// A webhook with one text message.
pub fn text_webhook(message_id: &str, from: &str, text: &str, timestamp: u64) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": PHONE_NUMBER_ID, "phone_number_id": PHONE_NUMBER_ID},
            "contacts": [{"profile": {"name": "Load"}, "wa_id": from}],
            "messages": [{"from": from, "id": message_id, "timestamp": timestamp.to_string(),
                          "type": "text", "text": {"body": text}}]
        }}]}]
    }))
    .unwrap_or_default()
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A message the fake Graph API received.
#[derive(Clone, Debug, PartialEq)]
pub struct Received {
    /// The business number it was sent from (the `{phone_number_id}` of the URL).
    pub from: String,
    /// The recipient (digits).
    pub to: String,
    /// The text (text messages), else the JSON of the message.
    pub text: String,
    /// `biz_opaque_callback_data` (Switchboard's outbox id).
    pub reference: Option<String>,
    /// The WhatsApp id the fake gave it.
    pub whatsapp_id: String,
    /// When it arrived.
    pub at: Instant,
}

#[derive(Clone)]
struct GraphState {
    received: Arc<Mutex<Vec<Received>>>,
    targets: Arc<Mutex<Vec<String>>>,
    counter: Arc<AtomicU64>,
    app_secret: Arc<str>,
    statuses: bool,
    client: reqwest::Client,
}

/// A fake WhatsApp Cloud API on 127.0.0.1.
pub struct FakeGraph {
    /// `http://127.0.0.1:PORT`: the `[whatsapp] base_url` to give `serve`.
    pub base_url: String,
    state: GraphState,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl FakeGraph {
    /// Starts one. With `statuses`, every accepted message is reported back as a signed
    /// `sent` status webhook (with its `biz_opaque_callback_data`) to one of the current
    /// targets, retried until a target answers 200 — as Meta retries webhooks.
    pub async fn start(app_secret: &str, statuses: bool) -> anyhow::Result<FakeGraph> {
        let state = GraphState {
            received: Arc::default(),
            targets: Arc::default(),
            counter: Arc::default(),
            app_secret: Arc::from(app_secret),
            statuses,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()?,
        };
        let app = Router::new()
            .route("/{version}/{phone}/messages", post(receive))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base_url = format!("http://{}", listener.local_addr()?);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(FakeGraph {
            base_url,
            state,
            stop: Some(stop),
        })
    }

    /// The `serve` addresses statuses go to (`http://127.0.0.1:PORT`).
    pub fn set_targets(&self, targets: Vec<String>) {
        *lock(&self.state.targets) = targets;
    }

    /// Everything received so far, in arrival order.
    pub fn received(&self) -> Vec<Received> {
        lock(&self.state.received).clone()
    }
}

impl Drop for FakeGraph {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn receive(
    State(state): State<GraphState>,
    UrlPath((_version, from)): UrlPath<(String, String)>,
    Json(body): Json<Value>,
) -> Json<Value> {
    let n = state.counter.fetch_add(1, Ordering::SeqCst) + 1;
    let whatsapp_id = format!("wamid.fake.{n}");
    let to = body["to"].as_str().unwrap_or_default().to_owned();
    let text = body["text"]["body"]
        .as_str()
        .map_or_else(|| body.to_string(), str::to_owned);
    let reference = body["biz_opaque_callback_data"].as_str().map(str::to_owned);
    lock(&state.received).push(Received {
        from,
        to: to.clone(),
        text,
        reference: reference.clone(),
        whatsapp_id: whatsapp_id.clone(),
        at: Instant::now(),
    });
    if state.statuses {
        let state = state.clone();
        let id = whatsapp_id.clone();
        tokio::spawn(async move { report_sent(state, id, to, reference).await });
    }
    Json(
        json!({"messaging_product": "whatsapp", "contacts": [{"input": body["to"], "wa_id": body["to"]}],
                "messages": [{"id": whatsapp_id}]}),
    )
}

/// Posts a `sent` status until some target answers 200 (gives up after two minutes).
async fn report_sent(state: GraphState, id: String, to: String, reference: Option<String>) {
    let mut status = json!({"id": id, "status": "sent", "timestamp": unix_now().to_string(),
                            "recipient_id": to});
    if let Some(r) = reference {
        status["biz_opaque_callback_data"] = json!(r);
    }
    let body = serde_json::to_vec(&json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": PHONE_NUMBER_ID, "phone_number_id": PHONE_NUMBER_ID},
            "statuses": [status]
        }}]}]
    }))
    .unwrap_or_default();
    let signature = sign(&state.app_secret, &body);
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut attempt = 0usize;
    while Instant::now() < deadline {
        let targets = lock(&state.targets).clone();
        if let Some(t) = targets.get(attempt % targets.len().max(1)) {
            let sent = state
                .client
                .post(format!("{t}/webhooks/whatsapp"))
                .header("x-hub-signature-256", &signature)
                .body(body.clone())
                .send()
                .await;
            if sent.is_ok_and(|r| r.status().as_u16() == 200) {
                return;
            }
        }
        attempt += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A running `switchboard serve`.
pub struct ServeProcess {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
}

impl ServeProcess {
    /// Starts `bin serve --listen 127.0.0.1:0 ARGS` with `env`, and waits for its address.
    /// Its stderr goes to `log` (appended).
    pub fn spawn(
        bin: &Path,
        args: &[String],
        env: &[(String, String)],
        log: &Path,
    ) -> anyhow::Result<ServeProcess> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("opening {}", log.display()))?;
        let mut child = Command::new(bin)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let Some(addr) = line.trim().strip_prefix("listening on ") else {
            let _ = child.kill();
            let _ = child.wait();
            bail!("serve did not start: first line {line:?}");
        };
        Ok(ServeProcess {
            child,
            base_url: addr.to_owned(),
        })
    }

    /// `kill -9`.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits for the exit (at most `wait`); `true` on a clean exit.
    pub fn terminate(mut self, wait: Duration) -> bool {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
            if let Ok(Some(s)) = self.child.try_wait() {
                return s.success();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        false
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `switchboard.toml` of a harness `serve`: the fake Graph API as `[whatsapp]` (token in
/// `SB_HARNESS_WA_TOKEN`), `[server]` settings, and any further TOML (`extra`).
pub fn serve_config(dir: &Path, graph: &FakeGraph, server: &str) -> anyhow::Result<PathBuf> {
    serve_config_with(dir, graph, server, "")
}

/// [`serve_config`] with more sections (`extra`, TOML).
pub fn serve_config_with(
    dir: &Path,
    graph: &FakeGraph,
    server: &str,
    extra: &str,
) -> anyhow::Result<PathBuf> {
    let path = dir.join("switchboard.toml");
    std::fs::write(
        &path,
        format!(
            "[whatsapp]\nphone_number_id = \"{PHONE_NUMBER_ID}\"\naccess_token_env = \"SB_HARNESS_WA_TOKEN\"\n\
             base_url = \"{}\"\ntimeout_seconds = 5\nmax_retries = 1\n\n[server]\n{server}\n\n{extra}\n",
            graph.base_url
        ),
    )?;
    Ok(path)
}

/// The environment of a harness `serve`.
pub fn serve_env(app_secret: &str) -> Vec<(String, String)> {
    vec![
        ("WHATSAPP_APP_SECRET".into(), app_secret.into()),
        ("WHATSAPP_VERIFY_TOKEN".into(), "harness-verify".into()),
        ("SB_HARNESS_WA_TOKEN".into(), "harness-access-token".into()),
        ("SWITCHBOARD_LOG".into(), "warn".into()),
    ]
}

/// start → echo → wait → echo → wait …: every message is answered `echo <text>` exactly once.
pub const ECHO_LOOP: &str = "name: echo_loop
nodes:
- {id: start, data: {node_type: start, config: {}}}
- {id: echo, data: {node_type: send_text, config: {message: 'echo {{last_user_input}}'}}}
- {id: wait, data: {node_type: wait_for_response, config: {}}}
edges:
- {source: start, target: echo, label: next}
- {source: echo, target: wait, label: next}
- {source: wait, target: echo, label: next}
";

/// One webhook of the load: a message of a contact.
#[derive(Clone, Debug)]
pub struct Load {
    /// Contacts' numbers (digits), in order.
    pub contacts: Vec<String>,
    /// Messages per contact.
    pub messages: usize,
}

impl Load {
    /// `contacts` contacts (`1415600NNNN`) × `messages` messages.
    pub fn new(contacts: usize, messages: usize) -> Load {
        Load {
            contacts: (0..contacts).map(|i| format!("1415600{i:04}")).collect(),
            messages,
        }
    }

    /// The text of contact `c`'s `m`-th message (and the reply is `echo <text>`).
    pub fn text(c: usize, m: usize) -> String {
        format!("c{c}-m{m}")
    }
}

/// What a driver measured.
#[derive(Clone, Debug, Default)]
pub struct Driven {
    /// Webhooks answered 200 (redeliveries of the same message count once).
    pub acknowledged: usize,
    /// Deliveries attempted (including retries and deliberate redeliveries).
    pub attempts: usize,
    /// Acknowledgement latencies of the successful deliveries, µs.
    pub ack_us: Vec<u64>,
    /// When each message was first acknowledged: text → time.
    pub acked_at: BTreeMap<String, Instant>,
    /// Wall time of the run.
    pub elapsed: Duration,
}

/// Sends the load: each contact's messages in order (a contact waits for its message's 200
/// before sending the next), `parallel` contacts at once; every delivery not answered 200 is
/// redelivered (to the next target, after a short pause) until it is; `duplicate_every` > 0
/// redelivers every n-th acknowledged message once more. `targets` gives the current serve
/// addresses (it may change while the load runs: restarts).
pub async fn drive(
    load: &Load,
    app_secret: &str,
    targets: Arc<Mutex<Vec<String>>>,
    parallel: usize,
    duplicate_every: usize,
    stop: Arc<AtomicBool>,
) -> Driven {
    drive_paced(
        load,
        app_secret,
        targets,
        parallel,
        duplicate_every,
        stop,
        None,
    )
    .await
}

/// [`drive`], with new messages sent at no more than `rate` per second overall (an open load:
/// the latency measured is then the server's, not the clients' queue).
pub async fn drive_paced(
    load: &Load,
    app_secret: &str,
    targets: Arc<Mutex<Vec<String>>>,
    parallel: usize,
    duplicate_every: usize,
    stop: Arc<AtomicBool>,
    rate: Option<f64>,
) -> Driven {
    let started = Instant::now();
    let sends = Arc::new(AtomicU64::new(0));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .pool_max_idle_per_host(64)
        .build()
        .unwrap_or_default();
    let results = Arc::new(Mutex::new(Driven::default()));
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..parallel.max(1) {
        let (client, targets, results, next, stop, sends) = (
            client.clone(),
            targets.clone(),
            results.clone(),
            next.clone(),
            stop.clone(),
            sends.clone(),
        );
        let load = load.clone();
        let secret = app_secret.to_owned();
        tasks.push(tokio::spawn(async move {
            loop {
                let c = next.fetch_add(1, Ordering::SeqCst) as usize;
                if c >= load.contacts.len() || stop.load(Ordering::SeqCst) {
                    break;
                }
                for m in 0..load.messages {
                    let text = Load::text(c, m);
                    let id = format!("wamid.in.{c}.{m}");
                    let body = text_webhook(&id, &load.contacts[c], &text, unix_now());
                    let signature = sign(&secret, &body);
                    let copies = if duplicate_every > 0
                        && (c * load.messages + m).is_multiple_of(duplicate_every)
                    {
                        2
                    } else {
                        1
                    };
                    for copy in 0..copies {
                        if let Some(rate) = rate.filter(|r| *r > 0.0) {
                            let k = sends.fetch_add(1, Ordering::SeqCst);
                            let at = started + Duration::from_secs_f64(k as f64 / rate);
                            tokio::time::sleep_until(at.into()).await;
                        }
                        let mut attempt = 0usize;
                        loop {
                            if stop.load(Ordering::SeqCst) {
                                return;
                            }
                            // Messages of one contact are spread over the targets, as a
                            // load balancer would.
                            let target = {
                                let t = lock(&targets);
                                t.get((c * 7 + m * 13 + attempt) % t.len().max(1)).cloned()
                            };
                            attempt += 1;
                            let Some(target) = target else {
                                tokio::time::sleep(Duration::from_millis(20)).await;
                                continue;
                            };
                            let sent_at = Instant::now();
                            let answer = client
                                .post(format!("{target}/webhooks/whatsapp"))
                                .header("x-hub-signature-256", &signature)
                                .header("content-type", "application/json")
                                .body(body.clone())
                                .send()
                                .await;
                            let ok = matches!(&answer, Ok(r) if r.status().as_u16() == 200);
                            {
                                let mut r = lock(&results);
                                r.attempts += 1;
                                if ok {
                                    r.ack_us.push(sent_at.elapsed().as_micros() as u64);
                                    if copy == 0 {
                                        r.acknowledged += 1;
                                        r.acked_at.insert(text.clone(), sent_at);
                                    }
                                }
                            }
                            if ok {
                                break;
                            }
                            tokio::time::sleep(Duration::from_millis(30)).await;
                        }
                    }
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let mut r = lock(&results).clone();
    r.elapsed = started.elapsed();
    r
}

/// Checks the replies the fake received against the load: every message answered exactly once,
/// in order per contact. Returns `(missing, duplicated, out_of_order)` descriptions.
pub fn check_replies(
    load: &Load,
    received: &[Received],
) -> (Vec<String>, Vec<String>, Vec<String>) {
    let mut per_contact: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for r in received {
        per_contact
            .entry(r.to.as_str())
            .or_default()
            .push(r.text.as_str());
    }
    let (mut missing, mut duplicated, mut disorder) = (Vec::new(), Vec::new(), Vec::new());
    for (c, contact) in load.contacts.iter().enumerate() {
        let got = per_contact
            .get(contact.as_str())
            .cloned()
            .unwrap_or_default();
        let expected: Vec<String> = (0..load.messages)
            .map(|m| format!("echo {}", Load::text(c, m)))
            .collect();
        for e in &expected {
            match got.iter().filter(|g| **g == e.as_str()).count() {
                0 => missing.push(e.clone()),
                1 => {}
                n => duplicated.push(format!("{e} ×{n}")),
            }
        }
        let order: Vec<usize> = got
            .iter()
            .filter_map(|g| expected.iter().position(|e| e == g))
            .collect();
        let mut seen = std::collections::BTreeSet::new();
        let first: Vec<usize> = order.into_iter().filter(|i| seen.insert(*i)).collect();
        if first.windows(2).any(|w| w[0] > w[1]) {
            disorder.push(format!("{contact}: {got:?}"));
        }
    }
    (missing, duplicated, disorder)
}

/// Percentile of sorted values (`p` in 0–100).
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}
