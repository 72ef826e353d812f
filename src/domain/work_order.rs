//! The work-order state machine: states, commands, and the one transition function.
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    Created,
    AutoDispatchAttempted,
    AwaitingManual,
    /// Two-stage dispatch: the order is assigned to a service provider and waits at the
    /// provider's node for its dispatcher (or its rules) to assign an engineer.
    ProviderAssigned,
    /// Offered to eligible engineers at once (a rule with strategy OFFER): the first to claim
    /// it gets it.
    Offered,
    EngineerAssigned,
    DownstreamTask,
    Cancelled,
}

impl State {
    pub const ALL: [State; 8] = [
        State::Created,
        State::AutoDispatchAttempted,
        State::AwaitingManual,
        State::ProviderAssigned,
        State::Offered,
        State::EngineerAssigned,
        State::DownstreamTask,
        State::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Created => "CREATED",
            State::AutoDispatchAttempted => "AUTO_DISPATCH_ATTEMPTED",
            State::AwaitingManual => "AWAITING_MANUAL",
            State::ProviderAssigned => "PROVIDER_ASSIGNED",
            State::Offered => "OFFERED",
            State::EngineerAssigned => "ENGINEER_ASSIGNED",
            State::DownstreamTask => "DOWNSTREAM_TASK",
            State::Cancelled => "CANCELLED",
        }
    }

    pub fn parse(s: &str) -> Option<State> {
        State::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// An engineer is assigned (the dispatch fields describe a live assignment).
    pub fn has_engineer(self) -> bool {
        matches!(self, State::EngineerAssigned | State::DownstreamTask)
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything that can happen to an order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Command {
    /// The order reached the dispatch node: automatic rules are evaluated.
    AttemptAutoDispatch,
    /// A rule yielded an eligible engineer.
    AutoAssign,
    /// No rule yielded an engineer: the order waits for a dispatcher.
    RouteToManual,
    /// A dispatcher (or integration) assigns an engineer by hand.
    AssignManually,
    /// The next node is performed by the downstream engineer: a task is issued.
    IssueTask,
    /// Another engineer replaces the assigned one.
    Reassign,
    /// The engineer declines the task; the order goes back to manual dispatch.
    Decline,
    /// Automatic dispatch is run again on an order waiting for manual dispatch.
    RetryAutoDispatch,
    Cancel,
    /// Two-stage dispatch: a rule yielded an eligible service provider.
    AutoAssignProvider,
    /// Two-stage dispatch: a dispatcher (or integration) assigns a service provider by hand.
    AssignProvider,
    /// Two-stage dispatch: another provider replaces the assigned one, before it has assigned
    /// an engineer.
    ReassignProvider,
    /// Two-stage dispatch: the provider rejects the order; it goes back to the upstream's
    /// manual dispatch.
    Reject,
    /// Two-stage dispatch: the engineer declines the task; the order goes back to its
    /// provider's dispatcher.
    DeclineToProvider,
    /// A rule with strategy OFFER offers the order to its eligible engineers at once.
    Offer,
    /// An offered engineer claims the order: it is assigned to it.
    Claim,
    /// Nobody claimed the offer in time: the order waits for the upstream's dispatcher.
    ExpireOffer,
    /// Two-stage dispatch: nobody claimed the provider's offer in time: the order waits for
    /// the provider's dispatcher.
    ExpireOfferToProvider,
}

impl Command {
    pub const ALL: [Command; 18] = [
        Command::AttemptAutoDispatch,
        Command::AutoAssign,
        Command::RouteToManual,
        Command::AssignManually,
        Command::IssueTask,
        Command::Reassign,
        Command::Decline,
        Command::RetryAutoDispatch,
        Command::Cancel,
        Command::AutoAssignProvider,
        Command::AssignProvider,
        Command::ReassignProvider,
        Command::Reject,
        Command::DeclineToProvider,
        Command::Offer,
        Command::Claim,
        Command::ExpireOffer,
        Command::ExpireOfferToProvider,
    ];

    /// The event kind recorded in the order's history for this command.
    pub fn event_kind(self) -> EventKind {
        match self {
            Command::AttemptAutoDispatch => EventKind::AutoDispatchAttempted,
            Command::AutoAssign => EventKind::EngineerAssigned,
            Command::RouteToManual => EventKind::RoutedToManual,
            Command::AssignManually => EventKind::EngineerAssigned,
            Command::IssueTask => EventKind::TaskIssued,
            Command::Reassign => EventKind::EngineerReassigned,
            Command::Decline => EventKind::TaskDeclined,
            Command::RetryAutoDispatch => EventKind::AutoDispatchRetried,
            Command::Cancel => EventKind::Cancelled,
            Command::AutoAssignProvider | Command::AssignProvider => EventKind::ProviderAssigned,
            Command::ReassignProvider => EventKind::ProviderReassigned,
            Command::Reject => EventKind::RejectedByProvider,
            Command::DeclineToProvider => EventKind::TaskDeclined,
            Command::Offer => EventKind::Offered,
            Command::Claim => EventKind::Claimed,
            Command::ExpireOffer | Command::ExpireOfferToProvider => EventKind::OfferExpired,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Command::AttemptAutoDispatch => "attempt automatic dispatch of",
            Command::AutoAssign => "automatically assign",
            Command::RouteToManual => "route to manual dispatch",
            Command::AssignManually => "assign an engineer to",
            Command::IssueTask => "issue a task for",
            Command::Reassign => "reassign the engineer of",
            Command::Decline => "decline the task of",
            Command::RetryAutoDispatch => "retry automatic dispatch of",
            Command::Cancel => "cancel",
            Command::AutoAssignProvider => "automatically assign a service provider to",
            Command::AssignProvider => "assign a service provider to",
            Command::ReassignProvider => "reassign the service provider of",
            Command::Reject => "reject",
            Command::DeclineToProvider => "decline the task of",
            Command::Offer => "offer",
            Command::Claim => "claim",
            Command::ExpireOffer | Command::ExpireOfferToProvider => "expire the offer of",
        }
    }
}

/// What an entry of an order's history records: every kind the service writes is one of these,
/// so every stored entry can be read back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
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
    /// An interrupted dispatch was rolled forward by the recovery sweep.
    Recovered,
    /// Two-stage dispatch: the order was assigned to a service provider.
    ProviderAssigned,
    /// Two-stage dispatch: another service provider replaced the assigned one.
    ProviderReassigned,
    /// Two-stage dispatch: the service provider rejected the order.
    RejectedByProvider,
    /// The engineer did not accept its task by the node's deadline: taken back, the order
    /// dispatched again (`onAcceptTimeout: REDISPATCH`).
    TaskExpired,
    /// Offered to eligible engineers at once (strategy OFFER).
    Offered,
    /// An offered engineer claimed the order.
    Claimed,
    /// Nobody claimed the offer in time.
    OfferExpired,
    /// An SLA target passed its warning share of time, not yet met.
    SlaWarning,
    /// An SLA target fell due, not met.
    SlaBreached,
}

impl EventKind {
    pub const ALL: [EventKind; 21] = [
        EventKind::Created,
        EventKind::AutoDispatchAttempted,
        EventKind::RoutedToManual,
        EventKind::EngineerAssigned,
        EventKind::EngineerReassigned,
        EventKind::TaskIssued,
        EventKind::TaskRevoked,
        EventKind::TaskAccepted,
        EventKind::TaskDeclined,
        EventKind::AutoDispatchRetried,
        EventKind::Cancelled,
        EventKind::Recovered,
        EventKind::ProviderAssigned,
        EventKind::ProviderReassigned,
        EventKind::RejectedByProvider,
        EventKind::TaskExpired,
        EventKind::Offered,
        EventKind::Claimed,
        EventKind::OfferExpired,
        EventKind::SlaWarning,
        EventKind::SlaBreached,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Created => "CREATED",
            EventKind::AutoDispatchAttempted => "AUTO_DISPATCH_ATTEMPTED",
            EventKind::RoutedToManual => "ROUTED_TO_MANUAL",
            EventKind::EngineerAssigned => "ENGINEER_ASSIGNED",
            EventKind::EngineerReassigned => "ENGINEER_REASSIGNED",
            EventKind::TaskIssued => "TASK_ISSUED",
            EventKind::TaskRevoked => "TASK_REVOKED",
            EventKind::TaskAccepted => "TASK_ACCEPTED",
            EventKind::TaskDeclined => "TASK_DECLINED",
            EventKind::AutoDispatchRetried => "AUTO_DISPATCH_RETRIED",
            EventKind::Cancelled => "CANCELLED",
            EventKind::Recovered => "RECOVERED",
            EventKind::ProviderAssigned => "PROVIDER_ASSIGNED",
            EventKind::ProviderReassigned => "PROVIDER_REASSIGNED",
            EventKind::RejectedByProvider => "REJECTED_BY_PROVIDER",
            EventKind::TaskExpired => "TASK_EXPIRED",
            EventKind::Offered => "OFFERED",
            EventKind::Claimed => "CLAIMED",
            EventKind::OfferExpired => "OFFER_EXPIRED",
            EventKind::SlaWarning => "SLA_WARNING",
            EventKind::SlaBreached => "SLA_BREACHED",
        }
    }

    pub fn parse(s: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// An illegal command for the order's current state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TransitionError {
    pub state: State,
    pub command: Command,
}

impl fmt::Display for TransitionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot {} a work order in state {}", self.command.name(), self.state)?;
        match (self.state, self.command) {
            (State::EngineerAssigned | State::DownstreamTask, Command::AssignManually) => {
                f.write_str("; use reassignEngineer")
            }
            (State::AwaitingManual, Command::Reassign) => f.write_str("; use assignEngineer"),
            (State::ProviderAssigned, Command::AssignProvider) => f.write_str("; use reassignServiceProvider"),
            (State::AwaitingManual, Command::ReassignProvider) => f.write_str("; use assignServiceProvider"),
            (State::EngineerAssigned | State::DownstreamTask, Command::ReassignProvider | Command::Reject) => {
                f.write_str("; the provider has assigned an engineer")
            }
            _ => Ok(()),
        }
    }
}

