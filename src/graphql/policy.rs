//! The visibility policy (`domain::visibility`) applied to every field the API resolves: each
//! object type's guard checks the field against the table for the audience the object was
//! created with, so whatever path reached an object, a field not granted to its audience is
//! refused (FORBIDDEN) and a field without a row is refused to everyone.
use async_graphql::{Context, ErrorExtensions, Guard, OutputType, Result};

use crate::domain::visibility::{Audience, TypePolicy};
use crate::error::Error;

/// An object type with a guard: its rows of the policy, found once.
pub trait Guarded: OutputType {
    fn policy() -> &'static TypePolicy;
}

/// Implements [`Guarded`] for each type, by its GraphQL name.
macro_rules! guarded {
    ($($t:ty),* $(,)?) => {$(
        impl $crate::graphql::policy::Guarded for $t {
            fn policy() -> &'static $crate::domain::visibility::TypePolicy {
                static POLICY: std::sync::OnceLock<$crate::domain::visibility::TypePolicy> = std::sync::OnceLock::new();
                POLICY.get_or_init(|| {
                    $crate::domain::visibility::TypePolicy::of(&<$t as async_graphql::OutputType>::type_name())
                })
            }
        }
    )*};
}
pub(crate) use guarded;

pub struct Sees {
    policy: &'static TypePolicy,
    /// None for containers (payloads, connections, edges, the viewer): shown to the caller.
    audience: Option<Audience>,
}

impl Sees {
    /// The guard of an object of type `T` seen by `audience`.
    pub fn object<T: Guarded>(audience: Audience) -> Sees {
        Sees {
            policy: T::policy(),
            audience: Some(audience),
        }
    }

    /// The guard of a container type `T`.
    pub fn container<T: Guarded>() -> Sees {
        Sees {
            policy: T::policy(),
            audience: None,
        }
    }
}

impl Guard for Sees {
    async fn check(&self, ctx: &Context<'_>) -> Result<()> {
        let field = ctx.item.node.name.node.as_str();
        if self.policy.allows(field, self.audience) {
            return Ok(());
        }
        let who = self.audience.map(Audience::describe).unwrap_or("anyone");
        Err(Error::Forbidden(format!("{}.{field} is not shown to {who}", self.policy.name)).extend())
    }
}
