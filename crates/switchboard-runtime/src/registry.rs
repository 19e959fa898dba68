//! The flow registry: compiled flows (with their routing indexes) and triggers, shared by every
//! turn of an engine. Registration validates a flow and refuses it when it has error
//! diagnostics; lookups never run a flow. A poisoned lock (a thread panicked while holding it)
//! is reported as an error, never as "not found".

use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use switchboard_model::{Flow, NodeKind};
use switchboard_validator::{Diagnostic, Options, Severity};

use crate::error::EngineError;
use crate::state::TriggerType;

/// A flow to register.
#[derive(Clone, Debug)]
pub struct FlowDefinition {
    /// Flow id (`system.flow_id`).
    pub id: String,
    /// Slug, another name callers may use.
    pub slug: Option<String>,
    /// Version label.
    pub version: String,
    /// The flow.
    pub flow: Flow,
}

/// A registered flow with its routing indexes.
#[derive(Debug)]
pub(crate) struct CompiledFlow {
    pub id: String,
    pub name: String,
    pub version: String,
    pub flow: Flow,
    pub index: FxHashMap<String, usize>,
    /// Node index → edge indices leaving it.
    pub out: Vec<Vec<usize>>,
    pub start: usize,
    pub max_steps: Option<i64>,
    pub debounce_seconds: Option<f64>,
}

impl CompiledFlow {
    fn compile(def: FlowDefinition) -> CompiledFlow {
        let flow = def.flow;
        let mut index = FxHashMap::default();
        for (i, n) in flow.nodes.iter().enumerate() {
            index.entry(n.id().to_owned()).or_insert(i);
        }
        let mut out = vec![Vec::new(); flow.nodes.len()];
        for (k, e) in flow.edges.iter().enumerate() {
            if let Some(&s) = e.source().and_then(|s| index.get(s)) {
                out[s].push(k);
            }
        }
        let start = flow
            .nodes
            .iter()
            .position(|n| n.kind() == Some(NodeKind::Start))
            .unwrap_or(0);
        let settings = flow.settings();
        CompiledFlow {
            id: def.id.clone(),
            name: flow.name().unwrap_or(&def.id).to_owned(),
            version: def.version,
            index,
            out,
            start,
            max_steps: settings.max_steps_per_turn,
            debounce_seconds: settings.message_debounce_seconds,
            flow,
        }
    }

    pub fn node_index(&self, id: &str) -> Option<usize> {
        self.index.get(id).copied()
    }

    /// The single non-error edge (§6 advancing).
    pub fn next_edge(&self, node: usize) -> Option<usize> {
        self.out[node]
            .iter()
            .copied()
            .find(|&k| !self.flow.edges[k].is_error())
    }

    pub fn error_edge(&self, node: usize) -> Option<usize> {
        self.out[node]
            .iter()
            .copied()
            .find(|&k| self.flow.edges[k].is_error())
    }

    pub fn edge_labelled(&self, node: usize, label: &str) -> Option<usize> {
        self.out[node]
            .iter()
            .copied()
            .find(|&k| self.flow.edges[k].label() == label)
    }

    pub fn target(&self, edge: usize) -> Option<usize> {
        self.flow.edges[edge]
            .target()
            .and_then(|t| self.node_index(t))
    }
}

/// Why a flow was not registered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegisterError {
    /// The flow has error diagnostics: it must not be started.
    #[error("flow `{flow_id}` has {} error diagnostic(s); the first: {}", .diagnostics.len(), .diagnostics.first().map_or("", |d| d.message.as_str()))]
    Invalid {
        /// The flow.
        flow_id: String,
        /// Its error diagnostics.
        diagnostics: Vec<Diagnostic>,
    },
    /// The registry is unusable (a thread panicked while changing it).
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// A trigger: deployment configuration (runtime-semantics §4.1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trigger {
    /// The flow it starts.
    pub flow_id: String,
    /// `inbound_message` (with the number) or `api_call`.
    pub trigger_type: TriggerType,
    /// For `inbound_message`: the business number it listens on.
    pub phone_number_id: Option<String>,
    /// Whether it is active.
    pub active: bool,
}

/// Registered flows, by id, slug and name, and the triggers that start them.
#[derive(Debug, Default)]
pub(crate) struct FlowRegistry {
    flows: RwLock<FxHashMap<String, Arc<CompiledFlow>>>,
    triggers: RwLock<Vec<Trigger>>,
}

