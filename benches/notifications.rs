//! Notification fan-out alone (scenario 4 of the load harness): N engineers subscribed to
//! `taskNotifications` (10,000 by default), manual assignments at a steady rate (500/s),
//! latency from the notification's transaction to the engineer's receipt (p50, p99, max), and
//! the server's resident memory per idle subscription.
//!
//! `cargo bench --bench notifications` (`-- --quick` for 1,000 subscribers over 3 s;
//! `BENCH_SUBSCRIBERS` to choose).
mod common;

use std::time::Instant;

use common::server::{Server, fresh_database};
use common::world::{Scale, seed};

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let subscribers: usize = std::env::var("BENCH_SUBSCRIBERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { 1000 } else { 10_000 });
    let rate: u64 = 500;
    let seconds: u64 = if quick { 3 } else { 10 };
    let total = (rate * seconds) as usize;
    let scale = Scale {
        partners: subscribers.div_ceil(50),
        engineers_per_partner: 50,
        rules: 0,
        orders: total,
        waiting: total,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let failed = rt.block_on(async move {
        let dir = tempfile::tempdir().unwrap();
        let url = fresh_database(dir.path()).await;
        let t = Instant::now();
        let world = seed(&url, scale).await;
        println!(
            "seeded {} engineers and {total} orders in {:.1} s",
            scale.engineers(),
            t.elapsed().as_secs_f64()
        );
        let (server, ready) = Server::start(&url, &[]).await;
        println!("server ready in {} ms", ready.as_millis());
        let fan = common::fanout::run(&server, &world, subscribers, &world.waiting, rate).await;
        server.stop();
        println!();
        fan.print();
        fan.ok < fan.offered || fan.missing() > 0
    });
    if failed {
        eprintln!("FAILED: an assignment failed or a notification was lost");
        std::process::exit(1);
    }
}
