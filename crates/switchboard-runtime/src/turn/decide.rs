//! The `decide` node.

use std::sync::Arc;

use serde_json::{Value, json};
use switchboard_model::config::DecisionType;

use crate::adapters::{ChatRequest, Purpose};
use crate::event::EventType;
use crate::failure::{Failure, FailureKind};
use crate::registry::CompiledFlow;
use crate::state::ChatMessage;
use crate::template::Mode;

use super::{Step, Turn};

impl Turn<'_> {
    // --- decide ------------------------------------------------------------------------------

    pub(super) async fn decide(
        &mut self,
        xi: usize,
        flow: &Arc<CompiledFlow>,
        ni: usize,
        c: &switchboard_model::config::Decide,
    ) -> Step {
        let node_id = flow.flow.nodes[ni].id().to_owned();
        let labels: Vec<String> = c.labels().map(str::to_owned).collect();
        let mode = if c.mode() == DecisionType::Function {
            "function"
        } else {
            "ai"
        };
        self.emit(
            xi,
            EventType::DecisionEvaluating,
            Some(&node_id),
            None,
            json!({"node_id": node_id, "decision_type": mode, "labels": labels}),
        );
        let Some(first) = labels.first().cloned() else {
            return Step::Fail(Failure::new(
                FailureKind::InvalidRequest,
                "the decide node has no conditions",
            ));
        };
        let (chosen, fallback, reason, extra) = if c.mode() == DecisionType::Function {
            match self
                .call_function(xi, &node_id, &c.function, Some(&labels), None)
                .await
            {
                Ok(resp) => {
                    if let Some(Value::Object(vars)) = resp.get("vars") {
                        let pairs = vars.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                        self.merge_vars(xi, &node_id, pairs);
                    }
                    match resp.get("next_edge").and_then(Value::as_str) {
                        Some(l) if labels.iter().any(|x| x == l) => {
                            (l.to_owned(), false, None, json!({"response": resp}))
                        }
                        _ => (
                            first.clone(),
                            true,
                            Some("no_match".to_owned()),
                            json!({"response": resp}),
                        ),
                    }
                }
                Err(e) => (
                    first.clone(),
                    true,
                    Some(e.kind.as_str().to_owned()),
                    json!({}),
                ),
            }
        } else {
            let last = self.execs[xi].vars.get("last_user_input").map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            });
            let conditions: Vec<(String, String)> = c
                .conditions
                .iter()
                .flatten()
                .filter_map(|k| Some((k.label.clone()?, k.description.clone().unwrap_or_default())))
                .collect();
            let mut prompt = String::from(
                "Choose the condition that best matches the conversation. Answer with exactly one label.\nConditions:\n",
            );
            for (l, d) in &conditions {
                prompt.push_str(&format!("{l}: {d}\n"));
            }
            if let Some(instr) = &c.instructions {
                match self.render_text(
                    xi,
                    &node_id,
                    "llm_configuration.instructions",
                    instr,
                    Mode::Text,
                ) {
                    Ok(s) => {
                        prompt.push_str(&s);
                        prompt.push('\n');
                    }
                    Err(f) => return Step::Fail(f),
                }
            }
            // A model named only by a Kapso id needs the model map (kapso-project §4.2); an
            // unmapped one falls back like a failed model call, with its own reason.
            match self.model_name(&c.model) {
                Err(f) => (
                    first.clone(),
                    true,
                    Some(f.kind.as_str().to_owned()),
                    json!({"prompt": prompt, "error": f.message}),
                ),
                Ok(model) => {
                    let mut messages = vec![ChatMessage::new("system", prompt.clone())];
                    messages.extend(self.history_messages());
                    let req = ChatRequest {
                        model: model.clone(),
                        purpose: Purpose::Decide {
                            node_id: node_id.clone(),
                            labels: labels.clone(),
                            conditions,
                            last_user_input: last.unwrap_or_default(),
                            last_reply_id: self.execs[xi]
                                .vars
                                .get("last_user_reply")
                                .and_then(|r| r.get("id"))
                                .and_then(Value::as_str)
                                .map(str::to_owned),
                        },
                        messages,
                        tools: Vec::new(),
                        temperature: Some(c.llm_temperature.unwrap_or(0.0)),
                        max_tokens: Some(c.llm_max_tokens.unwrap_or(10000)),
                        reasoning_effort: None,
                    };
                    match self.ctx.adapters.model.complete(req).await {
                        Ok(resp) => {
                            let answer = resp.text.unwrap_or_default();
                            let t = answer.trim();
                            let found = labels
                                .iter()
                                .find(|l| l.as_str() == t)
                                .or_else(|| labels.iter().find(|l| l.eq_ignore_ascii_case(t)));
                            match found {
                                Some(l) => (
                                    l.clone(),
                                    false,
                                    None,
                                    json!({"model": model, "prompt": prompt, "response": answer}),
                                ),
                                None => (
                                    first.clone(),
                                    true,
                                    Some("no_match".to_owned()),
                                    json!({"model": model, "prompt": prompt, "response": answer}),
                                ),
                            }
                        }
                        Err(e) => {
                            // The event records only `adapter_error`; the log says why.
                            tracing::warn!(node_id = %node_id, model = %model, error = %e, "AI decide: the model call failed; taking the first condition");
                            (
                                first.clone(),
                                true,
                                Some("adapter_error".to_owned()),
                                json!({"model": model, "prompt": prompt}),
                            )
                        }
                    }
                }
            }
        };
        let mut payload = json!({"node_id": node_id, "decision_type": mode, "chosen_label": chosen, "fallback": fallback});
        if let Some(r) = reason {
            payload["reason"] = json!(r);
        }
        if let Value::Object(extra) = extra {
            for (k, v) in extra {
                payload[k] = v;
            }
        }
        self.emit(
            xi,
            EventType::DecisionEvaluated,
            Some(&node_id),
            None,
            payload,
        );
        let edge = flow.edge_labelled(ni, &chosen);
        Step::Edge(edge, chosen)
    }
}
