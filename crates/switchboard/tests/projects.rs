//! Kapso projects through the `switchboard` binary, as a user of `kapso pull` would run them:
//! `validate` on the example project (its JSON report snapshotted) and on one failing project
//! per project rule, never exit 2 for a project's own files; `chat <slug>` and `test` scripts
//! inside the project with its own functions; `serve PROJECT_DIR` routing signed webhooks of
//! two numbers to their workflows (and starting nothing for a draft workflow's number).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// Runs `switchboard ARGS` in `dir` with `stdin`, failing the test after 60 seconds.
fn run_in(dir: &Path, args: &[&str], stdin: &str) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let text = stdin.to_owned();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(text.as_bytes());
    });
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("switchboard {args:?} did not finish in 60 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().unwrap();
    let _ = writer.join();
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn run(args: &[&str]) -> Run {
    run_in(&root(), args, "")
}

fn rules(report: &str) -> Vec<(String, String)> {
    let v: Value = serde_json::from_str(report).unwrap();
    v["files"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|f| {
            let path = f["path"].as_str().unwrap().to_owned();
            f["diagnostics"]
                .as_array()
                .unwrap()
                .iter()
                .map(move |d| (path.clone(), d["rule"].as_str().unwrap().to_owned()))
        })
        .collect()
}

#[test]
fn the_example_project_validates_with_warnings_only() {
    let r = run(&["validate", "--format", "json", "fixtures/projects/bakery"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    insta::assert_snapshot!("bakery_validate_json", r.stdout);
    let found = rules(&r.stdout);
    for (file, rule) in [
        ("support-desk/workflow.yaml", "stale-definition"),
        ("support-desk/workflow.yaml", "unsupported-trigger"),
        ("support-desk/definition.json", "unsupported-node-type"),
    ] {
        assert!(
            found.iter().any(|(p, r)| p.ends_with(file) && r == rule),
            "{rule} in {file}: {found:?}"
        );
    }
    // Only the workflows are read: no package.json, node_modules/, .kapso/, function.yaml.
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    let paths: Vec<&str> = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths.len(), 10, "{paths:?}");
    assert!(
        paths
            .iter()
            .all(|p| p.starts_with("fixtures/projects/bakery/workflows/"))
    );
    assert!(v.get("skipped").is_none(), "{}", r.stdout);
}

#[test]
fn every_failing_project_reports_its_rule() {
    let dir = root().join("fixtures/projects");
    let mut checked = Vec::new();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("__"))
        .collect();
    names.sort();
    for name in names {
        let rule = name.split("__").next().unwrap();
        let severity = switchboard_validator::rules::by_name(rule)
            .unwrap_or_else(|| panic!("{name}: `{rule}` is not a rule"))
            .severity;
        let path = format!("fixtures/projects/{name}");
        let r = run(&["validate", "--format", "json", &path]);
        let expected = if severity == switchboard_validator::Severity::Error {
            1
        } else {
            0
        };
        assert_eq!(r.code, Some(expected), "{name}: {r:?}");
        assert!(
            rules(&r.stdout).iter().any(|(_, found)| found == rule),
            "{name}: {}",
            r.stdout
        );
        let human = run(&["validate", &path]);
        insta::assert_snapshot!(name.clone(), human.stdout);
        checked.push(name);
    }
    assert!(checked.len() >= 8, "{checked:?}");
}

#[test]
fn a_projects_own_files_never_exit_2() {
    for path in [
        "fixtures/projects/bakery",
        "fixtures/projects/bakery/workflows/order-bot",
        "fixtures/projects/bakery/workflows/order-bot/workflow.yaml",
        "fixtures/projects/bakery/workflows/order-bot/definition.json",
        "fixtures/projects/bakery/kapso.yaml",
        "fixtures/projects/bakery/.kapso/remote-map.json",
        "fixtures/projects/bakery/functions/route-menu/function.yaml",
        "fixtures/projects/bakery/package.json",
        "fixtures/projects/bakery/node_modules/@kapso/workflows/package.json",
    ] {
        let r = run(&["validate", path]);
        assert_eq!(r.code, Some(0), "{path}: {r:?}");
    }
    // A workflow folder validates that workflow only; inside the project, so does its slug.
    let r = run(&[
        "validate",
        "--format",
        "json",
        "fixtures/projects/bakery/workflows/order-bot",
    ]);
    let files: Vec<String> = rules(&r.stdout).into_iter().map(|(p, _)| p).collect();
    assert!(files.iter().all(|p| p.contains("/order-bot/")), "{files:?}");
    let inside = run_in(
        &root().join("fixtures/projects/bakery"),
        &["validate", "--format", "json", "take-order"],
        "",
    );
    assert_eq!(inside.code, Some(0), "{inside:?}");
    let v: Value = serde_json::from_str(&inside.stdout).unwrap();
    let paths: Vec<&str> = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        [
            "workflows/take-order/definition.json",
            "workflows/take-order/workflow.yaml"
        ]
    );
    // Walking a directory of projects validates each in project mode: errors, not "not a flow".
    let r = run(&["validate", "fixtures/projects"]);
    assert_eq!(r.code, Some(1), "{r:?}");
    assert!(!r.stdout.contains("unknown-shape"), "{}", r.stdout);
    let r = run_in(
        &root().join("fixtures/projects/bakery"),
        &["validate", "no-such-workflow"],
        "",
    );
    assert_eq!(r.code, Some(2), "{r:?}");
}

