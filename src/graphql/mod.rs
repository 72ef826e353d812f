//! The GraphQL schema: roots, limits, and error codes on every error.
pub mod context;
pub mod loaders;
pub mod mutation;
pub mod query;
pub mod subscription;
pub mod types;
pub mod ws;

use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextRequest};
use async_graphql::{Response, Schema, SchemaBuilder};

pub type AppSchema = Schema<query::Query, mutation::Mutation, subscription::Subscription>;

pub fn builder() -> SchemaBuilder<query::Query, mutation::Mutation, subscription::Subscription> {
    Schema::build(query::Query, mutation::Mutation, subscription::Subscription).extension(ErrorCodes)
}

/// Gives every error an `extensions.code`: errors raised before resolvers run (syntax, unknown
/// fields or enum values, wrong variable types, depth and complexity limits) are the client's:
/// `BAD_USER_INPUT`.
pub struct ErrorCodes;

impl ExtensionFactory for ErrorCodes {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ErrorCodes)
    }
}

#[async_trait::async_trait]
impl Extension for ErrorCodes {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let mut resp = next.run(ctx).await;
        ensure_codes(&mut resp);
        resp
    }
}

/// Errors without a code were raised before any resolver ran: they are the client's.
pub fn ensure_codes(resp: &mut Response) {
    for e in &mut resp.errors {
        let ext = e.extensions.get_or_insert_with(Default::default);
        if ext.get("code").is_none() {
            ext.set("code", "BAD_USER_INPUT");
        }
    }
}
