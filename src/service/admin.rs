//! Setting up a tenant: workflows, service providers (partners, legacy accounts), engineers, users.
use entity::{account, engineer, partner, user, workflow};
use sea_orm::{ActiveModelTrait, EntityTrait, Set};
use serde_json::json;

use crate::auth::Actor;
use crate::domain::workflow::{self as wf, AcceptTimeout, Acceptance, Node, NodeKind, Performer, WorkflowKind};
use crate::domain::{Role, TenantKind, keeps_legacy_accounts, validate};
use crate::error::{Error, Result};
use crate::ids;
use crate::service::Services;
use crate::store::lookup::{self, ById};

use super::Caller;
use super::tenants::kind_of;

pub const MAX_CAPACITY: i32 = 1000;

/// A name as given for a partner, engineer or user: checked, trimmed.
fn checked_name(n: &str) -> Result<String> {
    validate::name(n, 200).map_err(|m| Error::bad_input("name", m))?;
    Ok(n.trim().to_owned())
}
pub const DEFAULT_CAPACITY: i32 = 10;

pub struct NewWorkflow {
    pub name: String,
    pub kind: WorkflowKind,
    pub nodes: Vec<NodeInput>,
}

/// A workflow node as given.
pub struct NodeInput {
    pub name: String,
    pub kind: NodeKind,
    pub performer: Performer,
    /// An ISO 8601 duration (`PT30M`).
    pub accept_within: Option<String>,
    pub on_accept_timeout: Option<AcceptTimeout>,
}

/// A node as given, its deadline read (`nodes[i].acceptWithin` names a bad one).
fn node_of(i: usize, n: NodeInput) -> Result<Node> {
    let acceptance = match (n.accept_within, n.on_accept_timeout) {
        (Some(d), on) => Some(Acceptance {
            within_secs: validate::duration(&d).map_err(|m| Error::bad_input(format!("nodes[{i}].acceptWithin"), m))?,
            on_timeout: on.unwrap_or(AcceptTimeout::AutoAccept),
        }),
        (None, Some(_)) => {
            return Err(Error::bad_input(
                format!("nodes[{i}].onAcceptTimeout"),
                "give acceptWithin too: what happens when no deadline passes is nothing",
            ));
        }
        (None, None) => None,
    };
    Ok(Node {
        name: n.name.trim().to_owned(),
        kind: n.kind,
        performer: n.performer,
        acceptance,
    })
}

#[tracing::instrument(name = "service.create_workflow", level = "debug", skip_all)]
pub async fn create_workflow(state: &Services, actor: &Actor, input: NewWorkflow) -> Result<workflow::Model> {
    let caller = Caller::load(state, actor).await?;
    caller.require_op("Mutation.createWorkflow")?;
    validate::name(&input.name, 200).map_err(|m| Error::bad_input("name", m))?;
    let nodes: Vec<Node> = input
        .nodes
        .into_iter()
        .enumerate()
        .map(|(i, n)| node_of(i, n))
        .collect::<Result<_>>()?;
    wf::validate(input.kind, &nodes).map_err(|e| Error::bad_input(e.field, e.message))?;
    let model = workflow::ActiveModel {
        id: Set(ids::new(ids::WORKFLOW)),
        tenant_id: Set(caller.tenant_id().to_owned()),
        name: Set(input.name.trim().to_owned()),
        kind: Set(input.kind.as_str().to_owned()),
        nodes: Set(serde_json::to_value(&nodes).map_err(Error::internal)?),
        created_at: Set(crate::domain::now()),
    };
    Ok(model.insert(&state.writer).await?)
}

pub struct ConnectProvider {
    pub downstream_tenant_id: Option<String>,
    pub outer_tenant_id: Option<String>,
    pub name: Option<String>,
    pub active: bool,
    pub allocated: bool,
}

