//! Work orders: creation (into the workflow, through automatic dispatch to manual), manual
//! assignment, reassignment and cancellation. Every write is one transaction.
use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use entity::{engineer, partner, task, work_order, work_order_event, workflow};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, NotSet, QueryFilter, QuerySelect,
    Set,
};
use serde_json::{Value, json};

use crate::auth::Actor;
use crate::domain::assignment::{self, AssignKind, Assignee, AssignmentPlan, DispatchFields, Method};
use crate::domain::dispatch::{OrderFacts, evaluate};
use crate::domain::work_order::{Command, EventKind, State, Transition, transition};
use crate::domain::workflow::{self as wf, Node, WorkflowKind};
use crate::domain::{Priority, TenantKind, validate};
use crate::error::{Error, Result};
use crate::ids;
use crate::service::Services;
use crate::store::begin_write;
use crate::store::notify::kind as notify_kind;
use crate::store::orders::{self as store, task_status};

use super::tenants::kind_of;
use super::{Caller, rules};

pub const MAX_TEXT: usize = 200;
pub const MAX_DESCRIPTION: usize = 10_000;
pub const MAX_CUSTOM_FIELDS_BYTES: usize = 16 * 1024;

pub struct NewOrder {
    pub workflow_id: String,
    pub external_ref: Option<String>,
    pub title: String,
    pub description: Option<String>,
    pub customer: Option<String>,
    pub region: String,
    pub product: Option<String>,
    pub service_type: Option<String>,
    pub priority: Priority,
    pub required_skills: Vec<String>,
    pub custom_fields: Option<Value>,
}

/// A parsed workflow with its dispatch node.
pub struct Flow {
    pub model: workflow::Model,
    pub nodes: Vec<Node>,
    pub dispatch_index: Option<usize>,
}

impl Flow {
    pub fn from_model(model: workflow::Model) -> Result<Flow> {
        let nodes: Vec<Node> = serde_json::from_value(model.nodes.clone()).map_err(Error::internal)?;
        let kind = WorkflowKind::parse(&model.kind).ok_or_else(|| Error::internal("stored workflow kind unknown"))?;
        Ok(Flow {
            dispatch_index: wf::dispatch_node(kind, &nodes),
            model,
            nodes,
        })
    }

    pub fn require_dispatch_node(&self) -> Result<usize> {
        self.dispatch_index.ok_or_else(|| {
            Error::NoDispatchNode(format!(
                "workflow '{}' ({}) has no 'Dispatcher assigns service-provider engineer' node in an Interconnection workflow, so its orders cannot be dispatched to service-provider engineers",
                self.model.name, self.model.id
            ))
        })
    }
}

/// Builds the history rows of one change, all stamped with the same actor and time.
struct History<'a> {
    order_id: &'a str,
    tenant_id: &'a str,
    actor: Option<&'a Actor>,
    at: DateTime<Utc>,
    rows: Vec<work_order_event::Model>,
    /// Engineers whose notifications this change wrote (woken after commit).
    wake: Vec<String>,
    /// The change's unconditional writes, sent together before the commit.
    batch: crate::store::Batch,
}

impl<'a> History<'a> {
    fn new(order_id: &'a str, tenant_id: &'a str, actor: Option<&'a Actor>, at: DateTime<Utc>) -> Self {
        History {
            order_id,
            tenant_id,
            actor,
            at,
            rows: Vec::new(),
            wake: Vec::new(),
            batch: crate::store::Batch::default(),
        }
    }

    fn record(
        &mut self,
        kind: EventKind,
        from: Option<State>,
        to: Option<State>,
        message: String,
        data: Option<Value>,
    ) {
        self.rows.push(work_order_event::Model {
            id: ids::new(ids::EVENT),
            work_order_id: self.order_id.to_owned(),
            tenant_id: self.tenant_id.to_owned(),
            kind: kind.as_str().to_owned(),
            from_state: from.map(|s| s.as_str().to_owned()),
            to_state: to.map(|s| s.as_str().to_owned()),
            actor_role: self.actor.map(|a| a.role.as_str().to_owned()),
            actor_id: self.actor.map(|a| a.subject.clone()),
            message,
            data,
            at: self.at,
            // Numbered with the commit (`store::events`).
            seq: None,
        });
    }

    fn step(&mut self, t: Transition, message: String, data: Option<Value>) {
        self.record(t.command.event_kind(), Some(t.from), Some(t.to), message, data);
    }

    /// Queues a notification for the engineer in this transaction; it is woken after commit.
    fn notify<C: ConnectionTrait>(&mut self, tx: &C, engineer_id: &str, kind: &str, task_id: &str) -> Result<()> {
        crate::store::notify::push(
            &mut self.batch,
            tx,
            engineer_id,
            kind,
            task_id,
            self.order_id,
            self.tenant_id,
            self.at,
        )?;
        self.wake.push(engineer_id.to_owned());
        Ok(())
    }
}

/// Writes the history, commits, then wakes the subscribers of what changed.
async fn commit(state: &Services, tx: DatabaseTransaction, mut history: History<'_>) -> Result<()> {
    // Other instances' subscribers are woken by PostgreSQL at commit (queued first: nothing
    // else should wait behind the event counter).
    crate::notify::pg::notify_in(&tx, &state.hub, history.tenant_id, &history.wake).await?;
    // Last: the tenant's event counter stays locked from here to the commit.
    crate::store::events::push(&mut history.batch, &tx, history.tenant_id, &history.rows)?;
    history.batch.run(&tx).await?;
    tx.commit().await?;
    // On the write lane, once the group's commit made the change durable.
    let (hub, tenant, wake) = (state.hub.clone(), history.tenant_id.to_owned(), history.wake);
    if !history.rows.is_empty() && state.writer.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
        state.numbering.poke(&tenant);
    }
    crate::store::lane::after_commit(move || hub.publish(&tenant, &wake));
    Ok(())
}

