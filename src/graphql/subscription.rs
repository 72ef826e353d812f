//! Subscription root: engineers' task notifications and dispatchers' work-order events.
use async_graphql::{Context, Result, Subscription as GqlSubscription};
use futures::{Stream, StreamExt};

use super::context::ContextExt;
use super::types::{TaskNotification, WorkOrderEvent};
use crate::error::ResultExt;
use crate::service::{audience, notifications};

pub struct Subscription;

#[GqlSubscription]
impl Subscription {
    /// ENGINEER: its task notifications after the cursor `after` (from the beginning when
    /// omitted), then live ones as they are committed, in order, each once. Resume after a
    /// disconnect with the `cursor` of the last notification received.
    async fn task_notifications(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
    ) -> Result<impl Stream<Item = Result<TaskNotification>> + use<>> {
        let stream = notifications::task_notifications(ctx.state(), ctx.actor()?, after.as_deref())
            .await
            .gql()?;
        // Each notification is shown as its engineer sees it (its fields go through the policy).
        let caller = ctx.caller().await?.clone();
        Ok(stream.map(move |r| {
            r.map(|d| {
                let a = audience::notification(&caller, &d.notification);
                TaskNotification(d, a)
            })
            .gql()
        }))
    }

    /// DISPATCHER, ADMIN or INTEGRATION of an upstream tenant: every change of its orders, in
    /// the order committed, each once: those after the cursor `after` first (an event's
    /// `cursor`), then live ones; without `after`, from the moment of subscribing. Resume after
    /// a disconnect with the `cursor` of the last event received.
    ///
    /// The same of a service provider (two-stage dispatch): what happens to the orders at its
    /// stage — assigned to it (by rule or by hand), reassigned to another provider or rejected
    /// (then `data.atYourCompany` is false), its engineers assigned, their tasks accepted or
    /// declined, the order cancelled — on its own feed, numbered 1, 2, 3, … for it alone.
    async fn work_order_events(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
    ) -> Result<impl Stream<Item = Result<WorkOrderEvent>> + use<>> {
        let stream = notifications::work_order_events(ctx.state(), ctx.actor()?, after.as_deref())
            .await
            .gql()?;
        let caller = ctx.caller().await?.clone();
        Ok(stream.map(move |r| {
            r.map(|e| {
                let a = audience::event(&caller, &e);
                WorkOrderEvent(e, a)
            })
            .gql()
        }))
    }
}
