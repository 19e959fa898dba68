//! `switchboard serve` as a production server, spawned and driven over 127.0.0.1 the way
//! WhatsApp drives it: signed webhooks redelivered until answered 200, a Graph API that records
//! every reply and reports delivery statuses back. Under load it is killed with `kill -9` and
//! restarted on the same SQLite file; two processes share one file; a delayed send survives a
//! restart. Every acknowledged message must be answered exactly once, in order per contact.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use switchboard_bench::harness::{
    ECHO_LOOP, FakeGraph, Load, ServeProcess, check_replies, drive, serve_config, serve_env,
    text_webhook, unix_now,
};

const SECRET: &str = "durability-app-secret-5c2";

struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let d = std::env::temp_dir().join(format!(
            "switchboard-durability-{name}-{}-{}",
            std::process::id(),
            unix_now()
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("flows")).unwrap();
        Dir(d)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_switchboard"))
}

/// `serve` arguments for the flows of `dir` on its SQLite file.
fn args(dir: &Path, config: &Path) -> Vec<String> {
    vec![
        "--flows".into(),
        dir.join("flows").display().to_string(),
        "--store".into(),
        format!("sqlite://{}", dir.join("state.sqlite").display()),
        "--config".into(),
        config.display().to_string(),
    ]
}

fn spawn(dir: &Path, config: &Path) -> ServeProcess {
    ServeProcess::spawn(
        bin(),
        &args(dir, config),
        &serve_env(SECRET),
        &dir.join("serve.log"),
    )
    .unwrap()
}

/// Waits until the fake has `n` replies (or `limit` passes), then a little longer so a late
/// duplicate would show.
async fn replies(graph: &FakeGraph, n: usize, limit: Duration) -> usize {
    let deadline = Instant::now() + limit;
    while graph.received().len() < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    graph.received().len()
}

