//! The visibility policy (`domain::visibility`) applied to every field the API resolves: each
//! object type's guard checks the field against the table for the audience the object was
//! created with, so whatever path reached an object, a field not granted to its audience is
//! refused (FORBIDDEN) and a field without a row is refused to everyone.
use std::borrow::Cow;

use async_graphql::{Context, ErrorExtensions, Guard, OutputType, Result};

use crate::domain::visibility::{self, Audience};
use crate::error::Error;

pub struct Sees {
    ty: Cow<'static, str>,
    /// None for containers (payloads, connections, edges, the viewer): shown to the caller.
    audience: Option<Audience>,
}

impl Sees {
    /// The guard of an object of type `T` seen by `audience`.
    pub fn object<T: OutputType>(audience: Audience) -> Sees {
        Sees {
            ty: T::type_name(),
            audience: Some(audience),
        }
    }

    /// The guard of a container type `T`.
    pub fn container<T: OutputType>() -> Sees {
        Sees {
            ty: T::type_name(),
            audience: None,
        }
    }
}

impl Guard for Sees {
    async fn check(&self, ctx: &Context<'_>) -> Result<()> {
        let field = ctx.item.node.name.node.as_str();
        if visibility::allows(&self.ty, field, self.audience) {
            return Ok(());
        }
        let who = self.audience.map(Audience::describe).unwrap_or("anyone");
        Err(Error::Forbidden(format!("{}.{field} is not shown to {who}", self.ty)).extend())
    }
}
