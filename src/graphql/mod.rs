//! The GraphQL schema: roots, limits, and error codes on every error.
pub mod context;
pub mod documents;
pub mod gate;
pub mod limits;
pub mod loaders;
pub mod mutation;
pub mod policy;
pub mod query;
pub mod subscription;
pub mod types;
pub mod ws;

use async_graphql::{Response, Schema, SchemaBuilder};

pub type AppSchema = Schema<query::Query, mutation::Mutation, subscription::Subscription>;

pub fn builder() -> SchemaBuilder<query::Query, mutation::Mutation, subscription::Subscription> {
    Schema::build(query::Query, mutation::Mutation, subscription::Subscription)
}

/// Gives every error an `extensions.code` (applied to every response, over HTTP and WebSocket).
/// Errors raised before any resolver ran have no path: the request's own fault (syntax, unknown
/// fields or enum values, wrong variable types, depth and complexity limits), `BAD_USER_INPUT`.
/// An error with a path came out of a resolver: every one the code raises carries its code, so
/// one without is a bug, shown as `INTERNAL` (its message withheld) and logged.
/// Not a schema extension: any extension makes every field's resolution go through the
/// extension chain, a boxed future per field of every row of a page.
/// What an answer's outcome is counted as: `OK`, or its first error's code.
pub fn outcome(resp: &Response) -> String {
    resp.errors
        .first()
        .map(|e| {
            e.extensions
                .as_ref()
                .and_then(|x| x.get("code"))
                .and_then(|v| match v {
                    async_graphql::Value::String(s) => Some(s.clone()),
                    _ => None,
                })
                .unwrap_or_else(|| "INTERNAL".into())
        })
        .unwrap_or_else(|| "OK".into())
}

pub fn ensure_codes(resp: &mut Response) {
    for e in &mut resp.errors {
        let ext = e.extensions.get_or_insert_with(Default::default);
        if ext.get("code").is_some() {
            continue;
        }
        if e.path.is_empty() {
            // async-graphql's own depth and complexity limits (the gate's come coded).
            let limit =
                e.message.starts_with("Query is too complex") || e.message.starts_with("Query is nested too deep");
            ext.set("code", if limit { "QUERY_TOO_COMPLEX" } else { "BAD_USER_INPUT" });
        } else if is_coercion_error(&e.message) {
            // An argument or variable that does not fit its type, found while resolving.
            ext.set("code", "BAD_USER_INPUT");
        } else {
            tracing::error!(path = ?e.path, error = %e.message, "a resolver failed without an error code");
            ext.set("code", "INTERNAL");
            e.message = "internal error".into();
        }
    }
}

/// async-graphql's messages for an input value that does not coerce to its type.
fn is_coercion_error(message: &str) -> bool {
    [
        "Failed to parse \"",
        "Expected input type \"",
        "Invalid value for argument",
        "Variable ",
    ]
    .iter()
    .any(|p| message.starts_with(p))
        || message.contains("(occurred while parsing \"")
}

#[cfg(test)]
mod tests {
    use async_graphql::{ErrorExtensions, PathSegment, Pos, ServerError};

    use super::*;

    fn code(e: &ServerError) -> String {
        let v = e.extensions.as_ref().and_then(|x| x.get("code")).cloned();
        v.map(|v| v.to_string()).unwrap_or_default()
    }

    #[test]
    fn uncoded_resolver_errors_are_internal_and_request_errors_are_the_clients() {
        let request = ServerError::new("Unknown field \"nope\"", Some(Pos { line: 1, column: 3 }));
        let mut resolver = ServerError::new("connection refused at 10.0.0.7", None);
        resolver.path = vec![
            PathSegment::Field("workOrder".into()),
            PathSegment::Field("title".into()),
        ];
        let coded = crate::error::Error::Conflict("stale".into())
            .extend()
            .into_server_error(Pos::default());
        let mut resp = Response::from_errors(vec![request, resolver, coded]);
        ensure_codes(&mut resp);
        assert_eq!(code(&resp.errors[0]), "\"BAD_USER_INPUT\"");
        assert_eq!(code(&resp.errors[1]), "\"INTERNAL\"");
        assert_eq!(
            resp.errors[1].message, "internal error",
            "the cause is logged, not sent"
        );
        assert_eq!(code(&resp.errors[2]), "\"CONFLICT\"");
    }
}
