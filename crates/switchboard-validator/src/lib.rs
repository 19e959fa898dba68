//! Validator (being written).