impl std::error::Error for TransitionError {}

/// One accepted step: the order moves `from` -> `to` because of `command`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transition {
    pub from: State,
    pub to: State,
    pub command: Command,
}

/// The whole state machine. Every (state, command) pair is listed; nothing falls through.
pub fn transition(state: State, command: Command) -> Result<Transition, TransitionError> {
    use Command as C;
    use State as S;
    let to = match (state, command) {
        (S::Created, C::AttemptAutoDispatch) => S::AutoDispatchAttempted,
        (S::AwaitingManual, C::RetryAutoDispatch) => S::AutoDispatchAttempted,
        (S::AutoDispatchAttempted | S::ProviderAssigned, C::AutoAssign) => S::EngineerAssigned,
        (S::AutoDispatchAttempted, C::RouteToManual) => S::AwaitingManual,
        (S::AwaitingManual | S::ProviderAssigned, C::AssignManually) => S::EngineerAssigned,
        (S::EngineerAssigned, C::IssueTask) => S::DownstreamTask,
        (S::EngineerAssigned | S::DownstreamTask, C::Reassign) => S::EngineerAssigned,
        (S::DownstreamTask, C::Decline) => S::AwaitingManual,
        (S::AutoDispatchAttempted, C::AutoAssignProvider) => S::ProviderAssigned,
        (S::AwaitingManual, C::AssignProvider) => S::ProviderAssigned,
        (S::ProviderAssigned, C::ReassignProvider) => S::ProviderAssigned,
        (S::ProviderAssigned, C::Reject) => S::AwaitingManual,
        (S::DownstreamTask, C::DeclineToProvider) => S::ProviderAssigned,
        (S::AutoDispatchAttempted | S::ProviderAssigned, C::Offer) => S::Offered,
        (S::Offered, C::Claim | C::AssignManually) => S::EngineerAssigned,
        (S::Offered, C::ExpireOffer) => S::AwaitingManual,
        (S::Offered, C::ExpireOfferToProvider) => S::ProviderAssigned,
        (
            S::Created
            | S::AutoDispatchAttempted
            | S::AwaitingManual
            | S::ProviderAssigned
            | S::Offered
            | S::EngineerAssigned
            | S::DownstreamTask,
            C::Cancel,
        ) => S::Cancelled,
        (
            S::Offered,
            C::AttemptAutoDispatch
            | C::AutoAssign
            | C::RouteToManual
            | C::IssueTask
            | C::Reassign
            | C::Decline
            | C::RetryAutoDispatch
            | C::AutoAssignProvider
            | C::AssignProvider
            | C::ReassignProvider
            | C::Reject
            | C::DeclineToProvider
            | C::Offer,
        )
        | (
            S::Created
            | S::AutoDispatchAttempted
            | S::AwaitingManual
            | S::ProviderAssigned
            | S::EngineerAssigned
            | S::DownstreamTask,
            C::Claim | C::ExpireOffer | C::ExpireOfferToProvider,
        )
        | (S::Created | S::AwaitingManual | S::EngineerAssigned | S::DownstreamTask, C::Offer)
        | (
            S::Created,
            C::AutoAssign
            | C::RouteToManual
            | C::AssignManually
            | C::IssueTask
            | C::Reassign
            | C::Decline
            | C::RetryAutoDispatch
            | C::AutoAssignProvider
            | C::AssignProvider
            | C::ReassignProvider
            | C::Reject
            | C::DeclineToProvider,
        )
        | (
            S::AutoDispatchAttempted,
            C::AttemptAutoDispatch
            | C::AssignManually
            | C::IssueTask
            | C::Reassign
            | C::Decline
            | C::RetryAutoDispatch
            | C::AssignProvider
            | C::ReassignProvider
            | C::Reject
            | C::DeclineToProvider,
        )
        | (
            S::AwaitingManual,
            C::AttemptAutoDispatch
            | C::AutoAssign
            | C::RouteToManual
            | C::IssueTask
            | C::Reassign
            | C::Decline
            | C::AutoAssignProvider
            | C::ReassignProvider
            | C::Reject
            | C::DeclineToProvider,
        )
        | (
            S::ProviderAssigned,
            C::AttemptAutoDispatch
            | C::RouteToManual
            | C::IssueTask
            | C::Reassign
            | C::Decline
            | C::RetryAutoDispatch
            | C::AutoAssignProvider
            | C::AssignProvider
            | C::DeclineToProvider,
        )
        | (
            S::EngineerAssigned,
            C::AttemptAutoDispatch
            | C::AutoAssign
            | C::RouteToManual
            | C::AssignManually
            | C::Decline
            | C::RetryAutoDispatch
            | C::AutoAssignProvider
            | C::AssignProvider
            | C::ReassignProvider
            | C::Reject
            | C::DeclineToProvider,
        )
        | (
            S::DownstreamTask,
            C::AttemptAutoDispatch
            | C::AutoAssign
            | C::RouteToManual
            | C::AssignManually
            | C::IssueTask
            | C::RetryAutoDispatch
            | C::AutoAssignProvider
            | C::AssignProvider
            | C::ReassignProvider
            | C::Reject,
        )
        | (S::Cancelled, _) => return Err(TransitionError { state, command }),
    };
    Ok(Transition {
        from: state,
        to,
        command,
    })
}

