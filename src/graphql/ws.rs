//! GraphQL over WebSocket at `/graphql/ws`: the `graphql-transport-ws` protocol as its
//! PROTOCOL.md specifies (close codes, ping/pong, init timeout, duplicate ids), and the legacy
//! `graphql-ws` (subscriptions-transport-ws) protocol. One task per connection drives every
//! operation of that connection (no task or channel per operation: an idle subscription costs
//! only its stream's state); the token travels in the `connection_init` payload.
use std::collections::HashMap;
use std::time::Duration;

use async_graphql::{Request, Response, Variables};
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::response::IntoResponse;
use futures::stream::{AbortHandle, BoxStream, SelectAll};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::watch;
use tracing::Instrument;

use super::AppSchema;
use super::context::{CallerCell, RequestAuth};
use super::loaders::Loaders;
use crate::auth::Actor;
use crate::error::Error;
use crate::notify::Wake;
use crate::service::Services;

pub const TRANSPORT_WS: &str = "graphql-transport-ws";
pub const LEGACY_WS: &str = "graphql-ws";

/// Limits of one WebSocket connection.
#[derive(Clone, Debug)]
pub struct WsConfig {
    pub init_timeout: Duration,
    pub keepalive: Duration,
    pub max_subscriptions: usize,
    pub max_message_bytes: usize,
    /// The limits, introspection and deadline every operation passes (as over HTTP).
    pub gate: std::sync::Arc<super::gate::Gate>,
    /// The upgrade request's `traceparent`: the parent of the connection's operations' spans.
    pub parent: crate::telemetry::Parent,
}

impl Default for WsConfig {
    fn default() -> Self {
        WsConfig {
            init_timeout: Duration::from_secs(10),
            keepalive: Duration::from_secs(30),
            max_subscriptions: 100,
            max_message_bytes: 64 * 1024,
            gate: std::sync::Arc::new(super::gate::Gate::new(
                &crate::config::EdgeConfig::default(),
                Default::default(),
            )),
            parent: Default::default(),
        }
    }
}

pub mod close {
    pub const INVALID_MESSAGE: u16 = 4400;
    pub const UNAUTHORIZED: u16 = 4401;
    pub const FORBIDDEN: u16 = 4403;
    pub const SUBPROTOCOL_NOT_ACCEPTABLE: u16 = 4406;
    pub const INIT_TIMEOUT: u16 = 4408;
    pub const DUPLICATE_SUBSCRIBER: u16 = 4409;
    pub const TOO_MANY_INIT: u16 = 4429;
    pub const MESSAGE_TOO_BIG: u16 = 1009;
    pub const GOING_AWAY: u16 = 1001;
}

/// `draining` turns true when the server shuts down: the connection then closes with 1001.
pub async fn upgrade(
    state: Services,
    schema: AppSchema,
    cfg: WsConfig,
    draining: watch::Receiver<bool>,
    ws: WebSocketUpgrade,
) -> impl IntoResponse {
    ws.protocols([TRANSPORT_WS, LEGACY_WS])
        .max_message_size(cfg.max_message_bytes)
        .max_frame_size(cfg.max_message_bytes)
        // Small buffers: an idle connection should cost little memory.
        .read_buffer_size(2 * 1024)
        .write_buffer_size(2 * 1024)
        .on_upgrade(move |socket| Connection::new(state, schema, cfg, draining, socket).run())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Transport,
    Legacy,
}

/// What one step of an operation's stream says: a response, or that the stream ended.
type Event = (String, Option<Response>);

struct Connection {
    state: Services,
    schema: AppSchema,
    cfg: WsConfig,
    socket: WebSocket,
    draining: watch::Receiver<bool>,
    protocol: Option<Protocol>,
    actor: Option<Actor>,
    /// When the token expires (seconds since the Unix epoch): the connection closes then.
    expires_at: i64,
    /// Woken when the rights of the token's subject change (`Hub::revoke`: through the API, or
    /// found by the instance's periodic sweep of its connected subjects).
    rights: Option<Wake>,
    init_seen: bool,
    /// The running operations by id, each with the handle that ends its stream.
    active: HashMap<String, AbortHandle>,
    /// Every running operation's responses, polled by the connection's own task.
    streams: SelectAll<BoxStream<'static, Event>>,
}

