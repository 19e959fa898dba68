//! WhatsApp message limits (validation-rules §7).
//!
//! Checks the sizes Meta's Cloud API enforces on `send_text` and `send_interactive` messages:
//! text, body, header and footer lengths, reply-button and list-message shapes (counts, title,
//! description and id lengths, unique ids, section titles), the list button, CTA and Flow labels,
//! and the Flow `navigate` action's first screen. Only the keys of the node's `interactive_type`
//! are checked (keys of another type are ignored silently), and nothing is checked when the type
//! is missing, invalid or unsupported (reported elsewhere). Lengths count characters; templated
//! text is measured without its `{{ … }}`/`{% … %}` blocks (§0), ids are never templated.
//! Absent keys are `missing-required-field`'s business, values of the wrong type
//! `invalid-field-type`'s; both are skipped here.

use rustc_hash::FxHashMap as HashMap;
use std::collections::hash_map::Entry;

use switchboard_model::config::{
    FlowAction, HeaderType, InteractiveType, SendInteractive, SendText, TextField,
};
use switchboard_model::{Map, NodeConfig, Value};

use crate::context::Ctx;
use crate::rules::{self, Rule};
use crate::util::{char_len, excerpt, has_template, static_len};

/// Longest `send_text.message`.
const TEXT_MAX: usize = 4096;
/// Longest `body_text` of button, CTA URL, Flow and location request messages.
const BODY_MAX: usize = 1024;
/// Longest `body_text` of a list message.
const LIST_BODY_MAX: usize = 4096;
/// Longest `header_text` and `footer_text`.
const HEADER_FOOTER_MAX: usize = 60;
/// Most reply buttons.
const BUTTONS_MAX: usize = 3;
/// Longest button title.
const BUTTON_TITLE_MAX: usize = 20;
/// Longest button id.
const BUTTON_ID_MAX: usize = 256;
/// Most list sections.
const SECTIONS_MAX: usize = 10;
/// Most list rows over all sections.
const ROWS_MAX: usize = 10;
/// Longest row title.
const ROW_TITLE_MAX: usize = 24;
/// Longest row description.
const ROW_DESCRIPTION_MAX: usize = 72;
/// Longest row id.
const ROW_ID_MAX: usize = 200;
/// Longest section title.
const SECTION_TITLE_MAX: usize = 24;
/// Longest `list_button_text`, `cta_display_text` and `flow_cta`.
const LABEL_MAX: usize = 20;

pub(crate) fn check(cx: &mut Ctx) {
    let flow = cx.flow;
    for (i, node) in flow.nodes.iter().enumerate() {
        match node.config() {
            NodeConfig::SendText(c) => send_text(cx, i, c),
            NodeConfig::SendInteractive(c) => {
                let empty = Map::new();
                send_interactive(cx, i, c, cx.config_map(i).unwrap_or(&empty));
            }
            NodeConfig::Start
            | NodeConfig::SendTemplate(_)
            | NodeConfig::WaitForResponse(_)
            | NodeConfig::Decide(_)
            | NodeConfig::Function(_)
            | NodeConfig::Webhook(_)
            | NodeConfig::SetVariable(_)
            | NodeConfig::Call(_)
            | NodeConfig::Agent(_)
            | NodeConfig::Handoff(_)
            | NodeConfig::EmitEvent(_)
            | NodeConfig::Pipedream(_)
            | NodeConfig::Unknown => {}
        }
    }
}

fn send_text(cx: &mut Ctx, i: usize, c: &SendText) {
    if let Some(TextField::Text(s)) = &c.message {
        let help = "shorten the message or split it over several send_text nodes";
        text_limit(
            cx,
            rules::TEXT_TOO_LONG,
            i,
            "/message",
            "message",
            s,
            TEXT_MAX,
            help,
        );
    }
}

