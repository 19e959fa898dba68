//! Rendering helpers: templates with their missing-variable notes, AI-filled fields, text fields.

use serde_json::{Map, Value, json};
use switchboard_model::config::{ModelRef, Sender, TextField};

use crate::adapters::{ChatRequest, Purpose};
use crate::event::EventType;
use crate::failure::{Failure, FailureKind};
use crate::state::{ChatMessage, Direction};
use crate::template::{Mode, Rendered, Scope, TemplateError};

use super::{Turn, system_namespace};

impl Turn<'_> {
    // --- rendering helpers -------------------------------------------------------------------

    fn note_render<T>(&mut self, xi: usize, node_id: &str, field: &str, r: &Rendered<T>) {
        for name in &r.secrets {
            if !self.execs[xi].secrets_used.contains(name) {
                self.execs[xi].secrets_used.push(name.clone());
            }
        }
        for path in &r.missing {
            self.emit(
                xi,
                EventType::TemplateVariableMissing,
                Some(node_id),
                None,
                json!({"node_id": node_id, "field": field, "path": path}),
            );
        }
    }

    /// Renders through `f` with this execution's namespaces (plus `args` for agent tools), then
    /// records the secrets used and the undefined values written.
    fn render_with<T>(
        &mut self,
        xi: usize,
        node_id: &str,
        field: &str,
        args: Option<&Value>,
        f: impl FnOnce(
            &crate::template::Renderer,
            &Scope,
            &dyn crate::adapters::Secrets,
        ) -> Result<Rendered<T>, TemplateError>,
    ) -> Result<T, Failure> {
        let r = {
            let (e, config) = (&self.execs[xi], &self.ctx.config);
            let build = || system_namespace(e, config);
            let system = crate::template::System::lazy(&build);
            let scope = Scope {
                vars: &e.vars,
                system: &system,
                context: &e.context,
                metadata: &e.metadata,
                args,
            };
            f(&self.ctx.renderer, &scope, &*self.ctx.adapters.secrets)?
        };
        self.note_render(xi, node_id, field, &r);
        Ok(r.value)
    }

    pub(super) fn render_text(
        &mut self,
        xi: usize,
        node_id: &str,
        field: &str,
        template: &str,
        mode: Mode,
    ) -> Result<String, Failure> {
        self.render_with(xi, node_id, field, None, |r, scope, secrets| {
            r.render_text(template, scope, secrets, mode)
        })
    }

    pub(super) fn render_value(
        &mut self,
        xi: usize,
        node_id: &str,
        field: &str,
        value: &Value,
    ) -> Result<Value, Failure> {
        self.render_with(xi, node_id, field, None, |r, scope, secrets| {
            r.render_value(value, scope, secrets)
        })
    }

    pub(super) fn render_with_args(
        &mut self,
        xi: usize,
        node_id: &str,
        field: &str,
        value: &Value,
        args: &Value,
        text: Option<Mode>,
    ) -> Result<Value, Failure> {
        match (text, value) {
            (Some(mode), Value::String(s)) => self
                .render_with(xi, node_id, field, Some(args), |r, scope, secrets| {
                    r.render_text(s, scope, secrets, mode)
                })
                .map(Value::String),
            _ => self.render_with(xi, node_id, field, Some(args), |r, scope, secrets| {
                r.render_value(value, scope, secrets)
            }),
        }
    }

    /// Resolves the AI fields of a node (runtime-semantics §7.12): path → generated text.
    pub(super) async fn ai_fields(
        &mut self,
        xi: usize,
        node_id: &str,
        sender: &Sender,
    ) -> Result<Map<String, Value>, Failure> {
        let mut out = Map::new();
        for f in &sender.ai_fields {
            let Some(prompt) = &f.prompt else { continue };
            let path = f.path.replace("template_params", "parameters");
            if out.contains_key(&path) {
                continue;
            }
            let model = self.model_name(&sender.model)?;
            self.emit(
                xi,
                EventType::AiFieldResolving,
                Some(node_id),
                None,
                json!({"node_id": node_id, "path": path, "model": model}),
            );
            let prompt = self.render_text(
                xi,
                node_id,
                &format!("ai_field_config.{}.prompt", f.path),
                prompt,
                Mode::Text,
            )?;
            let mut messages = vec![ChatMessage::new("system", prompt.clone())];
            messages.extend(self.history_messages());
            let req = ChatRequest {
                model,
                purpose: Purpose::AiField {
                    node_id: node_id.to_owned(),
                    path: path.clone(),
                    prompt,
                },
                messages,
                tools: Vec::new(),
                temperature: None,
                max_tokens: None,
                reasoning_effort: None,
            };
            let text = self
                .ctx
                .adapters
                .model
                .complete(req)
                .await?
                .text
                .unwrap_or_default();
            self.emit(
                xi,
                EventType::AiFieldResolved,
                Some(node_id),
                None,
                json!({"node_id": node_id, "path": path, "value": text}),
            );
            out.insert(path, Value::String(text));
        }
        Ok(out)
    }

    /// The model name sent for a node's model reference (kapso-project §4.2):
    /// `provider_model_name`, else the name the model map (`EngineConfig::model_ids`) gives
    /// its `provider_model_id`; an id nobody mapped is a `model_not_found` failure.
    pub(super) fn model_name(&self, m: &ModelRef) -> Result<String, Failure> {
        if let Some(name) = m.model_name() {
            return Ok(name.to_owned());
        }
        match m.model_id() {
            Some(id) => self.ctx.config.model_ids.get(id).cloned().ok_or_else(|| {
                Failure::new(
                    FailureKind::ModelNotFound,
                    format!(
                        "the node names its model only by the Kapso id `{id}`, which no model map resolves"
                    ),
                )
            }),
            None => Err(Failure::new(
                FailureKind::ModelNotFound,
                "the node names no model",
            )),
        }
    }

    pub(super) fn history_messages(&self) -> Vec<ChatMessage> {
        let n = self.conv.messages.len();
        self.conv.messages[n.saturating_sub(20)..]
            .iter()
            .map(|m| {
                ChatMessage::new(
                    if m.direction == Direction::Inbound {
                        "user"
                    } else {
                        "assistant"
                    },
                    m.text.clone(),
                )
            })
            .collect()
    }

    pub(super) fn text_field(
        &mut self,
        xi: usize,
        node_id: &str,
        key: &str,
        field: Option<&TextField>,
        ai: &Map<String, Value>,
    ) -> Result<Option<String>, Failure> {
        match field {
            None => Ok(None),
            Some(TextField::Ai) => Ok(Some(
                ai.get(key)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
            )),
            Some(TextField::Text(t)) => self.render_text(xi, node_id, key, t, Mode::Text).map(Some),
        }
    }

    pub(super) fn opt_text(
        &mut self,
        xi: usize,
        node_id: &str,
        key: &str,
        t: &Option<String>,
    ) -> Result<Option<String>, Failure> {
        match t {
            None => Ok(None),
            Some(t) => self.render_text(xi, node_id, key, t, Mode::Text).map(Some),
        }
    }
}
