//! What an assignment writes on a work order: the seed's eight dispatch fields, and the steps.
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::work_order::{Command, State, Transition, TransitionError, run};
use super::workflow::{Acceptance, Node, node_after_dispatch, task_node};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Automatic,
    Manual,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Automatic => "AUTOMATIC",
            Method::Manual => "MANUAL",
        }
    }

    pub fn parse(s: &str) -> Option<Method> {
        [Method::Automatic, Method::Manual]
            .into_iter()
            .find(|m| m.as_str() == s)
    }
}

/// The seed's API names, in the seed's order.
pub const API_NAMES: [&str; 8] = [
    "assign_user",
    "assign_way__c",
    "assign_time__c",
    "field_partner__c",
    "field_fwssf__c",
    "field_outDealUser__c",
    "field_downstreamOuterTenantName__c",
    "field_downstreamOuterTenantId__c",
];

/// The eight fields as they are stored on the order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DispatchFields {
    /// `assign_user`: the dispatcher; empty for automatic assignments.
    pub assign_user: Option<String>,
    /// `assign_way__c`
    pub assign_way: Method,
    /// `assign_time__c`
    pub assign_time: DateTime<Utc>,
    /// `field_partner__c`
    pub partner_id: String,
    /// `field_fwssf__c`: only for upstream tenants activated before v880.
    pub legacy_account_id: Option<String>,
    /// `field_outDealUser__c`
    pub engineer_id: String,
    /// `field_downstreamOuterTenantName__c`
    pub downstream_outer_tenant_name: String,
    /// `field_downstreamOuterTenantId__c`
    pub downstream_outer_tenant_id: String,
}

/// Who assigns, and to whom, with everything the fields are copied from.
#[derive(Clone, Debug)]
pub struct Assignee<'a> {
    pub engineer_id: &'a str,
    pub provider: Provider<'a>,
}

/// The service provider an order goes to, with what the fields copy of it.
#[derive(Clone, Debug)]
pub struct Provider<'a> {
    pub partner_id: &'a str,
    pub partner_legacy_account_id: Option<&'a str>,
    pub downstream_outer_tenant_id: &'a str,
    pub downstream_outer_tenant_name: &'a str,
}

/// `assign_user` (and the provider's `out_assign_user`): the dispatcher of a manual
/// assignment; empty for an automatic one.
fn dispatcher_of(method: Method, dispatcher: Option<&str>) -> Option<String> {
    match method {
        Method::Manual => dispatcher.map(str::to_owned),
        Method::Automatic => None,
    }
}

/// `field_fwssf__c`: the provider's legacy Account, kept only for upstream tenants activated
/// before v880.
fn legacy_account(upstream_activation_version: Option<i32>, provider: &Provider<'_>) -> Option<String> {
    if super::keeps_legacy_accounts(upstream_activation_version) {
        provider.partner_legacy_account_id.map(str::to_owned)
    } else {
        None
    }
}

/// The first stage of a two-stage dispatch: the upstream's fields, as `dispatch_fields` fills
/// them, with no engineer yet (`field_outDealUser__c` empty).
pub fn provider_fields(
    upstream_activation_version: Option<i32>,
    method: Method,
    dispatcher: Option<&str>,
    provider: &Provider<'_>,
    at: DateTime<Utc>,
) -> StoredFields {
    StoredFields {
        assign_user: dispatcher_of(method, dispatcher),
        assign_way: Some(method.as_str().to_owned()),
        assign_time: Some(at),
        partner_id: Some(provider.partner_id.to_owned()),
        legacy_account_id: legacy_account(upstream_activation_version, provider),
        engineer_id: None,
        downstream_outer_tenant_name: Some(provider.downstream_outer_tenant_name.to_owned()),
        downstream_outer_tenant_id: Some(provider.downstream_outer_tenant_id.to_owned()),
        ..StoredFields::default()
    }
}

