//! Small text helpers: clipping by characters (never inside one), one-line text, numbers,
//! and escaping for each output format.

/// `s` cut to at most `max` characters, with `…` when cut.
pub fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Whitespace runs (newlines included) as one space, trimmed.
pub fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A number without a useless `.0`.
pub fn number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

/// Seconds as `90s`, `5m`, `2h`, `1d` when whole.
pub fn duration(seconds: f64) -> String {
    let whole = |unit: f64| seconds >= unit && (seconds / unit).fract() == 0.0;
    if whole(86_400.0) {
        format!("{}d", number(seconds / 86_400.0))
    } else if whole(3_600.0) {
        format!("{}h", number(seconds / 3_600.0))
    } else if whole(60.0) {
        format!("{}m", number(seconds / 60.0))
    } else {
        format!("{}s", number(seconds))
    }
}

/// Text for XML (SVG) content and attributes.
pub fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if (c as u32) < 0x20 && c != '\t' && c != '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Text inside a Mermaid `"…"` label: quotes and markup as entity codes (`#quot;`, …).
pub fn mermaid(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("#quot;"),
            '#' => out.push_str("#35;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            '&' => out.push_str("#amp;"),
            '`' => out.push_str("#96;"),
            '|' => out.push_str("#124;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Text inside a DOT `"…"` string.
pub fn dot(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clipping_counts_characters() {
        assert_eq!(clip("héllo wörld", 5), "héll…");
        assert_eq!(clip("ok", 5), "ok");
        assert_eq!(clip("", 0), "");
    }

    #[test]
    fn durations() {
        assert_eq!(duration(3600.0), "1h");
        assert_eq!(duration(90.0), "90s");
        assert_eq!(duration(600.0), "10m");
        assert_eq!(duration(1.5), "1.5s");
    }

    #[test]
    fn escapes() {
        assert_eq!(mermaid("a \"b\" #1 <x>"), "a #quot;b#quot; #35;1 #lt;x#gt;");
        assert_eq!(dot("a\"b\\"), "a\\\"b\\\\");
        assert_eq!(xml("<&>"), "&lt;&amp;&gt;");
    }
}
