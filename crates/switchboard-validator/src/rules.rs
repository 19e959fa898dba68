//! The rule catalogue: every rule name with its severity, as in `validation-rules.md`.
//!
//! Rule names are stable API: never rename or reuse one. `docs/diagnostics.md` has one entry per
//! rule (a test keeps the two in step).

use crate::Severity;

/// A validation rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    /// The kebab-case name.
    pub name: &'static str,
    /// The severity of its diagnostics (`loop-without-wait` reports errors and warnings; its
    /// catalogue severity is the stronger one).
    pub severity: Severity,
    /// What it checks, in one line.
    pub summary: &'static str,
}

macro_rules! rules {
    ($($id:ident = $name:literal, $sev:ident, $summary:literal;)*) => {
        $(
            #[doc = concat!("`", $name, "`: see the catalogue (`", $summary, "`).")]
            pub const $id: Rule = Rule { name: $name, severity: Severity::$sev, summary: $summary };
        )*
        /// Every rule, in catalogue order.
        pub const RULES: &[Rule] = &[$($id),*];
    };
}

/// The rule with this name.
pub fn by_name(name: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.name == name)
}

rules! {
    INVALID_DOCUMENT = "invalid-document", Error, "not parseable as JSON/YAML; root not an object; duplicate keys; several YAML documents; YAML tags, merge keys, NaN/Inf";
    UNKNOWN_SHAPE = "unknown-shape", Error, "after unwrapping a flow/workflow envelope, neither a definition object nor a nodes array";
    INVALID_FIELD_TYPE = "invalid-field-type", Error, "a known key holds the wrong JSON type (nodes not an array, config not an object, label not a string, buttons not an array, a number field not numeric, …)";
    EMPTY_FLOW = "empty-flow", Error, "no nodes";
    DUPLICATE_NODE_ID = "duplicate-node-id", Error, "two nodes share an id";
    INVALID_NODE_ID = "invalid-node-id", Error, "id empty or not matching ^[A-Za-z][A-Za-z0-9_-]*$";
    MISSING_START = "missing-start", Error, "no node of type start";
    MULTIPLE_STARTS = "multiple-starts", Error, "more than one start node";
    START_ID_NOT_START = "start-id-not-start", Warning, "the start node's id is not start (required by current Kapso tooling, not by the SDK)";
    START_HAS_NO_EDGE = "start-has-no-edge", Error, "the start node has no outgoing edge";
    UNKNOWN_NODE_TYPE = "unknown-node-type", Error, "data.node_type missing or not one of the 13 types and not a known unsupported type (§10)";
    UNKNOWN_CONFIG_KEY = "unknown-config-key", Warning, "a config (or tool, button, row, section) key not defined for its node type after alias resolution; the key is kept";
    CONFLICTING_ALIAS = "conflicting-alias", Warning, "both keys of an alias pair present with different values; the canonical key wins";
    MISSING_REQUIRED_FIELD = "missing-required-field", Error, "a required key absent, null or \"\" (per-type lists below)";
    INVALID_ENUM_VALUE = "invalid-enum-value", Error, "a value outside its set: interactive_type, header_type, decision_type, value_type, flow_action, reasoning_effort, message_delivery_mode, ai_field_config.*.mode, entries of enabled_default_tools";
    UNSUPPORTED_INTERACTIVE_TYPE = "unsupported-interactive-type", Error, "interactive_type is product, product_list or catalog_message (documented by Kapso, not sent by Switchboard)";
    IGNORED_FEATURE = "ignored-feature", Warning, "a kept but unsupported feature is switched on: sandbox_enabled: true, non-empty flow_agent_resources or flow_agent_app_integration_tools";
    VALUE_OUT_OF_RANGE = "value-out-of-range", Error, "a number not finite or out of range: temperature, llm_temperature 0–2; max_iterations, max_tokens, llm_max_tokens ≥ 1; delay_seconds ≥ 0";
    INVALID_JSON_STRING = "invalid-json-string", Error, "an object-or-JSON-string field holds a string that is not JSON of the expected type";
    INVALID_VARIABLE_NAME = "invalid-variable-name", Error, "save_response_to, save_error_to or variable_name not matching ^[A-Za-z_][A-Za-z0-9_]*$ (a dotted name is not a path)";
    RESERVED_VARIABLE_NAME = "reserved-variable-name", Error, "one of those names is vars, system, context, metadata or last_user_input";
    INVALID_SET_VARIABLE_TYPE = "invalid-set-variable-type", Error, "a variable_value without template blocks cannot be coerced to value_type (runtime-semantics §7.7)";
    INVALID_TIMEOUT = "invalid-timeout", Error, "an armed wait timeout is not an integer in 10..=604800, or has_timeout: true without timeout_seconds";
    INVALID_HTTP_METHOD = "invalid-http-method", Error, "webhook method or tool http_method not in GET, POST, PUT, PATCH, DELETE (any case)";
    INVALID_URL = "invalid-url", Error, "webhook.url, tool/MCP url, cta_url or header_media_url is not an absolute http/https URL";
    WEBHOOK_BODY_IGNORED = "webhook-body-ignored", Warning, "body_template on a GET webhook (never sent)";
    UNKNOWN_EDGE_ENDPOINT = "unknown-edge-endpoint", Error, "source or target is not a node id";
    EMPTY_EDGE_LABEL = "empty-edge-label", Error, "label is \"\"";
    DUPLICATE_EDGE_LABEL = "duplicate-edge-label", Error, "two edges leave the same node with the same label";
    AMBIGUOUS_NEXT = "ambiguous-next", Error, "a non-decide node (start included) has more than one outgoing edge besides one labelled error";
    UNEXPECTED_EDGE_LABEL = "unexpected-edge-label", Warning, "a non-decide edge label other than next/error (still followed; legacy files use response)";
    USELESS_ERROR_EDGE = "useless-error-edge", Warning, "an error edge on a node that never takes it: start, wait_for_response, set_variable, emit_event";
    HANDOFF_HAS_EDGES = "handoff-has-edges", Warning, "a handoff node has outgoing edges (never followed)";
    DECIDE_WITHOUT_CONDITIONS = "decide-without-conditions", Error, "conditions absent or empty";
    DUPLICATE_CONDITION_LABEL = "duplicate-condition-label", Error, "two conditions share a label";
    DECIDE_LABEL_MISMATCH = "decide-label-mismatch", Error, "an outgoing edge label is not a condition label";
    CONDITION_WITHOUT_EDGE = "condition-without-edge", Warning, "a condition has no outgoing edge; if it is chosen the execution ends";
    INVALID_FLOW_CONDITION_ID = "invalid-flow-condition-id", Warning, "an edge's flow_condition_id names no conditions[].id of its source (routing uses labels)";
    MISSING_FUNCTION = "missing-function", Error, "a function node, or a decide with decision_type: \"function\", has neither function_id nor function_slug";
    MISSING_MODEL = "missing-model", Error, "an AI decide, an agent, or a node with an AI field has neither provider_model_id nor provider_model_name";
    AI_FIELD_WITHOUT_PROMPT = "ai-field-without-prompt", Error, "a {\"$ai\": {}} marker with no ai_field_config entry at its path, or an empty prompt";
    ORPHAN_AI_FIELD_CONFIG = "orphan-ai-field-config", Warning, "an ai_field_config path that does not point at a marker";
    UNSUPPORTED_AI_FIELD = "unsupported-ai-field", Error, "a marker outside the locations of flow-format §6";
    INVALID_TEMPLATE = "invalid-template", Error, "a Jinja syntax error in a templated field, AI prompt or system_prompt";
    EXPENSIVE_TEMPLATE = "expensive-template", Warning, "a template visibly does more than 10 000 steps at once: nested loops over literal range(n) multiplying past it, or a literal range(n) or repetition * n above it (runtime limits would fail the node)";
    INVALID_SECRET_REFERENCE = "invalid-secret-reference", Error, "${ENV: not followed by a name matching [A-Za-z_][A-Za-z0-9_]* and }";
    SECRET_IN_OUTBOUND_MESSAGE = "secret-in-outbound-message", Warning, "${ENV:…} in a send_* field, an AI prompt or an agent system_prompt (it would reach the user or the model)";
    WRONG_NAMESPACE = "wrong-namespace", Warning, "a bare name that is a context or system key — phone_number, channel, conversation_id, contact (→ context.…); flow_id, workflow_id, flow_name, started_at, trigger_type, tracking_id, execution_id, last_resume, whatsapp_config (→ system.…) — unless it is declared in metadata.input_variables or written by some node";
    POSSIBLY_UNDEFINED_VARIABLE = "possibly-undefined-variable", Warning, "a template reads a variable that is not defined on every path from start to the reading node (§9.3)";
    TEXT_TOO_LONG = "text-too-long", Error, "send_text.message > 4096";
    BODY_TOO_LONG = "body-too-long", Error, "body_text > 1024 for button, cta_url, flow, location_request_message; > 4096 for list";
    HEADER_TOO_LONG = "header-too-long", Error, "header_text > 60";
    FOOTER_TOO_LONG = "footer-too-long", Error, "footer_text > 60";
    LIST_HEADER_NOT_TEXT = "list-header-not-text", Error, "a list with header_type image, video or document";
    BUTTON_COUNT = "button-count", Error, "buttons has 0 or more than 3 entries";
    BUTTON_TITLE_TOO_LONG = "button-title-too-long", Error, "a button title > 20";
    DUPLICATE_BUTTON_ID = "duplicate-button-id", Error, "two buttons share an id";
    BUTTON_ID_TOO_LONG = "button-id-too-long", Error, "a button id > 256";
    LIST_SECTION_COUNT = "list-section-count", Error, "0 or more than 10 sections";
    LIST_ROW_COUNT = "list-row-count", Error, "0 or more than 10 rows over all sections, or a section without rows";
    LIST_ROW_TITLE_TOO_LONG = "list-row-title-too-long", Error, "a row title > 24";
    LIST_ROW_DESCRIPTION_TOO_LONG = "list-row-description-too-long", Error, "a row description > 72";
    LIST_ROW_ID_TOO_LONG = "list-row-id-too-long", Error, "a row id > 200";
    DUPLICATE_ROW_ID = "duplicate-row-id", Error, "two rows share an id (across sections)";
    LIST_SECTION_TITLE_TOO_LONG = "list-section-title-too-long", Error, "a section title > 24";
    LIST_SECTION_TITLE_MISSING = "list-section-title-missing", Error, "more than one section and one lacks a title";
    LIST_BUTTON_TEXT_TOO_LONG = "list-button-text-too-long", Error, "list_button_text > 20";
    CTA_DISPLAY_TEXT_TOO_LONG = "cta-display-text-too-long", Error, "cta_display_text > 20";
    FLOW_CTA_TOO_LONG = "flow-cta-too-long", Warning, "flow_cta > 20 (Meta's older hard limit; newer guidance allows up to 30)";
    FLOW_NAVIGATE_WITHOUT_SCREEN = "flow-navigate-without-screen", Error, "flow_action navigate (the default) without flow_action_payload.screen";
    INVALID_JSON_SCHEMA = "invalid-json-schema", Error, "body_schema or input_schema is not a valid JSON Schema (draft 2020-12) or its top-level type is not object";
    INVALID_JMESPATH = "invalid-jmespath", Error, "jmespath_query does not compile";
    INVALID_TOOL_NAME = "invalid-tool-name", Error, "a tool name not matching ^[A-Za-z0-9_-]{1,64}$";
    DUPLICATE_TOOL_NAME = "duplicate-tool-name", Error, "two tools of one agent share a name, built-in names included";
    AGENT_CANNOT_COMPLETE = "agent-cannot-complete", Warning, "an agent has an outgoing non-error edge but enabled_default_tools lacks complete_task";
    UNRESOLVED_REFERENCE = "unresolved-reference", Error, "with registries: a function, called flow, model or template that does not exist";
    CALL_CYCLE = "call-cycle", Error, "a call whose target is the flow itself (its id or slug, when known); with a flow registry, any cycle of calls across flows";
    INVALID_EVENT_NAME = "invalid-event-name", Error, "event_name not matching ^[a-z][a-z0-9_]*(\\.[a-z][a-z0-9_]*)*$ or longer than 128";
    INVALID_EVENT_PROPERTIES = "invalid-event-properties", Error, "more than 25 keys; more than 8 KiB as JSON; an empty key or one longer than 64; a non-scalar or non-finite value; a string value over 1024 bytes";
    EMIT_EVENT_BUDGET = "emit-event-budget", Warning, "more than 10 emit_event nodes, more than 3 with the same event_name, or an emit_event node on a cycle (limits: 10 emits per execution, 3 per name)";
    UNREACHABLE_NODE = "unreachable-node", Warning, "a node not reachable from start (§9.1)";
    DEAD_END = "dead-end", Warning, "a reachable node with no outgoing non-error edge whose work is thrown away when the execution ends right after it: a wait_for_response, a set_variable, or a function/webhook with save_response_to (final messages, handoff, agent, call, emit_event are normal ends)";
    LOOP_WITHOUT_WAIT = "loop-without-wait", Error, "a cycle without a wait_for_response or agent node: error when it has no exit and no call node, warning otherwise (§9.2)";
    UNSUPPORTED_NODE_TYPE = "unsupported-node-type", Warning, "a node type Kapso defines that Switchboard does not run (pipedream); the node fails with unsupported_node when reached";
    INVALID_WORKFLOW_FILE = "invalid-workflow-file", Error, "workflow.yaml: not a mapping, unknown key, wrong type, slug not kebab-case or not the folder name, status not draft/active/paused";
    INVALID_TRIGGER = "invalid-trigger", Error, "a trigger with an unknown triggerType, inbound_message without phoneNumberId, whatsapp_event with a missing or unknown event, a project_event filter with only some of its three keys or a numeric operator on a non-number";
    UNSUPPORTED_TRIGGER = "unsupported-trigger", Warning, "a whatsapp_event or project_event trigger (accepted, not yet run)";
    DUPLICATE_INBOUND_TRIGGER = "duplicate-inbound-trigger", Error, "two active workflows (status active) with active inbound_message triggers on the same phoneNumberId";
    MISSING_DEFINITION = "missing-definition", Error, "the definition file of a workflow.yaml does not exist (hint: run kapso build)";
    STALE_DEFINITION = "stale-definition", Warning, "workflow.js differs from the remote map's generatedSource.hash, or a workflow.ts exists: definition.json may not match the source (hint: kapso build)";
    MODEL_ID_UNMAPPED = "model-id-unmapped", Warning, "a node names its model only by provider_model_id and no model map resolves it";
}
