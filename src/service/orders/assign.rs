//! Manual assignment and reassignment, and what every assignment writes (fields, load, task, history).
use entity::{engineer, task, timer, work_order};
use sea_orm::ConnectionTrait;
use serde_json::json;

use crate::auth::Actor;
use crate::domain::TenantKind;
use crate::domain::assignment::{
    self, AssignKind, Assignee, AssignmentPlan, DispatchFields, Method, Provider, ProviderStage,
};
use crate::domain::work_order::{Command, EventKind, State};
use crate::domain::workflow::Acceptance;
use crate::error::{Error, Result};
use crate::ids;
use crate::service::tenants::kind_of;
use crate::service::{Caller, Services};
use crate::store::begin_write;
use crate::store::lookup::ById;
use crate::store::notify::kind as notify_kind;
use crate::store::parties::Partnership;
use crate::store::tasks::task_status;
use crate::store::{self, orders as order_store};

use super::current::{load_current, load_current_at_provider, stale};
use super::provider::{as_provider, not_at_providers_stage, takes_orders};
use super::unit_of_work::{History, commit};

pub struct AssignInput {
    pub work_order_id: String,
    pub engineer_id: String,
    pub expected_version: i32,
}

/// The engineer an assignment goes to, with what the dispatch fields copy.
pub struct Chosen {
    pub engineer_id: String,
    pub engineer_name: String,
    pub engineer_tenant: String,
    pub partner_id: String,
    pub legacy_account_id: Option<String>,
    pub outer_id: String,
    pub outer_name: String,
}

impl Chosen {
    pub(crate) fn assignee(&self) -> Assignee<'_> {
        Assignee {
            engineer_id: &self.engineer_id,
            provider: Provider {
                partner_id: &self.partner_id,
                partner_legacy_account_id: self.legacy_account_id.as_deref(),
                downstream_outer_tenant_id: &self.outer_id,
                downstream_outer_tenant_name: &self.outer_name,
            },
        }
    }
}

/// An assignment decided but not yet written: its steps and the fields it fills in.
pub(crate) struct Planned {
    pub plan: AssignmentPlan,
    pub fields: DispatchFields,
    /// Two-stage dispatch: how the provider assigned its engineer.
    pub stage: Option<ProviderStage>,
}

impl Planned {
    /// The order as read with the assignment on it, at its next version.
    pub fn applied(&self, order: &work_order::Model, at: chrono::DateTime<chrono::Utc>) -> work_order::Model {
        let mut updated = order.clone();
        updated.version += 1;
        updated.updated_at = at;
        self.apply_to(&mut updated);
        updated
    }

    /// Puts the assignment on the order as read (`store::orders::update_if_current` writes
    /// what changed).
    pub fn apply_to(&self, o: &mut work_order::Model) {
        o.state = self.plan.state.as_str().to_owned();
        o.current_node = self.plan.current_node as i32;
        order_store::set_dispatch_fields(o, Some(&self.fields));
        if let Some(stage) = &self.stage {
            order_store::set_provider_stage(o, Some(&self.fields.engineer_id), Some(stage));
        }
    }
}

/// Two-stage dispatch: the fields of the provider's assignment of `chosen`, the upstream's
/// stage kept as it was written (its dispatcher, way and time; the provider).
pub(crate) fn upstream_stage_kept(order: &work_order::Model, chosen: &Chosen) -> Result<DispatchFields> {
    let missing = || {
        Error::internal(format!(
            "work order {} is at its provider without the upstream's fields",
            order.id
        ))
    };
    Ok(DispatchFields {
        assign_user: order.assign_user.clone(),
        assign_way: order
            .assign_way
            .as_deref()
            .and_then(Method::parse)
            .ok_or_else(missing)?,
        assign_time: order.assign_time.ok_or_else(missing)?,
        partner_id: order.field_partner.clone().ok_or_else(missing)?,
        legacy_account_id: order.field_fwssf.clone(),
        engineer_id: chosen.engineer_id.clone(),
        downstream_outer_tenant_name: order.field_downstream_outer_tenant_name.clone().ok_or_else(missing)?,
        downstream_outer_tenant_id: order.field_downstream_outer_tenant_id.clone().ok_or_else(missing)?,
    })
}

/// An engineer an upstream caller may assign, with its capacity (for the refusal when full).
struct Assignable {
    chosen: Chosen,
    capacity: i32,
}

