//! `cargo xtask fuzz <target|all> [seconds] [--quick]`: builds the cargo-fuzz targets of `fuzz/`
//! and runs one (or each) for a while on its corpus.
//!
//! * Toolchain: the stable one with `RUSTC_BOOTSTRAP=1` (libFuzzer needs `-Z sanitizer` flags),
//!   or nightly with `SWITCHBOARD_FUZZ_TOOLCHAIN=nightly`. cargo-fuzz must be installed
//!   (`cargo install cargo-fuzz --locked`). Built once, with AddressSanitizer
//!   (`SWITCHBOARD_FUZZ_SANITIZER=none` turns it off), into `$CARGO_TARGET_DIR/fuzz` or
//!   `fuzz/target`.
//! * Corpus: `fuzz/corpus/<target>/` (not committed; it grows between runs), seeded on every
//!   run from the project's own inputs ([`seeds`]), plus `fuzz/regressions/<target>/`: every
//!   input that ever failed, replayed before fuzzing.
//! * Limits: 10 s per input (`-timeout`), 2 GB of memory (`-rss_limit_mb`) and 512 MB in one
//!   allocation (`-malloc_limit_mb`); a dictionary per target (`fuzz/dicts/<target>.dict`).
//! * A finding (a panic, a hang, a memory blow-up) is copied to `fuzz/regressions/<target>/`
//!   and the task fails: commit the file with the fix, and every later run replays it.
//! * `seconds` = 0 only replays the corpus and the regressions (`-runs=0`).
//! * `--quick` (CI's smoke run) builds the `dev` profile of `fuzz/` (`opt-level = 1`) without a
//!   sanitizer: a fraction of the build time, for fewer executions per second.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, bail};
use sha2::{Digest, Sha256};

/// Every target, in the order `all` runs them.
pub const TARGETS: [&str; 5] = ["load", "check", "template", "script", "webhook"];

/// The two templates of issue 15: seeds of the template target.
const HOSTILE_TEMPLATES: [&str; 2] = [
    "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "{% set a = range(100000)|join %}{% for i in range(100000) %}{{ a }}{% endfor %}",
];

/// What one target's run found.
struct Outcome {
    target: &'static str,
    ok: bool,
    executions: Option<u64>,
    seconds: f64,
    saved: Vec<PathBuf>,
}

/// Runs the task; `Ok(false)` when a target found something.
pub fn main(root: &Path, args: &[String]) -> anyhow::Result<bool> {
    let quick = args.iter().any(|a| a == "--quick");
    let args: Vec<String> = args.iter().filter(|a| *a != "--quick").cloned().collect();
    let (which, seconds) = match &args[..] {
        [t] => (t.as_str(), None),
        [t, s] => (
            t.as_str(),
            Some(
                s.parse::<u64>()
                    .with_context(|| format!("`{s}` is not a number of seconds"))?,
            ),
        ),
        _ => bail!(
            "usage: cargo xtask fuzz <{}|all> [seconds] [--quick]",
            TARGETS.join("|")
        ),
    };
    let targets: Vec<&'static str> = match which {
        "all" => TARGETS.to_vec(),
        t => match TARGETS.iter().find(|x| **x == t) {
            Some(t) => vec![*t],
            None => bail!(
                "unknown fuzz target `{t}` (targets: {}, all)",
                TARGETS.join(", ")
            ),
        },
    };
    let seconds = seconds.unwrap_or(if which == "all" { 20 } else { 60 });
    let fuzz = Fuzz::new(root, quick)?;
    let started = Instant::now();
    fuzz.build(if which == "all" {
        None
    } else {
        Some(targets[0])
    })?;
    println!("fuzz: built in {:.0} s", started.elapsed().as_secs_f64());
    let mut outcomes = Vec::new();
    for target in targets {
        fuzz.seed(target)?;
        outcomes.push(fuzz.run(target, seconds)?);
    }
    println!("\nfuzz: {:.0} s in all", started.elapsed().as_secs_f64());
    let mut ok = true;
    for o in &outcomes {
        let execs = o
            .executions
            .map_or_else(|| "?".to_owned(), |n| n.to_string());
        println!(
            "  {:<9} {:>4}  {execs:>10} executions in {:.0} s",
            o.target,
            if o.ok { "ok" } else { "FAIL" },
            o.seconds
        );
        for p in &o.saved {
            println!("            finding saved as {}", p.display());
        }
        ok &= o.ok;
    }
    if !ok {
        println!(
            "\nA finding is a regression input now: fix the code, commit the file, and \
             `cargo xtask fuzz <target> 0` replays it."
        );
    }
    Ok(ok)
}

