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
    /// "Dispatcher assigns service-provider engineer": the dispatch node of the direct flow.
    DispatchToEngineer,
    /// "Dispatcher assigns service provider": the first node of the two-stage flow; the
    /// upstream (its dispatcher or rules) assigns the order to a service-provider company.
    DispatchToProvider,
    /// "Service provider assigns engineer": the second node of the two-stage flow, right after
    /// `DispatchToProvider`; the provider (its dispatcher or rules) assigns one of its engineers.
    ProviderDispatchToEngineer,
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
    /// The service provider's staff (its dispatcher, or its rules): only the provider's own
    /// dispatch node.
    ServiceProvider,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    pub name: String,
    pub kind: NodeKind,
    pub performer: Performer,
    /// An engineer's node: how long the engineer has to accept its task, and what then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acceptance: Option<Acceptance>,
}

/// The acceptance deadline of an engineer's node (`acceptWithin`, `onAcceptTimeout`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Acceptance {
    /// Seconds from the task's issue to its deadline.
    pub within_secs: u64,
    pub on_timeout: AcceptTimeout,
}

/// What happens to a task not accepted by its deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AcceptTimeout {
    /// Accepted on the engineer's behalf, recorded as automatic.
    AutoAccept,
    /// Revoked (the engineer told) and dispatched again, never to that engineer.
    Redispatch,
}

/// Bounds of `acceptWithin`: a minute to thirty days.
pub const ACCEPT_WITHIN: std::ops::RangeInclusive<u64> = 60..=30 * 86_400;

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
    for (i, n) in nodes.iter().enumerate() {
        if let Err(m) = super::validate::name(&n.name, 200) {
            return err(format!("nodes[{i}].name"), m);
        }
        let performer = match n.kind {
            NodeKind::DispatchToEngineer | NodeKind::DispatchToProvider => Some(Performer::Upstream),
            NodeKind::ProviderDispatchToEngineer => Some(Performer::ServiceProvider),
            _ => None,
        };
        match performer {
            Some(p) if n.performer != p => {
                let who = match p {
                    Performer::ServiceProvider => "by the service provider (SERVICE_PROVIDER)",
                    _ => "upstream, by the dispatcher (UPSTREAM)",
                };
                return err(
                    format!("nodes[{i}].performer"),
                    format!("this dispatch node is performed {who}"),
                );
            }
            None if n.performer == Performer::ServiceProvider => {
                return err(
                    format!("nodes[{i}].performer"),
                    "the service provider performs only its own dispatch node (PROVIDER_DISPATCH_TO_ENGINEER)".into(),
                );
            }
            _ => {}
        }
    }
    for (i, n) in nodes.iter().enumerate() {
        let Some(a) = n.acceptance else { continue };
        if n.performer != Performer::DownstreamEngineer {
            return err(
                format!("nodes[{i}].acceptWithin"),
                "an acceptance deadline is for an engineer's node (performer DOWNSTREAM_ENGINEER)".into(),
            );
        }
        if !ACCEPT_WITHIN.contains(&a.within_secs) {
            return err(
                format!("nodes[{i}].acceptWithin"),
                "must be between a minute (PT1M) and thirty days (P30D)".into(),
            );
        }
    }
    let count = |k: NodeKind| nodes.iter().filter(|n| n.kind == k).count();
    let (direct, to_provider, provider) = (
        count(NodeKind::DispatchToEngineer),
        count(NodeKind::DispatchToProvider),
        count(NodeKind::ProviderDispatchToEngineer),
    );
    if direct > 1 || to_provider > 1 || provider > 1 {
        return err(
            "nodes".into(),
            "a workflow has at most one dispatch node of each kind".into(),
        );
    }
    if direct == 1 && to_provider + provider > 0 {
        return err(
            "nodes".into(),
            "a workflow dispatches either directly (DISPATCH_TO_ENGINEER) or in two stages (DISPATCH_TO_PROVIDER then PROVIDER_DISPATCH_TO_ENGINEER), not both".into(),
        );
    }
    if to_provider + provider > 0 {
        let first = nodes.iter().position(|n| n.kind == NodeKind::DispatchToProvider);
        let second = nodes
            .iter()
            .position(|n| n.kind == NodeKind::ProviderDispatchToEngineer);
        match (first, second) {
            (Some(a), Some(b)) if b == a + 1 => {}
            (Some(a), _) => {
                return err(
                    format!("nodes[{a}].kind"),
                    "DISPATCH_TO_PROVIDER must be followed directly by PROVIDER_DISPATCH_TO_ENGINEER (the provider assigns its engineer)".into(),
                );
            }
            (None, Some(b)) => {
                return err(
                    format!("nodes[{b}].kind"),
                    "PROVIDER_DISPATCH_TO_ENGINEER must come directly after DISPATCH_TO_PROVIDER (the upstream assigns the provider first)".into(),
                );
            }
            (None, None) => unreachable!("counted above"),
        }
    }
    if direct + to_provider > 0 && kind != WorkflowKind::Interconnection {
        return err(
            "kind".into(),
            "dispatch to service providers (DISPATCH_TO_ENGINEER, or DISPATCH_TO_PROVIDER and PROVIDER_DISPATCH_TO_ENGINEER) needs an INTERCONNECTION workflow".into(),
        );
    }
    Ok(())
}

/// Where the orders of a workflow are dispatched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dispatch {
    /// The upstream (its dispatcher or rules) assigns an engineer at this node.
    Direct(usize),
    /// The upstream assigns a service provider at node `upstream`; the provider assigns one
    /// of its engineers at the next node.
    TwoStage { upstream: usize },
}

