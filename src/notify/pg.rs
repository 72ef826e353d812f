//! Wake-ups across instances on PostgreSQL: the events and notifications a write transaction
//! committed are announced with `pg_notify` by the short transaction that numbers its events
//! just after (`service::numbering`; delivered by PostgreSQL at that commit), never by the
//! writer itself (PostgreSQL serialises the commits of every transaction that notifies); each
//! instance listens and wakes its own subscribers. The database stays the source: a lost
//! wake-up costs only delay, because every subscriber re-reads after its cursor when woken, on
//! reconnection of the listener, and on its periodic catch-up.
use std::time::Duration;

use sea_orm::sqlx::postgres::{PgListener, PgPool};
use sea_orm::{ConnectionTrait, DatabaseBackend, Statement};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::Hub;
use crate::error::Result;

/// The channel of every instance on one database.
pub const CHANNEL: &str = "dispatchd_wake";

/// What a wake-up says: which instance sent it (it has woken its own subscribers already),
/// the tenant whose orders changed, and the engineers with new notifications.
#[derive(Serialize, Deserialize, Debug, PartialEq)]
pub struct WakeUp {
    #[serde(rename = "i")]
    pub instance: String,
    #[serde(rename = "t")]
    pub tenant: String,
    #[serde(rename = "e", default)]
    pub engineers: Vec<String>,
    /// Subjects whose rights changed (deactivated or reactivated users and engineers).
    #[serde(rename = "r", default, skip_serializing_if = "Vec::is_empty")]
    pub revoked: Vec<String>,
}

/// Inside a write transaction on PostgreSQL: queue the wake-up for commit. No-op on SQLite
/// (one instance: the hub is woken after commit directly).
pub async fn notify_in<C: ConnectionTrait>(tx: &C, hub: &Hub, tenant: &str, engineers: &[String]) -> Result<()> {
    send_in(
        tx,
        WakeUp {
            instance: hub.instance().to_owned(),
            tenant: tenant.to_owned(),
            engineers: engineers.to_vec(),
            revoked: Vec::new(),
        },
    )
    .await
}

/// Inside a write transaction on PostgreSQL: tell every instance, at commit, that the rights of
/// these subjects changed (no-op on SQLite, where `Hub::revoke` after commit is enough).
pub async fn revoke_in<C: ConnectionTrait>(tx: &C, hub: &Hub, subjects: &[String]) -> Result<()> {
    send_in(
        tx,
        WakeUp {
            instance: hub.instance().to_owned(),
            tenant: String::new(),
            engineers: Vec::new(),
            revoked: subjects.to_vec(),
        },
    )
    .await
}

async fn send_in<C: ConnectionTrait>(tx: &C, w: WakeUp) -> Result<()> {
    if tx.get_database_backend() != DatabaseBackend::Postgres {
        return Ok(());
    }
    let payload = serde_json::to_string(&w).map_err(crate::error::Error::internal)?;
    tx.execute_raw(Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        "SELECT pg_notify($1, $2)",
        [CHANNEL.into(), payload.into()],
    ))
    .await?;
    Ok(())
}

/// Listens for the other instances' wake-ups until `stop` turns true, reconnecting by itself.
/// After every (re)connection all local subscribers are woken: whatever was sent while the
/// listener was away is then read from the database.
pub async fn listen(pool: PgPool, hub: Hub, mut stop: watch::Receiver<bool>) {
    let mut backoff = super::Backoff::new(Duration::from_millis(100), Duration::from_millis(3_200));
    loop {
        let mut connected = false;
        tokio::select! {
            r = session(&pool, &hub, &mut connected) => {
                if let Err(e) = r {
                    tracing::warn!(error = %e, "wake-up listener lost its connection; reconnecting");
                }
            }
            _ = stop.wait_for(|s| *s) => return,
        }
        if connected {
            backoff.reset();
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff.next_delay()) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// One listening connection, until it fails.
async fn session(pool: &PgPool, hub: &Hub, connected: &mut bool) -> std::result::Result<(), sea_orm::sqlx::Error> {
    let mut l = PgListener::connect_with(pool).await?;
    l.listen(CHANNEL).await?;
    *connected = true;
    tracing::info!("listening for other instances' wake-ups");
    hub.wake_all();
    loop {
        match l.try_recv().await? {
            Some(n) => match serde_json::from_str::<WakeUp>(n.payload()) {
                Ok(w) if w.instance != hub.instance() => {
                    if !w.revoked.is_empty() {
                        hub.revoke(&w.revoked);
                    }
                    if !w.tenant.is_empty() || !w.engineers.is_empty() {
                        hub.publish(&w.tenant, &w.engineers);
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "unreadable wake-up ignored"),
            },
            // Lost and re-established: what was sent meanwhile is caught up by reading.
            None => hub.wake_all(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wake_ups_round_trip_in_short_form() {
        let w = WakeUp {
            instance: "a".into(),
            tenant: "tnt_1".into(),
            engineers: vec!["eng_1".into()],
            revoked: vec![],
        };
        let s = serde_json::to_string(&w).unwrap();
        assert_eq!(s, r#"{"i":"a","t":"tnt_1","e":["eng_1"]}"#);
        assert_eq!(serde_json::from_str::<WakeUp>(&s).unwrap(), w);
        let r = WakeUp {
            revoked: vec!["usr_1".into()],
            ..w
        };
        let s = serde_json::to_string(&r).unwrap();
        assert_eq!(s, r#"{"i":"a","t":"tnt_1","e":["eng_1"],"r":["usr_1"]}"#);
        assert_eq!(serde_json::from_str::<WakeUp>(&s).unwrap(), r);
    }
}
