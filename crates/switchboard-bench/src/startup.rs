//! `cargo xtask bench startup`: how long a fresh `switchboard` process takes to be useful.
//!
//! * **chat, first reply**: `switchboard chat fixtures/bench/bench_loop.json`, one user line on
//!   stdin; the time from spawning the process to the bot's first line on stdout (the flow file
//!   parsed, validated and registered, the conversation started and paused at `wait`).
//! * **serve, ready**: `switchboard serve PROJECT --offline --listen 127.0.0.1:0` on a Kapso
//!   project of 100 workflows (the bakery fixture's five, copied with new slugs up to 100); the
//!   time from spawning to the `listening on http://…` line (every workflow loaded, validated and
//!   registered, its functions found, the store opened and the socket bound).
//!
//! Each is run `runs` times in fresh processes; the median and the minimum are printed beside
//! LangGraph's cold start from `fixtures/bench/peers.json` (the same workload, `lg-cold-memory`).

#![allow(clippy::print_stdout)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

/// Options of the startup benchmark.
#[derive(Debug)]
pub struct Options {
    /// The `switchboard` binary (a release build).
    pub bin: PathBuf,
    /// Runs of each case.
    pub runs: usize,
    /// Workflows in the generated project.
    pub workflows: usize,
}

/// Parses `[--runs N] [--workflows N] [--bin PATH]`.
///
/// # Errors
///
/// An unknown option or a value that does not parse.
pub fn options(args: &[String], root: &Path) -> anyhow::Result<Options> {
    let mut o = Options {
        bin: root.join("target/release/switchboard"),
        runs: 11,
        workflows: 100,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().context("option needs a value");
        match a.as_str() {
            "--runs" => o.runs = val()?.parse()?,
            "--workflows" => o.workflows = val()?.parse()?,
            "--bin" => o.bin = PathBuf::from(val()?),
            other => bail!("unknown option `{other}` (startup: --runs N --workflows N --bin PATH)"),
        }
    }
    anyhow::ensure!(o.runs > 0, "--runs must be at least 1");
    anyhow::ensure!(o.workflows >= 1, "--workflows must be at least 1");
    Ok(o)
}

/// Spawns `cmd` and returns the time until a line of its stdout or stderr contains `needle`
/// (killing it then). Gives up after 30 s.
fn time_to_line(mut cmd: Command, stdin: Option<&str>, needle: &str) -> anyhow::Result<Duration> {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let t0 = Instant::now();
    let mut child = cmd.spawn().context("spawning switchboard")?;
    // Kept open until the process is killed: the chat waits for more input rather than ending.
    let mut input = child.stdin.take();
    if let (Some(text), Some(input)) = (stdin, input.as_mut()) {
        input.write_all(text.as_bytes())?;
        input.flush()?;
    }
    let (tx, rx) = mpsc::channel::<(Instant, String)>();
    // Both streams' lines, timed as they arrive, on one channel.
    let streams: [Option<Box<dyn std::io::Read + Send>>; 2] = [
        child
            .stdout
            .take()
            .map(|o| Box::new(o) as Box<dyn std::io::Read + Send>),
        child
            .stderr
            .take()
            .map(|e| Box::new(e) as Box<dyn std::io::Read + Send>),
    ];
    let readers: Vec<_> = streams
        .into_iter()
        .flatten()
        .map(|stream| {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let _ = tx.send((Instant::now(), line));
                }
            })
        })
        .collect();
    drop(tx);
    let mut seen = Vec::new();
    let found = loop {
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok((at, line)) if line.contains(needle) => break Some(at - t0),
            Ok((_, line)) => seen.push(line),
            Err(_) => break None,
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    drop(input);
    drop(readers);
    match found {
        Some(d) => Ok(d),
        None => bail!(
            "no line with `{needle}` from the process; it printed:\n{}",
            seen.join("\n")
        ),
    }
}

