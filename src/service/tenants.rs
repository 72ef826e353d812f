//! Tenants: creation (CLI, demo) and an in-process cache (tenants never change kind or id).
use std::collections::HashMap;
use std::sync::Arc;

use entity::tenant;
use parking_lot::RwLock;
use sea_orm::{ActiveModelTrait, ConnectionTrait, Set};

use crate::domain::{TenantKind, validate};
use crate::error::{Error, Result};
use crate::ids;
use crate::store::Db;
use crate::store::lookup::ById;

#[derive(Clone, Default)]
pub struct TenantCache {
    inner: Arc<RwLock<HashMap<String, Arc<tenant::Model>>>>,
}

impl TenantCache {
    /// The tenant, from memory when seen before; `None` when it does not exist. Inside a
    /// transaction, pass the transaction: a second pooled connection taken while one is held
    /// can wait for ever when every connection is held the same way.
    pub async fn get<C: ConnectionTrait>(&self, db: &C, id: &str) -> Result<Option<Arc<tenant::Model>>> {
        if let Some(t) = self.inner.read().get(id) {
            return Ok(Some(t.clone()));
        }
        let Some(t) = tenant::Model::by_id(db, id).await? else {
            return Ok(None);
        };
        let t = Arc::new(t);
        self.inner.write().insert(id.to_owned(), t.clone());
        Ok(Some(t))
    }

    pub async fn require<C: ConnectionTrait>(&self, db: &C, id: &str) -> Result<Arc<tenant::Model>> {
        self.get(db, id).await?.ok_or_else(|| Error::not_found("tenant", id))
    }
}

/// The tenant's kind; a stored kind that does not parse is an internal error, never a guess.
pub fn kind_of(t: &tenant::Model) -> Result<TenantKind> {
    super::stored::tenant_kind(t)
}

pub struct NewTenant {
    pub kind: TenantKind,
    pub name: String,
    pub outer_tenant_id: Option<String>,
    pub activation_version: Option<i32>,
}

/// The activation version given to upstream tenants created without one.
pub const DEFAULT_ACTIVATION_VERSION: i32 = 900;

pub async fn create(db: &Db, t: NewTenant) -> Result<tenant::Model> {
    validate::name(&t.name, 200).map_err(|m| Error::bad_input("name", m))?;
    let id = ids::new(ids::TENANT);
    let (outer, version) = match t.kind {
        TenantKind::Downstream => {
            if t.activation_version.is_some() {
                return Err(Error::bad_input(
                    "activationVersion",
                    "only upstream tenants have an activation version",
                ));
            }
            let outer = match t.outer_tenant_id {
                Some(o) => {
                    validate::reference(&o).map_err(|m| Error::bad_input("outerId", m))?;
                    o
                }
                None => format!("OT-{}", &id[id.len() - 12..]),
            };
            (Some(outer), None)
        }
        TenantKind::Upstream => {
            if t.outer_tenant_id.is_some() {
                return Err(Error::bad_input(
                    "outerId",
                    "only downstream (connected) tenants have an outer tenant id",
                ));
            }
            let v = t.activation_version.unwrap_or(DEFAULT_ACTIVATION_VERSION);
            if !(1..=100_000).contains(&v) {
                return Err(Error::bad_input("activationVersion", "must be between 1 and 100000"));
            }
            (None, Some(v))
        }
    };
    let model = tenant::ActiveModel {
        id: Set(id),
        kind: Set(t.kind.as_str().into()),
        name: Set(t.name.trim().to_owned()),
        outer_tenant_id: Set(outer),
        activation_version: Set(version),
        created_at: Set(crate::domain::now()),
        time_zone: Set(None),
        business_calendar: Set(None),
    };
    model.insert(db).await.map_err(|e| match Error::from(e) {
        Error::Conflict(_) => Error::Conflict("a tenant with this outer tenant id already exists".into()),
        other => other,
    })
}
