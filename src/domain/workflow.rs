//! Workflows: ordered nodes, the dispatch node, and what follows it.
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum WorkflowKind {
    /// Upstream to downstream: the only kind in which orders reach service-provider engineers.
    Interconnection,
    Internal,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum NodeKind {
    /// "Dispatcher assigns service-provider engineer": the dispatch node.
    DispatchToEngineer,
    /// The engineer accepts the order and services it.
    AcceptAndService,
    /// An upstream review or approval step.
    Review,
    /// Any other step.
    Custom,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Performer {
    Upstream,
    DownstreamEngineer,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    pub name: String,
    pub kind: NodeKind,
    pub performer: Performer,
}

impl WorkflowKind {
    pub fn as_str(self) -> &'static str {
        match self {
            WorkflowKind::Interconnection => "INTERCONNECTION",
            WorkflowKind::Internal => "INTERNAL",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [WorkflowKind::Interconnection, WorkflowKind::Internal]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// Why a workflow definition is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkflowError {
    pub field: String,
    pub message: String,
}

pub const MAX_NODES: usize = 32;

/// Checks a workflow definition before it is saved.
pub fn validate(kind: WorkflowKind, nodes: &[Node]) -> Result<(), WorkflowError> {
    let err = |field: String, message: String| Err(WorkflowError { field, message });
    if nodes.is_empty() {
        return err("nodes".into(), "a workflow needs at least one node".into());
    }
    if nodes.len() > MAX_NODES {
        return err("nodes".into(), format!("a workflow has at most {MAX_NODES} nodes"));
    }
    let mut dispatch_nodes = 0;
    for (i, n) in nodes.iter().enumerate() {
        if let Err(m) = super::validate::name(&n.name, 200) {
            return err(format!("nodes[{i}].name"), m);
        }
        if n.kind == NodeKind::DispatchToEngineer {
            dispatch_nodes += 1;
            if n.performer != Performer::Upstream {
                return err(
                    format!("nodes[{i}].performer"),
                    "the dispatch node is performed upstream, by the dispatcher".into(),
                );
            }
        }
    }
    if dispatch_nodes > 1 {
        return err("nodes".into(), "a workflow has at most one dispatch node".into());
    }
    if dispatch_nodes == 1 && kind != WorkflowKind::Interconnection {
        return err(
            "kind".into(),
            "the dispatch node (Dispatcher assigns service-provider engineer) needs an INTERCONNECTION workflow".into(),
        );
    }
    Ok(())
}

/// Where an order of this workflow is dispatched, if it can be at all.
pub fn dispatch_node(kind: WorkflowKind, nodes: &[Node]) -> Option<usize> {
    if kind != WorkflowKind::Interconnection {
        return None;
    }
    nodes.iter().position(|n| n.kind == NodeKind::DispatchToEngineer)
}

/// The node after the dispatch node, if the downstream engineer performs it (a task is issued).
pub fn task_node(nodes: &[Node], dispatch_index: usize) -> Option<(usize, &Node)> {
    nodes
        .get(dispatch_index + 1)
        .filter(|n| n.performer == Performer::DownstreamEngineer)
        .map(|n| (dispatch_index + 1, n))
}

/// The node an order stands at once assigned: the next one, or the dispatch node if it is last.
pub fn node_after_dispatch(nodes: &[Node], dispatch_index: usize) -> usize {
    if dispatch_index + 1 < nodes.len() {
        dispatch_index + 1
    } else {
        dispatch_index
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(kind: NodeKind, performer: Performer) -> Node {
        Node {
            name: format!("{kind:?}"),
            kind,
            performer,
        }
    }

    #[test]
    fn validation() {
        use NodeKind::*;
        use Performer::*;
        let ok = [
            node(Review, Upstream),
            node(DispatchToEngineer, Upstream),
            node(AcceptAndService, DownstreamEngineer),
        ];
        assert!(validate(WorkflowKind::Interconnection, &ok).is_ok());
        assert_eq!(validate(WorkflowKind::Internal, &ok).unwrap_err().field, "kind");
        assert_eq!(validate(WorkflowKind::Interconnection, &[]).unwrap_err().field, "nodes");
        let two = [node(DispatchToEngineer, Upstream), node(DispatchToEngineer, Upstream)];
        assert_eq!(
            validate(WorkflowKind::Interconnection, &two).unwrap_err().field,
            "nodes"
        );
        let wrong = [node(DispatchToEngineer, DownstreamEngineer)];
        assert_eq!(
            validate(WorkflowKind::Interconnection, &wrong).unwrap_err().field,
            "nodes[0].performer"
        );
        let mut blank = ok.clone();
        blank[2].name = "  ".into();
        assert_eq!(
            validate(WorkflowKind::Interconnection, &blank).unwrap_err().field,
            "nodes[2].name"
        );
        let internal = [node(Review, Upstream)];
        assert!(validate(WorkflowKind::Internal, &internal).is_ok());
    }

    #[test]
    fn dispatch_and_task_nodes() {
        use NodeKind::*;
        use Performer::*;
        let nodes = [
            node(Review, Upstream),
            node(DispatchToEngineer, Upstream),
            node(AcceptAndService, DownstreamEngineer),
        ];
        assert_eq!(dispatch_node(WorkflowKind::Interconnection, &nodes), Some(1));
        assert_eq!(dispatch_node(WorkflowKind::Internal, &nodes), None);
        assert_eq!(task_node(&nodes, 1).map(|(i, _)| i), Some(2));
        assert_eq!(node_after_dispatch(&nodes, 1), 2);
        let upstream_next = [node(DispatchToEngineer, Upstream), node(Review, Upstream)];
        assert_eq!(task_node(&upstream_next, 0), None);
        let last = [node(DispatchToEngineer, Upstream)];
        assert_eq!(task_node(&last, 0), None);
        assert_eq!(node_after_dispatch(&last, 0), 0);
        assert_eq!(
            dispatch_node(WorkflowKind::Interconnection, &[node(Review, Upstream)]),
            None
        );
    }
}