enum Flow {
    Continue,
    Close(u16, String),
}

impl Connection {
    fn new(
        state: Services,
        schema: AppSchema,
        cfg: WsConfig,
        draining: watch::Receiver<bool>,
        socket: WebSocket,
    ) -> Self {
        let protocol = match socket.protocol().and_then(|p| p.to_str().ok()) {
            Some(TRANSPORT_WS) => Some(Protocol::Transport),
            Some(LEGACY_WS) => Some(Protocol::Legacy),
            _ => None,
        };
        Connection {
            state,
            schema,
            cfg,
            socket,
            draining,
            protocol,
            actor: None,
            expires_at: i64::MAX,
            rights: None,
            init_seen: false,
            active: HashMap::new(),
            streams: SelectAll::new(),
        }
    }

    async fn run(mut self) {
        let _open = crate::metrics::Held::new(&self.state.metrics.ws_connections);
        let Some(protocol) = self.protocol else {
            self.close(
                close::SUBPROTOCOL_NOT_ACCEPTABLE,
                "Subprotocol not acceptable: use graphql-transport-ws",
            )
            .await;
            return;
        };
        let init_deadline = tokio::time::sleep(self.cfg.init_timeout);
        tokio::pin!(init_deadline);
        let mut keepalive = tokio::time::interval(self.cfg.keepalive);
        keepalive.tick().await;
        loop {
            let flow = tokio::select! {
                msg = self.socket.recv() => match msg {
                    None => return,
                    Some(Err(e)) => {
                        // Oversized messages and protocol violations surface here.
                        let text = e.to_string();
                        if text.to_lowercase().contains("too long") || text.to_lowercase().contains("too big") || text.contains("size") {
                            Flow::Close(close::MESSAGE_TOO_BIG, "Message too big".into())
                        } else {
                            return;
                        }
                    }
                    Some(Ok(msg)) => self.on_message(protocol, msg).await,
                },
                // A client that does not read holds this loop in `send`: its operations wait.
                Some((id, resp)) = self.streams.next(), if !self.streams.is_empty() => {
                    self.on_event(protocol, id, resp).await
                }
                () = draining(&mut self.draining) => Flow::Close(close::GOING_AWAY, "Server shutting down".into()),
                _ = &mut init_deadline, if self.actor.is_none() => {
                    Flow::Close(close::INIT_TIMEOUT, "Connection initialisation timeout".into())
                }
                // Rights end: at the token's expiry, and when the subject is deactivated.
                () = until_unix(self.expires_at), if self.actor.is_some() => {
                    Flow::Close(close::FORBIDDEN, "Forbidden: token expired".into())
                }
                () = woken(&mut self.rights) => self.check_rights().await,
                _ = keepalive.tick() => {
                    let ping = match protocol {
                        Protocol::Transport => json!({"type": "ping"}),
                        Protocol::Legacy => json!({"type": "ka"}),
                    };
                    if self.actor.is_some() { self.send(ping).await } else { Flow::Continue }
                }
            };
            if let Flow::Close(code, reason) = flow {
                self.close(code, &reason).await;
                return;
            }
        }
    }

    async fn close(&mut self, code: u16, reason: &str) {
        self.stop_all();
        let frame = CloseFrame {
            code,
            reason: Utf8Bytes::from(reason),
        };
        let _ = self.socket.send(Message::Close(Some(frame))).await;
        let _ = self.socket.close().await;
    }

    async fn send(&mut self, v: Value) -> Flow {
        match self.socket.send(Message::Text(Utf8Bytes::from(v.to_string()))).await {
            Ok(()) => Flow::Continue,
            Err(_) => Flow::Close(1011, "send failed".into()),
        }
    }