fn text(field: &str, v: &Option<String>, max: usize) -> Result<Option<String>> {
    match v.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(s) => {
            validate::name(s, max).map_err(|m| Error::bad_input(field, m))?;
            Ok(Some(s.to_owned()))
        }
    }
}

fn check_new_order(input: &NewOrder) -> Result<()> {
    validate::name(&input.title, MAX_TEXT).map_err(|m| Error::bad_input("title", m))?;
    validate::region(&input.region).map_err(|m| Error::bad_input("region", m))?;
    if let Some(r) = &input.external_ref {
        validate::reference(r).map_err(|m| Error::bad_input("externalRef", m))?;
    }
    if let Some(d) = &input.description
        && d.chars().count() > MAX_DESCRIPTION
    {
        return Err(Error::bad_input(
            "description",
            format!("must be at most {MAX_DESCRIPTION} characters"),
        ));
    }
    if let Some(cf) = &input.custom_fields {
        let Some(obj) = cf.as_object() else {
            return Err(Error::bad_input(
                "customFields",
                "must be a JSON object of key -> value",
            ));
        };
        if obj.keys().any(|k| k.is_empty() || k.len() > 64) {
            return Err(Error::bad_input("customFields", "keys must be 1 to 64 characters"));
        }
        if cf.to_string().len() > MAX_CUSTOM_FIELDS_BYTES {
            return Err(Error::bad_input(
                "customFields",
                format!("must be at most {MAX_CUSTOM_FIELDS_BYTES} bytes of JSON"),
            ));
        }
    }
    Ok(())
}

/// Loads a workflow of the caller's tenant.
pub async fn load_flow<C: ConnectionTrait>(conn: &C, tenant_id: &str, workflow_id: &str) -> Result<Flow> {
    let model = workflow::Entity::find_by_id(workflow_id.to_owned())
        .one(conn)
        .await?
        .filter(|w| w.tenant_id == tenant_id)
        .ok_or_else(|| Error::not_found("workflow", workflow_id))?;
    Flow::from_model(model)
}

/// Workflows already read, by ID. A workflow is never changed or deleted once created, so an
/// entry never goes stale; the tenant is checked on every lookup.
#[derive(Clone, Default)]
pub struct FlowCache(Arc<std::sync::RwLock<HashMap<String, Arc<Flow>>>>);

impl FlowCache {
    pub async fn get(&self, db: &crate::store::Db, tenant_id: &str, workflow_id: &str) -> Result<Arc<Flow>> {
        let hit = self.0.read().expect("flow cache poisoned").get(workflow_id).cloned();
        let flow = match hit {
            Some(f) => f,
            None => {
                let f = Arc::new(load_flow(db, tenant_id, workflow_id).await?);
                self.0
                    .write()
                    .expect("flow cache poisoned")
                    .insert(workflow_id.to_owned(), f.clone());
                f
            }
        };
        if flow.model.tenant_id != tenant_id {
            return Err(Error::not_found("workflow", workflow_id));
        }
        Ok(flow)
    }
}

fn facts_of_input(input: &NewOrder, skills: &[String]) -> OrderFacts {
    OrderFacts {
        region: input.region.clone(),
        product: input.product.clone(),
        service_type: input.service_type.clone(),
        priority: input.priority,
        customer: input.customer.clone(),
        required_skills: skills.to_vec(),
        custom_fields: input.custom_fields.clone(),
    }
}

/// Validates a new order's business attributes; returns them trimmed.
fn checked(input: NewOrder) -> Result<(NewOrder, Vec<String>)> {
    check_new_order(&input)?;
    let skills = validate::skills(&input.required_skills).map_err(|m| Error::bad_input("requiredSkills", m))?;
    let input = NewOrder {
        description: text("description", &input.description, MAX_DESCRIPTION)?,
        customer: text("customer", &input.customer, MAX_TEXT)?,
        product: text("product", &input.product, MAX_TEXT)?,
        service_type: text("serviceType", &input.service_type, MAX_TEXT)?,
        ..input
    };
    Ok((input, skills))
}

pub async fn create_work_order(state: &Services, actor: &Actor, input: NewOrder) -> Result<work_order::Model> {
    let caller = Caller::load(state, actor).await?;
    caller.require_op("Mutation.createWorkOrder")?;
    let (input, skills) = checked(input)?;
    let facts = facts_of_input(&input, &skills);
    let flow = state
        .workflows
        .get(&state.db, caller.tenant_id(), &input.workflow_id)
        .await?;
    let dispatch_index = flow.require_dispatch_node()?;
    // Read on the read pool, outside the single writer's turn; refreshed in the transaction.
    let prepared = rules::prepare(
        &state.rules,
        &state.db,
        caller.tenant_id(),
        &facts,
        None,
        rules::Phase::BeforeTransaction,
    )
    .await?;
    let work = create_in_tx(
        state.clone(),
        actor.clone(),
        caller,
        input,
        skills,
        facts,
        prepared,
        flow,
        dispatch_index,
    );
    state.lane.run(work).await
}

