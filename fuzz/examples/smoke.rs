//! The stable smoke run of the fuzz targets (no libFuzzer, no coverage guidance): each target
//! runs for `FUZZ_SECS` seconds (default 60) on its seed corpus and the reproducers of past
//! findings (`artifacts-found/`), mutations of them and random inputs, and the run fails on the
//! first panic (anywhere in the process: handlers, tasks) or hang, with the input saved under
//! `fuzz/artifacts-smoke/`.
//!
//! `FUZZ_TARGETS` (default `http_request,ws_messages`) picks targets; `FUZZ_SEED` repeats a run;
//! `FUZZ_LOG=error` shows the server's log; `FUZZ_DEBUG=1` each answer; `FUZZ_SAVE_EACH=1`
//! writes each input to `artifacts-smoke/<target>/last-input` before running it (for crashes no
//! hook sees); `FUZZ_STRICT=1` makes known findings fatal. `smoke <target> <file>...` runs those
//! inputs once each (a reproducer).
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The input being run, for the panic hook and the watchdog.
static CURRENT: Mutex<(String, Vec<u8>)> = Mutex::new((String::new(), Vec::new()));
/// When the current input started (ms since the run began; 0: none running).
static STARTED_MS: AtomicU64 = AtomicU64::new(0);

fn main() {
    let secs: u64 = env("FUZZ_SECS").and_then(|s| s.parse().ok()).unwrap_or(60);
    let targets = env("FUZZ_TARGETS").unwrap_or_else(|| "http_request,ws_messages".into());
    let seed: u64 = env("FUZZ_SEED")
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64 | 1);
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [target, files @ ..] = args.as_slice() {
        // Reproduce: `smoke <target> <file>...` runs those inputs once each.
        install_panic_hook();
        for f in files {
            let input = std::fs::read(f).unwrap_or_else(|e| panic!("{f}: {e}"));
            if env("FUZZ_DEBUG").is_some() && target == "http_request" {
                println!("{}", dispatchd_fuzz::http::describe(&input));
            }
            *CURRENT.lock().unwrap() = (target.clone(), input.clone());
            let outcome = match target.as_str() {
                "http_request" => format!("{:?}", dispatchd_fuzz::http::run(&input)),
                "ws_messages" => format!("{:?}", dispatchd_fuzz::ws::run(&input)),
                other => panic!("unknown target {other}"),
            };
            println!("{f}: {outcome}");
            if env("FUZZ_DEBUG").is_some() && target == "http_request" {
                println!("{}", dispatchd_fuzz::http::describe(&input));
            }
        }
        return;
    }
    println!("smoke: {secs} s per target, FUZZ_SEED={seed}");
    let origin = Instant::now();
    install_panic_hook();
    start_watchdog(origin);
    let t = Instant::now();
    dispatchd_fuzz::world::world();
    println!("smoke: world ready in {:.1} s", t.elapsed().as_secs_f64());
    let mut rng = Rng(seed);
    let save_each = env("FUZZ_SAVE_EACH").is_some();
    let dict = dictionary();
    for target in targets.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        let run: fn(&[u8]) -> String = match target {
            "http_request" => |d| format!("{:?}", dispatchd_fuzz::http::run(d)),
            "ws_messages" => |d| format!("{:?}", dispatchd_fuzz::ws::run(d)),
            other => panic!("unknown target {other}"),
        };
        // The seeds, and the reproducers of past findings (regressions).
        let corpus = if env("FUZZ_RANDOM_ONLY").is_some() {
            Vec::new()
        } else {
            let here = Path::new(env!("CARGO_MANIFEST_DIR"));
            let mut c = load_corpus(&here.join("corpus").join(target));
            c.extend(load_corpus(&here.join("artifacts-found").join(target)));
            c
        };
        let deadline = Instant::now() + Duration::from_secs(secs);
        let mut outcomes: HashMap<String, u64> = HashMap::new();
        let (mut execs, started) = (0u64, Instant::now());
        // Every seed once as it is, then mutations and random inputs until the deadline.
        let mut queue: Vec<Vec<u8>> = corpus.clone();
        while Instant::now() < deadline || !queue.is_empty() {
            let input = queue.pop().unwrap_or_else(|| next_input(&mut rng, &corpus, &dict));
            *CURRENT.lock().unwrap() = (target.to_owned(), input.clone());
            if save_each {
                // A crash no hook sees (a stack overflow, an abort): the input is on disk.
                let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("artifacts-smoke")
                    .join(target);
                let _ = std::fs::create_dir_all(&dir);
                let _ = std::fs::write(dir.join("last-input"), &input);
            }
            STARTED_MS.store(origin.elapsed().as_millis() as u64 + 1, Ordering::SeqCst);
            let outcome = run(&input);
            STARTED_MS.store(0, Ordering::SeqCst);
            *outcomes.entry(outcome).or_default() += 1;
            execs += 1;
            if target == "ws_messages" && execs.is_multiple_of(256) {
                dispatchd_fuzz::ws::check_alive();
            }
        }
        if target == "ws_messages" {
            dispatchd_fuzz::ws::check_alive();
        }
        let elapsed = started.elapsed().as_secs_f64();
        let mut top: Vec<_> = outcomes.into_iter().collect();
        top.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
        let top: Vec<String> = top
            .iter()
            .take(if env("FUZZ_DEBUG").is_some() { 80 } else { 12 })
            .map(|(k, v)| format!("{k}×{v}"))
            .collect();
        println!(
            "smoke: {target}: {execs} inputs in {elapsed:.1} s ({:.0}/s), {} seeds; no panic, no hang. Outcomes: {}",
            execs as f64 / elapsed,
            corpus.len(),
            top.join(", ")
        );
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn load_corpus(dir: &Path) -> Vec<Vec<u8>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.flatten().map(|e| e.path()).filter(|p| p.is_file()).collect())
        .unwrap_or_default();
    files.sort();
    files.iter().filter_map(|p| std::fs::read(p).ok()).collect()
}

