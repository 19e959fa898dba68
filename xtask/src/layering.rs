//! `cargo xtask layering`: the architecture's dependency rules, checked.
//!
//! For every workspace crate, the table below says which other workspace crates and which heavy
//! third-party crates (async runtime, HTTP, databases, JavaScript, MCP, test kits, parsers) its
//! *normal* dependency tree may contain — as `cargo tree -p <crate> -e normal` resolves it, with
//! that crate's own features. Anything else fails the check, and so does a workspace member the
//! table does not name (a new crate must state its place in the layers). The runtime's modules
//! must also not import each other in a circle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};

/// Crates whose presence in a dependency tree is an architectural decision.
pub const HEAVY: &[&str] = &[
    "tokio",
    "reqwest",
    "hyper",
    "rusqlite",
    "tokio-postgres",
    "sqlx",
    "axum",
    "rquickjs",
    "rmcp",
    "insta",
    "saphyr-parser",
    "petgraph",
    "minijinja",
];

/// One crate's rule: the workspace crates and heavy crates its normal tree may contain.
pub struct Rule {
    /// The crate.
    pub krate: &'static str,
    /// Workspace crates allowed anywhere in its normal tree.
    pub workspace: &'static [&'static str],
    /// Heavy crates allowed anywhere in its normal tree.
    pub heavy: &'static [&'static str],
}

const MODEL: &str = "switchboard-model";
const VALIDATOR: &str = "switchboard-validator";
const RUNTIME: &str = "switchboard-runtime";
const HTTP: &str = "switchboard-http";

/// The layers (docs/architecture.md, "Crates and what they must not depend on").
pub const RULES: &[Rule] = &[
    Rule {
        krate: MODEL,
        workspace: &[],
        heavy: &["saphyr-parser"],
    },
    Rule {
        krate: VALIDATOR,
        workspace: &[MODEL],
        heavy: &["saphyr-parser", "petgraph", "minijinja"],
    },
    Rule {
        krate: RUNTIME,
        workspace: &[MODEL, VALIDATOR],
        heavy: &["tokio", "petgraph", "minijinja"],
    },
    Rule {
        krate: "switchboard-store-tests",
        workspace: &[MODEL, VALIDATOR, RUNTIME],
        heavy: &["tokio", "petgraph", "minijinja"],
    },
    Rule {
        krate: "switchboard-script",
        // A project script runs the project's own functions (switchboard-project, QuickJS).
        workspace: &[
            MODEL,
            VALIDATOR,
            RUNTIME,
            "switchboard-project",
            "switchboard-js",
        ],
        heavy: &[
            "tokio",
            "petgraph",
            "minijinja",
            "saphyr-parser",
            "rquickjs",
        ],
    },
    Rule {
        krate: "switchboard-project",
        // A Kapso project on an engine: read by the validator's fs front end, functions run
        // by switchboard-js; no HTTP, SQL or MCP (the caller hands over client and store).
        workspace: &[MODEL, VALIDATOR, RUNTIME, "switchboard-js"],
        heavy: &[
            "tokio",
            "petgraph",
            "minijinja",
            "saphyr-parser",
            "rquickjs",
        ],
    },
    Rule {
        krate: "switchboard-http",
        workspace: &[MODEL, VALIDATOR, RUNTIME],
        heavy: &["tokio", "petgraph", "minijinja", "reqwest", "hyper"],
    },
    Rule {
        krate: "switchboard-llm",
        workspace: &[MODEL, VALIDATOR, RUNTIME, HTTP],
        heavy: &["tokio", "petgraph", "minijinja", "reqwest", "hyper"],
    },
    Rule {
        krate: "switchboard-whatsapp",
        workspace: &[MODEL, VALIDATOR, RUNTIME, HTTP],
        heavy: &["tokio", "petgraph", "minijinja", "reqwest", "hyper"],
    },
    Rule {
        krate: "switchboard-js",
        workspace: &[MODEL, VALIDATOR, RUNTIME],
        heavy: &["tokio", "petgraph", "minijinja", "rquickjs"],
    },
    Rule {
        krate: "switchboard-mcp",
        workspace: &[MODEL, VALIDATOR, RUNTIME, HTTP],
        heavy: &["tokio", "petgraph", "minijinja", "reqwest", "hyper", "rmcp"],
    },
    Rule {
        krate: "switchboard-sqlite",
        workspace: &[MODEL, VALIDATOR, RUNTIME],
        heavy: &["tokio", "petgraph", "minijinja", "rusqlite"],
    },
    Rule {
        krate: "switchboard-postgres",
        workspace: &[MODEL, VALIDATOR, RUNTIME],
        heavy: &["tokio", "petgraph", "minijinja", "tokio-postgres"],
    },
    Rule {
        // Diagrams: pure text from a loaded flow and its diagnostics (no async, no I/O).
        krate: "switchboard-graph",
        workspace: &[MODEL, VALIDATOR],
        heavy: &["petgraph", "minijinja"],
    },
    Rule {
        krate: "switchboard-server",
        workspace: &[MODEL, VALIDATOR, RUNTIME, HTTP, "switchboard-whatsapp"],
        heavy: &["tokio", "petgraph", "minijinja", "reqwest", "hyper", "axum"],
    },
    Rule {
        krate: "switchboard",
        workspace: &[
            MODEL,
            VALIDATOR,
            RUNTIME,
            "switchboard-script",
            "switchboard-project",
            HTTP,
            "switchboard-llm",
            "switchboard-whatsapp",
            "switchboard-js",
            "switchboard-mcp",
            "switchboard-sqlite",
            "switchboard-postgres",
            "switchboard-server",
            "switchboard-graph",
        ],
        heavy: &[
            "tokio",
            "petgraph",
            "minijinja",
            "saphyr-parser",
            "reqwest",
            "hyper",
            "rusqlite",
            "tokio-postgres",
            "axum",
            "rquickjs",
            "rmcp",
        ],
    },
    Rule {
        krate: "switchboard-bench",
        workspace: &[
            MODEL,
            VALIDATOR,
            RUNTIME,
            "switchboard-sqlite",
            "switchboard-postgres",
        ],
        // The serve harness: a fake Graph API (axum) and a load driver (reqwest); the serve
        // benchmark on PostgreSQL (a fresh schema per run).
        heavy: &[
            "tokio",
            "petgraph",
            "minijinja",
            "saphyr-parser",
            "rusqlite",
            "tokio-postgres",
            "axum",
            "hyper",
            "reqwest",
        ],
    },
    Rule {
        krate: "xtask",
        workspace: &[MODEL, VALIDATOR],
        heavy: &["saphyr-parser", "petgraph", "minijinja"],
    },
];

