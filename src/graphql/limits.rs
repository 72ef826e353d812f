//! Rate limits per token subject and per tenant: token buckets, one per key, in this instance's
//! memory (limits are per instance: N instances behind a balancer allow up to N times as much).
//! An operation takes one token from its subject's bucket and one from its tenant's, or from
//! neither: refused, it is told how long until both have one again.
use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::auth::Actor;
use crate::config::EdgeConfig;

/// A bucket's refill rate and size.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate {
    pub per_sec: f64,
    pub burst: f64,
}

impl Rate {
    /// `per_sec` 0 (or less): no limit. `burst` 0: twice the rate (at least 1).
    fn of(per_sec: f64, burst: u32) -> Option<Rate> {
        (per_sec > 0.0).then(|| Rate {
            per_sec,
            burst: if burst == 0 {
                (per_sec * 2.0).max(1.0)
            } else {
                f64::from(burst)
            },
        })
    }
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Buckets kept at most; beyond, the full ones (idle long enough to have refilled) are dropped.
const MAX_BUCKETS: usize = 100_000;

#[derive(Debug, Default)]
struct Buckets {
    rate: Option<Rate>,
    map: Mutex<HashMap<String, Bucket>>,
}

impl Buckets {
    /// The bucket of `key` refilled to `now`: its tokens (`None`: no limit).
    fn level(&self, map: &mut HashMap<String, Bucket>, key: &str, now: Instant) -> Option<f64> {
        let rate = self.rate?;
        if map.len() >= MAX_BUCKETS && !map.contains_key(key) {
            map.retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * rate.per_sec < rate.burst);
        }
        let b = map.entry(key.to_owned()).or_insert(Bucket {
            tokens: rate.burst,
            at: now,
        });
        b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * rate.per_sec).min(rate.burst);
        b.at = now;
        Some(b.tokens)
    }

    /// How long until the bucket at `level` holds a whole token.
    fn wait(&self, level: Option<f64>) -> Duration {
        match (self.rate, level) {
            (Some(r), Some(l)) if l < 1.0 => Duration::from_secs_f64((1.0 - l) / r.per_sec),
            _ => Duration::ZERO,
        }
    }
}

#[derive(Debug, Default)]
pub struct RateLimiter {
    subjects: Buckets,
    tenants: Buckets,
}

impl RateLimiter {
    pub fn new(cfg: &EdgeConfig) -> RateLimiter {
        RateLimiter {
            subjects: Buckets {
                rate: Rate::of(cfg.rate_limit_subject_per_sec, cfg.rate_limit_subject_burst),
                map: Mutex::default(),
            },
            tenants: Buckets {
                rate: Rate::of(cfg.rate_limit_tenant_per_sec, cfg.rate_limit_tenant_burst),
                map: Mutex::default(),
            },
        }
    }

    pub fn is_on(&self) -> bool {
        self.subjects.rate.is_some() || self.tenants.rate.is_some()
    }

    /// Takes a token for one operation of `actor`; `Err(wait)`: refused, retry after `wait`.
    pub fn take(&self, actor: &Actor) -> Result<(), Duration> {
        if !self.is_on() {
            return Ok(());
        }
        let now = Instant::now();
        // Always in this order (subject, then tenant): no two callers wait on each other.
        let mut subjects = self.subjects.map.lock();
        let mut tenants = self.tenants.map.lock();
        let s = self.subjects.level(&mut subjects, &actor.subject, now);
        let t = self.tenants.level(&mut tenants, &actor.tenant, now);
        let wait = self.subjects.wait(s).max(self.tenants.wait(t));
        if !wait.is_zero() {
            return Err(wait);
        }
        for (level, map, key) in [(s, &mut subjects, &actor.subject), (t, &mut tenants, &actor.tenant)] {
            if level.is_some()
                && let Some(b) = map.get_mut(key.as_str())
            {
                b.tokens -= 1.0;
            }
        }
        Ok(())
    }
}

/// `Retry-After`: whole seconds, rounded up (at least 1).
pub fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_secs_f64().ceil().max(1.0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Role;

    fn actor(sub: &str, tenant: &str) -> Actor {
        Actor {
            subject: sub.into(),
            tenant: tenant.into(),
            role: Role::Dispatcher,
        }
    }

    fn limiter(subject: (f64, u32), tenant: (f64, u32)) -> RateLimiter {
        let cfg = EdgeConfig {
            rate_limit_subject_per_sec: subject.0,
            rate_limit_subject_burst: subject.1,
            rate_limit_tenant_per_sec: tenant.0,
            rate_limit_tenant_burst: tenant.1,
            ..EdgeConfig::default()
        };
        RateLimiter::new(&cfg)
    }

    #[test]
    fn off_by_default() {
        let l = RateLimiter::new(&EdgeConfig::default());
        assert!(!l.is_on());
        for _ in 0..10_000 {
            assert!(l.take(&actor("a", "t")).is_ok());
        }
    }

    #[test]
    fn a_subject_gets_its_burst_then_waits_for_the_refill() {
        let l = limiter((1.0, 3), (0.0, 0));
        let a = actor("a", "t");
        for _ in 0..3 {
            assert!(l.take(&a).is_ok());
        }
        let wait = l.take(&a).unwrap_err();
        assert!(
            wait > Duration::from_millis(900) && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        assert_eq!(retry_after_secs(wait), 1);
        assert!(l.take(&actor("b", "t")).is_ok(), "another subject has its own bucket");
    }

    #[test]
    fn a_tenant_is_limited_across_its_subjects_and_a_refusal_takes_nothing() {
        let l = limiter((10.0, 2), (1.0, 3));
        assert!(l.take(&actor("a", "t")).is_ok());
        assert!(l.take(&actor("a", "t")).is_ok());
        // a's own bucket is empty: refused, and the tenant's token is not taken.
        assert!(l.take(&actor("a", "t")).is_err());
        assert!(l.take(&actor("b", "t")).is_ok());
        assert!(l.take(&actor("c", "t")).is_err(), "the tenant's three are spent");
        assert!(l.take(&actor("d", "u")).is_ok(), "another tenant");
    }
}
