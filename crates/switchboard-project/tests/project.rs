//! The example project `fixtures/projects/bakery` on an engine: every workflow registered by
//! slug and Kapso uuid, the inbound triggers of the active workflows only, the functions with
//! their `function.yaml` limits and `.env`, and a whole order — a button tap routed by the
//! project's decide function, a call by slug into another workflow, `env.KV` in the store.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::json;
use switchboard_project::{FunctionOptions, Project};
use switchboard_runtime::offline::OfflineAdapters;
use switchboard_runtime::store::{ExecutionStore, MemoryStore};
use switchboard_runtime::{Engine, EngineConfig, InboundMessage, Reply};

fn bakery() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/projects/bakery")
}

#[test]
fn the_active_workflows_claim_their_numbers() {
    let project = Project::load(&bakery()).unwrap();
    let triggers: Vec<(String, Option<String>)> = switchboard_project::inbound_triggers(&project)
        .into_iter()
        .map(|t| (t.flow_id, t.phone_number_id))
        .collect();
    // holiday-hours (paused) and new-menu (draft) have triggers too, and are not started.
    assert_eq!(
        triggers,
        [
            ("order-bot".to_owned(), Some("111000111".to_owned())),
            ("support-desk".to_owned(), Some("222000222".to_owned())),
        ]
    );
    assert_eq!(
        switchboard_project::unsupported_triggers(&project),
        [("support-desk".to_owned(), "whatsapp_event")]
    );
}

fn message(id: &str, text: &str, reply: Option<Reply>) -> InboundMessage {
    InboundMessage {
        id: id.into(),
        phone_number_id: "111000111".into(),
        from: "+14155550100".into(),
        profile_name: Some("Ana".into()),
        kind: if reply.is_some() {
            "interactive"
        } else {
            "text"
        }
        .into(),
        text: text.into(),
        reply,
        ..InboundMessage::default()
    }
}