/// Connects a downstream tenant as a partner; for tenants activated before v880 the service
/// provider is also kept as a legacy Account.
#[tracing::instrument(name = "service.connect_service_provider", level = "debug", skip_all)]
pub async fn connect_service_provider(
    state: &Services,
    actor: &Actor,
    input: ConnectProvider,
) -> Result<partner::Model> {
    let caller = Caller::load(state, actor).await?;
    caller.require_op("Mutation.connectServiceProvider")?;
    let downstream = match (&input.downstream_tenant_id, &input.outer_tenant_id) {
        (Some(id), None) => state.tenants.get(&state.db, id).await?,
        (None, Some(outer)) => lookup::tenant_by_outer_id(&state.db, outer).await?.map(Into::into),
        _ => {
            return Err(Error::bad_input(
                "downstreamTenantId",
                "give exactly one of downstreamTenantId and outerTenantId",
            ));
        }
    };
    let not_found = || Error::NotFound("no downstream (connected) tenant with this id".into());
    let downstream = downstream.ok_or_else(not_found)?;
    if kind_of(&downstream)? != TenantKind::Downstream {
        return Err(not_found());
    }
    let name = match &input.name {
        Some(n) => {
            validate::name(n, 200).map_err(|m| Error::bad_input("name", m))?;
            n.trim().to_owned()
        }
        None => downstream.name.clone(),
    };
    let now = crate::domain::now();
    let tx = crate::store::begin_write(&state.writer).await?;
    let legacy_account_id = if keeps_legacy_accounts(caller.tenant.activation_version) {
        let acc = account::ActiveModel {
            id: Set(ids::new(ids::ACCOUNT)),
            upstream_tenant_id: Set(caller.tenant_id().to_owned()),
            downstream_tenant_id: Set(downstream.id.clone()),
            name: Set(name.clone()),
            created_at: Set(now),
        };
        Some(acc.insert(&tx).await.map_err(already_connected)?.id)
    } else {
        None
    };
    let p = partner::ActiveModel {
        id: Set(ids::new(ids::PARTNER)),
        upstream_tenant_id: Set(caller.tenant_id().to_owned()),
        downstream_tenant_id: Set(downstream.id.clone()),
        name: Set(name),
        active: Set(input.active),
        allocated: Set(input.allocated),
        legacy_account_id: Set(legacy_account_id),
        created_at: Set(now),
    }
    .insert(&tx)
    .await
    .map_err(already_connected)?;
    tx.commit().await?;
    state.links.add(&p.upstream_tenant_id, &p.downstream_tenant_id);
    Ok(p)
}

fn already_connected(e: sea_orm::DbErr) -> Error {
    match Error::from(e) {
        Error::Conflict(_) => Error::Conflict("this service provider is already connected".into()),
        other => other,
    }
}

pub struct PartnerChange {
    pub partner_id: String,
    pub name: Option<String>,
    pub active: Option<bool>,
    pub allocated: Option<bool>,
}

#[tracing::instrument(name = "service.update_partner", level = "debug", skip_all)]
pub async fn update_partner(state: &Services, actor: &Actor, input: PartnerChange) -> Result<partner::Model> {
    let caller = Caller::load(state, actor).await?;
    caller.require_op("Mutation.updatePartner")?;
    let p = partner::Model::by_id(&state.db, &input.partner_id)
        .await?
        .filter(|p| p.upstream_tenant_id == caller.tenant_id())
        .ok_or_else(|| Error::not_found("partner", &input.partner_id))?;
    let mut am: partner::ActiveModel = p.into();
    if let Some(n) = input.name {
        am.name = Set(checked_name(&n)?);
    }
    if let Some(a) = input.active {
        am.active = Set(a);
    }
    if let Some(a) = input.allocated {
        am.allocated = Set(a);
    }
    Ok(am.update(&state.writer).await?)
}

pub struct EngineerSpec {
    pub name: Option<String>,
    pub active: Option<bool>,
    pub skills: Option<Vec<String>>,
    pub regions: Option<Vec<String>>,
    pub capacity: Option<i32>,
}