/// The second stage of a two-stage dispatch: how the provider assigned its engineer
/// (`out_assign_user`, `out_assign_way__c`, `out_assign_time__c`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderStage {
    /// The provider's dispatcher; empty when the provider's rules assigned.
    pub out_assign_user: Option<String>,
    pub out_assign_way: Method,
    pub out_assign_time: DateTime<Utc>,
}

pub fn provider_stage(method: Method, dispatcher: Option<&str>, at: DateTime<Utc>) -> ProviderStage {
    ProviderStage {
        out_assign_user: dispatcher_of(method, dispatcher),
        out_assign_way: method,
        out_assign_time: at,
    }
}

/// Fills the eight fields exactly as the seed's table says.
pub fn dispatch_fields(
    upstream_activation_version: Option<i32>,
    method: Method,
    dispatcher: Option<&str>,
    assignee: &Assignee<'_>,
    at: DateTime<Utc>,
) -> DispatchFields {
    let p = &assignee.provider;
    DispatchFields {
        assign_user: dispatcher_of(method, dispatcher),
        assign_way: method,
        assign_time: at,
        partner_id: p.partner_id.to_owned(),
        legacy_account_id: legacy_account(upstream_activation_version, p),
        engineer_id: assignee.engineer_id.to_owned(),
        downstream_outer_tenant_name: p.downstream_outer_tenant_name.to_owned(),
        downstream_outer_tenant_id: p.downstream_outer_tenant_id.to_owned(),
    }
}

/// The eight fields as a stored order holds them, with the provider's three of a two-stage
/// dispatch: each possibly empty (never set, or cleared when the order left its engineer).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoredFields {
    pub assign_user: Option<String>,
    /// As stored (`Method::as_str`).
    pub assign_way: Option<String>,
    pub assign_time: Option<DateTime<Utc>>,
    pub partner_id: Option<String>,
    pub legacy_account_id: Option<String>,
    pub engineer_id: Option<String>,
    pub downstream_outer_tenant_name: Option<String>,
    pub downstream_outer_tenant_id: Option<String>,
    /// `out_assign_user` (two-stage dispatch).
    pub out_assign_user: Option<String>,
    /// `out_assign_way__c`, as stored (`Method::as_str`).
    pub out_assign_way: Option<String>,
    /// `out_assign_time__c`
    pub out_assign_time: Option<DateTime<Utc>>,
}

impl From<&DispatchFields> for StoredFields {
    fn from(f: &DispatchFields) -> Self {
        StoredFields {
            assign_user: f.assign_user.clone(),
            assign_way: Some(f.assign_way.as_str().to_owned()),
            assign_time: Some(f.assign_time),
            partner_id: Some(f.partner_id.clone()),
            legacy_account_id: f.legacy_account_id.clone(),
            engineer_id: Some(f.engineer_id.clone()),
            downstream_outer_tenant_name: Some(f.downstream_outer_tenant_name.clone()),
            downstream_outer_tenant_id: Some(f.downstream_outer_tenant_id.clone()),
            ..StoredFields::default()
        }
    }
}

/// The provider's three fields of a two-stage dispatch, by API name.
pub const PROVIDER_API_NAMES: [&str; 3] = ["out_assign_user", "out_assign_way__c", "out_assign_time__c"];

/// The stored fields (each possibly empty) keyed by their API names (`API_NAMES`, then
/// `PROVIDER_API_NAMES`).
pub fn api_fields(f: &StoredFields) -> Value {
    json!({
        "assign_user": f.assign_user,
        "assign_way__c": f.assign_way,
        // As the API's `DateTime` scalar writes it (async-graphql's `to_rfc3339`), so that
        // `assign_time__c` and `assignedAt` read the same.
        "assign_time__c": f.assign_time.map(|t| t.to_rfc3339()),
        "field_partner__c": f.partner_id,
        "field_fwssf__c": f.legacy_account_id,
        "field_outDealUser__c": f.engineer_id,
        "field_downstreamOuterTenantName__c": f.downstream_outer_tenant_name,
        "field_downstreamOuterTenantId__c": f.downstream_outer_tenant_id,
        "out_assign_user": f.out_assign_user,
        "out_assign_way__c": f.out_assign_way,
        "out_assign_time__c": f.out_assign_time.map(|t| t.to_rfc3339()),
    })
}