/// Applies commands in order, stopping at the first illegal one.
pub fn run(state: State, commands: &[Command]) -> Result<(State, Vec<Transition>), TransitionError> {
    let mut steps = Vec::with_capacity(commands.len());
    let mut current = state;
    for &c in commands {
        let t = transition(current, c)?;
        current = t.to;
        steps.push(t);
    }
    Ok((current, steps))
}

#[cfg(test)]
mod tests {
    use super::*;
    use Command as C;
    use State as S;
    use proptest::prelude::*;

    /// The expected table, written independently of `transition`'s match.
    fn expected(state: State, command: Command) -> Option<State> {
        let table: &[(State, Command, State)] = &[
            (S::Created, C::AttemptAutoDispatch, S::AutoDispatchAttempted),
            (S::Created, C::Cancel, S::Cancelled),
            (S::AutoDispatchAttempted, C::AutoAssign, S::EngineerAssigned),
            (S::AutoDispatchAttempted, C::RouteToManual, S::AwaitingManual),
            (S::AutoDispatchAttempted, C::Cancel, S::Cancelled),
            (S::AwaitingManual, C::AssignManually, S::EngineerAssigned),
            (S::AwaitingManual, C::RetryAutoDispatch, S::AutoDispatchAttempted),
            (S::AwaitingManual, C::Cancel, S::Cancelled),
            (S::EngineerAssigned, C::IssueTask, S::DownstreamTask),
            (S::EngineerAssigned, C::Reassign, S::EngineerAssigned),
            (S::EngineerAssigned, C::Cancel, S::Cancelled),
            (S::DownstreamTask, C::Reassign, S::EngineerAssigned),
            (S::DownstreamTask, C::Decline, S::AwaitingManual),
            (S::DownstreamTask, C::Cancel, S::Cancelled),
            (S::AutoDispatchAttempted, C::AutoAssignProvider, S::ProviderAssigned),
            (S::AwaitingManual, C::AssignProvider, S::ProviderAssigned),
            (S::ProviderAssigned, C::ReassignProvider, S::ProviderAssigned),
            (S::ProviderAssigned, C::Reject, S::AwaitingManual),
            (S::ProviderAssigned, C::AssignManually, S::EngineerAssigned),
            (S::ProviderAssigned, C::AutoAssign, S::EngineerAssigned),
            (S::ProviderAssigned, C::Cancel, S::Cancelled),
            (S::DownstreamTask, C::DeclineToProvider, S::ProviderAssigned),
            (S::AutoDispatchAttempted, C::Offer, S::Offered),
            (S::ProviderAssigned, C::Offer, S::Offered),
            (S::Offered, C::Claim, S::EngineerAssigned),
            (S::Offered, C::AssignManually, S::EngineerAssigned),
            (S::Offered, C::ExpireOffer, S::AwaitingManual),
            (S::Offered, C::ExpireOfferToProvider, S::ProviderAssigned),
            (S::Offered, C::Cancel, S::Cancelled),
        ];
        table
            .iter()
            .find(|(s, c, _)| *s == state && *c == command)
            .map(|(_, _, to)| *to)
    }

