//! The one error type of dispatchd and its mapping to GraphQL `extensions.code`.
use async_graphql::ErrorExtensions;
use sea_orm::{DbErr, SqlErr};

use crate::domain::work_order::TransitionError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{field}: {message}")]
    BadInput { field: String, message: String },
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    InvalidTransition(#[from] TransitionError),
    #[error("{0}")]
    Conflict(String),
    /// The database undid the transaction to settle a race (deadlock, serialization
    /// failure): nothing was written, and trying again is safe. `CONFLICT` for clients.
    #[error("the change raced with another one and was undone: try again")]
    Raced,
    #[error("{0}")]
    NoDispatchNode(String),
    /// The server refused the change at once, before doing anything, because too many are
    /// waiting: nothing was written, and the client retries after a pause.
    #[error("{0}")]
    Overloaded(String),
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn bad_input(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::BadInput {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn not_found(what: &str, id: &str) -> Self {
        Error::NotFound(format!("{what} {id} not found"))
    }

    pub fn internal(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Error::Internal(e.into())
    }

    /// The database connection was lost under the request (a backend terminated, a socket
    /// closed): a read can simply be made again, on another connection.
    pub fn is_connection_lost(&self) -> bool {
        match self {
            Error::Internal(cause) => cause.downcast_ref::<DbErr>().is_some_and(connection_lost),
            _ => false,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Error::Unauthenticated(_) => "UNAUTHENTICATED",
            Error::Forbidden(_) => "FORBIDDEN",
            Error::BadInput { .. } => "BAD_USER_INPUT",
            Error::NotFound(_) => "NOT_FOUND",
            Error::InvalidTransition(_) => "INVALID_TRANSITION",
            Error::Conflict(_) | Error::Raced => "CONFLICT",
            Error::NoDispatchNode(_) => "NO_DISPATCH_NODE",
            Error::Overloaded(_) => "OVERLOADED",
            Error::Internal(_) => "INTERNAL",
        }
    }
}

fn connection_lost(e: &DbErr) -> bool {
    use sea_orm::RuntimeErr;
    use sea_orm::sqlx::Error as Sqlx;
    match e {
        DbErr::ConnectionAcquire(_) => true,
        DbErr::Query(RuntimeErr::SqlxError(se))
        | DbErr::Exec(RuntimeErr::SqlxError(se))
        | DbErr::Conn(RuntimeErr::SqlxError(se)) => {
            match &**se {
                Sqlx::Io(_) | Sqlx::Protocol(_) | Sqlx::PoolTimedOut | Sqlx::WorkerCrashed => true,
                // Class 57P (operator intervention: terminated, shutting down), class 08
                // (connection exceptions).
                Sqlx::Database(d) => d.code().is_some_and(|c| c.starts_with("57P") || c.starts_with("08")),
                _ => false,
            }
        }
        _ => false,
    }
}

/// PostgreSQL's deadlock and serialization failures: the transaction was rolled back and can
/// simply be tried again.
fn is_transient_conflict(e: &DbErr) -> bool {
    use sea_orm::RuntimeErr;
    let runtime = match e {
        DbErr::Query(r) | DbErr::Exec(r) | DbErr::Conn(r) => r,
        _ => return false,
    };
    match runtime {
        RuntimeErr::SqlxError(se) => se
            .as_database_error()
            .and_then(|d| d.code())
            .is_some_and(|c| c == "40P01" || c == "40001"),
        _ => false,
    }
}

impl From<DbErr> for Error {
    fn from(e: DbErr) -> Self {
        match e.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(_)) => {
                Error::Conflict("a record with the same unique key already exists".into())
            }
            Some(SqlErr::ForeignKeyConstraintViolation(_)) => {
                Error::bad_input("input", "refers to a record that does not exist")
            }
            _ if is_transient_conflict(&e) => {
                tracing::warn!(error = %e, "transaction lost a race in the database");
                Error::Raced
            }
            _ => Error::Internal(Box::new(e)),
        }
    }
}

impl ErrorExtensions for Error {
    fn extend(&self) -> async_graphql::Error {
        if let Error::Internal(cause) = self {
            tracing::error!(error = %cause, source = ?cause, "internal error");
        }
        let message = match self {
            Error::BadInput { field, message } => format!("{field}: {message}"),
            other => other.to_string(),
        };
        async_graphql::Error::new(message).extend_with(|_, ext| {
            ext.set("code", self.code());
            match self {
                Error::BadInput { field, .. } => ext.set("field", field.as_str()),
                Error::InvalidTransition(t) => ext.set("state", t.state.as_str()),
                _ => {}
            }
        })
    }
}

/// `.gql()` turns a service result into a resolver result carrying `extensions.code`.
pub trait ResultExt<T> {
    fn gql(self) -> async_graphql::Result<T>;
}

impl<T> ResultExt<T> for Result<T> {
    fn gql(self) -> async_graphql::Result<T> {
        self.map_err(|e| e.extend())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::{ConnAcquireErr, RuntimeErr};

    #[test]
    fn lost_connections_are_told_apart_from_other_failures() {
        let lost = |e: DbErr| Error::from(e).is_connection_lost();
        assert!(lost(DbErr::ConnectionAcquire(ConnAcquireErr::ConnectionClosed)));
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        assert!(lost(DbErr::Query(RuntimeErr::SqlxError(std::sync::Arc::new(
            sea_orm::sqlx::Error::Io(io)
        )))));
        assert!(!lost(DbErr::Query(RuntimeErr::SqlxError(std::sync::Arc::new(
            sea_orm::sqlx::Error::RowNotFound
        )))));
        assert!(!lost(DbErr::Custom("bad".into())));
        assert!(!Error::Conflict("x".into()).is_connection_lost());
    }
}
