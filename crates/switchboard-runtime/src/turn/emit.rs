//! The `emit_event` node.

use serde_json::{Map, Value, json};

use crate::adapters::ProjectEvent;
use crate::event::EventType;
use crate::state::EffectKind;
use crate::store::Effect;
use crate::template::Mode;
use crate::time::Timestamp;

use super::effect::Outcome;
use super::{Step, Turn, excerpt};

impl Turn<'_> {
    // --- emit_event --------------------------------------------------------------------------

    pub(super) async fn emit_event(
        &mut self,
        xi: usize,
        node_id: &str,
        c: &switchboard_model::config::EmitEvent,
    ) -> Step {
        let name = c.event_name.clone().unwrap_or_default();
        let props = match &c.properties {
            Some(m) => match self.render_value(
                xi,
                node_id,
                "properties",
                &switchboard_model::Value::Object(m.clone()).to_json(),
            ) {
                Ok(v) => v,
                Err(f) => return Step::Fail(f),
            },
            None => Value::Object(Map::new()),
        };
        let occurred_at = match &c.occurred_at {
            Some(t) if !t.trim().is_empty() => {
                match self.render_text(xi, node_id, "occurred_at", t, Mode::Text) {
                    Ok(s) if s.trim().is_empty() => self.now.rfc3339(),
                    Ok(s) => match Timestamp::parse_rfc3339(&s) {
                        Some(ts) => ts.rfc3339(),
                        None => {
                            self.emit(xi, EventType::ActionFailed, Some(node_id), None, json!({"node_id": node_id, "action": "emit_event", "error": {"kind": "invalid_request", "message": "occurred_at is not RFC 3339"}}));
                            return Step::Next;
                        }
                    },
                    Err(f) => return Step::Fail(f),
                }
            }
            _ => self.now.rfc3339(),
        };
        let total: u32 = self.execs[xi].emitted.iter().map(|(_, n)| *n).sum();
        let same = self.execs[xi]
            .emitted
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(0, |(_, n)| *n);
        let problem = if total >= 10 {
            Some("an execution emits at most 10 events".to_owned())
        } else if same >= 3 {
            Some(format!("an execution emits `{name}` at most 3 times"))
        } else {
            property_problem(&props)
        };
        if let Some(p) = problem {
            self.emit(xi, EventType::ActionFailed, Some(node_id), None, json!({"node_id": node_id, "action": "emit_event", "error": {"kind": "invalid_request", "message": p}}));
            return Step::Next;
        }
        let mut props_red = props.clone();
        self.redact(&self.execs[xi].secrets_used.clone(), &mut props_red);
        let ev = ProjectEvent {
            event_name: name.clone(),
            properties: props_red.clone(),
            occurred_at: occurred_at.clone(),
            execution_id: self.execs[xi].id.clone(),
            flow_id: self.execs[xi].flow_id.clone(),
        };
        match self
            .carry_out(
                xi,
                node_id,
                EffectKind::Emit,
                "emit_event",
                Effect::ProjectEvent(ev.clone()),
                None,
                None,
            )
            .await
        {
            Ok(outcome) => self.emit_outcome(xi, node_id, &ev, outcome),
            Err(e) => Step::Abort(e),
        }
    }

    /// An `emit_event` node's step once its event was handed over (or refused): a refusal is
    /// recorded and the execution goes on (runtime-semantics Open 7).
    pub(super) fn emit_outcome(
        &mut self,
        xi: usize,
        node_id: &str,
        ev: &ProjectEvent,
        outcome: Outcome,
    ) -> Step {
        if let Outcome::Failed(e) = outcome {
            self.action_failed(xi, node_id, "emit_event", &e);
            return Step::Next;
        }
        let name = ev.event_name.clone();
        match self.execs[xi].emitted.iter_mut().find(|(n, _)| *n == name) {
            Some((_, n)) => *n += 1,
            None => self.execs[xi].emitted.push((name.clone(), 1)),
        }
        self.emit(
            xi,
            EventType::ProjectEventEmitted,
            Some(node_id),
            None,
            json!({"event_name": name, "properties": ev.properties, "occurred_at": ev.occurred_at}),
        );
        Step::Next
    }
}

/// `invalid-event-properties` checks at run time.
fn property_problem(props: &Value) -> Option<String> {
    let Value::Object(m) = props else {
        return Some("properties must be an object".into());
    };
    if m.len() > 25 {
        return Some(format!("{} properties, more than 25", m.len()));
    }
    if serde_json::to_string(props).map_or(0, |s| s.len()) > 8192 {
        return Some("properties are more than 8 KiB as JSON".into());
    }
    for (k, v) in m {
        if k.is_empty() || k.chars().count() > 64 {
            return Some(format!(
                "property key `{}` is empty or longer than 64 characters",
                excerpt(k)
            ));
        }
        match v {
            Value::Array(_) | Value::Object(_) => {
                return Some(format!("property `{}` is not a scalar", excerpt(k)));
            }
            Value::String(s) if s.len() > 1024 => {
                return Some(format!(
                    "property `{}` is longer than 1024 bytes",
                    excerpt(k)
                ));
            }
            _ => {}
        }
    }
    None
}
