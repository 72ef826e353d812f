//! The composition root, which nothing below imports: the schema over the `Services`, the HTTP
//! edge (`http`), GraphiQL, `spawn()`.
mod graphiql;
mod http;
mod negotiate;
mod operation;
mod params;
mod refusal;
mod serve;

pub use http::router;
pub use serve::{Server, spawn};

use crate::config::ServeConfig;
use crate::graphql::{self, AppSchema};
use crate::service::Services;

pub fn schema(state: Services, cfg: &ServeConfig) -> AppSchema {
    graphql::builder()
        .data(state)
        .limit_depth(cfg.edge.max_query_depth)
        .limit_complexity(cfg.edge.max_query_complexity)
        .finish()
}

/// The SDL, built with no data attached.
pub fn export_sdl() -> String {
    graphql::builder().finish().sdl()
}