/// Resolves an engineer for an order of `upstream_tenant_id`: an engineer of a tenant that is
/// not connected to it (or, for a provider's dispatcher, not of its own tenant `only_of`) does
/// not exist for the caller (NOT_FOUND); an inactive engineer or partner is refused.
async fn assignable<C: ConnectionTrait>(
    state: &Services,
    conn: &C,
    upstream_tenant_id: &str,
    only_of: Option<&str>,
    engineer_id: &str,
) -> Result<Assignable> {
    let not_found = || Error::not_found("engineer", engineer_id);
    let engineer = <engineer::Model as ById>::by_id(conn, engineer_id)
        .await?
        .filter(|e| only_of.is_none_or(|t| e.tenant_id == t))
        .ok_or_else(not_found)?;
    let between = Partnership {
        upstream_tenant_id,
        downstream_tenant_id: &engineer.tenant_id,
    };
    let partner = store::parties::partner(conn, between).await?.ok_or_else(not_found)?;
    takes_orders(&partner, "engineerId")?;
    if !engineer.active {
        return Err(Error::bad_input(
            "engineerId",
            format!("engineer '{}' is inactive", engineer.name),
        ));
    }
    let downstream = state.tenants.require(conn, &engineer.tenant_id).await?;
    if kind_of(&downstream)? != TenantKind::Downstream {
        return Err(not_found());
    }
    let chosen = Chosen {
        outer_id: downstream.outer_tenant_id.clone().unwrap_or_default(),
        outer_name: downstream.name.clone(),
        engineer_id: engineer.id,
        engineer_name: engineer.name,
        engineer_tenant: engineer.tenant_id,
        partner_id: partner.id,
        legacy_account_id: partner.legacy_account_id,
    };
    Ok(Assignable {
        chosen,
        capacity: engineer.capacity,
    })
}

/// Queues the task of the engineer assigned to the order's node, and the timer of its
/// acceptance deadline when the node sets one.
fn issue_task<C: ConnectionTrait>(
    history: &mut History<'_>,
    conn: &C,
    order: &work_order::Model,
    chosen: &Chosen,
    (node_index, node_name): (usize, &str),
    acceptance: Option<Acceptance>,
) -> task::Model {
    let accept_by = acceptance.map(|a| history.at + chrono::TimeDelta::seconds(a.within_secs as i64));
    let t = task::Model {
        accept_by,
        id: ids::new(ids::TASK),
        work_order_id: order.id.clone(),
        tenant_id: order.tenant_id.clone(),
        engineer_id: chosen.engineer_id.clone(),
        downstream_tenant_id: chosen.engineer_tenant.clone(),
        node_index: node_index as i32,
        node_name: node_name.to_owned(),
        status: task_status::ASSIGNED.to_owned(),
        created_at: history.at,
        updated_at: history.at,
    };
    store::tasks::insert(&mut history.batch, conn, &t);
    if let Some(due_at) = accept_by {
        let timer = timer::Model {
            id: ids::new(ids::TIMER),
            kind: store::timers::kind::ACCEPT_DEADLINE.to_owned(),
            tenant_id: order.tenant_id.clone(),
            work_order_id: order.id.clone(),
            task_id: Some(t.id.clone()),
            due_at,
            attempt: 0,
            created_at: history.at,
        };
        store::timers::schedule(&mut history.batch, conn, &timer);
    }
    t
}

