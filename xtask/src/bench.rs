//! `cargo xtask bench validate [--sizes N...] [--runs R] [--keep-flow FILE]`: load + validate the
//! generated benchmark flows.
//!
//! The flows are built in memory by [`crate::flowgen`] (byte-identical to the files of
//! shared/bench/workload/gen_validate_flows.py). Each size is timed `--runs` times in a release
//! build; the median and the minimum are printed, with the per-node cost to show how it scales,
//! and beside each median the peer's figure (Kapso SDK `Flow.validate()`, from
//! `fixtures/bench/peers.json`) and the ratio. The whole `switchboard validate --format json`
//! process is then timed on the 10,000-node flow written to a temporary file (the release binary
//! spawned `--runs` times, median), against the same peer figure; `--keep-flow FILE` writes that
//! flow to FILE and keeps it (for profiling the process).
//! The diagnostics must match the benchmark README's expectation where the catalogues agree: no
//! error. (Kapso's SDK also warns about the final handoff having no outgoing edge; Switchboard's
//! `dead-end` rule only reports final nodes whose work is lost, and a handoff is a normal end, so that
//! node has no diagnostic.) The warnings found are
//! printed by rule.

use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use switchboard_model::{LoadOptions, load_bytes};
use switchboard_validator::{Options, Severity, validate_loaded};

use crate::flowgen::bench_flow_json;

