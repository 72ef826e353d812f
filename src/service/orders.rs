//! Work orders: creation (into the workflow, through automatic dispatch to manual), manual
//! assignment, reassignment and cancellation. Every write is one transaction.
use chrono::{DateTime, Utc};
use entity::{engineer, partner, task, work_order, work_order_event, workflow};
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, NotSet, QueryFilter, Set};
use serde_json::{Value, json};

use crate::app::AppState;
use crate::auth::Actor;
use crate::domain::assignment::{self, AssignKind, Assignee, DispatchFields, Method};
use crate::domain::work_order::{Command, State, Transition, transition};
use crate::domain::workflow::{self as wf, Node, WorkflowKind};
use crate::domain::{Priority, TenantKind, validate};
use crate::error::{Error, Result};
use crate::ids;
use crate::store::begin_write;
use crate::store::orders::{self as store, task_status};

use super::Caller;
use super::tenants::kind_of;

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
    rows: Vec<work_order_event::ActiveModel>,
}

impl<'a> History<'a> {
    fn new(order_id: &'a str, tenant_id: &'a str, actor: Option<&'a Actor>, at: DateTime<Utc>) -> Self {
        History {
            order_id,
            tenant_id,
            actor,
            at,
            rows: Vec::new(),
        }
    }

    fn record(&mut self, kind: &str, from: Option<State>, to: Option<State>, message: String, data: Option<Value>) {
        self.rows.push(work_order_event::ActiveModel {
            id: Set(ids::new(ids::EVENT)),
            work_order_id: Set(self.order_id.to_owned()),
            tenant_id: Set(self.tenant_id.to_owned()),
            kind: Set(kind.to_owned()),
            from_state: Set(from.map(|s| s.as_str().to_owned())),
            to_state: Set(to.map(|s| s.as_str().to_owned())),
            actor_role: Set(self.actor.map(|a| a.role.as_str().to_owned())),
            actor_id: Set(self.actor.map(|a| a.subject.clone())),
            message: Set(message),
            data: Set(data),
            at: Set(self.at),
        });
    }