fn check_regions(regions: &[String]) -> Result<Vec<String>> {
    if regions.len() > 256 {
        return Err(Error::bad_input("regions", "at most 256 regions"));
    }
    let mut out = Vec::with_capacity(regions.len());
    for (i, r) in regions.iter().enumerate() {
        validate::region(r).map_err(|m| Error::bad_input(format!("regions[{i}]"), m))?;
        if !out.contains(r) {
            out.push(r.clone());
        }
    }
    Ok(out)
}

fn check_capacity(c: i32) -> Result<i32> {
    if (0..=MAX_CAPACITY).contains(&c) {
        Ok(c)
    } else {
        Err(Error::bad_input(
            "capacity",
            format!("must be between 0 and {MAX_CAPACITY}"),
        ))
    }
}

/// How long the token handed out with a new engineer or user lasts: long enough to set up the
/// app, short enough that a leaked one expires; `dispatchd token` mints others.
pub const FIRST_TOKEN_TTL: chrono::TimeDelta = chrono::TimeDelta::hours(24);

/// A new engineer or user, with a first token for it (of the caller's tenant, in its role).
pub struct WithToken<M> {
    pub row: M,
    pub token: String,
}

fn first_token(state: &Services, caller: &Caller, subject: &str, role: Role) -> String {
    let who = Actor {
        subject: subject.to_owned(),
        tenant: caller.tenant_id().to_owned(),
        role,
    };
    state.keys.mint(&who, FIRST_TOKEN_TTL)
}

/// ADMIN or INTEGRATION of a downstream tenant: a new engineer, with a token for its app.
#[tracing::instrument(name = "service.add_engineer", level = "debug", skip_all)]
pub async fn add_engineer(state: &Services, actor: &Actor, spec: EngineerSpec) -> Result<WithToken<engineer::Model>> {
    let caller = Caller::load(state, actor).await?;
    caller.require_op("Mutation.addEngineer")?;
    let name = spec.name.unwrap_or_default();
    validate::name(&name, 200).map_err(|m| Error::bad_input("name", m))?;
    let skills = validate::skills(&spec.skills.unwrap_or_default()).map_err(|m| Error::bad_input("skills", m))?;
    let regions = check_regions(&spec.regions.unwrap_or_default())?;
    let capacity = check_capacity(spec.capacity.unwrap_or(DEFAULT_CAPACITY))?;
    let model = engineer::ActiveModel {
        id: Set(ids::new(ids::ENGINEER)),
        tenant_id: Set(caller.tenant_id().to_owned()),
        name: Set(name.trim().to_owned()),
        active: Set(spec.active.unwrap_or(true)),
        skills: Set(json!(skills)),
        regions: Set(json!(regions)),
        capacity: Set(capacity),
        open_tasks: Set(0),
        created_at: Set(crate::domain::now()),
    };
    let row = model.insert(&state.writer).await?;
    let token = first_token(state, &caller, &row.id, Role::Engineer);
    Ok(WithToken { row, token })
}

#[tracing::instrument(name = "service.update_engineer", level = "debug", skip_all)]
pub async fn update_engineer(
    state: &Services,
    actor: &Actor,
    engineer_id: &str,
    spec: EngineerSpec,
) -> Result<engineer::Model> {
    let caller = Caller::load(state, actor).await?;
    caller.require_op("Mutation.updateEngineer")?;
    let e = engineer::Model::by_id(&state.db, engineer_id)
        .await?
        .filter(|e| e.tenant_id == caller.tenant_id())
        .ok_or_else(|| Error::not_found("engineer", engineer_id))?;
    let e_active = e.active;
    let mut am: engineer::ActiveModel = e.into();
    if let Some(n) = spec.name {
        am.name = Set(checked_name(&n)?);
    }
    if let Some(s) = spec.skills {
        am.skills = Set(json!(validate::skills(&s).map_err(|m| Error::bad_input("skills", m))?));
    }
    if let Some(r) = spec.regions {
        am.regions = Set(json!(check_regions(&r)?));
    }
    if let Some(c) = spec.capacity {
        am.capacity = Set(check_capacity(c)?);
    }
    let rights_changed = spec.active.is_some_and(|a| a != e_active);
    if let Some(a) = spec.active {
        am.active = Set(a);
    }
    save_principal(state, am, engineer_id, rights_changed).await
}