    async fn on_message(&mut self, protocol: Protocol, msg: Message) -> Flow {
        let text = match msg {
            Message::Text(t) => t,
            Message::Ping(_) | Message::Pong(_) => return Flow::Continue,
            Message::Close(_) => return Flow::Close(1000, "Normal Closure".into()),
            Message::Binary(_) => {
                return Flow::Close(
                    close::INVALID_MESSAGE,
                    "Invalid message: binary frames are not accepted".into(),
                );
            }
        };
        let Ok(v) = serde_json::from_str::<Value>(text.as_str()) else {
            return Flow::Close(close::INVALID_MESSAGE, "Invalid message: not JSON".into());
        };
        let Some(kind) = v.get("type").and_then(Value::as_str) else {
            return Flow::Close(close::INVALID_MESSAGE, "Invalid message: no type".into());
        };
        match (protocol, kind) {
            (_, "connection_init") => self.on_init(protocol, v.get("payload")).await,
            (Protocol::Transport, "ping") => self.send(json!({"type": "pong"})).await,
            (Protocol::Transport, "pong") => Flow::Continue,
            (Protocol::Transport, "subscribe") | (Protocol::Legacy, "start") => self.on_subscribe(protocol, &v).await,
            (Protocol::Transport, "complete") | (Protocol::Legacy, "stop") => {
                let Some(id) = v.get("id").and_then(Value::as_str) else {
                    return Flow::Close(close::INVALID_MESSAGE, "Invalid message: complete without id".into());
                };
                self.stop(id);
                Flow::Continue
            }
            (Protocol::Legacy, "connection_terminate") => Flow::Close(1000, "Normal Closure".into()),
            (_, other) => Flow::Close(
                close::INVALID_MESSAGE,
                format!("Invalid message: unknown type '{other}'"),
            ),
        }
    }

    async fn on_init(&mut self, protocol: Protocol, payload: Option<&Value>) -> Flow {
        if self.init_seen {
            return Flow::Close(close::TOO_MANY_INIT, "Too many initialisation requests".into());
        }
        self.init_seen = true;
        let header = payload
            .and_then(|p| p.get("Authorization").or_else(|| p.get("authorization")))
            .and_then(Value::as_str);
        let verified = match self.state.keys.verify_header_token(header) {
            Ok(v) => {
                // Listening for changes of the subject's rights before they are checked: a
                // revocation between the two is not missed.
                self.rights = Some(self.state.hub.principal(&v.actor.subject));
                // The subject must still be allowed to act, as for every HTTP request.
                crate::service::Caller::load(&self.state, &v.actor).await.map(|_| v)
            }
            Err(e) => Err(e),
        };
        match verified {
            Ok(v) => {
                self.expires_at = v.expires_at;
                self.actor = Some(v.actor);
                self.send(json!({"type": "connection_ack"})).await
            }
            Err(e @ Error::Internal(_)) => {
                tracing::warn!(error = %e, "connection_init: rights could not be checked");
                Flow::Close(1011, "Internal error: try again".into())
            }
            Err(e) => {
                if protocol == Protocol::Legacy {
                    let _ = self
                        .send(json!({"type": "connection_error", "payload": {"message": e.to_string()}}))
                        .await;
                }
                Flow::Close(close::FORBIDDEN, format!("Forbidden: {e}"))
            }
        }
    }

