//! Logs: `tracing` records on stderr, filtered by `SWITCHBOARD_LOG` (an `EnvFilter` directive
//! such as `info` or `switchboard_runtime=debug`), and redacted.
//!
//! The libraries log only what they have already redacted (the engine logs a turn after
//! replacing the values of the `${ENV:…}` secrets it used). The writer here is the second
//! line of defence: every secret value the process knows of — the variables the
//! configuration names as secrets and those the flows reference as `${ENV:NAME}` — is
//! replaced by `[redacted]` in each record before it reaches stderr.

use std::io::Write;
use std::sync::Arc;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// The variable holding the log filter.
pub const LOG_ENV: &str = "SWITCHBOARD_LOG";

/// Values shorter than this are not redacted (they would shred every record).
const MIN_SECRET_LEN: usize = 4;

/// Replaces secret values in log records.
#[derive(Clone, Default)]
pub struct Redactor {
    /// Longest first, so a secret containing another is replaced whole.
    secrets: Arc<Vec<String>>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redactor")
            .field("secrets", &self.secrets.len())
            .finish()
    }
}

impl Redactor {
    /// A redactor for these values (short and empty ones are ignored).
    pub fn new(values: impl IntoIterator<Item = String>) -> Redactor {
        let mut secrets: Vec<String> = values
            .into_iter()
            .filter(|v| v.len() >= MIN_SECRET_LEN)
            .collect();
        secrets.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        secrets.dedup();
        Redactor {
            secrets: Arc::new(secrets),
        }
    }

    /// A redactor for the values of these environment variables (unset ones are skipped).
    pub fn from_env<'a>(names: impl IntoIterator<Item = &'a str>) -> Redactor {
        Redactor::new(names.into_iter().filter_map(|n| std::env::var(n).ok()))
    }

    /// `text` with every secret value replaced by `[redacted]`.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for s in self.secrets.iter() {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), "[redacted]");
            }
        }
        out
    }
}

/// The names `${ENV:NAME}` references in a text (a flow file). Read leniently, malformed ones
/// included (whatever stands before the next `}`, trimmed): a name is redacted even when the
/// validator would reject its reference.
pub fn env_references(text: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for r in switchboard_model::secrets::references(text) {
        let name = r.braced().unwrap_or_default().trim();
        if !name.is_empty() && !names.iter().any(|n| n == name) {
            names.push(name.to_owned());
        }
    }
    names
}

/// Writes each record to stderr once it is complete, redacted.
struct RedactingWriter {
    redactor: Redactor,
    buffer: Vec<u8>,
}

impl Write for RedactingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for RedactingWriter {
    fn drop(&mut self) {
        if self.buffer.is_empty() {
            return;
        }
        let text = String::from_utf8_lossy(&self.buffer);
        let _ = std::io::stderr()
            .lock()
            .write_all(self.redactor.redact(&text).as_bytes());
    }
}

#[derive(Clone)]
struct MakeRedacting(Redactor);

impl<'a> MakeWriter<'a> for MakeRedacting {
    type Writer = RedactingWriter;

    fn make_writer(&'a self) -> RedactingWriter {
        RedactingWriter {
            redactor: self.0.clone(),
            buffer: Vec::with_capacity(256),
        }
    }
}

/// Installs the process's subscriber: records at `default` level and above (unless
/// [`LOG_ENV`] says otherwise) on stderr, redacted by `redactor`. A second call does nothing.
pub fn init(default: &str, redactor: Redactor) {
    let filter = EnvFilter::try_from_env(LOG_ENV).unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(MakeRedacting(redactor))
        .with_ansi(false)
        .with_target(true)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_longest_first_and_skips_short_values() {
        let r = Redactor::new(["abcd".into(), "xxabcdxx".into(), "ab".into(), String::new()]);
        assert_eq!(
            r.redact("k=xxabcdxx j=abcd ab"),
            "k=[redacted] j=[redacted] ab"
        );
        assert_eq!(Redactor::default().redact("plain"), "plain");
    }

    #[test]
    fn finds_env_references() {
        assert_eq!(
            env_references("a ${ENV:API_KEY} b ${ENV: OTHER } ${ENV:API_KEY} ${ENV:"),
            ["API_KEY", "OTHER"]
        );
    }

    #[test]
    fn the_writer_redacts_whole_records() {
        let r = Redactor::new(["s3cr3t-value".into()]);
        let mut w = MakeRedacting(r.clone()).make_writer();
        w.write_all(b"error=connect to https://x/?k=s3cr3t-")
            .unwrap();
        w.write_all(b"value failed\n").unwrap();
        // The record is only written (and redacted) as a whole (taken here, so the test
        // writes nothing to stderr).
        let record = std::mem::take(&mut w.buffer);
        assert_eq!(
            r.redact(&String::from_utf8_lossy(&record)),
            "error=connect to https://x/?k=[redacted] failed\n"
        );
    }
}
