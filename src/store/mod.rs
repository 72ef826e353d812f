//! Persistence: connections, transactions, and the sea-orm queries the services share.
pub mod batch;
pub mod db;
pub mod events;
pub mod lane;
pub mod notify;
pub mod orders;
pub mod rules;

pub use batch::Batch;
pub use db::{Db, begin_write, count_sql, sql_statements_scope};
pub use lane::WriteLane;
