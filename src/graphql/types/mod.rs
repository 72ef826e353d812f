//! GraphQL output types, enums and inputs.

/// A GraphQL enum mirroring a domain enum variant for variant (the domain knows no GraphQL).
macro_rules! mirror {
    ($(#[$m:meta])* $name:ident <=> $domain:path { $($(#[$vm:meta])* $v:ident),* $(,)? }) => {
        $(#[$m])*
        #[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
        pub enum $name { $($(#[$vm])* $v),* }
        impl From<$domain> for $name {
            fn from(d: $domain) -> Self { match d { $(<$domain>::$v => $name::$v),* } }
        }
        impl From<$name> for $domain {
            fn from(g: $name) -> Self { match g { $($name::$v => <$domain>::$v),* } }
        }
    };
}

mod containers;
mod enums;
mod inputs;
mod notifications;
mod orders;
mod parties;
mod rules;

pub use containers::*;
pub use enums::*;
pub use inputs::*;
pub use notifications::*;
pub use orders::*;
pub use parties::*;
pub use rules::*;
