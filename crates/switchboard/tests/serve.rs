//! `switchboard serve` end to end: the binary on port 0 prints its address, answers the
//! webhook handshake with the verify token from the environment and starts an execution
//! through the API; with a configuration, SWITCHBOARD_LOG=debug and failing adapters, no
//! secret reaches the logs, and SIGTERM stops it cleanly.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Kills the server when the test ends, however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `switchboard serve --listen 127.0.0.1:0 ARGS` with `env` (stderr piped) and returns
/// it with the address it printed.
fn start(args: &[&std::ffi::OsStr], env: &[(&str, &str)]) -> (Server, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let server = Server(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    (server, addr)
}

/// The API token the tests configure (`[api] token_envs = ["SB_API_TOKEN"]`).
const API_TOKEN: &str = "test-api-token-77c1";

/// A request with the API's bearer token (webhooks ignore it).
fn request(addr: &str, head: &str, body: &str) -> String {
    request_with(
        addr,
        head,
        &[("Authorization", &format!("Bearer {API_TOKEN}"))],
        body,
    )
}

fn request_with(addr: &str, head: &str, headers: &[(&str, &str)], body: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    write!(
        stream,
        "{head} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    stream.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn serve_on_port_0_handshakes_and_starts_executions() {
    let dir = std::env::temp_dir().join(format!("switchboard-serve-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::fs::copy(
        root.join("fixtures/flows/valid/echo.yaml"),
        dir.join("echo.yaml"),
    )
    .unwrap();
    let config = dir.join("switchboard.toml");
    std::fs::write(&config, "[api]\ntoken_envs = [\"SB_API_TOKEN\"]\n").unwrap();
    // stderr is piped and never read: a quiet server (a few info records) cannot fill it.
    let (server, addr) = start(
        &[
            "--flows".as_ref(),
            dir.as_os_str(),
            "--offline".as_ref(),
            "--config".as_ref(),
            config.as_os_str(),
        ],
        &[
            ("WHATSAPP_APP_SECRET", "s3cret"),
            ("WHATSAPP_VERIFY_TOKEN", "tok"),
            ("SB_API_TOKEN", API_TOKEN),
        ],
    );

    let ok = request(
        &addr,
        "GET /webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=tok&hub.challenge=42",
        "",
    );
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    assert!(ok.ends_with("42"), "{ok}");
    let refused = request(
        &addr,
        "GET /webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=nope&hub.challenge=42",
        "",
    );
    assert!(refused.starts_with("HTTP/1.1 403"), "{refused}");
    let started = request(
        &addr,
        "POST /v1/executions",
        r#"{"flow": "echo", "phone_number": "+14155550100"}"#,
    );
    assert!(started.starts_with("HTTP/1.1 201"), "{started}");
    assert!(started.contains("\"execution_id\""), "{started}");
    let anonymous = request_with(
        &addr,
        "POST /v1/executions",
        &[],
        r#"{"flow": "echo", "phone_number": "+14155550101"}"#,
    );
    assert!(anonymous.starts_with("HTTP/1.1 401"), "{anonymous}");
    let unsigned = request(&addr, "POST /webhooks/whatsapp", "{}");
    assert!(unsigned.starts_with("HTTP/1.1 401"), "{unsigned}");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Without a messenger (no `[whatsapp]`), `serve` refuses to start — exit status 2, a message
/// naming `[whatsapp]` and `--offline` — rather than silently running an offline fake.
#[test]
fn serve_without_a_messenger_refuses_to_start() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["serve", "--listen", "127.0.0.1:0", "--flows"])
        .arg(root.join("fixtures/flows/valid"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("[whatsapp]") && stderr.contains("--offline"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty(), "nothing was served: {out:?}");
}

fn sign(secret: &str, body: &str) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[cfg(unix)]
#[test]
fn secrets_never_reach_the_logs_and_sigterm_stops_cleanly() {
    const APP_SECRET: &str = "app-secret-6d1f0c9e";
    const VERIFY: &str = "verify-token-27ab";
    const WA_TOKEN: &str = "EAAG-wa-token-93be71";
    const PARTNER: &str = "partner-token-5c8e44";
    let dir = std::env::temp_dir().join(format!("switchboard-serve-logs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("flows")).unwrap();
    let down = closed_port();
    std::fs::write(
        dir.join("flows/leaky.yaml"),
        format!(
            r#"name: leaky
nodes:
- id: start
  data: {{node_type: start, config: {{}}}}
- id: call
  data:
    node_type: webhook
    config:
      url: http://127.0.0.1:{down}/hook?key=${{ENV:PARTNER_TOKEN}}
      method: POST
      headers: {{Authorization: 'Bearer ${{ENV:PARTNER_TOKEN}}'}}
      body_template: {{token: '${{ENV:PARTNER_TOKEN}}'}}
      save_response_to: answer
edges:
- {{source: start, target: call, label: next}}
"#
        ),
    )
    .unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::fs::copy(
        root.join("fixtures/flows/valid/echo.yaml"),
        dir.join("flows/echo.yaml"),
    )
    .unwrap();
    std::fs::write(
        dir.join("switchboard.toml"),
        format!(
            "[whatsapp]\nphone_number_id = \"15550001111\"\naccess_token_env = \"SB_TEST_WA_TOKEN\"\n\
             base_url = \"http://127.0.0.1:{down}\"\ntimeout_seconds = 2\nmax_retries = 0\n\n\
             [http]\nconnect_timeout_seconds = 2\n\n[api]\ntoken_envs = [\"SB_API_TOKEN\"]\n"
        ),
    )
    .unwrap();
    let config = dir.join("switchboard.toml");
    let flows = dir.join("flows");
    let (mut server, addr) = start(
        &[
            "--inbound".as_ref(),
            "echo".as_ref(),
            "--config".as_ref(),
            config.as_os_str(),
            "--flows".as_ref(),
            flows.as_os_str(),
        ],
        &[
            ("SWITCHBOARD_LOG", "debug"),
            ("WHATSAPP_APP_SECRET", APP_SECRET),
            ("WHATSAPP_VERIFY_TOKEN", VERIFY),
            ("SB_TEST_WA_TOKEN", WA_TOKEN),
            ("PARTNER_TOKEN", PARTNER),
            ("SB_API_TOKEN", API_TOKEN),
        ],
    );
    let mut stderr = server.0.stderr.take().unwrap();
    let pid = server.0.id();

    // A refused handshake, an unsigned webhook, a signed one whose reply cannot be sent (the
    // Graph API is down) and an API start whose webhook cannot connect.
    let refused = request(
        &addr,
        "GET /webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1",
        "",
    );
    assert!(refused.starts_with("HTTP/1.1 403"), "{refused}");
    // Written now, so the service window is open and the reply goes to the (down) Graph API.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let body = format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"1","changes":[{{"field":"messages","value":{{"messaging_product":"whatsapp","metadata":{{"display_phone_number":"15550001111","phone_number_id":"15550001111"}},"contacts":[{{"profile":{{"name":"Ana"}},"wa_id":"14155550100"}}],"messages":[{{"from":"14155550100","id":"wamid.L1","timestamp":"{now}","type":"text","text":{{"body":"hi"}}}}]}}}}]}}]}}"#
    );
    let body = body.as_str();
    let unsigned = request(&addr, "POST /webhooks/whatsapp", body);
    assert!(unsigned.starts_with("HTTP/1.1 401"), "{unsigned}");
    let signed = request_with(
        &addr,
        "POST /webhooks/whatsapp",
        &[("X-Hub-Signature-256", &sign(APP_SECRET, body))],
        body,
    );
    assert!(signed.starts_with("HTTP/1.1 200"), "{signed}");
    let started = request(
        &addr,
        "POST /v1/executions",
        r#"{"flow": "leaky", "phone_number": "+14155550199"}"#,
    );
    assert!(started.starts_with("HTTP/1.1 201"), "{started}");
    let id = started
        .split("\"execution_id\":\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_owned();
    // The execution fails on the webhook; wait for it.
    let mut status = String::new();
    for _ in 0..100 {
        status = request(&addr, &format!("GET /v1/executions/{id}"), "");
        if status.contains("\"status\":\"failed\"") {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(status.contains("\"status\":\"failed\""), "{status}");

    // SIGTERM: a clean exit.
    let killed = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let mut exited = None;
    for _ in 0..200 {
        if let Some(s) = server.0.try_wait().unwrap() {
            exited = Some(s);
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let exited = exited.expect("serve exits after SIGTERM");
    assert!(exited.success(), "{exited:?}");
    let mut logs = String::new();
    stderr.read_to_string(&mut logs).unwrap();
    for secret in [APP_SECRET, VERIFY, WA_TOKEN, PARTNER, API_TOKEN] {
        assert!(!logs.contains(secret), "a secret reached the logs:\n{logs}");
    }
    for expected in [
        "webhook refused",
        "WhatsApp Cloud API: error sending request",
        "webhook accepted",
        "flow failure",
        "turn committed",
        "shutting down",
        "stopped",
    ] {
        assert!(logs.contains(expected), "no `{expected}` record:\n{logs}");
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The body of an HTTP response, as JSON.
fn json_body(response: &str) -> serde_json::Value {
    let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {response}"))
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

/// A signed-webhook body: `from` writes `text` now.
fn inbound(from: &str, id: &str, text: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"1","changes":[{{"field":"messages","value":{{"messaging_product":"whatsapp","metadata":{{"display_phone_number":"15550001111","phone_number_id":"15550001111"}},"contacts":[{{"profile":{{"name":"Ana"}},"wa_id":"{from}"}}],"messages":[{{"from":"{from}","id":"{id}","timestamp":"{now}","type":"text","text":{{"body":"{text}"}}}}]}}}}]}}]}}"#
    )
}

/// The two templates of issue 15 under `serve`: a contact who writes `boom` runs a node on
/// 10^10 loop steps (it fails, its `error` edge is taken) and then one on 49 GB of output (the
/// execution fails), each with `template_error` naming the limit; the webhook is answered within
/// a second, the server's peak memory grows by less than 64 MB, and another contact who writes
/// at the same time is answered.
#[test]
fn serve_fails_hostile_templates_and_keeps_answering() {
    const APP_SECRET: &str = "s3cret";
    let dir =
        std::env::temp_dir().join(format!("switchboard-serve-hostile-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let greet = serde_json::to_string(
        "{% if last_user_input == 'boom' %}{% for i in range(100000) %}{% for j in range(100000) %}\
         {% endfor %}{% endfor %}{% else %}Hello! What is your order number?{% endif %}",
    )
    .unwrap();
    let output = serde_json::to_string(
        "{% set a = range(100000)|join %}{% for i in range(100000) %}{{ a }}{% endfor %}",
    )
    .unwrap();
    std::fs::write(
        dir.join("hostile.yaml"),
        format!(
            r#"name: hostile
nodes:
- {{id: start, data: {{node_type: start, config: {{}}}}}}
- {{id: greet, data: {{node_type: send_text, config: {{message: {greet}}}}}}}
- {{id: wait, data: {{node_type: wait_for_response, config: {{timeout_seconds: 600}}}}}}
- {{id: output, data: {{node_type: send_text, config: {{message: {output}}}}}}}
edges:
- {{source: start, target: greet}}
- {{source: greet, target: wait}}
- {{source: greet, target: output, label: error}}
"#
        ),
    )
    .unwrap();
    let (server, addr) = start(
        &["--flows".as_ref(), dir.as_os_str(), "--offline".as_ref()],
        &[
            ("WHATSAPP_APP_SECRET", APP_SECRET),
            ("WHATSAPP_VERIFY_TOKEN", "tok"),
        ],
    );
    let pid = server.0.id();
    let post = |body: String| {
        let addr = addr.clone();
        std::thread::spawn(move || {
            let started = std::time::Instant::now();
            let answer = request_with(
                &addr,
                "POST /webhooks/whatsapp",
                &[("X-Hub-Signature-256", &sign(APP_SECRET, &body))],
                &body,
            );
            (answer, started.elapsed())
        })
    };
    // Warm up, then measure from here.
    let (warm, _) = post(inbound("14155550111", "wamid.W1", "hi"))
        .join()
        .unwrap();
    assert!(warm.starts_with("HTTP/1.1 200"), "{warm}");
    let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
    let before = memory_kib(pid);

    let hostile = post(inbound("14155550100", "wamid.H1", "boom"));
    let other = post(inbound("14155550199", "wamid.O1", "hi"));
    let (answer, took) = hostile.join().unwrap();
    let (other, other_took) = other.join().unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        took < Duration::from_secs(15),
        "the hostile turn took {took:?}"
    );
    assert!(other.starts_with("HTTP/1.1 200"), "{other}");
    assert!(
        other_took < Duration::from_secs(15),
        "the other contact waited {other_took:?}"
    );
    let grown = memory_kib(pid)
        .zip(before)
        .map(|((_, peak), (rss, _))| peak.saturating_sub(rss));
    assert!(
        grown.is_none_or(|kib| kib < 64 * 1024),
        "memory grew by {grown:?} KiB"
    );
    eprintln!("hostile turn: {took:?}, other contact: {other_took:?}, peak memory +{grown:?} KiB");

    // The other contact was greeted and is waiting for the answer.
    let waiting = json_body(&request(
        &addr,
        "GET /v1/executions?conversation_id=15550001111:14155550199",
        "",
    ));
    assert_eq!(waiting["data"][0]["status"], "waiting", "{waiting}");
    assert_eq!(waiting["data"][0]["current_node_id"], "wait", "{waiting}");
    // The hostile execution failed on the second template, after the first took its error edge.
    let failed = json_body(&request(&addr, "GET /v1/executions?status=failed", ""));
    let executions = failed["data"].as_array().unwrap();
    assert_eq!(executions.len(), 1, "{failed}");
    assert_eq!(
        executions[0]["conversation_id"], "15550001111:14155550100",
        "{failed}"
    );
    let id = executions[0]["id"].as_str().unwrap();
    let events = request(&addr, &format!("GET /v1/executions/{id}/events"), "");
    for expected in [
        "template ran out of fuel: it needs more work or memory than `templates.fuel` = 500000 allows",
        "rendered text is larger than `templates.max_output_bytes` = 1048576 bytes",
    ] {
        assert!(events.contains(expected), "no `{expected}` in {events}");
    }
    assert!(events.contains("template_error"), "{events}");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
