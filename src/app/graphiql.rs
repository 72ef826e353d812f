//! GraphiQL at `/`.
use async_graphql::http::GraphiQLSource;
use axum::Router;
use axum::response::Html;
use axum::routing::get;

/// The routes GraphiQL needs (its page at `/`).
pub(super) fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new().route("/", get(page))
}

async fn page() -> Html<String> {
    Html(
        GraphiQLSource::build()
            .endpoint("/graphql")
            .subscription_endpoint("/graphql/ws")
            .finish(),
    )
}
