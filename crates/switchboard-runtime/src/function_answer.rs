//! The §8 function-answer contract, pure: how a function's answer is judged (runtime-semantics
//! §7.5, §8), whether it came over HTTP or from a local JavaScript function, the `not_found`
//! failure of a call no function answers to, and how names are shortened in messages.

use crate::failure::FailureKind;
use serde_json::Value;

use crate::adapters::{AdapterError, AdapterResult, FunctionCall};

/// At most 64 characters of `s` (then `…`), for error messages.
pub fn excerpt(s: &str) -> String {
    let mut chars = s.chars();
    let head: String = chars.by_ref().take(64).collect();
    if chars.next().is_some() {
        format!("{head}…")
    } else {
        head
    }
}

/// The `not_found` failure of a call no function answers to: "no `what` for id \`x\` or slug
/// \`y\`" (names shortened), or that the call names no function at all.
pub fn unresolved(call: &FunctionCall<'_>, what: &str) -> AdapterError {
    let wanted = [("id", call.function_id), ("slug", call.function_slug)]
        .into_iter()
        .filter_map(|(key, v)| v.map(|v| format!("{key} `{}`", excerpt(v))))
        .collect::<Vec<_>>();
    let message = if wanted.is_empty() {
        "the call names no function (no function_id or function_slug)".to_owned()
    } else {
        format!("no {what} for {}", wanted.join(" or "))
    };
    AdapterError::new(FailureKind::NotFound, message)
}

/// A function's answer: a 2xx status with a JSON object body is the result; another status is
/// `http_status`; a body that is not JSON, or JSON but not an object, is `invalid_json`.
pub fn judge(name: &str, status: u16, body: &[u8]) -> AdapterResult<Value> {
    if !(200..300).contains(&status) {
        return Err(AdapterError::http_status(
            status,
            format!("function `{name}` answered HTTP {status}"),
        ));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(value @ Value::Object(_)) => Ok(value),
        Ok(other) => Err(AdapterError::new(
            FailureKind::InvalidJson,
            format!(
                "function `{name}` answered with a JSON {}, not an object",
                json_type(&other)
            ),
        )),
        Err(e) => Err(AdapterError::new(
            FailureKind::InvalidJson,
            format!("function `{name}` answered with a body that is not JSON ({e})"),
        )),
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_names_are_cut() {
        assert_eq!(excerpt("short"), "short");
        assert_eq!(excerpt(&"x".repeat(100)), format!("{}…", "x".repeat(64)));
    }
}
