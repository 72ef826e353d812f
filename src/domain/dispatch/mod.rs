//! Automatic dispatch: rules (conditions and targets), their compilation, and the pure engine
//! that picks an engineer (or, two-stage dispatch's first stage, a service provider) for an
//! order from a snapshot of candidates and explains why.
pub mod engine;
pub mod providers;
pub mod rule;
pub mod trace;

pub use engine::{
    Candidates, Decision, EngineerInfo, EngineerLoad, OrderFacts, PartnerInfo, Reasons, RuleTrace, evaluate,
};
pub use providers::{ProviderCandidates, ProviderInfo, evaluate_providers};
pub use rule::{Assigns, CompiledRule, Condition, Field, Operator, RuleError, RuleSet, RuleSpec, Strategy, Target};
