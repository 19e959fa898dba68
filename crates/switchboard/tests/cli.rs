//! The `switchboard` binary end to end: every test runs the built binary from the repository
//! root through [`check`] and looks at its exit status, stdout and stderr.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// What a run printed and returned.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs `switchboard ARGS` in the repository root with `stdin` as its input (not a terminal),
/// failing the test if it takes more than 60 seconds.
fn check(args: &[&str], stdin: &str) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(args)
        .current_dir(root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let mut input = child.stdin.take().expect("stdin is piped");
    let text = stdin.to_owned();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(text.as_bytes());
    });
    let started = Instant::now();
    while child.try_wait().expect("waits").is_none() {
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("switchboard {args:?} did not finish in 60 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().expect("output");
    let _ = writer.join();
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn has_errors(path: &Path) -> bool {
    let bytes = std::fs::read(path).expect("the flow is readable");
    switchboard_validator::check_file(
        &path.display().to_string(),
        &bytes,
        &switchboard_validator::Options::default(),
    )
    .has_errors()
}

fn valid_flows() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("fixtures/flows/valid"))
        .expect("fixtures/flows/valid exists")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(files.len() >= 2);
    files
}

#[test]
fn validate_clean_flows_exits_0() {
    let r = check(
        &[
            "validate",
            "fixtures/flows/valid/echo.yaml",
            "fixtures/flows/valid/support_triage.json",
            "fixtures/flows/valid/appointment_booking.json",
        ],
        "",
    );
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(
        r.stdout
            .ends_with("checked 3 files: 0 errors, 0 warnings\n"),
        "{r:?}"
    );
}

#[test]
fn validate_valid_directory_exits_0() {
    let r = check(&["validate", "fixtures/flows/valid"], "");
    let files = valid_flows();
    assert!(
        files.iter().all(|f| !has_errors(f)),
        "a valid fixture has errors"
    );
    assert_eq!(r.code, Some(0), "{}", r.stdout);
    let summary = format!("checked {} files: ", files.len());
    assert!(
        r.stdout.lines().last().unwrap().starts_with(&summary),
        "{}",
        r.stdout
    );
    let json = check(
        &["validate", "--format", "json", "fixtures/flows/valid"],
        "",
    );
    let v: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["files"].as_array().unwrap().len(), files.len());
}

