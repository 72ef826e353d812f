//! The command line: serve, migrate, schema, tenant add, token.
use chrono::Duration;

use crate::app::{self, AppState};
use crate::auth::{Actor, parse_ttl};
use crate::config::{Cli, Command, TenantCommand};
use crate::domain::{Role, TenantKind};
use crate::error::{Error, Result};
use crate::service::{admin, demo, tenants};

pub async fn run(cli: Cli) -> Result<()> {
    let secret = cli.jwt_secret.as_deref();
    match cli.command {
        Command::Schema => print!("{}", app::export_sdl()),
        Command::Policy => print!("{}", crate::domain::visibility::markdown()),
        Command::Migrate => {
            AppState::open(&cli.db, secret).await?;
            println!("migrations applied");
        }
        Command::Serve(cfg) => {
            let state = AppState::open(&cli.db, secret).await?;
            let demo = if cfg.demo {
                Some(demo::seed(&state).await?)
            } else {
                None
            };
            let server = app::spawn(state, &cfg).await?;
            if let Some(world) = demo {
                println!("{}", world.banner(&server.addr.to_string()));
                if let Err(e) = std::fs::write("demo.env", world.env_file(&server.addr.to_string())) {
                    tracing::warn!(error = %e, "could not write demo.env");
                }
            }
            tracing::info!("dispatchd listening on http://{} (GraphiQL at /)", server.addr);
            server.handle.await.map_err(Error::internal)?;
        }
        Command::Tenant(TenantCommand::Add {
            kind,
            name,
            outer_id,
            activation_version,
        }) => {
            let kind = TenantKind::parse(&kind).ok_or_else(|| Error::bad_input("kind", "upstream or downstream"))?;
            let state = AppState::open(&cli.db, secret).await?;
            let t = tenants::create(
                &state.db,
                tenants::NewTenant {
                    kind,
                    name,
                    outer_tenant_id: outer_id,
                    activation_version,
                },
            )
            .await?;
            let admin = admin::insert_user(&state.db, &t.id, "Administrator", Role::Admin).await?;
            let token = state.keys.mint(
                &Actor {
                    subject: admin.id.clone(),
                    tenant: t.id.clone(),
                    role: Role::Admin,
                },
                Duration::days(30),
            );
            println!("tenant:  {}", t.id);
            if let Some(o) = &t.outer_tenant_id {
                println!("outer id: {o}");
            }
            println!("admin:   {}", admin.id);
            println!("token:   {token}");
        }
        Command::Token { tenant, sub, role, ttl } => {
            let role = Role::parse(&role.to_uppercase())
                .ok_or_else(|| Error::bad_input("role", "ADMIN, DISPATCHER, ENGINEER or INTEGRATION"))?;
            let ttl = parse_ttl(&ttl).map_err(|m| Error::bad_input("ttl", m))?;
            let state = AppState::open(&cli.db, secret).await?;
            let actor = Actor {
                subject: sub,
                tenant,
                role,
            };
            // Only for a subject that may act: a token for anyone else would be refused anyway.
            crate::service::Caller::load(&state, &actor).await?;
            println!("{}", state.keys.mint(&actor, ttl));
        }
    }
    Ok(())
}
