//! A sequence of client messages over one WebSocket connection (graphql-transport-ws and the
//! legacy protocol) to a listening server: no panic, an answer or a close within the bound, and
//! the server still serves a fresh connection (checked every 256 inputs).
#![no_main]
use std::sync::atomic::{AtomicU64, Ordering};

static RUNS: AtomicU64 = AtomicU64::new(0);

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    dispatchd_fuzz::ws::run(data);
    if RUNS.fetch_add(1, Ordering::Relaxed) % 256 == 255 {
        dispatchd_fuzz::ws::check_alive();
    }
});