pub fn main(args: &[String]) -> anyhow::Result<()> {
    match args.first().map(String::as_str) {
        Some("validate") => {}
        Some("runtime") => {
            // The runtime benchmark lives in its own crate (it needs the runtime and its stores).
            let status = std::process::Command::new(
                std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()),
            )
            .args([
                "run",
                "--release",
                "--quiet",
                "--package",
                "switchboard-bench",
                "--",
                "runtime",
            ])
            .args(&args[1..])
            .status()
            .context("running switchboard-bench")?;
            ensure!(status.success(), "benchmark failed");
            return Ok(());
        }
        Some(name @ ("serve" | "startup")) => {
            // The serving and startup benchmarks drive a release `switchboard` from their crate.
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let built = std::process::Command::new(&cargo)
                .args(["build", "--release", "--quiet", "--package", "switchboard"])
                .status()
                .context("building switchboard")?;
            ensure!(built.success(), "building switchboard failed");
            let status = std::process::Command::new(&cargo)
                .args([
                    "run",
                    "--release",
                    "--quiet",
                    "--package",
                    "switchboard-bench",
                    "--",
                    name,
                ])
                .args(&args[1..])
                .status()
                .context("running switchboard-bench")?;
            ensure!(status.success(), "benchmark failed");
            return Ok(());
        }
        Some(other) => {
            bail!("unknown benchmark `{other}` (available: validate, runtime, serve, startup)")
        }
        None => bail!("name a benchmark: validate, runtime, serve or startup"),
    }
    if cfg!(debug_assertions) {
        // Re-run this task from a release build: timings of a debug build mean nothing.
        let status =
            std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
                .args([
                    "run",
                    "--release",
                    "--quiet",
                    "--package",
                    "xtask",
                    "--",
                    "bench",
                ])
                .args(args)
                .status()
                .context("running the release build of xtask")?;
        ensure!(status.success(), "benchmark failed");
        return Ok(());
    }
    let mut sizes = vec![1_000usize, 10_000, 50_000];
    let mut runs = 7usize;
    // Where to keep the flow file of the whole-process measurement (else a temporary file).
    let mut keep: Option<std::path::PathBuf> = None;
    let mut it = args[1..].iter().peekable();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--sizes" => {
                sizes.clear();
                while let Some(v) = it.next_if(|v| !v.starts_with("--")) {
                    sizes.push(v.parse().with_context(|| format!("bad size {v}"))?);
                }
            }
            "--runs" => runs = it.next().context("--runs takes a number")?.parse()?,
            "--keep-flow" => {
                keep = Some(std::path::PathBuf::from(
                    it.next().context("--keep-flow takes a file path")?,
                ));
            }
            other => bail!("unknown option `{other}`"),
        }
    }
    ensure!(runs > 0, "--runs must be at least 1");
    let peers = Peers::read();
    println!("load + validate of generated flows (release build, {runs} runs each, median / min)");
    println!(
        "{:>8} {:>10} {:>12} {:>12} {:>15} {:>10}   peer (Kapso SDK Flow.validate(), median) → ratio",
        "nodes", "bytes", "load ms", "validate ms", "total ms", "µs/node"
    );
    let mut summary = Vec::new();
    for &n in &sizes {
        let bytes = bench_flow_json(n);
        let mut load_t = Vec::with_capacity(runs);
        let mut valid_t = Vec::with_capacity(runs);
        let mut total_t = Vec::with_capacity(runs);
        let mut warnings: std::collections::BTreeMap<&str, usize> =
            std::collections::BTreeMap::new();
        for _ in 0..runs {
            let t0 = Instant::now();
            let loaded = load_bytes(&bytes, Some("flow.json"), &LoadOptions::default())
                .map_err(|e| anyhow::anyhow!("flow_{n} does not load: {e}"))?;
            let t1 = Instant::now();
            let diags = validate_loaded(&loaded, &Options::default());
            let t2 = Instant::now();
            let errors: Vec<_> = diags
                .iter()
                .filter(|d| d.severity == Severity::Error)
                .collect();
            ensure!(
                errors.is_empty(),
                "flow_{n}: unexpected errors: {:?}",
                errors.first()
            );
            // Kapso's SDK warns that the final handoff has no outgoing edges; in Switchboard's
            // catalogue a handoff is a legitimate end (no `dead-end`), so no diagnostic names it.
            let last = format!("handoff_{}", n - 1);
            ensure!(
                !diags
                    .iter()
                    .any(|d| d.node.as_deref() == Some(last.as_str())),
                "flow_{n}: unexpected diagnostic at {last}"
            );
            if warnings.is_empty() {
                warnings = count_rules(&diags);
            }
            load_t.push(t1 - t0);
            valid_t.push(t2 - t1);
            total_t.push(t2 - t0);
            drop(loaded);
        }
        let (lm, vm, tm) = (
            median(&mut load_t),
            median(&mut valid_t),
            median(&mut total_t),
        );
        let tmin = total_t.iter().min().copied().unwrap_or_default();
        println!(
            "{:>8} {:>10} {:>12.2} {:>12.2} {:>7.2} / {:<5.2} {:>10.3}   {}",
            n,
            bytes.len(),
            ms(lm),
            ms(vm),
            ms(tm),
            ms(tmin),
            tm.as_secs_f64() * 1e6 / n as f64,
            peers.versus(n, tm)
        );
        println!("{:>8} warnings by rule: {warnings:?}", "");
        summary.push(serde_json::json!({
            "nodes": n, "bytes": bytes.len(), "load_ms": ms(lm), "validate_ms": ms(vm),
            "total_ms_median": ms(tm), "total_ms_min": ms(tmin),
        }));
    }
    let process = whole_process(PROCESS_NODES, runs, keep.as_deref())?;
    println!(
        "whole process: `switchboard validate --format json` on the {PROCESS_NODES}-node flow \
         ({runs} runs, median / min): {:.2} / {:.2} ms   {}",
        ms(process.0),
        ms(process.1),
        peers.versus(PROCESS_NODES, process.0)
    );
    println!(
        "{}",
        serde_json::json!({
            "bench": "validate", "runs": runs, "results": summary,
            "process": {
                "nodes": PROCESS_NODES, "ms_median": ms(process.0), "ms_min": ms(process.1),
                "peer_s": peers.validate_s(PROCESS_NODES),
            },
        })
    );
    Ok(())
}

/// The flow size of the whole-process measurement.
const PROCESS_NODES: usize = 10_000;

