//! Persistence: connections, transactions, and the sea-orm queries the services share.
pub mod batch;
pub mod db;
pub mod events;
pub mod feeds;
pub mod lane;
pub mod lists;
pub mod lookup;
pub mod notify;
pub mod orders;
pub mod parties;
pub mod providers;
pub mod rules;
pub mod sla;
pub mod tasks;
pub mod timers;
pub mod webhooks;
pub mod workflows;

pub use batch::Batch;
pub use db::{Db, begin_write, count_sql, sql_statements_scope};
pub use lane::WriteLane;
