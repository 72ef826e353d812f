//! Typed access to what each request carries: app state, the caller, the DataLoaders.
use async_graphql::Context;

use crate::app::AppState;
use crate::auth::Actor;
use crate::error::{Error, ResultExt};

use super::loaders::Loaders;

/// The authentication outcome of a request: an actor, or why there is none.
pub struct RequestAuth(pub Result<Actor, Error>);

pub trait ContextExt {
    fn state(&self) -> &AppState;
    fn actor(&self) -> async_graphql::Result<&Actor>;
    fn loaders(&self) -> &Loaders;
}

impl ContextExt for Context<'_> {
    fn state(&self) -> &AppState {
        self.data_unchecked::<AppState>()
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
}
