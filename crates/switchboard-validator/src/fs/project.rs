//! Kapso projects on disk (the repository `kapso pull` writes): finding the project around a
//! path, reading its workflows, functions and remote map, and validating it as a whole.
//!
//! A directory holding `kapso.yaml` — the path given, or its nearest ancestor — is a project.
//! Its workflows are `workflows/*/workflow.yaml` (each one's graph is its `definition` file,
//! `definition.json` by default); its functions are `functions/<slug>/` (with `function.yaml`
//! and `index.js`); `.kapso/remote-map.json`, when present, maps Kapso uuids to slugs. Nothing
//! else of the tree is read: `kapso.yaml`, `.kapso/`, `function.yaml`, `package*.json`,
//! `node_modules/` and dot-folders are never reported as broken flows.

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};
use switchboard_model::{LoadError, Loaded};

use super::RunError;
use crate::project::{
    self as pure, FunctionFile, PROJECT_MARKER, RegistryWorkflow, RemoteMap, WorkflowFacts,
    WorkflowFile, WorkflowStatus, WorkflowTrigger,
};
use crate::{Diagnostic, FileReport, Options, Skipped};

/// One workflow of a project.
#[derive(Clone, Debug)]
pub struct Workflow {
    /// Its folder under `workflows/`.
    pub folder: String,
    /// Its id: the `slug` of `workflow.yaml` when well formed, else the folder name.
    pub slug: String,
    /// Its Kapso uuid, from the remote map.
    pub id: Option<String>,
    /// `workflows/<folder>/workflow.yaml`.
    pub settings_path: PathBuf,
    /// The text of `workflow.yaml` (`None` when the folder has none).
    pub settings_text: Option<String>,
    /// The settings read from it (`None` without a readable mapping).
    pub settings: Option<WorkflowFile>,
    /// The problems of `workflow.yaml` itself.
    settings_diagnostics: Vec<Diagnostic>,
    /// The definition file (the graph).
    pub definition_path: PathBuf,
    /// Its bytes, when it exists.
    pub definition: Option<Vec<u8>>,
    /// Why the definition may be stale (`workflow.ts`, `workflow.js`), if it may be.
    pub stale_source: Option<&'static str>,
}

impl Workflow {
    /// `status` (default `draft`).
    pub fn status(&self) -> WorkflowStatus {
        self.settings.as_ref().map(|s| s.status).unwrap_or_default()
    }

    /// `name`.
    pub fn name(&self) -> Option<&str> {
        self.settings.as_ref().and_then(|s| s.name.as_deref())
    }

    /// The well-formed triggers.
    pub fn triggers(&self) -> &[WorkflowTrigger] {
        self.settings
            .as_ref()
            .map_or(&[], |s| s.triggers.as_slice())
    }

    /// Loads the definition: `None` when there is none.
    pub fn load(&self) -> Option<Result<Loaded, LoadError>> {
        let bytes = self.definition.as_ref()?;
        let path = self.definition_path.display().to_string();
        Some(switchboard_model::load_bytes(
            bytes,
            Some(&path),
            &Default::default(),
        ))
    }
}

/// One function of a project.
#[derive(Clone, Debug)]
pub struct Function {
    /// Its slug (the folder name, or the file stem of `functions/<slug>.js`).
    pub slug: String,
    /// Its Kapso uuid, from the remote map.
    pub id: Option<String>,
    /// The file holding its code.
    pub entrypoint: PathBuf,
    /// `function.yaml` (defaults when absent or unusable).
    pub settings: FunctionFile,
}

/// A Kapso project read from disk.
#[derive(Clone, Debug)]
pub struct Project {
    /// The project's root directory, as shown in reports (relative to the current directory
    /// when it is below it).
    pub root: PathBuf,
    /// The workflows, by folder name.
    pub workflows: Vec<Workflow>,
    /// The functions, by slug.
    pub functions: Vec<Function>,
    /// `.kapso/remote-map.json` (empty when absent or unusable).
    pub remote_map: RemoteMap,
    /// Project files that could not be used (an unreadable remote map or `function.yaml`).
    pub notes: Vec<Skipped>,
}

/// The project around `path` (the path itself or its nearest ancestor holding `kapso.yaml`):
/// its root as shown, and the workflow folder `path` is in, if any.
pub fn locate(path: &Path) -> Option<(PathBuf, Option<String>)> {
    let canonical = path.canonicalize().ok()?;
    let start = if canonical.is_dir() {
        canonical.as_path()
    } else {
        canonical.parent()?
    };
    let root = start
        .ancestors()
        .find(|a| a.join(PROJECT_MARKER).is_file())?
        .to_path_buf();
    let inside: Vec<String> = canonical
        .strip_prefix(&root)
        .ok()?
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => s.to_str().map(str::to_owned),
            _ => None,
        })
        .collect();
    let workflow = match inside.as_slice() {
        [w, folder, ..] if w == "workflows" => Some(folder.clone()),
        _ => None,
    };
    Some((shown(&root, path.is_absolute()), workflow))
}