/// xorshift64*: small, seedable, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next() % n as u64) as usize }
    }
}

/// Words worth inserting: the schema's names and the protocols' words.
fn dictionary() -> Vec<Vec<u8>> {
    let mut words: Vec<Vec<u8>> = dispatchd_fuzz::docgen::schema()
        .names
        .iter()
        .map(|n| n.as_bytes().to_vec())
        .collect();
    for w in [
        "{",
        "}",
        "(",
        ")",
        "[",
        "]",
        ":",
        "...",
        "@include(if: true)",
        "$v",
        "\"",
        "\\u0000",
        "null",
        "query ",
        "mutation ",
        "subscription ",
        "fragment F on ",
        "__typename",
        "__schema",
        "connection_init",
        "subscribe",
        "complete",
        "ping",
        "pong",
        "\"type\":",
        "\"id\":",
        "\"payload\":",
        "\"query\":",
        "\"variables\":",
        "\"operationName\":",
        "Content-Type: application/json\r\n",
        "Accept: application/graphql-response+json\r\n",
        "Authorization: Bearer $ADMIN_TOKEN\r\n",
        "$ENGINEER_TOKEN",
        "$ORDER_ID",
        "$WORKFLOW_ID",
        "\r\n",
        "\n",
        "99999999999999999999",
        "-1",
        "1e400",
        "\u{FEFF}",
    ] {
        words.push(w.as_bytes().to_vec());
    }
    words
}

fn next_input(rng: &mut Rng, corpus: &[Vec<u8>], dict: &[Vec<u8>]) -> Vec<u8> {
    // Random bytes go through the structured (arbitrary) decoding: the generator's documents.
    if corpus.is_empty() || rng.below(10) < 3 {
        let max = if rng.below(4) == 0 { 2048 } else { 256 };
        let n = rng.below(max) + 1;
        return (0..n).map(|_| rng.next() as u8).collect();
    }
    let mut data = corpus[rng.below(corpus.len())].clone();
    for _ in 0..rng.below(6) + 1 {
        let len = data.len();
        match rng.below(9) {
            0 if len > 0 => {
                let i = rng.below(len);
                data[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                data[i] = rng.next() as u8;
            }
            2 => {
                let i = rng.below(len + 1);
                let n = rng.below(8) + 1;
                let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                data.splice(i..i, bytes);
            }
            3 if len > 0 => {
                let i = rng.below(len);
                let n = rng.below((len - i).min(32)) + 1;
                data.drain(i..i + n);
            }
            4 if len > 0 => {
                // Duplicate a chunk (repetition: nesting, lists, aliases).
                let i = rng.below(len);
                let n = rng.below((len - i).min(64)) + 1;
                let chunk = data[i..i + n].to_vec();
                for _ in 0..rng.below(8) + 1 {
                    data.splice(i..i, chunk.iter().copied());
                }
            }
            5 => {
                let other = &corpus[rng.below(corpus.len())];
                let (i, j) = (rng.below(len + 1), rng.below(other.len() + 1));
                data.truncate(i);
                data.extend_from_slice(&other[j..]);
            }
            6 | 7 => {
                let w = &dict[rng.below(dict.len())];
                let i = rng.below(len + 1);
                data.splice(i..i, w.iter().copied());
            }
            _ if len > 0 => data.truncate(rng.below(len)),
            _ => {}
        }
        data.truncate(64 * 1024);
    }
    data
}

/// Saves the current input under `fuzz/artifacts-smoke/<target>/` and says where.
fn save_current(kind: &str) {
    let Ok(current) = CURRENT.try_lock() else {
        eprintln!("smoke: {kind}: the input could not be read");
        return;
    };
    let (target, input) = &*current;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("artifacts-smoke")
        .join(target);
    let _ = std::fs::create_dir_all(&dir);
    let hash = input.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    });
    let path = dir.join(format!("{kind}-{hash:016x}"));
    let _ = std::fs::write(&path, input);
    let preview = String::from_utf8_lossy(&input[..input.len().min(600)]);
    eprintln!(
        "smoke: FINDING ({kind}) in {target}; input ({} bytes) saved to {}\n  reproduce: cargo +nightly fuzz run {target} {}\n  preview: {preview:?}",
        input.len(),
        path.display(),
        path.display()
    );
}

/// Any panic, in any thread (a handler's, caught by the server, included), ends the run.
fn install_panic_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default(info);
        save_current("crash");
        std::process::exit(101);
    }));
}

/// An input running for twice the targets' own bound is a hang (the target may be stuck where
/// its own timeout cannot fire: a loop that never yields).
fn start_watchdog(origin: Instant) {
    let limit = dispatchd_fuzz::world::BOUND.as_millis() as u64 * 2;
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(Duration::from_millis(250));
            let started = STARTED_MS.load(Ordering::SeqCst);
            if started != 0 && origin.elapsed().as_millis() as u64 + 1 > started + limit {
                save_current("hang");
                eprintln!("smoke: an input ran for more than {limit} ms");
                std::process::exit(102);
            }
        }
    });
}
