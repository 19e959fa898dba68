//! The bodies of the fuzz targets (`fuzz_targets/*.rs` call them). Each takes arbitrary bytes
//! and panics only when a property of the code under test is broken; a panic, a hang (libFuzzer
//! `-timeout`) or a memory blow-up (`-rss_limit_mb`, `-malloc_limit_mb`) is a finding.

use serde_json::{Map, Value, json};
use switchboard_model::{Encoding, LoadOptions, Shape, WriteOptions, load_bytes, load_str};
use switchboard_runtime::adapters::Secrets;
use switchboard_runtime::template::{Mode, Renderer, Scope, System, TemplateLimits};

/// The file names a flow is read under: the extension only breaks ties of encoding detection.
const NAMES: [&str; 2] = ["fuzz.json", "fuzz.yaml"];

/// Flow loading, JSON and YAML: whatever loads must write back to text that loads to the same
/// model, writing must be idempotent, and every shape and encoding conversion must load again
/// with the same nodes and edges.
pub fn load(data: &[u8]) {
    for name in NAMES {
        let Ok(loaded) = load_bytes(data, Some(name), &LoadOptions::default()) else {
            continue;
        };
        let text = loaded.flow.to_text();
        let again = load_bytes(text.as_bytes(), Some(name), &LoadOptions::default())
            .unwrap_or_else(|e| panic!("rewritten text does not load: {e}\n{text}"));
        assert_eq!(again.flow, loaded.flow, "the round trip changed the model");
        assert_eq!(again.flow.to_text(), text, "writing is not idempotent");
        for shape in [Shape::Compiled, Shape::SdkDict, Shape::Definition] {
            for encoding in [Encoding::Json, Encoding::Yaml] {
                let options = WriteOptions {
                    shape: Some(shape),
                    encoding: Some(encoding),
                    ..WriteOptions::default()
                };
                let text = loaded.flow.write(&options);
                let back = load_str(&text, encoding, &LoadOptions::default()).unwrap_or_else(|e| {
                    panic!("{shape:?}/{encoding:?} does not load: {e}\n{text}")
                });
                assert_eq!(back.flow.nodes.len(), loaded.flow.nodes.len());
                assert_eq!(back.flow.edges, loaded.flow.edges);
            }
        }
        let canonical = loaded.flow.write(&WriteOptions::canonical());
        assert!(load_str(&canonical, Encoding::Json, &LoadOptions::default()).is_ok());
    }
}

/// `check_file` and both renderers: a report for any bytes, with known rule names and sorted
/// diagnostics.
pub fn check(data: &[u8]) {
    let options = switchboard_validator::Options::default();
    for name in NAMES {
        let report = switchboard_validator::check_file(name, data, &options);
        for d in &report.diagnostics {
            assert!(
                switchboard_validator::rules::by_name(d.rule).is_some(),
                "unknown rule {}",
                d.rule
            );
        }
        let human = switchboard_validator::render_human(&report);
        assert!(human.contains(name));
        let json = switchboard_validator::render_json(std::slice::from_ref(&report));
        assert!(serde_json::from_str::<Value>(&json).is_ok(), "{json}");
    }
}

struct FuzzSecrets;

impl Secrets for FuzzSecrets {
    fn get(&self, name: &str) -> Option<String> {
        (name == "KEY").then(|| "s3cr3t".to_owned())
    }
}

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

thread_local! {
    /// One renderer per thread, as in the engine: its template cache is shared across inputs.
    static RENDERER: Renderer = Renderer::with_limits(TemplateLimits::default());
}

/// Template rendering with the default limits: text, URL and JSON-valued fields and single
/// expressions. Any template either renders within the output limit or fails with a
/// `template_error` (or `secret_missing`); it never panics, hangs or exhausts memory.
pub fn template(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let vars = object(json!({
        "name": "Ana",
        "n": 3,
        "price": 12.5,
        "ok": true,
        "none": null,
        "items": [{"sku": "A-1", "qty": 2}, {"sku": "B-2", "qty": 1}],
        "nested": {"a": {"b": {"c": [1, 2, 3]}}},
        "long": "x".repeat(1000),
        "last_user_input": "{{ 7 * 7 }}",
    }));
    let system = System::ready(object(json!({"flow_id": "f1", "execution_id": "ex_1"})));
    let context = object(json!({"phone_number": "+14155550100", "contact": {"name": "Ana"}}));
    let metadata = object(json!({"source": "fuzz"}));
    let args = json!({"q": "a b&c"});
    let scope = Scope {
        vars: &vars,
        system: &system,
        context: &context,
        metadata: &metadata,
        args: Some(&args),
    };
    RENDERER.with(|r| {
        let max = r.limits().max_output_bytes;
        for mode in [Mode::Text, Mode::Url] {
            match r.render_text(text, &scope, &FuzzSecrets, mode) {
                Ok(out) => assert!(out.value.len() <= max, "{} bytes", out.value.len()),
                Err(e) => assert!(
                    e.kind == "template_error" || e.kind == "secret_missing",
                    "{e}"
                ),
            }
        }
        let field = json!({"a": text, "b": [text, {"c": text}]});
        if let Err(e) = r.render_value(&field, &scope, &FuzzSecrets) {
            assert!(
                e.kind == "template_error" || e.kind == "secret_missing",
                "{e}"
            );
        }
        if let Err(e) = r.eval(text, &scope) {
            assert_eq!(e.kind, "template_error", "{e}");
        }
    });
}

/// The conversation-script parser: an error, never a panic.
pub fn script(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = switchboard_script::parse_script(text);
}

/// WhatsApp webhook parsing and signatures: any body parses or is refused; a body signed with
/// the app secret verifies, and the same signature does not verify another body, another
/// secret or a damaged header. The input's first line, when there is one, is also tried as the
/// header itself.
pub fn webhook(data: &[u8]) {
    use hmac::{Hmac, Mac};
    let _ = switchboard_whatsapp::parse_webhook(data);
    let secret = b"app-secret";
    let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(secret) else {
        return;
    };
    mac.update(data);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let header = format!("sha256={hex}");
    assert!(switchboard_whatsapp::verify_signature(
        secret,
        data,
        Some(&header)
    ));
    assert!(!switchboard_whatsapp::verify_signature(
        b"other",
        data,
        Some(&header)
    ));
    let mut other = data.to_vec();
    other.push(b'x');
    assert!(!switchboard_whatsapp::verify_signature(
        secret,
        &other,
        Some(&header)
    ));
    assert!(!switchboard_whatsapp::verify_signature(secret, data, None));
    assert!(!switchboard_whatsapp::verify_signature(
        secret,
        data,
        Some(&header[..header.len() - 1])
    ));
    if let Some(line) = data.split(|b| *b == b'\n').next()
        && let Ok(line) = std::str::from_utf8(line)
    {
        let _ = switchboard_whatsapp::verify_signature(secret, data, Some(line));
    }
}
