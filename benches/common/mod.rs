//! Shared by the benchmarks: the seeded world, the server process, the load generator and the
//! notification fan-out.
#![allow(dead_code)]

pub mod fanout;
pub mod filters;
pub mod http;
pub mod server;
pub mod webhooks;
pub mod world;
