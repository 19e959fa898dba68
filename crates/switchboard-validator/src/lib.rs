//! Static analysis of Switchboard flows: every rule of the validation catalogue.
//!
//! [`validate`] runs all rules over a loaded flow and returns every diagnostic it finds (never
//! only the first), each with its rule name, severity, message, node and/or edge, JSON pointer,
//! line, column and a help line. [`check_file`] adds loading, so a file that does not parse is a
//! report too. The validator is pure, synchronous and total: no I/O, no async, and no input makes
//! it panic. It depends on the model crate, petgraph (graph analysis), minijinja (template
//! syntax), jmespath and jsonschema; it must not depend on the runtime, on any HTTP client or on
//! an async runtime.
//!
//! ```
//! use switchboard_validator::{check_file, Options, Severity};
//!
//! let report = check_file("hello.json", br#"{"nodes": [
//!     {"id": "start", "data": {"node_type": "start"}},
//!     {"id": "hi", "data": {"node_type": "send_text", "config": {}}}],
//!   "edges": [{"source": "start", "target": "hi"}]}"#, &Options::default());
//! let d = report.diagnostics.iter().find(|d| d.severity == Severity::Error).unwrap();
//! assert_eq!(d.rule, "missing-required-field");
//! assert_eq!(d.node.as_deref(), Some("hi"));
//! assert_eq!((d.line, d.column), (Some(3), Some(63)));
//! assert!(report.has_errors());
//! ```

mod ai;
mod context;
mod edges;
#[cfg(feature = "fs")]
pub mod fs;
mod graph;
mod nodes;
pub mod project;
mod references;
mod render;
pub mod rules;
mod structure;
mod templates;
mod tools;
mod util;
mod whatsapp;

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use switchboard_model::{Flow, LoadOptions, Loaded, Pos, Source};

pub use render::{render_human, render_json, render_json_with_skipped};
pub use rules::{RULES, Rule};

/// How serious a diagnostic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The flow must not be activated or started.
    Error,
    /// Reported, never blocking.
    Warning,
}

impl Severity {
    /// `error` or `warning`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// The edge a diagnostic concerns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EdgeRef {
    /// `source` (`""` when missing).
    pub source: String,
    /// `label` (absent reads as `next`).
    pub label: String,
    /// `target` (`""` when missing).
    pub target: String,
}

/// One finding of the validator.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Diagnostic {
    /// The rule name (kebab-case, stable).
    pub rule: &'static str,
    /// Error or warning.
    pub severity: Severity,
    /// What is wrong (lowercase, no trailing period).
    pub message: String,
    /// The node it concerns.
    pub node: Option<String>,
    /// The edge it concerns.
    pub edge: Option<EdgeRef>,
    /// JSON pointer into the document.
    pub pointer: String,
    /// 1-based line, when the source is known.
    pub line: Option<u32>,
    /// 1-based column (in characters), when the source is known.
    pub column: Option<u32>,
    /// How to fix it.
    pub help: Option<String>,
    /// Byte offset in the source.
    #[serde(skip)]
    pub pos: Pos,
}

/// The known targets of references. A registry that is `None` is not checked.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registries {
    /// Function ids and slugs.
    pub functions: Option<BTreeSet<String>>,
    /// Flow ids/slugs/names, each with the flows it calls.
    pub flows: Option<BTreeMap<String, FlowEntry>>,
    /// Model names and ids.
    pub models: Option<BTreeSet<String>>,
    /// WhatsApp template ids or names.
    pub templates: Option<BTreeSet<String>>,
}

/// A flow of the flow registry.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowEntry {
    /// The flows it calls (ids, slugs or names).
    #[serde(default)]
    pub calls: Vec<String>,
}

/// What the validator knows beyond the flow itself.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Registries for `unresolved-reference` and cross-flow `call-cycle`.
    pub registries: Registries,
    /// Other identifiers of this flow (its id or slug), besides its `name`, for `call-cycle`.
    pub flow_ids: Vec<String>,
    /// The `provider_model_id`s a model map resolves (`[llm] models` of `switchboard.toml`): a
    /// node naming its model only by an id outside this set is `model-id-unmapped`.
    pub model_ids: BTreeSet<String>,
    /// Loading limits.
    pub load: LoadOptions,
}

/// A file a directory walk did not validate (it is not a flow), or a project file that could
/// not be used, with the reason.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Skipped {
    /// The path.
    pub path: String,
    /// Why it was skipped.
    pub reason: String,
}

