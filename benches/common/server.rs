//! The server under test: the release `dispatchd` binary as a separate process, and what
//! `/proc` says about it (CPU time, resident memory, peak resident memory).
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::http::Conn;
use super::world::SECRET;

pub struct Server {
    child: Child,
    pub addr: String,
    pub pid: u32,
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn proc_status_kib(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// User plus system CPU time of a process, in seconds.
pub fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<u64> = rest.split_whitespace().map(|v| v.parse().unwrap_or(0)).collect();
    // utime and stime are fields 14 and 15 of stat, 12 and 13 of what follows the name.
    let ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
    ticks as f64 / clock_ticks() as f64
}

fn clock_ticks() -> u64 {
    static TICKS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100)
    })
}

impl Server {
    /// Starts the server on `url`; returns it once `/readyz` answers 200, with the time from
    /// spawning the process to that answer.
    pub async fn start(url: &str, env: &[(&str, &str)]) -> (Server, Duration) {
        let addr = format!("127.0.0.1:{}", free_port());
        let started = Instant::now();
        let child = Command::new(env!("CARGO_BIN_EXE_dispatchd"))
            .args(["serve", "--listen", &addr])
            .env("DATABASE_URL", url)
            .env("DISPATCHD_JWT_SECRET", SECRET)
            .env("DISPATCHD_SQL_STATS", "true")
            .env(
                "RUST_LOG",
                std::env::var("BENCH_RUST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .spawn()
            .expect("start dispatchd");
        let pid = child.id();
        let mut server = Server { child, addr, pid };
        let mut conn = Conn::new(&server.addr);
        loop {
            if let Ok(r) = conn.get("/readyz").await
                && r.status == 200
            {
                break;
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("dispatchd exited before it was ready: {status}");
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "server not ready after 60 s"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        (server, started.elapsed())
    }

    pub fn cpu_seconds(&self) -> f64 {
        cpu_seconds(&self.pid.to_string())
    }

    pub fn rss_kib(&self) -> u64 {
        proc_status_kib(self.pid, "VmRSS:")
    }

    /// Peak resident memory since start or the last `reset_peak`.
    pub fn peak_kib(&self) -> u64 {
        proc_status_kib(self.pid, "VmHWM:")
    }

    /// Resets the peak resident memory to the current one (Linux: `clear_refs` 5).
    pub fn reset_peak(&self) {
        let _ = std::fs::write(format!("/proc/{}/clear_refs", self.pid), "5");
    }

    /// With `BENCH_PERF=DIR`: records the server with `perf record` (its options from
    /// `BENCH_PERF_ARGS`, default `-F 999 -g`) into `DIR/<scenario>.data` until the returned
    /// guard is dropped.
    pub fn profile(&self, scenario: &str) -> Option<Profile> {
        let dir = std::env::var("BENCH_PERF").ok()?;
        std::fs::create_dir_all(&dir).ok()?;
        let slug: String = scenario
            .chars()
            .take_while(|c| *c != ':' && *c != '(')
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let out = format!("{dir}/{}.data", slug.trim_matches('-'));
        let args = std::env::var("BENCH_PERF_ARGS").unwrap_or_else(|_| "-F 999 -g".into());
        let child = Command::new("perf")
            .arg("record")
            .args(args.split_whitespace())
            .args(["-p", &self.pid.to_string(), "-o", &out])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        eprintln!("profiling into {out}");
        Some(Profile(child))
    }

    /// SIGTERM, then waits for the exit (graceful shutdown).
    pub fn stop(mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.pid.to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A database for the run: a fresh SQLite file in `dir`, or, with `DATABASE_URL` set to a
/// PostgreSQL server, a fresh `dispatchd_bench` database on it (dropped and created again).
pub async fn fresh_database(dir: &std::path::Path) -> String {
    match std::env::var("DATABASE_URL") {
        Ok(url) if url.starts_with("postgres") => {
            use sea_orm::{ConnectionTrait, Database};
            let admin = Database::connect(url.as_str()).await.expect("connect to PostgreSQL");
            admin
                .execute_unprepared("DROP DATABASE IF EXISTS dispatchd_bench WITH (FORCE)")
                .await
                .unwrap();
            admin
                .execute_unprepared("CREATE DATABASE dispatchd_bench")
                .await
                .unwrap();
            admin.close().await.ok();
            let (base, query) = match url.split_once('?') {
                Some((b, q)) => (b, format!("?{q}")),
                None => (url.as_str(), String::new()),
            };
            let server = base.rsplit_once('/').map(|(s, _)| s).unwrap_or(base);
            let server = if server.ends_with('/') || server.ends_with(':') {
                base
            } else {
                server
            };
            format!("{server}/dispatchd_bench{query}")
        }
        Ok(url) if url.starts_with("sqlite") => url,
        _ => format!("sqlite://{}", dir.join("bench.db").display()),
    }
}

/// A running `perf record`: stopped (SIGINT, so it writes its file) when dropped.
pub struct Profile(Child);

impl Drop for Profile {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-INT", &self.0.id().to_string()]).status();
        let _ = self.0.wait();
    }
}