fn send_interactive(cx: &mut Ctx, i: usize, c: &SendInteractive, raw: &Map) {
    let Some(ty) = c.interactive_type else { return };
    if !ty.is_supported() {
        return;
    }
    if let Some(TextField::Text(s)) = &c.body_text {
        let (max, help) = if ty == InteractiveType::List {
            (
                LIST_BODY_MAX,
                "shorten body_text to at most 4096 characters",
            )
        } else {
            (
                BODY_MAX,
                "shorten body_text to at most 1024 characters (4096 is allowed only for lists)",
            )
        };
        text_limit(
            cx,
            rules::BODY_TOO_LONG,
            i,
            "/body_text",
            "body_text",
            s,
            max,
            help,
        );
    }
    if ty != InteractiveType::LocationRequestMessage {
        // A location request sends only its body: header and footer keys are ignored.
        if c.effective_header_type() == HeaderType::Text
            && let Some(TextField::Text(s)) = &c.header_text
        {
            let help = "shorten header_text to at most 60 characters";
            let (rule, max) = (rules::HEADER_TOO_LONG, HEADER_FOOTER_MAX);
            text_limit(cx, rule, i, "/header_text", "header_text", s, max, help);
        }
        if let Some(TextField::Text(s)) = &c.footer_text {
            let help = "shorten footer_text to at most 60 characters";
            let (rule, max) = (rules::FOOTER_TOO_LONG, HEADER_FOOTER_MAX);
            text_limit(cx, rule, i, "/footer_text", "footer_text", s, max, help);
        }
    }
    match ty {
        InteractiveType::Button => buttons(cx, i, raw),
        InteractiveType::List => {
            if let Some(h) = c.header_type.filter(|h| h.is_media()) {
                cx.at_config(
                    rules::LIST_HEADER_NOT_TEXT,
                    i,
                    "/header_type",
                    format!("a list message cannot have a `{}` header", h.as_str()),
                    "use a text header (`header_type: text`) or none; lists do not allow media headers",
                );
            }
            if let Some(s) = &c.list_button_text {
                let help = "shorten list_button_text to at most 20 characters";
                let (rule, max) = (rules::LIST_BUTTON_TEXT_TOO_LONG, LABEL_MAX);
                text_limit(
                    cx,
                    rule,
                    i,
                    "/list_button_text",
                    "list_button_text",
                    s,
                    max,
                    help,
                );
            }
            list_sections(cx, i, raw);
        }
        InteractiveType::CtaUrl => {
            if let Some(s) = &c.cta_display_text {
                let help = "shorten cta_display_text to at most 20 characters";
                let (rule, max) = (rules::CTA_DISPLAY_TEXT_TOO_LONG, LABEL_MAX);
                text_limit(
                    cx,
                    rule,
                    i,
                    "/cta_display_text",
                    "cta_display_text",
                    s,
                    max,
                    help,
                );
            }
        }
        InteractiveType::Flow => {
            if let Some(s) = &c.flow_cta {
                let help = "shorten flow_cta to at most 20 characters; longer labels may be \
                            rejected by older WhatsApp clients";
                let (rule, max) = (rules::FLOW_CTA_TOO_LONG, LABEL_MAX);
                text_limit(cx, rule, i, "/flow_cta", "flow_cta", s, max, help);
            }
            flow_screen(cx, i, c, raw);
        }
        _ => {}
    }
}

/// `buttons`: count, titles, ids.
fn buttons(cx: &mut Ctx, i: usize, raw: &Map) {
    let Some(Value::Array(items)) = raw.get("buttons") else {
        return;
    };
    if items.is_empty() {
        cx.at_config(
            rules::BUTTON_COUNT,
            i,
            "/buttons",
            "buttons is empty; a button message needs 1 to 3 buttons".to_owned(),
            "add at least one button",
        );
    } else if items.len() > BUTTONS_MAX {
        cx.at_config(
            rules::BUTTON_COUNT,
            i,
            &format!("/buttons/{BUTTONS_MAX}"),
            format!("{} buttons, more than {BUTTONS_MAX}", items.len()),
            "keep at most 3 buttons, or use a list message (up to 10 rows) for more options",
        );
    }
    let mut seen: HashMap<&str, usize> = HashMap::default();
    for (j, item) in items.iter().enumerate() {
        let Value::Object(b) = item else { continue };
        if let Some(title) = str_of(b, "title") {
            let help = "shorten the button title to at most 20 characters";
            let (rule, max) = (rules::BUTTON_TITLE_TOO_LONG, BUTTON_TITLE_MAX);
            let ptr = format!("/buttons/{j}/title");
            text_limit(cx, rule, i, &ptr, "button title", title, max, help);
        }
        if let Some(id) = str_of(b, "id") {
            let ptr = format!("/buttons/{j}/id");
            let help = "use a button id of at most 256 characters";
            id_limit(
                cx,
                rules::BUTTON_ID_TOO_LONG,
                i,
                &ptr,
                "button id",
                id,
                BUTTON_ID_MAX,
                help,
            );
            match seen.entry(id) {
                Entry::Occupied(first) => cx.at_config(
                    rules::DUPLICATE_BUTTON_ID,
                    i,
                    &ptr,
                    format!(
                        "{} is also used by buttons[{}]",
                        quote_id("button id", id),
                        first.get()
                    ),
                    "give every button its own id: the id tells which button the user tapped",
                ),
                Entry::Vacant(v) => {
                    v.insert(j);
                }
            }
        }
    }
}

