//! Several `switchboard serve` processes on one PostgreSQL database, driven like WhatsApp drives
//! them (signed webhooks spread over the processes, redelivered until answered 200): every
//! acknowledged message is answered exactly once and in order per contact — also when a process
//! is killed with `kill -9` during the run — and wait timeouts due while their process is dead
//! fire once, on another process.
//!
//! They need `SWITCHBOARD_TEST_POSTGRES` (a database URL); without it they say they were skipped,
//! unless `SWITCHBOARD_REQUIRE_POSTGRES=1` (CI), in which case they fail.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use switchboard_bench::harness::{
    ECHO_LOOP, FakeGraph, Load, ServeProcess, check_replies, drive, serve_config_with, serve_env,
    sign, text_webhook, unix_now,
};
use switchboard_postgres::{PoolOptions, PostgresStore};

const SECRET: &str = "many-workers-app-secret";

fn database_url(test: &str) -> Option<String> {
    match std::env::var("SWITCHBOARD_TEST_POSTGRES") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("SWITCHBOARD_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                "{test}: SWITCHBOARD_REQUIRE_POSTGRES=1 but SWITCHBOARD_TEST_POSTGRES is not set"
            );
            eprintln!(
                "{test}: skipped — set SWITCHBOARD_TEST_POSTGRES=postgres://USER@HOST:PORT/DB to run the PostgreSQL tests"
            );
            None
        }
    }
}

/// A test directory with a flow, and a fresh schema in the test database.
struct Setup {
    dir: PathBuf,
    url: String,
    schema: String,
}