#[test]
fn validate_invalid_fixture_exits_1_with_the_rule() {
    let r = check(
        &[
            "validate",
            "fixtures/flows/invalid/button-title-too-long__talk_to_sales.json",
        ],
        "",
    );
    assert_eq!(r.code, Some(1), "{r:?}");
    assert!(r.stdout.contains("error[button-title-too-long]"), "{r:?}");
    let r = check(
        &[
            "validate",
            "--format",
            "json",
            "fixtures/flows/invalid/button-title-too-long__talk_to_sales.json",
        ],
        "",
    );
    assert_eq!(r.code, Some(1));
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    let rules: Vec<&str> = v["files"][0]["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["rule"].as_str().unwrap())
        .collect();
    assert!(rules.contains(&"button-title-too-long"), "{rules:?}");
}

#[test]
fn validate_usage_and_io_errors_exit_2() {
    let r = check(&["validate"], "");
    assert_eq!(r.code, Some(2), "no PATH: {r:?}");
    let r = check(&["validate", "--format", "xml", "fixtures"], "");
    assert_eq!(r.code, Some(2), "{r:?}");
    let r = check(&["validate", "fixtures/flows/no-such-flow.json"], "");
    assert_eq!(r.code, Some(2), "{r:?}");
    assert!(r.stderr.contains("cannot read"), "{r:?}");
    let r = check(
        &[
            "validate",
            "fixtures/flows/invalid/invalid-document__malformed_json.json",
        ],
        "",
    );
    assert_eq!(r.code, Some(2), "not a flow: {r:?}");
}

#[test]
fn chat_script_echo() {
    let r = check(
        &["chat", "fixtures/flows/valid/echo.yaml", "--script", "-"],
        "hi\nA-1234\n",
    );
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(
        r.stdout,
        "bot: What is your order number?\nbot: Thanks, looking up A-1234.\n"
    );
    assert_eq!(r.stderr, "-- waiting\n-- ended (leaf)\n");
}

#[test]
fn chat_script_from_a_file() {
    let dir = std::env::temp_dir().join(format!("switchboard-cli-chat-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("turns.txt");
    std::fs::write(&script, "hi\n\nA-1234\n").unwrap();
    let r = check(
        &[
            "chat",
            "fixtures/flows/valid/echo.yaml",
            "--script",
            script.to_str().unwrap(),
        ],
        "",
    );
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(
        r.stdout.ends_with("bot: Thanks, looking up A-1234.\n"),
        "{r:?}"
    );
}

#[test]
fn chat_script_json_transcript() {
    let r = check(
        &[
            "chat",
            "fixtures/flows/valid/echo.yaml",
            "--script",
            "-",
            "--json",
        ],
        "hi\nA-1234\n",
    );
    assert_eq!(r.code, Some(0), "{r:?}");
    let v: Value = serde_json::from_str(&r.stdout).expect("one JSON document");
    let turns = v["turns"].as_array().unwrap();
    assert_eq!(turns.len(), 2);
    assert_eq!(turns[0]["user"], "hi");
    assert_eq!(turns[0]["outbound"][0]["type"], "text");
    assert_eq!(
        turns[1]["outbound"][0]["text"],
        "Thanks, looking up A-1234."
    );
    let x = &v["execution"];
    assert!(x["id"].is_string());
    assert_eq!(x["status"], "ended");
    assert!(x.get("waiting_reason").is_some() && x.get("current_node_id").is_some());
    assert_eq!(x["vars"]["last_user_input"], "A-1234");
    let events = v["events"].as_array().unwrap();
    assert_eq!(events[0]["event_type"], "execution_started");
    assert!(events.iter().any(|e| e["event_type"] == "execution_ended"));
}

#[test]
fn chat_buttons_show_ids_and_can_be_tapped() {
    let r = check(
        &[
            "chat",
            "fixtures/flows/valid/support_triage.json",
            "--script",
            "-",
            "--name",
            "Ana",
        ],
        "hello\n#button sales\n",
    );
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(
        r.stdout,
        "bot: Hi Ana, how can we help?\n  [sales] Sales\n  [support] Support\n"
    );
    assert_eq!(r.stderr, "-- waiting\n-- handoff\n");
}

#[test]
fn chat_list_rows_by_id() {
    let r = check(
        &[
            "chat",
            "fixtures/flows/valid/restaurant_menu.json",
            "--script",
            "-",
            "--json",
        ],
        "hi\n#list dish_risotto\n",
    );
    assert_eq!(r.code, Some(0), "{r:?}");
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["turns"][1]["list"]["title"], "Mushroom risotto");
    assert_eq!(v["execution"]["status"], "ended");
}

#[test]
fn chat_clock_fires_timeouts() {
    let r = check(
        &[
            "chat",
            "fixtures/flows/valid/echo.yaml",
            "--script",
            "-",
            "--json",
        ],
        "hi\n#clock 601\n",
    );
    assert_eq!(r.code, Some(0), "{r:?}");
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["turns"][1]["clock"], 601.0);
    assert!(
        v["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["event_type"] == "wait_timeout"),
        "{}",
        r.stdout
    );
}

#[test]
fn chat_refuses_a_flow_with_errors() {
    let r = check(
        &[
            "chat",
            "fixtures/flows/invalid/button-count__four_buttons.json",
            "--script",
            "-",
        ],
        "hi\n",
    );
    assert_eq!(r.code, Some(1), "{r:?}");
    assert!(r.stdout.is_empty(), "{r:?}");
    assert!(r.stderr.contains("error[button-count]"), "{r:?}");
    assert!(r.stderr.contains("refusing to run it"), "{r:?}");
}

#[test]
fn chat_usage_errors_exit_2() {
    let r = check(
        &["chat", "fixtures/flows/valid/no-such.yaml", "--script", "-"],
        "",
    );
    assert_eq!(r.code, Some(2), "{r:?}");
    let r = check(
        &[
            "chat",
            "fixtures/flows/valid/echo.yaml",
            "--script",
            "-",
            "--phone",
            "call me",
        ],
        "",
    );
    assert_eq!(r.code, Some(2), "{r:?}");
    let r = check(
        &["chat", "fixtures/flows/valid/echo.yaml", "--script", "-"],
        "hi\n#buton yes\n",
    );
    assert_eq!(r.code, Some(2), "{r:?}");
    assert!(
        r.stderr.contains("line 2: unknown directive `#buton`"),
        "{r:?}"
    );
}

#[test]
fn chat_runs_every_valid_flow() {
    for f in valid_flows() {
        let rel = f.strip_prefix(root()).unwrap_or(&f).display().to_string();
        let r = check(&["chat", &rel, "--script", "-"], "hello\n1\ndone\n");
        assert!(!r.stderr.contains("panicked"), "{rel}: {r:?}");
        assert!(
            !has_errors(&f),
            "{rel}: a valid fixture has error diagnostics"
        );
        assert_eq!(r.code, Some(0), "{rel}: {r:?}");
        let spoke = r.stdout.lines().any(|l| l.starts_with("bot: "));
        let status = r.stderr.lines().any(|l| l.starts_with("-- "));
        assert!(
            spoke || status,
            "{rel}: neither a message nor a status: {r:?}"
        );
        let j = check(
            &["chat", &rel, "--script", "-", "--json"],
            "hello\n1\ndone\n",
        );
        assert_eq!(j.code, Some(0), "{rel}: {j:?}");
        let v: Value = serde_json::from_str(&j.stdout).unwrap();
        assert_eq!(v["turns"].as_array().map(Vec::len), Some(3), "{rel}");
    }
}

#[test]
fn test_runs_the_seed_conversations() {
    let r = check(
        &[
            "test",
            "fixtures/conversations/echo.yaml",
            "fixtures/conversations/support_triage.yaml",
        ],
        "",
    );
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(
        r.stdout,
        "ok fixtures/conversations/echo.yaml\nok fixtures/conversations/support_triage.yaml\n\
         2 passed, 0 failed\n"
    );
}

#[test]
fn test_conversations_directory() {
    let r = check(&["test", "fixtures/conversations"], "");
    let lines: Vec<&str> = r.stdout.lines().collect();
    let (last, results) = lines.split_last().unwrap();
    let passed = results.iter().filter(|l| l.starts_with("ok ")).count();
    let failed = results.iter().filter(|l| l.starts_with("FAIL ")).count();
    assert_eq!(passed + failed, results.len(), "{}", r.stdout);
    assert_eq!(*last, format!("{passed} passed, 0 failed"), "{}", r.stdout);
    assert!(passed >= 2);
    assert_eq!(r.code, Some(0));
    // The flows kept next to the scripts are not scripts.
    assert!(!r.stdout.contains("conversations/flows/"), "{}", r.stdout);
}

#[test]
fn test_reports_failures_and_prints_transcripts() {
    let dir = std::env::temp_dir().join(format!("switchboard-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let flow = root().join("fixtures/flows/valid/echo.yaml");
    let flow = flow.display();
    std::fs::write(
        dir.join("a_pass.yaml"),
        format!("flow: {flow}\nturns:\n  - user: hi\n    expect: {{status: waiting}}\n"),
    )
    .unwrap();
    std::fs::write(
        dir.join("b_fail.yaml"),
        format!("flow: {flow}\nturns:\n  - user: hi\n    expect: {{status: ended}}\n"),
    )
    .unwrap();
    let d = dir.display().to_string();
    let r = check(&["test", "--print", &d], "");
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(r.code, Some(1), "{r:?}");
    assert!(
        r.stdout.contains("a_pass.yaml\n{"),
        "transcript after ok: {r:?}"
    );
    assert!(
        r.stdout
            .contains("b_fail.yaml: turn 1: status is waiting, expected ended\n"),
        "{r:?}"
    );
    assert!(r.stdout.ends_with("1 passed, 1 failed\n"), "{r:?}");
}

/// An OpenAI-compatible server on 127.0.0.1 that answers every request with `content`;
/// returns its base URL and a counter of the requests it answered.
fn model_server(content: &'static str) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{BufRead, BufReader, Read};
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
    let base = format!("http://{}/v1", listener.local_addr().expect("address"));
    let served = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = served.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let mut reader = BufReader::new(stream);
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let answer = serde_json::json!({
                "id": "chatcmpl-cli",
                "object": "chat.completion",
                "model": "gpt-4o-mini",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}]
            })
            .to_string();
            // Counted before answering, so a client that has its answer sees the count.
            counter.fetch_add(1, Ordering::SeqCst);
            let mut stream = reader.into_inner();
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                answer.len()
            );
        }
    });
    (base, served)
}