    #[test]
    fn every_state_command_pair() {
        let mut legal = 0;
        for s in State::ALL {
            for c in Command::ALL {
                match (transition(s, c), expected(s, c)) {
                    (Ok(t), Some(to)) => {
                        legal += 1;
                        assert_eq!(
                            t,
                            Transition {
                                from: s,
                                to,
                                command: c
                            },
                            "{s} x {c:?}"
                        );
                    }
                    (Err(e), None) => {
                        assert_eq!(e, TransitionError { state: s, command: c });
                        assert!(e.to_string().contains(s.as_str()), "error names the state: {e}");
                    }
                    (got, want) => panic!("{s} x {c:?}: got {got:?}, want {want:?}"),
                }
            }
        }
        assert_eq!(legal, 29);
    }

    #[test]
    fn cancelled_is_terminal() {
        for c in Command::ALL {
            assert!(transition(S::Cancelled, c).is_err());
        }
    }

    #[test]
    fn hints_point_to_the_right_mutation() {
        let e = transition(S::EngineerAssigned, C::AssignManually).unwrap_err();
        assert!(e.to_string().contains("reassignEngineer"), "{e}");
        let e = transition(S::AwaitingManual, C::Reassign).unwrap_err();
        assert!(e.to_string().contains("assignEngineer"), "{e}");
        let e = transition(S::ProviderAssigned, C::AssignProvider).unwrap_err();
        assert!(e.to_string().contains("reassignServiceProvider"), "{e}");
        let e = transition(S::AwaitingManual, C::ReassignProvider).unwrap_err();
        assert!(e.to_string().contains("assignServiceProvider"), "{e}");
        let e = transition(S::DownstreamTask, C::Reject).unwrap_err();
        assert!(e.to_string().contains("has assigned an engineer"), "{e}");
    }

