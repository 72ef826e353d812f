//! Task notifications and the engineer's actions.
use async_graphql::{Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::objects::{PageInfo, Task, WorkOrder};
use crate::service::notifications::{Delivered, NotificationPage, cursor_of};

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum TaskNotificationKind {
    /// A task was issued to the engineer.
    TaskAssigned,
    /// The engineer lost the task (reassignment, cancellation).
    TaskRevoked,
    /// The task changed (accepted, declined).
    TaskUpdated,
}

/// A standard task notification.
pub struct TaskNotification(pub Delivered);

#[Object]
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
            _ => TaskNotificationKind::TaskUpdated,
        }
    }
    /// The task as it is now.
    async fn task(&self) -> Task {
        Task(self.0.task.clone())
    }
    /// The work order as it is now.
    async fn work_order(&self) -> WorkOrder {
        WorkOrder(self.0.order.clone())
    }
    async fn acknowledged(&self) -> bool {
        self.0.notification.acknowledged_at.is_some()
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.notification.created_at
    }
}

#[derive(SimpleObject)]
pub struct TaskNotificationEdge {
    pub cursor: String,
    pub node: TaskNotification,
}

/// The engineer's notifications: unacknowledged first, then the rest, newest first in each.
pub struct TaskNotificationConnection(pub NotificationPage);

#[Object]
impl TaskNotificationConnection {
    async fn edges(&self) -> Vec<TaskNotificationEdge> {
        self.0
            .items
            .iter()
            .map(|d| TaskNotificationEdge {
                cursor: cursor_of(d),
                node: TaskNotification(d.clone()),
            })
            .collect()
    }
    async fn nodes(&self) -> Vec<TaskNotification> {
        self.0.items.iter().cloned().map(TaskNotification).collect()
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
pub struct TaskPayload {
    pub task: Task,
}

#[derive(SimpleObject)]
pub struct AcknowledgePayload {
    /// How many notifications changed to acknowledged.
    pub acknowledged: i32,
}