    fn step(&mut self, t: Transition, message: String, data: Option<Value>) {
        self.record(t.command.event_kind(), Some(t.from), Some(t.to), message, data);
    }
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

pub async fn create_work_order(state: &AppState, actor: &Actor, input: NewOrder) -> Result<work_order::Model> {
    let caller = Caller::load(state, actor).await?;
    caller.require_dispatcher("createWorkOrder")?;
    check_new_order(&input)?;
    let skills = validate::skills(&input.required_skills).map_err(|m| Error::bad_input("requiredSkills", m))?;
    let description = text("description", &input.description, MAX_DESCRIPTION)?;
    let customer = text("customer", &input.customer, MAX_TEXT)?;
    let product = text("product", &input.product, MAX_TEXT)?;
    let service_type = text("serviceType", &input.service_type, MAX_TEXT)?;

    let flow = load_flow(&state.db, caller.tenant_id(), &input.workflow_id).await?;
    let dispatch_index = flow.require_dispatch_node()?;

    let now = crate::domain::now();
    let id = ids::new(ids::WORK_ORDER);
    let mut history = History::new(&id, caller.tenant_id(), Some(actor), now);
    history.record(
        "CREATED",
        None,
        Some(State::Created),
        format!("created in workflow '{}'", flow.model.name),
        None,
    );
    // The order arrives at the dispatch node: automatic rules run first (none exist yet).
    let attempt = transition(State::Created, Command::AttemptAutoDispatch)?;
    history.step(
        attempt,
        format!(
            "reached the dispatch node '{}'; no automatic dispatch rule ran: none are configured",
            flow.nodes[dispatch_index].name
        ),
        Some(json!({ "rulesEvaluated": 0 })),
    );
    let manual = transition(attempt.to, Command::RouteToManual)?;
    history.step(manual, "no rule matched: waiting for manual assignment".into(), None);

    let model = work_order::ActiveModel {
        id: Set(id.clone()),
        tenant_id: Set(caller.tenant_id().to_owned()),
        workflow_id: Set(flow.model.id.clone()),
        external_ref: Set(input.external_ref.clone()),
        title: Set(input.title.trim().to_owned()),
        description: Set(description),
        customer: Set(customer),
        state: Set(manual.to.as_str().to_owned()),
        current_node: Set(dispatch_index as i32),
        version: Set(1),
        region: Set(input.region),
        product: Set(product),
        service_type: Set(service_type),
        priority: Set(input.priority.as_str().to_owned()),
        required_skills: Set(json!(skills)),
        custom_fields: Set(input.custom_fields),
        assign_user: Set(None),
        assign_way: Set(None),
        assign_time: Set(None),
        field_partner: Set(None),
        field_fwssf: Set(None),
        field_out_deal_user: Set(None),
        field_downstream_outer_tenant_name: Set(None),
        field_downstream_outer_tenant_id: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    };
    let tx = begin_write(&state.db).await?;
    let order = model.insert(&tx).await.map_err(|e| match Error::from(e) {
        Error::Conflict(_) => Error::Conflict(format!(
            "externalRef '{}' is already used by another work order of this tenant",
            input.external_ref.as_deref().unwrap_or_default()
        )),
        other => other,
    })?;
    store::insert_events(&tx, history.rows).await?;
    tx.commit().await?;
    Ok(order)
}

pub struct AssignInput {
    pub work_order_id: String,
    pub engineer_id: String,
    pub expected_version: i32,
}

/// Loads an order of the caller's tenant and checks the caller's view of it is current.
async fn load_current<C: ConnectionTrait>(
    conn: &C,
    caller: &Caller,
    id: &str,
    expected_version: i32,
) -> Result<(work_order::Model, State)> {
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

/// An engineer the caller's tenant may assign, with the partner and connected enterprise.
pub struct Candidate {
    pub engineer: engineer::Model,
    pub partner: partner::Model,
    pub outer_id: String,
    pub outer_name: String,
}

/// Resolves an engineer for an upstream caller: an engineer of a tenant that is not connected to
/// it does not exist for it (NOT_FOUND); an inactive engineer or partner is refused.
async fn assignable<C: ConnectionTrait>(
    state: &AppState,
    conn: &C,
    caller: &Caller,
    engineer_id: &str,
) -> Result<Candidate> {
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
    let downstream = state.tenants.require(&state.db, &engineer.tenant_id).await?;
    if kind_of(&downstream) != TenantKind::Downstream {
        return Err(not_found());
    }
    Ok(Candidate {
        outer_id: downstream.outer_tenant_id.clone().unwrap_or_default(),
        outer_name: downstream.name.clone(),
        engineer,
        partner,
    })
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
    state: &AppState,
    actor: &Actor,
    input: AssignInput,
    kind: AssignKind,
) -> Result<work_order::Model> {
    let op = if kind == AssignKind::Reassign {
        "reassignEngineer"
    } else {
        "assignEngineer"
    };
    let caller = Caller::load(state, actor).await?;
    caller.require_dispatcher(op)?;
    let tx = begin_write(&state.db).await?;
    let (order, current) = load_current(&tx, &caller, &input.work_order_id, input.expected_version).await?;
    let flow = load_flow(&tx, caller.tenant_id(), &order.workflow_id).await?;
    let dispatch_index = flow.require_dispatch_node()?;
    let plan = assignment::plan(current, kind, &flow.nodes, dispatch_index)?;
    let candidate = assignable(state, &tx, &caller, &input.engineer_id).await?;
    let previous = order.field_out_deal_user.clone().filter(|_| current.has_engineer());
    if previous.as_deref() == Some(input.engineer_id.as_str()) {
        return Err(Error::bad_input(
            "engineerId",
            "the work order is already assigned to this engineer",
        ));
    }
    // Every dispatcher recorded in assign_user is a real user of this tenant.
    let dispatcher = entity::user::Entity::find_by_id(actor.subject.clone())
        .one(&tx)
        .await?
        .filter(|u| u.tenant_id == caller.tenant_id())
        .ok_or_else(|| Error::Unauthenticated("the token's subject is not a user of its tenant".into()))?;

    let now = crate::domain::now();
    let fields = assignment::dispatch_fields(
        caller.tenant.activation_version,
        Method::Manual,
        Some(&dispatcher.id),
        &Assignee {
            engineer_id: &candidate.engineer.id,
            partner_id: &candidate.partner.id,
            partner_legacy_account_id: candidate.partner.legacy_account_id.as_deref(),
            downstream_outer_tenant_id: &candidate.outer_id,
            downstream_outer_tenant_name: &candidate.outer_name,
        },
        now,
    );
    let mut am = changes();
    with_fields(&mut am, &fields);
    am.state = Set(plan.state.as_str().to_owned());
    am.current_node = Set(plan.current_node as i32);
    am.updated_at = Set(now);
    if !store::update_if_current(&tx, &order.id, order.version, &order.state, am).await? {
        return Err(stale(&order, input.expected_version));
    }

    let mut history = History::new(&order.id, caller.tenant_id(), Some(actor), now);
    // Counters are touched in ID order so that two reassignments crossing the same two
    // engineers cannot deadlock on PostgreSQL.
    if previous.is_some()
        && let Some(t) = store::close_open_task(&tx, &order.id, task_status::REVOKED, now).await?
    {
        history.record(
            "TASK_REVOKED",
            None,
            None,
            format!("task {} of engineer {} revoked", t.id, t.engineer_id),
            Some(json!({ "taskId": t.id, "engineerId": t.engineer_id })),
        );
    }
    let mut counters: Vec<(&str, bool)> = vec![(candidate.engineer.id.as_str(), true)];
    if let Some(old) = &previous {
        counters.push((old.as_str(), false));
    }
    counters.sort();
    for (engineer_id, claim) in counters {
        if !claim {
            store::release_engineer(&tx, engineer_id).await?;
        } else if !store::claim_engineer(&tx, engineer_id).await? {
            return Err(Error::bad_input(
                "engineerId",
                format!(
                    "engineer '{}' is at capacity ({} open tasks)",
                    candidate.engineer.name, candidate.engineer.capacity
                ),
            ));
        }
    }

    let record = api_fields_of(&fields);
    for step in &plan.steps {
        match step.command {
            Command::IssueTask => {
                let (node_index, node_name) = plan.task_node.clone().unwrap_or_default();
                let t = issue_task(&tx, &order, &candidate, node_index, &node_name, now).await?;
                history.step(
                    *step,
                    format!(
                        "task {} issued to engineer '{}' for node '{node_name}'",
                        t.id, candidate.engineer.name
                    ),
                    Some(json!({ "taskId": t.id })),
                );
            }
            _ => history.step(
                *step,
                match &previous {
                    Some(old) => format!(
                        "engineer {old} replaced by '{}' ({})",
                        candidate.engineer.name, candidate.engineer.id
                    ),
                    None => format!(
                        "engineer '{}' ({}) assigned manually",
                        candidate.engineer.name, candidate.engineer.id
                    ),
                },
                Some(record.clone()),
            ),
        }
    }
    store::insert_events(&tx, history.rows).await?;
    tx.commit().await?;

    let mut updated = order;
    updated.version += 1;
    updated.state = plan.state.as_str().to_owned();
    updated.current_node = plan.current_node as i32;
    updated.updated_at = now;
    updated.assign_user = fields.assign_user;
    updated.assign_way = Some(fields.assign_way.as_str().to_owned());
    updated.assign_time = Some(fields.assign_time);
    updated.field_partner = Some(fields.partner_id);
    updated.field_fwssf = fields.legacy_account_id;
    updated.field_out_deal_user = Some(fields.engineer_id);
    updated.field_downstream_outer_tenant_name = Some(fields.downstream_outer_tenant_name);
    updated.field_downstream_outer_tenant_id = Some(fields.downstream_outer_tenant_id);
    Ok(updated)
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

async fn issue_task<C: ConnectionTrait>(
    conn: &C,
    order: &work_order::Model,
    candidate: &Candidate,
    node_index: usize,
    node_name: &str,
    now: DateTime<Utc>,
) -> Result<task::Model> {
    let t = task::ActiveModel {
        id: Set(ids::new(ids::TASK)),
        work_order_id: Set(order.id.clone()),
        tenant_id: Set(order.tenant_id.clone()),
        engineer_id: Set(candidate.engineer.id.clone()),
        downstream_tenant_id: Set(candidate.engineer.tenant_id.clone()),
        node_index: Set(node_index as i32),
        node_name: Set(node_name.to_owned()),
        status: Set(task_status::ASSIGNED.to_owned()),
        created_at: Set(now),
        updated_at: Set(now),
    };
    Ok(t.insert(conn).await?)
}

pub struct CancelInput {
    pub work_order_id: String,
    pub expected_version: i32,
    pub reason: Option<String>,
}

pub async fn cancel_work_order(state: &AppState, actor: &Actor, input: CancelInput) -> Result<work_order::Model> {
    let caller = Caller::load(state, actor).await?;
    caller.require_dispatcher("cancelWorkOrder")?;
    let reason = text("reason", &input.reason, 1000)?;
    let tx = begin_write(&state.db).await?;
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
        if let Some(t) = store::close_open_task(&tx, &order.id, task_status::CANCELLED, now).await? {
            history.record(
                "TASK_REVOKED",
                None,
                None,
                format!("task {} of engineer {} cancelled with the order", t.id, t.engineer_id),
                Some(json!({ "taskId": t.id, "engineerId": t.engineer_id })),
            );
        }
        if let Some(e) = &order.field_out_deal_user {
            store::release_engineer(&tx, e).await?;
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
    store::insert_events(&tx, history.rows).await?;
    tx.commit().await?;
    let mut updated = order;
    updated.version += 1;
    updated.state = step.to.as_str().to_owned();
    updated.updated_at = now;
    Ok(updated)
}