fn verdict(load: &Load, graph: &FakeGraph, log: &Path) {
    let received = graph.received();
    let (missing, duplicated, disorder) = check_replies(load, &received);
    let log = std::fs::read_to_string(log).unwrap_or_default();
    let tail: String = log.lines().rev().take(30).collect::<Vec<_>>().join("\n");
    assert!(
        missing.is_empty() && duplicated.is_empty() && disorder.is_empty(),
        "{} replies; missing {missing:?}; duplicated {duplicated:?}; out of order {disorder:?}\nlog (last lines, newest first):\n{tail}",
        received.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_under_load_loses_no_message_and_sends_no_reply_twice() {
    let dir = Dir::new("kill");
    std::fs::write(dir.0.join("flows/echo_loop.yaml"), ECHO_LOOP).unwrap();
    let graph = FakeGraph::start(SECRET, true).await.unwrap();
    let config = serve_config(
        &dir.0,
        &graph,
        "resend_after_seconds = 3\nlease_seconds = 2\nworker_concurrency = 16",
    )
    .unwrap();
    let load = Load::new(60, 10);
    let total = 60 * 10;
    let targets = Arc::new(Mutex::new(Vec::new()));
    let mut server = spawn(&dir.0, &config);
    *targets.lock().unwrap() = vec![server.base_url.clone()];
    graph.set_targets(vec![server.base_url.clone()]);
    let stop = Arc::new(AtomicBool::new(false));
    let driver = tokio::spawn({
        let (load, targets, stop) = (load.clone(), targets.clone(), stop.clone());
        async move { drive(&load, SECRET, targets, 12, 10, stop).await }
    });
    // Three kills while replies are flowing, each followed by a restart on the same file.
    let mut kills = 0;
    for fraction in [0.2, 0.45, 0.7] {
        let at = (total as f64 * fraction) as usize;
        let deadline = Instant::now() + Duration::from_secs(60);
        while graph.received().len() < at && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        targets.lock().unwrap().clear();
        server.kill();
        kills += 1;
        server = spawn(&dir.0, &config);
        *targets.lock().unwrap() = vec![server.base_url.clone()];
        graph.set_targets(vec![server.base_url.clone()]);
    }
    assert_eq!(kills, 3);
    let driven = tokio::time::timeout(Duration::from_secs(120), driver)
        .await
        .expect("the load finishes")
        .unwrap();
    assert_eq!(
        driven.acknowledged, total,
        "every message acknowledged in the end"
    );
    let got = replies(&graph, total, Duration::from_secs(60)).await;
    eprintln!(
        "kill -9 ×{kills}: {} messages acknowledged after {} deliveries (redeliveries included), {got} replies",
        driven.acknowledged, driven.attempts
    );
    assert!(got >= total, "{got} of {total} replies");
    verdict(&load, &graph, &dir.0.join("serve.log"));
    assert!(
        server.terminate(Duration::from_secs(10)),
        "a clean exit on SIGTERM"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_processes_on_one_sqlite_file_answer_each_message_once() {
    let dir = Dir::new("two");
    std::fs::write(dir.0.join("flows/echo_loop.yaml"), ECHO_LOOP).unwrap();
    let graph = FakeGraph::start(SECRET, true).await.unwrap();
    let config = serve_config(&dir.0, &graph, "lease_seconds = 5").unwrap();
    let a = spawn(&dir.0, &config);
    let b = spawn(&dir.0, &config);
    let both = vec![a.base_url.clone(), b.base_url.clone()];
    graph.set_targets(both.clone());
    let load = Load::new(50, 10);
    let total = 50 * 10;
    let driven = drive(
        &load,
        SECRET,
        Arc::new(Mutex::new(both)),
        10,
        10,
        Arc::new(AtomicBool::new(false)),
    )
    .await;
    assert_eq!(driven.acknowledged, total);
    let got = replies(&graph, total, Duration::from_secs(60)).await;
    assert!(got >= total, "{got} of {total} replies");
    verdict(&load, &graph, &dir.0.join("serve.log"));
    assert!(a.terminate(Duration::from_secs(10)));
    assert!(b.terminate(Duration::from_secs(10)));
}

/// start → first → later (`delay_seconds: 4`) → wait
const DELAYED: &str = "name: delayed
nodes:
- {id: start, data: {node_type: start, config: {}}}
- {id: first, data: {node_type: send_text, config: {message: first}}}
- {id: later, data: {node_type: send_text, config: {message: later, delay_seconds: 4}}}
- {id: wait, data: {node_type: wait_for_response, config: {}}}
edges:
- {source: start, target: first, label: next}
- {source: first, target: later, label: next}
- {source: later, target: wait, label: next}
";

async fn delayed(restart: bool) {
    let dir = Dir::new(if restart { "delay-restart" } else { "delay" });
    std::fs::write(dir.0.join("flows/delayed.yaml"), DELAYED).unwrap();
    let graph = FakeGraph::start(SECRET, true).await.unwrap();
    let config = serve_config(&dir.0, &graph, "lease_seconds = 2").unwrap();
    let mut server = spawn(&dir.0, &config);
    graph.set_targets(vec![server.base_url.clone()]);
    let body = text_webhook("wamid.d.1", "14155550100", "hi", unix_now());
    let client = reqwest::Client::new();
    let sent = Instant::now();
    let answer = client
        .post(format!("{}/webhooks/whatsapp", server.base_url))
        .header(
            "x-hub-signature-256",
            switchboard_bench::harness::sign(SECRET, &body),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    let acked = sent.elapsed();
    assert_eq!(answer.status().as_u16(), 200);
    assert!(
        acked < Duration::from_millis(200),
        "acknowledged after {acked:?}"
    );
    if restart {
        // Killed during the delay, restarted on the same file.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        server.kill();
        server = spawn(&dir.0, &config);
        graph.set_targets(vec![server.base_url.clone()]);
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    while graph.received().len() < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let received = graph.received();
    let texts: Vec<&str> = received.iter().map(|r| r.text.as_str()).collect();
    assert_eq!(texts, ["first", "later"]);
    let gap = received[1].at - received[0].at;
    assert!(
        gap >= Duration::from_millis(3900) && gap < Duration::from_millis(6000),
        "the delayed message came {gap:?} after the first"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(graph.received().len(), 2, "nothing sent twice");
    assert!(server.terminate(Duration::from_secs(10)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_delayed_reply_comes_on_time_without_holding_the_webhook() {
    delayed(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_delayed_reply_comes_on_time_across_a_restart() {
    delayed(true).await;
}