/// `list_sections`: section and row counts, titles, descriptions, ids.
fn list_sections(cx: &mut Ctx, i: usize, raw: &Map) {
    let Some(Value::Array(sections)) = raw.get("list_sections") else {
        return;
    };
    if sections.is_empty() {
        cx.at_config(
            rules::LIST_SECTION_COUNT,
            i,
            "/list_sections",
            "list_sections is empty; a list message needs 1 to 10 sections".to_owned(),
            "add a section with at least one row",
        );
        return;
    }
    if sections.len() > SECTIONS_MAX {
        cx.at_config(
            rules::LIST_SECTION_COUNT,
            i,
            &format!("/list_sections/{SECTIONS_MAX}"),
            format!("{} sections, more than {SECTIONS_MAX}", sections.len()),
            "keep at most 10 sections",
        );
    }
    let total_rows: usize = sections
        .iter()
        .filter_map(|s| match s.as_object()?.get("rows")? {
            Value::Array(rows) => Some(rows.len()),
            _ => None,
        })
        .sum();
    let several = sections.len() > 1;
    let mut row_number = 0usize;
    let mut seen: HashMap<&str, (usize, usize)> = HashMap::default();
    for (s, section) in sections.iter().enumerate() {
        let Value::Object(m) = section else { continue };
        let sp = format!("/list_sections/{s}");
        match m.get("title") {
            Some(Value::String(t)) if !t.is_empty() => {
                let help = "shorten the section title to at most 24 characters";
                let (rule, max) = (rules::LIST_SECTION_TITLE_TOO_LONG, SECTION_TITLE_MAX);
                let ptr = format!("{sp}/title");
                text_limit(cx, rule, i, &ptr, "section title", t, max, help);
            }
            None | Some(Value::Null | Value::String(_)) if several => cx.at_config(
                rules::LIST_SECTION_TITLE_MISSING,
                i,
                &sp,
                format!(
                    "section list_sections[{s}] has no title; a list with {} sections needs a \
                     title on each",
                    sections.len()
                ),
                "give every section a title (at most 24 characters)",
            ),
            _ => {}
        }
        let rows = match m.get("rows") {
            None | Some(Value::Null) => {
                no_rows(cx, i, &sp, s);
                continue;
            }
            Some(Value::Array(rows)) if rows.is_empty() => {
                no_rows(cx, i, &format!("{sp}/rows"), s);
                continue;
            }
            Some(Value::Array(rows)) => rows,
            Some(_) => continue,
        };
        for (r, row) in rows.iter().enumerate() {
            row_number += 1;
            let rp = format!("{sp}/rows/{r}");
            if row_number == ROWS_MAX + 1 {
                cx.at_config(
                    rules::LIST_ROW_COUNT,
                    i,
                    &rp,
                    format!("{total_rows} rows over all sections, more than {ROWS_MAX}"),
                    "keep at most 10 rows in total, across all sections",
                );
            }
            let Value::Object(row) = row else { continue };
            list_row(cx, i, &rp, row);
            if let Some(id) = str_of(row, "id") {
                match seen.entry(id) {
                    Entry::Occupied(first) => {
                        let (fs, fr) = *first.get();
                        cx.at_config(
                            rules::DUPLICATE_ROW_ID,
                            i,
                            &format!("{rp}/id"),
                            format!(
                                "{} is also used by list_sections[{fs}].rows[{fr}]",
                                quote_id("row id", id)
                            ),
                            "give every row its own id, across all sections: the id tells which \
                             row the user picked",
                        );
                    }
                    Entry::Vacant(v) => {
                        v.insert((s, r));
                    }
                }
            }
        }
    }
}

