//! Rendering reports: rustc-style text for people, JSON for tools.

use std::fmt::Write as _;

use crate::{Diagnostic, FileReport, Skipped};

/// Renders one file's report like rustc: a header per diagnostic, the source line with a caret,
/// the node/edge and a help line, then a summary line.
pub fn render_human(report: &FileReport) -> String {
    let mut out = String::new();
    for d in &report.diagnostics {
        render_one(&mut out, report, d);
        out.push('\n');
    }
    let (e, w) = (report.error_count(), report.warning_count());
    let _ = writeln!(
        out,
        "{}: {}",
        report.path,
        match (e, w) {
            (0, 0) => "ok".to_owned(),
            _ => format!("{} error{}, {} warning{}", e, plural(e), w, plural(w)),
        }
    );
    out
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn render_one(out: &mut String, report: &FileReport, d: &Diagnostic) {
    let _ = writeln!(out, "{}[{}]: {}", d.severity.as_str(), d.rule, d.message);
    let line_text = match (d.line, &report.source) {
        (Some(line), Some(src)) => src.line_text(line),
        _ => None,
    };
    match (d.line, d.column) {
        (Some(line), Some(col)) => {
            let gutter = " ".repeat(line.to_string().len());
            let _ = writeln!(out, "{gutter}--> {}:{line}:{col}", report.path);
            if let Some(text) = line_text {
                let shown: String = text.chars().take(200).collect();
                let start = (col as usize).saturating_sub(1);
                let width = token_width(&shown, start);
                let pad: String = shown
                    .chars()
                    .take(start)
                    .map(|c| if c == '\t' { '\t' } else { ' ' })
                    .collect();
                let _ = writeln!(out, "{gutter} |");
                let _ = writeln!(out, "{line} | {shown}");
                let _ = writeln!(out, "{gutter} | {pad}{}", "^".repeat(width.max(1)));
            }
        }
        _ => {
            let _ = writeln!(out, " --> {}", report.path);
        }
    }
    let indent = d.line.map_or(1, |l| l.to_string().len());
    let gutter = " ".repeat(indent);
    if let Some(node) = &d.node {
        let _ = writeln!(out, "{gutter} = node: {node}");
    }
    if let Some(e) = &d.edge {
        let _ = writeln!(
            out,
            "{gutter} = edge: {} --{}--> {}",
            e.source, e.label, e.target
        );
    }
    if !d.pointer.is_empty() {
        let _ = writeln!(out, "{gutter} = at: {}", d.pointer);
    }
    if let Some(help) = &d.help {
        let _ = writeln!(out, "{gutter} = help: {help}");
    }
}

/// How many characters the caret underlines: a whole string literal, a word, or one character.
fn token_width(line: &str, start: usize) -> usize {
    let chars: Vec<char> = line.chars().skip(start).collect();
    match chars.first() {
        Some(&q @ ('"' | '\'')) => {
            // JSON and YAML double quotes escape with a backslash; YAML single quotes double up.
            let mut escaped = false;
            let mut i = 1;
            while i < chars.len() {
                let c = chars[i];
                if escaped {
                    escaped = false;
                } else if q == '"' && c == '\\' {
                    escaped = true;
                } else if c == q {
                    if q == '\'' && chars.get(i + 1) == Some(&'\'') {
                        i += 2;
                        continue;
                    }
                    return (i + 1).min(80);
                }
                i += 1;
            }
            chars.len().min(80)
        }
        Some('{' | '[' | '-') | None => 1,
        Some(_) => chars
            .iter()
            .take_while(|c| !matches!(c, ',' | '}' | ']' | ':' | '#'))
            .count()
            .max(1),
    }
    .min(80)
}

#[derive(serde::Serialize)]
struct JsonReport<'a> {
    files: Vec<JsonFile<'a>>,
    #[serde(skip_serializing_if = "<[Skipped]>::is_empty")]
    skipped: &'a [Skipped],
}

#[derive(serde::Serialize)]
struct JsonFile<'a> {
    path: &'a str,
    diagnostics: &'a [Diagnostic],
}

/// Renders reports as `{"files":[{"path":…,"diagnostics":[{rule,severity,message,node,edge,pointer,line,column,help}]}]}`.
pub fn render_json(reports: &[FileReport]) -> String {
    render_json_with_skipped(reports, &[])
}

/// [`render_json`] plus the files a directory walk skipped as not flows, as a `skipped` list of
/// `{path, reason}` (left out when empty).
pub fn render_json_with_skipped(reports: &[FileReport], skipped: &[Skipped]) -> String {
    let doc = JsonReport {
        files: reports
            .iter()
            .map(|r| JsonFile {
                path: &r.path,
                diagnostics: &r.diagnostics,
            })
            .collect(),
        skipped,
    };
    serde_json::to_string_pretty(&doc).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}