/// The transaction of `create_work_order`: the order, its dispatch, their history.
#[allow(clippy::too_many_arguments)]
async fn create_in_tx(
    state: Services,
    actor: Actor,
    caller: Caller,
    input: NewOrder,
    skills: Vec<String>,
    facts: OrderFacts,
    prepared: rules::Prepared,
    flow: Arc<Flow>,
    dispatch_index: usize,
) -> Result<work_order::Model> {
    let (state, actor) = (&state, &actor);
    let tx = begin_write(&state.writer).await?;
    let now = crate::domain::now();
    let id = ids::new(ids::WORK_ORDER);
    let mut history = History::new(&id, caller.tenant_id(), Some(actor), now);
    history.record(
        EventKind::Created,
        None,
        Some(State::Created),
        format!("created in workflow '{}'", flow.model.name),
        None,
    );
    // The order arrives at the dispatch node: automatic rules run first.
    let (trace, chosen) = run_rules(state, &tx, &mut history.batch, &caller, &facts, None, Some(prepared)).await?;
    let attempt = transition(State::Created, Command::AttemptAutoDispatch)?;
    history.actor = None;
    history.step(
        attempt,
        attempt_message(&flow, dispatch_index, &trace),
        Some(rules::summary_data(&trace)),
    );

    let mut order = work_order::Model {
        id: id.clone(),
        tenant_id: caller.tenant_id().to_owned(),
        workflow_id: flow.model.id.clone(),
        external_ref: input.external_ref.clone(),
        title: input.title.trim().to_owned(),
        description: input.description,
        customer: input.customer,
        state: attempt.to.as_str().to_owned(),
        current_node: dispatch_index as i32,
        version: 1,
        region: input.region,
        product: input.product,
        service_type: input.service_type,
        priority: input.priority.as_str().to_owned(),
        required_skills: json!(skills),
        custom_fields: input.custom_fields,
        assign_user: None,
        assign_way: None,
        assign_time: None,
        field_partner: None,
        field_fwssf: None,
        field_out_deal_user: None,
        field_downstream_outer_tenant_name: None,
        field_downstream_outer_tenant_id: None,
        created_at: now,
        updated_at: now,
        dispatch_rule_id: None,
        dispatch_trace: Some(rules::trace_json(&trace)?),
    };
    let assignment = settle_auto(
        &mut order,
        attempt.to,
        chosen.as_ref(),
        &trace,
        (&flow, dispatch_index),
        caller.tenant.activation_version,
        &mut history,
        now,
    )?;
    history.batch.add_query(
        &tx,
        &work_order::Entity::insert(work_order::ActiveModel::from(order.clone())),
    );
    if let (Some(ch), Some((plan, fields))) = (&chosen, &assignment) {
        write_assignment(&tx, &order, ch, plan, fields, None, &mut history, now).await?;
    }
    // Every other row of the batch has a new random key: a unique violation is the reference.
    commit(state, tx, history).await.map_err(|e| match e {
        Error::Conflict(_) => Error::Conflict(format!(
            "externalRef '{}' is already used by another work order of this tenant",
            order.external_ref.as_deref().unwrap_or_default()
        )),
        other => other,
    })?;
    Ok(order)
}

/// Settles an automatic dispatch on the in-memory order: assigned by the winning rule, or
/// routed to manual assignment. Returns what the assignment writes, if anything.
#[allow(clippy::too_many_arguments)]
fn settle_auto(
    order: &mut work_order::Model,
    from: State,
    chosen: Option<&Chosen>,
    trace: &rules::StoredTrace,
    (flow, dispatch_index): (&Flow, usize),
    activation_version: Option<i32>,
    history: &mut History<'_>,
    now: DateTime<Utc>,
) -> Result<Option<(AssignmentPlan, DispatchFields)>> {
    match chosen {
        Some(ch) => {
            let plan = assignment::plan(from, AssignKind::Automatic, &flow.nodes, dispatch_index)?;
            let fields = assignment::dispatch_fields(activation_version, Method::Automatic, None, &ch.assignee(), now);
            apply(order, &fields, &plan);
            order.dispatch_rule_id = trace.winner.as_ref().map(|w| w.0.clone());
            Ok(Some((plan, fields)))
        }
        None => {
            let manual = transition(from, Command::RouteToManual)?;
            history.step(
                manual,
                "no rule yielded an engineer: waiting for manual assignment".into(),
                None,
            );
            order.state = manual.to.as_str().to_owned();
            Ok(None)
        }
    }
}

fn attempt_message(flow: &Flow, dispatch_index: usize, t: &rules::StoredTrace) -> String {
    let node = &flow.nodes[dispatch_index].name;
    match (&t.winner, t.revision) {
        (_, 0) => format!("reached the dispatch node '{node}'; no automatic dispatch rule ran: none are configured"),
        (Some((rule, engineer)), r) => {
            format!(
                "reached the dispatch node '{node}'; rule {rule} (revision {r}) matched engineer {engineer} after {} rule(s)",
                t.reached
            )
        }
        (None, r) => format!(
            "reached the dispatch node '{node}'; {} rule(s) of revision {r} evaluated, none yielded an engineer",
            t.reached
        ),
    }
}

/// Runs the tenant's rules inside the caller's transaction. The winner is claimed (its open
/// task counted against its capacity) and recorded on the rule; if another transaction filled
/// the engineer up meanwhile, the rules run again without it.
///
/// The rules are tried in order and the first that yields an engineer wins, so only the
/// engineers of the rules up to the winner matter: they are loaded for the first rule whose
/// conditions hold, then for more of them only when none of those yields one. The decision
/// and its trace are the same as with every candidate loaded.
///
/// `prepared` is a snapshot read before the transaction (`rules::prepare`): what dispatches
/// change is read again in the transaction (`rules::refresh`), so the decision is the one the
/// transaction would make on its own reads.
async fn run_rules<C: ConnectionTrait>(
    state: &Services,
    tx: &C,
    batch: &mut crate::store::Batch,
    caller: &Caller,
    facts: &OrderFacts,
    order_id: Option<&str>,
    prepared: Option<rules::Prepared>,
) -> Result<(rules::StoredTrace, Option<Chosen>)> {
    let tenant = caller.tenant_id();
    let mut p = match prepared {
        Some(mut p) => match rules::refresh(tx, tenant, &mut p).await? {
            true => p,
            false => rules::prepare(&state.rules, tx, tenant, facts, order_id, rules::Phase::InTransaction).await?,
        },
        None => rules::prepare(&state.rules, tx, tenant, facts, order_id, rules::Phase::InTransaction).await?,
    };
    // Engineers found full by a failed claim (kept full when more candidates are loaded).
    let mut full: Vec<String> = Vec::new();
    loop {
        let decision = evaluate(&p.set, facts, &p.cands);
        if !p.decides(&decision) {
            p.grow(tx, tenant, facts, order_id, rules::Phase::InTransaction, &full)
                .await?;
            continue;
        }
        let (set, cands) = (&p.set, &mut p.cands);
        let trace = rules::store_trace(set, facts, cands, &decision);
        let Some((ri, ei)) = decision.winner else {
            return Ok((trace, None));
        };
        let e = &cands.engineers[ei];
        if store::claim_engineer(tx, &e.id, tenant).await? {
            rules::record_pick(batch, tx, &set.rules[ri].spec.id, &e.id);
            let p = cands
                .partner_of(&e.tenant_id)
                .ok_or_else(|| Error::internal("winner without partner"))?;
            let downstream = state.tenants.require(tx, &e.tenant_id).await?;
            let chosen = Chosen {
                engineer_id: e.id.clone(),
                engineer_name: e.name.clone(),
                engineer_tenant: e.tenant_id.clone(),
                partner_id: p.id.clone(),
                legacy_account_id: p.legacy_account_id.clone(),
                outer_id: downstream.outer_tenant_id.clone().unwrap_or_default(),
                outer_name: downstream.name.clone(),
            };
            return Ok((trace, Some(chosen)));
        }
        // Full (or no longer assignable) since it was read: evaluate again without it.
        cands.engineers[ei].open_tasks = cands.engineers[ei].capacity;
        full.push(cands.engineers[ei].id.clone());
    }
}

