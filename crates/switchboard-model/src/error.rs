//! Errors of the model crate.

use crate::value::Pos;

/// A syntax error in a JSON or YAML document.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SyntaxError {
    /// What is wrong, in lowercase, without a trailing period.
    pub message: String,
    /// Where in the source.
    pub pos: Pos,
}

/// Why a document could not be loaded as a flow at all.
///
/// Both kinds stop loading: the validator reports them as `invalid-document` and
/// `unknown-shape`. Every other problem is reported as a diagnostic on a loaded flow.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// Not parseable as JSON/YAML, root not an object, duplicate keys, several YAML documents,
    /// YAML tags, merge keys, NaN/Inf, or too large.
    #[error("invalid document: {message}")]
    InvalidDocument {
        /// What is wrong.
        message: String,
        /// Where in the source.
        pos: Pos,
    },
    /// The root object is neither a compiled flow (`definition`) nor a node list (`nodes`).
    #[error("unknown shape: {message}")]
    UnknownShape {
        /// What was found instead.
        message: String,
        /// Where in the source (the root object).
        pos: Pos,
    },
}

impl LoadError {
    /// The validation rule that reports this error.
    pub fn rule(&self) -> &'static str {
        match self {
            LoadError::InvalidDocument { .. } => "invalid-document",
            LoadError::UnknownShape { .. } => "unknown-shape",
        }
    }

    /// Where in the source.
    pub fn pos(&self) -> Pos {
        match self {
            LoadError::InvalidDocument { pos, .. } | LoadError::UnknownShape { pos, .. } => *pos,
        }
    }

    /// The message without the kind prefix.
    pub fn message(&self) -> &str {
        match self {
            LoadError::InvalidDocument { message, .. }
            | LoadError::UnknownShape { message, .. } => message,
        }
    }
}

impl From<SyntaxError> for LoadError {
    fn from(e: SyntaxError) -> Self {
        LoadError::InvalidDocument {
            message: e.message,
            pos: e.pos,
        }
    }
}
