//! Time: UTC timestamps in milliseconds, RFC 3339 formatting and parsing.

use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch (UTC).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// From milliseconds since the epoch.
    pub fn from_millis(ms: i64) -> Timestamp {
        Timestamp(ms)
    }

    /// Milliseconds since the epoch.
    pub fn millis(self) -> i64 {
        self.0
    }

    /// This time plus `seconds` (saturating).
    pub fn plus_seconds(self, seconds: f64) -> Timestamp {
        let ms = (seconds * 1000.0).round();
        let ms = if ms.is_finite() { ms as i64 } else { 0 };
        Timestamp(self.0.saturating_add(ms))
    }

    /// RFC 3339 in UTC, e.g. `2026-01-05T10:00:00Z` (milliseconds shown when not zero).
    pub fn rfc3339(self) -> String {
        match jiff::Timestamp::from_millisecond(self.0) {
            Ok(t) => t.to_string(),
            Err(_) => "1970-01-01T00:00:00Z".to_owned(),
        }
    }

    /// Parses an RFC 3339 timestamp (any offset).
    pub fn parse_rfc3339(s: &str) -> Option<Timestamp> {
        let t: jiff::Timestamp = s.trim().parse().ok()?;
        Some(Timestamp(t.as_millisecond()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_rfc3339() {
        let t = Timestamp::parse_rfc3339("2026-01-05T10:00:00Z").unwrap();
        assert_eq!(t.rfc3339(), "2026-01-05T10:00:00Z");
        assert_eq!(t.plus_seconds(1.5).rfc3339(), "2026-01-05T10:00:01.5Z");
        assert_eq!(
            Timestamp::parse_rfc3339("2026-01-05T12:00:00+02:00"),
            Some(t)
        );
        assert_eq!(Timestamp::parse_rfc3339("yesterday"), None);
    }
}
