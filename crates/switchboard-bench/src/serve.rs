//! `switchboard-bench serve`: the serving benchmark. A release `switchboard serve` (one or more
//! processes on one store) is driven over loopback the way WhatsApp drives it — signed
//! webhooks, contacts writing at once, a Graph API that answers at once and reports delivery
//! statuses back — with the workload of the serving issue: 200 contacts × 10 messages, every
//! acknowledged message durable (SQLite `synchronous = FULL`: fsync before the 200).
//!
//! Each worker count runs twice: contacts writing as fast as they are acknowledged (the most
//! the server takes), and new messages offered at `--rate` per second (default 1000: the
//! latency at that load). It reports acknowledged webhooks per second and their latency
//! (p50/p99), turns per second and the end-to-end latency of a turn (webhook sent → reply
//! received by the Graph API, p50/p99), and the CPU time of the serve processes per turn (user
//! + system, from `/proc/<pid>/stat`), then one JSON line.

#![allow(clippy::print_stdout)]

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use serde_json::{Value, json};

use crate::harness::{
    ECHO_LOOP, FakeGraph, Load, ServeProcess, check_replies, drive_paced, percentile,
    serve_config_with, serve_env, unix_now,
};
use switchboard_postgres::{PoolOptions, PostgresStore};

const SECRET: &str = "bench-app-secret";

/// Options of the benchmark.
#[derive(Clone, Debug)]
pub struct Options {
    /// The `switchboard` binary (a release build).
    pub bin: PathBuf,
    /// Contacts.
    pub contacts: usize,
    /// Messages per contact.
    pub messages: usize,
    /// Contacts writing at once.
    pub parallel: usize,
    /// Numbers of serve processes to measure.
    pub workers: Vec<usize>,
    /// `sqlite`; `postgres` (the database in `SWITCHBOARD_BENCH_POSTGRES`, else the local
    /// server's `postgres` database); or a `postgres://…` URL. On PostgreSQL each run gets a
    /// fresh schema, dropped afterwards.
    pub store: String,
    /// Offered rate of the paced run (webhooks per second).
    pub rate: f64,
}

/// CPU time (user + system) of a process so far, in milliseconds (Linux).
fn cpu_ms(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    // Clock ticks: 100 per second on Linux.
    Some((utime + stime) * 10.0)
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The PostgreSQL URL of a `--store` value, if it names PostgreSQL.
pub fn postgres_url(store: &str) -> Option<String> {
    if store == "postgres" {
        Some(
            std::env::var("SWITCHBOARD_BENCH_POSTGRES")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned()),
        )
    } else if store.starts_with("postgres://") || store.starts_with("postgresql://") {
        Some(store.to_owned())
    } else {
        None
    }
}

/// The store as printed: a PostgreSQL URL without its credentials.
fn store_name(store: &str) -> String {
    match postgres_url(store) {
        Some(url) => match url.split_once("://").map(|(_, rest)| rest) {
            Some(rest) => format!(
                "postgres://{}",
                rest.rsplit_once('@').map_or(rest, |(_, h)| h)
            ),
            None => "postgres".into(),
        },
        None => store.to_owned(),
    }
}

/// A fresh, migrated schema for one run on PostgreSQL (dropped by [`BenchSchema::drop`]).
pub struct BenchSchema {
    /// The database URL.
    pub url: String,
    /// The schema's name.
    pub schema: String,
    admin: PostgresStore,
    transactions_at_start: u64,
}

impl BenchSchema {
    /// Creates and migrates a schema named after this process, the time and `n`.
    pub async fn create(url: String, n: usize) -> anyhow::Result<BenchSchema> {
        let schema = format!("sbbench_{}_{}_{n}", std::process::id(), unix_now());
        let admin = PostgresStore::connect(&url, &PoolOptions::default())
            .context("connecting to PostgreSQL")?;
        admin
            .create_schema(&schema)
            .await
            .context("creating the schema")?;
        let store = PostgresStore::connect(
            &url,
            &PoolOptions {
                schema: Some(schema.clone()),
                max_size: 1,
                ..PoolOptions::default()
            },
        )?;
        store.migrate().await.context("migrating")?;
        drop(store);
        let transactions_at_start = admin.database_transactions().await?;
        Ok(BenchSchema {
            url,
            schema,
            admin,
            transactions_at_start,
        })
    }

