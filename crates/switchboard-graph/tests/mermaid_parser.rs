//! The Mermaid output of every fixture flow is accepted by the real Mermaid parser
//! (`mermaid.parse` from the `mermaid` npm package, pinned in tools/js/package-lock.json).
//!
//! Needs Node and npm: the test installs the pinned packages into `target/js-tools` (or
//! `$SWITCHBOARD_JS_TOOLS`) on first use. Without Node or npm it is skipped with a message,
//! unless `SWITCHBOARD_REQUIRE_JS=1` (CI), where it fails.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::path::{Path, PathBuf};
use std::process::Command;

use switchboard_graph::{Format, Options, from_bytes, render};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// The installed tools directory, or `None` (skip) when Node or npm is missing.
fn js_tools() -> Option<PathBuf> {
    let required = std::env::var_os("SWITCHBOARD_REQUIRE_JS").is_some_and(|v| v == "1");
    let skip = |why: String| {
        assert!(!required, "SWITCHBOARD_REQUIRE_JS=1 but {why}");
        eprintln!("SKIPPED: {why} (install Node.js and npm to run this test)");
        None
    };
    for tool in ["node", "npm"] {
        if Command::new(tool).arg("--version").output().is_err() {
            return skip(format!("`{tool}` is not installed"));
        }
    }
    let dir = std::env::var_os("SWITCHBOARD_JS_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/js-tools"));
    std::fs::create_dir_all(&dir).unwrap();
    // One installer at a time (the playground test shares the directory).
    let lock = dir.join(".installing");
    let mut waited = 0;
    while std::fs::create_dir(&lock).is_err() {
        std::thread::sleep(std::time::Duration::from_secs(1));
        waited += 1;
        assert!(waited < 600, "{} held for 10 minutes", lock.display());
    }
    let src = root().join("tools/js");
    let lockfile = std::fs::read(src.join("package-lock.json")).unwrap();
    let installed = std::fs::read(dir.join("package-lock.json")).ok();
    let result =
        if installed.as_deref() != Some(&lockfile[..]) || !dir.join("node_modules").is_dir() {
            std::fs::copy(src.join("package.json"), dir.join("package.json")).unwrap();
            std::fs::write(dir.join("package-lock.json"), &lockfile).unwrap();
            Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund", "--silent"])
                .current_dir(&dir)
                .status()
        } else {
            Ok(std::process::ExitStatus::default())
        };
    std::fs::remove_dir(&lock).unwrap();
    match result {
        Ok(s) if s.success() => Some(dir),
        Ok(s) => skip(format!("`npm ci` in {} failed ({s})", dir.display())),
        Err(e) => skip(format!("cannot run npm: {e}")),
    }
}

#[test]
fn every_fixture_chart_parses() {
    let Some(tools) = js_tools() else { return };
    let out = std::env::temp_dir().join(format!("sb-mermaid-{}", std::process::id()));
    std::fs::create_dir_all(&out).unwrap();
    let mut files = Vec::new();
    for dir in ["fixtures/flows/valid", "fixtures/flows/invalid"] {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(root().join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| !p.to_string_lossy().ends_with(".registries.json"))
            .collect();
        entries.sort();
        for path in entries {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let Ok(graph) = from_bytes(&name, &std::fs::read(&path).unwrap(), &Default::default())
            else {
                continue; // not a flow at all: nothing to draw
            };
            let file = out.join(format!("{name}.mmd"));
            std::fs::write(&file, render(&graph, Format::Mermaid, &Options::default())).unwrap();
            files.push(file);
        }
    }
    assert!(files.len() > 100, "only {} charts", files.len());
    // ES modules resolve packages next to the script: run a copy inside the tools directory.
    let script = tools.join("mermaid-parse.mjs");
    std::fs::copy(root().join("tools/js/mermaid-parse.mjs"), &script).unwrap();
    let output = Command::new("node")
        .arg(&script)
        .args(&files)
        .current_dir(&tools)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    let failures: Vec<&str> = text.lines().filter(|l| l.starts_with("FAIL")).collect();
    assert!(
        output.status.success() && failures.is_empty(),
        "{failures:#?}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        text.lines().filter(|l| l.starts_with("ok ")).count(),
        files.len() + 1
    );
    std::fs::remove_dir_all(&out).unwrap();
}
