//! The one URL check shared by the validator (literal URLs in flow files) and the runtime
//! (rendered URLs before a request): pure string inspection, no parsing library.

/// `true` for an absolute `http`/`https` URL (scheme case-insensitive) with a host — not empty,
/// not only userinfo, not only a port — and no whitespace or control character anywhere.
pub fn is_http_url(s: &str) -> bool {
    let lower = s.get(..8).map(str::to_ascii_lowercase).unwrap_or_default();
    let rest = if lower.starts_with("https://") {
        &s[8..]
    } else if lower.starts_with("http://") {
        &s[7..]
    } else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit('@').next().unwrap_or("");
    !host.is_empty()
        && !host.starts_with(':')
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_http_urls() {
        assert!(is_http_url("https://x.io"));
        assert!(is_http_url("HTTP://x.io/a?b#c"));
        assert!(is_http_url("https://user:pw@x.io:8443/a"));
        assert!(!is_http_url("www.x.io"));
        assert!(!is_http_url("ftp://x.io"));
        assert!(!is_http_url("https://"));
        assert!(!is_http_url("https:///path"));
        assert!(!is_http_url("https://x.io/a b"));
        assert!(!is_http_url("https://user@/a"));
        assert!(!is_http_url("https://:8080/a"));
        assert!(!is_http_url("https://x.io/\u{7}"));
    }
}
