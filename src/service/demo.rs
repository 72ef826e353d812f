//! `serve --demo`: a small world (one upstream enterprise, two service providers, engineers,
//! workflows, a few orders) seeded through the same services the API uses.
use chrono::Duration;
use entity::setting;
use sea_orm::{ActiveModelTrait, EntityTrait, Set};
use serde::{Deserialize, Serialize};

use crate::auth::Actor;
use crate::domain::workflow::{NodeKind, Performer, WorkflowKind};
use crate::domain::{Priority, Role, TenantKind};
use crate::error::{Error, Result};
use crate::service::Services;
use crate::service::admin::NodeInput;

use super::{admin, orders, tenants};

const KEY: &str = "demo";

/// IDs of the demo world, kept in the database so a restart prints fresh tokens for it.
#[derive(Serialize, Deserialize)]
pub struct DemoWorld {
    pub upstream_tenant: String,
    pub admin: String,
    pub dispatcher: String,
    pub downstream_tenant: String,
    pub downstream_admin: String,
    pub engineer: String,
    pub other_engineer: String,
    pub workflow: String,
    /// The first provider's dispatcher (two-stage dispatch); empty in a demo seeded before.
    #[serde(default)]
    pub provider_dispatcher: String,
    /// A two-stage workflow (empty in a demo seeded before).
    #[serde(default)]
    pub two_stage_workflow: String,
    /// The upstream's partner record of the first provider, whose engineers the tokens are
    /// (empty in a demo seeded before).
    #[serde(default)]
    pub partner: String,
    #[serde(skip)]
    tokens: Vec<(&'static str, String)>,
}

impl DemoWorld {
    fn mint(&mut self, state: &Services) {
        let t = |subject: &str, tenant: &str, role: Role| {
            state.keys.mint(
                &Actor {
                    subject: subject.into(),
                    tenant: tenant.into(),
                    role,
                },
                Duration::days(7),
            )
        };
        self.tokens = vec![
            ("ADMIN_TOKEN", t(&self.admin, &self.upstream_tenant, Role::Admin)),
            (
                "DISPATCHER_TOKEN",
                t(&self.dispatcher, &self.upstream_tenant, Role::Dispatcher),
            ),
            (
                "PROVIDER_ADMIN_TOKEN",
                t(&self.downstream_admin, &self.downstream_tenant, Role::Admin),
            ),
            (
                "ENGINEER_TOKEN",
                t(&self.engineer, &self.downstream_tenant, Role::Engineer),
            ),
        ];
        if !self.provider_dispatcher.is_empty() {
            self.tokens.push((
                "PROVIDER_DISPATCHER_TOKEN",
                t(&self.provider_dispatcher, &self.downstream_tenant, Role::Dispatcher),
            ));
        }
    }

    /// The shell variables of the demo world (`source demo.env`), headed by the database they
    /// belong to (`database_identity`): its IDs and tokens are good in that database only.
    pub fn env_file(&self, addr: &str, database: &str) -> String {
        let mut s = format!(
            "# Written by `dispatchd serve --demo`: the demo world of this database.\n{DATABASE_LINE}{database}\n"
        );
        s.push_str(&format!("export DISPATCHD_URL=http://{addr}/graphql\n"));
        for (k, v) in &self.tokens {
            s.push_str(&format!("export {k}={v}\n"));
        }
        s.push_str(&format!("export WORKFLOW_ID={}\n", self.workflow));
        s.push_str(&format!("export ENGINEER_ID={}\n", self.engineer));
        s.push_str(&format!("export OTHER_ENGINEER_ID={}\n", self.other_engineer));
        if !self.two_stage_workflow.is_empty() {
            s.push_str(&format!("export TWO_STAGE_WORKFLOW_ID={}\n", self.two_stage_workflow));
        }
        if !self.partner.is_empty() {
            s.push_str(&format!("export PARTNER_ID={}\n", self.partner));
        }
        s
    }