    #[test]
    fn states_round_trip() {
        for s in State::ALL {
            assert_eq!(State::parse(s.as_str()), Some(s));
        }
        assert_eq!(State::parse("DONE"), None);
    }

    fn any_command() -> impl Strategy<Value = Command> {
        proptest::sample::select(Command::ALL.to_vec())
    }

    proptest! {
        /// Over random command sequences: a refused command changes nothing, an accepted one
        /// follows the table, an order never leaves CANCELLED, an engineer is assigned exactly
        /// when the last assignment has not been undone, and a provider holds the order
        /// (PROVIDER_ASSIGNED) exactly when it was given one and nothing since took it away
        /// or gave it an engineer; an offer stands (OFFERED) exactly from its making until it is
        /// claimed, assigned by hand, expired or cancelled.
        #[test]
        fn random_sequences_follow_the_table(cmds in proptest::collection::vec(any_command(), 0..64)) {
            let mut state = S::Created;
            let mut assigned = false;
            let mut at_provider = false;
            let mut offered = false;
            for c in cmds {
                match transition(state, c) {
                    Ok(t) => {
                        prop_assert_eq!(t.from, state);
                        prop_assert_eq!(Some(t.to), expected(state, c));
                        prop_assert_ne!(state, S::Cancelled);
                        match c {
                            C::AutoAssign | C::AssignManually | C::Reassign | C::Claim => assigned = true,
                            C::Decline | C::Cancel | C::DeclineToProvider => assigned = false,
                            _ => {}
                        }
                        match c {
                            C::AutoAssignProvider | C::AssignProvider | C::DeclineToProvider => at_provider = true,
                            C::ExpireOfferToProvider => at_provider = true,
                            C::ReassignProvider => prop_assert!(at_provider),
                            C::Reject | C::Cancel | C::AutoAssign | C::AssignManually | C::Offer => at_provider = false,
                            _ => {}
                        }
                        match c {
                            C::Offer => offered = true,
                            C::Claim | C::AssignManually | C::ExpireOffer | C::ExpireOfferToProvider | C::Cancel => {
                                offered = false
                            }
                            _ => prop_assert!(!offered || t.to == S::Offered),
                        }
                        state = t.to;
                    }
                    Err(e) => {
                        prop_assert_eq!(e.state, state);
                        prop_assert!(expected(state, c).is_none());
                    }
                }
                prop_assert_eq!(state.has_engineer(), assigned);
                prop_assert_eq!(state == S::ProviderAssigned, at_provider);
                prop_assert_eq!(state == S::Offered, offered);
            }
        }

        /// `run` stops at the first illegal command and reports the state it stopped in.
        #[test]
        fn run_matches_stepwise(cmds in proptest::collection::vec(any_command(), 0..16)) {
            let mut state = S::Created;
            let mut first_err = None;
            for &c in &cmds {
                match transition(state, c) {
                    Ok(t) => state = t.to,
                    Err(e) => { first_err = Some(e); break; }
                }
            }
            match (run(S::Created, &cmds), first_err) {
                (Ok((end, steps)), None) => {
                    prop_assert_eq!(end, state);
                    prop_assert_eq!(steps.len(), cmds.len());
                }
                (Err(e), Some(want)) => prop_assert_eq!(e, want),
                (got, want) => prop_assert!(false, "run gave {:?}, stepwise {:?}", got, want),
            }
        }
    }
}
