//! Runtime benchmark on the shared workload (`shared/bench/README.md`, bench_loop).
//!
//! Phase 1 starts C conversations through the API trigger with `context = {name: "user{i}"}`
//! (each pauses at `wait`); phase 2 delivers T turns round-robin as inbound messages. It reports
//! turns/s, per-turn latency percentiles, the outbound checksum against the expected one, and the
//! resident memory per paused conversation after 0 and after 20 turns, then one JSON line.
//!
//! Stores: `memory` (the in-memory store: events kept, nothing durable) and, where available,
//! durable stores (see `--store`). Outbound messages go to a counting messenger; the `stub`
//! decide model and the `increment` function are the workload's stubs.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, bail, ensure};
use async_trait::async_trait;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use switchboard_bench::serve::{BenchSchema, postgres_url};
use switchboard_postgres::{PoolOptions, PostgresStore};
use switchboard_runtime::adapters::{
    AdapterResult, ChatRequest, ChatResponse, LanguageModel, Messenger, OutboundBody,
    OutboundMessage, Purpose, SendReceipt,
};
use switchboard_runtime::event::Event;
use switchboard_runtime::offline::OfflineAdapters;
use switchboard_runtime::state::{Conversation, Execution, HistoryMessage, TriggerType};
use switchboard_runtime::store::{
    ExecutionFilter, ExecutionStore, MemoryStore, OutboxQuery, OutboxRecord,
};
use switchboard_runtime::{Engine, FlowDefinition, InboundMessage, StartRequest, Trigger};

/// The workload's decide stub: `billing` when the text has the word `invoice`.
struct StubModel;

#[async_trait]
impl LanguageModel for StubModel {
    async fn complete(&self, request: ChatRequest) -> AdapterResult<ChatResponse> {
        let text = match &request.purpose {
            Purpose::Decide {
                last_user_input, ..
            } => {
                let hit = last_user_input
                    .split(|c: char| !c.is_alphanumeric() && c != '_')
                    .any(|w| w.eq_ignore_ascii_case("invoice"));
                if hit { "billing" } else { "other" }
            }
            _ => "",
        };
        Ok(ChatResponse {
            text: Some(text.to_owned()),
            tool_calls: Vec::new(),
        })
    }
}

/// Keeps (or only counts) outbound texts per conversation index.
struct BenchMessenger {
    keep: bool,
    per_conv: Mutex<Vec<Vec<String>>>,
    hasher: Mutex<(Sha256, u64)>,
}

impl BenchMessenger {
    fn new(convs: usize, keep: bool) -> BenchMessenger {
        BenchMessenger {
            keep,
            per_conv: Mutex::new(vec![Vec::new(); if keep { convs } else { 0 }]),
            hasher: Mutex::new((Sha256::new(), 0)),
        }
    }
}

