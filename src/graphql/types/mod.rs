//! GraphQL output types, enums and inputs.

/// A GraphQL enum mirroring a domain enum variant for variant (the domain knows no GraphQL).
macro_rules! mirror {
    ($(#[$m:meta])* $name:ident <=> $domain:path { $($(#[$vm:meta])* $v:ident),* $(,)? }) => {
        $(#[$m])*
        #[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
        pub enum $name { $($(#[$vm])* $v),* }
        impl From<$domain> for $name {
            fn from(d: $domain) -> Self { match d { $(<$domain>::$v => $name::$v),* } }
        }
        impl From<$name> for $domain {
            fn from(g: $name) -> Self { match g { $($name::$v => <$domain>::$v),* } }
        }
    };
}

/// `T::seen(ctx, row)`: the object built from its row with the audience its caller is to it,
/// as `audience::$f(caller, &row)` decides (`service::audience`).
macro_rules! seen {
    ($($ty:ident($model:ty) by $f:path;)*) => {$(
        impl $ty {
            pub async fn seen(ctx: &async_graphql::Context<'_>, m: $model) -> async_graphql::Result<$ty> {
                let a = $f(crate::graphql::context::ContextExt::caller(ctx).await?, &m);
                Ok($ty(m.into(), a))
            }
        }
    )*};
}

mod containers;
mod enums;
mod inputs;
mod notifications;
mod orders;
mod parties;
mod rules;
mod sla;
mod traces;
mod webhooks;

pub use containers::*;
pub use enums::*;
pub use inputs::*;
pub use notifications::*;
pub use orders::*;
pub use parties::*;
pub use rules::*;
pub use sla::*;
pub use traces::*;
pub use webhooks::*;

crate::graphql::policy::guarded!(
    Account,
    AcknowledgePayload,
    BusinessCalendar,
    BusinessCalendarPayload,
    ConditionCheck,
    DeleteDispatchRulePayload,
    DeleteSlaPolicyPayload,
    DispatchRecord,
    DispatchRule,
    DispatchRulePayload,
    DispatchRulesPayload,
    DispatchTrace,
    Engineer,
    EngineerExclusion,
    EngineerPayload,
    PageInfo,
    Partner,
    PartnerExclusion,
    PartnerPayload,
    RuleCondition,
    RuleEvaluation,
    RuleTarget,
    SlaPoliciesPayload,
    SlaPolicy,
    SlaPolicyPayload,
    SlaTarget,
    Task,
    TaskNotification,
    TaskNotificationConnection,
    TaskNotificationEdge,
    TaskPayload,
    Tenant,
    UpdateUserPayload,
    User,
    UserPayload,
    Viewer,
    WorkOrder,
    WorkOrderConnection,
    WorkOrderEdge,
    WorkOrderEvent,
    WorkOrderPayload,
    WebhookPayload,
    Webhook,
    WebhookAttempt,
    WebhookDelivery,
    WebhookDeliveryPayload,
    DeleteWebhookPayload,
    WorkOrderSla,
    Workflow,
    WorkflowNode,
    WorkflowPayload,
);
