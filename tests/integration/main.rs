//! Integration tests against a real server (SQLite by default; PostgreSQL with DISPATCHD_TEST_POSTGRES_URL).
mod common;

mod bad_input;
mod cli;
mod concurrency;
mod deadlines;
mod dispatch;
mod edge_http;
mod edge_limits;
mod events;
mod housekeeping;
mod http;
mod instances;
mod invariants;
mod layers;
mod loaders;
mod matrix;
mod permissions;
mod plans;
mod rights;
mod rules;
mod schema;
mod stress;
mod timestamps;
mod two_stage;
mod two_stage_rules;
mod ws;
