//! `cargo xtask`: project automation.
//!
//! * `cargo xtask validate [--format human|json] [--registries FILE] PATH...` validates flow
//!   files and directories (exit 0: no error, 1: errors, 2: usage, I/O, or not a flow).
//! * `cargo xtask bench validate [--sizes N...] [--runs R] [--keep-flow FILE]` times load +
//!   validate of the generated benchmark flows (shared/bench/README.md) in a release build.
//! * `cargo xtask bench runtime [--convs C] [--turns T] [--stores …]` runs the runtime workload
//!   (bench_loop) through `switchboard-bench`.
//! * `cargo xtask bench serve [--contacts N] [--messages M] [--workers 1,2,3] [--store …]`
//!   drives a release `switchboard serve` over loopback (`switchboard-bench serve`).
//! * `cargo xtask layering` checks every crate's dependencies against the architecture's layers
//!   (exit 1 on a violation).
//! * `cargo xtask fuzz <load|check|template|script|webhook|all> [seconds] [--quick]` builds the cargo-fuzz
//!   targets of `fuzz/` and runs one or each (exit 1 on a finding, saved as a regression input).

#![allow(clippy::print_stdout, clippy::print_stderr)]

mod bench;
mod flowgen;
mod fuzz;
mod layering;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use switchboard_validator::fs::{Format, read_registries, run};

/// The allocator of the `switchboard` binary (mimalloc), so that `cargo xtask bench validate`
/// times loading and validation as `switchboard validate` runs them.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const USAGE: &str = "usage:
  cargo xtask validate [--format human|json] [--registries FILE] PATH...
  cargo xtask bench validate [--sizes N...] [--runs R] [--keep-flow FILE]
  cargo xtask bench runtime [--convs C] [--turns T] [--stores memory,memory-no-events]
  cargo xtask bench serve [--contacts N] [--messages M] [--parallel P] [--workers 1,2,3] [--store sqlite|postgres|postgres://…]
  cargo xtask layering
  cargo xtask fuzz <load|check|template|script|webhook|all> [seconds] [--quick]";

fn main() -> ExitCode {
    match real_main() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}\n\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn real_main() -> anyhow::Result<ExitCode> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("validate") => validate(&args[1..]),
        Some("bench") => bench::main(&args[1..]).map(|()| ExitCode::SUCCESS),
        Some("layering") => {
            let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
            Ok(if layering::main(&root)? {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Some("fuzz") => {
            let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
            Ok(if fuzz::main(&root, &args[1..])? {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Some("-h" | "--help") => {
            println!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        Some(other) => bail!("unknown task `{other}`"),
        None => bail!("no task given"),
    }
}

fn validate(args: &[String]) -> anyhow::Result<ExitCode> {
    let mut format = Format::Human;
    let mut options = switchboard_validator::Options::default();
    let mut paths = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--format" => {
                format = match it.next().map(String::as_str) {
                    Some("human") => Format::Human,
                    Some("json") => Format::Json,
                    other => bail!("--format takes `human` or `json`, not {other:?}"),
                }
            }
            "--registries" => {
                let path = it.next().context("--registries takes a file")?;
                options.registries = read_registries(path.as_ref())?;
            }
            s if s.starts_with('-') => bail!("unknown option `{s}`"),
            _ => paths.push(PathBuf::from(a)),
        }
    }
    if paths.is_empty() {
        bail!("no PATH given");
    }
    let result = run(&paths, &options);
    let out = result.render(format);
    print!("{out}");
    if !out.ends_with('\n') {
        println!();
    }
    for e in &result.errors {
        eprintln!("error: {e}");
    }
    Ok(ExitCode::from(
        u8::try_from(result.exit_code()).unwrap_or(2),
    ))
}