    async fn transactions_since_start(&self) -> anyhow::Result<u64> {
        // Ended sessions publish their counts at exit: give them a moment.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        Ok(self
            .admin
            .database_transactions()
            .await?
            .saturating_sub(self.transactions_at_start))
    }

    /// Drops the schema.
    pub async fn drop(self) {
        let _ = self.admin.drop_schema(&self.schema).await;
    }
}

/// One run with `n` serve processes: every contact writing as fast as it is acknowledged
/// (`rate` `None`: the most the server takes), or new messages offered at `rate` per second
/// (the latency a server at that load gives).
pub async fn run_one(o: &Options, n: usize, rate: Option<f64>) -> anyhow::Result<Value> {
    let dir = TempDir(std::env::temp_dir().join(format!(
        "switchboard-bench-serve-{}-{}-{n}",
        std::process::id(),
        unix_now()
    )));
    std::fs::create_dir_all(dir.0.join("flows"))?;
    std::fs::write(dir.0.join("flows/echo_loop.yaml"), ECHO_LOOP)?;
    let graph = FakeGraph::start(SECRET, true).await?;
    let postgres = match postgres_url(&o.store) {
        Some(url) => Some(BenchSchema::create(url, n).await?),
        None => None,
    };
    let extra = postgres.as_ref().map_or(String::new(), |p| {
        format!("[postgres]\nschema = \"{}\"\npool_size = 16\n", p.schema)
    });
    let config = serve_config_with(&dir.0, &graph, "worker_concurrency = 64", &extra)?;
    let store = match &postgres {
        Some(p) => p.url.clone(),
        None => format!("sqlite://{}", dir.0.join("state.sqlite").display()),
    };
    let args = vec![
        "--flows".to_owned(),
        dir.0.join("flows").display().to_string(),
        "--store".to_owned(),
        store,
        "--config".to_owned(),
        config.display().to_string(),
    ];
    let log = dir.0.join("serve.log");
    let mut servers = Vec::new();
    for _ in 0..n {
        servers.push(ServeProcess::spawn(
            &o.bin,
            &args,
            &serve_env(SECRET),
            &log,
        )?);
    }
    let urls: Vec<String> = servers.iter().map(|s| s.base_url.clone()).collect();
    graph.set_targets(urls.clone());
    let cpu_before: f64 = servers.iter().filter_map(|s| cpu_ms(s.pid())).sum();
    let load = Load::new(o.contacts, o.messages);
    let total = o.contacts * o.messages;
    let started = Instant::now();
    let driven = drive_paced(
        &load,
        SECRET,
        Arc::new(Mutex::new(urls)),
        o.parallel,
        0,
        Arc::new(AtomicBool::new(false)),
        rate,
    )
    .await;
    ensure!(
        driven.acknowledged == total,
        "{} of {total} webhooks acknowledged",
        driven.acknowledged
    );
    let deadline = Instant::now() + Duration::from_secs(300);
    while graph.received().len() < total {
        if Instant::now() > deadline {
            bail!(
                "only {} of {total} replies arrived; see {}",
                graph.received().len(),
                log.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let all_replied = started.elapsed();
    let cpu_after: f64 = servers.iter().filter_map(|s| cpu_ms(s.pid())).sum();
    let received = graph.received();
    let (missing, duplicated, disorder) = check_replies(&load, &received);
    ensure!(
        missing.is_empty() && duplicated.is_empty() && disorder.is_empty(),
        "wrong replies: missing {}, duplicated {}, out of order {}",
        missing.len(),
        duplicated.len(),
        disorder.len()
    );
    // End to end: from the webhook carrying the message to the reply reaching the Graph API.
    let mut turn_us: Vec<u64> = received
        .iter()
        .filter_map(|r| {
            let text = r.text.strip_prefix("echo ")?;
            let sent = driven.acked_at.get(text)?;
            Some(r.at.saturating_duration_since(*sent).as_micros() as u64)
        })
        .collect();
    turn_us.sort_unstable();
    let mut ack = driven.ack_us.clone();
    ack.sort_unstable();
    for s in servers {
        s.terminate(Duration::from_secs(10));
    }
    // Statements (round trips) of every serve process, counted by PostgreSQL once their
    // sessions have ended.
    let round_trips_per_turn = match &postgres {
        Some(p) => Some(p.transactions_since_start().await? as f64 / total as f64),
        None => None,
    };
    if let Some(p) = postgres {
        p.drop().await;
    }
    let acks_per_s = driven.acknowledged as f64 / driven.elapsed.as_secs_f64();
    let turns_per_s = total as f64 / all_replied.as_secs_f64();
    let cpu_per_turn = (cpu_after - cpu_before) / total as f64;
    let offered = match rate {
        Some(r) => format!("offered at {r:.0}/s"),
        None => format!("{} at once, as fast as acknowledged", o.parallel),
    };
    let trips = round_trips_per_turn.map_or(String::new(), |r| {
        format!("; {r:.2} database round trips per turn (all statements, statuses included)")
    });
    crate::out!(
        "serve store={} workers={n}: {} contacts × {} messages, {offered}: {:.0} acknowledged webhooks/s (ack p50 {:.2} ms, p99 {:.2} ms); {:.0} turns/s, turn p50 {:.1} ms, p99 {:.1} ms; {:.2} CPU-ms per turn{trips}",
        store_name(&o.store),
        o.contacts,
        o.messages,
        acks_per_s,
        percentile(&ack, 50.0) as f64 / 1000.0,
        percentile(&ack, 99.0) as f64 / 1000.0,
        turns_per_s,
        percentile(&turn_us, 50.0) as f64 / 1000.0,
        percentile(&turn_us, 99.0) as f64 / 1000.0,
        cpu_per_turn,
    );
    Ok(json!({
        "mode": "serve",
        "store": store_name(&o.store),
        "database_round_trips_per_turn": round_trips_per_turn,
        "workers": n,
        "contacts": o.contacts,
        "messages_per_contact": o.messages,
        "parallel": o.parallel,
        "offered_rate_per_s": rate,
        "durability": if round_trips_per_turn.is_some() {
            "every acknowledged webhook is committed to PostgreSQL before its 200"
        } else {
            "every acknowledged webhook is in the store before its 200 (SQLite WAL, synchronous=FULL)"
        },
        "acknowledged_webhooks_per_s": acks_per_s,
        "ack_latency_ms": {"p50": percentile(&ack, 50.0) as f64 / 1000.0, "p99": percentile(&ack, 99.0) as f64 / 1000.0},
        "turns_per_s": turns_per_s,
        "turn_latency_ms": {"p50": percentile(&turn_us, 50.0) as f64 / 1000.0, "p99": percentile(&turn_us, 99.0) as f64 / 1000.0},
        "cpu_ms_per_turn": cpu_per_turn,
        "replies": received.len(),
    }))
}

/// Parses `serve` options (after the subcommand).
pub fn options(args: &[String], root: &Path) -> anyhow::Result<Options> {
    let mut o = Options {
        bin: root.join("target/release/switchboard"),
        contacts: 200,
        messages: 10,
        parallel: 200,
        workers: vec![1],
        store: "sqlite".into(),
        rate: 1000.0,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().context("option needs a value");
        match a.as_str() {
            "--bin" => o.bin = PathBuf::from(val()?),
            "--contacts" => o.contacts = val()?.parse()?,
            "--messages" => o.messages = val()?.parse()?,
            "--parallel" => o.parallel = val()?.parse()?,
            "--workers" => {
                o.workers = val()?
                    .split(',')
                    .map(str::parse)
                    .collect::<Result<_, _>>()?;
            }
            "--store" => o.store = val()?.clone(),
            "--rate" => o.rate = val()?.parse()?,
            other => bail!("unknown option `{other}`"),
        }
    }
    ensure!(
        o.bin.exists(),
        "{} does not exist: build it with `cargo build --release -p switchboard`",
        o.bin.display()
    );
    Ok(o)
}