    async fn on_subscribe(&mut self, protocol: Protocol, v: &Value) -> Flow {
        let (Some(id), Some(payload)) = (v.get("id").and_then(Value::as_str), v.get("payload")) else {
            return Flow::Close(
                close::INVALID_MESSAGE,
                "Invalid message: subscribe needs an id and a payload".into(),
            );
        };
        let Some(actor) = self.actor.clone() else {
            return Flow::Close(close::UNAUTHORIZED, "Unauthorized".into());
        };
        if chrono::Utc::now().timestamp() >= self.expires_at {
            return Flow::Close(close::FORBIDDEN, "Forbidden: token expired".into());
        }
        if self.active.contains_key(id) {
            return Flow::Close(
                close::DUPLICATE_SUBSCRIBER,
                format!("Subscriber for {id} already exists"),
            );
        }
        let sent = payload.get("query").and_then(Value::as_str).map(str::to_owned);
        let extensions = payload.get("extensions").and_then(Value::as_object);
        if sent.is_none() && extensions.is_none_or(|e| !e.contains_key("persistedQuery")) {
            return Flow::Close(
                close::INVALID_MESSAGE,
                "Invalid message: subscribe payload needs a query".into(),
            );
        }
        // The document: sent, or named by its hash (persisted queries, trusted documents).
        let query = match self.cfg.gate.documents.resolve(sent, extensions) {
            Ok(q) => q,
            Err(refused) => {
                self.state.metrics.request("unknown", None, refused.code, None);
                let err = json!([{"message": refused.message, "extensions": {"code": refused.code}}]);
                return self.send(error_message(protocol, id, err)).await;
            }
        };
        if self.active.len() >= self.cfg.max_subscriptions {
            let err = json!([{"message": format!("at most {} operations per connection", self.cfg.max_subscriptions), "extensions": {"code": "BAD_USER_INPUT"}}]);
            return self.send(error_message(protocol, id, err)).await;
        }
        if let Err(wait) = self.cfg.gate.limiter.take(&actor) {
            let secs = super::limits::retry_after_secs(wait);
            let name = payload.get("operationName").and_then(Value::as_str);
            self.state.metrics.request("unknown", name, "RATE_LIMITED", None);
            let err = json!([{"message": format!("too many operations: retry after {secs} s"),
                "extensions": {"code": "RATE_LIMITED", "retryAfter": secs}}]);
            return self.send(error_message(protocol, id, err)).await;
        }
        let mut req = Request::new(query);
        if let Some(vars) = payload.get("variables").filter(|v| !v.is_null()) {
            req = req.variables(Variables::from_json(vars.clone()));
        }
        if let Some(op) = payload.get("operationName").and_then(Value::as_str) {
            req = req.operation_name(op);
        }
        // Refused before anything runs, as over HTTP (the connection's caller is authenticated).
        let name = payload.get("operationName").and_then(Value::as_str).map(str::to_owned);
        let metrics = self.state.metrics.clone();
        if let Err(resp) = self.cfg.gate.admit(&mut req, true) {
            metrics.request("unknown", name.as_deref(), &super::outcome(&resp), None);
            let err = serde_json::to_value(&resp.errors).unwrap_or_else(|_| json!([]));
            return self.send(error_message(protocol, id, err)).await;
        }
        use async_graphql::parser::types::OperationType;
        // The operation that runs: the one named, or the document's only one.
        let picked = req.parsed_query().ok().and_then(|doc| {
            doc.operations
                .iter()
                .find(|(n, _)| name.is_none() || n.map(|n| n.as_str()) == name.as_deref())
                .map(|(n, op)| (n.map(|n| n.to_string()), op.node.ty))
        });
        let ty = picked.as_ref().map(|(_, ty)| *ty);
        let name = name.or_else(|| picked.and_then(|(n, _)| n));
        let is_subscription = ty == Some(OperationType::Subscription);
        let span = crate::telemetry::operation_span(
            match ty {
                Some(OperationType::Query) => "query",
                Some(OperationType::Mutation) => "mutation",
                Some(OperationType::Subscription) => "subscription",
                None => "unknown",
            },
            name.as_deref(),
            &self.cfg.parent,
        );
        // A stream lives as long as its subscription: its loaders batch but do not cache, so
        // each event is resolved against the rows as they are then.
        let req = req
            .data(RequestAuth(Ok(actor)))
            .data(CallerCell::default())
            .data(Loaders::uncached(&self.state.db));
        let responses = if is_subscription {
            // Counted as set up (or refused) by its first answer; live while its stream is.
            let live = crate::metrics::Held::new(&metrics.subscriptions);
            let mut first = true;
            // The operation's span ends with its first answer (the start of the subscription).
            let mut op = Some(span.clone());
            let stream = self
                .schema
                .execute_stream(req)
                .map(move |r| {
                    let _ = &live;
                    if std::mem::take(&mut first) {
                        let outcome = if r.errors.is_empty() {
                            "OK".into()
                        } else {
                            super::outcome(&r)
                        };
                        metrics.request("subscription", name.as_deref(), &outcome, None);
                        if let Some(op) = op.take() {
                            crate::telemetry::record_outcome(&op, &outcome);
                        }
                    }
                    r
                })
                .boxed();
            if span.is_disabled() {
                stream
            } else {
                crate::telemetry::until_first(stream, span).boxed()
            }
        } else {
            // A query or mutation: one answer, under the operation deadline.
            let (schema, gate) = (self.schema.clone(), self.cfg.gate.clone());
            let kind = if ty == Some(OperationType::Mutation) {
                "mutation"
            } else {
                "query"
            };
            let op = span.clone();
            futures::stream::once(
                async move {
                    let started = std::time::Instant::now();
                    let mut r = gate.within_deadline(schema.execute(req)).await;
                    super::ensure_codes(&mut r);
                    let outcome = super::outcome(&r);
                    metrics.request(kind, name.as_deref(), &outcome, Some(started.elapsed()));
                    crate::telemetry::record_outcome(&op, &outcome);
                    r
                }
                .instrument(span),
            )
            .boxed()
        };
        let suggest = self.cfg.gate.may_introspect(true);
        let responses = responses
            .map(move |mut r| {
                if !suggest {
                    super::gate::strip_suggestions(&mut r);
                }
                Some(r)
            })
            .chain(futures::stream::once(async { None }));
        let (responses, handle) = futures::stream::abortable(responses);
        let id = id.to_owned();
        self.active.insert(id.clone(), handle);
        self.streams.push(responses.map(move |r| (id.clone(), r)).boxed());
        Flow::Continue
    }

