//! Small text helpers shared by the rules.

/// `true` when the text holds a template block (`{{ … }}` or `{% … %}`).
pub(crate) fn has_template(s: &str) -> bool {
    let b = s.as_bytes();
    memchr::memchr_iter(b'{', b).any(|i| matches!(b.get(i + 1), Some(b'{' | b'%')))
}

/// `true` when the text holds a template block or comment (`{{`, `{%` or `{#`).
pub(crate) fn has_template_or_comment(s: &str) -> bool {
    let b = s.as_bytes();
    memchr::memchr_iter(b'{', b).any(|i| matches!(b.get(i + 1), Some(b'{' | b'%' | b'#')))
}

/// The literal text with every `{{ … }}`, `{% … %}` and `{# … #}` block removed: a lower bound of
/// the rendered length (validation-rules §0).
pub(crate) fn strip_templates(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains('{') {
        return s.into();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('{') {
        let close = match rest[i + 1..].chars().next() {
            Some('{') => "}}",
            Some('%') => "%}",
            Some('#') => "#}",
            _ => {
                out.push_str(&rest[..=i]);
                rest = &rest[i + 1..];
                continue;
            }
        };
        out.push_str(&rest[..i]);
        match rest[i + 2..].find(close) {
            Some(j) => rest = &rest[i + 2 + j + 2..],
            None => {
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out.into()
}

/// Length in Unicode scalar values.
pub(crate) fn char_len(s: &str) -> usize {
    s.chars().count()
}

/// The length a limit is checked on: characters of the text without template blocks.
pub(crate) fn static_len(s: &str) -> usize {
    char_len(&strip_templates(s))
}

/// `true` when the value is dynamic (a template or a secret): value checks do not apply.
pub(crate) fn is_dynamic(s: &str) -> bool {
    has_template(s) || switchboard_model::secrets::has_reference(s)
}

/// `^[A-Za-z_][A-Za-z0-9_]*$`
pub(crate) fn is_var_name(s: &str) -> bool {
    let mut b = s.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// Names a flow may not write.
pub(crate) const RESERVED_NAMES: &[&str] =
    &["vars", "system", "context", "metadata", "last_user_input"];

/// Escapes a pointer token.
pub(crate) fn tok(s: &str) -> String {
    switchboard_model::value::escape_pointer_token(s).into_owned()
}

/// A short excerpt of a long text for messages.
pub(crate) fn excerpt(s: &str) -> String {
    let mut it = s.chars();
    let head: String = it.by_ref().take(40).collect();
    if it.next().is_some() {
        format!("{head}…")
    } else {
        head
    }
}

/// Shortens every backtick-quoted span longer than 60 characters to an excerpt, so a hostile
/// value (a 1 MB label or id) never makes a message huge.
pub(crate) fn shorten_quoted(msg: String) -> String {
    if msg.len() <= 200 {
        return msg;
    }
    let mut out = String::with_capacity(256);
    let mut parts = msg.split('`');
    if let Some(first) = parts.next() {
        out.push_str(&excerpt_long(first, 400));
    }
    for (k, part) in parts.enumerate() {
        out.push('`');
        // Odd parts (k even here) are inside backticks.
        out.push_str(&excerpt_long(part, if k % 2 == 0 { 60 } else { 400 }));
    }
    out
}

fn excerpt_long(s: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if s.chars().count() <= max {
        return s.into();
    }
    let head: String = s.chars().take(max.saturating_sub(20).max(10)).collect();
    format!("{head}…").into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_template_blocks() {
        assert_eq!(
            strip_templates("Hi {{ name }}, {% if x %}yes{% endif %}!"),
            "Hi , yes!"
        );
        assert_eq!(strip_templates("a { b } {{ unterminated"), "a { b } ");
        assert_eq!(strip_templates("{#c#}x"), "x");
    }

    #[test]
    fn long_quoted_values_are_shortened() {
        let long = "x".repeat(1_000_000);
        let msg = shorten_quoted(format!("condition `{long}` of decide node `a` has no edge"));
        assert!(msg.len() < 200, "{}", msg.len());
        assert!(msg.starts_with("condition `xxxx"));
        assert!(msg.ends_with("` of decide node `a` has no edge"));
        assert_eq!(shorten_quoted("short `a`".into()), "short `a`");
    }

    #[test]
    fn variable_names() {
        assert!(is_var_name("_a1"));
        assert!(!is_var_name("1a"));
        assert!(!is_var_name("vars.crm"));
        assert!(!is_var_name(""));
    }
}