struct Fuzz {
    root: PathBuf,
    dir: PathBuf,
    target_dir: PathBuf,
    nightly: bool,
    sanitizer: String,
    quick: bool,
}

impl Fuzz {
    fn new(root: &Path, quick: bool) -> anyhow::Result<Fuzz> {
        let root = root.canonicalize().context("the repository root")?;
        let installed = Command::new("cargo")
            .args(["fuzz", "--version"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !installed {
            bail!("cargo-fuzz is not installed: run `cargo install cargo-fuzz --locked`");
        }
        let nightly = match std::env::var("SWITCHBOARD_FUZZ_TOOLCHAIN").as_deref() {
            Ok("nightly") => true,
            Ok("stable") | Err(_) => false,
            Ok(other) => {
                bail!("SWITCHBOARD_FUZZ_TOOLCHAIN is `stable` or `nightly`, not `{other}`")
            }
        };
        let sanitizer = std::env::var("SWITCHBOARD_FUZZ_SANITIZER")
            .unwrap_or_else(|_| if quick { "none" } else { "address" }.to_owned());
        let target_dir = match std::env::var_os("CARGO_TARGET_DIR") {
            Some(d) => PathBuf::from(d).join("fuzz"),
            None => root.join("fuzz/target"),
        };
        Ok(Fuzz {
            dir: root.join("fuzz"),
            root,
            target_dir,
            nightly,
            sanitizer,
            quick,
        })
    }

    /// `cargo fuzz …` in `fuzz/` with the chosen toolchain.
    fn cargo_fuzz(&self, sub: &str) -> Command {
        let mut c = Command::new("cargo");
        if self.nightly {
            c.arg("+nightly");
        } else {
            c.env("RUSTC_BOOTSTRAP", "1");
        }
        c.args(["fuzz", sub, "--sanitizer", &self.sanitizer, "--target-dir"])
            .arg(&self.target_dir)
            .current_dir(&self.dir);
        if self.quick {
            c.arg("--dev");
        }
        c
    }

    fn build(&self, target: Option<&str>) -> anyhow::Result<()> {
        let mut c = self.cargo_fuzz("build");
        c.args(target);
        let status = c.status().context("cannot run cargo fuzz build")?;
        if !status.success() {
            bail!("cargo fuzz build failed ({status})");
        }
        Ok(())
    }

    /// Writes the target's seeds into its corpus (named by their hash: nothing is duplicated).
    fn seed(&self, target: &str) -> anyhow::Result<()> {
        let corpus = self.dir.join("corpus").join(target);
        std::fs::create_dir_all(&corpus)?;
        std::fs::create_dir_all(self.dir.join("regressions").join(target))?;
        for seed in seeds(&self.root, target)? {
            let name = hex(&Sha256::digest(&seed));
            let path = corpus.join(&name[..16]);
            if !path.exists() {
                std::fs::write(&path, &seed)?;
            }
        }
        Ok(())
    }

    fn run(&self, target: &'static str, seconds: u64) -> anyhow::Result<Outcome> {
        let artifacts = self.dir.join("artifacts").join(target);
        std::fs::create_dir_all(&artifacts)?;
        let before = files(&artifacts)?;
        let corpus = self.dir.join("corpus").join(target);
        let regressions = self.dir.join("regressions").join(target);
        let dict = self.dir.join("dicts").join(format!("{target}.dict"));
        let mut c = self.cargo_fuzz("run");
        c.arg(target)
            .arg(&corpus)
            .arg(&regressions)
            .arg("--")
            .args([
                "-timeout=10",
                "-rss_limit_mb=2048",
                "-malloc_limit_mb=512",
                "-print_final_stats=1",
            ]);
        c.arg(format!("-dict={}", dict.display()));
        c.arg(format!("-artifact_prefix={}/", artifacts.display()));
        if seconds == 0 {
            c.arg("-runs=0");
        } else {
            c.arg(format!("-max_total_time={seconds}"));
        }
        println!(
            "\nfuzz: {target} for {seconds} s{}",
            if self.quick { " (quick build)" } else { "" }
        );
        let started = Instant::now();
        let out = c
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .with_context(|| format!("cannot run cargo fuzz run {target}"))?;
        let log = String::from_utf8_lossy(&out.stderr);
        let executions = log
            .lines()
            .find_map(|l| l.strip_prefix("stat::number_of_executed_units:"))
            .and_then(|n| n.trim().parse().ok());
        let mut saved = Vec::new();
        for found in files(&artifacts)?.difference(&before) {
            let to = regressions.join(found.file_name().unwrap_or_default());
            std::fs::copy(found, &to)?;
            saved.push(to.strip_prefix(&self.root).unwrap_or(&to).to_path_buf());
        }
        let ok = out.status.success() && saved.is_empty();
        // The end of libFuzzer's log: its last status lines, or the finding and its stack.
        let lines: Vec<&str> = log.lines().collect();
        let tail = if ok { 4 } else { 60 };
        for l in &lines[lines.len().saturating_sub(tail)..] {
            println!("  {l}");
        }
        Ok(Outcome {
            target,
            ok,
            executions,
            seconds: started.elapsed().as_secs_f64(),
            saved,
        })
    }
}

fn files(dir: &Path) -> anyhow::Result<BTreeSet<PathBuf>> {
    let mut out = BTreeSet::new();
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_file() {
            out.insert(p);
        }
    }
    Ok(out)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The files of a directory whose names end with one of `exts`, sorted.
fn inputs(dir: &Path, exts: &[&str]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| exts.iter().any(|x| n.ends_with(x)))
        })
        .collect();
    out.sort();
    Ok(out)
}