/// Copies the bakery project into `dir` with `n` workflows in all: its own five, and copies of
/// them under new slugs (without inbound triggers, which name the business numbers).
fn make_project(root: &Path, dir: &Path, n: usize) -> anyhow::Result<()> {
    let src = root.join("fixtures/projects/bakery");
    copy_dir(&src, dir)?;
    let workflows = dir.join("workflows");
    let mut originals: Vec<String> = std::fs::read_dir(&workflows)?
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    originals.sort();
    for i in originals.len()..n {
        let from = &originals[i % originals.len()];
        let slug = format!("copy-{i}-{from}");
        let to = workflows.join(&slug);
        copy_dir(&workflows.join(from), &to)?;
        let yaml = std::fs::read_to_string(to.join("workflow.yaml"))?;
        let yaml: String = yaml
            .lines()
            .filter(|l| !l.contains("inbound_message") && !l.contains("whatsapp_event"))
            .map(|l| {
                if l.starts_with("slug:") {
                    format!("slug: {slug}\n")
                } else if let Some(name) = l.strip_prefix("name:") {
                    format!("name:{name} {i}\n")
                } else {
                    format!("{l}\n")
                }
            })
            .collect();
        std::fs::write(to.join("workflow.yaml"), yaml)?;
    }
    Ok(())
}

fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

fn median_min(mut v: Vec<Duration>) -> (f64, f64) {
    v.sort_unstable();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    (ms(v[v.len() / 2]), ms(v[0]))
}

/// Runs the startup benchmark and prints it; returns its JSON.
///
/// # Errors
///
/// The binary is missing, a process does not get ready, or the peers' figures do not read.
pub fn run(o: &Options, root: &Path) -> anyhow::Result<Value> {
    anyhow::ensure!(
        o.bin.exists(),
        "{} does not exist: build it with `cargo build --release -p switchboard`",
        o.bin.display()
    );
    let dir =
        std::env::temp_dir().join(format!("switchboard-bench-startup-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    make_project(root, &dir, o.workflows)?;
    let flow = root.join("fixtures/bench/bench_loop.json");
    let mut chat = Vec::with_capacity(o.runs);
    let mut serve = Vec::with_capacity(o.runs);
    let result = (|| -> anyhow::Result<()> {
        for _ in 0..o.runs {
            let mut cmd = Command::new(&o.bin);
            cmd.arg("chat").arg(&flow);
            chat.push(time_to_line(cmd, Some("hello\n"), "Question")?);
            let mut cmd = Command::new(&o.bin);
            cmd.arg("serve")
                .arg(&dir)
                .args(["--offline", "--listen", "127.0.0.1:0"]);
            serve.push(time_to_line(cmd, None, "listening on http://")?);
        }
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result?;
    let peers: Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("fixtures/bench/peers.json"))
            .context("reading fixtures/bench/peers.json")?,
    )?;
    let lg = &peers["cases"]["lg-cold-memory"];
    let lg_wall = lg["process_wall_s"].as_f64().unwrap_or(f64::NAN) * 1000.0;
    let lg_import = lg["import_langgraph_s"].as_f64().unwrap_or(f64::NAN) * 1000.0;
    let (chat_med, chat_min) = median_min(chat);
    let (serve_med, serve_min) = median_min(serve);
    crate::out!(
        "startup, fresh processes ({} runs each, median / min), binary {}",
        o.runs,
        o.bin.display()
    );
    crate::out!(
        "{:<52} {:>16} {:>40} {:>8} {:>9}",
        "figure",
        "Switchboard ms",
        "peer (fixtures/bench/peers.json)",
        "ratio",
        "goal"
    );
    crate::out!(
        "{:<52} {:>16} {:>40} {:>7.0}× {:>9}",
        "chat: process start → first reply (bench_loop)",
        format!("{chat_med:.1} / {chat_min:.1}"),
        format!("LangGraph import alone {lg_import:.0} ms"),
        lg_import / chat_med,
        "≤ 10"
    );
    crate::out!(
        "{:<52} {:>16} {:>40} {:>7.0}× {:>9}",
        format!(
            "serve: process start → listening, {} workflows",
            o.workflows
        ),
        format!("{serve_med:.1} / {serve_min:.1}"),
        format!("LangGraph 1-flow process {lg_wall:.0} ms"),
        lg_wall / serve_med,
        "≤ 100"
    );
    Ok(json!({
        "bench": "startup", "runs": o.runs, "workflows": o.workflows,
        "chat_first_reply_ms": {"median": chat_med, "min": chat_min},
        "serve_ready_ms": {"median": serve_med, "min": serve_min},
        "peer": {"langgraph_import_ms": lg_import, "langgraph_process_wall_ms": lg_wall},
    }))
}
