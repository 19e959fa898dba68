//! `switchboard playground` end to end: the binary on 127.0.0.1:0, its JSON API (and what it
//! refuses), a file change reloading the diagram, and a real browser (Debian's Chromium,
//! driven by playwright-core from tools/js) chatting with a flow and looking at a flow with an
//! error. Screenshots go to `target/playground-screenshots/`.
//!
//! The browser test needs Node, npm and Chromium; without them it is skipped with a message,
//! unless `SWITCHBOARD_REQUIRE_JS=1` (CI), where it fails.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// Kills the playground when the test ends, however it ends.
struct Playground {
    child: Child,
    url: String,
}

impl Drop for Playground {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `switchboard playground PATH --listen 127.0.0.1:0` and reads the address it prints.
fn start(path: &Path) -> Playground {
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("playground")
        .arg(path)
        .args(["--listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let url = line
        .trim()
        .strip_prefix("playground on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    Playground { child, url }
}

async fn post(client: &reqwest::Client, p: &Playground, path: &str, body: Value) -> (u16, Value) {
    let r = client
        .post(format!("{}{path}", p.url))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn api_chats_refuses_hostile_input_and_reloads_on_change() {
    let dir = std::env::temp_dir().join(format!("sb-playground-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let flow = dir.join("support_triage.json");
    let original =
        std::fs::read_to_string(root().join("fixtures/flows/valid/support_triage.json")).unwrap();
    std::fs::write(&flow, &original).unwrap();
    let p = start(&flow);
    let client = reqwest::Client::new();

    let page = client.get(&p.url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("/app.js"));
    let s: Value = client
        .get(format!("{}api/state", p.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(s["diagram"]["nodes"].as_array().unwrap().len(), 7);
    assert_eq!(s["runnable"], true);

    let (code, s) = post(&client, &p, "api/message", json!({"text": "hello"})).await;
    assert_eq!(code, 200, "{s}");
    assert_eq!(s["execution"]["current_node_id"], "wait");
    assert_eq!(s["chat"][1]["message"]["buttons"][0]["id"], "sales");
    let (code, s) = post(&client, &p, "api/reply", json!({"id": "sales"})).await;
    assert_eq!(code, 200, "{s}");
    assert_eq!(s["execution"]["status"], "handoff");
    assert_eq!(s["variables"]["vars"]["last_user_reply"]["id"], "sales");
    assert!(
        s["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["event_type"] == "user_input_received")
    );

    // Hostile input: another Host, a big body, a form post, nonsense values.
    let r = client
        .get(format!("{}api/state", p.url))
        .header("Host", "evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let big = "a".repeat(64 * 1024);
    let (code, _) = post(&client, &p, "api/message", json!({"text": big})).await;
    assert_eq!(code, 413);
    let r = client
        .post(format!("{}api/message", p.url))
        .body("text=hi")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    let (code, _) = post(&client, &p, "api/clock", json!({"seconds": -5})).await;
    assert_eq!(code, 400);
    let (code, _) = post(&client, &p, "api/restart", json!({"phone": "nope"})).await;
    assert_eq!(code, 400);
    let (code, _) = post(&client, &p, "api/workflow", json!({"name": "../etc"})).await;
    assert_eq!(code, 400);

    // Restart as someone else, then the clock fires the wait's timeout.
    let (code, s) = post(
        &client,
        &p,
        "api/restart",
        json!({"phone": "+447700900123", "name": "Bea"}),
    )
    .await;
    assert_eq!(code, 200, "{s}");
    assert_eq!(s["chat"].as_array().unwrap().len(), 0);
    let (_, s) = post(&client, &p, "api/message", json!({"text": "hi"})).await;
    assert!(
        s["chat"][1]["message"]["body"]
            .as_str()
            .unwrap()
            .contains("Bea")
    );
    let (_, s) = post(&client, &p, "api/clock", json!({"seconds": 3600})).await;
    assert!(
        s["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["event_type"] == "wait_timeout"),
        "{}",
        s["events"]
    );

    // A change on disk: the diagram and diagnostics follow, the conversation waits for a choice.
    let version = s["version"].as_u64().unwrap();
    std::fs::write(&flow, original.replace("\"human\"", "\"agent_desk\"")).unwrap();
    let s: Value = client
        .get(format!("{}api/state?since={version}", p.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(s["changed"], true, "{}", s["version"]);
    assert!(
        s["diagram"]["nodes"]
            .as_array()
            .unwrap()
            .contains(&json!("agent_desk"))
    );
    let (code, s) = post(&client, &p, "api/reload", json!({"keep": true})).await;
    assert_eq!(code, 200, "{s}");
    assert_eq!(s["changed"], false);
    // The user's turns were replayed on the new flow.
    assert_eq!(s["chat"][0]["text"], "hi");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The installed tools directory, or `None` (skip) when Node, npm or Chromium is missing.
fn js_tools() -> Option<(PathBuf, PathBuf)> {
    let required = std::env::var_os("SWITCHBOARD_REQUIRE_JS").is_some_and(|v| v == "1");
    let skip = |why: String| {
        assert!(!required, "SWITCHBOARD_REQUIRE_JS=1 but {why}");
        eprintln!("SKIPPED: {why} (see docs/graph-and-playground.md, \"Tests\")");
        None
    };
    for tool in ["node", "npm"] {
        if Command::new(tool).arg("--version").output().is_err() {
            return skip(format!("`{tool}` is not installed"));
        }
    }
    let chromium = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    if !chromium.is_file() {
        return skip(format!(
            "no Chromium at {} (apt-get install chromium chromium-driver, or set CHROMIUM)",
            chromium.display()
        ));
    }
    let dir = std::env::var_os("SWITCHBOARD_JS_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/js-tools"));
    std::fs::create_dir_all(&dir).unwrap();
    // One installer at a time (the Mermaid test shares the directory).
    let lock = dir.join(".installing");
    let mut waited = 0;
    while std::fs::create_dir(&lock).is_err() {
        std::thread::sleep(Duration::from_secs(1));
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
        Ok(s) if s.success() => Some((dir, chromium)),
        Ok(s) => skip(format!("`npm ci` in {} failed ({s})", dir.display())),
        Err(e) => skip(format!("cannot run npm: {e}")),
    }
}

#[test]
fn a_browser_chats_and_sees_diagnostics() {
    let Some((tools, chromium)) = js_tools() else {
        return;
    };
    let shots = root().join("target/playground-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let good = start(&root().join("fixtures/flows/valid/appointment_booking.json"));
    let bad = start(&root().join("fixtures/flows/invalid/button-count__four_buttons.json"));
    let config = json!({
        "url": good.url,
        "nodes": 8,
        "errorUrl": bad.url,
        "errorNode": "msg",
        "screenshots": shots,
        "chromium": chromium,
    });
    // ES modules resolve packages next to the script: run a copy inside the tools directory.
    let script = tools.join("playground-test.mjs");
    std::fs::copy(root().join("tools/js/playground-test.mjs"), &script).unwrap();
    let output = Command::new("node")
        .arg(&script)
        .arg(config.to_string())
        .current_dir(&tools)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    eprintln!("{text}");
    assert!(
        output.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!text.contains("FAIL"), "{text}");
}