    /// What `serve --demo` prints; `env_file_note` says where the variables were also written
    /// (or why not).
    pub fn banner(&self, addr: &str, database: &str, env_file_note: &str) -> String {
        format!(
            "Demo world ready (tokens valid 7 days; {env_file_note}):\n\n{}\nOpen http://{addr}/ for GraphiQL and add the header {{\"Authorization\": \"Bearer <DISPATCHER_TOKEN>\"}}.",
            self.env_file(addr, database)
        )
    }
}

/// The file `serve --demo` writes the demo world's variables to, in the working directory.
pub const ENV_FILE: &str = "demo.env";

/// The line of an env file naming its database.
const DATABASE_LINE: &str = "# database: ";

/// The database an env file says it belongs to, if it says.
pub fn env_file_database(text: &str) -> Option<&str> {
    text.lines().find_map(|l| l.strip_prefix(DATABASE_LINE)).map(str::trim)
}

/// Whether an env file may be (over)written with the demo of `database`, given what is there
/// now: only nothing, or the demo of the same database. Anything else (another database's demo,
/// whose tokens its user may still be using, or a file that does not say) is left alone; the
/// error says why.
pub fn may_write_env_file(existing: Option<&str>, database: &str) -> std::result::Result<(), String> {
    let Some(existing) = existing else { return Ok(()) };
    match env_file_database(existing) {
        Some(d) if d == database => Ok(()),
        Some(other) => Err(format!("it holds the demo of another database ({other})")),
        None => Err("it does not say which database it is for".into()),
    }
}

/// Seeds the demo world into an empty database, or finds the one seeded before.
pub async fn seed(state: &Services) -> Result<DemoWorld> {
    if let Some(s) = setting::Entity::find_by_id(KEY.to_owned()).one(&state.db).await? {
        let mut world: DemoWorld = serde_json::from_str(&s.value).map_err(Error::internal)?;
        world.mint(state);
        return Ok(world);
    }
    let db = &state.db;
    let up = tenants::create(
        db,
        tenants::NewTenant {
            kind: TenantKind::Upstream,
            name: "Acme Appliances".into(),
            outer_tenant_id: None,
            activation_version: Some(870),
        },
    )
    .await?;
    let up_admin = admin::insert_user(db, &up.id, "Alice Admin", Role::Admin).await?;
    let dispatcher = admin::insert_user(db, &up.id, "Dana Dispatcher", Role::Dispatcher).await?;
    let as_admin = Actor {
        subject: up_admin.id.clone(),
        tenant: up.id.clone(),
        role: Role::Admin,
    };
    let as_dispatcher = Actor {
        subject: dispatcher.id.clone(),
        tenant: up.id.clone(),
        role: Role::Dispatcher,
    };

    let mut providers = Vec::new();
    for (name, outer) in [
        ("Shanghai FixIt Co.", "OT-SH-001"),
        ("Jiangsu Service Partners", "OT-JS-002"),
    ] {
        let t = tenants::create(
            db,
            tenants::NewTenant {
                kind: TenantKind::Downstream,
                name: name.into(),
                outer_tenant_id: Some(outer.into()),
                activation_version: None,
            },
        )
        .await?;
        let a = admin::insert_user(db, &t.id, "Provider Admin", Role::Admin).await?;
        admin::connect_service_provider(
            state,
            &as_admin,
            admin::ConnectProvider {
                downstream_tenant_id: Some(t.id.clone()),
                outer_tenant_id: None,
                name: None,
                active: true,
                allocated: true,
            },
        )
        .await?;
        providers.push((
            t,
            Actor {
                subject: a.id,
                tenant: String::new(),
                role: Role::Admin,
            },
        ));
    }
    let mut engineers = Vec::new();
    let roster: [(usize, &str, &[&str], &[&str]); 4] = [
        (0, "Li Wei", &["hvac", "electrical"], &["CN-31"]),
        (0, "Zhang Min", &["plumbing"], &["CN-31-04"]),
        (0, "Wang Fang", &["hvac"], &["CN-32"]),
        (1, "Chen Jie", &["hvac", "plumbing"], &["CN-32", "CN-31"]),
    ];
    for (p, name, skills, regions) in roster {
        let (t, a) = &providers[p];
        let actor = Actor {
            tenant: t.id.clone(),
            ..a.clone()
        };
        let e = admin::add_engineer(
            state,
            &actor,
            admin::EngineerSpec {
                name: Some(name.into()),
                active: Some(true),
                skills: Some(skills.iter().map(|s| s.to_string()).collect()),
                regions: Some(regions.iter().map(|s| s.to_string()).collect()),
                capacity: Some(5),
            },
        )
        .await?
        .row;
        engineers.push(e);
    }
    let node = |name: &str, kind, performer| NodeInput {
        accept_within: None,
        on_accept_timeout: None,
        name: name.into(),
        kind,
        performer,
    };
    let wf = admin::create_workflow(
        state,
        &as_admin,
        admin::NewWorkflow {
            name: "Interconnection repair".into(),
            kind: WorkflowKind::Interconnection,
            nodes: vec![
                node(
                    "Dispatcher assigns service-provider engineer",
                    NodeKind::DispatchToEngineer,
                    Performer::Upstream,
                ),
                node(
                    "Engineer accepts and services",
                    NodeKind::AcceptAndService,
                    Performer::DownstreamEngineer,
                ),
                node("Upstream review", NodeKind::Review, Performer::Upstream),
            ],
        },
    )
    .await?;
    let two_stage = admin::create_workflow(
        state,
        &as_admin,
        admin::NewWorkflow {
            name: "Repair through the provider's dispatcher".into(),
            kind: WorkflowKind::Interconnection,
            nodes: vec![
                node(
                    "Dispatcher assigns service provider",
                    NodeKind::DispatchToProvider,
                    Performer::Upstream,
                ),
                node(
                    "Service provider assigns engineer",
                    NodeKind::ProviderDispatchToEngineer,
                    Performer::ServiceProvider,
                ),
                node(
                    "Engineer accepts and services",
                    NodeKind::AcceptAndService,
                    Performer::DownstreamEngineer,
                ),
            ],
        },
    )
    .await?;
    let provider_dispatcher =
        admin::insert_user(db, &providers[0].0.id, "Pat Provider-Dispatcher", Role::Dispatcher).await?;
    admin::create_workflow(
        state,
        &as_admin,
        admin::NewWorkflow {
            name: "Internal inspection".into(),
            kind: WorkflowKind::Internal,
            nodes: vec![node("Inspect", NodeKind::Custom, Performer::Upstream)],
        },
    )
    .await?;
    let mut created = Vec::new();
    for (title, region, skills, workflow) in [
        ("Air conditioner not cooling", "CN-31-04", vec!["hvac"], &wf.id),
        ("Leaking water heater", "CN-31-04", vec!["plumbing"], &wf.id),
        ("Dishwasher will not drain", "CN-31-04", vec!["plumbing"], &two_stage.id),
    ] {
        let o = orders::create_work_order(
            state,
            &as_dispatcher,
            orders::NewOrder {
                workflow_id: workflow.clone(),
                external_ref: None,
                title: title.into(),
                description: None,
                customer: Some("Demo customer".into()),
                region: region.into(),
                product: Some("Home appliance".into()),
                service_type: Some("Repair".into()),
                priority: Priority::Normal,
                required_skills: skills.into_iter().map(String::from).collect(),
                custom_fields: None,
            },
        )
        .await?;
        created.push(o);
    }
    // The two-stage order waits at the first provider, for its dispatcher.
    let at_provider = created.last().ok_or_else(|| Error::internal("no demo order"))?;
    let partner = crate::store::parties::partner(
        db,
        crate::store::parties::Partnership {
            upstream_tenant_id: &up.id,
            downstream_tenant_id: &providers[0].0.id,
        },
    )
    .await?
    .ok_or_else(|| Error::internal("demo partner missing"))?;
    orders::assign_service_provider(
        state,
        &as_dispatcher,
        orders::ProviderInput {
            work_order_id: at_provider.id.clone(),
            partner_id: partner.id.clone(),
            expected_version: at_provider.version,
        },
    )
    .await?;
    let mut world = DemoWorld {
        upstream_tenant: up.id,
        admin: up_admin.id,
        dispatcher: dispatcher.id,
        downstream_tenant: providers[0].0.id.clone(),
        downstream_admin: providers[0].1.subject.clone(),
        engineer: engineers[0].id.clone(),
        other_engineer: engineers[1].id.clone(),
        workflow: wf.id,
        provider_dispatcher: provider_dispatcher.id,
        two_stage_workflow: two_stage.id,
        partner: partner.id,
        tokens: Vec::new(),
    };
    let row = setting::ActiveModel {
        key: Set(KEY.to_owned()),
        value: Set(serde_json::to_string(&world).map_err(Error::internal)?),
    };
    row.insert(db).await?;
    world.mint(state);
    Ok(world)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_env_file_is_rewritten_only_for_its_own_database() {
        let world = DemoWorld {
            upstream_tenant: "tnt_u".into(),
            admin: "usr_a".into(),
            dispatcher: "usr_d".into(),
            downstream_tenant: "tnt_d".into(),
            downstream_admin: "usr_p".into(),
            engineer: "eng_1".into(),
            other_engineer: "eng_2".into(),
            workflow: "wfl_1".into(),
            provider_dispatcher: String::new(),
            two_stage_workflow: String::new(),
            partner: String::new(),
            tokens: Vec::new(),
        };
        let mine = world.env_file("127.0.0.1:8080", "sqlite:///srv/a.db");
        assert_eq!(env_file_database(&mine), Some("sqlite:///srv/a.db"));
        assert_eq!(may_write_env_file(None, "sqlite:///srv/a.db"), Ok(()));
        assert_eq!(may_write_env_file(Some(&mine), "sqlite:///srv/a.db"), Ok(()));
        let other = may_write_env_file(Some(&mine), "postgres://postgres@127.0.0.1:5432/demo").unwrap_err();
        assert!(other.contains("sqlite:///srv/a.db"), "{other}");
        // Written by someone else (or an older dispatchd): not ours to overwrite.
        assert!(may_write_env_file(Some("export DISPATCHD_URL=http://x/graphql\n"), "sqlite:///srv/a.db").is_err());
    }
}
