//! Who may do what: the caller's role and tenant, checked for every operation.
use std::sync::Arc;

use entity::tenant;

use crate::auth::Actor;
use crate::domain::visibility::{self, CallerKind};
use crate::domain::{Role, TenantKind};
use crate::error::{Error, Result};
use crate::service::Services;

use super::tenants::kind_of;

/// The subject of the server's own actions (never a user id: ids carry a type prefix).
pub const SYSTEM: &str = "system";

/// An authenticated caller with its tenant loaded.
#[derive(Clone, Debug)]
pub struct Caller {
    pub actor: Actor,
    pub tenant: Arc<tenant::Model>,
    pub kind: TenantKind,
}

impl Caller {
    pub async fn load(state: &Services, actor: &Actor) -> Result<Caller> {
        // Every operation starts here: a connection the database dropped meanwhile (a backend
        // terminated while idle in the pool) costs one more try, not the request.
        let tenant = match state.tenants.get(&state.db, &actor.tenant).await {
            Err(e) if e.is_connection_lost() => {
                tracing::warn!(error = %e, "tenant lookup lost its connection; reading again");
                state.tenants.get(&state.db, &actor.tenant).await
            }
            read => read,
        }?
        .ok_or_else(|| Error::Unauthenticated("the token's tenant does not exist".into()))?;
        state.principals.check(&state.db, actor).await?;
        Ok(Caller {
            actor: actor.clone(),
            kind: kind_of(&tenant)?,
            tenant,
        })
    }

    /// The server acting on its own for a tenant (recovery): no user, no token. The tenant is
    /// read on `conn` (the caller's transaction).
    pub async fn system<C: sea_orm::ConnectionTrait>(state: &Services, conn: &C, tenant_id: &str) -> Result<Caller> {
        let tenant = state.tenants.require(conn, tenant_id).await?;
        Ok(Caller {
            actor: Actor {
                subject: SYSTEM.to_owned(),
                tenant: tenant_id.to_owned(),
                role: Role::Admin,
            },
            kind: kind_of(&tenant)?,
            tenant,
        })
    }

    pub fn tenant_id(&self) -> &str {
        &self.actor.tenant
    }

    pub fn role(&self) -> Role {
        self.actor.role
    }

    pub fn is_upstream(&self) -> bool {
        self.kind == TenantKind::Upstream
    }

    /// The outer tenant id of a downstream caller.
    pub fn outer_id(&self) -> Option<&str> {
        self.tenant.outer_tenant_id.as_deref()
    }

    /// The caller's kind: its role in its kind of tenant.
    pub fn kind(&self) -> CallerKind {
        (self.kind, self.actor.role)
    }

    /// Refuses with FORBIDDEN unless the policy (`domain::visibility::OPERATIONS`) lets this
    /// kind of caller run `operation` (`Mutation.createWorkOrder`). An operation the policy does
    /// not list is refused to everyone.
    pub fn require_op(&self, operation: &str) -> Result<()> {
        if visibility::may(operation, self.kind()) {
            return Ok(());
        }
        let field = operation.rsplit('.').next().unwrap_or(operation);
        let allowed: Vec<String> = visibility::operation(operation)
            .unwrap_or_default()
            .iter()
            .map(|(k, r)| format!("{r} of an {} tenant", k.as_str().to_lowercase()))
            .collect();
        Err(Error::Forbidden(format!(
            "{field} is for {}; the caller is {} of an {} tenant",
            if allowed.is_empty() {
                "nobody".to_owned()
            } else {
                allowed.join(", ")
            },
            self.actor.role,
            self.kind.as_str().to_lowercase(),
        )))
    }
}
