//! The functions' environment: the process environment over an optional `.env` at the project
//! root, narrowed to the names a configuration lists.

use std::collections::BTreeMap;
use std::path::Path;

use crate::ProjectError;

/// Parses `.env` text: `NAME=value` lines (`export NAME=value` too), blank lines and `#`
/// comments skipped. A value may be `"double-quoted"` (with `\n`, `\t`, `\"`, `\\` escapes),
/// `'single-quoted'` (literal), or bare (trimmed, a ` #` comment removed). `Err` names the line
/// and what is wrong, never the value.
pub fn parse_dotenv(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let n = n + 1;
        let line = line.trim_start_matches('\u{feff}').trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").map_or(line, str::trim_start);
        let Some((name, value)) = line.split_once('=') else {
            return Err(format!("line {n} is not `NAME=value`"));
        };
        let name = name.trim();
        let valid = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(format!("line {n}: `{name}` is not a variable name"));
        }
        let value = value.trim();
        let value = if let Some(rest) = value.strip_prefix('"') {
            let Some(end) = closing_quote(rest) else {
                return Err(format!(
                    "line {n}: the value of `{name}` has no closing `\"`"
                ));
            };
            unescape(&rest[..end])
        } else if let Some(rest) = value.strip_prefix('\'') {
            let Some(end) = rest.find('\'') else {
                return Err(format!(
                    "line {n}: the value of `{name}` has no closing `'`"
                ));
            };
            rest[..end].to_owned()
        } else {
            match value.find(" #") {
                Some(i) => value[..i].trim_end().to_owned(),
                None => value.to_owned(),
            }
        };
        out.push((name.to_owned(), value));
    }
    Ok(out)
}

/// The index of the first `"` not escaped by a backslash.
fn closing_quote(s: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            '\\' if !escaped => escaped = true,
            '"' if !escaped => return Some(i),
            _ => escaped = false,
        }
    }
    None
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// The environment of a project's functions: the variables of `<root>/.env` (when it exists),
/// each replaced by the process environment's value when that is set, plus the rest of the
/// process environment. `only` (`[functions] env`) narrows it to those names, each of which
/// must then be set in one of the two.
pub fn environment(
    root: &Path,
    only: Option<&[String]>,
) -> Result<BTreeMap<String, String>, ProjectError> {
    let path = root.join(".env");
    let mut vars = BTreeMap::new();
    match std::fs::read(&path) {
        Ok(bytes) => {
            let text = String::from_utf8(bytes).map_err(|_| ProjectError::Env {
                path: path.display().to_string(),
                message: "not UTF-8 text".into(),
            })?;
            let pairs = parse_dotenv(&text).map_err(|message| ProjectError::Env {
                path: path.display().to_string(),
                message,
            })?;
            vars.extend(pairs);
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(ProjectError::Env {
                path: path.display().to_string(),
                message: e.to_string(),
            });
        }
    }
    vars.extend(
        std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
    );
    match only {
        None => Ok(vars),
        Some(names) => names
            .iter()
            .map(|n| match vars.get(n) {
                Some(v) => Ok((n.clone(), v.clone())),
                None => Err(ProjectError::MissingVariable { name: n.clone() }),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotenv_lines_are_read_like_dotenv_tools_do() {
        let text = "# secrets\n\nSHOP_NAME=Crumb & Co\nexport API_KEY = \"sk-1\\n2 \\\"q\\\"\"\nRAW='a # b \\n'\nBARE=value # a comment\nEMPTY=\n";
        assert_eq!(
            parse_dotenv(text).unwrap(),
            [
                ("SHOP_NAME".to_owned(), "Crumb & Co".to_owned()),
                ("API_KEY".to_owned(), "sk-1\n2 \"q\"".to_owned()),
                ("RAW".to_owned(), "a # b \\n".to_owned()),
                ("BARE".to_owned(), "value".to_owned()),
                ("EMPTY".to_owned(), String::new()),
            ]
        );
        let err = parse_dotenv("OK=1\nnot a line with secret-value\n").unwrap_err();
        assert_eq!(err, "line 2 is not `NAME=value`");
        let err = parse_dotenv("1BAD=secret-value").unwrap_err();
        assert!(!err.contains("secret-value"), "{err}");
        assert!(parse_dotenv("Q=\"unclosed secret").is_err());
    }
}
