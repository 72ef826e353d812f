//! Whether a token's subject may still act: an active user of the token's tenant with exactly
//! the token's role, or an active engineer of it for ENGINEER. A signature proves who issued a
//! token, not that its holder still has the rights it names; this is checked on every
//! operation, against the database, remembered for a short while (`DISPATCHD_AUTH_CACHE_MS`)
//! and forgotten at once when the subject's rights change (`Hub::revoke`, on every instance).
//!
//! A remembered answer older than the cache time is still used, for up to twice that again,
//! while it is read afresh in the background: a busy caller's requests never wait for the
//! check (nor count its statement). Past that, or after a revocation, a request reads it itself.
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use entity::{engineer, user};
use parking_lot::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use sea_orm::ConnectionTrait;

use crate::auth::Actor;
use crate::domain::Role;
use crate::error::{Error, Result};
use crate::notify::Revoked;
use crate::store::Db;
use crate::store::lookup::ById;

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
    /// Bumped by every `forget` (under the write lock): an answer read from the database
    /// before a revocation is never remembered after it.
    generation: Arc<AtomicU64>,
    /// Answers being read again in the background, one read per key at a time.
    refreshing: Arc<Mutex<HashSet<Key>>>,
}

impl Default for PrincipalCache {
    fn default() -> Self {
        PrincipalCache::new(DEFAULT_TTL)
    }
}

/// What the cache knows of a key now.
enum Known {
    Fresh(Option<String>),
    /// Usable while it is read again.
    Stale(Option<String>),
    Unknown,
}

impl PrincipalCache {
    pub fn new(ttl: Duration) -> Self {
        PrincipalCache {
            inner: Arc::default(),
            ttl_ms: Arc::new(AtomicU64::new(ttl.as_millis() as u64)),
            generation: Arc::default(),
            refreshing: Arc::default(),
        }
    }

    pub fn set_ttl(&self, ttl: Duration) {
        self.ttl_ms.store(ttl.as_millis() as u64, Ordering::Relaxed);
    }

    fn ttl(&self) -> Duration {
        Duration::from_millis(self.ttl_ms.load(Ordering::Relaxed))
    }

    fn read(&self) -> RwLockReadGuard<'_, Answers> {
        self.inner.read()
    }

    fn write(&self) -> RwLockWriteGuard<'_, Answers> {
        self.inner.write()
    }

    /// Forgets what it knew of these subjects (or of everyone).
    pub fn forget(&self, which: Revoked<'_>) {
        let mut map = self.write();
        self.generation.fetch_add(1, Ordering::SeqCst);
        match which {
            Revoked::All => map.clear(),
            Revoked::Subjects(subjects) => map.retain(|(_, sub, _), _| !subjects.contains(sub)),
        }
    }

    fn known(&self, key: &Key) -> Known {
        let ttl = self.ttl();
        match self.read().get(key) {
            Some((why, at)) if at.elapsed() < ttl => Known::Fresh(why.clone()),
            Some((why, at)) if at.elapsed() < ttl * 3 => Known::Stale(why.clone()),
            _ => Known::Unknown,
        }
    }

    /// Remembers an answer read while the generation was `generation`, unless a revocation
    /// came in between (then the answer may predate it: it is dropped).
    fn remember(&self, generation: u64, key: Key, why: Option<String>) {
        let mut map = self.write();
        if self.generation.load(Ordering::SeqCst) != generation {
            return;
        }
        let now = Instant::now();
        if map.len() >= PRUNE_AT {
            let ttl = self.ttl();
            map.retain(|_, (_, at)| now.duration_since(*at) < ttl * 3);
        }
        map.insert(key, (why, now));
    }

    /// Reads the answer from the database and remembers it.
    async fn read_through(&self, db: &Db, actor: &Actor, key: Key) -> Result<Option<String>> {
        let generation = self.generation.load(Ordering::SeqCst);
        let why = match refusal(db, actor).await {
            Err(e) if e.is_connection_lost() => {
                tracing::warn!(error = %e, "rights lookup lost its connection; reading again");
                refusal(db, actor).await
            }
            read => read,
        }?;
        self.remember(generation, key, why.clone());
        Ok(why)
    }

    /// Ok when the actor may act; UNAUTHENTICATED, saying why, when it may not.
    pub async fn check(&self, db: &Db, actor: &Actor) -> Result<()> {
        let key = (actor.tenant.clone(), actor.subject.clone(), actor.role);
        let refusal = match self.known(&key) {
            Known::Fresh(why) => why,
            Known::Stale(why) => {
                self.refresh_in_background(db, actor, key);
                why
            }
            Known::Unknown => self.read_through(db, actor, key).await?,
        };
        match refusal {
            None => Ok(()),
            Some(why) => Err(Error::Unauthenticated(why)),
        }
    }

    fn refresh_in_background(&self, db: &Db, actor: &Actor, key: Key) {
        {
            let mut busy = self.refreshing.lock();
            if !busy.insert(key.clone()) {
                return;
            }
        }
        let (cache, db, actor) = (self.clone(), db.clone(), actor.clone());
        tokio::spawn(async move {
            if let Err(e) = cache.read_through(&db, &actor, key.clone()).await {
                tracing::warn!(error = %e, "rights could not be read again; the next request will");
            }
            cache.refreshing.lock().remove(&key);
        });
    }
}

/// Why the actor may not act, or None when it may.
async fn refusal<C: ConnectionTrait>(db: &C, actor: &Actor) -> Result<Option<String>> {
    let who = &actor.subject;
    if actor.role == Role::Engineer {
        let e = engineer::Model::by_id(db, who).await?;
        return Ok(match e {
            Some(e) if e.tenant_id == actor.tenant && e.active => None,
            Some(e) if e.tenant_id == actor.tenant => Some(format!("engineer {who} is deactivated")),
            _ => Some(format!("the token's subject {who} is not an engineer of its tenant")),
        });
    }
    let u = user::Model::by_id(db, who).await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Key {
        ("tnt_1".into(), "usr_1".into(), Role::Dispatcher)
    }

    #[test]
    fn an_answer_read_before_a_revocation_is_not_remembered_after_it() {
        let cache = PrincipalCache::new(Duration::from_secs(60));
        // A request starts reading (generation taken), the user is deactivated meanwhile, then
        // the request's "may act" arrives: it must not be remembered.
        let before = cache.generation.load(Ordering::SeqCst);
        cache.forget(Revoked::Subjects(&["usr_1".to_string()]));
        cache.remember(before, key(), None);
        assert!(matches!(cache.known(&key()), Known::Unknown));
        // Read after the revocation: remembered.
        let now = cache.generation.load(Ordering::SeqCst);
        cache.remember(now, key(), Some("user usr_1 is deactivated".into()));
        assert!(matches!(cache.known(&key()), Known::Fresh(Some(_))));
        cache.forget(Revoked::All);
        assert!(matches!(cache.known(&key()), Known::Unknown));
    }

    #[test]
    fn answers_go_stale_then_unknown() {
        let cache = PrincipalCache::new(Duration::from_millis(20));
        let g = cache.generation.load(Ordering::SeqCst);
        cache.remember(g, key(), None);
        assert!(matches!(cache.known(&key()), Known::Fresh(None)));
        std::thread::sleep(Duration::from_millis(30));
        assert!(matches!(cache.known(&key()), Known::Stale(None)));
        std::thread::sleep(Duration::from_millis(40));
        assert!(matches!(cache.known(&key()), Known::Unknown));
    }
}