#[test]
fn walks_outside_projects_skip_dependencies_and_non_flows() {
    let dir = std::env::temp_dir().join(format!("switchboard-walk-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("node_modules/lib")).unwrap();
    std::fs::create_dir_all(dir.join(".cache")).unwrap();
    std::fs::copy(
        root().join("fixtures/flows/valid/echo.yaml"),
        dir.join("echo.yaml"),
    )
    .unwrap();
    std::fs::write(
        dir.join("package.json"),
        r#"{"name": "flows", "private": true}"#,
    )
    .unwrap();
    std::fs::write(dir.join("settings.yaml"), "colour: red\n").unwrap();
    std::fs::write(dir.join("node_modules/lib/broken.json"), "{not json").unwrap();
    std::fs::write(dir.join(".cache/broken.json"), "{not json").unwrap();
    let r = run(&["validate", "--format", "json", dir.to_str().unwrap()]);
    assert_eq!(r.code, Some(0), "{r:?}");
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["files"].as_array().unwrap().len(), 1, "{}", r.stdout);
    let skipped: Vec<&str> = v["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["path"].as_str().unwrap())
        .collect();
    assert_eq!(skipped.len(), 2, "{skipped:?}");
    assert!(skipped[0].ends_with("package.json") && skipped[1].ends_with("settings.yaml"));
    let human = run(&["validate", dir.to_str().unwrap()]);
    assert!(
        human.stdout.contains("skipped: ") && human.stdout.contains("not a flow"),
        "{}",
        human.stdout
    );
    // Named explicitly, a file that is not a flow is still an error (exit 2).
    let named = run(&["validate", dir.join("package.json").to_str().unwrap()]);
    assert_eq!(named.code, Some(2), "{named:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn chat_a_workflow_by_its_slug_with_the_projects_functions() {
    let project = root().join("fixtures/projects/bakery");
    let r = run_in(
        &project,
        &["chat", "order-bot", "--script", "-", "--name", "Ana"],
        "hi\n#button order\n#list carrot\n",
    );
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(
        r.stdout.starts_with(
            "bot: Hi Ana! Welcome to Crumb & Co. What can we do for you?\n  [order] Order a cake\n"
        ),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.ends_with(
            "bot: Order #1 noted: one Carrot cake. Crumb & Co will text you when it is ready!\n"
        ),
        "the decide function routed the tap, the called workflow took the order, KV counted it: {}",
        r.stdout
    );
    assert_eq!(
        r.stderr, "-- waiting\n-- waiting (call)\n-- ended (leaf)\n",
        "{r:?}"
    );
    // The other button reaches the other edge, and the function reads message_type/content.
    let r = run_in(
        &project,
        &["chat", "workflows/order-bot", "--script", "-"],
        "hello\n#button track\nA-1042\n",
    );
    assert!(
        r.stdout
            .ends_with("bot: Looking up your text \"A-1042\": https://bakery.example/orders?q=A-1042&type=text\n"),
        "{r:?}"
    );
    // A project is not a workflow.
    let r = run_in(&project, &["chat", ".", "--script", "-"], "");
    assert_eq!(r.code, Some(2), "{r:?}");
    assert!(r.stderr.contains("name one of its workflows"), "{r:?}");
}

#[test]
fn test_scripts_run_through_the_project() {
    let r = run(&[
        "test",
        "fixtures/conversations/project_bakery_order.yaml",
        "fixtures/conversations/project_bakery_track.yaml",
    ]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stdout.ends_with("2 passed, 0 failed\n"), "{}", r.stdout);
    // Scripts kept in the project: its settings files are not taken for scripts.
    let r = run_in(&root().join("fixtures/projects/bakery"), &["test", "."], "");
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(
        r.stdout,
        "ok ./tests/order-a-cake.yaml\n1 passed, 0 failed\n"
    );
}

#[test]
fn serve_a_project_routes_each_number_to_its_workflow() {
    use switchboard_bench::harness::{FakeGraph, ServeProcess, sign, unix_now};
    const SECRET: &str = "project-app-secret-91f";
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let graph = FakeGraph::start(SECRET, false).await.unwrap();
        let dir = std::env::temp_dir().join(format!("switchboard-serve-project-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("switchboard.toml");
        std::fs::write(
            &config,
            format!(
                "[whatsapp]\naccess_token_env = \"SB_PROJECT_WA_TOKEN\"\nbase_url = \"{}\"\nmax_retries = 0\n",
                graph.base_url
            ),
        )
        .unwrap();
        let project = root().join("fixtures/projects/bakery");
        let args = vec![
            project.display().to_string(),
            "--config".into(),
            config.display().to_string(),
        ];
        let env = vec![
            ("WHATSAPP_APP_SECRET".to_owned(), SECRET.to_owned()),
            ("WHATSAPP_VERIFY_TOKEN".to_owned(), "verify".to_owned()),
            ("SB_PROJECT_WA_TOKEN".to_owned(), "project-wa-token".to_owned()),
        ];
        let serve = ServeProcess::spawn(
            Path::new(env!("CARGO_BIN_EXE_switchboard")),
            &args,
            &env,
            &dir.join("serve.log"),
        )
        .unwrap();
        let client = reqwest::Client::new();
        // One contact writes to each number; the third number belongs to a draft workflow.
        for (n, (number, text)) in [
            ("111000111", "hi"),
            ("222000222", "hello"),
            ("333000333", "hey"),
        ]
        .iter()
        .enumerate()
        {
            let body = serde_json::to_vec(&json!({
                "object": "whatsapp_business_account",
                "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
                    "messaging_product": "whatsapp",
                    "metadata": {"display_phone_number": number, "phone_number_id": number},
                    "contacts": [{"profile": {"name": "Ana"}, "wa_id": "14155550100"}],
                    "messages": [{"from": "14155550100", "id": format!("wamid.project.{n}"),
                                  "timestamp": unix_now().to_string(),
                                  "type": "text", "text": {"body": text}}]
                }}]}]
            }))
            .unwrap();
            let answer = client
                .post(format!("{}/webhooks/whatsapp", serve.base_url))
                .header("x-hub-signature-256", sign(SECRET, &body))
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status().as_u16(), 200);
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        while graph.received().len() < 2 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Time for a wrong third reply to show up, if there were one.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut sent: Vec<(String, String)> = graph
            .received()
            .into_iter()
            .map(|m| (m.from, m.text))
            .collect();
        sent.sort();
        assert_eq!(sent.len(), 2, "{sent:#?}");
        assert_eq!(sent[0].0, "111000111", "{sent:#?}");
        assert!(
            sent[0].1.contains("Welcome to Crumb & Co. What can we do for you?"),
            "order-bot answers on 111000111: {sent:#?}"
        );
        assert_eq!(
            sent[1],
            (
                "222000222".to_owned(),
                "Crumb & Co support here. How can we help?".to_owned()
            ),
            "support-desk answers on 222000222"
        );
        drop(serve);
        let _ = std::fs::remove_dir_all(&dir);
    });
}