/// How the engineer comes to the order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AssignKind {
    Automatic,
    Manual,
    Reassign,
    /// An offered engineer claims the order (strategy OFFER).
    Claim,
}

/// The steps of one assignment and where the order ends up in its workflow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AssignmentPlan {
    pub steps: Vec<Transition>,
    pub state: State,
    pub current_node: usize,
    /// The node of the task to issue (index and name), when the next node is the engineer's.
    pub task_node: Option<(usize, String)>,
    /// That node's acceptance deadline, if it sets one.
    pub acceptance: Option<Acceptance>,
}

/// Plans an assignment from `state`: assign (or reassign), then issue a task when the node after
/// the dispatch node is performed by the downstream engineer.
pub fn plan(
    state: State,
    kind: AssignKind,
    nodes: &[Node],
    dispatch_index: usize,
) -> Result<AssignmentPlan, TransitionError> {
    let first = match kind {
        AssignKind::Automatic => Command::AutoAssign,
        AssignKind::Manual => Command::AssignManually,
        AssignKind::Reassign => Command::Reassign,
        AssignKind::Claim => Command::Claim,
    };
    let acceptance = task_node(nodes, dispatch_index).and_then(|(_, n)| n.acceptance);
    let task = task_node(nodes, dispatch_index).map(|(i, n)| (i, n.name.clone()));
    let commands: &[Command] = if task.is_some() {
        &[first, Command::IssueTask]
    } else {
        &[first]
    };
    let (state, steps) = run(state, commands)?;
    Ok(AssignmentPlan {
        steps,
        state,
        current_node: node_after_dispatch(nodes, dispatch_index),
        task_node: task,
        acceptance,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::workflow::{NodeKind, Performer};

    fn assignee() -> Assignee<'static> {
        Assignee {
            engineer_id: "eng_1",
            provider: Provider {
                partner_id: "ptn_1",
                partner_legacy_account_id: Some("acc_1"),
                downstream_outer_tenant_id: "OT-9",
                downstream_outer_tenant_name: "Acme Service",
            },
        }
    }

    #[test]
    fn manual_fields_record_the_dispatcher() {
        let at = Utc::now();
        let f = dispatch_fields(Some(900), Method::Manual, Some("usr_1"), &assignee(), at);
        assert_eq!(f.assign_user.as_deref(), Some("usr_1"));
        assert_eq!(f.assign_way, Method::Manual);
        assert_eq!(f.assign_time, at);
        assert_eq!(f.partner_id, "ptn_1");
        assert_eq!(f.legacy_account_id, None, "v900 keeps no legacy account");
        assert_eq!(f.engineer_id, "eng_1");
        assert_eq!(f.downstream_outer_tenant_id, "OT-9");
        assert_eq!(f.downstream_outer_tenant_name, "Acme Service");
    }

    #[test]
    fn automatic_fields_leave_the_dispatcher_empty() {
        let f = dispatch_fields(Some(870), Method::Automatic, Some("usr_1"), &assignee(), Utc::now());
        assert_eq!(f.assign_user, None);
        assert_eq!(f.assign_way, Method::Automatic);
        assert_eq!(
            f.legacy_account_id.as_deref(),
            Some("acc_1"),
            "v870 records the Account"
        );
    }

    #[test]
    fn api_fields_use_the_seed_names() {
        let v = api_fields(&StoredFields {
            assign_user: Some("u".into()),
            assign_way: Some("MANUAL".into()),
            assign_time: None,
            partner_id: Some("p".into()),
            legacy_account_id: None,
            engineer_id: Some("e".into()),
            downstream_outer_tenant_name: Some("n".into()),
            downstream_outer_tenant_id: Some("i".into()),
            ..StoredFields::default()
        });
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        let mut want = [API_NAMES.as_slice(), PROVIDER_API_NAMES.as_slice()].concat();
        want.sort();
        let mut got = keys.clone();
        got.sort();
        assert_eq!(got, want);
        assert_eq!(v["field_outDealUser__c"], "e");
        assert!(v["field_fwssf__c"].is_null());
    }

    #[test]
    fn stored_fields_of_an_assignment_are_all_set_but_the_optional_two() {
        let at = Utc::now();
        let f = dispatch_fields(Some(900), Method::Automatic, None, &assignee(), at);
        let v = api_fields(&StoredFields::from(&f));
        assert!(v["assign_user"].is_null());
        assert!(v["field_fwssf__c"].is_null());
        assert_eq!(v["assign_way__c"], "AUTOMATIC");
        assert_eq!(v["assign_time__c"], at.to_rfc3339());
        assert_eq!(v["field_downstreamOuterTenantId__c"], "OT-9");
    }

    #[test]
    fn a_provider_assignment_fills_the_first_stage_only() {
        let at = Utc::now();
        let provider = assignee().provider;
        let f = provider_fields(Some(870), Method::Manual, Some("usr_1"), &provider, at);
        let full = StoredFields::from(&dispatch_fields(
            Some(870),
            Method::Manual,
            Some("usr_1"),
            &assignee(),
            at,
        ));
        assert_eq!(
            f,
            StoredFields {
                engineer_id: None,
                ..full
            },
            "the same first-stage fields as a direct assignment, no engineer"
        );
        let auto = provider_fields(Some(900), Method::Automatic, Some("usr_1"), &provider, at);
        assert_eq!((auto.assign_user, auto.legacy_account_id), (None, None));
        let v = api_fields(&f);
        assert!(v["field_outDealUser__c"].is_null() && v["out_assign_user"].is_null());
        assert_eq!(v["field_partner__c"], "ptn_1");

        let stage = provider_stage(Method::Manual, Some("usr_9"), at);
        assert_eq!(stage.out_assign_user.as_deref(), Some("usr_9"));
        assert_eq!(
            provider_stage(Method::Automatic, Some("usr_9"), at).out_assign_user,
            None
        );
    }

    fn n(kind: NodeKind, performer: Performer) -> Node {
        Node {
            acceptance: None,
            name: format!("{kind:?}"),
            kind,
            performer,
        }
    }

    #[test]
    fn plans() {
        let with_task = [
            n(NodeKind::DispatchToEngineer, Performer::Upstream),
            n(NodeKind::AcceptAndService, Performer::DownstreamEngineer),
        ];
        let p = plan(State::AwaitingManual, AssignKind::Manual, &with_task, 0).unwrap();
        assert_eq!(p.state, State::DownstreamTask);
        assert_eq!(p.steps.len(), 2);
        assert_eq!(p.current_node, 1);
        assert_eq!(p.task_node, Some((1, "AcceptAndService".into())));

        let no_task = [
            n(NodeKind::DispatchToEngineer, Performer::Upstream),
            n(NodeKind::Review, Performer::Upstream),
        ];
        let p = plan(State::AutoDispatchAttempted, AssignKind::Automatic, &no_task, 0).unwrap();
        assert_eq!(p.state, State::EngineerAssigned);
        assert_eq!(p.task_node, None);

        let p = plan(State::DownstreamTask, AssignKind::Reassign, &with_task, 0).unwrap();
        assert_eq!(p.state, State::DownstreamTask);
        assert_eq!(p.steps[0].command, Command::Reassign);

        let e = plan(State::EngineerAssigned, AssignKind::Manual, &with_task, 0).unwrap_err();
        assert_eq!(e.state, State::EngineerAssigned);
        assert!(plan(State::Cancelled, AssignKind::Reassign, &with_task, 0).is_err());
    }
}