impl Dispatch {
    /// The node at which the upstream dispatches (its rules, then its dispatchers).
    pub fn upstream_node(self) -> usize {
        match self {
            Dispatch::Direct(i) | Dispatch::TwoStage { upstream: i } => i,
        }
    }

    /// The node at which an engineer is assigned.
    pub fn engineer_node(self) -> usize {
        match self {
            Dispatch::Direct(i) => i,
            Dispatch::TwoStage { upstream } => upstream + 1,
        }
    }

    pub fn is_two_stage(self) -> bool {
        matches!(self, Dispatch::TwoStage { .. })
    }
}

/// How an order of this workflow is dispatched, if it can be at all (the workflow was checked
/// by `validate` when it was saved).
pub fn dispatch(kind: WorkflowKind, nodes: &[Node]) -> Option<Dispatch> {
    if kind != WorkflowKind::Interconnection {
        return None;
    }
    if let Some(i) = nodes.iter().position(|n| n.kind == NodeKind::DispatchToEngineer) {
        return Some(Dispatch::Direct(i));
    }
    let upstream = nodes.iter().position(|n| n.kind == NodeKind::DispatchToProvider)?;
    (nodes.get(upstream + 1).map(|n| n.kind) == Some(NodeKind::ProviderDispatchToEngineer))
        .then_some(Dispatch::TwoStage { upstream })
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
            acceptance: None,
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
        assert_eq!(
            dispatch(WorkflowKind::Interconnection, &nodes),
            Some(Dispatch::Direct(1))
        );
        assert_eq!(dispatch(WorkflowKind::Internal, &nodes), None);
        assert_eq!(task_node(&nodes, 1).map(|(i, _)| i), Some(2));
        assert_eq!(node_after_dispatch(&nodes, 1), 2);
        let upstream_next = [node(DispatchToEngineer, Upstream), node(Review, Upstream)];
        assert_eq!(task_node(&upstream_next, 0), None);
        let last = [node(DispatchToEngineer, Upstream)];
        assert_eq!(task_node(&last, 0), None);
        assert_eq!(node_after_dispatch(&last, 0), 0);
        assert_eq!(dispatch(WorkflowKind::Interconnection, &[node(Review, Upstream)]), None);
    }

    #[test]
    fn two_stage_dispatch() {
        use NodeKind::*;
        use Performer::*;
        let nodes = [
            node(Review, Upstream),
            node(DispatchToProvider, Upstream),
            node(ProviderDispatchToEngineer, ServiceProvider),
            node(AcceptAndService, DownstreamEngineer),
        ];
        assert!(validate(WorkflowKind::Interconnection, &nodes).is_ok());
        let d = dispatch(WorkflowKind::Interconnection, &nodes).unwrap();
        assert_eq!(d, Dispatch::TwoStage { upstream: 1 });
        assert!(d.is_two_stage());
        assert_eq!((d.upstream_node(), d.engineer_node()), (1, 2));
        assert_eq!(task_node(&nodes, d.engineer_node()).map(|(i, _)| i), Some(3));
        assert_eq!(Dispatch::Direct(4).engineer_node(), 4);
        assert_eq!(validate(WorkflowKind::Internal, &nodes).unwrap_err().field, "kind");

        let refused = |nodes: &[Node]| validate(WorkflowKind::Interconnection, nodes).unwrap_err();
        // Both flows in one workflow.
        let both = [
            node(DispatchToEngineer, Upstream),
            node(DispatchToProvider, Upstream),
            node(ProviderDispatchToEngineer, ServiceProvider),
        ];
        assert!(refused(&both).message.contains("not both"));
        // Half of the pair, either half, or the pair apart.
        assert_eq!(refused(&[node(DispatchToProvider, Upstream)]).field, "nodes[0].kind");
        assert_eq!(
            refused(&[
                node(Review, Upstream),
                node(ProviderDispatchToEngineer, ServiceProvider)
            ])
            .field,
            "nodes[1].kind"
        );
        let apart = [
            node(DispatchToProvider, Upstream),
            node(Review, Upstream),
            node(ProviderDispatchToEngineer, ServiceProvider),
        ];
        assert_eq!(refused(&apart).field, "nodes[0].kind");
        let reversed = [
            node(ProviderDispatchToEngineer, ServiceProvider),
            node(DispatchToProvider, Upstream),
        ];
        assert_eq!(refused(&reversed).field, "nodes[1].kind");
        // Performers: the upstream assigns the provider, the provider its engineer, and the
        // provider performs nothing else.
        assert_eq!(
            refused(&[
                node(DispatchToProvider, ServiceProvider),
                node(ProviderDispatchToEngineer, ServiceProvider)
            ])
            .field,
            "nodes[0].performer"
        );
        assert_eq!(
            refused(&[
                node(DispatchToProvider, Upstream),
                node(ProviderDispatchToEngineer, Upstream)
            ])
            .field,
            "nodes[1].performer"
        );
        assert_eq!(refused(&[node(Review, ServiceProvider)]).field, "nodes[0].performer");
        let twice = [
            node(DispatchToProvider, Upstream),
            node(ProviderDispatchToEngineer, ServiceProvider),
            node(DispatchToProvider, Upstream),
            node(ProviderDispatchToEngineer, ServiceProvider),
        ];
        assert_eq!(refused(&twice).field, "nodes");
        // Not dispatchable unless the pair is whole (a stored workflow always is).
        assert_eq!(
            dispatch(WorkflowKind::Interconnection, &[node(DispatchToProvider, Upstream)]),
            None
        );
    }
}
