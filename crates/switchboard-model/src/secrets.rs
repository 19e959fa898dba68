//! `${ENV:NAME}` secret references: the one scanner the runtime, the validator and the CLI share.
//!
//! A reference is *well formed* when `${ENV:` is followed by a name made of ASCII letters, digits
//! and `_`, not starting with a digit, and then `}` (flow-format §6). [`references`] yields every
//! `${ENV:` in a text, well formed or not, so that each user decides what a malformed one means:
//! the runtime leaves it as literal text, the validator reports it (`invalid-secret-reference`),
//! and the CLI still redacts whatever name it holds ([`SecretRef::braced`]).
//!
//! ```
//! use switchboard_model::secrets::references;
//!
//! let text = "Bearer ${ENV:API_KEY} and ${ENV:9lives}";
//! let refs: Vec<_> = references(text).collect();
//! assert_eq!((refs[0].name, refs[0].well_formed), ("API_KEY", true));
//! assert_eq!(&text[refs[0].range()], "${ENV:API_KEY}");
//! assert_eq!((refs[1].name, refs[1].well_formed), ("9lives", false));
//! assert_eq!(refs[1].braced(), Some("9lives"));
//! ```

use std::ops::Range;

/// What opens a secret reference.
pub const PREFIX: &str = "${ENV:";

/// One `${ENV:` found in a text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SecretRef<'a> {
    /// Byte offset of the `$`.
    pub start: usize,
    /// Byte offset just past the reference: past the `}` of a well-formed one; past the prefix
    /// and the name characters after it for a malformed one.
    pub end: usize,
    /// The name characters right after the prefix (ASCII letters, digits and `_`; may be empty).
    pub name: &'a str,
    /// `true` when `name` is not empty, does not start with a digit, and is followed by `}`.
    pub well_formed: bool,
    /// The text after the prefix.
    after: &'a str,
}

impl<'a> SecretRef<'a> {
    /// The byte range of the reference (see [`SecretRef::start`] and [`SecretRef::end`]).
    pub fn range(&self) -> Range<usize> {
        self.start..self.end
    }

    /// Whatever stands between the prefix and the next `}`, well formed or not (`" OTHER "` for
    /// `${ENV: OTHER }`), or `None` when no `}` follows: the lenient reading of a name.
    pub fn braced(&self) -> Option<&'a str> {
        self.after.find('}').map(|end| &self.after[..end])
    }
}

/// Every `${ENV:` in `text`, in order, well formed or not.
pub fn references(text: &str) -> References<'_> {
    References { text, pos: 0 }
}

/// `true` when `text` holds `${ENV:` (a reference, well formed or not).
pub fn has_reference(text: &str) -> bool {
    text.contains(PREFIX)
}

/// The iterator of [`references`].
#[derive(Clone, Debug)]
pub struct References<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Iterator for References<'a> {
    type Item = SecretRef<'a>;

    fn next(&mut self) -> Option<SecretRef<'a>> {
        let start = self.pos + self.text.get(self.pos..)?.find(PREFIX)?;
        let name_start = start + PREFIX.len();
        let after = &self.text[name_start..];
        let len = after
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
            .count();
        let name = &after[..len];
        let well_formed = name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
            && after[len..].starts_with('}');
        let end = name_start + len + usize::from(well_formed);
        self.pos = end;
        Some(SecretRef {
            start,
            end,
            name,
            well_formed,
            after,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use proptest::prelude::*;

    use super::*;

    fn scan(text: &str) -> Vec<(&str, bool, &str)> {
        references(text)
            .map(|r| (r.name, r.well_formed, &text[r.range()]))
            .collect()
    }

    #[test]
    fn finds_well_formed_and_malformed_references() {
        assert_eq!(
            scan("a ${ENV:API_KEY} b ${ENV:_x1}${ENV:K}"),
            [
                ("API_KEY", true, "${ENV:API_KEY}"),
                ("_x1", true, "${ENV:_x1}"),
                ("K", true, "${ENV:K}"),
            ]
        );
        assert_eq!(
            scan("${ENV:} ${ENV:1A} ${ENV: A} ${ENV:A-B} ${ENV:A"),
            [
                ("", false, "${ENV:"),
                ("1A", false, "${ENV:1A"),
                ("", false, "${ENV:"),
                ("A", false, "${ENV:A"),
                ("A", false, "${ENV:A"),
            ]
        );
        assert_eq!(scan("no secrets, ${ENV, $ENV:A, {ENV:A}"), []);
        assert_eq!(scan("é${ENV:É}"), [("", false, "${ENV:")]);
        assert!(has_reference("x ${ENV:"));
        assert!(!has_reference("x ${ENV"));
    }

    #[test]
    fn braced_reads_up_to_the_next_brace() {
        let text = "${ENV: OTHER } ${ENV:a ${ENV:B} ${ENV:";
        let braced: Vec<Option<&str>> = references(text).map(|r| r.braced()).collect();
        assert_eq!(
            braced,
            [Some(" OTHER "), Some("a ${ENV:B"), Some("B"), None]
        );
    }

    /// A well-formed reference, spelled out.
    fn is_reference(s: &str) -> bool {
        let Some(name) = s.strip_prefix(PREFIX).and_then(|s| s.strip_suffix('}')) else {
            return false;
        };
        let mut b = name.bytes();
        b.next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
            && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Every `${ENV:` is found once, in order; a reference is well formed exactly when its
        /// range is `${ENV:NAME}`, and every well-formed reference is found as such.
        #[test]
        fn finds_every_prefix_and_judges_it(parts in prop::collection::vec(
            prop::sample::select(vec!["${ENV:", "$", "{", "}", "ENV:", "A", "z", "_", "7", " ", "é", "-"]),
            0..24,
        )) {
            let text: String = parts.concat();
            let refs: Vec<SecretRef<'_>> = references(&text).collect();
            let starts: Vec<usize> = text.match_indices(PREFIX).map(|(i, _)| i).collect();
            prop_assert_eq!(refs.iter().map(|r| r.start).collect::<Vec<_>>(), starts);
            for r in &refs {
                prop_assert_eq!(r.well_formed, is_reference(&text[r.range()]));
                prop_assert_eq!(&text[r.start + PREFIX.len()..][..r.name.len()], r.name);
            }
            for w in refs.windows(2) {
                prop_assert!(w[0].end <= w[1].start);
            }
        }
    }
}