fn no_rows(cx: &mut Ctx, i: usize, ptr: &str, s: usize) {
    cx.at_config(
        rules::LIST_ROW_COUNT,
        i,
        ptr,
        format!("section list_sections[{s}] has no rows"),
        "give every section at least one row, or remove the empty section",
    );
}

/// One list row: title, description and id lengths.
fn list_row(cx: &mut Ctx, i: usize, rp: &str, row: &Map) {
    if let Some(t) = str_of(row, "title") {
        let help = "shorten the row title to at most 24 characters; put details in the description";
        let (rule, max) = (rules::LIST_ROW_TITLE_TOO_LONG, ROW_TITLE_MAX);
        text_limit(
            cx,
            rule,
            i,
            &format!("{rp}/title"),
            "row title",
            t,
            max,
            help,
        );
    }
    if let Some(d) = str_of(row, "description") {
        let help = "shorten the row description to at most 72 characters";
        let (rule, max) = (rules::LIST_ROW_DESCRIPTION_TOO_LONG, ROW_DESCRIPTION_MAX);
        text_limit(
            cx,
            rule,
            i,
            &format!("{rp}/description"),
            "row description",
            d,
            max,
            help,
        );
    }
    if let Some(id) = str_of(row, "id") {
        let help = "use a row id of at most 200 characters";
        let (rule, max) = (rules::LIST_ROW_ID_TOO_LONG, ROW_ID_MAX);
        id_limit(cx, rule, i, &format!("{rp}/id"), "row id", id, max, help);
    }
}

/// `flow_action` `navigate` (the default) needs `flow_action_payload.screen`.
fn flow_screen(cx: &mut Ctx, i: usize, c: &SendInteractive, raw: &Map) {
    let action = raw.get("flow_action").filter(|v| !v.is_null());
    if action.is_some() && c.flow_action != Some(FlowAction::Navigate) {
        // `data_exchange`, or an invalid value (reported by `invalid-enum-value`).
        return;
    }
    let ptr = match raw.get("flow_action_payload") {
        None | Some(Value::Null) => {
            if action.is_some() {
                "/flow_action"
            } else {
                ""
            }
        }
        Some(Value::Object(p)) => match p.get("screen") {
            None | Some(Value::Null) => "/flow_action_payload",
            Some(Value::String(s)) if s.is_empty() => "/flow_action_payload/screen",
            _ => return,
        },
        // Wrong type: reported by `invalid-field-type`.
        Some(_) => return,
    };
    let how = if action.is_some() {
        "flow_action is `navigate`"
    } else {
        "flow_action defaults to `navigate`"
    };
    cx.at_config(
        rules::FLOW_NAVIGATE_WITHOUT_SCREEN,
        i,
        ptr,
        format!("{how} but flow_action_payload.screen is not set"),
        "set flow_action_payload.screen to the id of the Flow's first screen, or use \
         `flow_action: data_exchange`",
    );
}

/// The string value of `key`, when it is a string.
fn str_of<'m>(m: &'m Map, key: &str) -> Option<&'m str> {
    m.get(key).and_then(Value::as_str)
}

/// Reports `rule` when templated `text` has more than `max` characters outside template blocks.
#[allow(clippy::too_many_arguments)]
fn text_limit(
    cx: &mut Ctx,
    rule: Rule,
    i: usize,
    ptr: &str,
    what: &str,
    text: &str,
    max: usize,
    help: &str,
) {
    // Cheap exits: a string of at most `max` bytes has at most `max` characters.
    if text.len() <= max {
        return;
    }
    let n = static_len(text);
    if n <= max {
        return;
    }
    let message = if has_template(text) {
        format!(
            "{what} `{}` has {n} characters besides its template blocks, more than {max}",
            shown(text)
        )
    } else {
        format!(
            "{what} `{}` is {n} characters, more than {max}",
            shown(text)
        )
    };
    cx.at_config(rule, i, ptr, message, help);
}

/// Reports `rule` when the (never templated) id has more than `max` characters.
#[allow(clippy::too_many_arguments)]
fn id_limit(
    cx: &mut Ctx,
    rule: Rule,
    i: usize,
    ptr: &str,
    what: &str,
    id: &str,
    max: usize,
    help: &str,
) {
    if id.len() <= max {
        return;
    }
    let n = char_len(id);
    if n > max {
        cx.at_config(
            rule,
            i,
            ptr,
            format!("{what} `{}` is {n} characters, more than {max}", shown(id)),
            help,
        );
    }
}