/// The seeds of a target, from the project's own inputs: the flow fixtures (load, check), the
/// templated strings of every fixture flow and the two templates of issue 15 (template), the
/// conversation scripts (script), and the WhatsApp webhook payloads the tests use (webhook).
pub fn seeds(root: &Path, target: &str) -> anyhow::Result<Vec<Vec<u8>>> {
    let flows = [
        root.join("fixtures/flows/valid"),
        root.join("fixtures/flows/invalid"),
        root.join("fixtures/conversations/flows"),
    ];
    let mut out = Vec::new();
    match target {
        "load" | "check" => {
            for dir in &flows {
                for p in inputs(dir, &[".json", ".yaml", ".yml"])? {
                    out.push(std::fs::read(p)?);
                }
            }
        }
        "template" => {
            let mut found = BTreeSet::new();
            for dir in &flows {
                for p in inputs(dir, &[".json", ".yaml", ".yml"])? {
                    let Ok(text) = String::from_utf8(std::fs::read(&p)?) else {
                        continue; // fixtures of invalid documents
                    };
                    let value = if p.extension().is_some_and(|e| e == "json") {
                        serde_json::from_str(&text).ok()
                    } else {
                        switchboard_model::yaml::parse(&text)
                            .ok()
                            .map(|v| v.to_json())
                    };
                    if let Some(v) = value {
                        templated_strings(&v, &mut found);
                    }
                }
            }
            found.extend(HOSTILE_TEMPLATES.map(str::to_owned));
            out.extend(found.into_iter().map(String::into_bytes));
        }
        "script" => {
            for p in inputs(&root.join("fixtures/conversations"), &[".yaml", ".yml"])? {
                out.push(std::fs::read(p)?);
            }
        }
        "webhook" => {
            let dir = root.join("crates/switchboard-whatsapp/tests/data/whatsapp");
            for p in inputs(&dir, &[".json"])? {
                out.push(std::fs::read(p)?);
            }
        }
        other => bail!("unknown fuzz target `{other}`"),
    }
    Ok(out)
}

/// Every string of a JSON value that holds template syntax.
fn templated_strings(v: &serde_json::Value, out: &mut BTreeSet<String>) {
    match v {
        serde_json::Value::String(s) if s.contains("{{") || s.contains("{%") => {
            out.insert(s.clone());
        }
        serde_json::Value::Array(a) => a.iter().for_each(|v| templated_strings(v, out)),
        serde_json::Value::Object(m) => m.values().for_each(|v| templated_strings(v, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_target_has_seeds_and_a_dictionary() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        for target in TARGETS {
            let seeds = seeds(&root, target).unwrap();
            assert!(seeds.len() >= 5, "{target}: {} seeds", seeds.len());
            let dict = root.join("fuzz/dicts").join(format!("{target}.dict"));
            let text = std::fs::read_to_string(&dict).unwrap();
            // libFuzzer's format: comments, or one double-quoted token per line.
            for line in text
                .lines()
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
            {
                assert!(
                    line.len() >= 2 && line.starts_with('"') && line.ends_with('"'),
                    "{}: {line}",
                    dict.display()
                );
            }
            let target_file = root.join("fuzz/fuzz_targets").join(format!("{target}.rs"));
            assert!(target_file.exists(), "{}", target_file.display());
        }
        let templates = seeds(&root, "template").unwrap();
        for t in HOSTILE_TEMPLATES {
            assert!(templates.contains(&t.as_bytes().to_vec()));
        }
    }
}