fn poisoned(what: &str) -> EngineError {
    EngineError::Internal(format!(
        "the {what} lock is poisoned (a thread panicked while holding it)"
    ))
}

impl FlowRegistry {
    fn flows(
        &self,
    ) -> Result<RwLockReadGuard<'_, FxHashMap<String, Arc<CompiledFlow>>>, EngineError> {
        self.flows.read().map_err(|_| poisoned("flow registry"))
    }

    fn flows_mut(
        &self,
    ) -> Result<RwLockWriteGuard<'_, FxHashMap<String, Arc<CompiledFlow>>>, EngineError> {
        self.flows.write().map_err(|_| poisoned("flow registry"))
    }

    fn triggers(&self) -> Result<RwLockReadGuard<'_, Vec<Trigger>>, EngineError> {
        self.triggers.read().map_err(|_| poisoned("trigger"))
    }

    /// Validates and registers a flow (replacing one with the same id). A flow with any error
    /// diagnostic is refused.
    pub fn register(&self, def: FlowDefinition) -> Result<(), RegisterError> {
        let mut options = Options::default();
        options.flow_ids.push(def.id.clone());
        options.flow_ids.extend(def.slug.clone());
        let diagnostics: Vec<Diagnostic> = switchboard_validator::validate(&def.flow, &options)
            .into_iter()
            .filter(|d| d.severity == Severity::Error)
            .collect();
        if !diagnostics.is_empty() {
            return Err(RegisterError::Invalid {
                flow_id: def.id,
                diagnostics,
            });
        }
        let slug = def.slug.clone();
        let compiled = Arc::new(CompiledFlow::compile(def));
        let mut flows = self.flows_mut()?;
        if let Some(slug) = slug {
            flows.insert(slug, compiled.clone());
        }
        if let Some(name) = compiled.flow.name() {
            flows
                .entry(name.to_owned())
                .or_insert_with(|| compiled.clone());
        }
        flows.insert(compiled.id.clone(), compiled);
        Ok(())
    }

    /// Adds a trigger.
    pub fn add_trigger(&self, trigger: Trigger) -> Result<(), EngineError> {
        self.triggers
            .write()
            .map_err(|_| poisoned("trigger"))?
            .push(trigger);
        Ok(())
    }

    /// A flow by id, slug or name.
    pub fn flow(&self, id_or_slug: &str) -> Result<Option<Arc<CompiledFlow>>, EngineError> {
        Ok(self.flows()?.get(id_or_slug).cloned())
    }

    /// The flow of the active `inbound_message` trigger on a business number.
    pub fn inbound_trigger(
        &self,
        phone_number_id: &str,
    ) -> Result<Option<Arc<CompiledFlow>>, EngineError> {
        let flow_id = {
            let triggers = self.triggers()?;
            let Some(t) = triggers.iter().find(|t| {
                t.active
                    && t.trigger_type == TriggerType::InboundMessage
                    && t.phone_number_id
                        .as_deref()
                        .is_none_or(|p| p == phone_number_id)
            }) else {
                return Ok(None);
            };
            t.flow_id.clone()
        };
        self.flow(&flow_id)
    }

    /// Whether a flow has an active `api_call` trigger.
    pub fn api_trigger_active(&self, flow_id: &str) -> Result<bool, EngineError> {
        Ok(self
            .triggers()?
            .iter()
            .any(|t| t.active && t.trigger_type == TriggerType::ApiCall && t.flow_id == flow_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A lock poisoned by a panicking writer is an error, never "not found".
    #[test]
    fn a_poisoned_registry_is_an_error() {
        let registry = Arc::new(FlowRegistry::default());
        let r = registry.clone();
        let _ = std::thread::spawn(move || {
            let _guard = r.flows.write().unwrap();
            panic!("poison the flow registry");
        })
        .join();
        let err = registry.flow("anything").unwrap_err();
        assert_eq!(err.code(), "internal");
        assert!(err.to_string().contains("poisoned"), "{err}");
        assert!(registry.inbound_trigger("pn").unwrap().is_none());
        let r = registry.clone();
        let _ = std::thread::spawn(move || {
            let _guard = r.triggers.write().unwrap();
            panic!("poison the triggers");
        })
        .join();
        assert!(registry.inbound_trigger("pn").is_err());
        assert!(registry.api_trigger_active("f").is_err());
    }
}
