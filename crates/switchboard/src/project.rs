//! Kapso projects on the command line: what a path given to `chat` or `serve` names (a flow
//! file, a project, one of its workflows), a project's validation refusing it, and its functions
//! together with those `[functions]` configures.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use switchboard_http::ReqwestHttpClient;
use switchboard_project::{FunctionChain, FunctionOptions, Project};
use switchboard_runtime::adapters::{FunctionInvoker, HttpClient};
use switchboard_runtime::store::ExecutionStore;
use switchboard_validator::{FileReport, Options, render_human};

use crate::config::Config;

/// What a path names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A flow file outside any project.
    Flow(PathBuf),
    /// A Kapso project (its root as shown), and the workflow folder asked for, if any.
    Project(PathBuf, Option<String>),
}

/// What `path` names: a flow file; a project, or a workflow of one (its folder, a file in it,
/// or — inside a project — its slug).
pub fn target(path: &Path) -> anyhow::Result<Target> {
    if path.exists() {
        if let Some((root, folder)) = switchboard_project::locate(path) {
            return Ok(Target::Project(root, folder));
        }
        if path.is_dir() {
            bail!(
                "{} is a directory without a Kapso project (no kapso.yaml in it or above it): give a flow file",
                path.display()
            );
        }
        return Ok(Target::Flow(path.to_path_buf()));
    }
    let name = path.to_str().filter(|s| !s.contains(['/', '\\']));
    match name.and_then(switchboard_project::locate_slug) {
        Some((root, folder)) => Ok(Target::Project(root, Some(folder))),
        None => bail!(
            "cannot read {}: no such file, and no workflow of that name in a project around the current directory",
            path.display()
        ),
    }
}

/// Loads the project at `root` and validates it with `options` (the model map of the
/// configuration): the project and the rendered reports of the files with errors (among the
/// workflows of `only`, or every one).
pub fn open(
    root: &Path,
    only: Option<&str>,
    options: &Options,
) -> anyhow::Result<(Project, Option<String>)> {
    let project = Project::load(root)
        .with_context(|| format!("cannot read the project {}", root.display()))?;
    let selection = only.map(|f| std::iter::once(f.to_owned()).collect());
    let reports = project.check(selection.as_ref(), options);
    Ok((project, errors(&reports)))
}

/// The rendered reports of the files with error diagnostics, if any.
pub fn errors(reports: &[FileReport]) -> Option<String> {
    let text: String = reports
        .iter()
        .filter(|r| r.has_errors())
        .map(render_human)
        .collect();
    (!text.is_empty()).then_some(text)
}

/// The validator's options for a configuration: its model map.
pub fn options(config: Option<&Config>) -> Options {
    Options {
        model_ids: config
            .map(|c| c.model_ids().into_keys().collect())
            .unwrap_or_default(),
        ..Options::default()
    }
}

/// A project's functions (all of them chained), and the values of its `.env` variables.
pub type ProjectFunctions = (Option<Arc<dyn FunctionInvoker>>, Vec<String>);

/// A project's functions and the environment they were given (for the log redactor): the
/// invokers of `[functions]` first (HTTP endpoints, a configured directory), then the
/// project's own `functions/<slug>/` in the local runner — `env.KV` in `store`, `fetch` through
/// `http`, the environment of the process and the project's `.env` (narrowed by
/// `[functions] env`). `None` when there is no function at all.
pub fn functions(
    project: &Project,
    config: Option<&Config>,
    store: Arc<dyn ExecutionStore>,
    http: &ReqwestHttpClient,
    fetch: Option<Arc<dyn HttpClient>>,
) -> anyhow::Result<ProjectFunctions> {
    let defaults = match config {
        Some(c) => c.project_function_defaults()?,
        None => Default::default(),
    };
    let env = switchboard_project::environment(&project.root, defaults.only.as_deref())?;
    let secrets = dotenv_values(&project.root, &env);
    let local = switchboard_project::functions(
        project,
        FunctionOptions {
            env,
            kv_store: Some(store.clone()),
            http: fetch,
            timeout: defaults.timeout,
            memory_limit: defaults.memory_limit,
        },
    )?;
    let mut chain: Vec<Arc<dyn FunctionInvoker>> = Vec::new();
    if let Some(configured) = config
        .map(|c| c.function_invoker_with(http, Some(store.clone())))
        .transpose()?
        .flatten()
    {
        chain.push(configured);
    }
    if let Some(local) = local {
        chain.push(Arc::new(local));
    }
    let invoker: Option<Arc<dyn FunctionInvoker>> = match chain.len() {
        0 => None,
        1 => chain.pop(),
        _ => Some(Arc::new(FunctionChain(chain))),
    };
    Ok((invoker, secrets))
}

/// The values the functions get for the names of the project's `.env` (secrets: kept out of
/// logs).
fn dotenv_values(root: &Path, env: &std::collections::BTreeMap<String, String>) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(root.join(".env")) else {
        return Vec::new();
    };
    switchboard_project::parse_dotenv(&text)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(name, _)| env.get(&name).cloned())
        .collect()
}

/// A project root as shown in messages (`.` for the current directory).
pub fn shown(root: &Path) -> String {
    if root.as_os_str().is_empty() {
        ".".to_owned()
    } else {
        root.display().to_string()
    }
}

/// `<slug>, <slug>, …` of a project's workflows.
pub fn slugs(project: &Project) -> String {
    project.slugs().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_flows_projects_and_workflows() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures");
        assert!(matches!(
            target(&root.join("flows/valid/echo.yaml")).unwrap(),
            Target::Flow(_)
        ));
        let Target::Project(_, folder) =
            target(&root.join("projects/bakery/workflows/order-bot/definition.json")).unwrap()
        else {
            panic!()
        };
        assert_eq!(folder.as_deref(), Some("order-bot"));
        assert!(matches!(
            target(&root.join("projects/bakery")).unwrap(),
            Target::Project(_, None)
        ));
        assert!(target(&root.join("flows/valid")).is_err());
        assert!(target(Path::new("no-such-workflow-anywhere")).is_err());
    }
}
