//! The notification hub: in-process wake-ups keyed by engineer and by tenant. The database is
//! the source of truth; a wake-up only tells a subscriber to read again after its cursor, so a
//! missed or coalesced wake-up loses nothing.
use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::watch;

pub mod backoff;
pub mod pg;
pub mod webhook;

pub use backoff::Backoff;

type Channels = Arc<Mutex<HashMap<String, watch::Sender<u64>>>>;

/// Whose rights changed: some subjects (users, engineers), or anyone's (after the listener
/// reconnected, when revocations may have been missed).
#[derive(Clone, Copy, Debug)]
pub enum Revoked<'a> {
    Subjects(&'a [String]),
    All,
}

type RevokeHook = Arc<dyn Fn(Revoked<'_>) + Send + Sync>;

#[derive(Clone)]
pub struct Hub {
    engineers: Channels,
    tenants: Channels,
    /// WebSocket connections by the subject of their token: woken to check its rights again.
    principals: Channels,
    /// The sweep of connected subjects' rights: woken when anyone's may have changed unseen.
    everyone: Arc<watch::Sender<u64>>,
    /// Run on every revocation (the service layer forgets what it remembered of the subjects).
    revoke_hooks: Arc<Mutex<Vec<RevokeHook>>>,
    /// This process's name in cross-instance wake-ups (`pg`), so it skips its own.
    instance: Arc<str>,
}

impl Default for Hub {
    fn default() -> Self {
        Hub {
            engineers: Channels::default(),
            tenants: Channels::default(),
            principals: Channels::default(),
            everyone: Arc::new(watch::channel(0).0),
            revoke_hooks: Arc::default(),
            instance: uuid::Uuid::new_v4().simple().to_string().into(),
        }
    }
}

/// A subscriber's wake-up receiver; its channel is removed with its last subscriber.
pub struct Wake {
    rx: watch::Receiver<u64>,
    key: String,
    channels: Channels,
}

impl Wake {
    /// Waits for the next wake-up (returns at once if one came since the last call).
    pub async fn changed(&mut self) {
        if self.rx.changed().await.is_err() {
            // The sender went away (cannot happen while we hold the map entry); wait forever.
            std::future::pending::<()>().await;
        }
    }
}

impl Drop for Wake {
    fn drop(&mut self) {
        let mut map = self.channels.lock();
        if map.get(&self.key).is_some_and(|tx| tx.receiver_count() <= 1) {
            map.remove(&self.key);
        }
    }
}

fn subscribe(channels: &Channels, key: &str) -> Wake {
    let mut map = channels.lock();
    let tx = map.entry(key.to_owned()).or_insert_with(|| watch::channel(0).0);
    let mut rx = tx.subscribe();
    rx.mark_unchanged();
    Wake {
        rx,
        key: key.to_owned(),
        channels: channels.clone(),
    }
}

fn wake(channels: &Channels, key: &str) {
    if let Some(tx) = channels.lock().get(key) {
        tx.send_modify(|n| *n = n.wrapping_add(1));
    }
}

impl Hub {
    pub fn engineer(&self, id: &str) -> Wake {
        subscribe(&self.engineers, id)
    }

    pub fn tenant(&self, id: &str) -> Wake {
        subscribe(&self.tenants, id)
    }

    /// After a commit: wake the subscribers of these engineers and of this tenant.
    pub fn publish(&self, tenant: &str, engineers: &[String]) {
        wake(&self.tenants, tenant);
        for e in engineers {
            wake(&self.engineers, e);
        }
    }

    /// A WebSocket connection's wake-up for its token's subject: woken when the subject's
    /// rights may have changed.
    pub fn principal(&self, subject: &str) -> Wake {
        subscribe(&self.principals, subject)
    }

    /// The rights sweep's wake-up for "anyone's rights may have changed unseen".
    pub fn everyone(&self) -> watch::Receiver<u64> {
        let mut rx = self.everyone.subscribe();
        rx.mark_unchanged();
        rx
    }

    /// The subjects with a WebSocket connection here (whose rights the sweep checks).
    pub fn principal_subjects(&self) -> Vec<String> {
        self.principals.lock().keys().cloned().collect()
    }

    /// Registers what to run when rights change (before any connection is woken to check).
    pub fn on_revoke(&self, hook: impl Fn(Revoked<'_>) + Send + Sync + 'static) {
        self.revoke_hooks.lock().push(Arc::new(hook));
    }

    /// The rights of these subjects changed (deactivated, reactivated): what was remembered of
    /// them is forgotten, then their connections are woken to check again.
    pub fn revoke(&self, subjects: &[String]) {
        self.run_revoke_hooks(Revoked::Subjects(subjects));
        for s in subjects {
            wake(&self.principals, s);
        }
    }

    fn run_revoke_hooks(&self, r: Revoked<'_>) {
        let hooks: Vec<RevokeHook> = self.revoke_hooks.lock().clone();
        for h in hooks {
            h(r);
        }
    }

    /// Wakes every subscriber: each reads again after its cursor; what was remembered of anyone's
    /// rights is forgotten, and the connected subjects' rights are swept at once, in one batch
    /// (after the cross-instance listener reconnects, when wake-ups and revocations may have
    /// been missed).
    pub fn wake_all(&self) {
        self.run_revoke_hooks(Revoked::All);
        self.everyone.send_modify(|n| *n = n.wrapping_add(1));
        for channels in [&self.engineers, &self.tenants] {
            for tx in channels.lock().values() {
                tx.send_modify(|n| *n = n.wrapping_add(1));
            }
        }
    }

    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// Subscribed engineers and tenants (for metrics and tests).
    pub fn sizes(&self) -> (usize, usize) {
        (self.engineers.lock().len(), self.tenants.lock().len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn wakes_coalesce_and_channels_go_with_their_last_subscriber() {
        let hub = Hub::default();
        let mut a = hub.engineer("e1");
        let b = hub.engineer("e1");
        hub.publish("t", &["e1".into(), "e1".into(), "e2".into()]);
        tokio::time::timeout(std::time::Duration::from_secs(1), a.changed())
            .await
            .expect("woken");
        assert_eq!(hub.sizes(), (1, 0));
        drop(b);
        assert_eq!(hub.sizes(), (1, 0), "a still listens");
        drop(a);
        assert_eq!(hub.sizes(), (0, 0));
        // A wake-up with no subscriber is a no-op.
        hub.publish("t", &["e1".into()]);
        let mut t = hub.tenant("t");
        hub.publish("t", &[]);
        tokio::time::timeout(std::time::Duration::from_secs(1), t.changed())
            .await
            .expect("tenant woken");
    }
}
