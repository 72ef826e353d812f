//! Sending a webhook delivery: one signed HTTP POST, with no redirects, no proxy, a deadline,
//! and (unless the operator allows private addresses) only to public addresses: literal ones
//! are checked with the URL, host names as they resolve, at every attempt, so a name that
//! later resolves to an internal address is refused too.
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::domain::webhook::{SIGNATURE_HEADER, check_url, is_public, signature_header};

/// What one attempt came to.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The receiver's HTTP status, if it answered.
    pub status: Option<u16>,
    /// Why the attempt failed (a status other than 2xx, a refused address, a timeout, ...).
    pub error: Option<String>,
    pub duration: Duration,
}

impl Outcome {
    pub fn delivered(&self) -> bool {
        self.error.is_none()
    }
}

/// One delivery to send.
pub struct Request<'a> {
    pub url: &'a str,
    pub secret: &'a str,
    pub delivery_id: &'a str,
    pub webhook_id: &'a str,
    pub event_kind: &'a str,
    pub body: Vec<u8>,
}

/// A resolver that keeps the public addresses of a name only.
struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let all: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> = all.into_iter().filter(|a| is_public(a.ip())).collect();
            if public.is_empty() {
                return Err(format!("{host} resolves to no public address (private addresses are refused)").into());
            }
            Ok(Box::new(public.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[derive(Clone)]
pub struct Sender {
    client: reqwest::Client,
    allow_private: bool,
}

impl Sender {
    pub fn new(timeout: Duration, allow_private: bool) -> crate::error::Result<Sender> {
        let mut b = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .user_agent(concat!("dispatchd-webhooks/", env!("CARGO_PKG_VERSION")));
        if !allow_private {
            b = b.dns_resolver(Arc::new(PublicOnly));
        }
        let client = b.build().map_err(crate::error::Error::internal)?;
        Ok(Sender { client, allow_private })
    }

    /// Sends one attempt, signed at `timestamp` (Unix seconds). A 2xx answer delivers it.
    pub async fn send(&self, r: Request<'_>, timestamp: i64) -> Outcome {
        let started = Instant::now();
        let failed = |status: Option<u16>, error: String| Outcome {
            status,
            error: Some(error),
            duration: started.elapsed(),
        };
        let url = match check_url(r.url, self.allow_private) {
            Ok(u) => u,
            Err(e) => return failed(None, format!("URL refused: {e}")),
        };
        let sent = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, signature_header(r.secret, timestamp, &r.body))
            .header("Dispatchd-Delivery", r.delivery_id)
            .header("Dispatchd-Webhook", r.webhook_id)
            .header("Dispatchd-Event", r.event_kind)
            .body(r.body)
            .send()
            .await;
        match sent {
            Ok(resp) => {
                let status = resp.status().as_u16();
                // The body is not read: a receiver's answer carries nothing for us.
                drop(resp);
                if (200..300).contains(&status) {
                    Outcome {
                        status: Some(status),
                        error: None,
                        duration: started.elapsed(),
                    }
                } else {
                    failed(Some(status), format!("the receiver answered HTTP {status}"))
                }
            }
            Err(e) if e.is_timeout() => failed(None, "no answer in time".into()),
            Err(e) => failed(None, describe(&e)),
        }
    }
}

/// The error and its causes, in one line (reqwest's own message says little: "error sending
/// request").
fn describe(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out.chars().take(500).collect()
}
