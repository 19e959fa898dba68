//! The fixtures are the tests: every file of `fixtures/flows/valid` validates with no error, every
//! file `fixtures/flows/invalid/<rule>__<what>.*` reports `<rule>`, and the human report of each is
//! snapshotted. Add a case by adding a file.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use switchboard_validator::{
    FileReport, Options, RULES, Registries, Severity, check_file, render_human,
};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Validates a fixture with its sidecar registries (if any), under a stable relative path.
fn check(path: &Path) -> FileReport {
    let bytes = std::fs::read(path).unwrap();
    let rel = path
        .strip_prefix(root().canonicalize().unwrap())
        .unwrap_or(path)
        .to_string_lossy()
        .replace('\\', "/");
    let stem = path.file_stem().unwrap().to_string_lossy();
    let sidecar = path.with_file_name(format!("{stem}.registries.json"));
    let mut options = Options::default();
    if sidecar.is_file() {
        let text = std::fs::read_to_string(&sidecar).unwrap();
        options.registries = serde_json::from_str::<Registries>(&text).unwrap();
    }
    check_file(&rel, &bytes, &options)
}

fn is_fixture(path: &Path) -> bool {
    let name = path.file_name().unwrap().to_string_lossy();
    !name.ends_with(".registries.json")
}

#[test]
fn valid_fixtures_have_no_errors() {
    insta::glob!(
        "../../../fixtures/flows/valid",
        "*.{json,yaml,yml}",
        |path| {
            let report = check(&path.canonicalize().unwrap());
            let errors: Vec<_> = report
                .diagnostics
                .iter()
                .filter(|d| d.severity == Severity::Error)
                .collect();
            assert!(errors.is_empty(), "{}: {errors:#?}", path.display());
            insta::assert_snapshot!(render_human(&report));
        }
    );
}

#[test]
fn invalid_fixtures_report_their_rule() {
    insta::glob!(
        "../../../fixtures/flows/invalid",
        "*.{json,yaml,yml}",
        |path| {
            if !is_fixture(path) {
                return;
            }
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            let rule = name.split("__").next().unwrap();
            assert!(
                RULES.iter().any(|r| r.name == rule),
                "{name}: `{rule}` is not a rule name (fixtures are named <rule>__<what>.json)"
            );
            let report = check(&path.canonicalize().unwrap());
            assert!(
                report.diagnostics.iter().any(|d| d.rule == rule),
                "{name}: expected `{rule}`, got {:#?}",
                report
                    .diagnostics
                    .iter()
                    .map(|d| (d.rule, &d.message))
                    .collect::<Vec<_>>()
            );
            insta::assert_snapshot!(render_human(&report));
        }
    );
}

#[test]
fn every_rule_has_an_invalid_fixture() {
    // A flow in `fixtures/flows/invalid/<rule>__<what>.*`, or — for the rules about a Kapso
    // project's own files (`workflow.yaml`, the definitions) — a small failing project
    // `fixtures/projects/<rule>__<what>/` (checked end to end by the CLI's `tests/projects.rs`).
    let listing = |dir: PathBuf| -> Vec<String> {
        std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect()
    };
    let mut names = listing(root().join("fixtures/flows/invalid"));
    let projects: Vec<String> = listing(root().join("fixtures/projects"))
        .into_iter()
        .filter(|n| {
            root()
                .join("fixtures/projects")
                .join(n)
                .join("kapso.yaml")
                .is_file()
        })
        .collect();
    for p in &projects {
        if let Some(rule) = p.split("__").next().filter(|_| p.contains("__")) {
            assert!(
                RULES.iter().any(|r| r.name == rule),
                "fixtures/projects/{p}: `{rule}` is not a rule name"
            );
        }
    }
    names.extend(projects);
    let missing: Vec<&str> = RULES
        .iter()
        .map(|r| r.name)
        .filter(|rule| !names.iter().any(|n| n.starts_with(&format!("{rule}__"))))
        .collect();
    assert!(
        missing.is_empty(),
        "rules without a fixture in fixtures/flows/invalid or fixtures/projects: {missing:?}"
    );
}

#[test]
fn spec_examples_yield_no_diagnostic() {
    // The three examples of the flow format end on a message; since `dead-end` was narrowed
    // (validation-rules §9: final messages are normal ends) they validate without a diagnostic.
    for file in [
        "support_triage.json",
        "echo.yaml",
        "order_review_canonical.json",
    ] {
        let report = check(
            &root()
                .join("fixtures/flows/valid")
                .join(file)
                .canonicalize()
                .unwrap(),
        );
        let got: Vec<_> = report
            .diagnostics
            .iter()
            .map(|d| (d.rule, d.node.as_deref()))
            .collect();
        assert_eq!(got, [], "{file}");
    }
}

#[test]
fn every_rule_is_documented_and_every_documented_rule_exists() {
    let doc = std::fs::read_to_string(root().join("docs/diagnostics.md")).unwrap();
    let documented: Vec<&str> = doc
        .lines()
        .filter_map(|l| l.strip_prefix("### `").and_then(|r| r.strip_suffix('`')))
        .collect();
    let in_code: Vec<&str> = RULES.iter().map(|r| r.name).collect();
    let undocumented: Vec<_> = in_code.iter().filter(|r| !documented.contains(r)).collect();
    let unknown: Vec<_> = documented.iter().filter(|r| !in_code.contains(r)).collect();
    assert!(
        undocumented.is_empty(),
        "rules missing from docs/diagnostics.md: {undocumented:?}"
    );
    assert!(
        unknown.is_empty(),
        "docs/diagnostics.md documents rules the validator lacks: {unknown:?}"
    );
    let mut sorted = documented.clone();
    sorted.dedup();
    assert_eq!(sorted.len(), documented.len(), "a rule is documented twice");
}