/// A broken rule.
#[derive(Debug, PartialEq, Eq)]
pub struct Violation {
    /// The crate.
    pub krate: String,
    /// What it must not depend on (or why the check could not run).
    pub message: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.krate, self.message)
    }
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// The workspace members' names.
pub fn members(root: &Path) -> anyhow::Result<BTreeSet<String>> {
    let out = Command::new(cargo())
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(root)
        .output()
        .context("running cargo metadata")?;
    if !out.status.success() {
        bail!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    Ok(meta["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["name"].as_str().map(str::to_owned))
        .collect())
}

/// The names in a crate's normal dependency tree (the crate itself excluded), resolved with
/// its own features.
pub fn normal_tree(root: &Path, krate: &str) -> anyhow::Result<BTreeSet<String>> {
    let out = Command::new(cargo())
        .args([
            "tree",
            "-p",
            krate,
            "-e",
            "normal",
            "--prefix",
            "none",
            "--format",
            "{p}",
            "--offline",
        ])
        .current_dir(root)
        .output()
        .with_context(|| format!("running cargo tree -p {krate}"))?;
    if !out.status.success() {
        bail!(
            "cargo tree -p {krate} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split(' ').next())
        .filter(|name| !name.is_empty() && *name != krate)
        .map(str::to_owned)
        .collect())
}

/// Checks one crate's tree against its rule.
pub fn check_tree(
    rule: &Rule,
    tree: &BTreeSet<String>,
    members: &BTreeSet<String>,
) -> Vec<Violation> {
    let mut out = Vec::new();
    for dep in tree {
        let is_member = members.contains(dep);
        let allowed = if is_member {
            rule.workspace.contains(&dep.as_str())
        } else if HEAVY.contains(&dep.as_str()) {
            rule.heavy.contains(&dep.as_str())
        } else {
            true
        };
        if !allowed {
            out.push(Violation {
                krate: rule.krate.to_owned(),
                message: format!(
                    "must not depend on {dep} ({})",
                    if is_member {
                        "a workspace crate outside its layers"
                    } else {
                        "a heavy crate its layer does not allow"
                    }
                ),
            });
        }
    }
    out
}

/// The runtime's modules (top-level `src/*.rs` and `src/*/`) and the `crate::` modules each one
/// names in code (comments ignored).
pub fn runtime_modules(root: &Path) -> anyhow::Result<BTreeMap<String, BTreeSet<String>>> {
    let src = root.join("crates/switchboard-runtime/src");
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in
            std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))?
        {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().and_then(|e| e.to_str()) != Some("rs") {
                continue;
            }
            let rel = path.strip_prefix(&src)?;
            let Some(first) = rel.components().next() else {
                continue;
            };
            let module = first
                .as_os_str()
                .to_string_lossy()
                .trim_end_matches(".rs")
                .to_owned();
            let text = std::fs::read_to_string(&path)?;
            let deps = graph.entry(module.clone()).or_default();
            for line in text.lines() {
                let code = line.split("//").next().unwrap_or("");
                let mut rest = code;
                while let Some(i) = rest.find("crate::") {
                    rest = &rest[i + "crate::".len()..];
                    let name: String = rest
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    if !name.is_empty() && name != module {
                        deps.insert(name);
                    }
                }
            }
        }
    }
    Ok(graph)
}

