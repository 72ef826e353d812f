//! GraphQL enums, mirrored from the domain (the domain knows nothing of GraphQL).
use async_graphql::Enum;
use async_graphql::resolver_utils::EnumType;

/// The enum value whose GraphQL name is `s` (stored values use the GraphQL names).
pub fn by_name<T: EnumType>(s: &str) -> Option<T> {
    T::items().iter().find(|i| i.name == s).map(|i| i.value)
}

/// The GraphQL name of an enum value.
pub fn name_of<T: EnumType>(v: T) -> &'static str {
    T::items()
        .iter()
        .find(|i| i.value == v)
        .map(|i| i.name)
        .unwrap_or_default()
}

use crate::domain::{self, assignment, work_order, workflow};

mirror!(
    /// Where a work order stands in dispatch.
    WorkOrderState <=> work_order::State {
        /// Created; not yet at the dispatch node.
        Created,
        /// At the dispatch node; automatic dispatch rules were evaluated.
        AutoDispatchAttempted,
        /// No rule yielded an engineer: waiting for a dispatcher.
        AwaitingManual,
        /// Two-stage dispatch: assigned to a service provider, waiting for its dispatcher (or
        /// its rules) to assign one of its engineers. The upstream's fields are filled; the
        /// engineer's (`field_outDealUser__c`) is empty.
        ProviderAssigned,
        /// Offered to eligible engineers at once (a rule with strategy OFFER); the first to
        /// `claimWorkOrder` gets it; unclaimed in time, it goes to a dispatcher.
        Offered,
        /// An engineer is assigned (the eight dispatch fields are filled).
        EngineerAssigned,
        /// The next node is the engineer's: a task was issued to the engineer.
        DownstreamTask,
        Cancelled,
    }
);

mirror!(
    /// How the engineer was assigned (`assign_way__c`).
    DispatchMethod <=> assignment::Method { Automatic, Manual }
);

mirror!(
    Priority <=> domain::Priority { Low, Normal, High, Urgent }
);

mirror!(
    Role <=> domain::Role {
        /// Administers its tenant: workflows, partners, users; on a downstream tenant its engineers.
        Admin,
        /// Assigns work orders by hand: an upstream's dispatcher assigns engineers (direct
        /// dispatch) or service providers (two-stage); a provider's dispatcher assigns its own
        /// engineers to the orders assigned to its company (two-stage).
        Dispatcher,
        /// A downstream external user: sees and acts on its own tasks.
        Engineer,
        /// A machine client with the rights of its tenant's ADMIN and DISPATCHER.
        Integration,
    }
);

mirror!(
    TenantKind <=> domain::TenantKind {
        /// The enterprise that owns and outsources work orders.
        Upstream,
        /// A service provider ("connected enterprise") whose engineers do the work.
        Downstream,
    }
);

mirror!(
    WorkflowKind <=> workflow::WorkflowKind {
        /// Upstream to downstream; the only kind whose orders reach service-provider engineers.
        Interconnection,
        Internal,
    }
);

mirror!(
    /// What happens to a task not accepted by its node's deadline (`acceptWithin`).
    AcceptTimeoutAction <=> workflow::AcceptTimeout {
        /// Accepted on the engineer's behalf, recorded as automatic.
        AutoAccept,
        /// Revoked (the engineer told) and dispatched again, never to that engineer; falls to
        /// manual dispatch when no rule yields another.
        Redispatch,
    }
);

mirror!(
    WorkflowNodeKind <=> workflow::NodeKind {
        /// "Dispatcher assigns service-provider engineer": automatic rules run here first, then manual assignment.
        DispatchToEngineer,
        /// "Dispatcher assigns service provider" (two-stage dispatch, performed UPSTREAM): the
        /// upstream assigns the order to a service-provider company. Directly followed by
        /// PROVIDER_DISPATCH_TO_ENGINEER.
        DispatchToProvider,
        /// "Service provider assigns engineer" (two-stage dispatch, performed by the
        /// SERVICE_PROVIDER): the provider's dispatcher assigns one of its engineers.
        ProviderDispatchToEngineer,
        /// The engineer accepts the order and services it.
        AcceptAndService,
        Review,
        Custom,
    }
);

mirror!(
    /// Who performs a workflow node.
    Performer <=> workflow::Performer {
        Upstream,
        DownstreamEngineer,
        /// The service provider's staff: only its own dispatch node (PROVIDER_DISPATCH_TO_ENGINEER).
        ServiceProvider,
    }
);

/// The status of an engineer's task.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum TaskStatus {
    /// Issued to the engineer (open).
    Assigned,
    /// Accepted by the engineer (open).
    Accepted,
    Declined,
    /// Taken away by a reassignment.
    Revoked,
    /// Closed because its order was cancelled.
    Cancelled,
    /// Not accepted by its deadline and taken back to be dispatched again
    /// (`onAcceptTimeout: REDISPATCH`).
    Expired,
    /// An order offered to the engineer (strategy OFFER): `claimWorkOrder` takes it.
    Offered,
    /// The engineer claimed the offer (its task to do the work is another, ASSIGNED).
    Claimed,
    /// The offer ended without this engineer.
    Withdrawn,
}

mirror!(
    /// What an entry of a work order's history records.
    WorkOrderEventKind <=> work_order::EventKind {
        Created,
        AutoDispatchAttempted,
        RoutedToManual,
        EngineerAssigned,
        EngineerReassigned,
        TaskIssued,
        TaskRevoked,
        TaskAccepted,
        TaskDeclined,
        AutoDispatchRetried,
        Cancelled,
        /// An interrupted dispatch was rolled forward by the server's recovery sweep.
        Recovered,
        /// Two-stage dispatch: assigned to a service provider.
        ProviderAssigned,
        /// Two-stage dispatch: another service provider replaced the assigned one.
        ProviderReassigned,
        /// Two-stage dispatch: the service provider rejected the order (its reason in `data`).
        RejectedByProvider,
        /// The engineer did not accept its task by the node's deadline (`acceptWithin`): taken
        /// back and dispatched again (`onAcceptTimeout: REDISPATCH`).
        TaskExpired,
        /// Offered to eligible engineers at once (strategy OFFER; who, in `data`).
        Offered,
        /// An offered engineer claimed the order.
        Claimed,
        /// Nobody claimed the offer in time: the order went to a dispatcher.
        OfferExpired,
        /// An SLA target passed its warning share of time, not yet met (which, in `data`).
        SlaWarning,
        /// An SLA target fell due, not met (which, in `data`).
        SlaBreached,
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_kinds_read_back_by_their_stored_names() {
        for k in work_order::EventKind::ALL {
            assert_eq!(by_name::<WorkOrderEventKind>(k.as_str()), Some(k.into()), "{k:?}");
        }
        assert!(by_name::<TaskStatus>("REVOKED").is_some());
    }

    #[test]
    fn states_mirror_their_domain_names() {
        for s in work_order::State::ALL {
            assert_eq!(name_of(WorkOrderState::from(s)), s.as_str());
        }
    }
}
