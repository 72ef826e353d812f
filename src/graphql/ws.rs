//! GraphQL over WebSocket at `/graphql/ws`: the `graphql-transport-ws` protocol as its
//! PROTOCOL.md specifies (close codes, ping/pong, init timeout, duplicate ids), and the legacy
//! `graphql-ws` (subscriptions-transport-ws) protocol. One task per connection drives every
//! operation of that connection; the token travels in the `connection_init` payload.
use std::collections::HashSet;
use std::time::Duration;

use async_graphql::{Request, Response, Variables};
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::response::IntoResponse;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use super::AppSchema;
use super::context::RequestAuth;
use super::loaders::Loaders;
use crate::app::AppState;
use crate::auth::Actor;

pub const TRANSPORT_WS: &str = "graphql-transport-ws";
pub const LEGACY_WS: &str = "graphql-ws";

/// Limits of one WebSocket connection.
#[derive(Clone, Debug)]
pub struct WsConfig {
    pub init_timeout: Duration,
    pub keepalive: Duration,
    pub max_subscriptions: usize,
    pub max_message_bytes: usize,
}

impl Default for WsConfig {
    fn default() -> Self {
        WsConfig {
            init_timeout: Duration::from_secs(10),
            keepalive: Duration::from_secs(30),
            max_subscriptions: 100,
            max_message_bytes: 64 * 1024,
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
}

pub async fn upgrade(state: AppState, schema: AppSchema, cfg: WsConfig, ws: WebSocketUpgrade) -> impl IntoResponse {
    ws.protocols([TRANSPORT_WS, LEGACY_WS])
        .max_message_size(cfg.max_message_bytes)
        .max_frame_size(cfg.max_message_bytes)
        // Small buffers: an idle connection should cost little memory.
        .read_buffer_size(4 * 1024)
        .write_buffer_size(4 * 1024)
        .on_upgrade(move |socket| Connection::new(state, schema, cfg, socket).run())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Transport,
    Legacy,
}

/// What one step of an operation's stream says: a response, or that the stream ended.
type Event = (String, Option<Response>);

struct Connection {
    state: AppState,
    schema: AppSchema,
    cfg: WsConfig,
    socket: WebSocket,
    protocol: Option<Protocol>,
    actor: Option<Actor>,
    init_seen: bool,
    active: HashSet<String>,
    aborts: std::collections::HashMap<String, AbortHandle>,
    events_tx: mpsc::Sender<Event>,
    events: mpsc::Receiver<Event>,
}

enum Flow {
    Continue,
    Close(u16, String),
}

impl Connection {
    fn new(state: AppState, schema: AppSchema, cfg: WsConfig, socket: WebSocket) -> Self {
        let protocol = match socket.protocol().and_then(|p| p.to_str().ok()) {
            Some(TRANSPORT_WS) => Some(Protocol::Transport),
            Some(LEGACY_WS) => Some(Protocol::Legacy),
            _ => None,
        };
        // Each operation runs in its own task and hands its responses to the connection over
        // this channel (bounded: a client that does not read slows its operations down).
        let (events_tx, events) = mpsc::channel(16);
        Connection {
            state,
            schema,
            cfg,
            socket,
            protocol,
            actor: None,
            init_seen: false,
            active: HashSet::new(),
            aborts: Default::default(),
            events_tx,
            events,
        }
    }

    async fn run(mut self) {
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
                Some((id, resp)) = self.events.recv() => self.on_event(protocol, id, resp).await,
                _ = &mut init_deadline, if self.actor.is_none() => {
                    Flow::Close(close::INIT_TIMEOUT, "Connection initialisation timeout".into())
                }
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
        for (_, h) in self.aborts.drain() {
            h.abort();
        }
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
                self.active.remove(id);
                if let Some(h) = self.aborts.remove(id) {
                    h.abort();
                }
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
        match self.state.keys.verify_header(header) {
            Ok(actor) => {
                self.actor = Some(actor);
                self.send(json!({"type": "connection_ack"})).await
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
        if self.active.contains(id) {
            return Flow::Close(
                close::DUPLICATE_SUBSCRIBER,
                format!("Subscriber for {id} already exists"),
            );
        }
        let Some(query) = payload.get("query").and_then(Value::as_str) else {
            return Flow::Close(
                close::INVALID_MESSAGE,
                "Invalid message: subscribe payload needs a query".into(),
            );
        };
        if self.active.len() >= self.cfg.max_subscriptions {
            let err = json!([{"message": format!("at most {} operations per connection", self.cfg.max_subscriptions), "extensions": {"code": "BAD_USER_INPUT"}}]);
            return self.send(error_message(protocol, id, err)).await;
        }
        let mut req = Request::new(query);
        if let Some(vars) = payload.get("variables").filter(|v| !v.is_null()) {
            req = req.variables(Variables::from_json(vars.clone()));
        }
        if let Some(op) = payload.get("operationName").and_then(Value::as_str) {
            req = req.operation_name(op);
        }
        let req = req.data(RequestAuth(Ok(actor))).data(Loaders::new(&self.state.db));
        let mut responses = self.schema.execute_stream(req);
        let tx = self.events_tx.clone();
        let id_owned = id.to_owned();
        let task = tokio::spawn({
            let id = id_owned.clone();
            async move {
                while let Some(r) = responses.next().await {
                    if tx.send((id.clone(), Some(r))).await.is_err() {
                        return;
                    }
                }
                let _ = tx.send((id, None)).await;
            }
        });
        self.active.insert(id_owned.clone());
        self.aborts.insert(id_owned, task.abort_handle());
        Flow::Continue
    }

    async fn on_event(&mut self, protocol: Protocol, id: String, resp: Option<Response>) -> Flow {
        if !self.active.contains(&id) {
            return Flow::Continue; // completed by the client: nothing more is sent for it
        }
        match resp {
            None => {
                self.active.remove(&id);
                self.aborts.remove(&id);
                self.send(json!({"type": "complete", "id": id})).await
            }
            Some(mut resp) => {
                super::ensure_codes(&mut resp);
                let body =
                    serde_json::to_value(&resp).unwrap_or_else(|_| json!({"errors": [{"message": "internal error"}]}));
                // Errors with no data (validation, authentication, refused subscriptions): the
                // operation ends with an error message and no complete.
                if !resp.errors.is_empty() && matches!(resp.data, async_graphql::Value::Null) {
                    self.active.remove(&id);
                    if let Some(h) = self.aborts.remove(&id) {
                        h.abort();
                    }
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

impl Drop for Connection {
    /// However the connection ends, its operations end with it.
    fn drop(&mut self) {
        for (_, h) in self.aborts.drain() {
            h.abort();
        }
    }
}

fn error_message(protocol: Protocol, id: &str, errors: Value) -> Value {
    match protocol {
        Protocol::Transport => json!({"type": "error", "id": id, "payload": errors}),
        Protocol::Legacy => json!({"type": "error", "id": id, "payload": errors.get(0).cloned().unwrap_or(errors)}),
    }
}
