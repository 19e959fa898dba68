//! The `call` node: starting child executions.

use std::sync::Arc;

use serde_json::json;

use crate::error::EngineError;
use crate::event::EventType;
use crate::failure::{Failure, FailureKind};
use crate::registry::CompiledFlow;
use crate::state::{Object, Status, WaitingReason};

use super::{Step, Turn};

const MAX_DEPTH: u32 = 10;

impl Turn<'_> {
    // --- call --------------------------------------------------------------------------------

    pub(super) async fn call(
        &mut self,
        xi: usize,
        _node_id: &str,
        c: &switchboard_model::config::Call,
    ) -> Step {
        let mut found = None;
        for r in c.workflow.candidates() {
            match self.ctx.registry.flow(r) {
                Ok(Some(f)) => {
                    found = Some(f);
                    break;
                }
                Ok(None) => {}
                Err(e) => return Step::Fail(Failure::new(FailureKind::Adapter, e.to_string())),
            }
        }
        let Some(target) = found else {
            let name = c
                .workflow
                .candidates()
                .next()
                .unwrap_or_default()
                .to_owned();
            return Step::Fail(Failure::new(
                FailureKind::NotFound,
                format!("flow `{name}` does not exist"),
            ));
        };
        let mut stack = self.execs[xi].call_stack.clone();
        stack.push(self.execs[xi].flow_id.clone());
        if stack.contains(&target.id) {
            return Step::Fail(Failure::new(
                FailureKind::CallCycle,
                format!("flow `{}` is already in the call stack", target.id),
            ));
        }
        if self.execs[xi].call_depth + 1 > MAX_DEPTH {
            return Step::Fail(Failure::new(
                FailureKind::CallDepth,
                format!("calls nest deeper than {MAX_DEPTH}"),
            ));
        }
        self.change_status(xi, Status::Waiting, "call");
        self.execs[xi].waiting_reason = Some(WaitingReason::Call);
        let id = match self.start_child(&target, xi, stack).await {
            Ok(id) => id,
            Err(e) => return Step::Fail(Failure::new(FailureKind::Adapter, e.to_string())),
        };
        let ci = self.execs.iter().position(|e| e.id == id).unwrap_or(0);
        Step::Child(ci)
    }

    fn start_child<'a>(
        &'a mut self,
        target: &'a Arc<CompiledFlow>,
        xi: usize,
        stack: Vec<String>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<String, EngineError>> + Send + 'a>>
    {
        Box::pin(async move {
            let node_id = self.execs[xi].current_node_id.clone().unwrap_or_default();
            let trigger = self.execs[xi].trigger_type;
            let id = self.ctx.adapters.ids.next("ex");
            self.execs[xi].child_execution_id = Some(id.clone());
            self.emit(
                xi,
                EventType::CallStarted,
                Some(&node_id),
                None,
                json!({"node_id": node_id, "child_execution_id": id, "flow_id": target.id}),
            );
            self.next_id = Some(id);
            self.calling.push(xi);
            let started = self
                .start(
                    target,
                    trigger,
                    Object::new(),
                    Object::new(),
                    None,
                    Some((xi, stack)),
                )
                .await;
            self.calling.retain(|&p| p != xi);
            started
        })
    }
}
