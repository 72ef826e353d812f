//! Who may run each operation (root field): the other half of the one policy
//! (`domain::visibility` re-exports it). What each caller then reads or changes is scoped by
//! the service to what is its own.
use super::{Role, TenantKind};

/// A kind of caller: a role in a kind of tenant.
pub type CallerKind = (TenantKind, Role);

const UA: CallerKind = (TenantKind::Upstream, Role::Admin);
const UD: CallerKind = (TenantKind::Upstream, Role::Dispatcher);
const UI: CallerKind = (TenantKind::Upstream, Role::Integration);
const PA: CallerKind = (TenantKind::Downstream, Role::Admin);
const PD: CallerKind = (TenantKind::Downstream, Role::Dispatcher);
const PI: CallerKind = (TenantKind::Downstream, Role::Integration);
const EN: CallerKind = (TenantKind::Downstream, Role::Engineer);

const ANYONE: &[CallerKind] = &[UA, UD, UI, PA, PD, PI, EN];
const UPSTREAM_STAFF: &[CallerKind] = &[UA, UD, UI];
const UPSTREAM_ADMINS: &[CallerKind] = &[UA, UI];
const DISPATCHERS: &[CallerKind] = &[UD, UI];
const PROVIDER_ADMINS: &[CallerKind] = &[PA, PI];
/// A provider's dispatchers (and its integrations): two-stage dispatch's second stage.
const PROVIDER_DISPATCHERS: &[CallerKind] = &[PD, PI];
/// Whoever assigns engineers: the upstream's dispatchers (direct dispatch), the provider's
/// (two-stage dispatch; the service decides which by the order's workflow).
const ENGINEER_DISPATCHERS: &[CallerKind] = &[UD, UI, PD, PI];
const ADMINS: &[CallerKind] = &[UA, UI, PA, PI];
const STAFF: &[CallerKind] = &[UA, UD, UI, PA, PD, PI];
const ENGINEERS: &[CallerKind] = &[EN];

/// Every operation (root field: `Type.field`) and the callers that may run it. What each caller
/// then reads or changes is scoped by the service to what is its own.
pub const OPERATIONS: &[(&str, &[CallerKind])] = &[
    ("Query.node", ANYONE),
    ("Query.me", ANYONE),
    ("Query.workOrder", ANYONE),
    ("Query.workOrders", ANYONE),
    ("Query.partners", STAFF),
    ("Query.engineers", STAFF),
    ("Query.dispatchRules", STAFF),
    ("Query.explainDispatch", STAFF),
    ("Query.notifications", ENGINEERS),
    ("Query.workflows", UPSTREAM_STAFF),
    ("Query.slaPolicies", UPSTREAM_STAFF),
    ("Query.businessCalendar", STAFF),
    ("Query.webhooks", ADMINS),
    ("Query.webhookDeliveries", ADMINS),
    ("Mutation.createWorkflow", UPSTREAM_ADMINS),
    ("Mutation.connectServiceProvider", UPSTREAM_ADMINS),
    ("Mutation.updatePartner", UPSTREAM_ADMINS),
    ("Mutation.addEngineer", PROVIDER_ADMINS),
    ("Mutation.updateEngineer", PROVIDER_ADMINS),
    ("Mutation.addUser", ADMINS),
    ("Mutation.updateUser", ADMINS),
    ("Mutation.createWorkOrder", DISPATCHERS),
    ("Mutation.assignEngineer", ENGINEER_DISPATCHERS),
    ("Mutation.reassignEngineer", ENGINEER_DISPATCHERS),
    ("Mutation.assignServiceProvider", DISPATCHERS),
    ("Mutation.reassignServiceProvider", DISPATCHERS),
    ("Mutation.rejectWorkOrder", PROVIDER_DISPATCHERS),
    ("Mutation.cancelWorkOrder", DISPATCHERS),
    ("Mutation.createDispatchRule", ADMINS),
    ("Mutation.updateDispatchRule", ADMINS),
    ("Mutation.setDispatchRuleEnabled", ADMINS),
    ("Mutation.deleteDispatchRule", ADMINS),
    ("Mutation.reorderDispatchRules", ADMINS),
    ("Mutation.retryAutoDispatch", DISPATCHERS),
    ("Mutation.createSlaPolicy", UPSTREAM_ADMINS),
    ("Mutation.updateSlaPolicy", UPSTREAM_ADMINS),
    ("Mutation.deleteSlaPolicy", UPSTREAM_ADMINS),
    ("Mutation.reorderSlaPolicies", UPSTREAM_ADMINS),
    ("Mutation.setBusinessCalendar", ADMINS),
    ("Mutation.createWebhook", ADMINS),
    ("Mutation.updateWebhook", ADMINS),
    ("Mutation.deleteWebhook", ADMINS),
    ("Mutation.redeliverWebhook", ADMINS),
    ("Mutation.acceptTask", ENGINEERS),
    ("Mutation.claimWorkOrder", ENGINEERS),
    ("Mutation.declineTask", ENGINEERS),
    ("Mutation.acknowledgeNotifications", ENGINEERS),
    ("Subscription.taskNotifications", ENGINEERS),
    ("Subscription.workOrderEvents", STAFF),
];
