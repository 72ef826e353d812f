//! GraphQL types of SLA clocks: a tenant's business calendar, its SLA policies, an order's SLA.
use async_graphql::{Enum, ID, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, NaiveDate, Utc};
use entity::sla_policy;

use super::Priority;
use super::rules::{RuleCondition, RuleConditionInput};
use crate::domain::sla as s;
use crate::domain::validate::iso_duration;
use crate::domain::visibility::Audience;
use crate::error::{Error, ResultExt};
use crate::graphql::policy::Sees;
use crate::service::sla::calendar::{StoredCalendar, TenantCalendar};
use crate::service::sla::clocks::{SlaView, TargetView};
use crate::service::{audience, sla};

mirror!(
    /// How an SLA policy's durations are measured.
    SlaClock <=> s::ClockKind {
        /// Working time only, on the tenant's business calendar (`businessCalendar`): PT8H is
        /// one working day of eight hours.
        Business,
        /// Elapsed time, around the clock.
        Calendar,
    }
);

mirror!(
    /// What an SLA target measures, from the order's creation.
    SlaTargetKind <=> s::Target {
        /// An engineer is assigned (by a rule, by hand, or by claiming an offer).
        Assigned,
        /// The engineer accepted the task (or it was accepted on its behalf).
        Accepted,
    }
);

mirror!(
    /// Where an SLA target stands; an order's status is the worst of its targets'.
    SlaStatus <=> s::Status {
        /// Met in time.
        Met,
        /// The order was cancelled before the target was met, and before it was due.
        Cancelled,
        /// Running, before its warning.
        OnTrack,
        /// Running, past its warning (the policy's `warnAtPercent` of its time), not yet due.
        Warning,
        /// Due and not met, or met late.
        Breached,
    }
);

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum Weekday {
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
    Saturday,
    Sunday,
}

const WEEK: [Weekday; 7] = [
    Weekday::Monday,
    Weekday::Tuesday,
    Weekday::Wednesday,
    Weekday::Thursday,
    Weekday::Friday,
    Weekday::Saturday,
    Weekday::Sunday,
];

/// 1 (Monday) to 7 (Sunday).
fn day_number(d: Weekday) -> u8 {
    WEEK.iter().position(|w| *w == d).unwrap_or(0) as u8 + 1
}

/// A tenant's time zone and working time: what an SLA on a business clock counts.
pub struct BusinessCalendar(pub TenantCalendar, pub Audience);

#[Object(guard = "Sees::object::<Self>(self.1)")]
impl BusinessCalendar {
    /// IANA time zone, e.g. `Europe/Berlin` (also the tenant's day for FEWEST_TODAY).
    async fn time_zone(&self) -> &str {
        &self.0.time_zone
    }
    async fn working_days(&self) -> Vec<Weekday> {
        self.0
            .stored
            .working_days
            .iter()
            .filter_map(|&n| WEEK.get(usize::from(n).saturating_sub(1)).copied())
            .collect()
    }
    /// Local opening time, `HH:MM`.
    async fn opens(&self) -> &str {
        &self.0.stored.opens
    }
    /// Local closing time, `HH:MM` (`24:00`: midnight at the end of the day).
    async fn closes(&self) -> &str {
        &self.0.stored.closes
    }
    /// Local dates not worked.
    async fn holidays(&self) -> &[NaiveDate] {
        &self.0.stored.holidays
    }
}

#[derive(InputObject)]
pub struct SetBusinessCalendarInput {
    /// IANA time zone, e.g. `Europe/Berlin`, `Asia/Shanghai`, `UTC`.
    pub time_zone: String,
    pub working_days: Vec<Weekday>,
    /// Local opening time, `HH:MM`.
    pub opens: String,
    /// Local closing time, `HH:MM`, after `opens` (`24:00`: until midnight).
    pub closes: String,
    #[graphql(default)]
    pub holidays: Vec<NaiveDate>,
}

impl From<SetBusinessCalendarInput> for (String, StoredCalendar) {
    fn from(i: SetBusinessCalendarInput) -> Self {
        (
            i.time_zone,
            StoredCalendar {
                working_days: i.working_days.into_iter().map(day_number).collect(),
                opens: i.opens,
                closes: i.closes,
                holidays: i.holidays,
            },
        )
    }
}

