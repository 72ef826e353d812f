//! Use cases: each checks the caller's role and tenant, loads, asks the domain, persists.
pub mod access;
pub mod admin;
pub mod audience;
pub mod demo;
pub mod directory;
pub mod housekeeping;
pub mod notifications;
pub mod numbering;
pub mod orders;
pub mod principals;
pub mod recovery;
pub mod rights;
pub mod rules;
pub mod sla;
mod state;
pub mod stored;
pub mod tasks;
pub mod tenants;
pub mod timers;
pub mod webhooks;
pub mod workflows;

pub use access::Caller;
pub use state::Services;
