//! Sending messages: the 24-hour window, text, template and interactive messages.

use std::time::Duration;

use serde_json::{Map, Value, json};
use switchboard_model::config::{FlowAction, HeaderType, InteractiveType, Sender};

use crate::adapters::{
    Choice, Cta, FlowParameters, Interactive, InteractiveHeader, ListSection, OutboundBody,
    OutboundMessage,
};
use crate::config::Delays;
use crate::failure::{Failure, FailureKind};
use crate::state::EffectKind;
use crate::store::Effect;
use crate::template::Mode;
use crate::time::Timestamp;

use super::{Step, Turn, check_url, set_path};

impl Turn<'_> {
    // --- sending -----------------------------------------------------------------------------

    /// Sends a message from a node: committed first, then handed to the messenger (or, with
    /// `not_before` in the future, scheduled: the turn stops there).
    pub(super) async fn deliver_message(
        &mut self,
        xi: usize,
        node_id: &str,
        sender: &Sender,
        body: OutboundBody,
        action: &str,
        not_before: Option<Timestamp>,
    ) -> Step {
        // Checked here for the turn as it runs, and again when the message is carried out (a
        // scheduled or resumed send may find the window closed by then).
        let windowed = !matches!(body, OutboundBody::Template { .. });
        if windowed && not_before.is_none() && !self.in_service_window() {
            return Step::Fail(Failure::new(
                FailureKind::OutsideServiceWindow,
                "the contact has not written in the last 24 hours; only templates may be sent",
            ));
        }
        let msg = match self.outbound(xi, node_id, sender, body) {
            Ok(m) => m,
            Err(f) => return Step::Fail(f),
        };
        let body = msg.body.clone();
        match self
            .carry_out(
                xi,
                node_id,
                EffectKind::Send,
                action,
                Effect::Message(msg),
                not_before,
                None,
            )
            .await
        {
            Ok(outcome) => self.send_outcome(xi, node_id, action, &body, outcome),
            Err(e) => Step::Abort(e),
        }
    }

    /// The message a node sends: sender `phone_number_id`, else `whatsapp_config_id`, else the
    /// conversation's number; recipient `to_phone_number`, else the contact.
    pub(super) fn outbound(
        &mut self,
        xi: usize,
        node_id: &str,
        sender: &Sender,
        body: OutboundBody,
    ) -> Result<OutboundMessage, Failure> {
        let to = match &sender.to_phone_number {
            Some(t) => match self.render_text(xi, node_id, "to_phone_number", t, Mode::Text)? {
                s if !s.is_empty() => s,
                _ => self.conv.phone_number.clone(),
            },
            None => self.conv.phone_number.clone(),
        };
        let from = sender
            .phone_number_id
            .clone()
            .or_else(|| sender.whatsapp_config_id.clone())
            .unwrap_or_else(|| self.conv.phone_number_id.clone());
        Ok(OutboundMessage {
            from,
            to,
            execution_id: self.execs[xi].id.clone(),
            node_id: node_id.to_owned(),
            body,
            reference: None,
        })
    }

    pub(super) async fn send_text(
        &mut self,
        xi: usize,
        node_id: &str,
        c: &switchboard_model::config::SendText,
    ) -> Step {
        let ai = match self.ai_fields(xi, node_id, &c.sender).await {
            Ok(a) => a,
            Err(f) => return Step::Fail(f),
        };
        let text = match self.text_field(xi, node_id, "message", c.message.as_ref(), &ai) {
            Ok(t) => t.unwrap_or_default(),
            Err(f) => return Step::Fail(f),
        };
        if text.chars().count() > 4096 {
            return Step::Fail(Failure::new(
                FailureKind::InvalidMessage,
                format!(
                    "the message is {} characters, more than 4096",
                    text.chars().count()
                ),
            ));
        }
        if text.is_empty() {
            return Step::Fail(Failure::new(
                FailureKind::InvalidMessage,
                "the message is empty",
            ));
        }
        let mut not_before = None;
        if let Some(d) = c.delay_seconds.filter(|d| *d > 0.0) {
            let d = d.min(3600.0);
            match self.ctx.config.delays {
                Delays::Sleep => {
                    self.ctx
                        .adapters
                        .clock
                        .sleep(Duration::from_secs_f64(d))
                        .await;
                    // Time moved on: what follows (events, the window, timers) happens later.
                    self.now = self.ctx.adapters.clock.now();
                }
                Delays::Schedule => not_before = Some(self.now.plus_seconds(d)),
            }
        }
        self.deliver_message(
            xi,
            node_id,
            &c.sender,
            OutboundBody::Text { text },
            "send_text",
            not_before,
        )
        .await
    }

    pub(super) async fn send_template(
        &mut self,
        xi: usize,
        node_id: &str,
        c: &switchboard_model::config::SendTemplate,
    ) -> Step {
        let ai = match self.ai_fields(xi, node_id, &c.sender).await {
            Ok(a) => a,
            Err(f) => return Step::Fail(f),
        };
        // Generated values are data, never template source: the configured parameters are
        // rendered first and the model's values put in afterwards, so a reply holding `{{ … }}`
        // or `${ENV:…}` is sent literally (no template or secret injection through the model).
        let mut params = match &c.parameters {
            Some(v) if v.is_ai_marker() => {
                let text = ai
                    .get("parameters")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                match serde_json::from_str::<Value>(text) {
                    Ok(v @ (Value::Object(_) | Value::Array(_))) => v,
                    _ => {
                        return Step::Fail(Failure::new(
                            FailureKind::Adapter,
                            "the model's parameters are not a JSON object or array",
                        ));
                    }
                }
            }
            Some(v) => match self.render_value(xi, node_id, "parameters", &v.to_json()) {
                Ok(v) => v,
                Err(f) => return Step::Fail(f),
            },
            None => Value::Object(Map::new()),
        };
        // Leaf AI markers.
        for (path, value) in &ai {
            if let Some(rest) = path.strip_prefix("parameters.") {
                set_path(&mut params, rest, value.clone());
            }
        }
        let body = OutboundBody::Template {
            template_id: c.template_id.clone().unwrap_or_default(),
            parameters: stringify_leaves(params),
        };
        self.deliver_message(xi, node_id, &c.sender, body, "send_template", None)
            .await
    }

    pub(super) async fn send_interactive(
        &mut self,
        xi: usize,
        node_id: &str,
        c: &switchboard_model::config::SendInteractive,
    ) -> Step {
        let ai = match self.ai_fields(xi, node_id, &c.sender).await {
            Ok(a) => a,
            Err(f) => return Step::Fail(f),
        };
        match self.build_interactive(xi, node_id, c, &ai) {
            Ok(i) => {
                self.deliver_message(
                    xi,
                    node_id,
                    &c.sender,
                    OutboundBody::Interactive(i),
                    "send_interactive",
                    None,
                )
                .await
            }
            Err(f) => Step::Fail(f),
        }
    }

    fn build_interactive(
        &mut self,
        xi: usize,
        node_id: &str,
        c: &switchboard_model::config::SendInteractive,
        ai: &Map<String, Value>,
    ) -> Result<Interactive, Failure> {
        let t = c
            .interactive_type
            .ok_or_else(|| Failure::new(FailureKind::InvalidMessage, "no interactive_type"))?;
        if !t.is_supported() {
            return Err(Failure::new(
                FailureKind::InvalidMessage,
                format!("interactive type `{}` is not supported", t.as_str()),
            ));
        }
        let body = self
            .text_field(xi, node_id, "body_text", c.body_text.as_ref(), ai)?
            .unwrap_or_default();
        let limit = if t == InteractiveType::List {
            4096
        } else {
            1024
        };
        check_len("body_text", &body, limit)?;
        if body.is_empty() {
            return Err(Failure::new(
                FailureKind::InvalidMessage,
                "the body text is empty",
            ));
        }
        let mut i = Interactive {
            interactive_type: t.as_str().to_owned(),
            body,
            ..Interactive::default()
        };
        if t != InteractiveType::LocationRequestMessage {
            match c.effective_header_type() {
                HeaderType::Text => {
                    let h = self
                        .text_field(xi, node_id, "header_text", c.header_text.as_ref(), ai)?
                        .unwrap_or_default();
                    check_len("header_text", &h, 60)?;
                    i.header = Some(InteractiveHeader {
                        kind: "text".into(),
                        value: h,
                    });
                }
                h @ (HeaderType::Image | HeaderType::Video | HeaderType::Document) => {
                    let url = self
                        .opt_text(xi, node_id, "header_media_url", &c.header_media_url)?
                        .unwrap_or_default();
                    check_url("header_media_url", &url)?;
                    i.header = Some(InteractiveHeader {
                        kind: h.as_str().to_owned(),
                        value: url,
                    });
                }
                HeaderType::None => {}
            }
            if let Some(f) =
                self.text_field(xi, node_id, "footer_text", c.footer_text.as_ref(), ai)?
            {
                check_len("footer_text", &f, 60)?;
                i.footer = Some(f);
            }
        }
        match t {
            InteractiveType::Button => {
                let buttons = c.buttons.clone().unwrap_or_default();
                if buttons.is_empty() || buttons.len() > 3 {
                    return Err(Failure::new(
                        FailureKind::InvalidMessage,
                        format!("{} buttons (1 to 3 allowed)", buttons.len()),
                    ));
                }
                for (k, b) in buttons.iter().enumerate() {
                    let title = self
                        .opt_text(xi, node_id, &format!("buttons[{k}].title"), &b.title)?
                        .unwrap_or_default();
                    check_len("button title", &title, 20)?;
                    let id = b.id.clone().unwrap_or_default();
                    check_len("button id", &id, 256)?;
                    if i.buttons.iter().any(|x| x.id == id) {
                        return Err(Failure::new(
                            FailureKind::InvalidMessage,
                            format!("duplicate button id `{id}`"),
                        ));
                    }
                    i.buttons.push(Choice {
                        id,
                        title,
                        description: None,
                    });
                }
            }
            InteractiveType::List => {
                let text = self
                    .opt_text(xi, node_id, "list_button_text", &c.list_button_text)?
                    .unwrap_or_default();
                check_len("list_button_text", &text, 20)?;
                i.list_button_text = Some(text);
                let sections = c.list_sections.clone().unwrap_or_default();
                let mut rows_total = 0;
                for (s, sec) in sections.iter().enumerate() {
                    let title = self.opt_text(
                        xi,
                        node_id,
                        &format!("list_sections[{s}].title"),
                        &sec.title,
                    )?;
                    if let Some(t) = &title {
                        check_len("section title", t, 24)?;
                    }
                    let mut rows = Vec::new();
                    for (r, row) in sec.rows.iter().enumerate() {
                        let title = self
                            .opt_text(
                                xi,
                                node_id,
                                &format!("list_sections[{s}].rows[{r}].title"),
                                &row.title,
                            )?
                            .unwrap_or_default();
                        check_len("row title", &title, 24)?;
                        let description = self.opt_text(
                            xi,
                            node_id,
                            &format!("list_sections[{s}].rows[{r}].description"),
                            &row.description,
                        )?;
                        if let Some(d) = &description {
                            check_len("row description", d, 72)?;
                        }
                        rows.push(Choice {
                            id: row.id.clone().unwrap_or_default(),
                            title,
                            description,
                        });
                    }
                    rows_total += rows.len();
                    i.sections.push(ListSection { title, rows });
                }
                if sections.is_empty() || sections.len() > 10 || rows_total == 0 || rows_total > 10
                {
                    return Err(Failure::new(
                        FailureKind::InvalidMessage,
                        "a list needs 1–10 sections and 1–10 rows in all",
                    ));
                }
            }
            InteractiveType::CtaUrl => {
                let text = self
                    .opt_text(xi, node_id, "cta_display_text", &c.cta_display_text)?
                    .unwrap_or_default();
                check_len("cta_display_text", &text, 20)?;
                let url = match &c.cta_url {
                    Some(u) => self.render_text(xi, node_id, "cta_url", u, Mode::Text)?,
                    None => String::new(),
                };
                check_url("cta_url", &url)?;
                i.cta = Some(Cta {
                    display_text: text,
                    url,
                });
            }
            InteractiveType::Flow => {
                let cta = self
                    .opt_text(xi, node_id, "flow_cta", &c.flow_cta)?
                    .unwrap_or_default();
                let token = self
                    .opt_text(xi, node_id, "flow_token", &c.flow_token)?
                    .unwrap_or_else(|| self.execs[xi].id.clone());
                let action = c.flow_action.unwrap_or(FlowAction::Navigate);
                let payload = match &c.flow_action_payload {
                    Some(p) => {
                        let data = match &p.data {
                            Some(d) => Some(self.render_value(
                                xi,
                                node_id,
                                "flow_action_payload.data",
                                &d.to_json(),
                            )?),
                            None => None,
                        };
                        let mut m = Map::new();
                        m.insert("screen".into(), json!(p.screen));
                        if let Some(d) = data {
                            m.insert("data".into(), d);
                        }
                        Some(Value::Object(m))
                    }
                    None => None,
                };
                i.flow = Some(FlowParameters {
                    flow_id: c.flow_id.clone().unwrap_or_default(),
                    flow_cta: cta,
                    flow_token: token,
                    flow_action: if action == FlowAction::Navigate {
                        "navigate"
                    } else {
                        "data_exchange"
                    }
                    .into(),
                    flow_action_payload: payload,
                });
            }
            _ => {}
        }
        Ok(i)
    }
}

pub(super) fn check_len(what: &str, s: &str, max: usize) -> Result<(), Failure> {
    let n = s.chars().count();
    if n > max {
        return Err(Failure::new(
            FailureKind::InvalidMessage,
            format!("{what} is {n} characters, more than {max}"),
        ));
    }
    Ok(())
}

/// Template parameters are sent as strings.
fn stringify_leaves(v: Value) -> Value {
    match v {
        Value::Array(a) => Value::Array(a.into_iter().map(stringify_leaves).collect()),
        Value::Object(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| (k, stringify_leaves(v)))
                .collect(),
        ),
        other => Value::String(crate::template::format_json_value(&other)),
    }
}
