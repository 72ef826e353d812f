//! The `http_request` target: bytes → an HTTP request → the router in-process → a checked
//! answer. An input that starts with a method and a space (`POST /graphql HTTP/1.1`) is read as
//! the text of a request, with `$PLACEHOLDERS` for tokens and IDs (the seed corpus is written
//! so); any other input is decoded structurally (`arbitrary`): method, path, headers, query
//! string and body, the body often a GraphQL document built from the schema.
use arbitrary::{Arbitrary, Unstructured};
use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, Method, Request, StatusCode};
use serde_json::{Map, Value, json};
use tower::ServiceExt;

use crate::docgen::{self, Doc, Draw};
use crate::world::{BOUND, world};

/// What an input led to (for the smoke run's statistics).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Not a request hyper would pass on (bad method, URI or header).
    NotARequest,
    /// The status, and the first error's code ("data" when there was data and no error).
    Status(u16, String),
    /// A finding already reported (see `known`), tolerated unless `FUZZ_STRICT` is set.
    Known(&'static str),
}

/// Runs one input. Panics on a finding: a 5xx, an error without `extensions.code`, a hang.
pub fn run(data: &[u8]) -> Outcome {
    let w = world();
    let Some((req, _)) = build(data) else {
        return Outcome::NotARequest;
    };
    let router = w.router.clone();
    crate::known::clear();
    let (status, content_type, body) = w.rt.block_on(async move {
        // On a runtime worker, as hyper runs a connection's requests: the same stack size
        // (2 MiB) as in production, so a recursion that would overflow it there does here.
        let served = tokio::spawn(async move {
            let resp = router.oneshot(req).await.expect("the router is infallible");
            let status = resp.status();
            let content_type = resp
                .headers()
                .get(axum::http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            let body = axum::body::to_bytes(resp.into_body(), 64 << 20)
                .await
                .expect("the response body can be read");
            (status, content_type, body)
        });
        match tokio::time::timeout(BOUND, served).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => panic!("the request's task failed: {e}"),
            Err(_) => panic!("hang: no complete response within {BOUND:?}"),
        }
    });
    if debug() {
        eprintln!(
            "answer: {status} {}",
            String::from_utf8_lossy(&body[..body.len().min(1500)])
        );
    }
    match check(status, &content_type, &body) {
        Ok(code) => Outcome::Status(status.as_u16(), code),
        Err(finding) => match crate::known::classify(&crate::known::take()) {
            Some(known) => Outcome::Known(known),
            _ => panic!("{finding}"),
        },
    }
}

/// `FUZZ_DEBUG`: print each answer.
pub fn debug() -> bool {
    static DEBUG: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *DEBUG.get_or_init(|| std::env::var_os("FUZZ_DEBUG").is_some())
}

/// The request an input describes, as text (to report a finding found in structured form).
pub fn describe(data: &[u8]) -> String {
    let Some((req, body)) = build(data) else {
        return "not a request".into();
    };
    let mut out = format!("{} {} HTTP/1.1\r\n", req.method(), req.uri());
    for (k, v) in req.headers() {
        out.push_str(&format!("{k}: {}\r\n", String::from_utf8_lossy(v.as_bytes())));
    }
    out.push_str("\r\n");
    out.push_str(&String::from_utf8_lossy(&body));
    out
}

/// The first error's code (or "data", "json", "-"), or what is wrong with the answer.
fn check(status: StatusCode, content_type: &str, body: &[u8]) -> Result<String, String> {
    let json: Option<Value> = serde_json::from_slice(body).ok();
    if status.is_server_error() {
        return Err(format!(
            "server error {status} ({content_type}): {}",
            String::from_utf8_lossy(&body[..body.len().min(2000)])
        ));
    }
    if let Some(errors) = json.as_ref().and_then(|j| j.get("errors")) {
        let Some(errors) = errors.as_array() else {
            return Err(format!("`errors` is not a list: {errors}"));
        };
        for e in errors {
            let code = e.pointer("/extensions/code").and_then(Value::as_str);
            if code.is_none_or(str::is_empty) {
                return Err(format!("an error without extensions.code ({status}): {e}"));
            }
            if code == Some("INTERNAL") {
                // A server error under application/json is answered 200: still a finding.
                return Err(format!("an INTERNAL error ({status}): {e}"));
            }
        }
    }
    Ok(match json {
        Some(j) => match j.pointer("/errors/0/extensions/code").and_then(Value::as_str) {
            Some(code) => code.to_owned(),
            None if j.get("data").is_some_and(|d| !d.is_null()) => "data".into(),
            None => "json".into(),
        },
        None => "-".into(),
    })
}