/// Modules that can reach themselves through the import graph.
pub fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let mut out = Vec::new();
    for start in graph.keys() {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<&String> = graph[start].iter().collect();
        while let Some(m) = stack.pop() {
            if m == start {
                out.push(start.clone());
                break;
            }
            if seen.insert(m.clone()) {
                stack.extend(graph.get(m).into_iter().flatten());
            }
        }
    }
    out
}

/// Every violation in the workspace at `root`.
pub fn check(root: &Path) -> anyhow::Result<Vec<Violation>> {
    let members = members(root)?;
    let mut out = Vec::new();
    for m in &members {
        if !RULES.iter().any(|r| r.krate == m) {
            out.push(Violation {
                krate: m.clone(),
                message: "is not in the layering table (xtask/src/layering.rs): state what it may depend on".into(),
            });
        }
    }
    for rule in RULES {
        if !members.contains(rule.krate) {
            out.push(Violation {
                krate: rule.krate.to_owned(),
                message: "is in the layering table but not a workspace member".into(),
            });
            continue;
        }
        let tree = normal_tree(root, rule.krate)?;
        out.extend(check_tree(rule, &tree, &members));
    }
    for module in cycles(&runtime_modules(root)?) {
        out.push(Violation {
            krate: RUNTIME.to_owned(),
            message: format!("module `{module}` imports a module that imports it back"),
        });
    }
    Ok(out)
}

/// `cargo xtask layering`.
pub fn main(root: &Path) -> anyhow::Result<bool> {
    let violations = check(root)?;
    if violations.is_empty() {
        println!(
            "layering: {} crates, every dependency allowed; no module cycle in the runtime",
            RULES.len()
        );
        return Ok(true);
    }
    for v in &violations {
        eprintln!("layering: {v}");
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> &'static Path {
        Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
    }

    /// The workspace as it is keeps every rule.
    #[test]
    fn the_workspace_keeps_its_layers() {
        let violations = check(root()).unwrap();
        assert!(
            violations.is_empty(),
            "{}",
            violations
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        );
    }

    /// The check is not vacuous: a forbidden crate in a tree is reported.
    #[test]
    fn a_forbidden_dependency_is_reported() {
        let members: BTreeSet<String> = [MODEL, VALIDATOR, RUNTIME].map(String::from).into();
        let rule = RULES.iter().find(|r| r.krate == RUNTIME).unwrap();
        let tree: BTreeSet<String> = ["serde", "tokio", "reqwest", MODEL]
            .map(String::from)
            .into();
        let v = check_tree(rule, &tree, &members);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].message.contains("reqwest"), "{v:?}");
        let model = RULES.iter().find(|r| r.krate == MODEL).unwrap();
        let v = check_tree(model, &[VALIDATOR.to_owned()].into(), &members);
        assert_eq!(v.len(), 1, "{v:?}");
    }

    #[test]
    fn cycles_are_found() {
        let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        g.insert("a".into(), ["b".to_owned()].into());
        g.insert("b".into(), ["c".to_owned()].into());
        g.insert("c".into(), ["a".to_owned()].into());
        g.insert("d".into(), ["a".to_owned()].into());
        assert_eq!(cycles(&g), ["a", "b", "c"]);
    }
}
