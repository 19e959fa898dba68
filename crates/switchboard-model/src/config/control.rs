//! The control nodes: `start` (no keys), `wait_for_response`, `decide`, `set_variable`, `call`,
//! `handoff` and `emit_event`, and their decoders.

use super::{
    FLOW_REF_KEYS, FUNCTION_REF_KEYS, MODEL_REF_KEYS, ModelRef, ResourceRef, flow_ref,
    function_ref, model_ref,
};
use crate::decode::{Cx, Obj};
use crate::value::{Map, Value};

/// `wait_for_response`
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WaitForResponse {
    /// `timeout_seconds` as written (may be fractional or out of range; see `invalid-timeout`).
    pub timeout_seconds: Option<f64>,
    /// `has_timeout`
    pub has_timeout: Option<bool>,
    /// `save_response_to`
    pub save_response_to: Option<String>,
}

impl WaitForResponse {
    /// The armed timeout: `timeout_seconds` when set and `has_timeout` is not `false`.
    pub fn armed_timeout(&self) -> Option<f64> {
        if self.has_timeout == Some(false) {
            None
        } else {
            self.timeout_seconds
        }
    }
}

/// `decision_type`
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DecisionType {
    /// An LLM picks the condition (default).
    #[default]
    Ai,
    /// A function picks the condition.
    Function,
}

/// A decide condition.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Condition {
    /// `label`: the edge label it routes to.
    pub label: Option<String>,
    /// `description`: feeds the AI prompt.
    pub description: Option<String>,
    /// `id` (read-only, assigned by Kapso).
    pub id: Option<String>,
}

/// `decide`
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Decide {
    /// `decision_type` as written (`None`: absent or invalid; the default is `ai`).
    pub decision_type: Option<DecisionType>,
    /// `conditions` (`None` when absent).
    pub conditions: Option<Vec<Condition>>,
    /// The model (ai mode).
    pub model: ModelRef,
    /// `llm_temperature`
    pub llm_temperature: Option<f64>,
    /// `llm_max_tokens`
    pub llm_max_tokens: Option<i64>,
    /// `llm_configuration`
    pub llm_configuration: Option<Map>,
    /// `llm_configuration.instructions` (templated)
    pub instructions: Option<String>,
    /// The function (function mode).
    pub function: ResourceRef,
}

impl Decide {
    /// The decision type, defaulting to `ai`.
    pub fn mode(&self) -> DecisionType {
        self.decision_type.unwrap_or_default()
    }

    /// The condition labels, in order (conditions without a label are skipped).
    pub fn labels(&self) -> impl Iterator<Item = &str> {
        self.conditions
            .iter()
            .flatten()
            .filter_map(|c| c.label.as_deref())
    }
}

/// `value_type` of `set_variable`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ValueType {
    /// `string` (default)
    #[default]
    String,
    /// `number`
    Number,
    /// `boolean`
    Boolean,
    /// `json`
    Json,
}

/// `set_variable`
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SetVariable {
    /// `variable_name`
    pub variable_name: Option<String>,
    /// `variable_value` (`None` when absent or `null`)
    pub variable_value: Option<Value>,
    /// `value_type` as written (`None`: absent or invalid; the default is `string`).
    pub value_type: Option<ValueType>,
}

/// `call`
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Call {
    /// The called flow.
    pub workflow: ResourceRef,
    /// `save_error_to` (default `subworkflow_error`)
    pub save_error_to: Option<String>,
}

impl Call {
    /// Where the child's error is stored.
    pub fn error_variable(&self) -> &str {
        self.save_error_to.as_deref().unwrap_or("subworkflow_error")
    }
}

/// `handoff`
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Handoff {
    /// `reason` (templated)
    pub reason: Option<String>,
    /// `context_data`: an object or a string (templated leaves).
    pub context_data: Option<Value>,
}

