//! GraphQL output types, enums and inputs.
mod enums;
mod inputs;
mod objects;

pub use enums::*;
pub use inputs::*;
pub use objects::*;
