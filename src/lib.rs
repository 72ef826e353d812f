//! dispatchd: dispatches outsourced field-service work orders to service-provider engineers.
pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod domain;
pub mod error;
pub mod graphql;
pub mod ids;
pub mod metrics;
pub mod notify;
pub mod service;
pub mod store;
pub mod telemetry;