/// Saves a change of a user or an engineer. When it changes whether the subject may act,
/// every instance forgets what it knew of the subject's rights (at commit, on PostgreSQL) and
/// the subject's WebSocket connections check again: a deactivated subject loses access at once.
async fn save_principal<A>(
    state: &Services,
    am: A,
    subject: &str,
    rights_changed: bool,
) -> Result<<A::Entity as EntityTrait>::Model>
where
    A: ActiveModelTrait + sea_orm::ActiveModelBehavior + Send,
    <A::Entity as EntityTrait>::Model: sea_orm::IntoActiveModel<A>,
{
    let tx = crate::store::begin_write(&state.writer).await?;
    let saved = am.update(&tx).await?;
    let subjects = [subject.to_owned()];
    if rights_changed {
        crate::notify::pg::revoke_in(&tx, &state.hub, &subjects).await?;
    }
    tx.commit().await?;
    if rights_changed {
        state.hub.revoke(&subjects);
    }
    Ok(saved)
}

pub struct UserChange {
    pub user_id: String,
    pub name: Option<String>,
    pub active: Option<bool>,
}

/// ADMIN or INTEGRATION: renames, deactivates or reactivates a user of its tenant. A
/// deactivated user's tokens stop working at once (HTTP and WebSocket alike).
#[tracing::instrument(name = "service.update_user", level = "debug", skip_all)]
pub async fn update_user(state: &Services, actor: &Actor, change: UserChange) -> Result<user::Model> {
    let caller = Caller::load(state, actor).await?;
    caller.require_op("Mutation.updateUser")?;
    let u = user::Model::by_id(&state.db, &change.user_id)
        .await?
        .filter(|u| u.tenant_id == caller.tenant_id())
        .ok_or_else(|| Error::not_found("user", &change.user_id))?;
    if change.active == Some(false) && u.id == actor.subject {
        return Err(Error::bad_input(
            "active",
            "a user cannot deactivate itself (another ADMIN of the tenant can)",
        ));
    }
    let rights_changed = change.active.is_some_and(|a| a != u.active);
    let mut am: user::ActiveModel = u.into();
    if let Some(n) = change.name {
        am.name = Set(checked_name(&n)?);
    }
    if let Some(a) = change.active {
        am.active = Set(a);
    }
    save_principal(state, am, &change.user_id, rights_changed).await
}

/// ADMIN or INTEGRATION: a new user of the caller's tenant, with a token.
#[tracing::instrument(name = "service.add_user", level = "debug", skip_all)]
pub async fn add_user(state: &Services, actor: &Actor, name: &str, role: Role) -> Result<WithToken<user::Model>> {
    let caller = Caller::load(state, actor).await?;
    caller.require_op("Mutation.addUser")?;
    validate::name(name, 200).map_err(|m| Error::bad_input("name", m))?;
    // Any other role in either kind of tenant: a provider's DISPATCHER assigns its engineers
    // to the orders its upstreams assign to it (two-stage dispatch).
    if role == Role::Engineer {
        return Err(Error::bad_input("role", "engineers are added with addEngineer"));
    }
    let row = insert_user(&state.writer, caller.tenant_id(), name, role).await?;
    let token = first_token(state, &caller, &row.id, role);
    Ok(WithToken { row, token })
}

pub async fn insert_user<C: sea_orm::ConnectionTrait>(
    db: &C,
    tenant_id: &str,
    name: &str,
    role: Role,
) -> Result<user::Model> {
    let model = user::ActiveModel {
        id: Set(ids::new(ids::USER)),
        tenant_id: Set(tenant_id.to_owned()),
        name: Set(name.trim().to_owned()),
        role: Set(role.as_str().to_owned()),
        active: Set(true),
        created_at: Set(crate::domain::now()),
    };
    Ok(model.insert(db).await?)
}
