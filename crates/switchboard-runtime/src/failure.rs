//! Failures of a node or an execution (runtime-semantics §6): the kinds, and the failure value a
//! turn records in `vars.last_error`, `step_failed` and `error_details`. Pure data; the kinds'
//! spellings are a public contract (events, API responses, function payloads).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// The kind of a failure, as spelled in `error.kind` (runtime-semantics §6, kapso-project §3
/// and §4.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The request could not be sent or the connection failed.
    Transport,
    /// No answer in time.
    Timeout,
    /// A non-2xx HTTP answer (the failure carries the status).
    HttpStatus,
    /// An answer that is not the JSON expected.
    InvalidJson,
    /// The request was refused before it was sent (bad URL, bad arguments, …).
    InvalidRequest,
    /// A function, flow, tool or node that does not exist.
    NotFound,
    /// Any other adapter failure.
    Adapter,
    /// An agent needed more model calls than `max_iterations` in one turn.
    MaxIterations,
    /// A free-form message outside the 24-hour customer service window.
    OutsideServiceWindow,
    /// A rendered message breaks a WhatsApp limit or is not well formed.
    InvalidMessage,
    /// A template does not render.
    TemplateError,
    /// A `${ENV:NAME}` secret is not set.
    SecretMissing,
    /// `call` nesting is deeper than allowed.
    CallDepth,
    /// A `call` would call a flow already on the call stack.
    CallCycle,
    /// `set_variable` cannot convert the value to its `value_type`.
    TypeCoercion,
    /// More than `max_steps_per_turn` nodes in one turn.
    StepLimit,
    /// A node type Switchboard loads but does not run (`pipedream`).
    UnsupportedNode,
    /// A model named only by an id that no model map resolves.
    ModelNotFound,
}

impl FailureKind {
    /// Every kind.
    pub const ALL: [FailureKind; 18] = [
        FailureKind::Transport,
        FailureKind::Timeout,
        FailureKind::HttpStatus,
        FailureKind::InvalidJson,
        FailureKind::InvalidRequest,
        FailureKind::NotFound,
        FailureKind::Adapter,
        FailureKind::MaxIterations,
        FailureKind::OutsideServiceWindow,
        FailureKind::InvalidMessage,
        FailureKind::TemplateError,
        FailureKind::SecretMissing,
        FailureKind::CallDepth,
        FailureKind::CallCycle,
        FailureKind::TypeCoercion,
        FailureKind::StepLimit,
        FailureKind::UnsupportedNode,
        FailureKind::ModelNotFound,
    ];

    /// The spelling in `error.kind` (`transport`, `http_status`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Transport => "transport",
            FailureKind::Timeout => "timeout",
            FailureKind::HttpStatus => "http_status",
            FailureKind::InvalidJson => "invalid_json",
            FailureKind::InvalidRequest => "invalid_request",
            FailureKind::NotFound => "not_found",
            FailureKind::Adapter => "adapter",
            FailureKind::MaxIterations => "max_iterations",
            FailureKind::OutsideServiceWindow => "outside_service_window",
            FailureKind::InvalidMessage => "invalid_message",
            FailureKind::TemplateError => "template_error",
            FailureKind::SecretMissing => "secret_missing",
            FailureKind::CallDepth => "call_depth",
            FailureKind::CallCycle => "call_cycle",
            FailureKind::TypeCoercion => "type_coercion",
            FailureKind::StepLimit => "step_limit",
            FailureKind::UnsupportedNode => "unsupported_node",
            FailureKind::ModelNotFound => "model_not_found",
        }
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A spelling that names no [`FailureKind`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown failure kind `{0}`")]
pub struct UnknownFailureKind(pub String);

impl FromStr for FailureKind {
    type Err = UnknownFailureKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FailureKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownFailureKind(s.to_owned()))
    }
}

impl PartialEq<str> for FailureKind {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for FailureKind {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<FailureKind> for &str {
    fn eq(&self, other: &FailureKind) -> bool {
        *self == other.as_str()
    }
}

/// A failure (runtime-semantics §6): its kind, a message without secrets, and the HTTP status
/// for [`FailureKind::HttpStatus`].
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Failure {
    pub kind: FailureKind,
    pub message: String,
    pub status: Option<u16>,
}

impl Failure {
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Failure {
        Failure {
            kind,
            message: message.into(),
            status: None,
        }
    }

    /// `{kind, message, status?}` (`status` only for `http_status`).
    pub fn summary(&self) -> Value {
        let mut m = Map::new();
        m.insert("kind".into(), Value::String(self.kind.as_str().to_owned()));
        m.insert("message".into(), Value::String(self.message.clone()));
        if let Some(s) = self.status {
            m.insert("status".into(), json!(s));
        }
        Value::Object(m)
    }

    /// `{kind, message, status?, node_id}`: the `error` object of §6.
    pub fn object(&self, node_id: &str) -> Value {
        let mut v = self.summary();
        if let Value::Object(m) = &mut v {
            m.insert("node_id".into(), Value::String(node_id.to_owned()));
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_round_trip_through_serde_and_from_str() {
        for k in FailureKind::ALL {
            let json = serde_json::to_value(k).unwrap();
            assert_eq!(json, Value::String(k.as_str().to_owned()));
            assert_eq!(serde_json::from_value::<FailureKind>(json).unwrap(), k);
            assert_eq!(k.as_str().parse::<FailureKind>().unwrap(), k);
            assert_eq!(k.to_string(), k.as_str());
        }
        assert!("nope".parse::<FailureKind>().is_err());
    }

    #[test]
    fn error_object_has_node_id_and_status_only_when_set() {
        let f = Failure {
            kind: FailureKind::HttpStatus,
            message: "m".into(),
            status: Some(503),
        };
        assert_eq!(
            serde_json::to_string(&f.object("n")).unwrap(),
            r#"{"kind":"http_status","message":"m","status":503,"node_id":"n"}"#
        );
        let f = Failure::new(FailureKind::Timeout, "t");
        assert_eq!(
            serde_json::to_string(&f.summary()).unwrap(),
            r#"{"kind":"timeout","message":"t"}"#
        );
    }
}
