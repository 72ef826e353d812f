//! GraphQL types of dispatch traces: how each rule fared, who was excluded and why, who was
//! picked (an engineer, or at a two-stage dispatch's first stage a service provider).
use async_graphql::{Context, Enum, ID, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};

use super::parties::{Engineer, Partner};
use super::rules::{AssignTo, DispatchStrategy, RuleCondition};
use crate::domain::dispatch::trace::{self, RuleView, TraceView};
use crate::domain::dispatch::{self as d, Reasons};
use crate::domain::visibility::Audience;
use crate::graphql::context::ContextExt;
use crate::graphql::loaders::one;
use crate::graphql::policy::Sees;

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
    /// The service provider rejected this order before (two-stage dispatch).
    RejectedBefore,
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
                "REJECTED_BEFORE" => RejectedBefore,
                _ => return None,
            })
        })
        .collect()
}

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum RuleOutcome {
    /// The rule is disabled: not evaluated.
    Disabled,
    /// A condition did not hold (see `failedCondition`).
    ConditionFailed,
    /// The conditions held but no engineer was eligible: fell through to the next rule.
    NoEligibleEngineer,
    /// The conditions held but no service provider was eligible: fell through to the next rule.
    NoEligibleProvider,
    /// The rule assigns what this evaluation does not (a service provider where an engineer is
    /// assigned, or the reverse): passed over.
    NotThisStage,
    /// The rule picked the engineer (or service provider).
    Matched,
}

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum DispatchOutcome {
    /// A rule assigned an engineer (or, see `assigns`, a service provider).
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
        partner_by_id(ctx, &self.partner_id).await
    }
    async fn reasons(&self) -> Vec<ExclusionReason> {
        reasons(self.reasons)
    }
}

/// How one rule fared (in an evaluation assigning engineers, or service providers).
pub struct RuleEvaluation(RuleView, Audience, d::Assigns);

/// A partner record by ID, as the caller sees it.
async fn partner_by_id(ctx: &Context<'_>, id: &str) -> Result<Option<Partner>> {
    match one(ctx.loaders().partners(), id).await? {
        Some(p) => Ok(Some(Partner::seen(ctx, p).await?)),
        None => Ok(None),
    }
}

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
            trace::RuleOutcome::NoEligibleProvider => RuleOutcome::NoEligibleProvider,
            trace::RuleOutcome::NotThisStage => RuleOutcome::NotThisStage,
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
        match self.2 {
            d::Assigns::Engineer => self.0.pool.as_ref().map(|p| p.eligible as i32).unwrap_or(0),
            d::Assigns::Provider => 0,
        }
    }
    /// A rule assigning service providers: how many were eligible.
    async fn eligible_provider_count(&self) -> i32 {
        match self.2 {
            d::Assigns::Provider => self.0.pool.as_ref().map(|p| p.eligible as i32).unwrap_or(0),
            d::Assigns::Engineer => 0,
        }
    }
    async fn picked_engineer(&self, ctx: &Context<'_>) -> Result<Option<Engineer>> {
        match (self.2, self.0.pool.as_ref().and_then(|p| p.picked.as_ref())) {
            (d::Assigns::Engineer, Some(id)) => Engineer::by_id(ctx, id).await,
            _ => Ok(None),
        }
    }
    /// A rule assigning service providers: the one it picked.
    async fn picked_provider(&self, ctx: &Context<'_>) -> Result<Option<Partner>> {
        match (self.2, self.0.pool.as_ref().and_then(|p| p.picked.as_ref())) {
            (d::Assigns::Provider, Some(id)) => partner_by_id(ctx, id).await,
            _ => Ok(None),
        }
    }
    async fn strategy(&self) -> Option<DispatchStrategy> {
        self.0.pool.as_ref().and_then(|p| p.strategy).map(Into::into)
    }
}

/// Why automatic dispatch sent an order where it went (or to manual assignment).
pub struct DispatchTrace(
    pub TraceView,
    pub Audience,
    pub Option<crate::service::sla::clocks::SlaView>,
);

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
            .map(|r| RuleEvaluation(r, self.1, self.0.assigns))
            .collect()
    }
    /// What the evaluation chose: an engineer, or (two-stage dispatch's first stage) a service
    /// provider.
    async fn assigns(&self) -> AssignTo {
        self.0.assigns.into()
    }
    /// The winning rule's ID.
    async fn rule_id(&self) -> Option<ID> {
        self.0.winner.as_ref().map(|w| ID(w.0.clone()))
    }
    /// The engineer picked.
    async fn engineer(&self, ctx: &Context<'_>) -> Result<Option<Engineer>> {
        match (&self.0.winner, self.0.assigns) {
            (Some((_, e, _)), d::Assigns::Engineer) => Engineer::by_id(ctx, e).await,
            _ => Ok(None),
        }
    }
    /// The service provider picked (an evaluation assigning providers).
    async fn provider(&self, ctx: &Context<'_>) -> Result<Option<Partner>> {
        match (&self.0.winner, self.0.assigns) {
            (Some((_, p, _)), d::Assigns::Provider) => partner_by_id(ctx, p).await,
            _ => Ok(None),
        }
    }
    async fn strategy(&self) -> Option<DispatchStrategy> {
        self.0.winner.as_ref().and_then(|w| w.2).map(Into::into)
    }
    /// `explainDispatch` (upstream staff): the SLA the order has, or the draft would get if
    /// created now (its due times); null without a policy, and on the traces stored on orders.
    async fn sla(&self) -> Option<super::WorkOrderSla> {
        self.2.clone().map(|v| super::WorkOrderSla(v, self.1))
    }
}