fn conv_index(phone: &str) -> usize {
    phone
        .trim_start_matches('+')
        .get(4..)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[async_trait]
impl Messenger for BenchMessenger {
    async fn send(&self, message: OutboundMessage) -> AdapterResult<SendReceipt> {
        let OutboundBody::Text { text } = message.body else {
            return Ok(SendReceipt {
                message_id: String::new(),
            });
        };
        let i = conv_index(&message.to);
        if self.keep {
            if let Ok(mut p) = self.per_conv.lock()
                && let Some(list) = p.get_mut(i)
            {
                list.push(text);
            }
        } else if i < WARM_UP
            && let Ok(mut h) = self.hasher.lock()
        {
            // Messages not retained: hashed in arrival order (phase 1 is in conversation order).
            h.0.update(format!("c{i}\t{text}\n").as_bytes());
            h.1 += 1;
        }
        Ok(SendReceipt {
            message_id: String::new(),
        })
    }
}

/// Conversation index of the warm-up conversation (its messages are not hashed).
const WARM_UP: usize = 9_999_000;

fn phone(i: usize) -> String {
    format!("+1555{i:07}")
}

fn user_text(i: usize, j: usize) -> String {
    if (i + j).is_multiple_of(3) {
        format!("invoice {j}")
    } else {
        format!("hello {j}")
    }
}

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .map(str::to_owned)
        })
        .and_then(|l| {
            l.split_whitespace()
                .nth(1)
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

struct Setup {
    engine: Engine,
    messenger: Arc<BenchMessenger>,
}

fn setup(
    workload: &str,
    store: Arc<dyn ExecutionStore>,
    convs: usize,
    keep: bool,
) -> anyhow::Result<Setup> {
    let offline = OfflineAdapters::default();
    offline.functions.register("increment", |req| {
        let turn = req
            .vars
            .get("turn")
            .and_then(serde_json::Value::as_i64)
            .unwrap_or(0);
        Ok(json!({"vars": {"turn": turn + 1}}))
    });
    let messenger = Arc::new(BenchMessenger::new(convs, keep));
    let mut adapters = offline.adapters();
    adapters.model = Arc::new(StubModel);
    adapters.messenger = messenger.clone();
    adapters.ids = Arc::new(switchboard_runtime::adapters::UniqueIds::default());
    // Conversations start through the API (the workload passes `context.name`), so no inbound
    // message opened the 24-hour window: the workload assumes sends succeed.
    let config = switchboard_runtime::EngineConfig {
        default_phone_number_id: "bench".into(),
        enforce_service_window: false,
        ..Default::default()
    };
    let engine = Engine::builder(store)
        .adapters(adapters)
        .config(config)
        .build();
    let loaded = switchboard_model::load(workload).map_err(|e| anyhow::anyhow!("workload: {e}"))?;
    engine
        .register_flow(FlowDefinition {
            id: "bench_loop".into(),
            slug: None,
            version: "1".into(),
            flow: loaded.flow,
        })
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    engine.add_trigger(Trigger {
        flow_id: "bench_loop".into(),
        trigger_type: TriggerType::ApiCall,
        phone_number_id: None,
        active: true,
    })?;
    Ok(Setup { engine, messenger })
}

async fn start(engine: &Engine, i: usize) -> anyhow::Result<()> {
    let mut context = serde_json::Map::new();
    context.insert("name".into(), json!(format!("user{i}")));
    engine
        .start_execution(StartRequest {
            flow: "bench_loop".into(),
            phone_number: phone(i),
            context,
            ..Default::default()
        })
        .await
        .map_err(|e| anyhow::anyhow!("start {i}: {e}"))?;
    Ok(())
}

async fn turn(engine: &Engine, i: usize, j: usize) -> anyhow::Result<()> {
    let msg = InboundMessage {
        id: format!("m{i}.{j}"),
        phone_number_id: "bench".into(),
        from: phone(i),
        kind: "text".into(),
        text: user_text(i, j),
        ..InboundMessage::default()
    };
    engine
        .handle_inbound(vec![msg])
        .await
        .map_err(|e| anyhow::anyhow!("turn {i}.{j}: {e}"))?;
    Ok(())
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn expected_checksum(root: &std::path::Path, convs: usize, turns: usize) -> Option<String> {
    let text = std::fs::read_to_string(root.join("fixtures/bench/expected.json")).ok()?;
    let v: Value = serde_json::from_str(&text).ok()?;
    v["sizes"]
        .as_array()?
        .iter()
        .find(|s| s["convs"] == json!(convs) && s["turns"] == json!(turns))
        .and_then(|s| s["sha256"].as_str().map(str::to_owned))
}

async fn throughput(
    workload: &str,
    root: &std::path::Path,
    store_name: &str,
    convs: usize,
    turns: usize,
    concurrency: usize,
) -> anyhow::Result<Value> {
    let concurrency = concurrency.max(1);
    let (store, schema) = make_store(store_name, concurrency).await?;
    let s = setup(workload, store, convs, true)?;
    let mut start_lat = Vec::with_capacity(convs);
    for i in 0..convs {
        let t = Instant::now();
        start(&s.engine, i).await?;
        start_lat.push(t.elapsed().as_micros() as u64);
    }
    // With `concurrency` > 1, conversations are split into groups served by concurrent tasks (each
    // keeps the round-robin order within its group); a durable store can then group-commit.
    let t0 = Instant::now();
    let engine = Arc::new(s.engine.clone());
    let mut tasks = Vec::new();
    for g in 0..concurrency {
        let engine = engine.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            for j in 0..turns {
                for i in (g..convs).step_by(concurrency) {
                    let t = Instant::now();
                    turn(&engine, i, j).await?;
                    lat.push(t.elapsed().as_micros() as u64);
                }
            }
            anyhow::Ok(lat)
        }));
    }
    let mut lat = Vec::with_capacity(convs * turns);
    for t in tasks {
        lat.extend(t.await??);
    }
    let wall = t0.elapsed();
    lat.sort_unstable();
    start_lat.sort_unstable();
    let mut h = Sha256::new();
    let mut messages = 0;
    let mut bad = 0;
    {
        let per = s
            .messenger
            .per_conv
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?;
        for (i, list) in per.iter().enumerate() {
            if list.len() != 1 + 2 * turns {
                bad += 1;
            }
            for m in list {
                h.update(format!("c{i}\t{m}\n").as_bytes());
                messages += 1;
            }
        }
    }
    if let Some(schema) = schema {
        schema.drop().await;
    }
    let checksum = format!("{:x}", h.finalize());
    let expected = expected_checksum(root, convs, turns);
    let ok = expected.as_deref().is_none_or(|e| e == checksum) && bad == 0;
    let tps = (convs * turns) as f64 / wall.as_secs_f64();
    switchboard_bench::out!(
        "throughput store={store_name} concurrency={concurrency}: {convs}×{turns} = {} turns in {:.3} s → {:.0} turns/s; p50 {} µs, p90 {} µs, p99 {} µs, max {} µs; checksum {}",
        convs * turns,
        wall.as_secs_f64(),
        tps,
        percentile(&lat, 50.0),
        percentile(&lat, 90.0),
        percentile(&lat, 99.0),
        lat.last().copied().unwrap_or(0),
        if ok { "ok" } else { "MISMATCH" }
    );
    Ok(json!({
        "mode": "throughput", "store": store_name, "persistence": persistence(store_name), "concurrency": concurrency,
        "convs": convs, "turns": turns, "turns_per_s": tps,
        "turn_latency_us": {"p50": percentile(&lat, 50.0), "p90": percentile(&lat, 90.0), "p99": percentile(&lat, 99.0), "max": lat.last()},
        "start_latency_us": {"p50": percentile(&start_lat, 50.0), "p99": percentile(&start_lat, 99.0)},
        "messages": messages, "checksum": checksum, "expected_checksum": expected, "ok": ok,
    }))
}

