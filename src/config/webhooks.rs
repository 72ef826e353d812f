//! Webhook deliveries' settings: how often and how long they are tried, and where they may go.
use std::time::Duration;

use clap::Args;

#[derive(Clone, Debug, Args)]
#[command(next_help_heading = "Webhooks")]
pub struct WebhookConfig {
    /// Failed attempts after which a delivery is dead-lettered (status DEAD; `redeliverWebhook`
    /// sends it again).
    #[arg(long, env = "DISPATCHD_WEBHOOK_MAX_ATTEMPTS", default_value_t = 8)]
    pub webhook_max_attempts: u32,
    /// Wait after a delivery's first failure, in milliseconds, doubled after each further one
    /// (with jitter: between half and all of it).
    #[arg(long, env = "DISPATCHD_WEBHOOK_BACKOFF_MS", default_value_t = 5_000)]
    pub webhook_backoff_ms: u64,
    /// Longest wait between two attempts of a delivery, in milliseconds.
    #[arg(long, env = "DISPATCHD_WEBHOOK_BACKOFF_MAX_MS", default_value_t = 3_600_000)]
    pub webhook_backoff_max_ms: u64,
    /// How long a receiver has to answer one attempt, in milliseconds (then it failed).
    #[arg(long, env = "DISPATCHD_WEBHOOK_TIMEOUT_MS", default_value_t = 10_000)]
    pub webhook_timeout_ms: u64,
    /// Most attempts in flight at once on this instance; 0: this instance sends none (the
    /// others do).
    #[arg(long, env = "DISPATCHD_WEBHOOK_CONCURRENCY", default_value_t = 16)]
    pub webhook_concurrency: usize,
    /// Time between looks for new events and due deliveries, in milliseconds (changes made on
    /// this instance are looked at at once).
    #[arg(long, env = "DISPATCHD_WEBHOOK_POLL_MS", default_value_t = 1_000)]
    pub webhook_poll_ms: u64,
    /// Days a delivered or dead-lettered delivery is kept (listed by `webhookDeliveries`,
    /// redeliverable); 0: kept for ever.
    #[arg(long, env = "DISPATCHD_WEBHOOK_RETENTION_DAYS", default_value_t = 30)]
    pub webhook_retention_days: u64,
    /// Let webhooks aim at loopback, link-local and private addresses (refused by default, so
    /// that a tenant cannot make the server call internal services). For tests and private
    /// deployments only.
    #[arg(long, env = "DISPATCHD_WEBHOOK_ALLOW_PRIVATE")]
    pub webhook_allow_private: bool,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            webhook_max_attempts: 8,
            webhook_backoff_ms: 5_000,
            webhook_backoff_max_ms: 3_600_000,
            webhook_timeout_ms: 10_000,
            webhook_concurrency: 16,
            webhook_poll_ms: 1_000,
            webhook_retention_days: 30,
            webhook_allow_private: false,
        }
    }
}

impl WebhookConfig {
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.webhook_timeout_ms.max(1))
    }
    pub fn backoff(&self) -> (Duration, Duration) {
        let base = Duration::from_millis(self.webhook_backoff_ms.max(1));
        (base, Duration::from_millis(self.webhook_backoff_max_ms).max(base))
    }
    pub fn poll(&self) -> Duration {
        Duration::from_millis(self.webhook_poll_ms.max(10))
    }
}
