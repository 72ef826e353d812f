//! GraphQL input objects.
use async_graphql::{ID, InputObject, Json};
use serde_json::Value;

use super::enums::*;

#[derive(InputObject)]
pub struct WorkflowNodeInput {
    pub name: String,
    pub kind: WorkflowNodeKind,
    pub performer: Performer,
    /// An engineer's node (DOWNSTREAM_ENGINEER): how long the engineer has to accept its task,
    /// an ISO 8601 duration of days and time from a minute to thirty days (`PT30M`, `PT4H`,
    /// `P1D`). None: no deadline.
    pub accept_within: Option<String>,
    /// What happens when the deadline passes; AUTO_ACCEPT when omitted.
    pub on_accept_timeout: Option<AcceptTimeoutAction>,
}

#[derive(InputObject)]
pub struct CreateWorkflowInput {
    pub name: String,
    #[graphql(default_with = "WorkflowKind::Interconnection")]
    pub kind: WorkflowKind,
    /// The nodes in order; at most one DISPATCH_TO_ENGINEER node, performed UPSTREAM.
    pub nodes: Vec<WorkflowNodeInput>,
}

#[derive(InputObject)]
pub struct ConnectServiceProviderInput {
    /// The downstream tenant's ID; or give `outerTenantId`.
    pub downstream_tenant_id: Option<ID>,
    /// The downstream tenant's outer tenant id; or give `downstreamTenantId`.
    pub outer_tenant_id: Option<String>,
    /// Partner name; the downstream tenant's name when omitted.
    pub name: Option<String>,
    #[graphql(default = true)]
    pub active: bool,
    #[graphql(default = true)]
    pub allocated: bool,
}

#[derive(InputObject)]
pub struct UpdatePartnerInput {
    pub partner_id: ID,
    pub name: Option<String>,
    pub active: Option<bool>,
    pub allocated: Option<bool>,
}

#[derive(InputObject)]
pub struct AddEngineerInput {
    pub name: String,
    #[graphql(default)]
    pub skills: Vec<String>,
    /// Region codes covered, e.g. ["CN-31"] (covers CN-31-04 too).
    #[graphql(default)]
    pub regions: Vec<String>,
    /// The most open tasks at once (0 to 1000).
    #[graphql(default = 10)]
    pub capacity: i32,
    #[graphql(default = true)]
    pub active: bool,
}

#[derive(InputObject)]
pub struct UpdateEngineerInput {
    pub engineer_id: ID,
    pub name: Option<String>,
    pub skills: Option<Vec<String>>,
    pub regions: Option<Vec<String>>,
    pub capacity: Option<i32>,
    pub active: Option<bool>,
}

#[derive(InputObject)]
pub struct UpdateUserInput {
    pub user_id: ID,
    pub name: Option<String>,
    /// False: the user's tokens stop working at once (HTTP and WebSocket); true: they work again.
    pub active: Option<bool>,
}

#[derive(InputObject)]
pub struct AddUserInput {
    pub name: String,
    /// ADMIN, DISPATCHER (upstream tenants) or INTEGRATION.
    pub role: Role,
}

#[derive(InputObject)]
pub struct CreateWorkOrderInput {
    /// An Interconnection workflow with the dispatch node.
    pub workflow_id: ID,
    /// Your own reference, unique per upstream tenant.
    pub external_ref: Option<String>,
    pub title: String,
    pub description: Option<String>,
    pub customer: Option<String>,
    /// Hierarchical region code, e.g. "CN-31-04".
    pub region: String,
    pub product: Option<String>,
    pub service_type: Option<String>,
    #[graphql(default_with = "Priority::Normal")]
    pub priority: Priority,
    #[graphql(default)]
    pub required_skills: Vec<String>,
    /// A JSON object of key -> value.
    pub custom_fields: Option<Json<Value>>,
}

#[derive(InputObject)]
pub struct AssignEngineerInput {
    pub work_order_id: ID,
    pub engineer_id: ID,
    /// The order's `version` as you last read it; a stale version is a CONFLICT.
    pub expected_version: i32,
}

#[derive(InputObject)]
pub struct AssignServiceProviderInput {
    pub work_order_id: ID,
    /// The upstream's partner record of the service provider (`Partner.id`).
    pub partner_id: ID,
    /// The order's `version` as you last read it; a stale version is a CONFLICT.
    pub expected_version: i32,
}

#[derive(InputObject)]
pub struct RejectWorkOrderInput {
    pub work_order_id: ID,
    /// Why the provider will not take the order (required; at most 2,000 characters).
    pub reason: String,
    /// The order's `version` as you last read it; a stale version is a CONFLICT.
    pub expected_version: i32,
}

#[derive(InputObject)]
pub struct CancelWorkOrderInput {
    pub work_order_id: ID,
    pub expected_version: i32,
    pub reason: Option<String>,
}

#[derive(InputObject, Default)]
pub struct WorkOrderFilter {
    /// Orders in any of these states.
    pub states: Option<Vec<WorkOrderState>>,
    /// Orders assigned through this partner (`field_partner__c`).
    pub partner_id: Option<ID>,
    /// Orders assigned to this engineer (`field_outDealUser__c`).
    pub engineer_id: Option<ID>,
    /// Orders in this region or its sub-regions ("CN-31" matches "CN-31-04", not "CN-310").
    pub region_prefix: Option<String>,
    pub external_ref: Option<String>,
    /// Upstream staff: orders whose SLA status (the worst of its targets') is one of these,
    /// now.
    pub sla_status: Option<Vec<super::SlaStatus>>,
    /// Upstream staff: orders with an SLA target still running due before this instant.
    pub due_before: Option<chrono::DateTime<chrono::Utc>>,
}
