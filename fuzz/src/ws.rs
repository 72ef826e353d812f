//! The `ws_messages` target: a sequence of client messages over one WebSocket connection to a
//! listening server (graphql-transport-ws at `/graphql/ws`). An input that starts with
//! `proto:` is a script: the subprotocol on the first line, then one text frame per line
//! (`$PLACEHOLDERS` for tokens and IDs; `bin:`, `close:`, `wait` lines for other frames). Any
//! other input is decoded structurally: the protocol's messages with fuzzed fields and
//! payloads (GraphQL documents from the schema), raw text, invalid UTF-8, binary, control and
//! fragmented frames. The server must answer in order and never panic: after the input, a
//! final `ping` (legacy protocol: a `start`) must be answered, or the connection closed, within
//! the bound.
use std::cell::Cell;
use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::{CloseFrame, Frame};
use tokio_tungstenite::tungstenite::{Bytes, Message};

use crate::docgen::{self, Draw, OpKind};
use crate::world::{BOUND, server, world};

const SENTINEL: &str = "__sentinel";

/// How a connection ended (for the smoke run's statistics).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The handshake was refused (no such subprotocol header value, …).
    Refused,
    /// The final ping was answered.
    Answered,
    /// The server closed the connection, with this code (0: no close frame).
    Closed(u16),
}

/// Runs one input. Panics on a finding: a hang, or a server that stopped answering.
pub fn run(data: &[u8]) -> Outcome {
    let w = world();
    let addr = server();
    let (proto, frames) = if data.starts_with(b"proto:") {
        script(&w.substitute(data))
    } else {
        let mut u = Unstructured::new(data);
        let Ok(input) = Input::arbitrary(&mut u) else {
            return Outcome::Refused;
        };
        let mut d = Draw::new(&mut u);
        input.frames(&mut d)
    };
    crate::known::clear();
    w.rt.block_on(async move {
        match tokio::time::timeout(BOUND, exchange(addr, proto, frames)).await {
            Ok(o) => o,
            Err(_) => panic!("hang: the WebSocket server neither answered nor closed within {BOUND:?}"),
        }
    })
}

/// A fresh connection is acknowledged and runs a query: the server still serves.
pub fn check_alive() {
    let w = world();
    let addr = server();
    let token = w.token("ENGINEER_TOKEN").to_owned();
    w.rt.block_on(async move {
        let fut = async {
            let mut req = format!("ws://{addr}/graphql/ws").into_client_request().unwrap();
            req.headers_mut()
                .insert("Sec-WebSocket-Protocol", "graphql-transport-ws".parse().unwrap());
            let (mut ws, _) = tokio_tungstenite::connect_async_with_config(req, None, true)
                .await
                .expect("the server accepts a connection");
            let init = json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {token}")}});
            ws.send(Message::Text(init.to_string().into())).await.unwrap();
            let sub = json!({"type": "subscribe", "id": "alive", "payload": {"query": "{ __typename }"}});
            ws.send(Message::Text(sub.to_string().into())).await.unwrap();
            let mut seen = Vec::new();
            while let Some(Ok(m)) = ws.next().await {
                if let Message::Text(t) = m {
                    let v: Value = serde_json::from_str(&t).unwrap();
                    let kind = v["type"].as_str().unwrap_or("").to_owned();
                    seen.push(kind.clone());
                    if kind == "complete" {
                        return;
                    }
                } else if let Message::Close(c) = m {
                    panic!("the server closed a healthy connection: {c:?} after {seen:?}");
                }
            }
            panic!("the server dropped a healthy connection after {seen:?}");
        };
        if tokio::time::timeout(BOUND, fut).await.is_err() {
            panic!("hang: a fresh connection was not served within {BOUND:?}");
        }
    });
}

/// One frame to send, or a pause.
#[derive(Debug)]
pub enum Out {
    Msg(Message),
    Wait(Duration),
}

