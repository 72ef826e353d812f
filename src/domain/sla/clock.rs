//! An order's SLA: the targets its policy set at creation, each met, stopped or running, and
//! its status at any instant.
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::calendar::Calendar;

/// How a policy's durations are measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ClockKind {
    /// Working time only: the tenant's business calendar (time zone, working days and hours,
    /// holidays).
    Business,
    /// Elapsed time, around the clock.
    Calendar,
}

impl ClockKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ClockKind::Business => "BUSINESS",
            ClockKind::Calendar => "CALENDAR",
        }
    }

    pub fn parse(s: &str) -> Option<ClockKind> {
        [ClockKind::Business, ClockKind::Calendar]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// What an SLA target measures, from the order's creation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Target {
    /// An engineer is assigned (by rule, by hand, or by claiming an offer).
    Assigned,
    /// The engineer accepted the task (or it was accepted on its behalf).
    Accepted,
}

impl Target {
    pub const ALL: [Target; 2] = [Target::Assigned, Target::Accepted];

    pub fn as_str(self) -> &'static str {
        match self {
            Target::Assigned => "ASSIGNED",
            Target::Accepted => "ACCEPTED",
        }
    }

    pub fn parse(s: &str) -> Option<Target> {
        Target::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// Where a target (or, the worst of its targets, an order) stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Status {
    /// Met in time.
    Met,
    /// The order was cancelled before the target was met, and before it was due.
    Cancelled,
    /// Running, before its warning.
    OnTrack,
    /// Running, past its warning (a share of its time), not yet due.
    Warning,
    /// Due and not met, or met late.
    Breached,
}

impl Status {
    pub const ALL: [Status; 5] = [
        Status::OnTrack,
        Status::Warning,
        Status::Breached,
        Status::Met,
        Status::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Met => "MET",
            Status::Cancelled => "CANCELLED",
            Status::OnTrack => "ON_TRACK",
            Status::Warning => "WARNING",
            Status::Breached => "BREACHED",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// A target's clock.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetClock {
    pub target: Target,
    /// The policy's duration, in seconds (of working time, on a business clock).
    pub within_secs: u64,
    pub due_at: DateTime<Utc>,
    pub warn_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub met_at: Option<DateTime<Utc>>,
}

/// An order's SLA, as stored with it (`work_orders.sla`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderSla {
    pub policy_id: String,
    pub policy_name: String,
    pub clock: ClockKind,
    pub started_at: DateTime<Utc>,
    pub targets: Vec<TargetClock>,
    /// When the order was cancelled: the targets not met by then stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<DateTime<Utc>>,
}

/// What the listing filters on, kept in columns beside the SLA (`slaStatus`, `dueBefore`):
/// the status at any instant follows from these three (see [`Summary::status_at`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Summary {
    /// The earliest due time of the targets still running.
    pub next_due: Option<DateTime<Utc>>,
    /// The earliest warning of the targets still running.
    pub next_warn: Option<DateTime<Utc>>,
    /// What no instant changes any more: BREACHED once a target was met late (or stopped
    /// past due); once none runs, MET or CANCELLED. `None` while it depends on the time.
    pub settled: Option<Status>,
}

impl Summary {
    /// The order's status at `now`, from the summary alone (what the listing's filter does in
    /// SQL).
    pub fn status_at(&self, now: DateTime<Utc>) -> Option<Status> {
        if let Some(s) = self.settled {
            return Some(s);
        }
        let due = self.next_due?;
        Some(if due <= now {
            Status::Breached
        } else if self.next_warn.is_some_and(|w| w <= now) {
            Status::Warning
        } else {
            Status::OnTrack
        })
    }
}

/// A policy's targets, as it sets them on an order.
#[derive(Clone, Debug, PartialEq)]
pub struct Targets {
    pub assigned_within: Option<u64>,
    pub accepted_within: Option<u64>,
    /// The warning comes at this share of each target's time (1..=99 percent).
    pub warn_at_percent: u8,
}

impl Targets {
    fn each(&self) -> impl Iterator<Item = (Target, u64)> + '_ {
        [
            (Target::Assigned, self.assigned_within),
            (Target::Accepted, self.accepted_within),
        ]
        .into_iter()
        .filter_map(|(t, w)| w.map(|w| (t, w)))
    }
}

