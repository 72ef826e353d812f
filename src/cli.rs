//! The command line: serve, migrate, schema, policy, tenant add, token.
use chrono::Duration;

use crate::app;
use crate::auth::{Actor, parse_ttl};
use crate::config::{Cli, Command, ServeArgs, TenantAddArgs, TenantCommand, TokenArgs};
use crate::domain::{Role, TenantKind};
use crate::error::{Error, Result};
use crate::service::Services;
use crate::service::{admin, demo, tenants};
use crate::store;

pub async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Schema => print!("{}", app::export_sdl()),
        Command::Policy => print!("{}", crate::domain::visibility::markdown()),
        Command::Migrate(args) => {
            let pools = store::db::connect(&args.db).await?;
            store::db::migrate(&pools.write).await?;
            checkpoint(&pools.write).await;
            println!("migrations applied");
        }
        Command::Serve(args) => serve(args).await?,
        Command::Tenant(TenantCommand::Add(args)) => tenant_add(args).await?,
        Command::Token(args) => token(args).await?,
    }
    Ok(())
}

async fn serve(args: ServeArgs) -> Result<()> {
    let db = crate::config::DbConfig {
        write_queue: args.serve.write_queue,
        ..args.db.clone()
    };
    let state = Services::open(&db, args.secret.jwt_secret.as_deref()).await?;
    let demo = if args.serve.demo {
        Some(demo::seed(&state).await?)
    } else {
        None
    };
    let server = app::spawn(state, &args.serve).await?;
    if let Some(world) = demo {
        let addr = server.addr.to_string();
        let database = store::db::database_identity(&args.db.database_url)?;
        let note = write_demo_env(&world.env_file(&addr, &database), &database);
        println!("{}", world.banner(&addr, &database, &note));
    }
    tracing::info!("dispatchd listening on http://{} (GraphiQL at /)", server.addr);
    server.handle.await.map_err(Error::internal)?;
    // Stopped: nothing writes any more. The log moves into the database file, so that file
    // alone is a complete copy (a backup, a move) once the process has exited.
    checkpoint(&server.state.db).await;
    tracing::info!("dispatchd stopped");
    Ok(())
}

/// SQLite: the write-ahead log moved into the database file before the process exits. Not an
/// error when it cannot be (the log keeps every change, and the next start reads it).
async fn checkpoint(db: &store::Db) {
    if let Err(e) = store::db::checkpoint(db).await {
        let cause = match &e {
            Error::Internal(cause) => cause.to_string(),
            e => e.to_string(),
        };
        tracing::warn!(error = %cause, "SQLite checkpoint at exit");
    }
}

/// Writes `demo.env` unless it is there for another database; says what became of it.
fn write_demo_env(contents: &str, database: &str) -> String {
    let path = demo::ENV_FILE;
    let existing = match std::fs::read_to_string(path) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            tracing::warn!(error = %e, "could not read ./{path}");
            return format!("not written to ./{path}: it cannot be read ({e})");
        }
    };
    if let Err(why) = demo::may_write_env_file(existing.as_deref(), database) {
        tracing::warn!(
            "./{path} left as it was: {why}; remove it (or start from another directory) to have it written"
        );
        return format!("NOT written to ./{path}: {why}; remove it to have it written");
    }
    match std::fs::write(path, contents) {
        Ok(()) => format!("also written to ./{path}"),
        Err(e) => {
            tracing::warn!(error = %e, "could not write ./{path}");
            format!("not written to ./{path}: {e}")
        }
    }
}

async fn tenant_add(args: TenantAddArgs) -> Result<()> {
    let kind = TenantKind::parse(&args.kind).ok_or_else(|| Error::bad_input("kind", "upstream or downstream"))?;
    let state = Services::open(&args.db, args.secret.jwt_secret.as_deref()).await?;
    let t = tenants::create(
        &state.db,
        tenants::NewTenant {
            kind,
            name: args.name,
            outer_tenant_id: args.outer_id,
            activation_version: args.activation_version,
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
    checkpoint(&state.db).await;
    println!("tenant:  {}", t.id);
    if let Some(o) = &t.outer_tenant_id {
        println!("outer id: {o}");
    }
    println!("admin:   {}", admin.id);
    println!("token:   {token}");
    Ok(())
}

async fn token(args: TokenArgs) -> Result<()> {
    let role = Role::parse(&args.role.to_uppercase())
        .ok_or_else(|| Error::bad_input("role", "ADMIN, DISPATCHER, ENGINEER or INTEGRATION"))?;
    let ttl = parse_ttl(&args.ttl).map_err(|m| Error::bad_input("ttl", m))?;
    let state = Services::open(&args.db, args.secret.jwt_secret.as_deref()).await?;
    let actor = Actor {
        subject: args.sub,
        tenant: args.tenant,
        role,
    };
    // Only for a subject that may act: a token for anyone else would be refused anyway.
    crate::service::Caller::load(&state, &actor).await?;
    checkpoint(&state.db).await;
    println!("{}", state.keys.mint(&actor, ttl));
    Ok(())
}
