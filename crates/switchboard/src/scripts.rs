//! `switchboard test`: runs conversation scripts (`fixtures/conversations/*.yaml`) with
//! [`switchboard_script::run_script_file`] and reports `ok`/`FAIL` per file.
//!
//! Directories are searched recursively for `*.yaml`/`*.yml`, leaving out files that are flows
//! (the flows a script names often sit next to it), a Kapso project's own files (`kapso.yaml`,
//! `workflow.yaml`, `function.yaml`), `node_modules/` and dot-folders; files named on the
//! command line always run. A script may run a Kapso project (`project:` and a workflow slug
//! as `flow:`, see `switchboard_script`).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use switchboard_script::run_script_file_with;

/// Arguments of `switchboard test`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print each passing script's transcript (JSON).
    #[arg(long)]
    pub print: bool,
    /// A `switchboard.toml`: each section present replaces the scripted answers of its
    /// family with a real adapter (`[llm]`: a real model answers instead of the queued `llm`
    /// answers). Outbound messages are still only recorded.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Script files, and directories searched recursively for `*.yaml` and `*.yml`.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}

/// The scripts to run: files as given, directories walked recursively in sorted order.
pub fn collect(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).with_context(|| format!("cannot read {}", p.display()))?;
        if meta.is_dir() {
            walk(p, &mut files)?;
        } else {
            files.push(p.clone());
        }
    }
    Ok(files)
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let mut entries = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("cannot read {}", dir.display()))?;
    entries.sort();
    for p in entries {
        if p.is_dir() {
            if !switchboard_validator::fs::is_skipped_dir(&p) {
                walk(&p, files)?;
            }
        } else if is_script(&p) && !is_flow(&p) && !is_project_file(&p) {
            files.push(p);
        }
    }
    Ok(())
}

fn is_script(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    )
}

/// `true` for the settings files of a Kapso project (`kapso.yaml`, `workflow.yaml`,
/// `function.yaml` inside a project): they are not scripts.
fn is_project_file(path: &Path) -> bool {
    matches!(
        path.file_name().and_then(|n| n.to_str()),
        Some("kapso.yaml" | "workflow.yaml" | "function.yaml")
    ) && switchboard_project::locate(path).is_some()
}

/// `true` for a file that loads as a flow: directories of scripts often keep the flows they
/// run next to them (`fixtures/conversations/flows/`); those are not scripts. (A script is
/// never a flow: it has no `nodes`, so a broken script is still run and reported.)
fn is_flow(path: &Path) -> bool {
    std::fs::read(path).is_ok_and(|bytes| {
        switchboard_model::load_bytes(&bytes, path.to_str(), &Default::default()).is_ok()
    })
}

/// Runs every script; returns the exit status (0: all passed, 1: a failure).
pub async fn main(args: &Args, out: &mut dyn Write) -> anyhow::Result<u8> {
    let files = collect(&args.paths)?;
    let config = match &args.config {
        Some(path) => Some(crate::config::Config::read(path)?),
        None => None,
    };
    if let Some(c) = &config {
        // Off unless SWITCHBOARD_LOG asks (scripts keep their secrets in the script).
        let names = c.secret_variables();
        crate::logging::init(
            "off",
            crate::logging::Redactor::from_env(names.iter().map(String::as_str)),
        );
    }
    let adapt = |adapters: &mut switchboard_runtime::Adapters,
                 engine: &mut switchboard_runtime::EngineConfig| match &config {
        Some(c) => {
            engine.templates = c.template_limits().map_err(|e| format!("{e:#}"))?;
            c.apply(adapters).map_err(|e| format!("{e:#}"))
        }
        None => Ok(()),
    };
    let (mut passed, mut failed) = (0usize, 0usize);
    for f in &files {
        match run_script_file_with(f, &adapt).await {
            Ok(transcript) => {
                passed += 1;
                writeln!(out, "ok {}", f.display())?;
                // Adapters that fell back or failed while the flow went on: on stderr, so
                // the `ok`/`FAIL` lines stay as they are.
                let mut err = std::io::stderr().lock();
                for note in crate::session::transcript_notes(&transcript) {
                    writeln!(err, "{}: {note}", f.display())?;
                }
                if args.print {
                    writeln!(out, "{}", serde_json::to_string_pretty(&transcript)?)?;
                }
            }
            Err(e) => {
                failed += 1;
                writeln!(out, "FAIL {}: {e}", f.display())?;
            }
        }
        out.flush()?;
    }
    writeln!(out, "{passed} passed, {failed} failed")?;
    Ok(u8::from(failed > 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(paths: &[&Path], print: bool) -> (u8, String) {
        let args = Args {
            print,
            config: None,
            paths: paths.iter().map(|p| p.to_path_buf()).collect(),
        };
        let mut out = Vec::new();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let code = rt.block_on(main(&args, &mut out)).unwrap();
        (code, String::from_utf8(out).unwrap())
    }

    fn temp_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("switchboard-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("nested")).unwrap();
        d
    }

    #[test]
    fn passes_fails_and_counts() {
        let dir = temp_dir("scripts");
        let echo =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/flows/valid/echo.yaml");
        let flow = echo.display();
        std::fs::write(
            dir.join("nested/good.yaml"),
            format!("flow: {flow}\nturns:\n  - user: hi\n    expect: {{status: waiting}}\n"),
        )
        .unwrap();
        std::fs::write(
            dir.join("bad.yml"),
            format!("flow: {flow}\nturns:\n  - user: hi\n    expect: {{status: ended}}\n"),
        )
        .unwrap();
        std::fs::write(dir.join("notes.txt"), "not a script").unwrap();
        std::fs::copy(&echo, dir.join("nested/flow.yaml")).unwrap();
        let (code, out) = check(&[&dir], true);
        assert_eq!(code, 1, "{out}");
        let lines: Vec<&str> = out.lines().collect();
        assert!(
            lines[0].starts_with("FAIL ") && lines[0].contains("bad.yml: turn 1: status"),
            "{out}"
        );
        assert!(
            lines[1].starts_with("ok ") && lines[1].ends_with("good.yaml"),
            "{out}"
        );
        assert!(out.contains("\"steps\""), "--print shows the transcript");
        assert_eq!(lines.last(), Some(&"1 passed, 1 failed"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn missing_paths_are_errors() {
        let args = Args {
            print: false,
            config: None,
            paths: vec![PathBuf::from("/no/such/dir")],
        };
        assert!(collect(&args.paths).is_err());
    }
}