fn tap(kind: &str, id: &str, title: &str) -> Option<Reply> {
    Some(Reply {
        kind: kind.into(),
        id: id.into(),
        title: title.into(),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_runs_through_the_projects_workflows_and_functions() {
    let project = Project::load(&bakery()).unwrap();
    let store = Arc::new(MemoryStore::new());
    let env = switchboard_project::environment(&project.root, None).unwrap();
    assert_eq!(env["SHOP_NAME"], "Crumb & Co", "from the project's .env");
    let functions = switchboard_project::functions(
        &project,
        FunctionOptions {
            env,
            kv_store: Some(store.clone()),
            ..FunctionOptions::default()
        },
    )
    .unwrap()
    .expect("the bakery has functions");
    assert_eq!(
        functions.slugs(),
        ["count-orders", "order-status", "route-menu"]
    );
    let offline = OfflineAdapters::default();
    let mut adapters = offline.adapters();
    adapters.functions = Arc::new(functions);
    let engine = Engine::builder(store.clone())
        .adapters(adapters)
        .config(EngineConfig {
            default_phone_number_id: "111000111".into(),
            ..EngineConfig::default()
        })
        .build();
    let registered = switchboard_project::register(&engine, &project).unwrap();
    assert_eq!(
        registered.workflows,
        [
            "holiday-hours",
            "new-menu",
            "order-bot",
            "support-desk",
            "take-order"
        ]
    );
    assert!(registered.refused.is_empty(), "{:?}", registered.refused);
    for t in switchboard_project::inbound_triggers(&project) {
        engine.add_trigger(t).unwrap();
    }
    for (n, (text, reply)) in [
        ("hi", None),
        ("Order a cake", tap("button_reply", "order", "Order a cake")),
        ("Carrot cake", tap("list_reply", "carrot", "Carrot cake")),
    ]
    .into_iter()
    .enumerate()
    {
        engine
            .handle_inbound(vec![message(&format!("wamid.{n}"), text, reply)])
            .await
            .unwrap();
    }
    let texts: Vec<String> = offline
        .messenger
        .take()
        .iter()
        .map(|m| format!("{:?}", m.body))
        .collect();
    assert_eq!(texts.len(), 3, "{texts:#?}");
    assert!(
        texts[1].contains("Which cake would you like?"),
        "{texts:#?}"
    );
    assert!(
        texts[2].contains("Order #1 noted: one Carrot cake. Crumb & Co will text you"),
        "{texts:#?}"
    );
    // The order counter lives in the store, in the function's namespace.
    assert_eq!(
        store
            .kv_get("count-orders", "orders")
            .await
            .unwrap()
            .as_deref(),
        Some("1")
    );
    let ex = store.execution("ex_1").await.unwrap().unwrap();
    assert_eq!(ex.vars["menu_choice"], json!("order"));
}

/// A temporary project: `files` as (path, text).
struct TempProject(PathBuf);

impl TempProject {
    fn new(name: &str, files: &[(&str, &str)]) -> TempProject {
        let dir =
            std::env::temp_dir().join(format!("switchboard-project-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for (path, text) in files {
            let p = dir.join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        TempProject(dir)
    }
}

impl Drop for TempProject {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kapso_uuids_reach_workflows_and_functions_through_the_remote_map() {
    // Platform exports name a called workflow and a function only by uuid: the remote map
    // turns them into the project's slugs, for the validator and for the engine alike.
    let p = TempProject::new(
        "uuids",
        &[
            ("kapso.yaml", "version: 1\n"),
            (
                ".kapso/remote-map.json",
                r#"{"version": 1,
                  "workflows": {"main": {"id": "w-main-uuid", "slug": "main"}, "helper": {"id": "w-helper-uuid", "slug": "helper"}},
                  "functions": {"stamp": {"id": "f-stamp-uuid", "slug": "stamp"}}}"#,
            ),
            (
                "workflows/main/workflow.yaml",
                "definition: definition.json\nname: Main\nslug: main\nstatus: active\ntriggers:\n  - {triggerType: inbound_message, phoneNumberId: \"111\"}\n",
            ),
            (
                "workflows/main/definition.json",
                r#"{"nodes": [{"id": "start", "data": {"node_type": "start", "config": {}}},
                   {"id": "go", "data": {"node_type": "call", "config": {"workflow_id": "w-helper-uuid", "workflow_name": "Helper"}}},
                   {"id": "done", "data": {"node_type": "send_text", "config": {"message": "stamped {{stamp}}"}}}],
                  "edges": [{"source": "start", "target": "go"}, {"source": "go", "target": "done"}]}"#,
            ),
            (
                "workflows/helper/workflow.yaml",
                "name: Helper\nslug: helper\nstatus: active\n",
            ),
            (
                "workflows/helper/definition.json",
                r#"{"nodes": [{"id": "start", "data": {"node_type": "start", "config": {}}},
                   {"id": "fn", "data": {"node_type": "function", "config": {"function_id": "f-stamp-uuid", "function_name": "Stamp"}}}],
                  "edges": [{"source": "start", "target": "fn"}]}"#,
            ),
            (
                "functions/stamp/function.yaml",
                "entrypoint: main.js\nfunction_type: cloudflare_worker\nname: Stamp\nruntime_config: {timeout: 5}\nslug: stamp\n",
            ),
            (
                "functions/stamp/main.js",
                "export default { async fetch(request) { const b = await request.json(); return Response.json({ vars: { stamp: b.flow_info.id + ':' + JSON.stringify(b.available_edges) } }); } };\n",
            ),
        ],
    );
    let project = Project::load(&p.0).unwrap();
    let reports = project.check(None, &switchboard_validator::Options::default());
    let errors: Vec<_> = reports
        .iter()
        .flat_map(|r| r.diagnostics.iter())
        .filter(|d| d.severity == switchboard_validator::Severity::Error)
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    let store = Arc::new(MemoryStore::new());
    let functions = switchboard_project::functions(&project, FunctionOptions::default())
        .unwrap()
        .unwrap();
    let offline = OfflineAdapters::default();
    let mut adapters = offline.adapters();
    adapters.functions = Arc::new(functions);
    let engine = Engine::builder(store.clone())
        .adapters(adapters)
        .config(EngineConfig {
            default_phone_number_id: "111".into(),
            ..EngineConfig::default()
        })
        .build();
    switchboard_project::register(&engine, &project).unwrap();
    for t in switchboard_project::inbound_triggers(&project) {
        engine.add_trigger(t).unwrap();
    }
    let mut m = message("wamid.0", "hi", None);
    m.phone_number_id = "111".into();
    engine.handle_inbound(vec![m]).await.unwrap();
    let sent: Vec<String> = offline
        .messenger
        .take()
        .iter()
        .map(|m| format!("{:?}", m.body))
        .collect();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(sent[0].contains("stamped helper:[]"), "{sent:?}");

    // Without the remote map, the uuids resolve to nothing: the validator says so.
    std::fs::remove_file(p.0.join(".kapso/remote-map.json")).unwrap();
    let project = Project::load(&p.0).unwrap();
    let unresolved: Vec<String> = project
        .check(None, &switchboard_validator::Options::default())
        .iter()
        .flat_map(|r| r.diagnostics.iter())
        .filter(|d| d.rule == "unresolved-reference")
        .map(|d| d.message.clone())
        .collect();
    assert_eq!(
        unresolved,
        [
            "function `f-stamp-uuid` does not exist",
            "flow `w-helper-uuid` does not exist"
        ]
    );
}
