//! The `webhook` node and its HTTP calls.

use std::time::Duration;

use serde_json::{Map, Value, json};
use switchboard_model::config::{Sender, TextField};
use switchboard_model::is_http_url;

use crate::adapters::{AdapterError, HttpRequest};
use crate::failure::{Failure, FailureKind};
use crate::template::Mode;

use super::{Step, Turn, excerpt, set_path};

impl Turn<'_> {
    // --- webhook -----------------------------------------------------------------------------

    pub(super) async fn webhook(
        &mut self,
        xi: usize,
        node_id: &str,
        c: &switchboard_model::config::Webhook,
    ) -> Step {
        let sender = Sender {
            model: c.model.clone(),
            ai_fields: c.ai_fields.clone(),
            ..Sender::default()
        };
        let ai = match self.ai_fields(xi, node_id, &sender).await {
            Ok(a) => a,
            Err(f) => return Step::Fail(f),
        };
        let url = match &c.url {
            Some(TextField::Ai) => ai
                .get("url")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            Some(TextField::Text(u)) => match self.render_text(xi, node_id, "url", u, Mode::Url) {
                Ok(u) => u,
                Err(f) => return Step::Fail(f),
            },
            None => String::new(),
        };
        if !is_http_url(&url) {
            return Step::Fail(Failure::new(
                FailureKind::InvalidRequest,
                format!("`{}` is not an absolute http(s) URL", excerpt(&url)),
            ));
        }
        let method = c
            .method
            .as_deref()
            .and_then(switchboard_model::config::HttpMethod::parse)
            .unwrap_or_default();
        let headers_v = c
            .headers
            .as_ref()
            .map_or(Value::Object(Map::new()), switchboard_model::Value::to_json);
        let body_v = c
            .body_template
            .as_ref()
            .map(switchboard_model::Value::to_json);
        let mut headers = match self.render_headers(xi, node_id, &headers_v, None) {
            Ok(h) => h,
            Err(f) => return Step::Fail(f),
        };
        let mut body = match &body_v {
            Some(b) => match self.render_value(xi, node_id, "body_template", b) {
                Ok(v) => Some(v),
                Err(f) => return Step::Fail(f),
            },
            None => None,
        };
        // Generated values go in after rendering: model output is never template source.
        for (path, v) in &ai {
            if let Some(name) = path.strip_prefix("headers.") {
                let text = crate::template::format_json_value(v);
                match headers.iter_mut().find(|(k, _)| k == name) {
                    Some(h) => h.1 = text,
                    None => headers.push((name.to_owned(), text)),
                }
            } else if let Some(rest) = path
                .strip_prefix("body_template.")
                .or_else(|| path.strip_prefix("body."))
                .or_else(|| path.strip_prefix("request_body."))
                && let Some(b) = &mut body
            {
                set_path(b, rest, v.clone());
            }
        }
        let step = self
            .http_call(xi, node_id, method.as_str(), url, headers, body)
            .await;
        match step {
            Ok(resp) => {
                let status = resp.get("status").and_then(Value::as_u64).unwrap_or(0) as u16;
                if let Some(name) = &c.save_response_to {
                    self.set_var(xi, node_id, name, resp.clone());
                }
                if (200..300).contains(&status) {
                    self.performed(xi, node_id, "http", json!({"status": status}));
                    Step::Next
                } else {
                    let e = AdapterError::http_status(
                        status,
                        format!("the webhook answered HTTP {status}"),
                    );
                    self.action_failed(xi, node_id, "http", &e);
                    Step::Fail(e.into())
                }
            }
            Err(f) => Step::Fail(f),
        }
    }

    /// Renders header values (text) with an optional `args` scope.
    pub(super) fn render_headers(
        &mut self,
        xi: usize,
        node_id: &str,
        headers: &Value,
        args: Option<&Value>,
    ) -> Result<Vec<(String, String)>, Failure> {
        let mut out = Vec::new();
        if let Value::Object(h) = headers {
            for (k, v) in h {
                let field = format!("headers.{k}");
                let rendered = match (args, v) {
                    (Some(a), _) => {
                        self.render_with_args(xi, node_id, &field, v, a, Some(Mode::Text))?
                    }
                    (None, Value::String(s)) => {
                        Value::String(self.render_text(xi, node_id, &field, s, Mode::Text)?)
                    }
                    (None, other) => other.clone(),
                };
                out.push((k.clone(), crate::template::format_json_value(&rendered)));
            }
        }
        Ok(out)
    }

    /// Sends an HTTP request with rendered headers and body; returns `{status, headers, body}`.
    pub(super) async fn http_call(
        &mut self,
        xi: usize,
        node_id: &str,
        method: &str,
        url: String,
        mut header_list: Vec<(String, String)>,
        body: Option<Value>,
    ) -> Result<Value, Failure> {
        let body_bytes = if method == "GET" {
            None
        } else {
            if !header_list
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            {
                header_list.push(("Content-Type".into(), "application/json".into()));
            }
            body.map(|v| serde_json::to_vec(&v).unwrap_or_default())
        };
        self.action(xi, node_id, "http", json!({"method": method, "url": url}));
        let req = HttpRequest {
            method: method.to_owned(),
            url,
            headers: header_list,
            body: body_bytes,
            timeout: Duration::from_secs(30),
        };
        let resp = match self.ctx.adapters.http.send(req).await {
            Ok(r) => r,
            Err(e) => {
                self.action_failed(xi, node_id, "http", &e);
                return Err(e.into());
            }
        };
        let content_type = resp
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            .map(|(_, v)| v.to_ascii_lowercase());
        let is_json = content_type.as_deref().is_some_and(|ct| {
            let base = ct.split(';').next().unwrap_or("").trim();
            base == "application/json" || base.ends_with("+json")
        });
        let body = if is_json {
            match serde_json::from_slice::<Value>(&resp.body) {
                Ok(v) => v,
                Err(e) => {
                    return Err(Failure::new(
                        FailureKind::InvalidJson,
                        format!("the response is not JSON: {e}"),
                    ));
                }
            }
        } else {
            Value::String(String::from_utf8_lossy(&resp.body).into_owned())
        };
        let mut hmap = Map::new();
        for (k, v) in &resp.headers {
            let k = k.to_ascii_lowercase();
            match hmap.get_mut(&k) {
                Some(Value::String(existing)) => {
                    existing.push_str(", ");
                    existing.push_str(v);
                }
                _ => {
                    hmap.insert(k, Value::String(v.clone()));
                }
            }
        }
        Ok(json!({"status": resp.status, "headers": hmap, "body": body}))
    }
}
