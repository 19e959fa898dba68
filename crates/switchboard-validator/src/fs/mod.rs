//! The file-system front end shared by `cargo xtask validate` and `switchboard validate`
//! (feature `fs`): collect flow files and Kapso projects, read them, validate them, pick the
//! exit status.
//!
//! A path inside a Kapso project (a directory holding `kapso.yaml`, or below one) is validated
//! in project mode ([`project`]): its workflows (`workflows/*/workflow.yaml` and their
//! definitions) with the project as the registry, and nothing else of the tree. Inside a
//! project, a path may also be a workflow's slug. Elsewhere, directories are walked
//! recursively in sorted order, skipping `node_modules/` and dot-folders; a walked JSON or YAML
//! file that is not a flow (no `nodes`, `edges` or `definition`) is listed as skipped. A file
//! named on the command line is always validated.
//!
//! A flow file `x.json` may have a sibling `x.registries.json` with [`crate::Registries`] for
//! that file (used by the fixtures of `unresolved-reference` and `call-cycle`); such sidecars
//! are never validated as flows themselves.

pub mod project;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use switchboard_model::{Encoding, Value, detect_encoding};

use crate::{FileReport, Options, Registries, Skipped};

pub use project::{Project, Workflow};

/// Output format of a validation run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// rustc-like text.
    Human,
    /// `{"files": [...]}`
    Json,
}

/// Why a run could not validate everything it was given.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// A path could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A registries file is not valid.
    #[error("invalid registries file {path}: {message}")]
    Registries {
        /// The path.
        path: String,
        /// What is wrong.
        message: String,
    },
}

/// The result of validating a set of paths.
#[derive(Debug)]
pub struct Run {
    /// One report per flow file (and per `workflow.yaml` of a project), in path order.
    pub reports: Vec<FileReport>,
    /// Paths that could not be read.
    pub errors: Vec<RunError>,
    /// Files a directory walk left out (not flows), and project files that could not be used.
    pub skipped: Vec<Skipped>,
    /// The reports that belong to a Kapso project (never "not a flow").
    in_project: BTreeSet<String>,
}

impl Run {
    /// 0: no error diagnostics; 1: error diagnostics; 2: unreadable files or files that are
    /// not flows (`invalid-document`, `unknown-shape`) outside a project.
    pub fn exit_code(&self) -> i32 {
        let not_a_flow = self.reports.iter().any(|r| {
            !self.in_project.contains(&r.path)
                && r.diagnostics
                    .iter()
                    .any(|d| matches!(d.rule, "invalid-document" | "unknown-shape"))
        });
        if !self.errors.is_empty() || not_a_flow {
            2
        } else if self.reports.iter().any(FileReport::has_errors) {
            1
        } else {
            0
        }
    }

    /// `true` when the report of `path` belongs to a Kapso project.
    pub fn in_project(&self, path: &str) -> bool {
        self.in_project.contains(path)
    }

    /// Renders every report (and the skipped files).
    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Json => crate::render_json_with_skipped(&self.reports, &self.skipped),
            Format::Human => {
                let mut out = String::new();
                for r in &self.reports {
                    out.push_str(&crate::render_human(r));
                }
                for s in &self.skipped {
                    out.push_str(&format!("skipped: {}: {}\n", s.path, s.reason));
                }
                let errors: usize = self.reports.iter().map(FileReport::error_count).sum();
                let warnings: usize = self.reports.iter().map(FileReport::warning_count).sum();
                if self.reports.len() > 1 {
                    out.push_str(&format!(
                        "checked {} files: {errors} errors, {warnings} warnings\n",
                        self.reports.len()
                    ));
                }
                out
            }
        }
    }
}

/// `true` for the file names validated when walking a directory.
pub fn is_flow_file(path: &Path) -> bool {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    (name.ends_with(".json") || name.ends_with(".yaml") || name.ends_with(".yml"))
        && !name.ends_with(".registries.json")
}

/// `true` for directories a walk never enters: `node_modules` and dot-folders.
pub fn is_skipped_dir(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n == "node_modules" || n.starts_with('.'))
}

/// What a path names.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Target {
    /// A file named on the command line.
    File(PathBuf),
    /// A file found by walking a directory (skipped when it is not a flow).
    Walked(PathBuf),
    /// A Kapso project: its root (as shown) and the workflow folders asked for (`None`: all).
    Project(PathBuf, Option<String>),
}

/// Expands directories (recursively, sorted) into flow files; files are kept as given.
/// Projects are not expanded here (see [`run`]); their files are left out.
pub fn collect(paths: &[PathBuf]) -> (Vec<PathBuf>, Vec<RunError>) {
    let (targets, errors) = targets(paths);
    let files = targets
        .into_iter()
        .filter_map(|t| match t {
            Target::File(p) | Target::Walked(p) => Some(p),
            Target::Project(..) => None,
        })
        .collect();
    (files, errors)
}

fn targets(paths: &[PathBuf]) -> (Vec<Target>, Vec<RunError>) {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for p in paths {
        match std::fs::metadata(p) {
            Ok(m) => {
                if let Some((root, workflow)) = project::locate(p) {
                    out.push(Target::Project(root, workflow));
                } else if m.is_dir() {
                    walk(p, &mut out, &mut errors);
                } else {
                    out.push(Target::File(p.clone()));
                }
            }
            Err(source) => {
                // Inside a project, a bare name may be a workflow's slug.
                let name = p.to_str().filter(|s| !s.contains(['/', '\\']));
                match name.and_then(project::locate_slug) {
                    Some((root, workflow)) => out.push(Target::Project(root, Some(workflow))),
                    None => errors.push(RunError::Io {
                        path: p.display().to_string(),
                        source,
                    }),
                }
            }
        }
    }
    (out, errors)
}

