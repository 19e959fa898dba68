//! Engine settings: deployment configuration that is not a flow's own (history window, model
//! map, limits
//! overriding every flow's settings, the business number, the service window check, how sends
//! are delayed and when an interrupted send is tried again, the bounds on template evaluation).

use crate::template::TemplateLimits;

/// How `send_text`'s `delay_seconds` waits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Delays {
    /// The send is committed as scheduled and the turn stops there; the execution stays
    /// `running` (queued input waits) until a worker finds it due and continues the turn. The
    /// delay survives a restart and holds nothing while it runs.
    #[default]
    Schedule,
    /// The turn sleeps on the engine's clock and goes on. For tools on a manual clock (chat,
    /// conversation scripts), where time moves only when told to.
    Sleep,
}

/// Engine settings.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Conversation messages kept (default 100): all of them go to function payloads'
    /// `whatsapp_context`, the last 20 to prompts and agents.
    pub history_window: usize,
    /// Overrides every flow's `max_steps_per_turn` (deployment configuration).
    pub max_steps_per_turn: Option<i64>,
    /// Overrides every flow's `message_debounce_seconds`.
    pub message_debounce_seconds: Option<f64>,
    /// The business number used when a request names none.
    pub default_phone_number_id: String,
    /// The business number's display number (`system.whatsapp_config`).
    pub display_phone_number: Option<String>,
    /// Fail `send_text`/`send_interactive` outside the 24-hour service window (default true).
    /// Turn it off only where the window is enforced elsewhere, or in benchmarks and tests that
    /// start conversations through the API.
    pub enforce_service_window: bool,
    /// How `delay_seconds` waits (default: scheduled in the store).
    pub delays: Delays,
    /// The model map (`[llm] models`): a node naming its model only by `provider_model_id` (a
    /// Kapso uuid) uses the name mapped here; unmapped, it fails with `model_not_found`. A
    /// `provider_model_name` always names the model itself.
    pub model_ids: std::collections::BTreeMap<String, String>,
    /// A send interrupted by a crash (committed as being sent, outcome unknown) is tried again
    /// after this many milliseconds unless a delivery status names it first (default 60 000).
    pub resend_after_ms: i64,
    /// Bounds on every template evaluation: fuel, rendered size, recursion.
    pub templates: TemplateLimits,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            history_window: 100,
            max_steps_per_turn: None,
            message_debounce_seconds: None,
            default_phone_number_id: "default".to_owned(),
            display_phone_number: None,
            enforce_service_window: true,
            delays: Delays::default(),
            resend_after_ms: 60_000,
            model_ids: std::collections::BTreeMap::new(),
            templates: TemplateLimits::default(),
        }
    }
}
