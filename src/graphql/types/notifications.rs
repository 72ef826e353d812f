//! Task notifications and the engineer's actions.
use async_graphql::{Context, Enum, ID, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};

use super::containers::PageInfo;
use super::orders::{Task, WorkOrder};
use crate::domain::visibility::Audience;
use crate::graphql::context::ContextExt;
use crate::graphql::policy::Sees;
use crate::service::audience;
use crate::service::notifications::{Delivered, NotificationPage, cursor_of};

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum TaskNotificationKind {
    /// A task was issued to the engineer.
    TaskAssigned,
    /// The engineer lost the task (reassignment, cancellation).
    TaskRevoked,
    /// The task changed (accepted, declined).
    TaskUpdated,
    /// An order is offered to the engineer (and to others at once): `claimWorkOrder` takes it.
    TaskOffered,
    /// The offer is over (another engineer claimed it, a dispatcher decided, it expired or
    /// the order was cancelled).
    OfferWithdrawn,
}

/// A standard task notification.
pub struct TaskNotification(pub Delivered, pub Audience);

impl TaskNotification {
    pub async fn seen(ctx: &Context<'_>, d: Delivered) -> Result<TaskNotification> {
        let a = audience::notification(ctx.caller().await?, &d.notification);
        Ok(TaskNotification(d, a))
    }

    async fn seen_all(ctx: &Context<'_>, items: &[Delivered]) -> Result<Vec<TaskNotification>> {
        let c = ctx.caller().await?;
        Ok(items
            .iter()
            .map(|d| TaskNotification(d.clone(), audience::notification(c, &d.notification)))
            .collect())
    }
}

#[Object(guard = "Sees::object::<Self>(self.1)")]
impl TaskNotification {
    async fn id(&self) -> ID {
        ID(self.0.notification.id.clone())
    }
    /// Resume point: pass it as `after` to `taskNotifications`, or as `upTo` to acknowledge.
    async fn cursor(&self) -> String {
        self.0.notification.seq.to_string()
    }
    /// The engineer's own sequence number: 1, 2, 3, … with no gap.
    async fn sequence(&self) -> i64 {
        self.0.notification.seq
    }
    async fn kind(&self) -> TaskNotificationKind {
        match self.0.notification.kind.as_str() {
            "TASK_ASSIGNED" => TaskNotificationKind::TaskAssigned,
            "TASK_REVOKED" => TaskNotificationKind::TaskRevoked,
            "TASK_OFFERED" => TaskNotificationKind::TaskOffered,
            "OFFER_WITHDRAWN" => TaskNotificationKind::OfferWithdrawn,
            _ => TaskNotificationKind::TaskUpdated,
        }
    }
    /// The task as it is now.
    async fn task(&self, ctx: &Context<'_>) -> Result<Task> {
        Task::seen(ctx, self.0.task.clone()).await
    }
    /// The task's acceptance deadline, if its node sets one (as `task.acceptBy`).
    async fn accept_by(&self) -> Option<DateTime<Utc>> {
        self.0.task.accept_by
    }
    /// The work order as it is now (what the engineer was given, once it is someone else's).
    async fn work_order(&self, ctx: &Context<'_>) -> Result<WorkOrder> {
        WorkOrder::seen_held(ctx, self.0.order.clone(), true).await
    }
    async fn acknowledged(&self) -> bool {
        self.0.notification.acknowledged_at.is_some()
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.notification.created_at
    }
}

#[derive(SimpleObject)]
#[graphql(guard = "Sees::container::<Self>()")]
pub struct TaskNotificationEdge {
    pub cursor: String,
    pub node: TaskNotification,
}

/// The engineer's notifications: unacknowledged first, then the rest, newest first in each.
pub struct TaskNotificationConnection(pub NotificationPage);

#[Object(guard = "Sees::container::<Self>()")]
impl TaskNotificationConnection {
    async fn edges(&self, ctx: &Context<'_>) -> Result<Vec<TaskNotificationEdge>> {
        Ok(TaskNotification::seen_all(ctx, &self.0.items)
            .await?
            .into_iter()
            .map(|n| TaskNotificationEdge {
                cursor: cursor_of(&n.0),
                node: n,
            })
            .collect())
    }
    async fn nodes(&self, ctx: &Context<'_>) -> Result<Vec<TaskNotification>> {
        TaskNotification::seen_all(ctx, &self.0.items).await
    }
    async fn page_info(&self) -> PageInfo {
        PageInfo {
            has_next_page: self.0.has_next,
            has_previous_page: false,
            start_cursor: self.0.items.first().map(cursor_of),
            end_cursor: self.0.items.last().map(cursor_of),
        }
    }
}

#[derive(InputObject)]
pub struct AcceptTaskInput {
    pub task_id: ID,
}

#[derive(InputObject)]
pub struct ClaimWorkOrderInput {
    pub work_order_id: ID,
}

#[derive(InputObject)]
pub struct DeclineTaskInput {
    pub task_id: ID,
    pub reason: Option<String>,
}

#[derive(InputObject)]
pub struct AcknowledgeNotificationsInput {
    /// A notification cursor: that one and every earlier one are acknowledged.
    pub up_to: String,
}

#[derive(SimpleObject)]
#[graphql(guard = "Sees::container::<Self>()")]
pub struct TaskPayload {
    pub task: Task,
}

#[derive(SimpleObject)]
#[graphql(guard = "Sees::container::<Self>()")]
pub struct AcknowledgePayload {
    /// How many notifications changed to acknowledged.
    pub acknowledged: i32,
}
