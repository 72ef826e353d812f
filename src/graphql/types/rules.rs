//! GraphQL types of automatic dispatch: rules, conditions, targets, and traces.
use async_graphql::{Context, Enum, ID, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use entity::dispatch_rule;

use super::parties::{Engineer, Partner};
use crate::domain::dispatch as d;
use crate::domain::visibility::Audience;
use crate::error::{Error, ResultExt};
use crate::graphql::context::ContextExt;
use crate::graphql::loaders::many;
use crate::graphql::policy::Sees;
use crate::service::audience;
use crate::service::rules;

mirror!(
    /// What a rule condition looks at.
    RuleField <=> d::Field {
        /// The region code; IN, NOT_IN and PREFIX match hierarchically ("CN-31" covers "CN-31-04").
        Region,
        Product,
        ServiceType,
        /// LOW < NORMAL < HIGH < URGENT.
        Priority,
        Customer,
        /// The order's required skills (a set).
        RequiredSkills,
        /// A custom field, by `key`.
        CustomField,
    }
);

mirror!(
    RuleOperator <=> d::Operator {
        /// Equal to the one value (skills: the same set).
        Equals,
        /// One of the values (region: within one of them; skills: every required skill is among them).
        In,
        /// None of the values (an order without the value satisfies it).
        NotIn,
        /// Region: within the region; text: starts with the value.
        Prefix,
        /// Skills: the order requires all of the values.
        Contains,
        /// Priority or a numeric custom field: at least the value.
        AtLeast,
        /// Priority or a numeric custom field: at most the value.
        AtMost,
    }
);

mirror!(
    /// What a rule assigns.
    AssignTo <=> d::Assigns {
        /// An engineer (direct dispatch; or a service provider's rule over its own engineers).
        Engineer,
        /// A service provider, whose own rules or dispatcher then assign its engineer
        /// (two-stage dispatch; an upstream's rule, run only in workflows with a
        /// DISPATCH_TO_PROVIDER node).
        Provider,
    }
);

mirror!(
    /// How a rule picks among the eligible engineers of its partners (or, for a rule assigning
    /// service providers, among the eligible providers).
    DispatchStrategy <=> d::Strategy {
        /// In turn, in ID order, continuing after the last one this rule picked.
        RoundRobin,
        /// Fewest open tasks (a provider: fewest orders waiting at it for its engineer), then
        /// fewest today, then ID.
        LeastLoaded,
        /// Fewest orders assigned today (then fewest open, then ID): the engineer's day, in its
        /// service provider's time zone (`setBusinessCalendar`); a provider's, in the upstream's.
        FewestToday,
        /// Not a pick: the order is offered to every eligible engineer at once (each told
        /// `TASK_OFFERED`), the first to `claimWorkOrder` gets it; unclaimed within the rule's
        /// `offerWithin` (15 minutes by default), a dispatcher decides. Engineers only.
        Offer,
    }
);

#[derive(SimpleObject, Clone)]
#[graphql(guard = "Sees::object::<Self>(self.audience)")]
pub struct RuleCondition {
    pub field: RuleField,
    /// The custom field's key (CUSTOM_FIELD only).
    pub key: Option<String>,
    pub operator: RuleOperator,
    pub values: Vec<String>,
    #[graphql(skip)]
    pub audience: Audience,
}

impl RuleCondition {
    /// The conditions stored on a rule or an SLA policy, shown to `audience`.
    pub(super) fn stored(conditions: &serde_json::Value, audience: Audience) -> Result<Vec<RuleCondition>> {
        let c: Vec<d::Condition> = serde_json::from_value(conditions.clone())
            .map_err(Error::internal)
            .gql()?;
        Ok(c.into_iter().map(|c| RuleCondition::new(c, audience)).collect())
    }

    pub(super) fn new(c: d::Condition, audience: Audience) -> Self {
        RuleCondition {
            field: c.field.into(),
            key: c.key,
            operator: c.operator.into(),
            values: c.values,
            audience,
        }
    }
}

#[derive(InputObject)]
pub struct RuleConditionInput {
    pub field: RuleField,
    pub key: Option<String>,
    pub operator: RuleOperator,
    pub values: Vec<String>,
}

impl From<RuleConditionInput> for d::Condition {
    fn from(c: RuleConditionInput) -> Self {
        d::Condition {
            field: c.field.into(),
            key: c.key,
            operator: c.operator.into(),
            values: c.values,
        }
    }
}

/// An upstream's rule assigning engineers: exactly one of `engineerId` and `partnerIds` (the
/// latter with a strategy). An upstream's rule assigning service providers
/// (`assignTo: PROVIDER`): `partnerIds` and a strategy. A service provider's rule: its own
/// `engineerId`, or a strategy alone (over all its engineers).
#[derive(InputObject)]
pub struct RuleTargetInput {
    #[graphql(default_with = "AssignTo::Engineer")]
    pub assign_to: AssignTo,
    /// Strategy OFFER: how long the offer stands, an ISO 8601 duration from PT1M to P7D
    /// (PT15M when omitted).
    pub offer_within: Option<String>,
    pub engineer_id: Option<ID>,
    pub partner_ids: Option<Vec<ID>>,
    pub strategy: Option<DispatchStrategy>,
}

impl From<RuleTargetInput> for rules::TargetInput {
    fn from(t: RuleTargetInput) -> Self {
        rules::TargetInput {
            assigns: t.assign_to.into(),
            offer_within: t.offer_within,
            engineer_id: t.engineer_id.map(|i| i.0),
            partner_ids: t.partner_ids.map(|v| v.into_iter().map(|i| i.0).collect()),
            strategy: t.strategy.map(Into::into),
        }
    }
}

/// Who a rule assigns to: one engineer, the engineers of partners picked by a strategy, one of
/// the service providers picked by a strategy, or (a provider's rule) one of its own engineers.
pub struct RuleTarget(d::Target, Audience);

#[Object(guard = "Sees::object::<Self>(self.1)")]
impl RuleTarget {
    async fn assign_to(&self) -> AssignTo {
        self.0.assigns().into()
    }
    async fn engineer(&self, ctx: &Context<'_>) -> Result<Option<Engineer>> {
        match &self.0 {
            d::Target::Engineer { engineer_id } => Engineer::by_id(ctx, engineer_id).await,
            _ => Ok(None),
        }
    }
    /// The target partners (whose engineers, or which service providers, the rule picks
    /// among), in the rule's order (one batch for all of them); empty for an engineer, and
    /// for a provider's rule over its own engineers.
    async fn partners(&self, ctx: &Context<'_>) -> Result<Vec<Partner>> {
        let partner_ids = self.0.partner_ids();
        if partner_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut found = many(ctx.loaders().partners(), partner_ids).await?;
        let mut out = Vec::with_capacity(partner_ids.len());
        for p in partner_ids.iter().filter_map(|p| found.remove(p)) {
            out.push(Partner::seen(ctx, p).await?);
        }
        Ok(out)
    }
    async fn strategy(&self) -> Option<DispatchStrategy> {
        self.0.strategy().map(Into::into)
    }
    /// Strategy OFFER: how long an offer stands (ISO 8601).
    async fn offer_within(&self) -> Option<String> {
        self.0.offer_within_secs().map(crate::domain::validate::iso_duration)
    }
}

/// An automatic dispatch rule of an upstream tenant.
pub struct DispatchRule(pub dispatch_rule::Model, pub Audience);

seen! {
    DispatchRule(dispatch_rule::Model) by audience::rule;
}

impl DispatchRule {
    pub async fn seen_all(ctx: &Context<'_>, rules: Vec<dispatch_rule::Model>) -> Result<Vec<DispatchRule>> {
        let c = ctx.caller().await?;
        Ok(rules
            .into_iter()
            .map(|r| {
                let a = audience::rule(c, &r);
                DispatchRule(r, a)
            })
            .collect())
    }
}

#[Object(guard = "Sees::object::<Self>(self.1)")]
impl DispatchRule {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// Priority order: rules are tried from position 0 up.
    async fn position(&self) -> i32 {
        self.0.position
    }
    async fn enabled(&self) -> bool {
        self.0.enabled
    }
    /// All must hold for the rule to apply.
    async fn conditions(&self) -> Result<Vec<RuleCondition>> {
        RuleCondition::stored(&self.0.conditions, self.1)
    }
    async fn target(&self) -> Result<RuleTarget> {
        Ok(RuleTarget(
            serde_json::from_value(self.0.target.clone())
                .map_err(Error::internal)
                .gql()?,
            self.1,
        ))
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

#[derive(InputObject)]
pub struct CreateDispatchRuleInput {
    pub name: String,
    #[graphql(default = true)]
    pub enabled: bool,
    /// All must hold; none: the rule applies to every order.
    #[graphql(default)]
    pub conditions: Vec<RuleConditionInput>,
    pub target: RuleTargetInput,
    /// Where in the priority order (0: first); appended when omitted.
    pub position: Option<i32>,
}

#[derive(InputObject)]
pub struct UpdateDispatchRuleInput {
    pub rule_id: ID,
    pub name: Option<String>,
    pub enabled: Option<bool>,
    /// Replaces all conditions.
    pub conditions: Option<Vec<RuleConditionInput>>,
    pub target: Option<RuleTargetInput>,
}

#[derive(InputObject)]
pub struct SetDispatchRuleEnabledInput {
    pub rule_id: ID,
    pub enabled: bool,
}

#[derive(InputObject)]
pub struct DeleteDispatchRuleInput {
    pub rule_id: ID,
}

#[derive(InputObject)]
pub struct ReorderDispatchRulesInput {
    /// Every rule of the tenant, once, in the new priority order.
    pub rule_ids: Vec<ID>,
}

#[derive(InputObject)]
pub struct RetryAutoDispatchInput {
    pub work_order_id: ID,
    pub expected_version: i32,
}

/// An order that does not exist yet, for a dry run.
#[derive(InputObject)]
pub struct DraftWorkOrderInput {
    /// When given, the workflow must have the dispatch node.
    pub workflow_id: Option<ID>,
    pub region: String,
    pub product: Option<String>,
    pub service_type: Option<String>,
    #[graphql(default_with = "super::Priority::Normal")]
    pub priority: super::Priority,
    pub customer: Option<String>,
    #[graphql(default)]
    pub required_skills: Vec<String>,
    pub custom_fields: Option<async_graphql::Json<serde_json::Value>>,
}

/// Exactly one of `workOrderId` and `order`.
#[derive(InputObject)]
pub struct ExplainDispatchInput {
    pub work_order_id: Option<ID>,
    pub order: Option<DraftWorkOrderInput>,
}

#[derive(SimpleObject)]
#[graphql(guard = "Sees::container::<Self>()")]
pub struct DispatchRulePayload {
    pub rule: DispatchRule,
}

#[derive(SimpleObject)]
#[graphql(guard = "Sees::container::<Self>()")]
pub struct DeleteDispatchRulePayload {
    pub deleted_rule_id: ID,
}

#[derive(SimpleObject)]
#[graphql(guard = "Sees::container::<Self>()")]
pub struct DispatchRulesPayload {
    pub rules: Vec<DispatchRule>,
}
