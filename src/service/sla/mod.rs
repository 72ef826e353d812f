//! SLA clocks: a tenant's business calendar, its SLA policies, and each order's clock.
pub mod calendar;
pub mod clocks;
pub mod policies;

pub use calendar::{CalendarCache, StoredCalendar, TenantCalendar, business_calendar, set_business_calendar};
pub use policies::PolicyInput;
