//! How `switchboard chat` shows outbound WhatsApp messages as text lines.

use serde_json::{Value, json};
use switchboard_runtime::adapters::{Choice, Interactive, OutboundBody, OutboundMessage};

/// What goes between the brackets of a button or list row line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChoiceLabel {
    /// `[1] Sales`: numbered, so a person can type the number (interactive mode).
    Number,
    /// `[sales] Sales`: the id, so a script can write `#button sales` (script mode).
    Id,
}

/// The buttons, or the rows of every section, of an interactive message, in order.
pub fn choices(interactive: &Interactive) -> Vec<Choice> {
    if !interactive.buttons.is_empty() {
        return interactive.buttons.clone();
    }
    interactive
        .sections
        .iter()
        .flat_map(|s| s.rows.iter().cloned())
        .collect()
}

/// The reply kind a choice of this interactive message produces.
pub fn reply_kind(interactive: &Interactive) -> &'static str {
    if interactive.buttons.is_empty() && !interactive.sections.is_empty() {
        "list_reply"
    } else {
        "button_reply"
    }
}

/// The lines showing one outbound message, each ending with a newline.
pub fn render(body: &OutboundBody, label: ChoiceLabel) -> String {
    match body {
        OutboundBody::Text { text } => format!("bot: {text}\n"),
        OutboundBody::Template {
            template_id,
            parameters,
        } => format!("bot: [template {template_id}] {parameters}\n"),
        OutboundBody::Media {
            media_type,
            url,
            caption,
        } => {
            let mut s = format!("bot: [{media_type}] {url}\n");
            if let Some(c) = caption.as_deref().filter(|c| !c.is_empty()) {
                s.push_str(&format!("  caption: {c}\n"));
            }
            s
        }
        OutboundBody::Interactive(i) => render_interactive(i, label),
    }
}

fn render_interactive(i: &Interactive, label: ChoiceLabel) -> String {
    let mut s = format!("bot: {}\n", i.body);
    if let Some(h) = &i.header {
        if h.kind == "text" {
            s.push_str(&format!("  header: {}\n", h.value));
        } else {
            s.push_str(&format!("  header: [{}] {}\n", h.kind, h.value));
        }
    }
    let mut n = 0;
    let mut line = |s: &mut String, c: &Choice| {
        n += 1;
        let tag = match label {
            ChoiceLabel::Number => n.to_string(),
            ChoiceLabel::Id => c.id.clone(),
        };
        s.push_str(&format!("  [{tag}] {}", c.title));
        if let Some(d) = c.description.as_deref().filter(|d| !d.is_empty()) {
            s.push_str(&format!(" - {d}"));
        }
        s.push('\n');
    };
    if i.buttons.is_empty() {
        for section in &i.sections {
            if let Some(t) = section.title.as_deref().filter(|t| !t.is_empty()) {
                s.push_str(&format!("  {t}:\n"));
            }
            for c in &section.rows {
                line(&mut s, c);
            }
        }
    } else {
        for c in &i.buttons {
            line(&mut s, c);
        }
    }
    if let Some(cta) = &i.cta {
        s.push_str(&format!("  [link] {}: {}\n", cta.display_text, cta.url));
    }
    if let Some(f) = &i.flow {
        s.push_str(&format!("  [flow] {}\n", f.flow_cta));
    }
    if let Some(f) = i.footer.as_deref().filter(|f| !f.is_empty()) {
        s.push_str(&format!("  footer: {f}\n"));
    }
    s
}

/// The payload of an outbound message in a `--json` transcript: the message body with the
/// recipient and the node that sent it (the same form as `switchboard test --print`).
pub fn payload(m: &OutboundMessage) -> Value {
    let mut v = serde_json::to_value(&m.body).unwrap_or(Value::Null);
    if let Value::Object(o) = &mut v {
        o.insert("to".into(), json!(m.to));
        o.insert("node".into(), json!(m.node_id));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_runtime::adapters::{InteractiveHeader, ListSection};

    fn choice(id: &str, title: &str) -> Choice {
        Choice {
            id: id.into(),
            title: title.into(),
            description: None,
        }
    }

    fn buttons() -> Interactive {
        Interactive {
            interactive_type: "button".into(),
            body: "How can we help?".into(),
            header: Some(InteractiveHeader {
                kind: "text".into(),
                value: "Welcome".into(),
            }),
            footer: Some("Tap a button".into()),
            buttons: vec![choice("sales", "Sales"), choice("support", "Support")],
            ..Interactive::default()
        }
    }

    #[test]
    fn text_template_and_media() {
        let text = OutboundBody::Text { text: "hi".into() };
        assert_eq!(render(&text, ChoiceLabel::Id), "bot: hi\n");
        let template = OutboundBody::Template {
            template_id: "order_update".into(),
            parameters: json!({"1": "A-1"}),
        };
        assert_eq!(
            render(&template, ChoiceLabel::Id),
            "bot: [template order_update] {\"1\":\"A-1\"}\n"
        );
        let media = OutboundBody::Media {
            media_type: "image".into(),
            url: "https://example.com/a.png".into(),
            caption: Some("A map".into()),
        };
        assert_eq!(
            render(&media, ChoiceLabel::Number),
            "bot: [image] https://example.com/a.png\n  caption: A map\n"
        );
    }

    #[test]
    fn buttons_numbered_or_by_id() {
        let body = OutboundBody::Interactive(buttons());
        assert_eq!(
            render(&body, ChoiceLabel::Number),
            "bot: How can we help?\n  header: Welcome\n  [1] Sales\n  [2] Support\n  footer: Tap a button\n"
        );
        assert_eq!(
            render(&body, ChoiceLabel::Id),
            "bot: How can we help?\n  header: Welcome\n  [sales] Sales\n  [support] Support\n  footer: Tap a button\n"
        );
    }

    #[test]
    fn list_rows_are_numbered_across_sections() {
        let list = Interactive {
            interactive_type: "list".into(),
            body: "Pick a dish".into(),
            list_button_text: Some("Menu".into()),
            sections: vec![
                ListSection {
                    title: Some("Mains".into()),
                    rows: vec![Choice {
                        description: Some("with fries".into()),
                        ..choice("burger", "Burger")
                    }],
                },
                ListSection {
                    title: None,
                    rows: vec![choice("salad", "Salad")],
                },
            ],
            ..Interactive::default()
        };
        assert_eq!(
            render(
                &OutboundBody::Interactive(list.clone()),
                ChoiceLabel::Number
            ),
            "bot: Pick a dish\n  Mains:\n  [1] Burger - with fries\n  [2] Salad\n"
        );
        assert_eq!(reply_kind(&list), "list_reply");
        assert_eq!(reply_kind(&buttons()), "button_reply");
        let ids: Vec<String> = choices(&list).into_iter().map(|c| c.id).collect();
        assert_eq!(ids, ["burger", "salad"]);
    }

    #[test]
    fn payload_adds_recipient_and_node() {
        let m = OutboundMessage {
            from: "15550001111".into(),
            to: "+14155550100".into(),
            execution_id: "ex_1".into(),
            node_id: "ask".into(),
            body: OutboundBody::Text { text: "hi".into() },
            reference: None,
        };
        assert_eq!(
            payload(&m),
            json!({"type": "text", "text": "hi", "to": "+14155550100", "node": "ask"})
        );
    }
}
