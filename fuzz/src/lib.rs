//! Fuzzing dispatchd's public edge: the targets' logic as plain functions, shared by the
//! cargo-fuzz targets (`fuzz_targets/`, nightly) and the stable smoke run (`examples/smoke.rs`).
pub mod docgen;
pub mod http;
pub mod known;
pub mod world;
pub mod ws;
