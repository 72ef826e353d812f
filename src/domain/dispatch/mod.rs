//! Automatic dispatch: rules (conditions and targets), their compilation, and the pure engine
//! that picks an engineer for an order from a snapshot of candidates and explains why.
pub mod engine;
pub mod rule;
pub mod trace;

pub use engine::{
    Candidates, Decision, EngineerInfo, EngineerLoad, OrderFacts, PartnerInfo, Reasons, RuleTrace, evaluate,
};
pub use rule::{CompiledRule, Condition, Field, Operator, RuleError, RuleSet, RuleSpec, Strategy, Target};
