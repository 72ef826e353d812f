//! The state the use cases share (database pools, write lane, caches, hub, keys), built once by
//! the composition root (`app`) and handed to every service call.
use crate::auth::Keys;
use crate::config::DbConfig;
use crate::error::Result;
use crate::notify::Hub;
use crate::service::rules::RuleCache;
use crate::service::tenants::TenantCache;
use crate::store::{self, Db};

/// Everything a request needs; cheap to clone.
#[derive(Clone)]
pub struct Services {
    /// Reads, and writes outside transactions.
    pub db: Db,
    /// Write transactions (`store::begin_write`).
    pub writer: Db,
    /// Where the busiest write transactions run (SQLite: a thread of their own).
    pub lane: store::WriteLane,
    pub keys: Keys,
    pub tenants: TenantCache,
    pub rules: RuleCache,
    /// Workflows by ID: a workflow never changes once created.
    pub workflows: crate::service::workflows::FlowCache,
    pub hub: Hub,
    /// Whether tokens' subjects may still act (forgotten on the hub's revocations).
    pub principals: crate::service::principals::PrincipalCache,
    /// Which tenants are connected (for who sees what).
    pub links: crate::service::audience::Links,
    /// PostgreSQL: tenants whose events wait to be numbered.
    pub numbering: crate::service::numbering::Numbering,
    /// PostgreSQL: the pool of the cross-instance wake-up listener (`notify::pg`).
    pub listen_pool: Option<sea_orm::sqlx::PgPool>,
    /// Retries of orders waiting for a dispatcher, retention of notifications and events.
    pub housekeeping: crate::service::housekeeping::Housekeeping,
    /// Tenants' business calendars, for what may lag a change on another instance (the day of
    /// FEWEST_TODAY, the time left on an SLA).
    pub calendars: crate::service::sla::CalendarCache,
    /// Tenants' SLA policies, compiled (a change through another instance applies here
    /// within 30 s; through this one, at once).
    pub sla_policies: crate::service::sla::policies::PolicyCache,
    /// What the server counts (`GET /metrics`).
    pub metrics: std::sync::Arc<crate::metrics::Metrics>,
    /// Webhook deliveries' settings and the deliverer's wake-up.
    pub webhooks: crate::service::webhooks::Webhooks,
}

impl Services {
    /// Connects, migrates, and loads the token secret (the flag's, or the one kept in the database).
    pub async fn open(db_cfg: &DbConfig, jwt_secret: Option<&str>) -> Result<Services> {
        let pools = store::db::connect(db_cfg).await?;
        let db = pools.read;
        store::db::migrate(&pools.write).await?;
        store::db::optimize(&pools.write).await?;
        let secret = match jwt_secret {
            Some(s) if !s.is_empty() => s.to_owned(),
            _ => store::db::jwt_secret(&db).await?,
        };
        let hub = Hub::default();
        let principals = crate::service::principals::PrincipalCache::default();
        hub.on_revoke({
            let principals = principals.clone();
            move |which| principals.forget(which)
        });
        let rules = RuleCache::default();
        let metrics = std::sync::Arc::new(crate::metrics::Metrics::new());
        Ok(Services {
            db,
            lane: if pools.write.get_database_backend() == sea_orm::DatabaseBackend::Sqlite {
                store::WriteLane::spawn(pools.write.clone(), db_cfg.write_queue, metrics.clone())?
            } else {
                store::WriteLane::default()
            },
            writer: pools.write,
            keys: Keys::new(secret.as_bytes()),
            tenants: TenantCache::default(),
            rules: rules.clone(),
            workflows: Default::default(),
            hub,
            principals,
            links: Default::default(),
            numbering: Default::default(),
            housekeeping: Default::default(),
            calendars: rules.calendars.clone(),
            sla_policies: Default::default(),
            metrics,
            webhooks: Default::default(),
            listen_pool: pools.listen,
        })
    }
}