#[derive(SimpleObject)]
#[graphql(guard = "Sees::container::<Self>()")]
pub struct BusinessCalendarPayload {
    pub calendar: BusinessCalendar,
}

/// An upstream's SLA policy: which orders it applies to and the targets it sets them.
pub struct SlaPolicy(pub sla_policy::Model, pub Audience);

seen! {
    SlaPolicy(sla_policy::Model) by audience::sla_policy;
}

impl SlaPolicy {
    pub async fn seen_all(ctx: &async_graphql::Context<'_>, list: Vec<sla_policy::Model>) -> Result<Vec<SlaPolicy>> {
        let mut out = Vec::with_capacity(list.len());
        for p in list {
            out.push(SlaPolicy::seen(ctx, p).await?);
        }
        Ok(out)
    }
}

#[Object(guard = "Sees::object::<Self>(self.1)")]
impl SlaPolicy {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// Policies are tried from position 0 up; an order gets the first that applies.
    async fn position(&self) -> i32 {
        self.0.position
    }
    async fn enabled(&self) -> bool {
        self.0.enabled
    }
    /// The priorities it applies to (empty: any).
    async fn priorities(&self) -> Result<Vec<Priority>> {
        let ps: Vec<crate::domain::Priority> = serde_json::from_value(self.0.priorities.clone())
            .map_err(Error::internal)
            .gql()?;
        Ok(ps.into_iter().map(Into::into).collect())
    }
    /// All must hold for the policy to apply (as a dispatch rule's).
    async fn conditions(&self) -> Result<Vec<RuleCondition>> {
        RuleCondition::stored(&self.0.conditions, self.1)
    }
    async fn clock(&self) -> Result<SlaClock> {
        s::ClockKind::parse(&self.0.clock)
            .map(Into::into)
            .ok_or_else(|| Error::internal("stored SLA clock unknown"))
            .gql()
    }
    /// An engineer assigned within this (ISO 8601) of creation.
    async fn assigned_within(&self) -> Option<String> {
        self.0.assigned_within_secs.map(|v| iso_duration(v.max(0) as u64))
    }
    /// The task accepted within this (ISO 8601) of creation.
    async fn accepted_within(&self) -> Option<String> {
        self.0.accepted_within_secs.map(|v| iso_duration(v.max(0) as u64))
    }
    /// A target warns once this share (percent) of its time has passed.
    async fn warn_at_percent(&self) -> i32 {
        self.0.warn_at_percent
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

#[derive(InputObject)]
pub struct CreateSlaPolicyInput {
    pub name: String,
    #[graphql(default = true)]
    pub enabled: bool,
    /// The priorities it applies to; empty or omitted: any.
    #[graphql(default)]
    pub priorities: Vec<Priority>,
    /// All must hold (as a dispatch rule's); none: every order of its priorities.
    #[graphql(default)]
    pub conditions: Vec<RuleConditionInput>,
    #[graphql(default_with = "SlaClock::Business")]
    pub clock: SlaClock,
    /// ISO 8601, PT1M to P365D; at least one of the two targets.
    pub assigned_within: Option<String>,
    /// ISO 8601, PT1M to P365D, at least `assignedWithin`.
    pub accepted_within: Option<String>,
    /// 1 to 99 (80 when omitted).
    pub warn_at_percent: Option<i32>,
    /// Where in the order policies are tried (0: first); appended when omitted.
    pub position: Option<i32>,
}

impl From<CreateSlaPolicyInput> for sla::PolicyInput {
    fn from(i: CreateSlaPolicyInput) -> Self {
        sla::PolicyInput {
            name: Some(i.name),
            enabled: Some(i.enabled),
            priorities: Some(i.priorities.into_iter().map(Into::into).collect()),
            conditions: Some(i.conditions.into_iter().map(Into::into).collect()),
            clock: Some(i.clock.into()),
            assigned_within: Some(i.assigned_within),
            accepted_within: Some(i.accepted_within),
            warn_at_percent: i.warn_at_percent,
        }
    }
}

/// What is omitted stays as it is; orders keep the SLA they were given.
#[derive(InputObject)]
pub struct UpdateSlaPolicyInput {
    pub policy_id: ID,
    pub name: Option<String>,
    pub enabled: Option<bool>,
    pub priorities: Option<Vec<Priority>>,
    /// Replaces all conditions.
    pub conditions: Option<Vec<RuleConditionInput>>,
    pub clock: Option<SlaClock>,
    /// ISO 8601; `null` removes the target.
    pub assigned_within: async_graphql::MaybeUndefined<String>,
    /// ISO 8601; `null` removes the target.
    pub accepted_within: async_graphql::MaybeUndefined<String>,
    pub warn_at_percent: Option<i32>,
}

fn maybe(v: async_graphql::MaybeUndefined<String>) -> Option<Option<String>> {
    match v {
        async_graphql::MaybeUndefined::Undefined => None,
        async_graphql::MaybeUndefined::Null => Some(None),
        async_graphql::MaybeUndefined::Value(s) => Some(Some(s)),
    }
}

impl From<UpdateSlaPolicyInput> for sla::PolicyInput {
    fn from(i: UpdateSlaPolicyInput) -> Self {
        sla::PolicyInput {
            name: i.name,
            enabled: i.enabled,
            priorities: i.priorities.map(|v| v.into_iter().map(Into::into).collect()),
            conditions: i.conditions.map(|v| v.into_iter().map(Into::into).collect()),
            clock: i.clock.map(Into::into),
            assigned_within: maybe(i.assigned_within),
            accepted_within: maybe(i.accepted_within),
            warn_at_percent: i.warn_at_percent,
        }
    }
}

#[derive(InputObject)]
pub struct DeleteSlaPolicyInput {
    pub policy_id: ID,
}

#[derive(InputObject)]
pub struct ReorderSlaPoliciesInput {
    /// Every policy of the tenant, once, in the new order.
    pub policy_ids: Vec<ID>,
}

#[derive(SimpleObject)]
#[graphql(guard = "Sees::container::<Self>()")]
pub struct SlaPolicyPayload {
    pub policy: SlaPolicy,
}

#[derive(SimpleObject)]
#[graphql(guard = "Sees::container::<Self>()")]
pub struct DeleteSlaPolicyPayload {
    pub deleted_policy_id: ID,
}

#[derive(SimpleObject)]
#[graphql(guard = "Sees::container::<Self>()")]
pub struct SlaPoliciesPayload {
    pub policies: Vec<SlaPolicy>,
}

/// An order's SLA: the targets its policy set it at creation, as they stand now.
pub struct WorkOrderSla(pub SlaView, pub Audience);

#[Object(guard = "Sees::object::<Self>(self.1)")]
impl WorkOrderSla {
    /// The policy that set it (deleting the policy later leaves the SLA as set).
    async fn policy_id(&self) -> ID {
        ID(self.0.sla.policy_id.clone())
    }
    async fn policy_name(&self) -> &str {
        &self.0.sla.policy_name
    }
    async fn clock(&self) -> SlaClock {
        self.0.sla.clock.into()
    }
    /// The worst of its targets' statuses.
    async fn status(&self) -> SlaStatus {
        self.0.status.into()
    }
    async fn targets(&self) -> Vec<SlaTarget> {
        self.0.targets.iter().cloned().map(|t| SlaTarget(t, self.1)).collect()
    }
}

/// One SLA target of an order.
pub struct SlaTarget(pub TargetView, pub Audience);

#[Object(guard = "Sees::object::<Self>(self.1)")]
impl SlaTarget {
    async fn target(&self) -> SlaTargetKind {
        self.0.clock.target.into()
    }
    /// The policy's duration (ISO 8601; working time on a business clock).
    async fn within(&self) -> String {
        iso_duration(self.0.clock.within_secs)
    }
    async fn due_at(&self) -> DateTime<Utc> {
        self.0.clock.due_at
    }
    /// When it turns WARNING.
    async fn warn_at(&self) -> DateTime<Utc> {
        self.0.clock.warn_at
    }
    async fn met_at(&self) -> Option<DateTime<Utc>> {
        self.0.clock.met_at
    }
    /// Seconds left to `dueAt` (working seconds on a business clock), negative once overdue;
    /// null once met or cancelled.
    async fn remaining_seconds(&self) -> Option<i64> {
        self.0.remaining_secs
    }
    async fn status(&self) -> SlaStatus {
        self.0.status.into()
    }
}
