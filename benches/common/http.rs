//! A minimal HTTP/1.1 keep-alive client (one connection per simulated client: the load
//! generator must cost as little CPU as it can, it shares the machine with the server) and the
//! closed-loop driver: N clients, each sending its next request when the last one answered.
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::server::{Server, cpu_seconds};

pub struct Reply {
    pub status: u16,
    /// `x-sql-statements`: SQL statements the request ran on the server.
    pub sql: Option<u32>,
    pub body: Vec<u8>,
}

impl Reply {
    /// 200 without GraphQL errors.
    pub fn ok(&self) -> bool {
        self.status == 200 && !contains(&self.body, b"\"errors\"")
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

pub struct Conn {
    addr: String,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
}

fn io_err(m: &str) -> std::io::Error {
    std::io::Error::other(m.to_owned())
}

impl Conn {
    pub fn new(addr: &str) -> Conn {
        Conn {
            addr: addr.to_owned(),
            stream: None,
            buf: Vec::with_capacity(64 * 1024),
        }
    }

    pub async fn get(&mut self, path: &str) -> std::io::Result<Reply> {
        self.send("GET", path, None, b"").await
    }

    pub async fn graphql(&mut self, token: &str, body: &[u8]) -> std::io::Result<Reply> {
        self.send("POST", "/graphql", Some(token), body).await
    }

    pub async fn send(&mut self, method: &str, path: &str, token: Option<&str>, body: &[u8]) -> std::io::Result<Reply> {
        let r = self.round_trip(method, path, token, body).await;
        if r.is_err() {
            self.stream = None;
        }
        r
    }

    async fn round_trip(
        &mut self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: &[u8],
    ) -> std::io::Result<Reply> {
        if self.stream.is_none() {
            let s = TcpStream::connect(&self.addr).await?;
            s.set_nodelay(true)?;
            self.stream = Some(s);
            self.buf.clear();
        }
        let s = self.stream.as_mut().expect("connected");
        let mut req = Vec::with_capacity(256 + body.len());
        req.extend_from_slice(
            format!(
                "{method} {path} HTTP/1.1\r\nhost: bench\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
                body.len()
            )
            .as_bytes(),
        );
        if let Some(t) = token {
            req.extend_from_slice(format!("authorization: Bearer {t}\r\n").as_bytes());
        }
        req.extend_from_slice(b"\r\n");
        req.extend_from_slice(body);
        s.write_all(&req).await?;

        let header_end = loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            if s.read_buf(&mut self.buf).await? == 0 {
                return Err(io_err("connection closed"));
            }
        };
        let head = std::str::from_utf8(&self.buf[..header_end]).map_err(|_| io_err("bad header"))?;
        let mut lines = head.split("\r\n");
        let status: u16 = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| io_err("bad status line"))?;
        let (mut length, mut sql) = (None, None);
        for l in lines {
            if let Some((k, v)) = l.split_once(':') {
                let v = v.trim();
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.parse::<usize>().ok();
                } else if k.eq_ignore_ascii_case("x-sql-statements") {
                    sql = v.parse().ok();
                } else if k.eq_ignore_ascii_case("transfer-encoding") {
                    return Err(io_err("chunked responses are not supported by the bench client"));
                }
            }
        }
        let total = header_end + length.ok_or_else(|| io_err("no content-length"))?;
        while self.buf.len() < total {
            if s.read_buf(&mut self.buf).await? == 0 {
                return Err(io_err("connection closed"));
            }
        }
        let body = self.buf[header_end..total].to_vec();
        self.buf.drain(..total);
        Ok(Reply { status, sql, body })
    }
}

/// What one scenario measured.
pub struct Outcome {
    pub name: String,
    pub clients: usize,
    pub seconds: f64,
    pub latency_us: Histogram<u64>,
    pub ok: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    /// Requests whose reply carried `tagged` (e.g. orders dispatched automatically).
    pub tagged: u64,
    pub sql_sum: u64,
    pub sql_max: u64,
    pub sql_seen: u64,
    /// CPU seconds over the measured window.
    pub server_cpu: f64,
    pub client_cpu: f64,
    pub server_peak_kib: u64,
}

impl Outcome {
    pub fn new(name: &str, clients: usize) -> Outcome {
        Outcome {
            name: name.to_owned(),
            clients,
            seconds: 0.0,
            latency_us: Histogram::new_with_bounds(1, 120_000_000, 3).unwrap(),
            ok: 0,
            errors: 0,
            first_error: None,
            tagged: 0,
            sql_sum: 0,
            sql_max: 0,
            sql_seen: 0,
            server_cpu: 0.0,
            client_cpu: 0.0,
            server_peak_kib: 0,
        }
    }

    pub fn throughput(&self) -> f64 {
        self.ok as f64 / self.seconds
    }

    pub fn ms(&self, q: f64) -> f64 {
        self.latency_us.value_at_quantile(q) as f64 / 1000.0
    }