/// What every assignment writes besides the order row and the engineer claims: the previous
/// engineer's task revoked (when `previous`, the engineer replaced, is known), today's count,
/// the new task, and the history of each step.
pub(crate) async fn write_assignment<C: ConnectionTrait>(
    calendars: &crate::service::sla::CalendarCache,
    tx: &C,
    order: &work_order::Model,
    chosen: &Chosen,
    planned: &Planned,
    previous: Option<&str>,
    history: &mut History<'_>,
) -> Result<()> {
    if previous.is_some()
        && let Some(t) = store::tasks::close_open_task(tx, &order.id, task_status::REVOKED, history.at).await?
    {
        history.note(
            EventKind::TaskRevoked,
            format!("task {} of engineer {} revoked", t.id, t.engineer_id),
            Some(json!({ "taskId": t.id, "engineerId": t.engineer_id })),
        );
        history.notify(tx, &t.engineer_id, notify_kind::TASK_REVOKED, &t.id)?;
    }
    crate::service::rules::count_today(
        calendars,
        &mut history.batch,
        tx,
        &chosen.engineer_id,
        &chosen.engineer_tenant,
    )
    .await?;
    let record = super::history_fields(order);
    for step in &planned.plan.steps {
        match step.command {
            Command::IssueTask => {
                let (node_index, node_name) = planned.plan.task_node.clone().unwrap_or_default();
                let node = (node_index, node_name.as_str());
                let t = issue_task(history, tx, order, chosen, node, planned.plan.acceptance);
                history.notify(tx, &chosen.engineer_id, notify_kind::TASK_ASSIGNED, &t.id)?;
                history.step(
                    *step,
                    format!(
                        "task {} issued to engineer '{}' for node '{node_name}'",
                        t.id, chosen.engineer_name
                    ),
                    Some(json!({ "taskId": t.id })),
                );
            }
            command => history.step(
                *step,
                match (previous, command) {
                    (Some(old), _) => format!(
                        "engineer {old} replaced by '{}' ({})",
                        chosen.engineer_name, chosen.engineer_id
                    ),
                    (None, Command::Claim) => format!(
                        "engineer '{}' ({}) claimed the offer",
                        chosen.engineer_name, chosen.engineer_id
                    ),
                    (None, Command::AutoAssign) if planned.stage.is_some() => format!(
                        "engineer '{}' ({}) assigned automatically by the service provider's rules",
                        chosen.engineer_name, chosen.engineer_id
                    ),
                    (None, Command::AutoAssign) => format!(
                        "engineer '{}' ({}) assigned automatically by rule {}",
                        chosen.engineer_name,
                        chosen.engineer_id,
                        order.dispatch_rule_id.as_deref().unwrap_or("?")
                    ),
                    (None, _) => format!(
                        "engineer '{}' ({}) assigned manually",
                        chosen.engineer_name, chosen.engineer_id
                    ),
                },
                Some(record.clone()),
            ),
        }
    }
    Ok(())
}

/// Manual assignment (`AssignKind::Manual`) or reassignment (`AssignKind::Reassign`).
#[tracing::instrument(name = "service.assign_engineer", level = "debug", skip_all)]
pub async fn assign_engineer(
    state: &Services,
    actor: &Actor,
    input: AssignInput,
    kind: AssignKind,
) -> Result<work_order::Model> {
    let op = if kind == AssignKind::Reassign {
        "Mutation.reassignEngineer"
    } else {
        "Mutation.assignEngineer"
    };
    let caller = Caller::load(state, actor).await?;
    caller.require_op(op)?;
    // Everything is read and checked before the write transaction: the order's update is
    // conditional on the version read (the one the caller expects), and the engineer's claim
    // checks again that it and its partner may still take the task. The single SQLite writer
    // holds the database only for the writes.
    let id = &input.work_order_id;
    let (order, current) = match caller.is_upstream() {
        true => load_current(&state.db, &caller, id, input.expected_version).await?,
        false => load_current_at_provider(&state.db, &caller, id, input.expected_version).await?,
    };
    let flow = state
        .workflows
        .get(&state.db, &order.tenant_id, &order.workflow_id)
        .await?;
    let node = flow.require_dispatch_node()?;
    // Direct dispatch: the upstream's dispatchers assign engineers; two-stage: the provider's.
    match (node.two_stage(), caller.is_upstream()) {
        (true, true) => {
            return Err(Error::bad_input(
                "workOrderId",
                format!(
                    "in workflow '{}' the service provider assigns its own engineer (two-stage dispatch): use assignServiceProvider, or reassignServiceProvider while the provider has not assigned one",
                    flow.model.name
                ),
            ));
        }
        (false, false) => return Err(not_at_providers_stage()),
        _ => {}
    }
    let plan = assignment::plan(current, kind, &flow.nodes, node.engineer_index())?;
    let only_of = (!caller.is_upstream()).then(|| caller.tenant_id());
    let Assignable { chosen, capacity } =
        assignable(state, &state.db, &order.tenant_id, only_of, &input.engineer_id).await?;
    let previous = order.field_out_deal_user.clone().filter(|_| current.has_engineer());
    if previous.as_deref() == Some(input.engineer_id.as_str()) {
        return Err(Error::bad_input(
            "engineerId",
            "the work order is already assigned to this engineer",
        ));
    }
    // Every dispatcher recorded in assign_user is a real user of this tenant: `Caller::load`
    // checked that the token's subject is an active user of its tenant in the token's role
    // (the engineers' role may not assign), and users are never deleted.
    let dispatcher_id = actor.subject.clone();
    let checked = CheckedAssignment {
        order,
        plan,
        chosen,
        capacity,
        previous,
        dispatcher_id,
        expected_version: input.expected_version,
        two_stage: node.two_stage(),
    };
    let work = assign_in_tx(state.clone(), actor.clone(), caller, checked);
    state.lane.run(work).await
}