/// The diagnostics of one file.
#[derive(Clone, Debug, Serialize)]
pub struct FileReport {
    /// The path as given.
    pub path: String,
    /// Sorted by position, then rule name.
    pub diagnostics: Vec<Diagnostic>,
    /// The source text (absent when the file was not UTF-8).
    #[serde(skip)]
    pub source: Option<Source>,
}

impl FileReport {
    /// `true` when any diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.diagnostics
            .iter()
            .any(|d| d.severity == Severity::Error)
    }

    /// Number of errors.
    pub fn error_count(&self) -> usize {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count()
    }

    /// Number of warnings.
    pub fn warning_count(&self) -> usize {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Warning)
            .count()
    }
}

/// Validates a flow. The diagnostics have positions but no line/column (see [`validate_loaded`]).
pub fn validate(flow: &Flow, options: &Options) -> Vec<Diagnostic> {
    let mut cx = context::Ctx::new(flow, options);
    structure::check(&mut cx);
    nodes::check(&mut cx);
    ai::check(&mut cx);
    tools::check(&mut cx);
    whatsapp::check(&mut cx);
    edges::check(&mut cx);
    references::check(&mut cx);
    let analysis = templates::check(&mut cx);
    graph::check(&mut cx, &analysis);
    let mut out = cx.finish();
    for d in &mut out {
        d.message = util::shorten_quoted(std::mem::take(&mut d.message));
        d.help = d.help.take().map(util::shorten_quoted);
    }
    out
}

/// Validates a loaded flow: decoding issues plus every rule, with lines and columns, sorted.
pub fn validate_loaded(loaded: &Loaded, options: &Options) -> Vec<Diagnostic> {
    let flow = &loaded.flow;
    let mut out: Vec<Diagnostic> = loaded
        .issues
        .iter()
        .map(|i| context::issue_to_diagnostic(flow, i))
        .collect();
    out.extend(validate(flow, options));
    finish(&mut out, Some(&loaded.source));
    out
}

/// Loads and validates one file's bytes. `path` guides encoding detection and is echoed back.
pub fn check_file(path: &str, bytes: &[u8], options: &Options) -> FileReport {
    match switchboard_model::load_bytes(bytes, Some(path), &options.load) {
        Ok(loaded) => {
            let diagnostics = validate_loaded(&loaded, options);
            FileReport {
                path: path.to_owned(),
                diagnostics,
                source: Some(loaded.source),
            }
        }
        Err(e) => {
            let source = std::str::from_utf8(bytes).ok().map(Source::new);
            let rule = rules::by_name(e.rule()).unwrap_or(&rules::INVALID_DOCUMENT);
            let mut d = vec![Diagnostic {
                rule: rule.name,
                severity: rule.severity,
                message: e.message().to_owned(),
                node: None,
                edge: None,
                pointer: String::new(),
                line: None,
                column: None,
                help: Some(
                    match e {
                        switchboard_model::LoadError::UnknownShape { .. } => {
                            "a flow is `{name, definition: {nodes, edges}}`, `{name, nodes, edges}` or `{nodes, edges}`"
                        }
                        _ => "fix the syntax error; the file is not loaded until it parses",
                    }
                    .to_owned(),
                ),
                pos: e.pos(),
            }];
            finish(&mut d, source.as_ref());
            FileReport {
                path: path.to_owned(),
                diagnostics: d,
                source,
            }
        }
    }
}

/// The report of a project file (`workflow.yaml`): its diagnostics (from
/// [`project::read_workflow_file`] and [`project::check_workflows`]) with lines and columns,
/// sorted.
pub fn project_report(path: &str, text: &str, mut diagnostics: Vec<Diagnostic>) -> FileReport {
    let source = Source::new(text);
    finish(&mut diagnostics, Some(&source));
    FileReport {
        path: path.to_owned(),
        diagnostics,
        source: Some(source),
    }
}

fn finish(out: &mut [Diagnostic], source: Option<&Source>) {
    // Issues from loading are not shortened by `validate`.
    for d in out.iter_mut() {
        d.message = util::shorten_quoted(std::mem::take(&mut d.message));
        d.help = d.help.take().map(util::shorten_quoted);
    }
    if let Some(src) = source {
        let positions: Vec<Pos> = out.iter().map(|d| d.pos).collect();
        for (d, lc) in out.iter_mut().zip(src.line_cols(&positions)) {
            if let Some(lc) = lc {
                d.line = Some(lc.line);
                d.column = Some(lc.column);
            }
        }
    }
    out.sort_by(|a, b| {
        (a.pos.offset().unwrap_or(usize::MAX), a.rule)
            .cmp(&(b.pos.offset().unwrap_or(usize::MAX), b.rule))
    });
}