    pub fn sql_mean(&self) -> f64 {
        if self.sql_seen == 0 {
            f64::NAN
        } else {
            self.sql_sum as f64 / self.sql_seen as f64
        }
    }

    fn merge(&mut self, o: &Outcome) {
        self.latency_us.add(&o.latency_us).unwrap();
        self.ok += o.ok;
        self.errors += o.errors;
        if self.first_error.is_none() {
            self.first_error.clone_from(&o.first_error);
        }
        self.tagged += o.tagged;
        self.sql_sum += o.sql_sum;
        self.sql_max = self.sql_max.max(o.sql_max);
        self.sql_seen += o.sql_seen;
    }

    /// Records one request that started and ended inside the measured window.
    pub fn record(&mut self, took: Duration, result: &std::io::Result<Reply>, tag: Option<&[u8]>) {
        match result {
            Ok(r) if r.ok() => {
                self.ok += 1;
                self.latency_us.saturating_record(took.as_micros().max(1) as u64);
                if tag.is_some_and(|t| contains(&r.body, t)) {
                    self.tagged += 1;
                }
                if let Some(n) = r.sql {
                    self.sql_sum += n as u64;
                    self.sql_max = self.sql_max.max(n as u64);
                    self.sql_seen += 1;
                }
            }
            Ok(r) => {
                self.errors += 1;
                if self.first_error.is_none() {
                    self.first_error = Some(format!("{}: {}", r.status, r.text()));
                }
            }
            Err(e) => {
                self.errors += 1;
                if self.first_error.is_none() {
                    self.first_error = Some(e.to_string());
                }
            }
        }
    }
}

/// One simulated client: sends its next request and waits for the answer.
pub trait Client: Send + 'static {
    /// `None`: this client has nothing more to send.
    fn call(&mut self, seq: u64) -> impl Future<Output = Option<std::io::Result<Reply>>> + Send;
}

/// Builds a client's next GraphQL request: (token, body).
pub type NextRequest = dyn Fn(usize, u64) -> Option<(String, Vec<u8>)> + Send + Sync;

/// A GraphQL client over its own keep-alive connection.
pub struct Gql {
    conn: Conn,
    index: usize,
    next: Arc<NextRequest>,
}

impl Gql {
    /// `clients` clients, split between the servers (client `i` on server `i % n`).
    pub fn many(servers: &[Server], clients: usize, next: Arc<NextRequest>) -> Vec<Gql> {
        (0..clients)
            .map(|index| Gql {
                conn: Conn::new(&servers[index % servers.len()].addr),
                index,
                next: next.clone(),
            })
            .collect()
    }
}

impl Client for Gql {
    async fn call(&mut self, seq: u64) -> Option<std::io::Result<Reply>> {
        let (token, body) = (self.next)(self.index, seq)?;
        Some(self.conn.graphql(&token, &body).await)
    }
}

/// Runs closed-loop clients (each sends its next request when the last one answered) for
/// `warmup + measure`; only requests that start and end within the measured window count.
/// Server CPU (of every server, summed), this process's CPU and the servers' peak memory (the
/// largest) are read over the same window.
pub async fn closed_loop<C: Client>(
    name: &str,
    servers: &[Server],
    clients: Vec<C>,
    warmup: Duration,
    measure: Duration,
    tag: Option<&'static [u8]>,
) -> Outcome {
    let t0 = Instant::now();
    let (from, until) = (t0 + warmup, t0 + warmup + measure);
    let n = clients.len();
    let mut tasks = Vec::with_capacity(n);
    for mut client in clients {
        let name = name.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut out = Outcome::new(&name, 1);
            let mut seq = 0u64;
            while Instant::now() < until {
                let start = Instant::now();
                let Some(r) = client.call(seq).await else { break };
                let end = Instant::now();
                seq += 1;
                if start >= from && end <= until {
                    out.record(end - start, &r, tag);
                } else if !matches!(&r, Ok(r) if r.ok()) {
                    // Errors outside the window still count: they mean something is wrong.
                    out.record(end - start, &r, None);
                }
            }
            out
        }));
    }
    tokio::time::sleep_until(from.into()).await;
    servers.iter().for_each(Server::reset_peak);
    let profile = servers[0].profile(name);
    let cpu = || servers.iter().map(Server::cpu_seconds).sum::<f64>();
    let (s0, c0) = (cpu(), cpu_seconds("self"));
    tokio::time::sleep_until(until.into()).await;
    let (s1, c1) = (cpu(), cpu_seconds("self"));
    drop(profile);
    let peak = servers.iter().map(Server::peak_kib).max().unwrap_or(0);
    let mut total = Outcome::new(name, n);
    for t in tasks {
        total.merge(&t.await.expect("client task"));
    }
    total.seconds = measure.as_secs_f64();
    total.server_cpu = s1 - s0;
    total.client_cpu = c1 - c0;
    total.server_peak_kib = peak;
    total
}
