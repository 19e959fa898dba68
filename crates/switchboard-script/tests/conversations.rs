//! Whole conversations are fixtures: every `fixtures/conversations/*.yaml` runs offline, its
//! expectations must hold, and its transcript (outbound payloads, events, final variables) is
//! snapshotted. Add a case by adding a file.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use switchboard_script::run_script_file;

fn check(path: &std::path::Path) -> String {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let transcript = rt
        .block_on(run_script_file(path))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::to_string_pretty(&transcript).unwrap()
}

#[test]
fn conversations() {
    insta::glob!("../../../fixtures/conversations", "*.yaml", |path| {
        insta::assert_snapshot!(check(path));
    });
}
