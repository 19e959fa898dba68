//! The integration nodes: `function`, `webhook` (and the HTTP methods webhooks use) and
//! `pipedream` (a Kapso node type Switchboard loads and validates but does not run), and their
//! decoders.

use super::{
    AI_FIELDS_KEYS, AiField, FUNCTION_REF_KEYS, MODEL_REF_KEYS, ModelRef, ResourceRef, TextField,
    ai_fields, function_ref, model_ref,
};
use crate::decode::{Cx, JsonShape, Obj};
use crate::value::Value;

/// `function`
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FunctionNode {
    /// The function.
    pub function: ResourceRef,
    /// `save_response_to`
    pub save_response_to: Option<String>,
}

/// `webhook`
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Webhook {
    /// `url` (templated)
    pub url: Option<TextField>,
    /// `method` (alias `http_method`) as written; see [`HttpMethod::parse`].
    pub method: Option<String>,
    /// `headers`, decoded from an object or JSON string.
    pub headers: Option<Value>,
    /// `body_template` (aliases `body` and `request_body`), decoded from a value or JSON
    /// string.
    pub body_template: Option<Value>,
    /// `save_response_to`
    pub save_response_to: Option<String>,
    /// The model that generates AI fields.
    pub model: ModelRef,
    /// `ai_field_config`
    pub ai_fields: Vec<AiField>,
}

/// `pipedream`: a Pipedream action run by Kapso. Switchboard loads and validates it
/// (`unsupported-node-type`) but does not run it: reaching it fails the node with
/// `unsupported_node`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Pipedream {
    /// `app_slug` (required)
    pub app_slug: Option<String>,
    /// `action_id` (required)
    pub action_id: Option<String>,
    /// `account_id`
    pub account_id: Option<String>,
    /// `configured_props` (templated leaves), decoded from an object or JSON string.
    pub configured_props: Option<Value>,
    /// `dynamic_props_id`
    pub dynamic_props_id: Option<String>,
    /// `save_response_to`
    pub save_response_to: Option<String>,
    /// The model that generates AI fields.
    pub model: ModelRef,
    /// `ai_field_config`
    pub ai_fields: Vec<AiField>,
}

/// An HTTP method of a webhook node or tool.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HttpMethod {
    /// GET
    Get,
    /// POST (default)
    #[default]
    Post,
    /// PUT
    Put,
    /// PATCH
    Patch,
    /// DELETE
    Delete,
}

impl HttpMethod {
    /// Parses a method name in any case.
    pub fn parse(s: &str) -> Option<HttpMethod> {
        Some(match s.to_ascii_uppercase().as_str() {
            "GET" => HttpMethod::Get,
            "POST" => HttpMethod::Post,
            "PUT" => HttpMethod::Put,
            "PATCH" => HttpMethod::Patch,
            "DELETE" => HttpMethod::Delete,
            _ => return None,
        })
    }

    /// The upper-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Post => "POST",
            HttpMethod::Put => "PUT",
            HttpMethod::Patch => "PATCH",
            HttpMethod::Delete => "DELETE",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Decoding

/// The keys of a `function` config.
pub(super) const FUNCTION_KEYS: &[&str] = keys![FUNCTION_REF_KEYS, &["save_response_to"]];

pub(super) fn function(o: Obj, cx: &mut Cx) -> FunctionNode {
    FunctionNode {
        function: function_ref(o, cx),
        save_response_to: o.str(cx, "save_response_to"),
    }
}

/// The keys of a `webhook` config.
pub(super) const WEBHOOK_KEYS: &[&str] = keys![
    &[
        "url",
        "method",
        "http_method",
        "headers",
        "body_template",
        "body",
        "request_body",
        "save_response_to",
    ],
    MODEL_REF_KEYS,
    AI_FIELDS_KEYS,
];

pub(super) fn webhook(o: Obj, cx: &mut Cx) -> Webhook {
    let method_key = o.alias(cx, "method", "http_method");
    // Three spellings of the body: `body_template`, then `body`, then `request_body` (the
    // keyword of Kapso's WebhookNode); the first present wins.
    let body_key = o.alias(cx, "body_template", "body");
    let body_key = o.alias(cx, body_key, "request_body");
    Webhook {
        url: o.text(cx, "url"),
        method: o.str(cx, method_key),
        headers: o.headers(cx, "headers"),
        body_template: o.json_field(cx, body_key, JsonShape::Any),
        save_response_to: o.str(cx, "save_response_to"),
        model: model_ref(o, cx),
        ai_fields: ai_fields(o, cx),
    }
}

/// The keys of a `pipedream` config.
pub(super) const PIPEDREAM_KEYS: &[&str] = keys![
    &[
        "app_slug",
        "action_id",
        "account_id",
        "configured_props",
        "dynamic_props_id",
        "save_response_to",
    ],
    MODEL_REF_KEYS,
    AI_FIELDS_KEYS,
];

pub(super) fn pipedream(o: Obj, cx: &mut Cx) -> Pipedream {
    Pipedream {
        app_slug: o.str(cx, "app_slug"),
        action_id: o.str(cx, "action_id"),
        account_id: o.str(cx, "account_id"),
        configured_props: o.json_field(cx, "configured_props", JsonShape::Object),
        dynamic_props_id: o.str(cx, "dynamic_props_id"),
        save_response_to: o.str(cx, "save_response_to"),
        model: model_ref(o, cx),
        ai_fields: ai_fields(o, cx),
    }
}
