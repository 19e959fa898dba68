//! Problems found while projecting a document onto the typed model.
//!
//! Loading never stops at these: the flow is still loaded (with the offending field treated as
//! absent) and the validator reports each issue as a diagnostic of the rule [`Issue::rule`] names.

use crate::value::Pos;

/// One problem found while decoding a field.
#[derive(Clone, Debug, PartialEq)]
pub struct Issue {
    /// What is wrong.
    pub kind: IssueKind,
    /// JSON pointer to the offending value (or to the object holding a missing one).
    pub pointer: String,
    /// Source position of the offending key or value.
    pub pos: Pos,
    /// Index of the node it concerns, in [`crate::Flow::nodes`].
    pub node: Option<usize>,
    /// Index of the edge it concerns, in [`crate::Flow::edges`].
    pub edge: Option<usize>,
}

/// The kinds of decoding problems.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum IssueKind {
    /// A known key holds the wrong JSON type.
    InvalidFieldType {
        /// The key (or path below the node config) that is wrong.
        field: String,
        /// The type it must have.
        expected: &'static str,
        /// The type it has.
        found: &'static str,
    },
    /// A config (or tool, button, row, section, condition) key not defined for its node type.
    UnknownConfigKey {
        /// The key.
        key: String,
        /// Where it was found (`send_text config`, `button`, …).
        within: &'static str,
    },
    /// Both spellings of an alias pair hold different values; `canonical` wins.
    ConflictingAlias {
        /// The key that is used.
        canonical: &'static str,
        /// The key that is ignored.
        alias: &'static str,
    },
    /// An object-or-JSON-string field holds a string that is not JSON of the expected type.
    InvalidJsonString {
        /// The key.
        field: String,
        /// `object`, `array` or `object or array`.
        expected: &'static str,
        /// Why it does not parse, or what type it holds.
        detail: String,
    },
    /// A value outside its enumeration.
    InvalidEnumValue {
        /// The key.
        field: String,
        /// The value found.
        value: String,
        /// The allowed values.
        allowed: &'static [&'static str],
    },
    /// `data.node_type` is missing or not one of the 13 node types.
    UnknownNodeType {
        /// The value found, when it is a string.
        found: Option<String>,
    },
}

impl Issue {
    /// The validation rule this issue is reported under.
    pub fn rule(&self) -> &'static str {
        match self.kind {
            IssueKind::InvalidFieldType { .. } => "invalid-field-type",
            IssueKind::UnknownConfigKey { .. } => "unknown-config-key",
            IssueKind::ConflictingAlias { .. } => "conflicting-alias",
            IssueKind::InvalidJsonString { .. } => "invalid-json-string",
            IssueKind::InvalidEnumValue { .. } => "invalid-enum-value",
            IssueKind::UnknownNodeType { .. } => "unknown-node-type",
        }
    }

    /// A one-line description (lowercase, no trailing period).
    pub fn message(&self) -> String {
        match &self.kind {
            IssueKind::InvalidFieldType {
                field,
                expected,
                found,
            } => {
                format!(
                    "`{field}` must be {} {expected}, found {found}",
                    article(expected)
                )
            }
            IssueKind::UnknownConfigKey { key, within } => {
                format!("unknown key `{key}` in {within}; it is kept but never used")
            }
            IssueKind::ConflictingAlias { canonical, alias } => {
                format!(
                    "`{canonical}` and its alias `{alias}` hold different values; `{canonical}` is used"
                )
            }
            IssueKind::InvalidJsonString {
                field,
                expected,
                detail,
            } => {
                format!("`{field}` holds a string that is not a JSON {expected}: {detail}")
            }
            IssueKind::InvalidEnumValue {
                field,
                value,
                allowed,
            } => {
                format!(
                    "`{field}` is `{value}`, expected one of {}",
                    quote_list(allowed)
                )
            }
            IssueKind::UnknownNodeType { found: Some(t) } => {
                format!("unknown node type `{t}`")
            }
            IssueKind::UnknownNodeType { found: None } => "node has no `data.node_type`".to_owned(),
        }
    }

    /// A hint on how to fix it.
    pub fn help(&self) -> String {
        match &self.kind {
            IssueKind::InvalidFieldType { expected, .. } => {
                format!("write {} {expected} here", article(expected))
            }
            IssueKind::UnknownConfigKey { .. } => {
                "check the spelling against docs/flow-format.md, or remove the key".to_owned()
            }
            IssueKind::ConflictingAlias { alias, .. } => {
                format!("remove `{alias}` or give it the same value")
            }
            IssueKind::InvalidJsonString { expected, .. } => {
                format!("write a JSON {expected} (or its JSON text as a string)")
            }
            IssueKind::InvalidEnumValue { allowed, .. } => {
                format!("use one of {}", quote_list(allowed))
            }
            IssueKind::UnknownNodeType { .. } => {
                format!(
                    "use one of {}",
                    quote_list(crate::NodeKind::SUPPORTED_NAMES)
                )
            }
        }
    }
}

pub(crate) fn article(word: &str) -> &'static str {
    match word.as_bytes().first() {
        Some(b'a' | b'e' | b'i' | b'o' | b'u') => "an",
        _ => "a",
    }
}

/// `a`, `b` or `c` → "`a`, `b`, `c`".
pub(crate) fn quote_list(items: &[&str]) -> String {
    items
        .iter()
        .map(|s| format!("`{s}`"))
        .collect::<Vec<_>>()
        .join(", ")
}
