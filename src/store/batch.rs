//! Writes whose results nobody reads (history, outbox rows, counters), queued during a
//! transaction and sent just before its commit. On SQLite they go in one round trip (one
//! multi-statement execution on the connection's thread): every statement sent to SQLite is a
//! hand-off between threads, and the single writer holds the database for all of them. On
//! PostgreSQL they run one by one (its extended protocol takes one statement per message).
//!
//! Only unconditional writes belong here: a statement whose outcome decides what happens next
//! (a version check, a capacity claim) runs on its own, before. Nothing may read in the same
//! transaction what a queued statement will write.
use sea_orm::{ConnectionTrait, DbBackend, Statement, StatementBuilder, Value, Values};

use crate::error::Result;

use super::db::count_sql;

#[derive(Default)]
pub struct Batch {
    statements: Vec<Statement>,
}

impl Batch {
    /// Queues a statement, built for the connection's database.
    pub fn add<C: ConnectionTrait, S: StatementBuilder>(&mut self, conn: &C, statement: &S) {
        self.statements.push(conn.get_database_backend().build(statement));
    }

    /// Queues a statement already built for its database.
    pub fn add_statement(&mut self, statement: Statement) {
        self.statements.push(statement);
    }

    /// Queues a sea-orm query (an `Insert`, an `UpdateMany`...).
    pub fn add_query<C: ConnectionTrait, Q: sea_orm::QueryTrait>(&mut self, conn: &C, query: &Q) {
        self.statements.push(query.build(conn.get_database_backend()));
    }

    /// Queues another batch's statements after this one's.
    pub fn append(&mut self, other: Batch) {
        self.statements.extend(other.statements);
    }

    pub fn is_empty(&self) -> bool {
        self.statements.is_empty()
    }

    /// Runs the queued statements, in order.
    pub async fn run<C: ConnectionTrait>(self, conn: &C) -> Result<()> {
        let n = self.statements.len();
        if n > 1 && conn.get_database_backend() == DbBackend::Sqlite {
            let mut sql = String::with_capacity(self.statements.iter().map(|s| s.sql.len() + 2).sum());
            let mut values: Vec<Value> = Vec::new();
            for s in self.statements {
                sql.push_str(&s.sql);
                sql.push_str(";\n");
                if let Some(Values(v)) = s.values {
                    values.extend(v);
                }
            }
            conn.execute_raw(Statement::from_sql_and_values(DbBackend::Sqlite, sql, values))
                .await?;
            // Statements, not round trips, are what x-sql-statements counts.
            for _ in 1..n {
                count_sql();
            }
        } else {
            for s in self.statements {
                conn.execute_raw(s).await?;
            }
        }
        Ok(())
    }
}
