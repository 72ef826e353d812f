//! GraphiQL at `/`.
use async_graphql::http::GraphiQLSource;
use axum::response::Html;

pub(super) async fn page() -> Html<String> {
    Html(
        GraphiQLSource::build()
            .endpoint("/graphql")
            .subscription_endpoint("/graphql/ws")
            .finish(),
    )
}