/// The request an input describes, if it is one hyper would hand to the router (and its body).
pub fn build(data: &[u8]) -> Option<(Request<Body>, Vec<u8>)> {
    if starts_with_method(data) {
        return parse_text(&world().substitute(data));
    }
    let mut u = Unstructured::new(data);
    let input = Input::arbitrary(&mut u).ok()?;
    let mut d = Draw::new(&mut u);
    input.into_request(&mut d)
}

const METHODS: &[&str] = &["GET ", "POST ", "OPTIONS ", "PUT ", "HEAD ", "DELETE ", "PATCH "];

fn starts_with_method(data: &[u8]) -> bool {
    METHODS.iter().any(|m| data.starts_with(m.as_bytes()))
}

/// `METHOD target HTTP/1.1`, headers, an empty line, the body (CRLF or LF).
fn parse_text(data: &[u8]) -> Option<(Request<Body>, Vec<u8>)> {
    let (head, body) = match find(data, b"\r\n\r\n") {
        Some(i) => (&data[..i], &data[i + 4..]),
        None => match find(data, b"\n\n") {
            Some(i) => (&data[..i], &data[i + 2..]),
            None => (data, &[][..]),
        },
    };
    let mut lines = head.split(|&b| b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let first = lines.next()?;
    let mut parts = first.splitn(3, |&b| b == b' ');
    let method = Method::from_bytes(parts.next()?).ok()?;
    let target = std::str::from_utf8(parts.next()?).ok()?;
    let mut req = Request::builder().method(method).uri(target);
    for line in lines {
        let colon = line.iter().position(|&b| b == b':')?;
        let name = HeaderName::from_bytes(&line[..colon]).ok()?;
        let value = trim(&line[colon + 1..]);
        let value = HeaderValue::from_bytes(value).ok()?;
        req = req.header(name, value);
    }
    req.body(Body::from(body.to_vec())).ok().map(|r| (r, body.to_vec()))
}

fn find(hay: &[u8], pat: &[u8]) -> Option<usize> {
    hay.windows(pat.len()).position(|w| w == pat)
}

fn trim(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|c| !c.is_ascii_whitespace()).unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &b[start..end]
}

#[derive(Arbitrary, Debug)]
enum MethodChoice {
    Get,
    Get2,
    Post,
    Post2,
    Post3,
    Post4,
    Options,
    Put,
    Head,
    Delete,
}

#[derive(Arbitrary, Debug)]
enum PathChoice {
    Graphql,
    Graphql2,
    Graphql3,
    Graphql4,
    Graphql5,
    GraphqlSlash,
    GraphqlWs,
    Root,
    Healthz,
    Readyz,
    Other(String),
}

#[derive(Arbitrary, Debug, Clone)]
enum Media {
    /// No header at all.
    Absent,
    Json,
    Json2,
    Json3,
    JsonUtf8,
    JsonWeirdCharset,
    GraphqlResponse,
    TextPlain,
    Form,
    Multipart,
    GraphqlDoc,
    Any,
    ApplicationAny,
    Html,
    Garbage(String),
}

