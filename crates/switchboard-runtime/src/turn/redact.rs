//! Redaction of secret values before anything is committed.

use serde_json::Value;

use crate::context::EngineContext;
use crate::state::Execution;
use crate::store::OutboxRecord;

use super::Turn;

impl Turn<'_> {
    // --- redaction ---------------------------------------------------------------------------

    pub(super) fn secret_values(&self, names: &[String]) -> Vec<(String, String)> {
        names
            .iter()
            .filter_map(|n| self.ctx.adapters.secrets.get(n).map(|v| (v, n.clone())))
            .filter(|(v, _)| !v.is_empty())
            .collect()
    }

    pub(crate) fn redact(&self, names: &[String], v: &mut Value) {
        if names.is_empty() {
            return;
        }
        let secrets = self.secret_values(names);
        redact_value(v, &secrets);
    }

    /// Before committing: no secret value may reach events or stored state.
    pub(super) fn redact_all(&mut self) {
        let mut names: Vec<String> = Vec::new();
        for e in &self.execs {
            for n in &e.secrets_used {
                if !names.contains(n) {
                    names.push(n.clone());
                }
            }
        }
        if names.is_empty() {
            return;
        }
        let secrets = self.secret_values(&names);
        for ev in &mut self.events {
            redact_value(&mut ev.payload, &secrets);
        }
        for e in &mut self.execs {
            for v in e.vars.values_mut() {
                redact_value(v, &secrets);
            }
            if let Some(d) = &mut e.error_details {
                redact_value(d, &secrets);
            }
            if let Some(a) = &mut e.agent {
                for m in &mut a.transcript {
                    redact_string(&mut m.content, &secrets);
                }
            }
        }
        for m in &mut self.conv.messages {
            if secrets
                .iter()
                .any(|(value, _)| m.text.contains(value.as_str()))
            {
                redact_string(&mut std::sync::Arc::make_mut(m).text, &secrets);
            }
        }
    }
}

fn redact_string(s: &mut String, secrets: &[(String, String)]) {
    for (value, name) in secrets {
        if s.contains(value.as_str()) {
            *s = s.replace(value.as_str(), &format!("[REDACTED:{name}]"));
        }
    }
}

pub(super) fn redact_value(v: &mut Value, secrets: &[(String, String)]) {
    match v {
        Value::String(s) => redact_string(s, secrets),
        Value::Array(a) => a.iter_mut().for_each(|x| redact_value(x, secrets)),
        Value::Object(m) => m.values_mut().for_each(|x| redact_value(x, secrets)),
        _ => {}
    }
}

/// Outbox records as the API shows them: the execution's secret values redacted.
pub(crate) fn redact_records(
    ctx: &EngineContext,
    exec: &Execution,
    mut records: Vec<OutboxRecord>,
) -> Vec<OutboxRecord> {
    let secrets: Vec<(String, String)> = exec
        .secrets_used
        .iter()
        .filter_map(|n| ctx.adapters.secrets.get(n).map(|v| (v, n.clone())))
        .filter(|(v, _)| !v.is_empty())
        .collect();
    if secrets.is_empty() {
        return records;
    }
    for r in &mut records {
        if let Ok(mut v) = serde_json::to_value(&r.effect) {
            redact_value(&mut v, &secrets);
            if let Ok(e) = serde_json::from_value(v) {
                r.effect = e;
            }
        }
    }
    records
}
