//! The message-sending nodes: `send_text`, `send_template` and `send_interactive`, with the
//! sender keys they share, and their decoders.

use super::{AI_FIELDS_KEYS, AiField, MODEL_REF_KEYS, ModelRef, TextField, ai_fields, model_ref};
use crate::decode::{Cx, Obj};
use crate::value::Value;

/// The keys shared by the three sending nodes (flow-format §7), plus AI-field settings.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sender {
    /// `phone_number_id`
    pub phone_number_id: Option<String>,
    /// `whatsapp_config_id`
    pub whatsapp_config_id: Option<String>,
    /// `to_phone_number` (templated)
    pub to_phone_number: Option<String>,
    /// The model that generates AI fields.
    pub model: ModelRef,
    /// `ai_field_config`, in file order.
    pub ai_fields: Vec<AiField>,
}

/// `send_text`
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SendText {
    /// `message`
    pub message: Option<TextField>,
    /// `delay_seconds`
    pub delay_seconds: Option<f64>,
    /// Sender keys.
    pub sender: Sender,
}

/// `send_template`
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SendTemplate {
    /// `template_id`
    pub template_id: Option<String>,
    /// `parameters` (alias `template_params`): an object, an array, or an AI marker.
    pub parameters: Option<Value>,
    /// Sender keys.
    pub sender: Sender,
}

/// `interactive_type`
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InteractiveType {
    /// Reply buttons.
    Button,
    /// A list message.
    List,
    /// A call-to-action URL button.
    CtaUrl,
    /// A WhatsApp Flow.
    Flow,
    /// A location request.
    LocationRequestMessage,
    /// Recognised Kapso value that Switchboard does not send.
    Product,
    /// Recognised Kapso value that Switchboard does not send.
    ProductList,
    /// Recognised Kapso value that Switchboard does not send.
    CatalogMessage,
}

impl InteractiveType {
    const NAMES: &'static [&'static str] = &[
        "button",
        "list",
        "cta_url",
        "flow",
        "location_request_message",
        "product",
        "product_list",
        "catalog_message",
    ];
    const VALUES: &'static [InteractiveType] = &[
        InteractiveType::Button,
        InteractiveType::List,
        InteractiveType::CtaUrl,
        InteractiveType::Flow,
        InteractiveType::LocationRequestMessage,
        InteractiveType::Product,
        InteractiveType::ProductList,
        InteractiveType::CatalogMessage,
    ];

    /// The spelling in files.
    pub fn as_str(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    /// `true` for the types Switchboard sends.
    pub fn is_supported(self) -> bool {
        !matches!(
            self,
            InteractiveType::Product
                | InteractiveType::ProductList
                | InteractiveType::CatalogMessage
        )
    }
}

/// `header_type`
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderType {
    /// No header.
    None,
    /// A text header.
    Text,
    /// An image header.
    Image,
    /// A video header.
    Video,
    /// A document header.
    Document,
}

impl HeaderType {
    const NAMES: &'static [&'static str] = &["none", "text", "image", "video", "document"];
    const VALUES: &'static [HeaderType] = &[
        HeaderType::None,
        HeaderType::Text,
        HeaderType::Image,
        HeaderType::Video,
        HeaderType::Document,
    ];

    /// The spelling in files.
    pub fn as_str(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    /// `true` for image, video and document headers.
    pub fn is_media(self) -> bool {
        matches!(
            self,
            HeaderType::Image | HeaderType::Video | HeaderType::Document
        )
    }
}

/// `flow_action`
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlowAction {
    /// `navigate` (default)
    Navigate,
    /// `data_exchange`
    DataExchange,
}

/// A reply button.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Button {
    /// `id`
    pub id: Option<String>,
    /// `title` (templated)
    pub title: Option<String>,
}

/// A list section.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ListSection {
    /// `title` (templated)
    pub title: Option<String>,
    /// `rows`
    pub rows: Vec<ListRow>,
}

/// A list row.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ListRow {
    /// `id`
    pub id: Option<String>,
    /// `title` (templated)
    pub title: Option<String>,
    /// `description` (templated)
    pub description: Option<String>,
}

/// `flow_action_payload`
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FlowActionPayload {
    /// `screen`: the first screen id.
    pub screen: Option<String>,
    /// `data` (templated leaves)
    pub data: Option<Value>,
}

/// `send_interactive`
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SendInteractive {
    /// `interactive_type`
    pub interactive_type: Option<InteractiveType>,
    /// `body_text`
    pub body_text: Option<TextField>,
    /// `header_type` as written (see [`SendInteractive::effective_header_type`]).
    pub header_type: Option<HeaderType>,
    /// `header_text`
    pub header_text: Option<TextField>,
    /// `header_media_url`
    pub header_media_url: Option<String>,
    /// `footer_text`
    pub footer_text: Option<TextField>,
    /// `buttons` (button)
    pub buttons: Option<Vec<Button>>,
    /// `list_button_text` (list)
    pub list_button_text: Option<String>,
    /// `list_sections` (list)
    pub list_sections: Option<Vec<ListSection>>,
    /// `cta_display_text` (cta_url)
    pub cta_display_text: Option<String>,
    /// `cta_url` (cta_url)
    pub cta_url: Option<String>,
    /// `flow_id` (flow)
    pub flow_id: Option<String>,
    /// `flow_cta` (flow)
    pub flow_cta: Option<String>,
    /// `flow_token` (flow)
    pub flow_token: Option<String>,
    /// `flow_action` (flow)
    pub flow_action: Option<FlowAction>,
    /// `flow_action_payload` (flow)
    pub flow_action_payload: Option<FlowActionPayload>,
    /// Sender keys.
    pub sender: Sender,
}