fn walk(dir: &Path, out: &mut Vec<Target>, errors: &mut Vec<RunError>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(source) => {
            errors.push(RunError::Io {
                path: dir.display().to_string(),
                source,
            });
            return;
        }
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for p in paths {
        if p.is_dir() {
            if is_skipped_dir(&p) {
                continue;
            }
            if p.join(crate::project::PROJECT_MARKER).is_file() {
                out.push(Target::Project(p, None));
            } else {
                walk(&p, out, errors);
            }
        } else if is_flow_file(&p) {
            out.push(Target::Walked(p));
        }
    }
}

/// Reads a registries file.
pub fn read_registries(path: &Path) -> Result<Registries, RunError> {
    let text = std::fs::read_to_string(path).map_err(|source| RunError::Io {
        path: path.display().to_string(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| RunError::Registries {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

/// The sidecar registries path of a flow file (`x.json` → `x.registries.json`).
pub fn sidecar(path: &Path) -> PathBuf {
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    path.with_file_name(format!("{stem}.registries.json"))
}

/// `Some(reason)` when `bytes` parse as JSON or YAML but hold no flow: the root (inside a
/// `flow`/`workflow` envelope) is not a mapping with `nodes`, `edges` or `definition`. A file
/// that does not parse may be a broken flow: `None`.
pub fn not_a_flow(path: &Path, bytes: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(bytes).ok()?;
    let parsed = match detect_encoding(path.to_str(), text) {
        Encoding::Json => switchboard_model::json::parse(text.trim_start_matches('\u{feff}')),
        #[cfg(feature = "yaml")]
        Encoding::Yaml => switchboard_model::yaml::parse(text.trim_start_matches('\u{feff}')),
        #[cfg(not(feature = "yaml"))]
        Encoding::Yaml => return None,
    };
    let root = parsed.ok()?;
    let mut map = match &root {
        Value::Object(m) => m,
        other => return Some(format!("not a flow (the document is {})", describe(other))),
    };
    if map.len() == 1
        && let Some(Value::Object(inner)) = map.get("flow").or_else(|| map.get("workflow"))
    {
        map = inner;
    }
    let flow_keys = ["nodes", "edges", "definition"];
    (!flow_keys.iter().any(|k| map.contains_key(k)))
        .then(|| "not a flow (no `nodes`, `edges` or `definition`)".to_owned())
}

fn describe(v: &Value) -> String {
    match v {
        Value::Array(_) => "a list".into(),
        Value::Null => "empty".into(),
        other => format!("a {}", other.type_name()),
    }
}

/// Validates files, directories, Kapso projects and (inside a project) workflow slugs. A
/// file's sidecar registries replace `options.registries`; a project is its own registry.
pub fn run(paths: &[PathBuf], options: &Options) -> Run {
    let (targets, mut errors) = targets(paths);
    let mut reports = Vec::new();
    let mut skipped = Vec::new();
    let mut in_project = BTreeSet::new();
    // Projects are validated once each, with every workflow asked for.
    let mut projects: BTreeMap<PathBuf, Option<BTreeSet<String>>> = BTreeMap::new();
    for t in &targets {
        if let Target::Project(root, workflow) = t {
            let entry = projects
                .entry(root.clone())
                .or_insert_with(|| Some(BTreeSet::new()));
            match (workflow, entry.as_mut()) {
                (Some(w), Some(set)) => {
                    set.insert(w.clone());
                }
                (None, _) => *entry = None,
                (Some(_), None) => {}
            }
        }
    }
    let mut done_projects = BTreeSet::new();
    for t in targets {
        let (path, walked) = match t {
            Target::File(p) => (p, false),
            Target::Walked(p) => (p, true),
            Target::Project(root, _) => {
                if !done_projects.insert(root.clone()) {
                    continue;
                }
                let selection = projects.get(&root).cloned().flatten();
                match Project::load(&root) {
                    Ok(project) => {
                        let mut selection = selection;
                        if let Some(set) = &mut selection {
                            // Folders asked for by name or slug.
                            *set = set
                                .iter()
                                .filter_map(|w| project.workflow(w).map(|w| w.folder.clone()))
                                .collect();
                        }
                        let project_reports = project.check(selection.as_ref(), options);
                        in_project.extend(project_reports.iter().map(|r| r.path.clone()));
                        reports.extend(project_reports);
                        skipped.extend(project.notes.iter().cloned());
                    }
                    Err(e) => errors.push(e),
                }
                continue;
            }
        };
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(source) => {
                errors.push(RunError::Io {
                    path: path.display().to_string(),
                    source,
                });
                continue;
            }
        };
        if walked && let Some(reason) = not_a_flow(&path, &bytes) {
            skipped.push(Skipped {
                path: path.display().to_string(),
                reason,
            });
            continue;
        }
        let side = sidecar(&path);
        let mut opts = options.clone();
        if side.is_file() {
            match read_registries(&side) {
                Ok(r) => opts.registries = r,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            }
        }
        reports.push(crate::check_file(
            &path.display().to_string(),
            &bytes,
            &opts,
        ));
    }
    Run {
        reports,
        errors,
        skipped,
        in_project,
    }
}
