//! `cargo xtask bench validate`: load + validate the generated benchmark flows.
//!
//! The flows are built in memory by [`crate::flowgen`] (byte-identical to the files of
//! shared/bench/workload/gen_validate_flows.py). Each size is timed `--runs` times in a release
//! build; the median and the minimum are printed, with the per-node cost to show how it scales.
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
            other => bail!("unknown option `{other}`"),
        }
    }
    ensure!(runs > 0, "--runs must be at least 1");
    println!("load + validate of generated flows (release build, {runs} runs each, median / min)");
    println!(
        "{:>8} {:>10} {:>12} {:>12} {:>12} {:>10}",
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
            "{:>8} {:>10} {:>12.2} {:>12.2} {:>7.2} / {:<5.2} {:>8.3}",
            n,
            bytes.len(),
            ms(lm),
            ms(vm),
            ms(tm),
            ms(tmin),
            tm.as_secs_f64() * 1e6 / n as f64
        );
        println!("{:>8} warnings by rule: {warnings:?}", "");
        summary.push(serde_json::json!({
            "nodes": n, "bytes": bytes.len(), "load_ms": ms(lm), "validate_ms": ms(vm),
            "total_ms_median": ms(tm), "total_ms_min": ms(tmin),
        }));
    }
    println!(
        "{}",
        serde_json::json!({ "bench": "validate", "runs": runs, "results": summary })
    );
    Ok(())
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