/// `emit_event`
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EmitEvent {
    /// `event_name`
    pub event_name: Option<String>,
    /// `properties` (templated values)
    pub properties: Option<Map>,
    /// `occurred_at` (templated; blank = now)
    pub occurred_at: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Decoding

/// The keys of a `start` config: none.
pub(super) const START_KEYS: &[&str] = &[];

/// The keys of a `wait_for_response` config.
pub(super) const WAIT_FOR_RESPONSE_KEYS: &[&str] =
    &["timeout_seconds", "has_timeout", "save_response_to"];

pub(super) fn wait_for_response(o: Obj, cx: &mut Cx) -> WaitForResponse {
    WaitForResponse {
        timeout_seconds: o.number(cx, "timeout_seconds"),
        has_timeout: o.bool(cx, "has_timeout"),
        save_response_to: o.str(cx, "save_response_to"),
    }
}

/// The keys of a `decide` config.
pub(super) const DECIDE_KEYS: &[&str] = keys![
    &["decision_type", "conditions"],
    MODEL_REF_KEYS,
    &["llm_temperature", "llm_max_tokens", "llm_configuration"],
    FUNCTION_REF_KEYS,
];

/// The keys of a decide condition.
pub(super) const CONDITION_KEYS: &[&str] = &["label", "description", "id"];

pub(super) fn decide(o: Obj, cx: &mut Cx) -> Decide {
    let conditions = o.objects(cx, "conditions").map(|items| {
        items
            .into_iter()
            .map(|(i, m)| {
                let c = o.item("conditions", i, m);
                c.unknown_keys(cx, CONDITION_KEYS, "condition");
                Condition {
                    label: c.str(cx, "label"),
                    description: c.str(cx, "description"),
                    id: c.str(cx, "id"),
                }
            })
            .collect()
    });
    let llm_configuration = o.object(cx, "llm_configuration").cloned();
    let instructions = llm_configuration
        .as_ref()
        .and_then(|m| o.child("llm_configuration", m).str(cx, "instructions"));
    Decide {
        decision_type: o.enumeration(
            cx,
            "decision_type",
            &["ai", "function"],
            &[DecisionType::Ai, DecisionType::Function],
        ),
        conditions,
        model: model_ref(o, cx),
        llm_temperature: o.number(cx, "llm_temperature"),
        llm_max_tokens: o.integer(cx, "llm_max_tokens"),
        llm_configuration,
        instructions,
        function: function_ref(o, cx),
    }
}

/// The keys of a `set_variable` config.
pub(super) const SET_VARIABLE_KEYS: &[&str] = &["variable_name", "variable_value", "value_type"];

pub(super) fn set_variable(o: Obj, cx: &mut Cx) -> SetVariable {
    SetVariable {
        variable_name: o.str(cx, "variable_name"),
        variable_value: o.get("variable_value").cloned(),
        value_type: o.enumeration(
            cx,
            "value_type",
            &["string", "number", "boolean", "json"],
            &[
                ValueType::String,
                ValueType::Number,
                ValueType::Boolean,
                ValueType::Json,
            ],
        ),
    }
}

/// The keys of a `call` config.
pub(super) const CALL_KEYS: &[&str] = keys![FLOW_REF_KEYS, &["save_error_to"]];

pub(super) fn call(o: Obj, cx: &mut Cx) -> Call {
    Call {
        workflow: flow_ref(o, cx),
        save_error_to: o.str(cx, "save_error_to"),
    }
}

/// The keys of a `handoff` config.
pub(super) const HANDOFF_KEYS: &[&str] = &["reason", "context_data"];

pub(super) fn handoff(o: Obj, cx: &mut Cx) -> Handoff {
    Handoff {
        reason: o.str(cx, "reason"),
        context_data: match o.get("context_data") {
            Some(v @ (Value::Object(_) | Value::String(_))) => Some(v.clone()),
            Some(_) => {
                o.wrong_type(cx, "context_data", "object or string");
                None
            }
            None => None,
        },
    }
}

/// The keys of an `emit_event` config.
pub(super) const EMIT_EVENT_KEYS: &[&str] = &["event_name", "properties", "occurred_at"];

pub(super) fn emit_event(o: Obj, cx: &mut Cx) -> EmitEvent {
    EmitEvent {
        event_name: o.str(cx, "event_name"),
        properties: o.object(cx, "properties").cloned(),
        occurred_at: o.str(cx, "occurred_at"),
    }
}
