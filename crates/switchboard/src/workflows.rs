//! The flows behind a `FLOW|PROJECT` argument (`switchboard graph`, `switchboard playground`):
//! one flow file; a Kapso project (`workflows/<slug>/definition.json`, named by slug); or a
//! directory of flow files (named by file stem, as `serve --flows` registers them).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// One workflow: its name (file stem or project slug) and its file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Workflow {
    /// The name others call it by (`workflow_slug`, file stem).
    pub name: String,
    /// The flow file.
    pub path: PathBuf,
}

/// The workflows of `path`, in name order (a file: just itself).
pub fn workflows(path: &Path) -> anyhow::Result<Vec<Workflow>> {
    if path.is_file() {
        return Ok(vec![Workflow {
            name: crate::session::flow_id(path),
            path: path.to_owned(),
        }]);
    }
    if !path.is_dir() {
        bail!("{}: no such file or directory", path.display());
    }
    let kapso = path.join("workflows");
    let mut out = Vec::new();
    if kapso.is_dir() {
        let entries = std::fs::read_dir(&kapso)
            .with_context(|| format!("cannot read {}", kapso.display()))?;
        for entry in entries {
            let dir = entry?.path();
            let definition = dir.join("definition.json");
            if definition.is_file() {
                out.push(Workflow {
                    name: dir
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                    path: definition,
                });
            }
        }
    } else {
        for file in crate::serve::flow_files(path)? {
            if file.to_string_lossy().ends_with(".registries.json") {
                continue;
            }
            out.push(Workflow {
                name: crate::session::flow_id(&file),
                path: file,
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    if out.is_empty() {
        bail!(
            "{}: no flow files (*.json, *.yaml, *.yml) and no workflows/*/definition.json",
            path.display()
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_a_directory_and_a_kapso_project() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/flows/valid");
        let one = workflows(&root.join("echo.yaml")).unwrap();
        assert_eq!(one[0].name, "echo");
        let all = workflows(&root).unwrap();
        assert!(all.iter().any(|w| w.name == "support_triage"));
        let dir = std::env::temp_dir().join(format!("sb-project-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("workflows/billing")).unwrap();
        std::fs::copy(
            root.join("echo.yaml"),
            dir.join("workflows/billing/definition.json"),
        )
        .unwrap();
        let p = workflows(&dir).unwrap();
        assert_eq!(p[0].name, "billing");
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(workflows(Path::new("/nonexistent/x")).is_err());
    }
}
