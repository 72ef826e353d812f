//! The GraphQL schema: roots, limits, and error codes on every error.
pub mod context;
pub mod loaders;
pub mod mutation;
pub mod query;
pub mod subscription;
pub mod types;
pub mod ws;

use async_graphql::{Response, Schema, SchemaBuilder};

pub type AppSchema = Schema<query::Query, mutation::Mutation, subscription::Subscription>;

pub fn builder() -> SchemaBuilder<query::Query, mutation::Mutation, subscription::Subscription> {
    Schema::build(query::Query, mutation::Mutation, subscription::Subscription)
}

/// Gives every error an `extensions.code` (applied to every response, over HTTP and WebSocket):
/// errors raised before resolvers run (syntax, unknown fields or enum values, wrong variable
/// types, depth and complexity limits) are the client's: `BAD_USER_INPUT`. Not a schema
/// extension: any extension makes every field's resolution go through the extension chain,
/// a boxed future per field of every row of a page.
pub fn ensure_codes(resp: &mut Response) {
    for e in &mut resp.errors {
        let ext = e.extensions.get_or_insert_with(Default::default);
        if ext.get("code").is_none() {
            ext.set("code", "BAD_USER_INPUT");
        }
    }
}
