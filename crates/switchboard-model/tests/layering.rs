//! Architecture invariant (docs/architecture.md): the model is pure. Its normal dependency tree
//! must not contain an async runtime, an HTTP client, a database driver or a graph library.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

#[test]
fn model_depends_on_no_io_or_graph_crates() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "tree",
            "-p",
            "switchboard-model",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8_lossy(&out.stdout);
    assert!(
        tree.lines().any(|l| l.starts_with("serde ")),
        "unexpected cargo tree output:\n{tree}"
    );
    for banned in ["tokio", "reqwest", "sqlx", "petgraph", "hyper", "rusqlite"] {
        let found: Vec<&str> = tree
            .lines()
            .filter(|l| l.split(' ').next() == Some(banned))
            .collect();
        assert!(
            found.is_empty(),
            "switchboard-model must not depend on {banned}: {found:?}"
        );
    }
}