/// Inside a project (around the current directory), the workflow named `name` (slug, folder or
/// Kapso uuid): the project's root as shown and the workflow's folder.
pub fn locate_slug(name: &str) -> Option<(PathBuf, String)> {
    let (root, _) = locate(Path::new("."))?;
    let project = Project::load(&root).ok()?;
    let folder = project.workflow(name)?.folder.clone();
    Some((root, folder))
}

/// `root` relative to the current directory when it is below it (or above it, with `..`),
/// else absolute.
fn shown(root: &Path, absolute: bool) -> PathBuf {
    if absolute {
        return root.to_path_buf();
    }
    let Some(cwd) = std::env::current_dir()
        .ok()
        .and_then(|c| c.canonicalize().ok())
    else {
        return root.to_path_buf();
    };
    if let Ok(rel) = root.strip_prefix(&cwd) {
        return rel.to_path_buf();
    }
    if let Ok(rel) = cwd.strip_prefix(root) {
        return rel.components().map(|_| "..").collect();
    }
    root.to_path_buf()
}

/// The hex sha256 of `bytes`.
fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn io(path: &Path, source: std::io::Error) -> RunError {
    RunError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// The entries of a directory, sorted, without dot-entries; none when it does not exist.
fn entries(dir: &Path) -> Result<Vec<PathBuf>, RunError> {
    let read = match std::fs::read_dir(dir) {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(dir, e)),
    };
    let mut out: Vec<PathBuf> = read
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            !p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.'))
        })
        .collect();
    out.sort();
    Ok(out)
}

impl Project {
    /// Reads the project at `root` (a directory holding `kapso.yaml`).
    pub fn load(root: &Path) -> Result<Project, RunError> {
        let mut notes = Vec::new();
        let map_path = root.join(".kapso").join("remote-map.json");
        let remote_map = match std::fs::read_to_string(&map_path) {
            Ok(text) => RemoteMap::parse(&text).unwrap_or_else(|reason| {
                notes.push(Skipped {
                    path: map_path.display().to_string(),
                    reason: format!("{reason}; Kapso uuids are not resolved to slugs"),
                });
                RemoteMap::default()
            }),
            Err(_) => RemoteMap::default(),
        };
        let mut workflows = Vec::new();
        for dir in entries(&root.join("workflows"))? {
            if !dir.is_dir() {
                continue;
            }
            let Some(folder) = dir.file_name().and_then(|n| n.to_str()).map(str::to_owned) else {
                continue;
            };
            let settings_path = dir.join("workflow.yaml");
            let settings_text = match std::fs::read(&settings_path) {
                Ok(bytes) => Some(String::from_utf8_lossy(&bytes).into_owned()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => return Err(io(&settings_path, e)),
            };
            let (settings, settings_diagnostics) = match &settings_text {
                Some(text) => pure::read_workflow_file(text, &folder),
                None => (None, Vec::new()),
            };
            let definition = settings
                .as_ref()
                .map_or(pure::DEFAULT_DEFINITION, |s| s.definition.as_str());
            let definition_path = dir.join(definition);
            let definition_bytes = if definition_path.is_file() {
                Some(std::fs::read(&definition_path).map_err(|e| io(&definition_path, e))?)
            } else {
                None
            };
            if settings_text.is_none() && definition_bytes.is_none() {
                continue; // neither settings nor a graph: not a workflow
            }
            let slug = settings
                .as_ref()
                .and_then(|s| s.slug.clone())
                .unwrap_or_else(|| folder.clone());
            let stale_source = if dir.join("workflow.ts").is_file() {
                Some("workflow.ts")
            } else {
                let js = dir.join("workflow.js");
                let pulled = remote_map
                    .workflows
                    .get(&slug)
                    .and_then(|e| e.generated_hash.as_deref());
                match (std::fs::read(&js), pulled) {
                    (Ok(bytes), Some(hash)) if sha256_hex(&bytes) != hash => Some("workflow.js"),
                    _ => None,
                }
            };
            workflows.push(Workflow {
                id: remote_map.workflow_id(&slug).map(str::to_owned),
                folder,
                slug,
                settings_path,
                settings_text,
                settings,
                settings_diagnostics,
                definition_path,
                definition: definition_bytes,
                stale_source,
            });
        }
        let mut functions = Vec::new();
        for path in entries(&root.join("functions"))? {
            let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_owned) else {
                continue;
            };
            if path.is_dir() {
                let settings_path = path.join("function.yaml");
                let settings = match std::fs::read_to_string(&settings_path) {
                    Ok(text) => pure::read_function_file(&text).unwrap_or_else(|reason| {
                        notes.push(Skipped {
                            path: settings_path.display().to_string(),
                            reason: format!("{reason}; the function runs with the default limits"),
                        });
                        FunctionFile::default()
                    }),
                    Err(_) => FunctionFile::default(),
                };
                let named = settings
                    .entrypoint
                    .clone()
                    .unwrap_or_else(|| "index.js".into());
                let entrypoint = [named.as_str(), "index.js", "index.mjs"]
                    .into_iter()
                    .map(|f| path.join(f))
                    .find(|f| f.is_file());
                let Some(entrypoint) = entrypoint else {
                    continue; // no code: not a function
                };
                functions.push(Function {
                    id: remote_map.function_id(&name).map(str::to_owned),
                    slug: name,
                    entrypoint,
                    settings,
                });
            } else if let Some(stem) = name
                .strip_suffix(".js")
                .or_else(|| name.strip_suffix(".mjs"))
            {
                functions.push(Function {
                    id: remote_map.function_id(stem).map(str::to_owned),
                    slug: stem.to_owned(),
                    entrypoint: path.clone(),
                    settings: FunctionFile::default(),
                });
            }
        }
        Ok(Project {
            root: root.to_path_buf(),
            workflows,
            functions,
            remote_map,
            notes,
        })
    }

