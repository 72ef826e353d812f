//! Workflows as the order use cases read them: parsed (`Flow`), with their dispatch node, cached.
use std::collections::HashMap;
use std::sync::Arc;

use entity::workflow;
use parking_lot::RwLock;
use sea_orm::ConnectionTrait;

use crate::domain::workflow::{self as wf, Dispatch, Node, WorkflowKind};
use crate::error::{Error, Result};
use crate::store;

/// A parsed workflow with its dispatch node.
pub struct Flow {
    pub model: workflow::Model,
    pub nodes: Vec<Node>,
    pub dispatch: Option<Dispatch>,
}

/// The node of a workflow where the upstream dispatches its orders (automatic rules first,
/// then manual): to an engineer (direct), or to a service provider that then assigns one of
/// its engineers at the next node (two-stage).
#[derive(Clone, Copy)]
pub struct DispatchNode<'a> {
    pub flow: &'a Flow,
    /// The upstream's dispatch node.
    pub index: usize,
    pub dispatch: Dispatch,
}

impl DispatchNode<'_> {
    pub fn name(&self) -> &str {
        &self.flow.nodes[self.index].name
    }

    /// The node at which an engineer is assigned (the upstream's, or the provider's).
    pub fn engineer_index(&self) -> usize {
        self.dispatch.engineer_node()
    }

    pub fn two_stage(&self) -> bool {
        self.dispatch.is_two_stage()
    }
}

impl Flow {
    pub fn from_model(model: workflow::Model) -> Result<Flow> {
        let nodes: Vec<Node> = serde_json::from_value(model.nodes.clone()).map_err(Error::internal)?;
        let kind = WorkflowKind::parse(&model.kind).ok_or_else(|| Error::internal("stored workflow kind unknown"))?;
        Ok(Flow {
            dispatch: wf::dispatch(kind, &nodes),
            model,
            nodes,
        })
    }

    pub fn require_dispatch_node(&self) -> Result<DispatchNode<'_>> {
        let dispatch = self.dispatch.ok_or_else(|| {
            Error::NoDispatchNode(format!(
                "workflow '{}' ({}) has no dispatch node ('Dispatcher assigns service-provider engineer', or 'Dispatcher assigns service provider' and 'Service provider assigns engineer') in an Interconnection workflow, so its orders cannot be dispatched to service-provider engineers",
                self.model.name, self.model.id
            ))
        })?;
        Ok(DispatchNode {
            flow: self,
            index: dispatch.upstream_node(),
            dispatch,
        })
    }
}

/// Loads a workflow of the caller's tenant.
pub async fn load_flow<C: ConnectionTrait>(conn: &C, tenant_id: &str, workflow_id: &str) -> Result<Flow> {
    let model = store::workflows::find_of_tenant(conn, tenant_id, workflow_id)
        .await?
        .ok_or_else(|| Error::not_found("workflow", workflow_id))?;
    Flow::from_model(model)
}

/// Workflows already read, by ID. A workflow is never changed or deleted once created, so an
/// entry never goes stale; the tenant is checked on every lookup.
#[derive(Clone, Default)]
pub struct FlowCache(Arc<RwLock<HashMap<String, Arc<Flow>>>>);

impl FlowCache {
    pub async fn get(&self, db: &store::Db, tenant_id: &str, workflow_id: &str) -> Result<Arc<Flow>> {
        let hit = self.0.read().get(workflow_id).cloned();
        let flow = match hit {
            Some(f) => f,
            None => {
                let f = Arc::new(load_flow(db, tenant_id, workflow_id).await?);
                self.0.write().insert(workflow_id.to_owned(), f.clone());
                f
            }
        };
        if flow.model.tenant_id != tenant_id {
            return Err(Error::not_found("workflow", workflow_id));
        }
        Ok(flow)
    }
}
