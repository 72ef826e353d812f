//! Typed access to what each request carries: app state, the caller, the DataLoaders.
use async_graphql::Context;

use crate::auth::Actor;
use crate::error::{Error, ResultExt};
use crate::service::Caller;
use crate::service::Services;

use super::loaders::Loaders;

/// The authentication outcome of a request: an actor, or why there is none.
pub struct RequestAuth(pub Result<Actor, Error>);

/// The caller with its tenant, loaded once per request (or per subscription) on first use: who
/// each object the request reaches is shown to.
#[derive(Default)]
pub struct CallerCell(tokio::sync::OnceCell<Caller>);

pub trait ContextExt {
    fn state(&self) -> &Services;
    fn actor(&self) -> async_graphql::Result<&Actor>;
    fn loaders(&self) -> &Loaders;
    /// The caller, checked and loaded (once per request).
    fn caller(&self) -> impl Future<Output = async_graphql::Result<&Caller>> + Send;
}

impl ContextExt for Context<'_> {
    fn state(&self) -> &Services {
        self.data_unchecked::<Services>()
    }

    fn actor(&self) -> async_graphql::Result<&Actor> {
        match self.data_opt::<RequestAuth>() {
            Some(RequestAuth(Ok(actor))) => Ok(actor),
            Some(RequestAuth(Err(e))) => Err(Error::Unauthenticated(e.to_string())).gql(),
            None => Err(Error::Unauthenticated("missing Authorization bearer token".into())).gql(),
        }
    }

    fn loaders(&self) -> &Loaders {
        self.data_unchecked::<Loaders>()
    }

    async fn caller(&self) -> async_graphql::Result<&Caller> {
        let actor = self.actor()?;
        let cell = self
            .data_opt::<CallerCell>()
            .ok_or_else(|| Error::internal("no caller cell in the request"))
            .gql()?;
        cell.0.get_or_try_init(|| Caller::load(self.state(), actor)).await.gql()
    }
}