async fn exchange(addr: std::net::SocketAddr, proto: Option<String>, frames: Vec<Out>) -> Outcome {
    let mut req = format!("ws://{addr}/graphql/ws").into_client_request().unwrap();
    if let Some(p) = &proto
        && let Ok(v) = p.parse()
    {
        req.headers_mut().insert("Sec-WebSocket-Protocol", v);
    }
    let (ws, resp) = match tokio_tungstenite::connect_async_with_config(req, None, true).await {
        Ok(c) => c,
        Err(e) => {
            if std::env::var_os("FUZZ_DEBUG").is_some() {
                eprintln!("handshake refused ({proto:?}): {e}");
            }
            return Outcome::Refused;
        }
    };
    let negotiated = resp
        .headers()
        .get("sec-websocket-protocol")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let legacy = negotiated.as_deref() == Some("graphql-ws");
    let (mut tx, mut rx) = ws.split();
    // Pings the server must answer in order (ours, and the input's own), counted as sent.
    let expected = Cell::new(0usize);
    let sent_all = Cell::new(false);
    let send = async {
        for f in frames {
            match f {
                Out::Wait(d) => tokio::time::sleep(d).await,
                Out::Msg(m) => {
                    let is_ping = !legacy && matches!(&m, Message::Text(t) if is_ping_message(t));
                    let closing = matches!(m, Message::Close(_));
                    if tx.send(m).await.is_err() {
                        break;
                    }
                    if is_ping {
                        expected.set(expected.get() + 1);
                    }
                    if closing {
                        break;
                    }
                }
            }
        }
        let sentinel = if legacy {
            json!({"type": "start", "id": SENTINEL, "payload": {"query": "{ __typename }"}})
        } else {
            json!({"type": "ping"})
        };
        if tx.send(Message::Text(sentinel.to_string().into())).await.is_ok() && !legacy {
            expected.set(expected.get() + 1);
        }
        sent_all.set(true);
    };
    let recv = async {
        let mut pongs = 0usize;
        loop {
            let msg = rx.next().await;
            match msg {
                None | Some(Err(_)) => return Outcome::Closed(0),
                Some(Ok(Message::Close(c))) => return Outcome::Closed(c.map(|c| u16::from(c.code)).unwrap_or(0)),
                Some(Ok(Message::Text(t))) => {
                    let v: Value = serde_json::from_str(&t)
                        .unwrap_or_else(|e| panic!("the server sent a text frame that is not JSON ({e}): {t}"));
                    let kind = v
                        .get("type")
                        .and_then(Value::as_str)
                        .unwrap_or_else(|| panic!("no type: {v}"));
                    if let Err(finding) = check_message(&v, kind)
                        && crate::known::classify(&crate::known::take()).is_none()
                    {
                        panic!("{finding}");
                    }
                    if kind == "pong" {
                        pongs += 1;
                    }
                    let ours = v.get("id").and_then(Value::as_str) == Some(SENTINEL);
                    if (legacy && ours && kind != "data") || (!legacy && sent_all.get() && pongs >= expected.get()) {
                        return Outcome::Answered;
                    }
                }
                Some(Ok(_)) => {}
            }
        }
    };
    let ((), outcome) = tokio::join!(send, recv);
    outcome
}

/// What the server's own messages must look like: errors carry codes, none is INTERNAL.
fn check_message(v: &Value, kind: &str) -> Result<(), String> {
    let errors = match kind {
        "error" => v.get("payload"),
        "next" | "data" => v.pointer("/payload/errors"),
        _ => None,
    };
    let Some(errors) = errors else {
        return Ok(());
    };
    let list = match errors {
        Value::Array(a) => a.clone(),
        other => vec![other.clone()],
    };
    for e in list {
        let code = e.pointer("/extensions/code").and_then(Value::as_str);
        if code.is_none_or(str::is_empty) {
            return Err(format!("a WebSocket error without extensions.code: {v}"));
        }
        if code == Some("INTERNAL") {
            return Err(format!("an INTERNAL error over the WebSocket: {v}"));
        }
    }
    Ok(())
}