impl Media {
    fn text(&self) -> String {
        match self {
            Media::Absent => String::new(),
            Media::Json | Media::Json2 | Media::Json3 => "application/json".into(),
            Media::JsonUtf8 => "application/json; charset=utf-8".into(),
            Media::JsonWeirdCharset => "Application/JSON;charset=latin1;q=x".into(),
            Media::GraphqlResponse => "application/graphql-response+json".into(),
            Media::TextPlain => "text/plain".into(),
            Media::Form => "application/x-www-form-urlencoded".into(),
            Media::Multipart => "multipart/form-data; boundary=----x".into(),
            Media::GraphqlDoc => "application/graphql".into(),
            Media::Any => "*/*".into(),
            Media::ApplicationAny => "application/*".into(),
            Media::Html => "text/html".into(),
            Media::Garbage(s) => s.clone(),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum AcceptChoice {
    Absent,
    One(Media),
    /// A list with quality values (q as given: 0, 0.5, 1, garbage).
    List(Vec<(Media, Option<u8>)>),
}

impl AcceptChoice {
    fn text(&self) -> String {
        match self {
            AcceptChoice::Absent => String::new(),
            AcceptChoice::One(m) => m.text(),
            AcceptChoice::List(items) => items
                .iter()
                .take(6)
                .filter(|(m, _)| !matches!(m, Media::Absent))
                .map(|(m, q)| match q {
                    None => m.text(),
                    Some(q) => match q % 5 {
                        0 => format!("{};q=0", m.text()),
                        1 => format!("{};q=0.5", m.text()),
                        2 => format!("{}; q=1.0", m.text()),
                        3 => format!("{};q=2", m.text()),
                        _ => format!("{};q=abc", m.text()),
                    },
                })
                .collect::<Vec<_>>()
                .join(", "),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum AuthChoice {
    /// A valid token (index into the world's).
    Valid(u8),
    Valid2(u8),
    Valid3(u8),
    LowercaseScheme(u8),
    NoScheme(u8),
    /// With spaces and tabs around the token.
    Padded(u8),
    Bad(u8),
    Basic,
    Empty,
    Garbage(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
enum LengthChoice {
    Right,
    Absent,
    Zero,
    Huge,
    Garbage,
}

#[derive(Arbitrary, Debug)]
enum Extra {
    Origin(u8),
    /// The headers of a WebSocket upgrade (not upgradable in-process: refused).
    Upgrade(bool),
    Preflight,
    Custom(String, Vec<u8>),
    ContentEncoding,
}

#[derive(Arbitrary, Debug)]
enum QueryChoice {
    None,
    Raw(Vec<u8>),
    /// `query=…&variables=…&operationName=…` from a generated document.
    Params {
        variables: VarsChoice,
        operation_name: bool,
        extensions: bool,
        duplicate: bool,
    },
}

#[derive(Arbitrary, Debug)]
enum BodyChoice {
    Envelope1(Envelope),
    Envelope2(Envelope),
    Envelope3(Envelope),
    Empty,
    Raw(Vec<u8>),
    Envelope(Envelope),
    Batch(Vec<Envelope>),
    Json,
    /// The document itself as the body (as `application/graphql` would send it).
    Document,
    Whitespace(u8),
    /// Deeply nested JSON (serde_json's recursion limit).
    Deep(u16),
}

#[derive(Arbitrary, Debug)]
struct Envelope {
    query: QueryField,
    variables: VarsChoice,
    operation_name: OpName,
    extensions: ExtField,
    extra_key: bool,
}

#[derive(Arbitrary, Debug)]
enum QueryField {
    Document,
    Document2,
    Document3,
    Absent,
    Null,
    Number,
    Object,
    Raw(String),
}

#[derive(Arbitrary, Debug)]
enum VarsChoice {
    FromDocument,
    FromDocument2,
    FromDocument3,
    Absent,
    Null,
    Json,
    /// Variables as JSON text (GET's form) in a JSON body.
    String,
    Array,
}

#[derive(Arbitrary, Debug)]
enum OpName {
    FromDocument,
    Absent,
    Null,
    Number,
    Raw(String),
}

#[derive(Arbitrary, Debug)]
enum ExtField {
    Absent,
    Null,
    Json,
    PersistedQuery,
    Number,
}

#[derive(Arbitrary, Debug)]
struct Input {
    plausible: Plausible,
    method: MethodChoice,
    path: PathChoice,
    content_type: Media,
    accept: AcceptChoice,
    auth: Option<AuthChoice>,
    length: LengthChoice,
    extras: Vec<Extra>,
    query: QueryChoice,
    body: BodyChoice,
}

/// Most structured inputs are well-formed requests carrying a generated document, so that
/// the fuzzer spends its time in GraphQL (validation, limits, execution), not in refusals.
#[derive(Arbitrary, Debug)]
enum Plausible {
    /// A POST with a JSON body: the document, its variables and operation name; a token
    /// (by index; one index more: none), `Accept` by the high bit.
    Post(u8),
    Post2(u8),
    Post3(u8),
    Post4(u8),
    /// A GET with the document in the URL.
    Get(u8),
    /// The request as every other field describes it.
    Wild,
    Wild2,
}

fn plausible(p: &Plausible, doc: &Doc) -> Option<(Request<Body>, Vec<u8>)> {
    let w = world();
    let (get, i) = match *p {
        Plausible::Post(i) | Plausible::Post2(i) | Plausible::Post3(i) | Plausible::Post4(i) => (false, i),
        Plausible::Get(i) => (true, i),
        Plausible::Wild | Plausible::Wild2 => return None,
    };
    let mut params = Map::new();
    params.insert("query".into(), Value::String(doc.text.clone()));
    if !doc.variables.is_empty() {
        params.insert("variables".into(), Value::Object(doc.variables.clone()));
    }
    if let Some(n) = &doc.operation_name {
        params.insert("operationName".into(), Value::String(n.clone()));
    }
    let (mut req, body) = if get {
        let mut q = String::new();
        for (k, v) in &params {
            let text = match v {
                Value::String(s) => s.clone(),
                v => v.to_string(),
            };
            q.push_str(&format!(
                "{}{k}={}",
                if q.is_empty() { "" } else { "&" },
                urlencode(text.as_bytes())
            ));
        }
        (Request::get(format!("/graphql?{q}")), Vec::new())
    } else {
        let req = Request::post("/graphql").header("content-type", "application/json");
        (req, Value::Object(params).to_string().into_bytes())
    };
    if i & 0x80 != 0 {
        req = req.header("accept", "application/graphql-response+json");
    }
    let which = (i & 0x7f) as usize % (w.tokens.len() + 1);
    if let Some((_, token)) = w.tokens.get(which) {
        req = req.header("authorization", format!("Bearer {token}"));
    }
    req.body(Body::from(body.clone())).ok().map(|r| (r, body))
}

fn urlencode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Path bytes as a URI path: what a client could send (invalid bytes percent-encoded).
fn path_text(s: &str) -> String {
    let mut out = String::from("/");
    for b in s.bytes().take(200) {
        if b.is_ascii_graphic() && !b"?#%".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Input {
    fn into_request(self, d: &mut Draw) -> Option<(Request<Body>, Vec<u8>)> {
        let w = world();
        let doc = docgen::document(d, &w.pools, None);
        if let Some(req) = plausible(&self.plausible, &doc) {
            return Some(req);
        }
        let method = match self.method {
            MethodChoice::Get | MethodChoice::Get2 => Method::GET,
            MethodChoice::Post | MethodChoice::Post2 | MethodChoice::Post3 | MethodChoice::Post4 => Method::POST,
            MethodChoice::Options => Method::OPTIONS,
            MethodChoice::Put => Method::PUT,
            MethodChoice::Head => Method::HEAD,
            MethodChoice::Delete => Method::DELETE,
        };
        let path = match &self.path {
            PathChoice::Graphql
            | PathChoice::Graphql2
            | PathChoice::Graphql3
            | PathChoice::Graphql4
            | PathChoice::Graphql5 => "/graphql".to_owned(),
            PathChoice::GraphqlSlash => "/graphql/".to_owned(),
            PathChoice::GraphqlWs => "/graphql/ws".to_owned(),
            PathChoice::Root => "/".to_owned(),
            PathChoice::Healthz => "/healthz".to_owned(),
            PathChoice::Readyz => "/readyz".to_owned(),
            PathChoice::Other(s) => path_text(s),
        };
        let query = match &self.query {
            QueryChoice::None => None,
            QueryChoice::Raw(bytes) => Some(
                bytes
                    .iter()
                    .map(|&b| {
                        if b.is_ascii_graphic() && b != b'#' {
                            (b as char).to_string()
                        } else {
                            format!("%{b:02X}")
                        }
                    })
                    .collect::<String>(),
            ),
            QueryChoice::Params {
                variables,
                operation_name,
                extensions,
                duplicate,
            } => {
                let mut q = format!("query={}", urlencode(doc.text.as_bytes()));
                if let Some(v) = vars_value(variables, &doc, d) {
                    let text = match v {
                        Value::String(s) => s,
                        v => v.to_string(),
                    };
                    q.push_str(&format!("&variables={}", urlencode(text.as_bytes())));
                }
                if *operation_name && let Some(n) = &doc.operation_name {
                    q.push_str(&format!("&operationName={}", urlencode(n.as_bytes())));
                }
                if *extensions {
                    q.push_str("&extensions=%7B%22a%22%3A1%7D");
                }
                if *duplicate {
                    q.push_str("&query=%7B__typename%7D");
                }
                Some(q)
            }
        };
        let uri = match query {
            Some(q) => format!("{path}?{q}"),
            None => path,
        };
        let body: Vec<u8> = match &self.body {
            BodyChoice::Empty => Vec::new(),
            BodyChoice::Raw(b) => b.clone(),
            BodyChoice::Envelope(e)
            | BodyChoice::Envelope1(e)
            | BodyChoice::Envelope2(e)
            | BodyChoice::Envelope3(e) => envelope(e, &doc, d).to_string().into_bytes(),
            BodyChoice::Batch(es) => Value::Array(es.iter().take(4).map(|e| envelope(e, &doc, d)).collect())
                .to_string()
                .into_bytes(),
            BodyChoice::Json => docgen::small_json(d, 4).to_string().into_bytes(),
            BodyChoice::Document => doc.text.clone().into_bytes(),
            BodyChoice::Whitespace(n) => " \t\r\n".repeat(*n as usize).into_bytes(),
            BodyChoice::Deep(n) => {
                let n = (*n as usize) % 5000;
                format!("{{\"query\":{}\"{{__typename}}\"{}}}", "[".repeat(n), "]".repeat(n)).into_bytes()
            }
        };
        let mut req = Request::builder().method(method).uri(uri);
        let mut header = |name: &str, value: &[u8]| {
            if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_bytes(value)) {
                req = std::mem::take(&mut req).header(n, v);
            }
        };
        if !matches!(self.content_type, Media::Absent) {
            header("content-type", self.content_type.text().as_bytes());
        }
        if !matches!(self.accept, AcceptChoice::Absent) {
            header("accept", self.accept.text().as_bytes());
        }
        let valid = |i: &u8| w.tokens[*i as usize % w.tokens.len()].1.clone();
        match &self.auth {
            None => {}
            Some(AuthChoice::Valid(i) | AuthChoice::Valid2(i) | AuthChoice::Valid3(i)) => {
                header("authorization", format!("Bearer {}", valid(i)).as_bytes())
            }
            Some(AuthChoice::LowercaseScheme(i)) => header("authorization", format!("bearer {}", valid(i)).as_bytes()),
            Some(AuthChoice::NoScheme(i)) => header("authorization", valid(i).as_bytes()),
            Some(AuthChoice::Padded(i)) => header("authorization", format!("Bearer  \t{} ", valid(i)).as_bytes()),
            Some(AuthChoice::Bad(i)) => {
                let t = &w.bad_tokens[*i as usize % w.bad_tokens.len()];
                header("authorization", format!("Bearer {t}").as_bytes())
            }
            Some(AuthChoice::Basic) => header("authorization", b"Basic YWxhZGRpbjpvcGVuc2VzYW1l"),
            Some(AuthChoice::Empty) => header("authorization", b""),
            Some(AuthChoice::Garbage(g)) => header("authorization", g),
        }
        match self.length {
            LengthChoice::Right => header("content-length", body.len().to_string().as_bytes()),
            LengthChoice::Absent => {}
            LengthChoice::Zero => header("content-length", b"0"),
            LengthChoice::Huge => header("content-length", b"99999999999"),
            LengthChoice::Garbage => header("content-length", b"12abc"),
        }
        for e in self.extras.iter().take(4) {
            match e {
                Extra::Origin(i) => {
                    let o: &[u8] = match i % 4 {
                        0 => b"https://evil.example",
                        1 => b"null",
                        2 => b"http://localhost:3000",
                        _ => b"*",
                    };
                    header("origin", o)
                }
                Extra::Upgrade(proto) => {
                    header("connection", b"upgrade");
                    header("upgrade", b"websocket");
                    header("sec-websocket-version", b"13");
                    header("sec-websocket-key", b"dGhlIHNhbXBsZSBub25jZQ==");
                    if *proto {
                        header("sec-websocket-protocol", b"graphql-transport-ws");
                    }
                }
                Extra::Preflight => {
                    header("access-control-request-method", b"POST");
                    header("access-control-request-headers", b"authorization, content-type");
                }
                Extra::Custom(n, v) => header(n, v),
                Extra::ContentEncoding => header("content-encoding", b"gzip"),
            }
        }
        req.body(Body::from(body.clone())).ok().map(|r| (r, body))
    }
}

fn vars_value(choice: &VarsChoice, doc: &Doc, d: &mut Draw) -> Option<Value> {
    match choice {
        VarsChoice::FromDocument | VarsChoice::FromDocument2 | VarsChoice::FromDocument3 => {
            Some(Value::Object(doc.variables.clone()))
        }
        VarsChoice::Absent => None,
        VarsChoice::Null => Some(Value::Null),
        VarsChoice::Json => Some(docgen::small_json(d, 3)),
        VarsChoice::String => Some(Value::String(Value::Object(doc.variables.clone()).to_string())),
        VarsChoice::Array => Some(json!([1, "a"])),
    }
}

fn envelope(e: &Envelope, doc: &Doc, d: &mut Draw) -> Value {
    let mut m = Map::new();
    match &e.query {
        QueryField::Document | QueryField::Document2 | QueryField::Document3 => {
            m.insert("query".into(), Value::String(doc.text.clone()));
        }
        QueryField::Absent => {}
        QueryField::Null => {
            m.insert("query".into(), Value::Null);
        }
        QueryField::Number => {
            m.insert("query".into(), json!(42));
        }
        QueryField::Object => {
            m.insert("query".into(), json!({"query": doc.text}));
        }
        QueryField::Raw(s) => {
            m.insert("query".into(), Value::String(s.clone()));
        }
    }
    if let Some(v) = vars_value(&e.variables, doc, d) {
        m.insert("variables".into(), v);
    }
    match &e.operation_name {
        OpName::FromDocument => {
            if let Some(n) = &doc.operation_name {
                m.insert("operationName".into(), Value::String(n.clone()));
            }
        }
        OpName::Absent => {}
        OpName::Null => {
            m.insert("operationName".into(), Value::Null);
        }
        OpName::Number => {
            m.insert("operationName".into(), json!(1));
        }
        OpName::Raw(s) => {
            m.insert("operationName".into(), Value::String(s.clone()));
        }
    }
    match e.extensions {
        ExtField::Absent => {}
        ExtField::Null => {
            m.insert("extensions".into(), Value::Null);
        }
        ExtField::Json => {
            m.insert("extensions".into(), docgen::small_json(d, 3));
        }
        ExtField::PersistedQuery => {
            m.insert(
                "extensions".into(),
                json!({"persistedQuery": {"version": 1, "sha256Hash": "ecf4edb46db40b5132295c0291d62fb65d6759a9eedfa4d5d612dd5ec54a6b38"}}),
            );
        }
        ExtField::Number => {
            m.insert("extensions".into(), json!(7));
        }
    }
    if e.extra_key {
        m.insert("documentId".into(), json!("abc"));
    }
    Value::Object(m)
}