fn persistence(store: &str) -> &'static str {
    match store {
        "memory" | "memory-no-events" => {
            "in memory (like InMemorySaver), state written once per turn (at the pause, like durability=exit)"
        }
        "postgres" => {
            "durable (PostgreSQL), state committed before each message leaves and at the pause"
        }
        _ => "durable file, state committed before each message leaves and at the pause",
    }
}

async fn memory(
    workload: &str,
    store_name: &str,
    convs: usize,
    turns: usize,
) -> anyhow::Result<Value> {
    let (store, schema) = make_store(store_name, 1).await?;
    let s = setup(workload, store.clone(), convs, false)?;
    // Warm up: one conversation and one turn on another number range.
    start(&s.engine, WARM_UP).await?;
    turn(&s.engine, WARM_UP, 0).await?;
    let before = rss_bytes();
    let heap_before = counting::start();
    for i in 0..convs {
        start(&s.engine, i).await?;
    }
    let turns_from = counting::now();
    for j in 0..turns {
        for i in 0..convs {
            turn(&s.engine, i, j).await?;
        }
    }
    let counted = counting::stop();
    let heap = (counted.live_bytes - heap_before.live_bytes) as f64 / convs as f64;
    // Counted here, in an untimed case: counting costs cycles the throughput cases must not pay.
    let allocations_per_turn = (turns > 0)
        .then(|| (counted.allocations - turns_from.allocations) as f64 / (convs * turns) as f64);
    let after = rss_bytes();
    let state = state_breakdown(store.as_ref()).await?;
    if let Some(schema) = schema {
        schema.drop().await;
    }
    let per = after.saturating_sub(before) as f64 / convs as f64;
    let (checksum, n) = {
        let h = s
            .messenger
            .hasher
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?;
        (format!("{:x}", h.0.clone().finalize()), h.1)
    };
    switchboard_bench::out!(
        "memory store={store_name}: {convs} conversations paused after {turns} turns: RSS {} → {} bytes, {:.0} bytes per paused conversation ({n} messages hashed, not kept)",
        before,
        after,
        per
    );
    switchboard_bench::out!(
        "  heap bytes per paused conversation (as asked of the allocator): {heap:.0}"
    );
    if let Some(a) = allocations_per_turn {
        switchboard_bench::out!("  {a:.0} heap allocations per turn (counted)");
    }
    switchboard_bench::out!(
        "  what one of them holds, as JSON: conversation {} bytes ({} history messages), execution {} bytes, {} outbox records {} bytes, {} events kept",
        state["conversation_bytes"],
        state["history_messages"],
        state["execution_bytes"],
        state["outbox_records"],
        state["outbox_bytes"],
        state["events"]
    );
    switchboard_bench::out!(
        "  the same as Rust values (heap bytes, without the store's indexes): {}",
        state["as_rust_values_bytes"]
    );
    Ok(json!({
        "mode": "memory", "store": store_name, "convs": convs, "turns_before_pause": turns,
        "rss_before": before, "rss_after": after, "rss_growth_per_conversation_bytes": per,
        "heap_bytes_per_conversation": heap, "allocations_per_turn": allocations_per_turn,
        "messages_checksum": checksum, "state_of_the_newest": state,
        // Messages are hashed in arrival order: that is the expected order only for the first
        // questions (0 turns); after turns, the run's order is round-robin, not per conversation.
        "expected_checksum": if turns == 0 { expected_checksum(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.."), convs, turns) } else { None },
    }))
}

/// What the newest execution's conversation holds in the store, as JSON bytes: where the memory
/// of a paused conversation goes.
async fn state_breakdown(store: &dyn ExecutionStore) -> anyhow::Result<Value> {
    let newest = store
        .executions(&ExecutionFilter {
            limit: 1,
            ..ExecutionFilter::default()
        })
        .await?;
    let Some(e) = newest.into_iter().next() else {
        return Ok(json!({}));
    };
    let conv = store.conversation(&e.conversation_id).await?;
    let outbox = store.outbox(&OutboxQuery::Execution(e.id.clone())).await?;
    let events = store.events(&e.id, 0, 1000, None).await?;
    // The same as Rust values: the heap bytes a deep copy of each part allocates, plus the
    // value itself where the memory store keeps it behind a pointer (boxed, or in an `Arc`).
    let history: Vec<HistoryMessage> = conv
        .as_ref()
        .map(|c| {
            c.messages
                .iter()
                .map(|m| HistoryMessage::clone(m))
                .collect()
        })
        .unwrap_or_default();
    let values = json!({
        "conversation_without_history": conv.as_ref().map_or(0, |c| {
            let mut bare = c.clone();
            bare.messages = Vec::new();
            heap_of(&bare) + std::mem::size_of::<Conversation>() as i64
        }),
        "history": history.iter().map(|m| heap_of(m) + std::mem::size_of::<HistoryMessage>() as i64 + 16).sum::<i64>(),
        "execution": heap_of(&e) + std::mem::size_of::<Execution>() as i64,
        "outbox": outbox.iter().map(|r| heap_of(r) + std::mem::size_of::<OutboxRecord>() as i64).sum::<i64>(),
        "events": events.iter().map(|ev| heap_of(ev) + std::mem::size_of::<Event>() as i64).sum::<i64>(),
    });
    Ok(json!({
        "as_rust_values_bytes": values,
        "conversation_bytes": conv.as_ref().map_or(0, |c| serde_json::to_vec(c).map_or(0, |v| v.len())),
        "history_messages": conv.as_ref().map_or(0, |c| c.messages.len()),
        "execution_bytes": serde_json::to_vec(&e).map_or(0, |v| v.len()),
        "outbox_records": outbox.len(),
        "outbox_bytes": serde_json::to_vec(&outbox).map_or(0, |v| v.len()),
        "events": events.len(),
    }))
}

/// The heap bytes a deep copy of `v` allocates (counted; the case runs on one thread).
fn heap_of<T: Clone>(v: &T) -> i64 {
    let before = counting::start();
    let copy = v.clone();
    let after = counting::stop();
    drop(copy);
    after.live_bytes - before.live_bytes
}

/// The SQLite case's database file: one per process, in the temporary directory.
fn sqlite_path() -> PathBuf {
    std::env::temp_dir().join(format!("switchboard-bench-{}.sqlite", std::process::id()))
}

/// Removes a SQLite database and its write-ahead log files, if there.
fn remove_sqlite(path: &std::path::Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

/// A store for one case, and the PostgreSQL schema to drop after it.
async fn make_store(
    name: &str,
    concurrency: usize,
) -> anyhow::Result<(Arc<dyn ExecutionStore>, Option<BenchSchema>)> {
    match name {
        "memory" => Ok((Arc::new(MemoryStore::new()), None)),
        "memory-no-events" => Ok((Arc::new(MemoryStore::with_event_limit(0)), None)),
        "sqlite" => {
            let path = sqlite_path();
            remove_sqlite(&path);
            Ok((
                Arc::new(switchboard_sqlite::SqliteStore::open(&path)?),
                None,
            ))
        }
        "postgres" => {
            let url = postgres_url("postgres").context("no PostgreSQL URL")?;
            let schema = BenchSchema::create(url.clone(), 0).await?;
            let store = PostgresStore::connect(
                &url,
                &PoolOptions {
                    schema: Some(schema.schema.clone()),
                    max_size: concurrency + 2,
                    ..PoolOptions::default()
                },
            )?;
            Ok((Arc::new(store), Some(schema)))
        }
        other => {
            bail!("unknown store `{other}` (available: memory, memory-no-events, sqlite, postgres)")
        }
    }
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("serve") {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
        let options = switchboard_bench::serve::options(&args[1..], &root)?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        let mut results = Vec::new();
        for &n in &options.workers {
            for rate in [None, Some(options.rate)] {
                results.push(rt.block_on(switchboard_bench::serve::run_one(&options, n, rate))?);
            }
        }
        switchboard_bench::out!("{}", json!({"bench": "serve", "results": results}));
        return Ok(());
    }
    if args.first().map(String::as_str) == Some("startup") {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
        let options = switchboard_bench::startup::options(&args[1..], &root)?;
        let result = switchboard_bench::startup::run(&options, &root)?;
        switchboard_bench::out!("{result}");
        return Ok(());
    }
    ensure!(
        args.first().map(String::as_str) == Some("runtime"),
        "usage: switchboard-bench runtime [--convs C] [--turns T] [--stores memory,memory-no-events,sqlite,postgres] [--memory-convs N] [--concurrent K]\n       switchboard-bench startup [--runs N] [--workflows N] [--bin PATH]\n       switchboard-bench serve [--contacts N] [--messages M] [--parallel P] [--workers 1,2,3] [--store sqlite|postgres://…] [--rate R] [--bin PATH]"
    );
    let mut convs = 1000;
    let mut turns = 20;
    let mut stores = vec![
        "memory".to_owned(),
        "memory-no-events".to_owned(),
        "sqlite".to_owned(),
        "postgres".to_owned(),
    ];
    let mut mem_convs = 10_000;
    let mut concurrent = 32;
    let mut case: Option<(String, String, usize, usize, usize)> = None;
    let mut it = args[1..].iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().context("option needs a value");
        match a.as_str() {
            "--convs" => convs = val()?.parse()?,
            "--turns" => turns = val()?.parse()?,
            "--stores" => stores = val()?.split(',').map(str::to_owned).collect(),
            "--memory-convs" => mem_convs = val()?.parse()?,
            "--concurrent" => concurrent = val()?.parse()?,
            // Internal: run one case in this (fresh) process.
            "--case" => {
                let spec = val()?.clone();
                let parts: Vec<&str> = spec.split(':').collect();
                ensure!(
                    parts.len() == 5,
                    "--case mode:store:convs:turns:concurrency"
                );
                case = Some((
                    parts[0].to_owned(),
                    parts[1].to_owned(),
                    parts[2].parse()?,
                    parts[3].parse()?,
                    parts[4].parse()?,
                ));
            }
            other => bail!("unknown option `{other}`"),
        }
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let workload = std::fs::read_to_string(root.join("fixtures/bench/bench_loop.json"))
        .context("reading fixtures/bench/bench_loop.json")?;
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    if let Some((mode, store, c, t, k)) = case {
        // One conversation at a time: one thread. More: a worker thread per core (at most one
        // per task), so concurrent turns can use every core.
        let rt = if k > 1 {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(k.min(cores))
                .enable_all()
                .build()?
        } else {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
        };
        let v = match mode.as_str() {
            "throughput" => rt.block_on(throughput(&workload, &root, &store, c, t, k)),
            _ => rt.block_on(memory(&workload, &store, c, t)),
        };
        drop(rt);
        // The SQLite case's database file, whatever the outcome.
        remove_sqlite(&sqlite_path());
        let v = v?;
        switchboard_bench::out!("RESULT {v}");
        return Ok(());
    }
    // Every case runs in a fresh process, so memory figures are not polluted by earlier cases.
    let exe = std::env::current_exe()?;
    let mut results = Vec::new();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    for store in &stores {
        if store == "postgres"
            && let Err(e) = rt.block_on(postgres_reachable())
        {
            switchboard_bench::out!(
                "postgres: skipped ({e:#}); set SWITCHBOARD_BENCH_POSTGRES to a database URL"
            );
            continue;
        }
        let mut specs = vec![format!("throughput:{store}:{convs}:{turns}:1")];
        if store.starts_with("memory") && cores > 1 {
            // A turn per core at once.
            specs.push(format!("throughput:{store}:{convs}:{turns}:{cores}"));
        }
        if store == "sqlite" || store == "postgres" {
            specs.push(format!("throughput:{store}:{convs}:{turns}:{concurrent}"));
        }
        specs.push(format!("memory:{store}:{mem_convs}:0:1"));
        specs.push(format!("memory:{store}:{}:20:1", mem_convs.min(1000)));
        for spec in specs {
            let out = std::process::Command::new(&exe)
                .args(["runtime", "--case", &spec])
                .output()?;
            ensure!(
                out.status.success(),
                "case {spec} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            for line in String::from_utf8_lossy(&out.stdout).lines() {
                match line.strip_prefix("RESULT ") {
                    Some(json) => results.push(serde_json::from_str::<Value>(json)?),
                    None => switchboard_bench::out!("{line}"),
                }
            }
        }
    }
    let peers = std::fs::read_to_string(root.join("fixtures/bench/peers.json"))
        .context("reading fixtures/bench/peers.json")?;
    let peers: Value = serde_json::from_str(&peers).context("fixtures/bench/peers.json")?;
    compare(&results, &peers);
    switchboard_bench::out!("{}", json!({"bench": "runtime", "results": results}));
    Ok(())
}

/// Connects to the bench's PostgreSQL database once.
async fn postgres_reachable() -> anyhow::Result<()> {
    let url = postgres_url("postgres").context("no PostgreSQL URL")?;
    let store = PostgresStore::connect(&url, &PoolOptions::default())?;
    store.database_transactions().await?;
    Ok(())
}

/// Prints each figure beside the peer's (`fixtures/bench/peers.json`), the ratio, and the goal.
fn compare(results: &[Value], peers: &Value) {
    let peer = |case: &str, key: &str| peers["cases"][case][key].as_f64();
    switchboard_bench::out!();
    switchboard_bench::out!(
        "{:<46} {:>12} {:>36} {:>9} {:>12}",
        "figure",
        "Switchboard",
        "peer (fixtures/bench/peers.json)",
        "ratio",
        "goal"
    );
    for r in results {
        let store = r["store"].as_str().unwrap_or("?");
        let durable = store == "sqlite" || store == "postgres";
        match r["mode"].as_str() {
            Some("throughput") => {
                let k = r["concurrency"].as_u64().unwrap_or(1);
                let ours = r["turns_per_s"].as_f64().unwrap_or(0.0);
                let (case, name) = if durable {
                    ("lg-tp-sqlite", "LangGraph SqliteSaver")
                } else {
                    ("lg-tp-memory", "LangGraph InMemorySaver")
                };
                let goal = match (store, k) {
                    ("memory", _) => "≥ 250,000",
                    ("sqlite", k) if k >= 32 => "≥ 20,000",
                    _ => "",
                };
                if let Some(p) = peer(case, "turns_per_s") {
                    switchboard_bench::out!(
                        "{:<46} {:>12.0} {:>36} {:>8.0}× {:>12}",
                        format!("turns/s, {store}, {k} at once"),
                        ours,
                        format!("{name} {p:.0}"),
                        ours / p,
                        goal
                    );
                }
                let ours_p50 = r["turn_latency_us"]["p50"].as_f64().unwrap_or(0.0);
                if let Some(p) = peer(case, "p50_us") {
                    switchboard_bench::out!(
                        "{:<46} {:>12.1} {:>36} {:>8.0}× {:>12}",
                        format!("turn p50 µs, {store}, {k} at once"),
                        ours_p50,
                        format!("{name} {p:.0}"),
                        p / ours_p50.max(0.1),
                        ""
                    );
                }
            }
            Some("memory") => {
                let turns = r["turns_before_pause"].as_u64().unwrap_or(0);
                if let Some(a) = r["allocations_per_turn"].as_f64() {
                    switchboard_bench::out!(
                        "{:<46} {:>12.0} {:>36} {:>9} {:>12}",
                        format!("heap allocations per turn, {store}"),
                        a,
                        "(not measured by the peer)",
                        "",
                        ""
                    );
                }
                let ours = r["rss_growth_per_conversation_bytes"]
                    .as_f64()
                    .unwrap_or(0.0);
                let (case, name) = match (durable, turns) {
                    (true, _) => ("lg-mem-sqlite", "LangGraph SqliteSaver"),
                    (false, 0) => ("lg-mem-memory", "LangGraph InMemorySaver"),
                    (false, _) => ("lg-mem-memory-20turns", "LangGraph InMemorySaver"),
                };
                let peer_turns = if durable { 0 } else { turns };
                if durable && turns > 0 {
                    // The peer measured its durable saver only freshly paused.
                    switchboard_bench::out!(
                        "{:<46} {:>12.0} {:>36} {:>9} {:>12}",
                        format!("bytes per paused conversation, {store}, {turns} turns"),
                        ours,
                        "(not measured by the peer)",
                        "",
                        ""
                    );
                } else if let Some(p) = peer(case, "rss_per_conv") {
                    switchboard_bench::out!(
                        "{:<46} {:>12.0} {:>36} {:>8.1}× {:>12}",
                        format!("bytes per paused conversation, {store}, {turns} turns"),
                        ours,
                        format!("{name} {p:.0} ({peer_turns} turns)"),
                        p / ours.max(1.0),
                        if durable { "" } else { "≤ 1,024" }
                    );
                }
            }
            _ => {}
        }
    }
    switchboard_bench::out!(
        "(ratio: how many times better than the peer; memory and latency: peer ÷ ours)"
    );
}

/// mimalloc rather than the system allocator: a turn makes many small, short-lived
/// allocations, and glibc's malloc and free took about a third of a turn's instructions
/// (callgrind on `cargo xtask bench runtime`). Wrapped in a counter of allocations and heap
/// bytes, switched on only while a one-at-a-time case measures (see [`counting`]).
#[global_allocator]
static ALLOCATOR: counting::Counting = counting::Counting;

/// Counts allocations and live heap bytes while switched on: the allocations a turn makes and
/// the heap bytes a paused conversation holds (as the program asked for them, before the
/// allocator's rounding, which RSS includes).
#[allow(unsafe_code)]
mod counting {
    use std::alloc::{GlobalAlloc, Layout};
    use std::cell::Cell;
    use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

    /// mimalloc, counted.
    pub struct Counting;

    static ON: AtomicBool = AtomicBool::new(false);

    // Per-thread counters (no atomic read-modify-write on the hot path: shared atomics cost
    // about a fifth of a turn). The counted cases run on one thread and read them there.
    thread_local! {
        static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
        static LIVE: Cell<i64> = const { Cell::new(0) };
    }

    /// What was counted so far: allocations (reallocations included) and live heap bytes
    /// (allocated minus freed while on).
    #[derive(Clone, Copy)]
    pub struct Counts {
        pub allocations: u64,
        pub live_bytes: i64,
    }

    /// Starts counting (what this thread allocates and frees).
    pub fn start() -> Counts {
        ON.store(true, Relaxed);
        now()
    }

    /// Stops counting.
    pub fn stop() -> Counts {
        ON.store(false, Relaxed);
        now()
    }

    /// What was counted so far, counting on.
    pub fn now() -> Counts {
        Counts {
            allocations: ALLOCATIONS.with(Cell::get),
            live_bytes: LIVE.with(Cell::get),
        }
    }

    fn count(allocated: usize, freed: usize) {
        if ON.load(Relaxed) {
            if allocated > 0 {
                ALLOCATIONS.with(|n| n.set(n.get() + 1));
            }
            LIVE.with(|n| n.set(n.get() + allocated as i64 - freed as i64));
        }
    }

    // SAFETY: every call is forwarded unchanged to mimalloc; the counters only observe sizes.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            count(layout.size(), 0);
            // SAFETY: forwarded with the caller's layout.
            unsafe { mimalloc::MiMalloc.alloc(layout) }
        }

        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            count(layout.size(), 0);
            // SAFETY: forwarded with the caller's layout.
            unsafe { mimalloc::MiMalloc.alloc_zeroed(layout) }
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            count(0, layout.size());
            // SAFETY: `ptr` was allocated by mimalloc with this layout.
            unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) }
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            count(new_size, layout.size());
            // SAFETY: `ptr` was allocated by mimalloc with this layout.
            unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new_size) }
        }
    }
}
