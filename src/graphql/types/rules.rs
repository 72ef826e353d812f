//! GraphQL types of automatic dispatch: rules, conditions, targets, and traces.
use async_graphql::{Context, Enum, ID, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use entity::dispatch_rule;

use super::parties::{Engineer, Partner};
use crate::domain::dispatch::trace::{self, RuleView, TraceView};
use crate::domain::dispatch::{self as d, Reasons};
use crate::domain::visibility::Audience;
use crate::error::{Error, ResultExt};
use crate::graphql::context::ContextExt;
use crate::graphql::loaders::{many, one};
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
    /// How a rule picks among the eligible engineers of its partners.
    DispatchStrategy <=> d::Strategy {
        /// In turn, in engineer ID order, continuing after the last one this rule picked.
        RoundRobin,
        /// Fewest open tasks (then fewest today, then ID).
        LeastLoaded,
        /// Fewest orders assigned today, UTC (then fewest open tasks, then ID).
        FewestToday,
    }
);

/// Why an engineer, or a whole partner, was not eligible.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum ExclusionReason {
    Inactive,
    PartnerInactive,
    PartnerNotAllocated,
    /// Not (or no longer) connected to this upstream tenant.
    NotConnected,
    /// Open tasks at the engineer's capacity.
    OverCapacity,
    /// The engineer covers no region containing the order's.
    Region,
    /// The engineer lacks one of the order's required skills.
    Skills,
    /// The engineer declined this order before.
    DeclinedBefore,
}

