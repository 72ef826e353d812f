//! Whether a token's subject may still act: an active user of the token's tenant with exactly
//! the token's role, or an active engineer of it for ENGINEER. A signature proves who issued a
//! token, not that its holder still has the rights it names; this is checked on every
//! operation, against the database, remembered for a short while (`DISPATCHD_AUTH_CACHE_MS`)
//! and forgotten at once when the subject's rights change (`Hub::revoke`, on every instance).
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use entity::{engineer, user};
use sea_orm::{ConnectionTrait, EntityTrait};

use crate::auth::Actor;
use crate::domain::Role;
use crate::error::{Error, Result};
use crate::notify::Revoked;

/// The default time a check is remembered.
pub const DEFAULT_TTL: Duration = Duration::from_secs(5);

/// Remembered answers; past this many, the stale ones are dropped on the next insert.
const PRUNE_AT: usize = 100_000;

type Key = (String, String, Role);
/// Per (tenant, subject, role): why it may not act (None: it may), and when that was read.
type Answers = HashMap<Key, (Option<String>, Instant)>;

#[derive(Clone)]
pub struct PrincipalCache {
    inner: Arc<RwLock<Answers>>,
    /// How long an answer is remembered, in milliseconds (0: never).
    ttl_ms: Arc<AtomicU64>,
}

impl Default for PrincipalCache {
    fn default() -> Self {
        PrincipalCache::new(DEFAULT_TTL)
    }
}

impl PrincipalCache {
    pub fn new(ttl: Duration) -> Self {
        PrincipalCache {
            inner: Arc::default(),
            ttl_ms: Arc::new(AtomicU64::new(ttl.as_millis() as u64)),
        }
    }

    pub fn set_ttl(&self, ttl: Duration) {
        self.ttl_ms.store(ttl.as_millis() as u64, Ordering::Relaxed);
    }

    fn ttl(&self) -> Duration {
        Duration::from_millis(self.ttl_ms.load(Ordering::Relaxed))
    }

    // Each critical section is one map operation: a panic elsewhere cannot leave the map half
    // changed, so a poisoned lock is taken as it is.
    fn read(&self) -> RwLockReadGuard<'_, Answers> {
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Answers> {
        self.inner.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Forgets what it knew of these subjects (or of everyone).
    pub fn forget(&self, which: Revoked<'_>) {
        match which {
            Revoked::All => self.write().clear(),
            Revoked::Subjects(subjects) => self.write().retain(|(_, sub, _), _| !subjects.contains(sub)),
        }
    }

    /// Ok when the actor may act; UNAUTHENTICATED, saying why, when it may not.
    pub async fn check<C: ConnectionTrait>(&self, db: &C, actor: &Actor) -> Result<()> {
        let key = (actor.tenant.clone(), actor.subject.clone(), actor.role);
        let (now, ttl) = (Instant::now(), self.ttl());
        let hit = self
            .read()
            .get(&key)
            .filter(|(_, at)| now < *at + ttl)
            .map(|(why, _)| why.clone());
        let refusal = match hit {
            Some(why) => why,
            None => {
                let why = match refusal(db, actor).await {
                    Err(e) if e.is_connection_lost() => {
                        tracing::warn!(error = %e, "rights lookup lost its connection; reading again");
                        refusal(db, actor).await
                    }
                    read => read,
                }?;
                let mut map = self.write();
                if map.len() >= PRUNE_AT {
                    map.retain(|_, (_, at)| now < *at + ttl);
                }
                map.insert(key, (why.clone(), now));
                why
            }
        };
        match refusal {
            None => Ok(()),
            Some(why) => Err(Error::Unauthenticated(why)),
        }
    }
}

/// Why the actor may not act, or None when it may.
async fn refusal<C: ConnectionTrait>(db: &C, actor: &Actor) -> Result<Option<String>> {
    let who = &actor.subject;
    if actor.role == Role::Engineer {
        let e = engineer::Entity::find_by_id(who.clone()).one(db).await?;
        return Ok(match e {
            Some(e) if e.tenant_id == actor.tenant && e.active => None,
            Some(e) if e.tenant_id == actor.tenant => Some(format!("engineer {who} is deactivated")),
            _ => Some(format!("the token's subject {who} is not an engineer of its tenant")),
        });
    }
    let u = user::Entity::find_by_id(who.clone()).one(db).await?;
    Ok(match u {
        Some(u) if u.tenant_id == actor.tenant && u.role == actor.role.as_str() && u.active => None,
        Some(u) if u.tenant_id == actor.tenant && u.role == actor.role.as_str() => {
            Some(format!("user {who} is deactivated"))
        }
        Some(u) if u.tenant_id == actor.tenant => Some(format!(
            "user {who} is {}, not {} as the token says",
            u.role, actor.role
        )),
        _ => Some(format!("the token's subject {who} is not a user of its tenant")),
    })
}