/// What `assign_engineer` read and checked before its transaction.
struct CheckedAssignment {
    order: work_order::Model,
    plan: AssignmentPlan,
    chosen: Chosen,
    capacity: i32,
    previous: Option<String>,
    dispatcher_id: String,
    expected_version: i32,
    two_stage: bool,
}

/// One change of an engineer's load counter.
enum Load<'a> {
    /// The engineer assigned: one more open task, if it has room.
    Claim(&'a str),
    /// The engineer replaced: one fewer.
    Release(&'a str),
}

impl Load<'_> {
    fn engineer_id(&self) -> &str {
        match self {
            Load::Claim(id) | Load::Release(id) => id,
        }
    }
}

/// The transaction of `assign_engineer`: the conditional update, the claims, the task.
async fn assign_in_tx(
    state: Services,
    actor: Actor,
    caller: Caller,
    checked: CheckedAssignment,
) -> Result<work_order::Model> {
    let (state, actor, caller) = (&state, &actor, &caller);
    let CheckedAssignment {
        order,
        plan,
        chosen,
        capacity,
        previous,
        dispatcher_id,
        expected_version,
        two_stage,
    } = checked;
    let upstream = order.tenant_id.as_str();
    let tx = begin_write(&state.writer).await?;
    let now = crate::domain::now();
    let planned = match two_stage {
        // The provider's dispatcher: the upstream's stage stays as it was.
        true => Planned {
            plan,
            fields: upstream_stage_kept(&order, &chosen)?,
            stage: Some(assignment::provider_stage(Method::Manual, Some(&dispatcher_id), now)),
        },
        false => Planned {
            plan,
            fields: assignment::dispatch_fields(
                caller.tenant.activation_version,
                Method::Manual,
                Some(&dispatcher_id),
                &chosen.assignee(),
                now,
            ),
            stage: None,
        },
    };
    let mut updated = planned.applied(&order, now);
    let mut sla_writes = crate::store::Batch::default();
    if !super::save(&tx, &mut sla_writes, &order, &mut updated).await? {
        return Err(stale(&order, expected_version));
    }
    // Counters are touched in ID order so that two reassignments crossing the same two
    // engineers cannot deadlock on PostgreSQL.
    let mut loads = vec![Load::Claim(chosen.engineer_id.as_str())];
    if let Some(old) = &previous {
        loads.push(Load::Release(old.as_str()));
    }
    loads.sort_by(|a, b| a.engineer_id().cmp(b.engineer_id()));
    for load in loads {
        match load {
            Load::Release(engineer_id) => order_store::release_engineer(&tx, engineer_id).await?,
            Load::Claim(engineer_id) => {
                if !order_store::claim_engineer(&tx, engineer_id, upstream).await? {
                    // Deactivated since it was read: say so; otherwise it is full.
                    assignable(state, &tx, upstream, None, engineer_id).await?;
                    return Err(Error::bad_input(
                        "engineerId",
                        format!(
                            "engineer '{}' is at capacity ({capacity} open tasks)",
                            chosen.engineer_name
                        ),
                    ));
                }
            }
        }
    }
    // The provider's dispatcher is recorded in the upstream's history as its provider.
    let recorded = match two_stage {
        true => as_provider(actor, &planned.fields.partner_id),
        false => actor.clone(),
    };
    let mut history = History::new(&updated.id, upstream, Some(&recorded), now);
    history.batch.append(sla_writes);
    if two_stage {
        history.tell_provider(caller.tenant_id());
    }
    // A dispatcher decides while the order is on offer: the offer ends.
    if order.state == State::Offered.as_str() {
        super::claim::withdraw_offer(&tx, &order.id, None, &mut history).await?;
    }
    write_assignment(
        &state.calendars,
        &tx,
        &updated,
        &chosen,
        &planned,
        previous.as_deref(),
        &mut history,
    )
    .await?;
    commit(state, tx, history).await?;
    Ok(updated)
}