fn is_ping_message(t: &str) -> bool {
    serde_json::from_str::<Value>(t)
        .ok()
        .and_then(|v| v.get("type").and_then(Value::as_str).map(|k| k == "ping"))
        .unwrap_or(false)
}

fn script(data: &[u8]) -> (Option<String>, Vec<Out>) {
    let mut lines = data.split(|&b| b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let first = lines.next().unwrap_or(b"");
    let proto = String::from_utf8_lossy(first.strip_prefix(b"proto:").unwrap_or(b""))
        .trim()
        .to_owned();
    let proto = (!proto.is_empty()).then_some(proto);
    let mut out = Vec::new();
    for line in lines {
        if line.is_empty() {
            continue;
        }
        if let Some(b) = line.strip_prefix(b"bin:") {
            out.push(Out::Msg(Message::Binary(Bytes::copy_from_slice(b))));
        } else if let Some(code) = line.strip_prefix(b"close:") {
            let code = std::str::from_utf8(code)
                .ok()
                .and_then(|c| c.trim().parse::<u16>().ok())
                .unwrap_or(1000);
            out.push(Out::Msg(Message::Close(Some(CloseFrame {
                code: CloseCode::from(code),
                reason: "bye".into(),
            }))));
        } else if line == b"wait" {
            out.push(Out::Wait(Duration::from_millis(20)));
        } else {
            out.push(text_frame(line));
        }
    }
    (proto, out)
}

/// A text frame of `bytes`, valid UTF-8 or not (then sent as a raw frame).
fn text_frame(bytes: &[u8]) -> Out {
    match std::str::from_utf8(bytes) {
        Ok(s) => Out::Msg(Message::Text(s.into())),
        Err(_) => Out::Msg(Message::Frame(Frame::message(
            Bytes::copy_from_slice(bytes),
            OpCode::Data(Data::Text),
            true,
        ))),
    }
}

#[derive(Arbitrary, Debug)]
enum Proto {
    Transport,
    Legacy,
    None,
    /// Both offered, in either order.
    Both(bool),
    Garbage(String),
}

#[derive(Arbitrary, Debug)]
enum Auth {
    Valid(u8),
    Lowercase(u8),
    Bad(u8),
    Missing,
    NotString,
    Garbage(String),
}

#[derive(Arbitrary, Debug)]
enum InitShape {
    Payload,
    /// The token under `authorization`.
    LowerKey,
    NoPayload,
    NullPayload,
    StringPayload,
    ExtraFields,
}

#[derive(Arbitrary, Debug)]
enum Id {
    Small(u8),
    Empty,
    Long(u16),
    Number,
    Missing,
    Null,
    Unicode,
}

#[derive(Arbitrary, Debug)]
enum Payload {
    /// A generated document: mostly subscriptions, then queries and mutations.
    Document {
        vars: bool,
        op_name: bool,
    },
    MissingQuery,
    QueryNotString,
    NotObject,
    WeirdVariables,
}

#[derive(Arbitrary, Debug)]
enum Msg {
    Init(Auth, InitShape),
    Ping(bool),
    Pong,
    Subscribe(Id, Payload),
    Complete(Id),
    LegacyStart(Id, Payload),
    LegacyStop(Id),
    LegacyTerminate,
    UnknownType(String),
    NoType,
    Json,
    Text(String),
    InvalidUtf8(Vec<u8>),
    Binary(Vec<u8>),
    WsPing(Vec<u8>),
    WsPong,
    Close(u16, String),
    /// A text message in continuation frames.
    Fragmented(u8, bool),
    /// A message of about this many KiB (the limit is 64).
    Big(u8),
    ReservedOpcode(u8),
    Wait(u8),
}

#[derive(Arbitrary, Debug)]
struct Input {
    start: Start,
    proto: Proto,
    msgs: Vec<Msg>,
}

/// Most structured inputs open a connection the server accepts (a subprotocol it speaks, a
/// valid token), so that the fuzzer spends its time on operations, not on refusals.
#[derive(Arbitrary, Debug)]
enum Start {
    /// graphql-transport-ws, initialised with the token of this index.
    Transport(u8),
    Transport2(u8),
    Transport3(u8),
    /// The legacy protocol, initialised.
    Legacy(u8),
    /// As `proto` and the messages say.
    Wild,
    Wild2,
}

impl Input {
    fn frames(self, d: &mut Draw) -> (Option<String>, Vec<Out>) {
        let w = world();
        let proto = match self.proto {
            Proto::Transport => Some("graphql-transport-ws".to_owned()),
            Proto::Legacy => Some("graphql-ws".to_owned()),
            Proto::None => None,
            Proto::Both(true) => Some("graphql-transport-ws, graphql-ws".to_owned()),
            Proto::Both(false) => Some("graphql-ws, graphql-transport-ws".to_owned()),
            Proto::Garbage(g) => Some(g),
        };
        let mut out = Vec::new();
        let (proto, init) = match self.start {
            Start::Transport(i) | Start::Transport2(i) | Start::Transport3(i) => {
                (Some("graphql-transport-ws".to_owned()), Some(i))
            }
            Start::Legacy(i) => (Some("graphql-ws".to_owned()), Some(i)),
            Start::Wild | Start::Wild2 => (proto, None),
        };
        if let Some(i) = init {
            let token = &w.tokens[i as usize % w.tokens.len()].1;
            let v = json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {token}")}});
            out.push(Out::Msg(Message::Text(v.to_string().into())));
        }
        let mut waits = 0;
        for m in self.msgs.into_iter().take(16) {
            let v = match m {
                Msg::Init(auth, shape) => {
                    let token = match auth {
                        Auth::Valid(i) => json!(format!("Bearer {}", w.tokens[i as usize % w.tokens.len()].1)),
                        Auth::Lowercase(i) => json!(format!("bearer {}", w.tokens[i as usize % w.tokens.len()].1)),
                        Auth::Bad(i) => json!(format!("Bearer {}", w.bad_tokens[i as usize % w.bad_tokens.len()])),
                        Auth::Missing => Value::Null,
                        Auth::NotString => json!({"token": 1}),
                        Auth::Garbage(g) => json!(g),
                    };
                    let mut payload = serde_json::Map::new();
                    if !token.is_null() {
                        let key = if matches!(shape, InitShape::LowerKey) {
                            "authorization"
                        } else {
                            "Authorization"
                        };
                        payload.insert(key.into(), token);
                    }
                    match shape {
                        InitShape::Payload | InitShape::LowerKey => {
                            json!({"type": "connection_init", "payload": payload})
                        }
                        InitShape::NoPayload => json!({"type": "connection_init"}),
                        InitShape::NullPayload => json!({"type": "connection_init", "payload": null}),
                        InitShape::StringPayload => json!({"type": "connection_init", "payload": "Bearer x"}),
                        InitShape::ExtraFields => {
                            payload.insert("x".into(), docgen::small_json(d, 2));
                            json!({"type": "connection_init", "payload": payload, "id": "1", "extra": [1]})
                        }
                    }
                }
                Msg::Ping(with_payload) => {
                    if with_payload {
                        json!({"type": "ping", "payload": docgen::small_json(d, 2)})
                    } else {
                        json!({"type": "ping"})
                    }
                }
                Msg::Pong => json!({"type": "pong"}),
                Msg::Subscribe(id, p) => with_id(json!({"type": "subscribe"}), id, Some(payload(d, p))),
                Msg::Complete(id) => with_id(json!({"type": "complete"}), id, None),
                Msg::LegacyStart(id, p) => with_id(json!({"type": "start"}), id, Some(payload(d, p))),
                Msg::LegacyStop(id) => with_id(json!({"type": "stop"}), id, None),
                Msg::LegacyTerminate => json!({"type": "connection_terminate"}),
                Msg::UnknownType(t) => json!({"type": t}),
                Msg::NoType => json!({"id": "1", "payload": {}}),
                Msg::Json => docgen::small_json(d, 3),
                Msg::Text(t) => {
                    out.push(Out::Msg(Message::Text(t.into())));
                    continue;
                }
                Msg::InvalidUtf8(mut b) => {
                    b.push(0xff);
                    out.push(text_frame(&b));
                    continue;
                }
                Msg::Binary(b) => {
                    out.push(Out::Msg(Message::Binary(b.into())));
                    continue;
                }
                Msg::WsPing(b) => {
                    out.push(Out::Msg(Message::Ping(Bytes::from(
                        b.into_iter().take(125).collect::<Vec<_>>(),
                    ))));
                    continue;
                }
                Msg::WsPong => {
                    out.push(Out::Msg(Message::Pong(Bytes::new())));
                    continue;
                }
                Msg::Close(code, reason) => {
                    let reason: String = reason.chars().take(30).collect();
                    out.push(Out::Msg(Message::Close(Some(CloseFrame {
                        code: CloseCode::from(code),
                        reason: reason.into(),
                    }))));
                    continue;
                }
                Msg::Fragmented(n, finish) => {
                    let text = json!({"type": "ping"}).to_string().into_bytes();
                    let pieces = (n as usize % 4) + 2;
                    let size = text.len().div_ceil(pieces);
                    for (i, chunk) in text.chunks(size).enumerate() {
                        let opcode = if i == 0 { Data::Text } else { Data::Continue };
                        let last = finish && (i + 1) * size >= text.len();
                        out.push(Out::Msg(Message::Frame(Frame::message(
                            Bytes::copy_from_slice(chunk),
                            OpCode::Data(opcode),
                            last,
                        ))));
                    }
                    continue;
                }
                Msg::Big(k) => {
                    let n = (k as usize % 80) * 1024 + 10;
                    let filler = "a".repeat(n);
                    json!({"type": "subscribe", "id": "big", "payload": {"query": format!("{{ __typename }} # {filler}")}})
                }
                Msg::ReservedOpcode(op) => {
                    out.push(Out::Msg(Message::Frame(Frame::message(
                        Bytes::from_static(b"x"),
                        OpCode::Data(Data::Reserved(3 + op % 5)),
                        true,
                    ))));
                    continue;
                }
                Msg::Wait(ms) => {
                    waits += 1;
                    if waits <= 2 {
                        out.push(Out::Wait(Duration::from_millis(u64::from(ms % 20))));
                    }
                    continue;
                }
            };
            out.push(Out::Msg(Message::Text(v.to_string().into())));
        }
        (proto, out)
    }
}

fn with_id(mut v: Value, id: Id, payload: Option<Value>) -> Value {
    let id = match id {
        Id::Small(n) => Some(json!((n % 4).to_string())),
        Id::Empty => Some(json!("")),
        Id::Long(n) => Some(json!("i".repeat(n as usize % 5000))),
        Id::Number => Some(json!(1)),
        Id::Missing => None,
        Id::Null => Some(Value::Null),
        Id::Unicode => Some(json!("é\u{0}\u{1F600}")),
    };
    if let Some(id) = id {
        v["id"] = id;
    }
    if let Some(p) = payload {
        v["payload"] = p;
    }
    v
}

fn payload(d: &mut Draw, p: Payload) -> Value {
    match p {
        Payload::Document { vars, op_name } => {
            let kind = match d.below(8) {
                0..=4 => OpKind::Subscription,
                5 | 6 => OpKind::Query,
                _ => OpKind::Mutation,
            };
            let doc = docgen::document(d, &world().pools, Some(kind));
            let mut p = json!({"query": doc.text});
            if vars {
                p["variables"] = Value::Object(doc.variables);
            }
            if op_name && let Some(n) = doc.operation_name {
                p["operationName"] = json!(n);
            }
            p
        }
        Payload::MissingQuery => json!({"variables": {}}),
        Payload::QueryNotString => json!({"query": {"a": 1}}),
        Payload::NotObject => json!([1, 2]),
        Payload::WeirdVariables => {
            json!({"query": "subscription($a: String){ taskNotifications(after: $a) { cursor } }", "variables": docgen::small_json(d, 2)})
        }
    }
}
