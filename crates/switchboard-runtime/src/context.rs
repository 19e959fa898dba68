//! What one engine shares with each of its turns: the flow registry, the adapters, the store,
//! the configuration and the template renderer. A turn receives this value, never the engine,
//! so the turn code cannot call back into the engine's operations.

use std::sync::Arc;

use crate::adapters::Adapters;
use crate::config::EngineConfig;
use crate::error::EngineError;
use crate::registry::{CompiledFlow, FlowRegistry};
use crate::state::{Conversation, Execution};
use crate::store::ExecutionStore;
use crate::template::Renderer;

/// The engine's shared parts.
pub(crate) struct EngineContext {
    pub registry: FlowRegistry,
    pub adapters: Adapters,
    pub store: Arc<dyn ExecutionStore>,
    pub config: EngineConfig,
    pub renderer: Renderer,
}

impl EngineContext {
    /// An execution, or `not_found`.
    pub async fn load_execution(&self, id: &str) -> Result<Execution, EngineError> {
        self.store
            .execution(id)
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("execution `{id}`")))
    }

    /// A conversation, or `not_found`.
    pub async fn load_conversation(&self, id: &str) -> Result<Conversation, EngineError> {
        self.store
            .conversation(id)
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("conversation `{id}`")))
    }

    /// A registered flow, or `not_found`.
    pub fn flow(&self, id_or_slug: &str) -> Result<Arc<CompiledFlow>, EngineError> {
        self.registry
            .flow(id_or_slug)?
            .ok_or_else(|| EngineError::NotFound(format!("flow `{id_or_slug}`")))
    }
}
