//! `switchboard serve` end to end: the binary on port 0 prints its address, answers the
//! webhook handshake with the verify token from the environment and starts an execution
//! through the API.

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

fn request(addr: &str, head: &str, body: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "{head} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
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
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["serve", "--listen", "127.0.0.1:0", "--flows"])
        .arg(&dir)
        .env("WHATSAPP_APP_SECRET", "s3cret")
        .env("WHATSAPP_VERIFY_TOKEN", "tok")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
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
    let unsigned = request(&addr, "POST /webhooks/whatsapp", "{}");
    assert!(unsigned.starts_with("HTTP/1.1 401"), "{unsigned}");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
