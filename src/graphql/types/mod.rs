//! GraphQL output types, enums and inputs.
mod enums;
mod inputs;
mod objects;
mod rules;

pub use enums::*;
pub use inputs::*;
pub use objects::*;
pub use rules::*;
