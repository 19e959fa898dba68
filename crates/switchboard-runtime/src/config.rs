//! Engine settings: deployment configuration that is not a flow's own (history window, limits
//! overriding every flow's settings, the business number, the service window check, the bounds
//! on template evaluation).

use crate::template::TemplateLimits;

/// Engine settings.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Conversation messages kept for prompts and function payloads (default 20).
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
    /// Bounds on every template evaluation: fuel, rendered size, recursion.
    pub templates: TemplateLimits,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            history_window: 20,
            max_steps_per_turn: None,
            message_debounce_seconds: None,
            default_phone_number_id: "default".to_owned(),
            display_phone_number: None,
            enforce_service_window: true,
            templates: TemplateLimits::default(),
        }
    }
}