/// Times `switchboard validate --format json FILE` as a whole process (the release binary next to
/// this one, built first), on the generated flow of `n` nodes written to a temporary file:
/// (median, min) of `runs` runs. Every run must succeed (exit 0: warnings only) and print the
/// same report.
fn whole_process(
    n: usize,
    runs: usize,
    keep: Option<&std::path::Path>,
) -> anyhow::Result<(Duration, Duration)> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let built = std::process::Command::new(&cargo)
        .args(["build", "--release", "--quiet", "--package", "switchboard"])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .status()
        .context("building switchboard")?;
    ensure!(built.success(), "building switchboard failed");
    let exe = std::env::current_exe()?
        .parent()
        .context("no directory for the xtask binary")?
        .join(format!("switchboard{}", std::env::consts::EXE_SUFFIX));
    let dir =
        std::env::temp_dir().join(format!("switchboard-bench-validate-{}", std::process::id()));
    let file = match keep {
        Some(path) => path.to_owned(),
        None => {
            std::fs::create_dir_all(&dir)?;
            dir.join(format!("flow_{n}.json"))
        }
    };
    std::fs::write(&file, bench_flow_json(n))?;
    let result = (|| {
        let mut times = Vec::with_capacity(runs);
        let mut first: Option<Vec<u8>> = None;
        // One untimed run warms the page cache for the binary and the file.
        for run in 0..=runs {
            let t0 = Instant::now();
            let out = std::process::Command::new(&exe)
                .args(["validate", "--format", "json"])
                .arg(&file)
                .stderr(std::process::Stdio::inherit())
                .output()
                .with_context(|| format!("running {}", exe.display()))?;
            let t = t0.elapsed();
            ensure!(
                out.status.success(),
                "switchboard validate exited with {} on flow_{n}",
                out.status
            );
            match &first {
                None => {
                    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
                        .context("switchboard validate printed no JSON report")?;
                    ensure!(
                        !report.to_string().contains("\"severity\":\"error\""),
                        "flow_{n}: the process reported errors"
                    );
                    first = Some(out.stdout);
                }
                Some(f) => ensure!(
                    *f == out.stdout,
                    "flow_{n}: the report changed between runs"
                ),
            }
            if run > 0 {
                times.push(t);
            }
        }
        let min = times.iter().min().copied().unwrap_or_default();
        Ok((median(&mut times), min))
    })();
    if keep.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

/// The peer figures of `fixtures/bench/peers.json` (Kapso SDK `Flow.validate()` medians).
struct Peers(Option<serde_json::Value>);

impl Peers {
    fn read() -> Peers {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/bench/peers.json");
        Peers(
            std::fs::read(path)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok()),
        )
    }

    /// Kapso's median `validate()` seconds for the flow of `n` nodes, when measured.
    fn validate_s(&self, n: usize) -> Option<f64> {
        let cases = self.0.as_ref()?.get("cases")?;
        ["kapso-validate-small", "kapso-validate-50k"]
            .iter()
            .find_map(|case| {
                cases
                    .get(case)?
                    .get("sizes")?
                    .get(n.to_string())?
                    .get("validate_median_s")?
                    .as_f64()
            })
    }

    /// "Kapso SDK 3.24 s → 212×" for our time `ours` on `n` nodes (or "no peer figure").
    fn versus(&self, n: usize, ours: Duration) -> String {
        match self.validate_s(n) {
            Some(s) => {
                let shown = if s >= 1.0 {
                    format!("{s:.2} s")
                } else {
                    format!("{:.1} ms", s * 1e3)
                };
                format!(
                    "Kapso SDK {shown} → {:.0}×",
                    s / ours.as_secs_f64().max(1e-9)
                )
            }
            None => "no peer figure".to_owned(),
        }
    }
}

fn count_rules(
    diags: &[switchboard_validator::Diagnostic],
) -> std::collections::BTreeMap<&'static str, usize> {
    let mut m = std::collections::BTreeMap::new();
    for d in diags {
        *m.entry(d.rule).or_insert(0) += 1;
    }
    m
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