pub struct AssignInput {
    pub work_order_id: String,
    pub engineer_id: String,
    pub expected_version: i32,
}

/// Versions start at 1: a version below is not a stale view of the order but a wrong input.
fn check_expected_version(v: i32) -> Result<()> {
    if v < 1 {
        return Err(Error::bad_input(
            "expectedVersion",
            "must be the order's version as read (1 or more)",
        ));
    }
    Ok(())
}

/// Loads an order of the caller's tenant and checks the caller's view of it is current.
async fn load_current<C: ConnectionTrait>(
    conn: &C,
    caller: &Caller,
    id: &str,
    expected_version: i32,
) -> Result<(work_order::Model, State)> {
    check_expected_version(expected_version)?;
    let order = work_order::Entity::find_by_id(id.to_owned())
        .one(conn)
        .await?
        .filter(|o| o.tenant_id == caller.tenant_id())
        .ok_or_else(|| Error::not_found("work order", id))?;
    if order.version != expected_version {
        return Err(stale(&order, expected_version));
    }
    let state = State::parse(&order.state).ok_or_else(|| Error::internal("stored state unknown"))?;
    Ok((order, state))
}

fn stale(order: &work_order::Model, expected: i32) -> Error {
    Error::Conflict(format!(
        "work order {} changed: it is at version {} ({}), not {expected}; reload it and try again",
        order.id, order.version, order.state
    ))
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
    fn assignee(&self) -> Assignee<'_> {
        Assignee {
            engineer_id: &self.engineer_id,
            partner_id: &self.partner_id,
            partner_legacy_account_id: self.legacy_account_id.as_deref(),
            downstream_outer_tenant_id: &self.outer_id,
            downstream_outer_tenant_name: &self.outer_name,
        }
    }
}

/// Resolves an engineer for an upstream caller: an engineer of a tenant that is not connected to
/// it does not exist for it (NOT_FOUND); an inactive engineer or partner is refused.
async fn assignable<C: ConnectionTrait>(
    state: &Services,
    conn: &C,
    caller: &Caller,
    engineer_id: &str,
) -> Result<(Chosen, i32)> {
    let not_found = || Error::not_found("engineer", engineer_id);
    let engineer = engineer::Entity::find_by_id(engineer_id.to_owned())
        .one(conn)
        .await?
        .ok_or_else(not_found)?;
    let partner = partner::Entity::find()
        .filter(partner::Column::UpstreamTenantId.eq(caller.tenant_id()))
        .filter(partner::Column::DownstreamTenantId.eq(engineer.tenant_id.as_str()))
        .one(conn)
        .await?
        .ok_or_else(not_found)?;
    if !partner.active {
        return Err(Error::bad_input(
            "engineerId",
            format!("partner '{}' is inactive", partner.name),
        ));
    }
    if !partner.allocated {
        return Err(Error::bad_input(
            "engineerId",
            format!("partner '{}' is not allocated to take orders", partner.name),
        ));
    }
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
    Ok((chosen, engineer.capacity))
}

/// Writes the assignment onto the in-memory order (as the conditional update does in the row).
fn apply(o: &mut work_order::Model, f: &DispatchFields, plan: &AssignmentPlan) {
    o.state = plan.state.as_str().to_owned();
    o.current_node = plan.current_node as i32;
    o.assign_user = f.assign_user.clone();
    o.assign_way = Some(f.assign_way.as_str().to_owned());
    o.assign_time = Some(f.assign_time);
    o.field_partner = Some(f.partner_id.clone());
    o.field_fwssf = f.legacy_account_id.clone();
    o.field_out_deal_user = Some(f.engineer_id.clone());
    o.field_downstream_outer_tenant_name = Some(f.downstream_outer_tenant_name.clone());
    o.field_downstream_outer_tenant_id = Some(f.downstream_outer_tenant_id.clone());
}