impl SendInteractive {
    /// `header_type`, defaulting to `text` when `header_text` is set and `none` otherwise.
    pub fn effective_header_type(&self) -> HeaderType {
        self.header_type.unwrap_or(if self.header_text.is_some() {
            HeaderType::Text
        } else {
            HeaderType::None
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Decoding

/// The keys of a `send_text` config.
pub(super) const SEND_TEXT_KEYS: &[&str] = keys![&["message", "delay_seconds"], SENDER_KEYS];

pub(super) fn send_text(o: Obj, cx: &mut Cx) -> SendText {
    SendText {
        message: o.text(cx, "message"),
        delay_seconds: o.number(cx, "delay_seconds"),
        sender: sender(o, cx),
    }
}

/// The keys of a `send_template` config.
pub(super) const SEND_TEMPLATE_KEYS: &[&str] = keys![
    &["template_id", "parameters", "template_params"],
    SENDER_KEYS
];

pub(super) fn send_template(o: Obj, cx: &mut Cx) -> SendTemplate {
    let key = o.alias(cx, "parameters", "template_params");
    let parameters = match o.get(key) {
        Some(v @ (Value::Object(_) | Value::Array(_))) => Some(v.clone()),
        Some(_) => {
            o.wrong_type(cx, key, "object or array");
            None
        }
        None => None,
    };
    SendTemplate {
        template_id: o.str(cx, "template_id"),
        parameters,
        sender: sender(o, cx),
    }
}

/// The keys [`sender`] reads: those shared by the three sending nodes.
const SENDER_KEYS: &[&str] = keys![
    &["phone_number_id", "whatsapp_config_id", "to_phone_number"],
    MODEL_REF_KEYS,
    AI_FIELDS_KEYS,
];

fn sender(o: Obj, cx: &mut Cx) -> Sender {
    Sender {
        phone_number_id: o.str(cx, "phone_number_id"),
        whatsapp_config_id: o.str(cx, "whatsapp_config_id"),
        to_phone_number: o.str(cx, "to_phone_number"),
        model: model_ref(o, cx),
        ai_fields: ai_fields(o, cx),
    }
}

/// The keys of a `send_interactive` config.
pub(super) const SEND_INTERACTIVE_KEYS: &[&str] = keys![
    &[
        "interactive_type",
        "body_text",
        "header_type",
        "header_text",
        "header_media_url",
        "footer_text",
        "buttons",
        "list_button_text",
        "list_sections",
        "cta_display_text",
        "cta_url",
        "flow_id",
        "flow_cta",
        "flow_token",
        "flow_action",
        "flow_action_payload",
    ],
    SENDER_KEYS,
];

/// The keys of a reply button.
pub(super) const BUTTON_KEYS: &[&str] = &["id", "title"];

/// The keys of a list section.
pub(super) const LIST_SECTION_KEYS: &[&str] = &["title", "rows"];

/// The keys of a list row.
pub(super) const LIST_ROW_KEYS: &[&str] = &["id", "title", "description"];

pub(super) fn send_interactive(o: Obj, cx: &mut Cx) -> SendInteractive {
    let buttons = o.objects(cx, "buttons").map(|items| {
        items
            .into_iter()
            .map(|(i, m)| {
                let b = o.item("buttons", i, m);
                b.unknown_keys(cx, BUTTON_KEYS, "button");
                Button {
                    id: b.str(cx, "id"),
                    title: b.str(cx, "title"),
                }
            })
            .collect()
    });
    let list_sections = o.objects(cx, "list_sections").map(|items| {
        items
            .into_iter()
            .map(|(i, m)| {
                let s = o.item("list_sections", i, m);
                s.unknown_keys(cx, LIST_SECTION_KEYS, "list section");
                let rows = s
                    .objects(cx, "rows")
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(j, rm)| {
                        let r = s.item("rows", j, rm);
                        r.unknown_keys(cx, LIST_ROW_KEYS, "list row");
                        ListRow {
                            id: r.str(cx, "id"),
                            title: r.str(cx, "title"),
                            description: r.str(cx, "description"),
                        }
                    })
                    .collect();
                ListSection {
                    title: s.str(cx, "title"),
                    rows,
                }
            })
            .collect()
    });
    let flow_action_payload = o.object(cx, "flow_action_payload").map(|m| {
        let f = o.child("flow_action_payload", m);
        FlowActionPayload {
            screen: f.str(cx, "screen"),
            data: f.object(cx, "data").cloned().map(Value::Object),
        }
    });
    SendInteractive {
        interactive_type: o.enumeration(
            cx,
            "interactive_type",
            InteractiveType::NAMES,
            InteractiveType::VALUES,
        ),
        body_text: o.text(cx, "body_text"),
        header_type: o.enumeration(cx, "header_type", HeaderType::NAMES, HeaderType::VALUES),
        header_text: o.text(cx, "header_text"),
        header_media_url: o.str(cx, "header_media_url"),
        footer_text: o.text(cx, "footer_text"),
        buttons,
        list_button_text: o.str(cx, "list_button_text"),
        list_sections,
        cta_display_text: o.str(cx, "cta_display_text"),
        cta_url: o.str(cx, "cta_url"),
        flow_id: o.str(cx, "flow_id"),
        flow_cta: o.str(cx, "flow_cta"),
        flow_token: o.str(cx, "flow_token"),
        flow_action: o.enumeration(
            cx,
            "flow_action",
            &["navigate", "data_exchange"],
            &[FlowAction::Navigate, FlowAction::DataExchange],
        ),
        flow_action_payload,
        sender: sender(o, cx),
    }
}
