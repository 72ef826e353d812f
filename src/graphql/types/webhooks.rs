//! GraphQL types of webhooks: a tenant's endpoints, their deliveries and attempts.
use async_graphql::{Enum, ID, InputObject, Json, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use entity::{webhook, webhook_delivery};
use serde_json::Value;

use super::WorkOrderEventKind;
use super::parties::stored;
use crate::domain::visibility::Audience;
use crate::graphql::policy::Sees;
use crate::service::{audience, webhooks as w};
use crate::store::webhooks::status;

/// An endpoint of the tenant's, told of the events of the kinds it names.
pub struct Webhook(pub webhook::Model, pub Audience);

/// One event delivered (or to be) to one webhook.
pub struct WebhookDelivery(pub webhook_delivery::Model, pub Audience);

seen! {
    Webhook(webhook::Model) by audience::webhook;
    WebhookDelivery(webhook_delivery::Model) by audience::webhook_delivery;
}

#[Object(guard = "Sees::object::<Self>(self.1)")]
impl Webhook {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    /// Where deliveries are POSTed.
    async fn url(&self) -> &str {
        &self.0.url
    }
    /// The kinds of events it is told of (of the tenant's own `workOrderEvents`).
    async fn events(&self) -> Vec<WorkOrderEventKind> {
        w::kinds(&self.0).into_iter().map(Into::into).collect()
    }
    /// Off: nothing is sent, and the events that happen meanwhile are not delivered later.
    async fn enabled(&self) -> bool {
        self.0.enabled
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

/// Where a delivery stands.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum WebhookDeliveryStatus {
    /// To be sent (again): at `nextAttemptAt`, once the earlier pending deliveries of its work
    /// order are through.
    Pending,
    /// The receiver answered 2xx.
    Delivered,
    /// Dead-lettered: every attempt failed. `redeliverWebhook` sends it again.
    Dead,
}

impl WebhookDeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookDeliveryStatus::Pending => status::PENDING,
            WebhookDeliveryStatus::Delivered => status::DELIVERED,
            WebhookDeliveryStatus::Dead => status::DEAD,
        }
    }
}

#[Object(guard = "Sees::object::<Self>(self.1)")]
impl WebhookDelivery {
    /// Also sent as the `Dispatchd-Delivery` header: the same at every attempt.
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    async fn webhook_id(&self) -> ID {
        ID(self.0.webhook_id.clone())
    }
    /// The event delivered (`WorkOrderEvent.id`).
    async fn event_id(&self) -> ID {
        ID(self.0.event_id.clone())
    }
    async fn event_kind(&self) -> Result<WorkOrderEventKind> {
        stored(&self.0.event_kind)
    }
    /// The event's sequence number in the tenant's feed.
    async fn event_sequence(&self) -> i64 {
        self.0.event_seq
    }
    async fn work_order_id(&self) -> ID {
        ID(self.0.work_order_id.clone())
    }
    async fn status(&self) -> Result<WebhookDeliveryStatus> {
        stored(&self.0.status)
    }
    /// Attempts since it was queued (or last redelivered).
    async fn attempts(&self) -> i32 {
        self.0.attempts
    }
    /// When it is tried next (PENDING only).
    async fn next_attempt_at(&self) -> Option<DateTime<Utc>> {
        (self.0.status == status::PENDING).then_some(self.0.next_attempt_at)
    }
    /// The HTTP status of the last answer, if the receiver answered.
    async fn last_response_code(&self) -> Option<i32> {
        self.0.last_status_code
    }
    /// Why the last attempt failed.
    async fn last_error(&self) -> Option<&str> {
        self.0.last_error.as_deref()
    }
    /// The body sent (the same at every attempt).
    async fn payload(&self) -> Json<Value> {
        Json(self.0.payload.clone())
    }
    /// Every attempt, oldest first (the latest 50).
    async fn attempt_log(&self) -> Vec<WebhookAttempt> {
        self.0
            .attempt_log
            .as_array()
            .map(|a| a.iter().map(|v| WebhookAttempt(v.clone(), self.1)).collect())
            .unwrap_or_default()
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn delivered_at(&self) -> Option<DateTime<Utc>> {
        self.0.delivered_at
    }
}

/// One attempt of a delivery.
pub struct WebhookAttempt(pub Value, pub Audience);

#[Object(guard = "Sees::object::<Self>(self.1)")]
impl WebhookAttempt {
    async fn at(&self) -> Option<DateTime<Utc>> {
        self.0["at"].as_str().and_then(|s| s.parse().ok())
    }
    /// The receiver's HTTP status; null when it did not answer (refused, timed out).
    async fn response_code(&self) -> Option<i32> {
        self.0["statusCode"].as_i64().map(|c| c as i32)
    }
    /// Why it failed; null when delivered.
    async fn error(&self) -> Option<&str> {
        self.0["error"].as_str()
    }
    async fn duration_ms(&self) -> i64 {
        self.0["durationMs"].as_i64().unwrap_or_default()
    }
}

#[derive(InputObject)]
pub struct CreateWebhookInput {
    /// http(s); loopback, link-local and private addresses are refused (unless the operator
    /// allows them).
    pub url: String,
    /// At least one kind.
    pub events: Vec<WorkOrderEventKind>,
    /// 16 to 256 bytes: the HMAC-SHA256 key of the `Dispatchd-Signature` header. Never shown.
    pub secret: String,
    #[graphql(default = true)]
    pub enabled: bool,
}

impl From<CreateWebhookInput> for w::WebhookInput {
    fn from(i: CreateWebhookInput) -> Self {
        w::WebhookInput {
            url: Some(i.url),
            events: Some(i.events.into_iter().map(Into::into).collect()),
            secret: Some(i.secret),
            enabled: Some(i.enabled),
        }
    }
}

/// What is omitted stays as it is.
#[derive(InputObject)]
pub struct UpdateWebhookInput {
    pub webhook_id: ID,
    pub url: Option<String>,
    pub events: Option<Vec<WorkOrderEventKind>>,
    /// A new key (rotation): deliveries sent from now on are signed with it.
    pub secret: Option<String>,
    pub enabled: Option<bool>,
}

impl From<UpdateWebhookInput> for w::WebhookInput {
    fn from(i: UpdateWebhookInput) -> Self {
        w::WebhookInput {
            url: i.url,
            events: i.events.map(|e| e.into_iter().map(Into::into).collect()),
            secret: i.secret,
            enabled: i.enabled,
        }
    }
}

#[derive(InputObject)]
pub struct DeleteWebhookInput {
    pub webhook_id: ID,
}

#[derive(InputObject)]
pub struct RedeliverWebhookInput {
    /// A DELIVERED or DEAD delivery.
    pub delivery_id: ID,
}

#[derive(SimpleObject)]
#[graphql(guard = "Sees::container::<Self>()")]
pub struct WebhookPayload {
    pub webhook: Webhook,
}

#[derive(SimpleObject)]
#[graphql(guard = "Sees::container::<Self>()")]
pub struct DeleteWebhookPayload {
    pub deleted_webhook_id: ID,
}

#[derive(SimpleObject)]
#[graphql(guard = "Sees::container::<Self>()")]
pub struct WebhookDeliveryPayload {
    pub delivery: WebhookDelivery,
}