/// What every assignment writes besides the order row and the engineer claims: the previous
/// engineer's task revoked, today's count, the new task, and the history of each step.
#[allow(clippy::too_many_arguments)]
async fn write_assignment<C: ConnectionTrait>(
    tx: &C,
    order: &work_order::Model,
    chosen: &Chosen,
    plan: &AssignmentPlan,
    fields: &DispatchFields,
    previous: Option<&str>,
    history: &mut History<'_>,
    now: DateTime<Utc>,
) -> Result<()> {
    if previous.is_some()
        && let Some(t) = store::close_open_task(tx, &order.id, task_status::REVOKED, now).await?
    {
        history.record(
            EventKind::TaskRevoked,
            None,
            None,
            format!("task {} of engineer {} revoked", t.id, t.engineer_id),
            Some(json!({ "taskId": t.id, "engineerId": t.engineer_id })),
        );
        history.notify(tx, &t.engineer_id, notify_kind::TASK_REVOKED, &t.id)?;
    }
    rules::count_today(&mut history.batch, tx, &chosen.engineer_id);
    let record = api_fields_of(fields);
    for step in &plan.steps {
        match step.command {
            Command::IssueTask => {
                let (node_index, node_name) = plan.task_node.clone().unwrap_or_default();
                let t = issue_task(&mut history.batch, tx, order, chosen, node_index, &node_name, now);
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

fn with_fields(am: &mut work_order::ActiveModel, f: &DispatchFields) {
    am.assign_user = Set(f.assign_user.clone());
    am.assign_way = Set(Some(f.assign_way.as_str().to_owned()));
    am.assign_time = Set(Some(f.assign_time));
    am.field_partner = Set(Some(f.partner_id.clone()));
    am.field_fwssf = Set(f.legacy_account_id.clone());
    am.field_out_deal_user = Set(Some(f.engineer_id.clone()));
    am.field_downstream_outer_tenant_name = Set(Some(f.downstream_outer_tenant_name.clone()));
    am.field_downstream_outer_tenant_id = Set(Some(f.downstream_outer_tenant_id.clone()));
}

fn changes() -> work_order::ActiveModel {
    work_order::ActiveModel {
        id: NotSet,
        ..Default::default()
    }
}

/// Manual assignment (`AssignKind::Manual`) or reassignment (`AssignKind::Reassign`).
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
    let (order, current) = load_current(&state.db, &caller, &input.work_order_id, input.expected_version).await?;
    let flow = state
        .workflows
        .get(&state.db, caller.tenant_id(), &order.workflow_id)
        .await?;
    let dispatch_index = flow.require_dispatch_node()?;
    let plan = assignment::plan(current, kind, &flow.nodes, dispatch_index)?;
    let (chosen, capacity) = assignable(state, &state.db, &caller, &input.engineer_id).await?;
    let previous = order.field_out_deal_user.clone().filter(|_| current.has_engineer());
    if previous.as_deref() == Some(input.engineer_id.as_str()) {
        return Err(Error::bad_input(
            "engineerId",
            "the work order is already assigned to this engineer",
        ));
    }
    // Every dispatcher recorded in assign_user is a real user of this tenant.
    let dispatcher = entity::user::Entity::find_by_id(actor.subject.clone())
        .one(&state.db)
        .await?
        .filter(|u| u.tenant_id == caller.tenant_id())
        .ok_or_else(|| Error::Unauthenticated("the token's subject is not a user of its tenant".into()))?;
    let checked = CheckedAssignment {
        order,
        plan,
        chosen,
        capacity,
        previous,
        dispatcher_id: dispatcher.id,
        expected_version: input.expected_version,
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
    } = checked;
    let tx = begin_write(&state.writer).await?;
    let now = crate::domain::now();
    let fields = assignment::dispatch_fields(
        caller.tenant.activation_version,
        Method::Manual,
        Some(&dispatcher_id),
        &chosen.assignee(),
        now,
    );
    let mut am = changes();
    with_fields(&mut am, &fields);
    am.state = Set(plan.state.as_str().to_owned());
    am.current_node = Set(plan.current_node as i32);
    am.updated_at = Set(now);
    if !store::update_if_current(&tx, &order.id, order.version, &order.state, am).await? {
        return Err(stale(&order, expected_version));
    }
    // Counters are touched in ID order so that two reassignments crossing the same two
    // engineers cannot deadlock on PostgreSQL.
    let mut counters: Vec<(&str, bool)> = vec![(chosen.engineer_id.as_str(), true)];
    if let Some(old) = &previous {
        counters.push((old.as_str(), false));
    }
    counters.sort();
    for (engineer_id, claim) in counters {
        if !claim {
            store::release_engineer(&tx, engineer_id).await?;
        } else if !store::claim_engineer(&tx, engineer_id, caller.tenant_id()).await? {
            // Deactivated since it was read: say so; otherwise it is full.
            assignable(state, &tx, caller, engineer_id).await?;
            return Err(Error::bad_input(
                "engineerId",
                format!(
                    "engineer '{}' is at capacity ({capacity} open tasks)",
                    chosen.engineer_name
                ),
            ));
        }
    }
    let mut updated = order;
    updated.version += 1;
    updated.updated_at = now;
    apply(&mut updated, &fields, &plan);
    let mut history = History::new(&updated.id, caller.tenant_id(), Some(actor), now);
    write_assignment(
        &tx,
        &updated,
        &chosen,
        &plan,
        &fields,
        previous.as_deref(),
        &mut history,
        now,
    )
    .await?;
    commit(state, tx, history).await?;
    Ok(updated)
}

pub struct RetryInput {
    pub work_order_id: String,
    pub expected_version: i32,
}

/// Runs automatic dispatch again for an order waiting for manual assignment.
pub async fn retry_auto_dispatch(state: &Services, actor: &Actor, input: RetryInput) -> Result<work_order::Model> {
    let caller = Caller::load(state, actor).await?;
    caller.require_op("Mutation.retryAutoDispatch")?;
    let tx = begin_write(&state.writer).await?;
    let (order, current) = load_current(&tx, &caller, &input.work_order_id, input.expected_version).await?;
    let retry = transition(current, Command::RetryAutoDispatch)?;
    let now = crate::domain::now();
    let mut history = History::new(&order.id, caller.tenant_id(), Some(actor), now);
    history.step(retry, "automatic dispatch run again".into(), None);
    history.actor = None;
    let updated = dispatch_stored(state, &tx, &caller, &order, retry.to, &mut history).await?;
    let Some(updated) = updated else {
        return Err(stale(&order, input.expected_version));
    };
    commit(state, tx, history).await?;
    Ok(updated)
}

/// Runs the rules for a stored order now in `at` (AUTO_DISPATCH_ATTEMPTED) and settles it:
/// assigned by the winning rule, or waiting for manual assignment. `None` when the order
/// changed since it was read (the conditional update matched nothing).
async fn dispatch_stored(
    state: &Services,
    tx: &DatabaseTransaction,
    caller: &Caller,
    order: &work_order::Model,
    at: State,
    history: &mut History<'_>,
) -> Result<Option<work_order::Model>> {
    let flow = load_flow(tx, caller.tenant_id(), &order.workflow_id).await?;
    let dispatch_index = flow.require_dispatch_node()?;
    let facts = rules::facts_of(order)?;
    let (trace, chosen) = run_rules(state, tx, &mut history.batch, caller, &facts, Some(&order.id), None).await?;
    let now = history.at;
    history.record(
        EventKind::AutoDispatchAttempted,
        None,
        None,
        attempt_message(&flow, dispatch_index, &trace),
        Some(rules::summary_data(&trace)),
    );
    let mut updated = order.clone();
    updated.version += 1;
    updated.updated_at = now;
    updated.dispatch_trace = Some(rules::trace_json(&trace)?);
    let mut am = changes();
    am.updated_at = Set(now);
    am.dispatch_trace = Set(updated.dispatch_trace.clone());
    let assignment = settle_auto(
        &mut updated,
        at,
        chosen.as_ref(),
        &trace,
        (&flow, dispatch_index),
        caller.tenant.activation_version,
        history,
        now,
    )?;
    if let Some((_, fields)) = &assignment {
        with_fields(&mut am, fields);
        am.dispatch_rule_id = Set(updated.dispatch_rule_id.clone());
    }
    am.state = Set(updated.state.clone());
    am.current_node = Set(updated.current_node);
    if !store::update_if_current(tx, &order.id, order.version, &order.state, am).await? {
        return Ok(None);
    }
    if let (Some(ch), Some((plan, fields))) = (&chosen, &assignment) {
        write_assignment(tx, &updated, ch, plan, fields, None, history, now).await?;
    }
    Ok(Some(updated))
}

/// States an order passes through only inside one write transaction; found at rest, they
/// mean a dispatch was interrupted (a crash, or a writer older than this one).
pub const INTERRUPTED: [State; 2] = [State::Created, State::AutoDispatchAttempted];

/// Rolls one interrupted order forward (recovery): runs automatic dispatch for it as on
/// creation. The order is claimed with a row lock that other instances skip (PostgreSQL), so
/// one order is recovered once; false when it is not (or no longer) interrupted since `before`.
pub async fn roll_forward(state: &Services, order_id: &str, before: DateTime<Utc>) -> Result<bool> {
    use sea_orm::sea_query::{LockBehavior, LockType};
    let tx = begin_write(&state.writer).await?;
    let mut q = work_order::Entity::find_by_id(order_id.to_owned())
        .filter(work_order::Column::State.is_in(INTERRUPTED.map(State::as_str)))
        .filter(work_order::Column::UpdatedAt.lt(before));
    if tx.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
        q = q.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
    }
    let Some(order) = q.one(&tx).await? else {
        return Ok(false);
    };
    let current = State::parse(&order.state).ok_or_else(|| Error::internal("stored state unknown"))?;
    let caller = Caller::system(state, &tx, &order.tenant_id).await?;
    let now = crate::domain::now();
    let mut history = History::new(&order.id, &order.tenant_id, None, now);
    let at = if current == State::Created {
        let attempt = transition(current, Command::AttemptAutoDispatch)?;
        history.record(
            EventKind::Recovered,
            None,
            None,
            "dispatch was interrupted before it settled: automatic dispatch runs again".into(),
            None,
        );
        attempt.to
    } else {
        history.record(
            EventKind::Recovered,
            None,
            None,
            "automatic dispatch was interrupted before it settled: it runs again".into(),
            None,
        );
        current
    };
    if dispatch_stored(state, &tx, &caller, &order, at, &mut history)
        .await?
        .is_none()
    {
        return Ok(false);
    }
    commit(state, tx, history).await?;
    Ok(true)
}

/// What `explainDispatch` evaluates: an existing order, or one not created yet.
pub enum Explain {
    Order(String),
    Draft(Box<NewOrder>),
}

/// A dry run of automatic dispatch: the same snapshot and engine, nothing written or locked.
pub async fn explain_dispatch(state: &Services, actor: &Actor, what: Explain) -> Result<rules::TraceView> {
    let caller = Caller::load(state, actor).await?;
    caller.require_op("Query.explainDispatch")?;
    let (facts, order_id) = match what {
        Explain::Order(id) => {
            let order = work_order::Entity::find_by_id(id.clone())
                .one(&state.db)
                .await?
                .filter(|o| o.tenant_id == caller.tenant_id())
                .ok_or_else(|| Error::not_found("work order", &id))?;
            load_flow(&state.db, caller.tenant_id(), &order.workflow_id)
                .await?
                .require_dispatch_node()?;
            (rules::facts_of(&order)?, Some(order.id))
        }
        Explain::Draft(input) => {
            let (input, skills) = checked(*input)?;
            if !input.workflow_id.is_empty() {
                load_flow(&state.db, caller.tenant_id(), &input.workflow_id)
                    .await?
                    .require_dispatch_node()?;
            }
            (facts_of_input(&input, &skills), None)
        }
    };
    let set = state.rules.current(&state.db, caller.tenant_id()).await?;
    let cands = rules::candidates(
        &state.db,
        caller.tenant_id(),
        &set,
        &facts,
        order_id.as_deref(),
        rules::Reading::DRY_RUN,
    )
    .await?;
    let decision = evaluate(&set, &facts, &cands);
    let trace = rules::store_trace(&set, &facts, &cands, &decision);
    Ok(rules::render(&trace, &set, true))
}

fn api_fields_of(f: &DispatchFields) -> Value {
    assignment::api_fields(
        f.assign_user.as_deref(),
        Some(f.assign_way.as_str()),
        Some(f.assign_time),
        Some(&f.partner_id),
        f.legacy_account_id.as_deref(),
        Some(&f.engineer_id),
        Some(&f.downstream_outer_tenant_name),
        Some(&f.downstream_outer_tenant_id),
    )
}

/// The eight fields of a stored order, keyed by their API names.
pub fn api_fields(o: &work_order::Model) -> Value {
    assignment::api_fields(
        o.assign_user.as_deref(),
        o.assign_way.as_deref(),
        o.assign_time,
        o.field_partner.as_deref(),
        o.field_fwssf.as_deref(),
        o.field_out_deal_user.as_deref(),
        o.field_downstream_outer_tenant_name.as_deref(),
        o.field_downstream_outer_tenant_id.as_deref(),
    )
}

/// Queues the task of the engineer assigned to the order's node.
fn issue_task<C: ConnectionTrait>(
    batch: &mut crate::store::Batch,
    conn: &C,
    order: &work_order::Model,
    chosen: &Chosen,
    node_index: usize,
    node_name: &str,
    now: DateTime<Utc>,
) -> task::Model {
    let t = task::Model {
        id: ids::new(ids::TASK),
        work_order_id: order.id.clone(),
        tenant_id: order.tenant_id.clone(),
        engineer_id: chosen.engineer_id.clone(),
        downstream_tenant_id: chosen.engineer_tenant.clone(),
        node_index: node_index as i32,
        node_name: node_name.to_owned(),
        status: task_status::ASSIGNED.to_owned(),
        created_at: now,
        updated_at: now,
    };
    batch.add_query(conn, &task::Entity::insert(task::ActiveModel::from(t.clone())));
    t
}

pub struct CancelInput {
    pub work_order_id: String,
    pub expected_version: i32,
    pub reason: Option<String>,
}

pub async fn cancel_work_order(state: &Services, actor: &Actor, input: CancelInput) -> Result<work_order::Model> {
    let caller = Caller::load(state, actor).await?;
    caller.require_op("Mutation.cancelWorkOrder")?;
    let reason = text("reason", &input.reason, 1000)?;
    let tx = begin_write(&state.writer).await?;
    let (order, current) = load_current(&tx, &caller, &input.work_order_id, input.expected_version).await?;
    let step = transition(current, Command::Cancel)?;
    let now = crate::domain::now();
    let mut am = changes();
    am.state = Set(step.to.as_str().to_owned());
    am.updated_at = Set(now);
    if !store::update_if_current(&tx, &order.id, order.version, &order.state, am).await? {
        return Err(stale(&order, input.expected_version));
    }
    let mut history = History::new(&order.id, caller.tenant_id(), Some(actor), now);
    if current.has_engineer() {
        // The engineer's row before its notification counter, as every dispatch takes them
        // (claim, then notify), so a cancellation and a dispatch never wait on each other.
        if let Some(e) = &order.field_out_deal_user {
            store::release_engineer(&tx, e).await?;
        }
        if let Some(t) = store::close_open_task(&tx, &order.id, task_status::CANCELLED, now).await? {
            history.record(
                EventKind::TaskRevoked,
                None,
                None,
                format!("task {} of engineer {} cancelled with the order", t.id, t.engineer_id),
                Some(json!({ "taskId": t.id, "engineerId": t.engineer_id })),
            );
            history.notify(&tx, &t.engineer_id, notify_kind::TASK_REVOKED, &t.id)?;
        }
    }
    history.step(
        step,
        match &reason {
            Some(r) => format!("cancelled: {r}"),
            None => "cancelled".into(),
        },
        reason.as_ref().map(|r| json!({ "reason": r })),
    );
    commit(state, tx, history).await?;
    let mut updated = order;
    updated.version += 1;
    updated.state = step.to.as_str().to_owned();
    updated.updated_at = now;
    Ok(updated)
}

/// The engineer's own open task and its order, inside a write transaction. The order is
/// locked first (the lock order: order, then its tasks), then the task is read again: every
/// change of a task happens under its order's lock, so what is checked here holds until this
/// transaction commits. The task must still be open and be the order's current one (the order
/// still at the engineer's node, assigned to this engineer); otherwise CONFLICT.
async fn engineer_task<C: ConnectionTrait>(
    conn: &C,
    caller: &Caller,
    task_id: &str,
) -> Result<(task::Model, work_order::Model, State)> {
    let find_task = || async {
        task::Entity::find_by_id(task_id.to_owned())
            .one(conn)
            .await?
            .filter(|t| t.engineer_id == caller.actor.subject)
            .ok_or_else(|| Error::not_found("task", task_id))
    };
    let seen = find_task().await?;
    let order = store::lock_order(conn, &seen.work_order_id)
        .await?
        .ok_or_else(|| Error::internal("task without order"))?;
    let task = find_task().await?;
    if !task_status::OPEN.contains(&task.status.as_str()) {
        return Err(Error::Conflict(format!(
            "task {task_id} is {}: it is no longer open",
            task.status
        )));
    }
    let state = State::parse(&order.state).ok_or_else(|| Error::internal("stored state unknown"))?;
    let current =
        state == State::DownstreamTask && order.field_out_deal_user.as_deref() == Some(task.engineer_id.as_str());
    if !current {
        return Err(Error::Conflict(format!(
            "task {task_id} is no longer the work order's current task (the order is {state})"
        )));
    }
    Ok((task, order, state))
}

/// ENGINEER: accepts its task.
pub async fn accept_task(state: &Services, actor: &Actor, task_id: &str) -> Result<task::Model> {
    let caller = Caller::load(state, actor).await?;
    caller.require_op("Mutation.acceptTask")?;
    let tx = begin_write(&state.writer).await?;
    let (task, order, _) = engineer_task(&tx, &caller, task_id).await?;
    if task.status == task_status::ACCEPTED {
        return Err(Error::Conflict(format!("task {task_id} is already accepted")));
    }
    let now = crate::domain::now();
    let mut am = changes();
    am.updated_at = Set(now);
    if !store::update_if_current(&tx, &order.id, order.version, &order.state, am).await? {
        return Err(Error::Conflict("the work order changed meanwhile: try again".into()));
    }
    if !store::set_task_status(&tx, &task.id, &[task_status::ASSIGNED], task_status::ACCEPTED, now).await? {
        return Err(Error::Conflict(format!("task {task_id} changed meanwhile: reload it")));
    }
    let mut history = History::new(&order.id, &order.tenant_id, Some(actor), now);
    history.record(
        EventKind::TaskAccepted,
        None,
        None,
        format!("task {} accepted by the engineer", task.id),
        Some(json!({ "taskId": task.id })),
    );
    history.notify(&tx, &task.engineer_id, notify_kind::TASK_UPDATED, &task.id)?;
    commit(state, tx, history).await?;
    Ok(task::Model {
        status: task_status::ACCEPTED.to_owned(),
        updated_at: now,
        ..task
    })
}

/// ENGINEER: declines its task (returned as declined). The order goes back to manual dispatch,
/// and automatic dispatch runs again at once, never to an engineer who declined this order.
pub async fn decline_task(
    state: &Services,
    actor: &Actor,
    task_id: &str,
    reason: Option<String>,
) -> Result<task::Model> {
    // A decline writes two engineers (the decliner's release, the rules' pick) in an order
    // that cannot follow their IDs; when PostgreSQL breaks a deadlock it undoes the whole
    // transaction, which is then simply run again.
    let mut attempt = 0;
    loop {
        match decline_once(state, actor, task_id, reason.clone()).await {
            Err(Error::Raced) if attempt < 3 => attempt += 1,
            other => return other,
        }
    }
}

async fn decline_once(state: &Services, actor: &Actor, task_id: &str, reason: Option<String>) -> Result<task::Model> {
    let caller = Caller::load(state, actor).await?;
    caller.require_op("Mutation.declineTask")?;
    let reason = text("reason", &reason, 1000)?;
    let tx = begin_write(&state.writer).await?;
    let (task, order, current) = engineer_task(&tx, &caller, task_id).await?;
    let decline = transition(current, Command::Decline)?;
    let now = crate::domain::now();
    let upstream = Caller {
        actor: Actor {
            subject: actor.subject.clone(),
            tenant: order.tenant_id.clone(),
            role: crate::domain::Role::Engineer,
        },
        tenant: state.tenants.require(&tx, &order.tenant_id).await?,
        kind: TenantKind::Upstream,
    };
    let flow = load_flow(&tx, &order.tenant_id, &order.workflow_id).await?;
    let dispatch_index = flow.require_dispatch_node()?;

    if !store::set_task_status(&tx, &task.id, &task_status::OPEN, task_status::DECLINED, now).await? {
        return Err(Error::Conflict(format!("task {task_id} changed meanwhile: reload it")));
    }
    let mut history = History::new(&order.id, &order.tenant_id, Some(actor), now);
    history.step(
        decline,
        match &reason {
            Some(r) => format!("engineer {} declined task {}: {r}", task.engineer_id, task.id),
            None => format!("engineer {} declined task {}", task.engineer_id, task.id),
        },
        Some(json!({ "taskId": task.id, "engineerId": task.engineer_id, "reason": reason })),
    );

    // Back at the dispatch node, without the engineer who declined (its task is DECLINED
    // already). The rules lock their cursors before any engineer or notification counter is
    // written, in the same order as on creation, so concurrent dispatches never deadlock.
    let retry = transition(decline.to, Command::RetryAutoDispatch)?;
    let facts = rules::facts_of(&order)?;
    let (trace, chosen) = run_rules(state, &tx, &mut history.batch, &upstream, &facts, Some(&order.id), None).await?;
    store::release_engineer(&tx, &task.engineer_id).await?;
    history.notify(&tx, &task.engineer_id, notify_kind::TASK_UPDATED, &task.id)?;
    history.actor = None;
    history.step(retry, "automatic dispatch runs again after the decline".into(), None);
    history.record(
        EventKind::AutoDispatchAttempted,
        None,
        None,
        attempt_message(&flow, dispatch_index, &trace),
        Some(rules::summary_data(&trace)),
    );
    let mut updated = work_order::Model {
        version: order.version + 1,
        updated_at: now,
        current_node: dispatch_index as i32,
        dispatch_trace: Some(rules::trace_json(&trace)?),
        dispatch_rule_id: None,
        assign_user: None,
        assign_way: None,
        assign_time: None,
        field_partner: None,
        field_fwssf: None,
        field_out_deal_user: None,
        field_downstream_outer_tenant_name: None,
        field_downstream_outer_tenant_id: None,
        ..order.clone()
    };
    let assignment = settle_auto(
        &mut updated,
        retry.to,
        chosen.as_ref(),
        &trace,
        (&flow, dispatch_index),
        upstream.tenant.activation_version,
        &mut history,
        now,
    )?;
    let mut am = work_order::ActiveModel::from(updated.clone()).reset_all();
    am.id = NotSet;
    am.version = NotSet;
    am.created_at = NotSet;
    if !store::update_if_current(&tx, &order.id, order.version, &order.state, am).await? {
        return Err(Error::Conflict("the work order changed meanwhile: try again".into()));
    }
    if let (Some(ch), Some((plan, fields))) = (&chosen, &assignment) {
        write_assignment(&tx, &updated, ch, plan, fields, None, &mut history, now).await?;
    }
    commit(state, tx, history).await?;
    Ok(task::Model {
        status: task_status::DECLINED.to_owned(),
        updated_at: now,
        ..task
    })
}