const TRIAGE: &str = r#"name: triage
nodes:
- id: start
  data: {node_type: start, config: {}}
- id: ask
  data: {node_type: send_text, config: {message: How can we help?}}
- id: wait
  data: {node_type: wait_for_response, config: {timeout_seconds: 600}}
- id: route
  data:
    node_type: decide
    config:
      decision_type: ai
      provider_model_name: gpt-4o-mini
      conditions:
      - {label: sales, description: Wants to buy or asks about prices}
      - {label: support, description: Has a problem with an order}
- id: sales
  data: {node_type: send_text, config: {message: Connecting you with sales.}}
- id: support
  data: {node_type: send_text, config: {message: Connecting you with support.}}
edges:
- {source: start, target: ask, label: next}
- {source: ask, target: wait, label: next}
- {source: wait, target: route, label: next}
- {source: route, target: sales, label: sales}
- {source: route, target: support, label: support}
"#;

#[test]
fn test_and_chat_use_the_configured_model() {
    let (base, served) = model_server("support");
    let dir = std::env::temp_dir().join(format!("switchboard-cli-config-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    std::fs::write(dir.join("triage.yaml"), TRIAGE).expect("flow");
    // The script's own model answer routes to sales; a real model answering `support` must
    // win when the configuration names one.
    std::fs::write(
        dir.join("triage_script.yaml"),
        "flow: triage.yaml\nllm:\n  - text: sales\nturns:\n  - user: hi\n    expect: {status: waiting}\n  - user: My order arrived broken\n    expect: {status: ended, last_text: Connecting you with support.}\n",
    )
    .expect("script");
    let config = dir.join("switchboard.toml");
    std::fs::write(
        &config,
        format!(
            "[[llm.providers]]\nname = \"local\"\nkind = \"openai\"\nbase_url = \"{base}\"\n\n[[llm.routes]]\nmatch = \"*\"\nprovider = \"local\"\n"
        ),
    )
    .expect("config");
    let script = dir.join("triage_script.yaml");
    let script = script.to_str().expect("utf-8 path");
    let config = config.to_str().expect("utf-8 path");

    let offline = check(&["test", script], "");
    assert_eq!(offline.code, Some(1), "{offline:?}");
    assert!(offline.stdout.contains("FAIL"), "{offline:?}");
    assert_eq!(served.load(std::sync::atomic::Ordering::SeqCst), 0);

    let real = check(&["test", "--config", config, script], "");
    assert_eq!(real.code, Some(0), "{real:?}");
    assert!(real.stdout.contains("1 passed, 0 failed"), "{real:?}");
    let after_test = served.load(std::sync::atomic::Ordering::SeqCst);
    assert!(after_test >= 1, "the model server was asked");

    let flow = dir.join("triage.yaml");
    let chat = check(
        &[
            "chat",
            flow.to_str().expect("utf-8"),
            "--script",
            "-",
            "--config",
            config,
        ],
        "hi\nMy order arrived broken\n",
    );
    assert_eq!(chat.code, Some(0), "{chat:?}");
    assert!(
        chat.stdout.contains("Connecting you with support."),
        "{chat:?}"
    );
    assert!(served.load(std::sync::atomic::Ordering::SeqCst) > after_test);

    let broken = check(
        &["test", "--config", "/no/such/switchboard.toml", script],
        "",
    );
    assert_eq!(broken.code, Some(2), "{broken:?}");
    assert!(
        broken.stderr.contains("/no/such/switchboard.toml"),
        "{broken:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn chat_runs_local_javascript_functions_from_the_configuration() {
    let dir = std::env::temp_dir().join(format!("switchboard-cli-js-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("functions")).expect("temp dir");
    // `fetch` reaches a server on 127.0.0.1 (it answers every request the same way).
    let (base, served) = model_server("gold");
    std::fs::write(
        dir.join("functions/greet.js"),
        r#"async function handler(request, env) {
  const { execution_context } = await request.json();
  const visits = Number((await env.KV.get("visits")) || "0") + 1;
  await env.KV.put("visits", String(visits));
  const name = execution_context.context.contact.name || "friend";
  const tier = (await (await fetch("BASE/tier")).json()).choices[0].message.content;
  return Response.json({ vars: { greeting: `Hello ${name}, visit ${visits} (${tier})` } });
}
"#
        .replace("BASE", &base),
    )
    .expect("function");
    std::fs::write(
        dir.join("flow.yaml"),
        r#"name: greet
nodes:
- id: start
  data: {node_type: start, config: {}}
- id: wait
  data: {node_type: wait_for_response, config: {}}
- id: greet
  data: {node_type: function, config: {function_slug: greet}}
- id: say
  data: {node_type: send_text, config: {message: '{{greeting}}'}}
edges:
- {source: start, target: wait, label: next}
- {source: wait, target: greet, label: next}
- {source: greet, target: say, label: next}
- {source: say, target: wait, label: next}
"#,
    )
    .expect("flow");
    std::fs::write(
        dir.join("switchboard.toml"),
        "[functions]\ndir = \"functions\"\ntimeout_seconds = 5\n",
    )
    .expect("config");
    let flow = dir.join("flow.yaml");
    let config = dir.join("switchboard.toml");
    let run = check(
        &[
            "chat",
            flow.to_str().expect("utf-8"),
            "--script",
            "-",
            "--name",
            "Alex",
            "--config",
            config.to_str().expect("utf-8"),
        ],
        "hi\nagain\nonce more\n",
    );
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stdout.contains("Hello Alex, visit 1 (gold)"), "{run:?}");
    assert!(run.stdout.contains("Hello Alex, visit 2 (gold)"), "{run:?}");
    assert_eq!(served.load(std::sync::atomic::Ordering::SeqCst), 2);
    let _ = std::fs::remove_dir_all(&dir);
}

/// 10^10 loop steps (issue 15).
const NESTED_LOOPS: &str =
    "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}";
/// About 49 GB of output (issue 15).
const HUGE_OUTPUT: &str =
    "{% set a = range(100000)|join %}{% for i in range(100000) %}{{ a }}{% endfor %}";

/// A flow that waits, fails a node on the 10^10-step template and takes its `error` edge, waits
/// again, then fails on the 49 GB template without an `error` edge.
fn hostile_flow() -> String {
    let loops = serde_json::to_string(NESTED_LOOPS).unwrap_or_default();
    let output = serde_json::to_string(HUGE_OUTPUT).unwrap_or_default();
    format!(
        r#"name: hostile
nodes:
- {{id: start, data: {{node_type: start, config: {{}}}}}}
- {{id: ask, data: {{node_type: send_text, config: {{message: ready}}}}}}
- {{id: wait, data: {{node_type: wait_for_response, config: {{timeout_seconds: 600}}}}}}
- {{id: loops, data: {{node_type: send_text, config: {{message: {loops}}}}}}}
- {{id: recover, data: {{node_type: send_text, config: {{message: "recovered: {{{{ last_error.error.kind }}}}: {{{{ last_error.error.message }}}}"}}}}}}
- {{id: wait2, data: {{node_type: wait_for_response, config: {{timeout_seconds: 600}}}}}}
- {{id: output, data: {{node_type: send_text, config: {{message: {output}}}}}}}
edges:
- {{source: start, target: ask}}
- {{source: ask, target: wait}}
- {{source: wait, target: loops}}
- {{source: loops, target: recover, label: error}}
- {{source: recover, target: wait2}}
- {{source: wait2, target: output}}
"#
    )
}

/// A process's memory from `/proc/PID/status` in KiB: (`VmRSS`, `VmHWM`).
fn memory_kib(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        line.split_whitespace().nth(1)?.parse().ok()
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// `chat` on the two templates of issue 15: each fails its node with `template_error` naming the
/// limit, within a 15 s guard (tens of milliseconds measured), and the process's peak memory grows by less than 64 MB.
#[test]
fn chat_fails_hostile_templates_quickly_and_in_bounded_memory() {
    use std::io::BufRead;
    let dir = std::env::temp_dir().join(format!("switchboard-cli-hostile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let flow = dir.join("hostile.yaml");
    std::fs::write(&flow, hostile_flow()).expect("flow written");
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["chat", "--script", "-"])
        .arg(&flow)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let pid = child.id();
    let mut input = child.stdin.take().expect("stdin is piped");
    // Bot lines come on stdout, status lines (`-- …`, printed when the status changes) on
    // stderr: both go to one channel.
    let (tx, lines) = std::sync::mpsc::channel::<String>();
    let forward = |pipe: Box<dyn std::io::Read + Send>| {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(pipe).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
    };
    forward(Box::new(child.stdout.take().expect("stdout is piped")));
    forward(Box::new(child.stderr.take().expect("stderr is piped")));
    // Sends one turn, waits for the line that ends it (`last`), and returns that line, how long
    // it took and how much the peak memory of the process grew meanwhile.
    let mut turn = |line: &str, last: &str| -> (String, Duration, Option<u64>) {
        // Reset the peak to the current size (Linux), so the growth measured is this turn's.
        let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
        let before = memory_kib(pid);
        let started = Instant::now();
        writeln!(input, "{line}").expect("a turn is written");
        input.flush().expect("flushed");
        let mut printed = Vec::new();
        let done = loop {
            let l = lines
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|_| panic!("no `{last}` line; got {printed:?}"));
            if l.starts_with(last) {
                break l;
            }
            printed.push(l);
        };
        let took = started.elapsed();
        let grown = memory_kib(pid)
            .zip(before)
            .map(|((_, peak), (rss, _))| peak.saturating_sub(rss));
        (done, took, grown)
    };
    turn("hi", "-- waiting");

    let (loops, took, grown) = turn("go", "bot: recovered");
    assert!(took < Duration::from_secs(15), "10^10 steps took {took:?}");
    assert!(
        grown.is_none_or(|kib| kib < 64 * 1024),
        "memory grew by {grown:?} KiB"
    );
    assert!(
        loops.starts_with("bot: recovered: template_error: template ran out of fuel")
            && loops.contains("`templates.fuel` = 500000"),
        "{loops}"
    );
    eprintln!("nested loops: {took:?}, peak memory +{grown:?} KiB");

    let (output, took, grown) = turn("go", "-- failed");
    assert!(
        took < Duration::from_secs(15),
        "49 GB of output took {took:?}"
    );
    assert!(
        grown.is_none_or(|kib| kib < 64 * 1024),
        "memory grew by {grown:?} KiB"
    );
    assert_eq!(
        output,
        "-- failed: template_error: rendered text is larger than `templates.max_output_bytes` = 1048576 bytes"
    );
    eprintln!("huge output: {took:?}, peak memory +{grown:?} KiB");

    drop(input);
    let status = child.wait().expect("chat exits");
    assert!(status.success(), "{status:?}");

    // With `[templates]` in a configuration, its limits apply.
    std::fs::write(dir.join("small.toml"), "[templates]\nfuel = 2000\n").expect("config");
    let small = dir.join("small.toml");
    let run = check(
        &[
            "chat",
            "--script",
            "-",
            "--config",
            small.to_str().unwrap_or_default(),
            flow.to_str().unwrap_or_default(),
        ],
        "hi\ngo\n",
    );
    assert!(
        run.stdout.contains("`templates.fuel` = 2000 allows"),
        "{}",
        run.stdout
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs `switchboard ARGS` at a pseudo-terminal (util-linux `script`), typing `typed`: chat is
/// interactive there (prompt, numbered choices, commands). Returns what the terminal showed,
/// without carriage returns.
fn at_terminal(args: &[&str], typed: &str) -> String {
    let bin = env!("CARGO_BIN_EXE_switchboard");
    let command = std::iter::once(bin)
        .chain(args.iter().copied())
        .map(|a| format!("'{a}'"))
        .collect::<Vec<_>>()
        .join(" ");
    let mut child = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .current_dir(root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("util-linux `script` runs (it gives chat a terminal)");
    let mut input = child.stdin.take().expect("stdin is piped");
    input.write_all(typed.as_bytes()).expect("typed");
    drop(input);
    let started = Instant::now();
    while child.try_wait().expect("waits").is_none() {
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("chat at a terminal did not finish in 60 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().expect("output");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).replace('\r', "")
}

#[test]
fn chat_at_a_terminal_answers_mistakes_and_handoff() {
    let shown = at_terminal(
        &["chat", "fixtures/flows/valid/support_triage.json"],
        "hello\n3\n/varz\n#button nope\n#bogus x\n1\nanything\n/resume\n/restart\nhi\n/quit\n",
    );
    for expected in [
        // No name: the greeting still reads well.
        "bot: Hi there, how can we help?\n  [1] Sales\n  [2] Support\n",
        "error: there is no choice 3: the last message offers 1 to 2 (not sent)\n",
        "error: unknown command `/varz` (known: /vars, /events, /resume, /restart, /help, /quit)\n",
        "error: no button `nope` in the last message: it offers sales, support (not sent)\n",
        "error: unknown directive `#bogus`",
        "-- handoff\n-- a human has the conversation now, so the flow will not answer: /resume hands it back to the flow, /restart starts over, /quit leaves\n",
        "-- ignored: the conversation is handed off to a human\n-- a human has the conversation now",
        "-- waiting (handoff_resumed)\n",
        "-- restarted: your next message starts a new execution\n",
    ] {
        assert!(shown.contains(expected), "{expected:?} not in:\n{shown}");
    }
    // The mistakes were not sent: one greeting before the handoff, one after the restart.
    assert_eq!(shown.matches("bot: Hi there").count(), 2, "{shown}");
}

#[test]
fn chat_at_a_terminal_after_a_failure_says_what_happens_next() {
    let shown = at_terminal(
        &["chat", "fixtures/flows/valid/support_triage.json"],
        "hello\n2\n/quit\n",
    );
    assert!(
        shown.contains(
            "-- failed: not_found: function `order-lookup` is not registered\n\
             -- your next message starts a new execution (or type /restart first)\n"
        ),
        "{shown}"
    );
}

#[test]
fn chat_script_refuses_an_unknown_button() {
    let r = check(
        &[
            "chat",
            "fixtures/flows/valid/support_triage.json",
            "--script",
            "-",
        ],
        "hello\n#button nope\n",
    );
    assert_ne!(r.code, Some(0), "{r:?}");
    assert!(
        r.stderr
            .contains("line 2: no button `nope` in the last message: it offers sales, support"),
        "{r:?}"
    );
    assert_eq!(
        r.stdout,
        "bot: Hi there, how can we help?\n  [sales] Sales\n  [support] Support\n"
    );
}

/// A configuration whose model is unreachable (a closed port on loopback).
fn broken_llm_config(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("switchboard-cli-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let path = dir.join("switchboard.toml");
    std::fs::write(
        &path,
        "[[llm.providers]]\nname = \"local\"\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:9/v1\"\nmax_retries = 0\n\n[[llm.routes]]\nmatch = \"*\"\nprovider = \"local\"\n",
    )
    .expect("the configuration is written");
    path
}

#[test]
fn chat_and_test_note_a_broken_model() {
    let config = broken_llm_config("broken-llm");
    let config = config.to_str().unwrap();
    let r = check(
        &[
            "chat",
            "examples/support-bot/flows/support.json",
            "--config",
            config,
            "--script",
            "-",
        ],
        "hi\nwhere is my parcel?\n",
    );
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(
        r.stderr.contains(
            "-- note: decide `route`: the model call failed, so it took the first condition `order` (adapter_error"
        ),
        "{r:?}"
    );
    let r = check(
        &["test", "--config", config, "examples/support-bot/tests"],
        "",
    );
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(
        r.stdout,
        "ok examples/support-bot/tests/support.yaml\n1 passed, 0 failed\n"
    );
    assert!(
        r.stderr
            .contains("examples/support-bot/tests/support.yaml: -- note: decide `route`"),
        "{r:?}"
    );
}

#[test]
fn the_example_project_runs_offline() {
    let r = check(&["validate", "examples/support-bot/flows"], "");
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(r.stdout, "examples/support-bot/flows/support.json: ok\n");
    let r = check(&["test", "examples/support-bot/tests"], "");
    assert_eq!(r.code, Some(0), "{r:?}");
    let r = check(
        &[
            "chat",
            "examples/support-bot/flows/support.json",
            "--script",
            "-",
            "--functions",
            "examples/support-bot/tests/answers",
        ],
        "hi\n#button order\nA-1001\n",
    );
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(
        r.stdout
            .ends_with("bot: What is your order number?\nbot: Order A-1001 is on its way: it arrives tomorrow.\n"),
        "{r:?}"
    );
}

/// docs/tutorial.md shows what its commands print: run them and find their output in the page.
#[test]
fn the_tutorial_commands_print_what_it_shows() {
    let tutorial = std::fs::read_to_string(root().join("docs/tutorial.md")).unwrap();
    let shown = |out: &str| {
        assert!(
            tutorial.contains(out),
            "docs/tutorial.md does not show:\n{out}"
        );
    };
    // The files the page shows are the files of examples/tutorial.
    for file in [
        "examples/tutorial/coffee.yaml",
        "examples/tutorial/tests/coffee.yaml",
    ] {
        shown(&std::fs::read_to_string(root().join(file)).unwrap());
    }
    shown(
        std::fs::read_to_string(root().join("examples/tutorial/answers/price.json"))
            .unwrap()
            .trim(),
    );
    let r = check(&["validate", "examples/tutorial/coffee.yaml"], "");
    assert_eq!(r.code, Some(0), "{r:?}");
    shown(&r.stdout);
    let r = check(
        &[
            "chat",
            "examples/tutorial/coffee.yaml",
            "--script",
            "-",
            "--functions",
            "examples/tutorial/answers",
        ],
        "hi\n#button latte\n",
    );
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(r.stderr, "-- waiting\n-- ended (leaf)\n");
    shown(&r.stdout);
    // Typed instead of tapped, the offline model routes by words.
    let typed = check(
        &[
            "chat",
            "examples/tutorial/coffee.yaml",
            "--script",
            "-",
            "--functions",
            "examples/tutorial/answers",
        ],
        "hi\nsomething with milk please\n",
    );
    assert_eq!(typed.stdout, r.stdout, "{typed:?}");
    let r = check(&["test", "examples/tutorial/tests"], "");
    assert_eq!(r.code, Some(0), "{r:?}");
    shown(&r.stdout);
}

#[test]
fn graph_draws_a_flow_and_a_directory_of_flows() {
    let run = check(&["graph", "fixtures/flows/valid/support_triage.json"], "");
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stdout.starts_with("<svg"), "{}", run.stdout);
    assert!(run.stdout.contains("data-node-id=\"route\""));
    assert!(
        run.stderr.is_empty(),
        "no diagnostics, nothing said: {}",
        run.stderr
    );
    // A flow with a warning says so on stderr (the diagram shows it).
    let run = check(&["graph", "fixtures/flows/valid/customer_support.json"], "");
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stderr.contains("1 warning(s)"), "{}", run.stderr);
    let run = check(
        &[
            "graph",
            "fixtures/flows/valid/support_triage.json",
            "--format",
            "mermaid",
            "--direction",
            "td",
        ],
        "",
    );
    assert!(run.stdout.contains("flowchart TD"), "{}", run.stdout);
    let run = check(&["graph", "fixtures/flows/valid", "--format", "dot"], "");
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(run.stderr.contains("--out DIR"), "{}", run.stderr);
    let out = std::env::temp_dir().join(format!("sb-graph-{}", std::process::id()));
    let run = check(
        &[
            "graph",
            "fixtures/flows/valid",
            "--format",
            "dot",
            "--out",
            out.to_str().unwrap(),
        ],
        "",
    );
    assert_eq!(run.code, Some(0), "{run:?}");
    let dot = std::fs::read_to_string(out.join("echo.dot")).unwrap();
    assert!(dot.starts_with("digraph"), "{dot}");
    std::fs::remove_dir_all(&out).unwrap();
    let run = check(
        &[
            "graph",
            "fixtures/flows/invalid/invalid-document__root_array.json",
        ],
        "",
    );
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(run.stderr.contains("not a flow"), "{}", run.stderr);
}

#[test]
fn the_diagram_in_the_readme_is_what_graph_draws() {
    let run = check(
        &[
            "graph",
            "fixtures/flows/valid/appointment_booking.json",
            "--direction",
            "td",
        ],
        "",
    );
    assert_eq!(run.code, Some(0), "{run:?}");
    let committed =
        std::fs::read_to_string(root().join("docs/images/appointment_booking.svg")).unwrap();
    assert!(
        committed == run.stdout,
        "docs/images/appointment_booking.svg is stale: rerun the command in README.md"
    );
}