fn reasons(r: Reasons) -> Vec<ExclusionReason> {
    use ExclusionReason::*;
    r.names()
        .filter_map(|n| {
            Some(match n {
                "INACTIVE" => Inactive,
                "PARTNER_INACTIVE" => PartnerInactive,
                "PARTNER_NOT_ALLOCATED" => PartnerNotAllocated,
                "NOT_CONNECTED" => NotConnected,
                "OVER_CAPACITY" => OverCapacity,
                "REGION" => Region,
                "SKILLS" => Skills,
                "DECLINED_BEFORE" => DeclinedBefore,
                _ => return None,
            })
        })
        .collect()
}

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
    fn new(c: d::Condition, audience: Audience) -> Self {
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

/// Exactly one of `engineerId` and `partnerIds` (the latter with a strategy).
#[derive(InputObject)]
pub struct RuleTargetInput {
    pub engineer_id: Option<ID>,
    pub partner_ids: Option<Vec<ID>>,
    pub strategy: Option<DispatchStrategy>,
}

impl From<RuleTargetInput> for rules::TargetInput {
    fn from(t: RuleTargetInput) -> Self {
        rules::TargetInput {
            engineer_id: t.engineer_id.map(|i| i.0),
            partner_ids: t.partner_ids.map(|v| v.into_iter().map(|i| i.0).collect()),
            strategy: t.strategy.map(Into::into),
        }
    }
}

/// Who a rule assigns to: one engineer, or the engineers of partners picked by a strategy.
pub struct RuleTarget(d::Target, Audience);

#[Object(guard = "Sees::object::<Self>(self.1)")]
impl RuleTarget {
    async fn engineer(&self, ctx: &Context<'_>) -> Result<Option<Engineer>> {
        match &self.0 {
            d::Target::Engineer { engineer_id } => Engineer::by_id(ctx, engineer_id).await,
            d::Target::Partners { .. } => Ok(None),
        }
    }
    /// The target partners, in the rule's order (one batch for all of them).
    async fn partners(&self, ctx: &Context<'_>) -> Result<Vec<Partner>> {
        let d::Target::Partners { partner_ids, .. } = &self.0 else {
            return Ok(Vec::new());
        };
        let mut found = many(ctx.loaders().partners(), partner_ids).await?;
        let mut out = Vec::with_capacity(partner_ids.len());
        for p in partner_ids.iter().filter_map(|p| found.remove(p)) {
            out.push(Partner::seen(ctx, p).await?);
        }
        Ok(out)
    }
    async fn strategy(&self) -> Option<DispatchStrategy> {
        match &self.0 {
            d::Target::Partners { strategy, .. } => Some((*strategy).into()),
            d::Target::Engineer { .. } => None,
        }
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
        let c: Vec<d::Condition> = serde_json::from_value(self.0.conditions.clone())
            .map_err(Error::internal)
            .gql()?;
        Ok(c.into_iter().map(|c| RuleCondition::new(c, self.1)).collect())
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

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum RuleOutcome {
    /// The rule is disabled: not evaluated.
    Disabled,
    /// A condition did not hold (see `failedCondition`).
    ConditionFailed,
    /// The conditions held but no engineer was eligible: fell through to the next rule.
    NoEligibleEngineer,
    /// The rule picked the engineer.
    Matched,
}

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum DispatchOutcome {
    /// A rule assigned an engineer.
    Assigned,
    /// No rule yielded an engineer (or none exist): manual assignment.
    Manual,
}

/// A condition that did not hold, with the rule's values and the order's.
#[derive(SimpleObject)]
#[graphql(guard = "Sees::object::<Self>(self.audience)")]
pub struct ConditionCheck {
    /// Position of the condition in the rule, from 0.
    pub index: i32,
    pub condition: RuleCondition,
    /// The order's value, as text (null when the order has none).
    pub order_value: Option<String>,
    #[graphql(skip)]
    pub audience: Audience,
}

pub struct EngineerExclusion {
    engineer_id: String,
    reasons: Reasons,
    audience: Audience,
}

#[Object(guard = "Sees::object::<Self>(self.audience)")]
impl EngineerExclusion {
    async fn engineer_id(&self) -> ID {
        ID(self.engineer_id.clone())
    }
    async fn engineer(&self, ctx: &Context<'_>) -> Result<Option<Engineer>> {
        Engineer::by_id(ctx, &self.engineer_id).await
    }
    async fn reasons(&self) -> Vec<ExclusionReason> {
        reasons(self.reasons)
    }
}

pub struct PartnerExclusion {
    partner_id: String,
    reasons: Reasons,
    audience: Audience,
}

#[Object(guard = "Sees::object::<Self>(self.audience)")]
impl PartnerExclusion {
    async fn partner_id(&self) -> ID {
        ID(self.partner_id.clone())
    }
    async fn partner(&self, ctx: &Context<'_>) -> Result<Option<Partner>> {
        match one(ctx.loaders().partners(), &self.partner_id).await? {
            Some(p) => Ok(Some(Partner::seen(ctx, p).await?)),
            None => Ok(None),
        }
    }
    async fn reasons(&self) -> Vec<ExclusionReason> {
        reasons(self.reasons)
    }
}

/// How one rule fared.
pub struct RuleEvaluation(RuleView, Audience);

#[Object(guard = "Sees::object::<Self>(self.1)")]
impl RuleEvaluation {
    async fn rule_id(&self) -> ID {
        ID(self.0.rule_id.clone())
    }
    /// The rule's name when it was evaluated.
    async fn rule_name(&self) -> &str {
        &self.0.rule_name
    }
    async fn position(&self) -> i32 {
        self.0.position as i32
    }
    async fn outcome(&self) -> RuleOutcome {
        match self.0.outcome {
            trace::RuleOutcome::Disabled => RuleOutcome::Disabled,
            trace::RuleOutcome::ConditionFailed => RuleOutcome::ConditionFailed,
            trace::RuleOutcome::NoEligibleEngineer => RuleOutcome::NoEligibleEngineer,
            trace::RuleOutcome::Matched => RuleOutcome::Matched,
        }
    }
    /// Why, in one sentence.
    async fn reason(&self) -> &str {
        &self.0.reason
    }
    async fn failed_condition(&self) -> Option<ConditionCheck> {
        self.0.failed_condition.as_ref().map(|c| ConditionCheck {
            index: c.index as i32,
            condition: RuleCondition::new(c.condition.clone(), self.1),
            order_value: c.order_value.clone(),
            audience: self.1,
        })
    }
    /// Target partners excluded whole.
    async fn excluded_partners(&self) -> Vec<PartnerExclusion> {
        let p = self.0.pool.iter().flat_map(|p| &p.excluded_partners);
        p.map(|(id, r)| PartnerExclusion {
            partner_id: id.clone(),
            reasons: *r,
            audience: self.1,
        })
        .collect()
    }
    /// Engineers excluded, with every reason (at most 100 listed; see `excludedEngineerCount`).
    async fn excluded_engineers(&self) -> Vec<EngineerExclusion> {
        let p = self.0.pool.iter().flat_map(|p| &p.excluded);
        p.map(|(id, r)| EngineerExclusion {
            engineer_id: id.clone(),
            reasons: *r,
            audience: self.1,
        })
        .collect()
    }
    async fn excluded_engineer_count(&self) -> i32 {
        self.0.pool.as_ref().map(|p| p.excluded_total as i32).unwrap_or(0)
    }
    async fn eligible_engineer_count(&self) -> i32 {
        self.0.pool.as_ref().map(|p| p.eligible as i32).unwrap_or(0)
    }
    async fn picked_engineer(&self, ctx: &Context<'_>) -> Result<Option<Engineer>> {
        match self.0.pool.as_ref().and_then(|p| p.picked.as_ref()) {
            Some(id) => Engineer::by_id(ctx, id).await,
            None => Ok(None),
        }
    }
    async fn strategy(&self) -> Option<DispatchStrategy> {
        self.0.pool.as_ref().and_then(|p| p.strategy).map(Into::into)
    }
}

/// Why automatic dispatch sent an order where it went (or to manual assignment).
pub struct DispatchTrace(pub TraceView, pub Audience);

#[Object(guard = "Sees::object::<Self>(self.1)")]
impl DispatchTrace {
    async fn outcome(&self) -> DispatchOutcome {
        if self.0.winner.is_some() {
            DispatchOutcome::Assigned
        } else {
            DispatchOutcome::Manual
        }
    }
    /// The whole story in one sentence.
    async fn summary(&self) -> &str {
        &self.0.summary
    }
    /// True for `explainDispatch`: evaluated, nothing written.
    async fn dry_run(&self) -> bool {
        self.0.dry_run
    }
    /// The revision of the tenant's rules evaluated (0: there were none).
    async fn rules_revision(&self) -> i64 {
        self.0.revision
    }
    async fn evaluated_at(&self) -> DateTime<Utc> {
        self.0.evaluated_at
    }
    /// Every rule tried, in priority order, up to the one that matched.
    async fn rules(&self) -> Vec<RuleEvaluation> {
        self.0
            .rules
            .iter()
            .cloned()
            .map(|r| RuleEvaluation(r, self.1))
            .collect()
    }
    /// The winning rule's ID.
    async fn rule_id(&self) -> Option<ID> {
        self.0.winner.as_ref().map(|w| ID(w.0.clone()))
    }
    /// The engineer picked.
    async fn engineer(&self, ctx: &Context<'_>) -> Result<Option<Engineer>> {
        match &self.0.winner {
            Some((_, e, _)) => Engineer::by_id(ctx, e).await,
            None => Ok(None),
        }
    }
    async fn strategy(&self) -> Option<DispatchStrategy> {
        self.0.winner.as_ref().and_then(|w| w.2).map(Into::into)
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
