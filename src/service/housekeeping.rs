//! Housekeeping on the timers: orders waiting for a dispatcher have their automatic dispatch
//! retried with backoff (so a rule added meanwhile takes effect without anyone asking), and
//! acknowledged notifications and old events are pruned after their retention.
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use parking_lot::RwLock;

use crate::error::Result;
use crate::service::Services;
use crate::store;

/// The housekeeping settings (`serve`'s options; the defaults elsewhere).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    /// The first automatic retry of an order left waiting for a dispatcher, doubling each time
    /// up to `manual_retry_max`; `None`: never retried by itself.
    pub manual_retry: Option<Duration>,
    pub manual_retry_max: Duration,
    /// Acknowledged notifications older than this are deleted; `None`: kept.
    pub notification_retention: Option<Duration>,
    /// Events (the orders' histories and the feeds) older than this are deleted; `None`: kept.
    pub event_retention: Option<Duration>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            manual_retry: Some(Duration::from_secs(600)),
            manual_retry_max: Duration::from_secs(4 * 3600),
            notification_retention: Some(Duration::from_secs(30 * 86_400)),
            event_retention: None,
        }
    }
}

impl Settings {
    /// When the retry after `attempt` earlier ones is due (backoff: the interval doubled per
    /// attempt, at most the maximum); `None` when retries are off.
    pub fn retry_due(&self, from: DateTime<Utc>, attempt: i32) -> Option<DateTime<Utc>> {
        let first = self.manual_retry?;
        let factor = 1u32 << attempt.clamp(0, 20);
        let wait = first.saturating_mul(factor).min(self.manual_retry_max.max(first));
        Some(from + TimeDelta::from_std(wait).ok()?)
    }
}

/// The settings every clone of the services shares (set once by `serve`).
#[derive(Clone, Default)]
pub struct Housekeeping(Arc<RwLock<Settings>>);

impl Housekeeping {
    pub fn get(&self) -> Settings {
        *self.0.read()
    }

    pub fn set(&self, s: Settings) {
        *self.0.write() = s;
    }
}

/// Deletes what is past its retention, in batches; returns (notifications, events) deleted.
pub async fn prune(state: &Services, now: DateTime<Utc>) -> Result<(u64, u64)> {
    state.metrics.swept("prune");
    let s = state.housekeeping.get();
    let before = |d: Duration| TimeDelta::from_std(d).ok().map(|d| now - d);
    let notifications = match s.notification_retention.and_then(before) {
        Some(t) => store::feeds::prune_acknowledged(&state.writer, t).await?,
        None => 0,
    };
    let events = match s.event_retention.and_then(before) {
        Some(t) => store::feeds::prune_events(&state.writer, t).await?,
        None => 0,
    };
    Ok((notifications, events))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_to_the_maximum() {
        let s = Settings::default();
        let t0 = Utc::now();
        let waits: Vec<i64> = (0..7)
            .map(|a| (s.retry_due(t0, a).unwrap() - t0).num_minutes())
            .collect();
        assert_eq!(waits, [10, 20, 40, 80, 160, 240, 240]);
        let off = Settings {
            manual_retry: None,
            ..s
        };
        assert_eq!(off.retry_due(t0, 0), None);
    }
}