    async fn on_event(&mut self, protocol: Protocol, id: String, resp: Option<Response>) -> Flow {
        if !self.active.contains_key(&id) {
            return Flow::Continue; // completed by the client: nothing more is sent for it
        }
        match resp {
            None => {
                self.active.remove(&id);
                self.send(json!({"type": "complete", "id": id})).await
            }
            Some(mut resp) => {
                super::ensure_codes(&mut resp);
                let body =
                    serde_json::to_value(&resp).unwrap_or_else(|_| json!({"errors": [{"message": "internal error"}]}));
                // Errors with no data (validation, authentication, refused subscriptions): the
                // operation ends with an error message and no complete.
                if !resp.errors.is_empty() && matches!(resp.data, async_graphql::Value::Null) {
                    self.stop(&id);
                    return self.send(error_message(protocol, &id, body["errors"].clone())).await;
                }
                let kind = if protocol == Protocol::Transport {
                    "next"
                } else {
                    "data"
                };
                self.send(json!({"type": kind, "id": id, "payload": body})).await
            }
        }
    }
}

impl Connection {
    /// Whether the token's subject may still act: if not, the connection closes with 4403 and
    /// every operation on it ends. A failure to check (database away) changes nothing.
    async fn check_rights(&mut self) -> Flow {
        let Some(actor) = &self.actor else {
            return Flow::Continue;
        };
        match crate::service::Caller::load(&self.state, actor).await {
            Ok(_) => Flow::Continue,
            Err(Error::Unauthenticated(why) | Error::Forbidden(why)) => {
                Flow::Close(close::FORBIDDEN, format!("Forbidden: {why}"))
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not check a connection's rights; checking again later");
                Flow::Continue
            }
        }
    }

    /// Ends one operation: its stream stops at its next poll and nothing more is sent for it.
    fn stop(&mut self, id: &str) {
        if let Some(h) = self.active.remove(id) {
            h.abort();
        }
    }

    fn stop_all(&mut self) {
        for (_, h) in self.active.drain() {
            h.abort();
        }
    }
}

/// Resolves at `unix` (seconds since the epoch); never for `i64::MAX`.
async fn until_unix(unix: i64) {
    if unix == i64::MAX {
        return std::future::pending().await;
    }
    let left = unix.saturating_sub(chrono::Utc::now().timestamp()).max(0) as u64;
    tokio::time::sleep(Duration::from_secs(left)).await;
}

/// Resolves when the rights wake-up fires; never without one.
async fn woken(w: &mut Option<Wake>) {
    match w {
        Some(w) => w.changed().await,
        None => std::future::pending().await,
    }
}

/// Resolves once the server shuts down.
async fn draining(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|d| *d).await;
}

fn error_message(protocol: Protocol, id: &str, errors: Value) -> Value {
    match protocol {
        Protocol::Transport => json!({"type": "error", "id": id, "payload": errors}),
        Protocol::Legacy => json!({"type": "error", "id": id, "payload": errors.get(0).cloned().unwrap_or(errors)}),
    }
}