impl Setup {
    async fn new(name: &str, flow: &str) -> Setup {
        let url = std::env::var("SWITCHBOARD_TEST_POSTGRES").unwrap();
        let schema = format!("sbw_{name}_{}_{}", std::process::id(), unix_now());
        let admin = PostgresStore::connect(&url, &PoolOptions::default()).unwrap();
        admin.create_schema(&schema).await.unwrap();
        let dir = std::env::temp_dir().join(format!("switchboard-{schema}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("flows")).unwrap();
        std::fs::write(dir.join("flows/flow.yaml"), flow).unwrap();
        Setup { dir, url, schema }
    }

    fn config(&self, graph: &FakeGraph, server: &str) -> PathBuf {
        serve_config_with(
            &self.dir,
            graph,
            server,
            &format!("[postgres]\nschema = \"{}\"\npool_size = 8\n", self.schema),
        )
        .unwrap()
    }

    fn spawn(&self, config: &Path) -> ServeProcess {
        let args = vec![
            "--flows".to_owned(),
            self.dir.join("flows").display().to_string(),
            "--store".to_owned(),
            "env:SB_TEST_DATABASE_URL".to_owned(),
            "--config".to_owned(),
            config.display().to_string(),
            "--migrate".to_owned(),
        ];
        let mut env = serve_env(SECRET);
        env.push(("SB_TEST_DATABASE_URL".into(), self.url.clone()));
        ServeProcess::spawn(
            Path::new(env!("CARGO_BIN_EXE_switchboard")),
            &args,
            &env,
            &self.dir.join("serve.log"),
        )
        .unwrap()
    }

    async fn cleanup(self) {
        if let Ok(admin) = PostgresStore::connect(&self.url, &PoolOptions::default()) {
            let _ = admin.drop_schema(&self.schema).await;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn wait_for(graph: &FakeGraph, n: usize, limit: Duration) {
    let deadline = Instant::now() + limit;
    while graph.received().len() < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Long enough for a late duplicate to show.
    tokio::time::sleep(Duration::from_secs(3)).await;
}

/// For each message acknowledged before `kill` and answered after it: how long it waited
/// from its acknowledgement to its reply.
fn waits_across(
    acked_at: &std::collections::BTreeMap<String, Instant>,
    received: &[switchboard_bench::harness::Received],
    kill: Instant,
) -> Vec<Duration> {
    received
        .iter()
        .filter(|r| r.at >= kill)
        .filter_map(|r| {
            let acked = acked_at.get(r.text.strip_prefix("echo ")?)?;
            (*acked < kill).then(|| r.at.saturating_duration_since(*acked))
        })
        .collect()
}

fn verdict(load: &Load, graph: &FakeGraph, log: &Path) {
    let received = graph.received();
    let (missing, duplicated, disorder) = check_replies(load, &received);
    let log = std::fs::read_to_string(log).unwrap_or_default();
    let tail: Vec<&str> = log.lines().rev().take(30).collect();
    assert!(
        missing.is_empty() && duplicated.is_empty() && disorder.is_empty(),
        "{} replies; missing {missing:?}; duplicated {duplicated:?}; out of order {disorder:?}\nlog:\n{}",
        received.len(),
        tail.join("\n")
    );
}

/// The tests of this file each run three `serve` processes: one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn three_processes(kill_twice: bool) {
    let _serial = SERIAL.lock().await;
    let name = if kill_twice { "kill" } else { "three" };
    let setup = Setup::new(name, ECHO_LOOP).await;
    let graph = FakeGraph::start(SECRET, true).await.unwrap();
    let config = setup.config(
        &graph,
        "lease_seconds = 3\nresend_after_seconds = 4\nworker_concurrency = 16",
    );
    let mut servers: Vec<ServeProcess> = (0..3).map(|_| setup.spawn(&config)).collect();
    let urls = |servers: &[ServeProcess]| -> Vec<String> {
        servers.iter().map(|s| s.base_url.clone()).collect()
    };
    let targets = Arc::new(Mutex::new(urls(&servers)));
    graph.set_targets(urls(&servers));
    let load = Load::new(200, 10);
    let total = 200 * 10;
    let driver = tokio::spawn({
        let (load, targets) = (load.clone(), targets.clone());
        async move {
            drive(
                &load,
                SECRET,
                targets,
                50,
                10,
                Arc::new(AtomicBool::new(false)),
            )
            .await
        }
    });
    let mut kills = Vec::new();
    if kill_twice {
        for fraction in [0.3, 0.6] {
            let at = (total as f64 * fraction) as usize;
            let deadline = Instant::now() + Duration::from_secs(120);
            while graph.received().len() < at && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            // The same process dies twice: its conversations continue on the other two.
            let victim = servers.remove(0);
            *targets.lock().unwrap() = urls(&servers);
            graph.set_targets(urls(&servers));
            victim.kill();
            kills.push(Instant::now());
            let restarted = setup.spawn(&config);
            servers.insert(0, restarted);
            *targets.lock().unwrap() = urls(&servers);
            graph.set_targets(urls(&servers));
        }
    }
    let driven = tokio::time::timeout(Duration::from_secs(240), driver)
        .await
        .expect("the load finishes")
        .unwrap();
    assert_eq!(driven.acknowledged, total);
    wait_for(&graph, total, Duration::from_secs(300)).await;
    eprintln!(
        "{name}: {} acknowledged after {} deliveries; {} replies",
        driven.acknowledged,
        driven.attempts,
        graph.received().len()
    );
    verdict(&load, &graph, &setup.dir.join("serve.log"));
    if let Some(first_kill) = kills.first() {
        // The conversations the killed process held wait for its leases to expire (3 s), then
        // continue on another process; under this load the wait is mostly the backlog (the
        // messages acknowledged before the kill and answered after it), so it is reported,
        // not bounded: that every one of them was answered, once and in order, is asserted
        // above.
        let waits = waits_across(&driven.acked_at, &graph.received(), *first_kill);
        let longest = waits.iter().max().copied().unwrap_or_default();
        eprintln!(
            "{name}: {} messages acknowledged before the first kill were answered after it; the longest waited {longest:?} from its acknowledgement",
            waits.len()
        );
    }
    for s in servers {
        assert!(
            s.terminate(Duration::from_secs(15)),
            "a clean exit on SIGTERM"
        );
    }
    setup.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_processes_on_one_database_answer_every_message_once_in_order() {
    if database_url("three_processes_on_one_database_answer_every_message_once_in_order").is_none()
    {
        return;
    }
    three_processes(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_process_killed_twice_loses_nothing_and_repeats_nothing() {
    if database_url("a_process_killed_twice_loses_nothing_and_repeats_nothing").is_none() {
        return;
    }
    three_processes(true).await;
}

/// start → ask → wait (10 s timeout) → after → end
const TIMED: &str = "name: timed
nodes:
- {id: start, data: {node_type: start, config: {}}}
- {id: ask, data: {node_type: send_text, config: {message: ask}}}
- {id: wait, data: {node_type: wait_for_response, config: {timeout_seconds: 10}}}
- {id: after, data: {node_type: send_text, config: {message: 'after {{system.last_resume.reason}}'}}}
edges:
- {source: start, target: ask, label: next}
- {source: ask, target: wait, label: next}
- {source: wait, target: after, label: next}
";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn timeouts_due_while_their_process_is_dead_fire_once_on_another() {
    if database_url("timeouts_due_while_their_process_is_dead_fire_once_on_another").is_none() {
        return;
    }
    let _serial = SERIAL.lock().await;
    let setup = Setup::new("timers", TIMED).await;
    let graph = FakeGraph::start(SECRET, true).await.unwrap();
    let config = setup.config(&graph, "lease_seconds = 2");
    let a = setup.spawn(&config);
    let b = setup.spawn(&config);
    graph.set_targets(vec![a.base_url.clone(), b.base_url.clone()]);
    let client = reqwest::Client::new();
    let contacts: Vec<String> = (0..20).map(|i| format!("1415700{i:04}")).collect();
    // Every conversation starts on process A, which arms the timers.
    for (i, c) in contacts.iter().enumerate() {
        let body = text_webhook(&format!("wamid.t.{i}"), c, "hi", unix_now());
        let r = client
            .post(format!("{}/webhooks/whatsapp", a.base_url))
            .header("x-hub-signature-256", sign(SECRET, &body))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while graph.received().len() < contacts.len() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(graph.received().len(), contacts.len(), "every `ask` sent");
    // A dies before the timers are due; only B is left.
    a.kill();
    graph.set_targets(vec![b.base_url.clone()]);
    let deadline = Instant::now() + Duration::from_secs(40);
    while graph.received().len() < 2 * contacts.len() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let received = graph.received();
    for c in &contacts {
        let fired = received
            .iter()
            .filter(|r| r.to == *c && r.text == "after timeout")
            .count();
        assert_eq!(fired, 1, "{c}: the timeout fired {fired} times");
    }
    assert!(b.terminate(Duration::from_secs(15)));
    setup.cleanup().await;
}
