//! The file-system front end shared by `cargo xtask validate` and `switchboard validate`
//! (feature `fs`): collect flow files, read them, validate them, pick the exit status.
//!
//! A flow file `x.json` may have a sibling `x.registries.json` with [`crate::Registries`] for
//! that file (used by the fixtures of `unresolved-reference` and `call-cycle`); such sidecars
//! are never validated as flows themselves.

use std::path::{Path, PathBuf};

use crate::{FileReport, Options, Registries};

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
    /// One report per flow file, in path order.
    pub reports: Vec<FileReport>,
    /// Paths that could not be read.
    pub errors: Vec<RunError>,
}

impl Run {
    /// 0: no error diagnostics; 1: error diagnostics; 2: unreadable files or files that are
    /// not flows (`invalid-document`, `unknown-shape`).
    pub fn exit_code(&self) -> i32 {
        let not_a_flow = self.reports.iter().any(|r| {
            r.diagnostics
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

    /// Renders every report.
    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Json => crate::render_json(&self.reports),
            Format::Human => {
                let mut out = String::new();
                for r in &self.reports {
                    out.push_str(&crate::render_human(r));
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

/// Expands directories (recursively, sorted) into flow files; files are kept as given.
pub fn collect(paths: &[PathBuf]) -> (Vec<PathBuf>, Vec<RunError>) {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for p in paths {
        match std::fs::metadata(p) {
            Ok(m) if m.is_dir() => walk(p, &mut files, &mut errors),
            Ok(_) => files.push(p.clone()),
            Err(source) => errors.push(RunError::Io {
                path: p.display().to_string(),
                source,
            }),
        }
    }
    (files, errors)
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>, errors: &mut Vec<RunError>) {
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
            walk(&p, files, errors);
        } else if is_flow_file(&p) {
            files.push(p);
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

/// Validates files and directories. A file's sidecar registries replace `options.registries`.
pub fn run(paths: &[PathBuf], options: &Options) -> Run {
    let (files, mut errors) = collect(paths);
    let mut reports = Vec::with_capacity(files.len());
    for f in files {
        let bytes = match std::fs::read(&f) {
            Ok(b) => b,
            Err(source) => {
                errors.push(RunError::Io {
                    path: f.display().to_string(),
                    source,
                });
                continue;
            }
        };
        let side = sidecar(&f);
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
        reports.push(crate::check_file(&f.display().to_string(), &bytes, &opts));
    }
    Run { reports, errors }
}
