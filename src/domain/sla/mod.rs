//! SLA clocks: a tenant's business calendar, its SLA policies, and an order's targets.
pub mod calendar;
pub mod clock;
pub mod policy;

pub use calendar::Calendar;
pub use clock::{ClockKind, OrderSla, Status, Summary, Target, TargetClock, Targets};
pub use policy::{CompiledPolicy, PolicySpec, choose};