impl OrderSla {
    /// The SLA an order created at `at` gets from a policy. `None` when the calendar has no
    /// working time to measure it in (see [`Calendar::add`]).
    pub fn start(
        policy_id: &str,
        policy_name: &str,
        clock: ClockKind,
        targets: &Targets,
        calendar: &Calendar,
        at: DateTime<Utc>,
    ) -> Option<OrderSla> {
        let always = Calendar::around_the_clock();
        let measure = match clock {
            ClockKind::Business => calendar,
            ClockKind::Calendar => &always,
        };
        let clocks = targets
            .each()
            .map(|(target, within_secs)| {
                let warn_secs = (within_secs * u64::from(targets.warn_at_percent)).div_ceil(100);
                Some(TargetClock {
                    target,
                    within_secs,
                    due_at: measure.add(at, within_secs as i64)?,
                    warn_at: measure.add(at, warn_secs as i64)?,
                    met_at: None,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(OrderSla {
            policy_id: policy_id.to_owned(),
            policy_name: policy_name.to_owned(),
            clock,
            started_at: at,
            targets: clocks,
            stopped_at: None,
        })
    }

    pub fn target(&self, t: Target) -> Option<&TargetClock> {
        self.targets.iter().find(|c| c.target == t)
    }

    fn running(&self, c: &TargetClock) -> bool {
        c.met_at.is_none() && self.stopped_at.is_none()
    }

    /// Meets `target` at `at` if it is still running; true when that changed anything.
    pub fn meet(&mut self, target: Target, at: DateTime<Utc>) -> bool {
        if self.stopped_at.is_some() {
            return false;
        }
        match self.targets.iter_mut().find(|c| c.target == target) {
            Some(c) if c.met_at.is_none() => {
                c.met_at = Some(at);
                true
            }
            _ => false,
        }
    }

    /// The order was cancelled at `at`: what still runs stops. True when anything did.
    pub fn stop(&mut self, at: DateTime<Utc>) -> bool {
        if self.stopped_at.is_some() || self.targets.iter().all(|c| c.met_at.is_some()) {
            return false;
        }
        self.stopped_at = Some(at);
        true
    }

    /// Whether `target` still runs (its warning and breach are still to be told).
    pub fn runs(&self, target: Target) -> bool {
        self.target(target).is_some_and(|c| self.running(c))
    }

    /// A target's status at `now`.
    pub fn status_of(&self, c: &TargetClock, now: DateTime<Utc>) -> Status {
        match (c.met_at, self.stopped_at) {
            (Some(m), _) if m <= c.due_at => Status::Met,
            (Some(_), _) => Status::Breached,
            (None, Some(s)) if s >= c.due_at => Status::Breached,
            (None, Some(_)) => Status::Cancelled,
            (None, None) if now >= c.due_at => Status::Breached,
            (None, None) if now >= c.warn_at => Status::Warning,
            (None, None) => Status::OnTrack,
        }
    }

    /// The order's status at `now`: the worst of its targets'.
    pub fn status(&self, now: DateTime<Utc>) -> Status {
        self.targets
            .iter()
            .map(|c| self.status_of(c, now))
            .max()
            .unwrap_or(Status::Met)
    }

    /// The columns the listing filters on.
    pub fn summary(&self) -> Summary {
        let running: Vec<&TargetClock> = self.targets.iter().filter(|c| self.running(c)).collect();
        let settled_statuses: Vec<Status> = self
            .targets
            .iter()
            .filter(|c| !self.running(c))
            .map(|c| self.status_of(c, c.due_at))
            .collect();
        let settled = if settled_statuses.contains(&Status::Breached) {
            Some(Status::Breached)
        } else if !running.is_empty() {
            None
        } else if settled_statuses.contains(&Status::Cancelled) {
            Some(Status::Cancelled)
        } else {
            Some(Status::Met)
        };
        Summary {
            next_due: running.iter().map(|c| c.due_at).min(),
            next_warn: running.iter().map(|c| c.warn_at).min(),
            settled,
        }
    }

    /// Time left to a running target's due time at `now`, in seconds of this SLA's clock
    /// (working seconds on a business clock): negative once overdue. `None` once it stopped
    /// running (met or cancelled).
    pub fn remaining(&self, c: &TargetClock, now: DateTime<Utc>, calendar: &Calendar) -> Option<i64> {
        if !self.running(c) {
            return None;
        }
        Some(match self.clock {
            ClockKind::Business => calendar.between(now, c.due_at),
            ClockKind::Calendar => (c.due_at - now).num_seconds(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 7, h, m, 0).unwrap()
    }

    fn sla(assign: Option<u64>, accept: Option<u64>) -> OrderSla {
        let targets = Targets {
            assigned_within: assign,
            accepted_within: accept,
            warn_at_percent: 75,
        };
        OrderSla::start(
            "p",
            "Gold",
            ClockKind::Calendar,
            &targets,
            &Calendar::around_the_clock(),
            t(8, 0),
        )
        .unwrap()
    }

    #[test]
    fn calendar_targets_run_from_creation_and_warn_at_their_share() {
        let s = sla(Some(3600), Some(7200));
        let a = s.target(Target::Assigned).unwrap();
        assert_eq!((a.due_at, a.warn_at), (t(9, 0), t(8, 45)));
        assert_eq!(s.status(t(8, 44)), Status::OnTrack);
        assert_eq!(s.status(t(8, 45)), Status::Warning);
        assert_eq!(s.status(t(9, 0)), Status::Breached);
        let sum = s.summary();
        assert_eq!(
            (sum.next_due, sum.next_warn, sum.settled),
            (Some(t(9, 0)), Some(t(8, 45)), None)
        );
        for now in [t(8, 0), t(8, 45), t(9, 30), t(11, 0)] {
            assert_eq!(sum.status_at(now), Some(s.status(now)), "at {now}");
        }
    }

    #[test]
    fn met_targets_stop_and_the_summary_follows_the_rest() {
        let mut s = sla(Some(3600), Some(7200));
        assert!(s.meet(Target::Assigned, t(8, 50)));
        assert!(!s.meet(Target::Assigned, t(8, 55)), "met once");
        assert_eq!(
            s.status(t(8, 50)),
            Status::OnTrack,
            "the accepted target warns at 09:30"
        );
        assert_eq!(s.status(t(9, 40)), Status::Warning);
        let sum = s.summary();
        assert_eq!((sum.next_due, sum.settled), (Some(t(10, 0)), None));
        assert!(s.meet(Target::Accepted, t(9, 59)));
        assert_eq!(s.status(t(12, 0)), Status::Met);
        assert_eq!(s.summary().settled, Some(Status::Met));
        assert_eq!(s.summary().next_due, None);
    }

    #[test]
    fn a_target_met_late_is_breached_for_good() {
        let mut s = sla(Some(3600), Some(7200));
        s.meet(Target::Assigned, t(9, 10));
        let sum = s.summary();
        assert_eq!(sum.settled, Some(Status::Breached));
        assert_eq!(sum.next_due, Some(t(10, 0)), "the other target still runs");
        assert_eq!(sum.status_at(t(8, 0)), Some(Status::Breached));
        assert_eq!(s.status(t(9, 15)), Status::Breached);
    }

    #[test]
    fn cancelling_stops_what_runs_breached_only_when_already_due() {
        let mut s = sla(Some(3600), Some(7200));
        s.meet(Target::Assigned, t(8, 30));
        assert!(s.stop(t(9, 0)));
        assert!(!s.stop(t(9, 5)), "stopped once");
        assert!(!s.meet(Target::Accepted, t(9, 10)), "a stopped clock is not met");
        assert_eq!(s.status(t(23, 0)), Status::Cancelled);
        assert_eq!(s.summary().settled, Some(Status::Cancelled));
        assert!(!s.runs(Target::Accepted));

        let mut late = sla(Some(3600), None);
        late.stop(t(9, 30));
        assert_eq!(late.status(t(9, 30)), Status::Breached);
        assert_eq!(late.summary().settled, Some(Status::Breached));

        let mut met = sla(Some(3600), None);
        met.meet(Target::Assigned, t(8, 1));
        assert!(!met.stop(t(8, 2)), "nothing left to stop");
        assert_eq!(met.summary().settled, Some(Status::Met));
    }

    #[test]
    fn remaining_counts_down_and_goes_negative() {
        let s = sla(Some(3600), None);
        let a = s.target(Target::Assigned).unwrap();
        let cal = Calendar::around_the_clock();
        assert_eq!(s.remaining(a, t(8, 30), &cal), Some(1800));
        assert_eq!(s.remaining(a, t(9, 10), &cal), Some(-600));
    }

    #[test]
    fn stored_form_round_trips() {
        let mut s = sla(Some(3600), Some(7200));
        s.meet(Target::Assigned, t(8, 5));
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["targets"][0]["target"], "ASSIGNED");
        assert_eq!(serde_json::from_value::<OrderSla>(json).unwrap(), s);
    }
}