/// `what `id`` for messages, or `an empty what` for `""`.
fn quote_id(what: &str, id: &str) -> String {
    if id.is_empty() {
        format!("an empty {what}")
    } else {
        format!("{what} `{}`", shown(id))
    }
}

/// A short one-line excerpt of a text for messages.
fn shown(s: &str) -> String {
    excerpt(s)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::{Value as Json, json};

    /// The rules of this module.
    const MINE: &[&str] = &[
        "text-too-long",
        "body-too-long",
        "header-too-long",
        "footer-too-long",
        "list-header-not-text",
        "button-count",
        "button-title-too-long",
        "duplicate-button-id",
        "button-id-too-long",
        "list-section-count",
        "list-row-count",
        "list-row-title-too-long",
        "list-row-description-too-long",
        "list-row-id-too-long",
        "duplicate-row-id",
        "list-section-title-too-long",
        "list-section-title-missing",
        "list-button-text-too-long",
        "cta-display-text-too-long",
        "flow-cta-too-long",
        "flow-navigate-without-screen",
    ];

    /// Validates a flow `start → n` where `n` is a `node_type` node with `config`; returns this
    /// module's diagnostics as `(rule, pointer below the config)`.
    fn diags(node_type: &str, config: Json) -> Vec<(&'static str, String)> {
        let doc = json!({
            "nodes": [
                {"id": "start", "data": {"node_type": "start", "config": {}}},
                {"id": "n", "data": {"node_type": node_type, "config": config}}
            ],
            "edges": [{"source": "start", "target": "n"}]
        });
        let loaded = switchboard_model::load(&doc.to_string()).expect("loads");
        let prefix = "/nodes/1/data/config";
        crate::validate(&loaded.flow, &crate::Options::default())
            .into_iter()
            .filter(|d| MINE.contains(&d.rule))
            .map(|d| {
                assert!(!d.message.ends_with('.'), "{}", d.message);
                assert!(d.help.as_deref().is_some_and(|h| !h.is_empty()));
                (
                    d.rule,
                    d.pointer
                        .strip_prefix(prefix)
                        .unwrap_or(&d.pointer)
                        .to_owned(),
                )
            })
            .collect()
    }

    /// The rule names reported for one node.
    fn check(node_type: &str, config: Json) -> Vec<&'static str> {
        diags(node_type, config)
            .into_iter()
            .map(|(r, _)| r)
            .collect()
    }

    fn x(n: usize) -> String {
        "x".repeat(n)
    }

    fn interactive(ty: &str, extra: Json) -> Json {
        let mut c = json!({"interactive_type": ty, "body_text": "b"});
        if let (Some(c), Json::Object(e)) = (c.as_object_mut(), extra) {
            c.extend(e);
        }
        c
    }

    fn buttons(n: usize) -> Json {
        Json::Array(
            (0..n)
                .map(|k| json!({"id": format!("b{k}"), "title": "T"}))
                .collect(),
        )
    }

    fn rows(from: usize, n: usize) -> Json {
        Json::Array(
            (from..from + n)
                .map(|k| json!({"id": format!("r{k}"), "title": "R"}))
                .collect(),
        )
    }

    fn list(sections: Json) -> Json {
        interactive(
            "list",
            json!({"list_button_text": "Pick", "list_sections": sections}),
        )
    }

    #[test]
    fn text_length() {
        assert!(check("send_text", json!({"message": x(4096)})).is_empty());
        assert_eq!(
            diags("send_text", json!({"message": x(4097)})),
            [("text-too-long", "/message".into())]
        );
        // Non-ASCII characters count once: 4096 'é' are 8192 bytes.
        assert!(check("send_text", json!({"message": "é".repeat(4096)})).is_empty());
        // Template blocks are not counted.
        let templated = format!("{}{{{{ name }}}}{{% if a %}}{{% endif %}}", x(4090));
        assert!(check("send_text", json!({"message": templated})).is_empty());
        let templated = format!("{} {{{{ name }}}}", x(4096));
        assert_eq!(
            check("send_text", json!({"message": templated})),
            ["text-too-long"]
        );
        // AI markers are not measured.
        let ai = json!({"message": {"$ai": {}}, "provider_model_name": "m",
            "ai_field_config": {"message": {"mode": "prompt", "prompt": x(5000)}}});
        assert!(check("send_text", ai).is_empty());
    }

    #[test]
    fn body_length_depends_on_type() {
        let b = |ty: &str, n: usize| {
            let mut c = interactive(ty, json!({}));
            c["body_text"] = json!(x(n));
            match ty {
                "button" => c["buttons"] = buttons(1),
                "list" => {
                    c["list_button_text"] = json!("Pick");
                    c["list_sections"] = json!([{"rows": rows(0, 1)}]);
                }
                "cta_url" => {
                    c["cta_display_text"] = json!("Go");
                    c["cta_url"] = json!("https://x.io");
                }
                "flow" => {
                    c["flow_id"] = json!("1");
                    c["flow_cta"] = json!("Go");
                    c["flow_action_payload"] = json!({"screen": "A"});
                }
                _ => {}
            }
            check("send_interactive", c)
        };
        for ty in ["button", "cta_url", "flow", "location_request_message"] {
            assert!(b(ty, 1024).is_empty(), "{ty}");
            assert_eq!(b(ty, 1025), ["body-too-long"], "{ty}");
        }
        assert!(b("list", 4096).is_empty());
        assert_eq!(b("list", 4097), ["body-too-long"]);
        // Unsupported types are not checked here.
        assert!(b("product", 5000).is_empty());
    }

    #[test]
    fn header_and_footer() {
        let c = |extra: Json| {
            let mut c = interactive("button", extra);
            c["buttons"] = buttons(1);
            diags("send_interactive", c)
        };
        assert!(c(json!({"header_text": x(60), "footer_text": x(60)})).is_empty());
        assert_eq!(
            c(json!({"header_text": x(61), "footer_text": x(61)})),
            [
                ("header-too-long", "/header_text".into()),
                ("footer-too-long", "/footer_text".into())
            ]
        );
        // A media header ignores header_text; so does header_type none.
        assert!(c(json!({"header_type": "image", "header_media_url": "https://x.io/a.png", "header_text": x(61)})).is_empty());
        assert!(c(json!({"header_type": "none", "header_text": x(61)})).is_empty());
        assert_eq!(
            c(json!({"header_type": "text", "header_text": x(61)})).len(),
            1
        );
        // A location request ignores header and footer.
        let loc = interactive(
            "location_request_message",
            json!({"header_text": x(61), "footer_text": x(61)}),
        );
        assert!(check("send_interactive", loc).is_empty());
    }

    #[test]
    fn list_header_must_be_text() {
        let mut c = list(json!([{"rows": rows(0, 1)}]));
        c["header_type"] = json!("image");
        c["header_media_url"] = json!("https://x.io/a.png");
        assert_eq!(
            diags("send_interactive", c.clone()),
            [("list-header-not-text", "/header_type".into())]
        );
        c["header_type"] = json!("text");
        c["header_text"] = json!("H");
        assert!(check("send_interactive", c).is_empty());
    }

    #[test]
    fn button_count() {
        let c = |n: usize| {
            diags(
                "send_interactive",
                interactive("button", json!({"buttons": buttons(n)})),
            )
        };
        assert_eq!(c(0), [("button-count", "/buttons".into())]);
        assert!(c(1).is_empty());
        assert!(c(3).is_empty());
        assert_eq!(c(4), [("button-count", "/buttons/3".into())]);
        assert_eq!(c(7), [("button-count", "/buttons/3".into())]);
        // Absent buttons are missing-required-field, not ours; buttons of another type are ignored.
        assert!(check("send_interactive", interactive("button", json!({}))).is_empty());
        assert!(
            check(
                "send_interactive",
                interactive(
                    "cta_url",
                    json!({"buttons": [], "cta_display_text": "Go", "cta_url": "https://x.io"})
                )
            )
            .is_empty()
        );
    }

    #[test]
    fn button_titles_and_ids() {
        let c = |b: Json| {
            diags(
                "send_interactive",
                interactive("button", json!({"buttons": b})),
            )
        };
        assert!(c(json!([{"id": "a", "title": x(20)}])).is_empty());
        assert!(c(json!([{"id": "a", "title": "é".repeat(20)}])).is_empty());
        assert_eq!(
            c(json!([{"id": "a", "title": "ok"}, {"id": "b", "title": "Talk to our sales team"}])),
            [("button-title-too-long", "/buttons/1/title".into())]
        );
        // 21 raw characters, 2 outside the template block.
        assert!(c(json!([{"id": "a", "title": "Hi {{ vars.first }}!"}])).is_empty());
        assert!(c(json!([{"id": x(256), "title": "A"}])).is_empty());
        assert_eq!(
            c(json!([{"id": x(257), "title": "A"}])),
            [("button-id-too-long", "/buttons/0/id".into())]
        );
        assert_eq!(
            c(
                json!([{"id": "a", "title": "A"}, {"id": "b", "title": "B"}, {"id": "a", "title": "C"}])
            ),
            [("duplicate-button-id", "/buttons/2/id".into())]
        );
        // Non-object entries are reported elsewhere and skipped, without shifting pointers.
        assert_eq!(
            c(json!(["x", {"id": "b", "title": x(21)}])),
            [("button-title-too-long", "/buttons/1/title".into())]
        );
    }

    #[test]
    fn section_count() {
        let secs = |n: usize| {
            Json::Array(
                (0..n)
                    .map(|k| json!({"title": format!("S{k}"), "rows": rows(k, 1)}))
                    .collect(),
            )
        };
        assert_eq!(
            diags("send_interactive", list(json!([]))),
            [("list-section-count", "/list_sections".into())]
        );
        assert!(check("send_interactive", list(secs(10))).is_empty());
        let d = diags("send_interactive", list(secs(11)));
        assert_eq!(
            d,
            [
                ("list-section-count", "/list_sections/10".into()),
                ("list-row-count", "/list_sections/10/rows/0".into())
            ]
        );
    }

    #[test]
    fn row_count() {
        let c = |s: Json| diags("send_interactive", list(s));
        assert!(
            c(json!([{"title": "A", "rows": rows(0, 5)}, {"title": "B", "rows": rows(5, 5)}]))
                .is_empty()
        );
        assert_eq!(
            c(json!([{"title": "A", "rows": rows(0, 6)}, {"title": "B", "rows": rows(6, 6)}])),
            [("list-row-count", "/list_sections/1/rows/4".into())]
        );
        assert_eq!(
            c(json!([{"title": "A", "rows": []}])),
            [("list-row-count", "/list_sections/0/rows".into())]
        );
        assert_eq!(
            c(json!([{"title": "A", "rows": rows(0, 1)}, {"title": "B"}])),
            [("list-row-count", "/list_sections/1".into())]
        );
    }

    #[test]
    fn row_limits() {
        let c = |row: Json| check("send_interactive", list(json!([{"rows": [row]}])));
        assert!(c(json!({"id": x(200), "title": x(24), "description": x(72)})).is_empty());
        assert_eq!(
            c(json!({"id": "a", "title": x(25)})),
            ["list-row-title-too-long"]
        );
        assert_eq!(
            c(json!({"id": "a", "title": "t", "description": x(73)})),
            ["list-row-description-too-long"]
        );
        assert_eq!(
            c(json!({"id": x(201), "title": "t"})),
            ["list-row-id-too-long"]
        );
        assert!(c(json!({"id": "a", "title": "{{ vars.product_name }} ok", "description": format!("{}{{{{d}}}}", "é".repeat(72))})).is_empty());
    }

    #[test]
    fn duplicate_row_ids_across_sections() {
        let d = diags(
            "send_interactive",
            list(json!([
                {"title": "A", "rows": [{"id": "a", "title": "1"}, {"id": "b", "title": "2"}]},
                {"title": "B", "rows": [{"id": "c", "title": "3"}, {"id": "a", "title": "4"}]}
            ])),
        );
        assert_eq!(
            d,
            [("duplicate-row-id", "/list_sections/1/rows/1/id".into())]
        );
    }

    #[test]
    fn section_titles() {
        let c = |s: Json| diags("send_interactive", list(s));
        // One section needs no title.
        assert!(c(json!([{"rows": rows(0, 1)}])).is_empty());
        assert_eq!(
            c(json!([{"rows": rows(0, 1)}, {"title": "B", "rows": rows(1, 1)}])),
            [("list-section-title-missing", "/list_sections/0".into())]
        );
        assert_eq!(
            c(json!([{"title": "A", "rows": rows(0, 1)}, {"title": "", "rows": rows(1, 1)}])),
            [("list-section-title-missing", "/list_sections/1".into())]
        );
        assert!(c(json!([{"title": x(24), "rows": rows(0, 1)}])).is_empty());
        assert_eq!(
            c(json!([{"title": x(25), "rows": rows(0, 1)}])),
            [(
                "list-section-title-too-long",
                "/list_sections/0/title".into()
            )]
        );
    }

    #[test]
    fn list_button_text() {
        let mut c = list(json!([{"rows": rows(0, 1)}]));
        c["list_button_text"] = json!(x(20));
        assert!(check("send_interactive", c.clone()).is_empty());
        c["list_button_text"] = json!("Choose one of the options");
        assert_eq!(
            diags("send_interactive", c),
            [("list-button-text-too-long", "/list_button_text".into())]
        );
    }

    #[test]
    fn cta_display_text() {
        let c = |t: &str| {
            check(
                "send_interactive",
                interactive(
                    "cta_url",
                    json!({"cta_display_text": t, "cta_url": "https://x.io"}),
                ),
            )
        };
        assert!(c(&x(20)).is_empty());
        assert_eq!(
            c("Open your order status page"),
            ["cta-display-text-too-long"]
        );
        // The literal part of a templated label is short.
        assert!(c("Track {{ vars.order_number_with_prefix }}").is_empty());
    }

    #[test]
    fn flow_cta_and_screen() {
        let c = |extra: Json| {
            let mut c = interactive("flow", json!({"flow_id": "1", "flow_cta": "Go"}));
            if let (Some(c), Json::Object(e)) = (c.as_object_mut(), extra) {
                c.extend(e);
            }
            diags("send_interactive", c)
        };
        let screen = json!({"screen": "WELCOME"});
        assert!(c(json!({"flow_action_payload": screen})).is_empty());
        assert!(c(json!({"flow_action_payload": screen, "flow_cta": x(20)})).is_empty());
        let d = c(json!({"flow_action_payload": screen, "flow_cta": "Complete your registration"}));
        assert_eq!(d, [("flow-cta-too-long", "/flow_cta".into())]);
        assert_eq!(
            crate::rules::FLOW_CTA_TOO_LONG.severity,
            crate::Severity::Warning
        );
        // navigate is the default.
        assert_eq!(c(json!({})), [("flow-navigate-without-screen", "".into())]);
        assert_eq!(
            c(json!({"flow_action": "navigate"})),
            [("flow-navigate-without-screen", "/flow_action".into())]
        );
        assert_eq!(
            c(json!({"flow_action_payload": {"data": {}}})),
            [(
                "flow-navigate-without-screen",
                "/flow_action_payload".into()
            )]
        );
        assert!(c(json!({"flow_action": "data_exchange"})).is_empty());
        // An invalid flow_action is reported by invalid-enum-value only.
        assert!(c(json!({"flow_action": "jump"})).is_empty());
    }

    #[test]
    fn message_wording() {
        let doc = json!({"nodes": [
            {"id": "start", "data": {"node_type": "start", "config": {}}},
            {"id": "n", "data": {"node_type": "send_interactive", "config": {"interactive_type": "button", "body_text": "b",
                "buttons": [{"id": "a", "title": "Talk to our sales team"}]}}}],
            "edges": [{"source": "start", "target": "n"}]});
        let loaded = switchboard_model::load(&doc.to_string()).expect("loads");
        let d = crate::validate(&loaded.flow, &crate::Options::default());
        let d = d
            .iter()
            .find(|d| d.rule == "button-title-too-long")
            .expect("reported");
        assert_eq!(
            d.message,
            "button title `Talk to our sales team` is 22 characters, more than 20"
        );
        assert_eq!(d.node.as_deref(), Some("n"));
        assert_eq!(d.pointer, "/nodes/1/data/config/buttons/0/title");
    }

    #[test]
    fn hostile_input_does_not_panic() {
        let big = "🎉{{".repeat(100_000);
        let c = json!({"interactive_type": "list", "body_text": big, "header_text": "{%", "footer_text": "{{{{}}}}}}",
            "list_button_text": 5, "list_sections": [null, 1, {"rows": "x"}, {"title": [], "rows": [null, {"id": 3, "title": {}}]}]});
        let _ = check("send_interactive", c);
        let c = json!({"interactive_type": "flow", "body_text": "b", "flow_action_payload": "x", "flow_cta": "🎉".repeat(21)});
        assert_eq!(check("send_interactive", c), ["flow-cta-too-long"]);
    }
}
