//! References to things outside the flow (validation-rules §8, §10): `unresolved-reference`
//! against the registries the caller supplies (for a Kapso project: the project itself),
//! `call-cycle` (a flow calling itself, directly or through the flow registry), and
//! `model-id-unmapped` (a model named only by a Kapso id that no model map resolves).

use std::collections::BTreeSet;

use rustc_hash::FxHashSet as HashSet;

use switchboard_model::config::{ModelRef, NodeConfig, ResourceRef, TextField};

use crate::context::Ctx;
use crate::rules;

pub(crate) fn check(cx: &mut Ctx) {
    let regs = &cx.opts.registries;
    let mut identities: HashSet<String> = cx.opts.flow_ids.iter().cloned().collect();
    if let Some(name) = cx.flow.name().filter(|n| !n.is_empty()) {
        identities.insert(name.to_owned());
    }
    for i in 0..cx.flow.nodes.len() {
        let node = cx.node(i);
        match node.config() {
            NodeConfig::Function(c) => function(cx, i, &c.function, ""),
            NodeConfig::Decide(c) => {
                if c.mode() == switchboard_model::config::DecisionType::Function {
                    function(cx, i, &c.function, "");
                } else {
                    model(cx, i, &c.model);
                }
            }
            NodeConfig::Agent(c) => {
                model(cx, i, &c.model);
                for (k, t) in c.function_tools.iter().enumerate() {
                    function(
                        cx,
                        i,
                        &t.function,
                        &format!("/flow_agent_function_tools/{k}"),
                    );
                }
            }
            NodeConfig::SendTemplate(c) => {
                if let (Some(t), Some(known)) = (&c.template_id, &regs.templates)
                    && !t.is_empty()
                    && !known.contains(t)
                {
                    unresolved(cx, i, "/template_id", "template", t);
                }
                if !c.sender.ai_fields.is_empty() {
                    model(cx, i, &c.sender.model);
                }
            }
            NodeConfig::SendText(c) if matches!(c.message, Some(TextField::Ai)) => {
                model(cx, i, &c.sender.model)
            }
            NodeConfig::SendInteractive(c) if !c.sender.ai_fields.is_empty() => {
                model(cx, i, &c.sender.model)
            }
            NodeConfig::Webhook(c) if !c.ai_fields.is_empty() => model(cx, i, &c.model),
            NodeConfig::Pipedream(c) if !c.ai_fields.is_empty() => model(cx, i, &c.model),
            NodeConfig::Call(c) => call(cx, i, &c.workflow, &identities),
            NodeConfig::Start
            | NodeConfig::SendText(_)
            | NodeConfig::SendInteractive(_)
            | NodeConfig::WaitForResponse(_)
            | NodeConfig::Webhook(_)
            | NodeConfig::SetVariable(_)
            | NodeConfig::Handoff(_)
            | NodeConfig::EmitEvent(_)
            | NodeConfig::Pipedream(_)
            | NodeConfig::Unknown => {}
        }
    }
}

fn unresolved(cx: &mut Ctx, i: usize, suffix: &str, what: &str, name: &str) {
    cx.at_config(
        rules::UNRESOLVED_REFERENCE,
        i,
        suffix,
        format!("{what} `{name}` does not exist"),
        format!("check the {what} name, or register the {what}"),
    );
}

fn function(cx: &mut Ctx, i: usize, f: &ResourceRef, base: &str) {
    let Some(known) = &cx.opts.registries.functions else {
        return;
    };
    if !f.is_set() || f.candidates().any(|c| known.contains(c)) {
        return;
    }
    let key = if f.id.as_deref().is_some_and(|s| !s.is_empty()) {
        "function_id"
    } else {
        "function_slug"
    };
    let name = f.candidates().next().unwrap_or_default().to_owned();
    unresolved(cx, i, &format!("{base}/{key}"), "function", &name);
}

fn model(cx: &mut Ctx, i: usize, m: &ModelRef) {
    if m.model_name().is_none()
        && let Some(id) = m.model_id()
        && !cx.opts.model_ids.contains(id)
    {
        cx.at_config(
            rules::MODEL_ID_UNMAPPED,
            i,
            "/provider_model_id",
            format!("the model is named only by its Kapso id `{id}`, which no model map resolves"),
            format!(
                "add `provider_model_name`, or map the id in switchboard.toml: `[llm] models = {{ \"{id}\" = \"gpt-4o-mini\" }}`"
            ),
        );
    }
    let Some(known) = &cx.opts.registries.models else {
        return;
    };
    if !m.is_set() || m.candidates().any(|c| known.contains(c)) {
        return;
    }
    let key = if m.id.as_deref().is_some_and(|s| !s.is_empty()) {
        "provider_model_id"
    } else {
        "provider_model_name"
    };
    let name = m.candidates().next().unwrap_or_default().to_owned();
    unresolved(cx, i, &format!("/{key}"), "model", &name);
}

fn call(cx: &mut Ctx, i: usize, w: &ResourceRef, me: &HashSet<String>) {
    if !w.is_set() {
        return;
    }
    let key = if w.id.as_deref().is_some_and(|s| !s.is_empty()) {
        "workflow_id"
    } else {
        "workflow_slug"
    };
    let suffix = format!("/{key}");
    let target = w.candidates().next().unwrap_or_default().to_owned();
    if w.candidates().any(|c| me.contains(c)) {
        cx.at_config(
            rules::CALL_CYCLE,
            i,
            &suffix,
            format!(
                "call node `{}` calls this flow itself (`{target}`)",
                cx.node(i).id()
            ),
            "a flow cannot call itself: loop inside the flow with edges instead",
        );
        return;
    }
    let Some(flows) = &cx.opts.registries.flows else {
        return;
    };
    let Some(start) = w.candidates().find(|c| flows.contains_key(*c)) else {
        unresolved(cx, i, &suffix, "flow", &target);
        return;
    };
    // Depth-first search through the registry for a path back to this flow.
    let mut stack = vec![(start.to_owned(), vec![start.to_owned()])];
    let mut seen: BTreeSet<String> = BTreeSet::new();
    while let Some((flow, path)) = stack.pop() {
        if !seen.insert(flow.clone()) {
            continue;
        }
        for next in flows
            .get(&flow)
            .map(|e| e.calls.as_slice())
            .unwrap_or_default()
        {
            if me.contains(next) {
                let mut chain = vec![me.iter().next().cloned().unwrap_or_default()];
                chain.extend(path.iter().cloned());
                chain.push(next.clone());
                cx.at_config(
                    rules::CALL_CYCLE,
                    i,
                    &suffix,
                    format!(
                        "calling `{target}` leads back to this flow: {}",
                        chain.join(" → ")
                    ),
                    "break the cycle: a flow must not (indirectly) call itself",
                );
                return;
            }
            if path.len() < 64 {
                let mut p = path.clone();
                p.push(next.clone());
                stack.push((next.clone(), p));
            }
        }
    }
}
