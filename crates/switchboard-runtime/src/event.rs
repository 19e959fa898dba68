//! Execution events (runtime-semantics §9): an append-only record per execution.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::time::Timestamp;

macro_rules! event_types {
    ($($variant:ident = $name:literal),* $(,)?) => {
        /// The event types of runtime-semantics §9.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        #[non_exhaustive]
        pub enum EventType {
            $(#[doc = concat!("`", $name, "`")] $variant),*
        }

        impl EventType {
            /// Every event type.
            pub const ALL: &'static [EventType] = &[$(EventType::$variant),*];

            /// The spelling in records and the API.
            pub fn as_str(self) -> &'static str {
                match self { $(EventType::$variant => $name),* }
            }

            /// Parses a spelling.
            pub fn parse(s: &str) -> Option<EventType> {
                match s { $($name => Some(EventType::$variant),)* _ => None }
            }
        }
    };
}

event_types! {
    ExecutionStarted = "execution_started",
    ExecutionEnded = "execution_ended",
    ExecutionFailed = "execution_failed",
    ExecutionHandoff = "execution_handoff",
    StatusChanged = "status_changed",
    StepEntered = "step_entered",
    StepCompleted = "step_completed",
    StepFailed = "step_failed",
    ActionPreparing = "action_preparing",
    ActionExecuting = "action_executing",
    ActionPerformed = "action_performed",
    ActionFailed = "action_failed",
    DecisionEvaluating = "decision_evaluating",
    DecisionEvaluated = "decision_evaluated",
    VariablesSet = "variables_set",
    AiFieldResolving = "ai_field_resolving",
    AiFieldResolved = "ai_field_resolved",
    UserInputReceived = "user_input_received",
    WaitTimeout = "wait_timeout",
    TemplateVariableMissing = "template_variable_missing",
    InboundIgnored = "inbound_ignored",
    AgentToolCalled = "agent_tool_called",
    AgentTurnEnded = "agent_turn_ended",
    CallStarted = "call_started",
    CallReturned = "call_returned",
    NodeJumped = "node_jumped",
    ProjectEventEmitted = "project_event_emitted",
    MessageStatus = "message_status",
}

/// One event record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Event id (`<execution id>:<seq>`).
    pub id: String,
    /// The execution.
    pub execution_id: String,
    /// 1, 2, … per execution.
    pub seq: u64,
    /// Type.
    pub event_type: EventType,
    /// When.
    pub created_at: Timestamp,
    /// The node, when it concerns one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_id: Option<String>,
    /// The edge label followed, for `step_completed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edge_label: Option<String>,
    /// Payload (redacted).
    pub payload: Value,
}