    /// The workflow named `name`: its slug, its folder, or its Kapso uuid.
    pub fn workflow(&self, name: &str) -> Option<&Workflow> {
        self.workflows
            .iter()
            .find(|w| w.slug == name)
            .or_else(|| self.workflows.iter().find(|w| w.folder == name))
            .or_else(|| {
                self.workflows
                    .iter()
                    .find(|w| w.id.as_deref() == Some(name))
            })
    }

    /// The slugs of the workflows, in folder order.
    pub fn slugs(&self) -> Vec<&str> {
        self.workflows.iter().map(|w| w.slug.as_str()).collect()
    }

    /// Validates the project: the `workflow.yaml` and the definition of each workflow whose
    /// folder is in `selection` (every workflow when `None`), with the checks across the
    /// project and the project as the registry of references. Sorted by path.
    pub fn check(
        &self,
        selection: Option<&BTreeSet<String>>,
        options: &Options,
    ) -> Vec<FileReport> {
        let with_settings: Vec<(usize, &WorkflowFile)> = self
            .workflows
            .iter()
            .enumerate()
            .filter_map(|(i, w)| w.settings.as_ref().map(|s| (i, s)))
            .collect();
        let facts: Vec<WorkflowFacts> = with_settings
            .iter()
            .map(|(i, file)| WorkflowFacts {
                slug: &self.workflows[*i].slug,
                file,
                definition_exists: self.workflows[*i].definition.is_some(),
                stale_source: self.workflows[*i].stale_source,
            })
            .collect();
        let mut across: Vec<Vec<Diagnostic>> = vec![Vec::new(); self.workflows.len()];
        for ((i, _), d) in with_settings.iter().zip(pure::check_workflows(&facts)) {
            across[*i] = d;
        }
        let loaded: Vec<Option<Loaded>> = self
            .workflows
            .iter()
            .map(|w| w.load().and_then(Result::ok))
            .collect();
        let mut registries = pure::registries(
            self.workflows
                .iter()
                .zip(&loaded)
                .map(|(w, l)| RegistryWorkflow {
                    slug: &w.slug,
                    id: w.id.as_deref(),
                    flow: l.as_ref().map(|l| &l.flow),
                }),
            self.functions
                .iter()
                .map(|f| (f.slug.as_str(), f.id.as_deref())),
        );
        registries.models = options.registries.models.clone();
        registries.templates = options.registries.templates.clone();
        let mut reports = Vec::new();
        for (i, w) in self.workflows.iter().enumerate() {
            if selection.is_some_and(|s| !s.contains(&w.folder)) {
                continue;
            }
            if let Some(text) = &w.settings_text {
                let mut diagnostics = w.settings_diagnostics.clone();
                diagnostics.append(&mut across[i]);
                reports.push(crate::project_report(
                    &w.settings_path.display().to_string(),
                    text,
                    diagnostics,
                ));
            }
            if let Some(bytes) = &w.definition {
                let mut opts = options.clone();
                opts.registries = registries.clone();
                opts.flow_ids = std::iter::once(w.slug.clone())
                    .chain(w.id.clone())
                    .collect();
                reports.push(crate::check_file(
                    &w.definition_path.display().to_string(),
                    bytes,
                    &opts,
                ));
            }
        }
        reports.sort_by(|a, b| a.path.cmp(&b.path));
        reports
    }
}
