//! A tenant's business calendar (working days, hours, holidays in a time zone) for measuring SLA targets in business time.

use std::collections::BTreeSet;
use std::fmt;

use chrono::{
    DateTime, Datelike, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeDelta, TimeZone, Utc, Weekday,
};
use chrono_tz::Tz;

/// Seconds in a day: `closes` may be 86_400 (midnight at the end of the day, "24:00").
pub const DAY: u32 = 86_400;

/// How many local days `add` and `between` walk at most (about ten years).
const HORIZON_DAYS: u32 = 3_660;
/// The most holidays a calendar may list.
const MAX_HOLIDAYS: usize = 1_000;
/// Holidays must fall within these years (inclusive).
const HOLIDAY_YEARS: std::ops::RangeInclusive<i32> = 2000..=2100;

/// A tenant's business calendar: business time is the time inside working hours
/// on working weekdays that are not holidays, all in the calendar's time zone.
#[derive(Clone, Debug, PartialEq)]
pub struct Calendar {
    pub time_zone: Tz,
    /// Working weekdays, Monday first ([Mon, Tue, ..., Sun]).
    pub working_days: [bool; 7],
    /// Opening time, seconds after local midnight (0..DAY).
    pub opens: u32,
    /// Closing time, seconds after local midnight (opens < closes <= DAY).
    pub closes: u32,
    /// Local dates that are not worked.
    pub holidays: BTreeSet<NaiveDate>,
}

/// Why a calendar is refused: the offending input field and a readable message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CalendarError {
    pub field: &'static str,
    pub message: String,
}

impl CalendarError {
    fn new(field: &'static str, message: impl Into<String>) -> CalendarError {
        CalendarError {
            field,
            message: message.into(),
        }
    }
}

impl fmt::Display for CalendarError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for CalendarError {}

/// Which instant to take when a local time occurs twice (daylight saving ends).
#[derive(Clone, Copy)]
enum Pick {
    Earliest,
    Latest,
}

impl Calendar {
    /// UTC, every day, all day, no holidays (calendar time).
    pub fn around_the_clock() -> Calendar {
        Calendar {
            time_zone: Tz::UTC,
            working_days: [true; 7],
            opens: 0,
            closes: DAY,
            holidays: BTreeSet::new(),
        }
    }

    /// Checks the shape: at least one working day; opens < closes <= DAY; opens < DAY;
    /// at most 1000 holidays; holidays between years 2000 and 2100.
    /// Field names for errors (the API's): "workingDays", "closes", "holidays".
    pub fn check(&self) -> Result<(), CalendarError> {
        if !self.working_days.contains(&true) {
            return Err(CalendarError::new(
                "workingDays",
                "at least one weekday must be a working day",
            ));
        }
        if !self.has_hours() {
            return Err(CalendarError::new(
                "closes",
                "the closing time must come after the opening time (`24:00` at the latest)",
            ));
        }
        if self.holidays.len() > MAX_HOLIDAYS {
            return Err(CalendarError::new(
                "holidays",
                format!("at most {MAX_HOLIDAYS} holidays"),
            ));
        }
        let outside = [self.holidays.first(), self.holidays.last()]
            .into_iter()
            .flatten()
            .find(|day| !HOLIDAY_YEARS.contains(&day.year()));
        match outside {
            Some(day) => Err(CalendarError::new(
                "holidays",
                format!("holiday {day} is outside the years 2000-2100"),
            )),
            None => Ok(()),
        }
    }

    /// The instant `secs` business seconds after `from` (a negative `secs` counts as 0).
    ///
    /// Only time inside working hours on working, non-holiday local days counts; when `from`
    /// is outside working time the count starts at the next opening. `secs == 0` returns
    /// `from` itself when inside working time, else the next opening. A target that uses up
    /// a window exactly is that window's closing instant. None when the target lies more
    /// than about ten years (3660 local days) after `from`, e.g. when every working day is
    /// a holiday.
    pub fn add(&self, from: DateTime<Utc>, secs: i64) -> Option<DateTime<Utc>> {
        let mut left = TimeDelta::try_seconds(secs.max(0))?;
        for (start, end) in self.windows(from) {
            if end <= from {
                continue;
            }
            let start = start.max(from);
            let available = end - start;
            if left <= available {
                return start.checked_add_signed(left);
            }
            left -= available;
        }
        None
    }

    /// Business seconds between `a` and `b`: positive when b > a, negative (minus the
    /// business seconds from b to a) when b < a, 0 when equal. Only about ten years
    /// (3660 local days) after the earlier instant are counted; beyond, the count saturates.
    pub fn between(&self, a: DateTime<Utc>, b: DateTime<Utc>) -> i64 {
        if b < a {
            return -self.between(b, a);
        }
        let mut total = TimeDelta::zero();
        for (start, end) in self.windows(a) {
            if start >= b {
                break;
            }
            let (start, end) = (start.max(a), end.min(b));
            if start < end {
                total += end - start;
            }
        }
        total.num_seconds()
    }

    /// The local date of `at` in the calendar's time zone.
    pub fn day_of(&self, at: DateTime<Utc>) -> NaiveDate {
        at.with_timezone(&self.time_zone).date_naive()
    }

    /// Parses "HH:MM" (00:00..24:00; 24:00 only meaningful as a closing time) into
    /// seconds after midnight. None when malformed.
    pub fn parse_time(s: &str) -> Option<u32> {
        let (hours, minutes) = s.split_once(':')?;
        let (hours, minutes) = (two_digits(hours)?, two_digits(minutes)?);
        let valid = minutes < 60 && (hours < 24 || (hours == 24 && minutes == 0));
        valid.then_some(hours * 3600 + minutes * 60)
    }

    /// Prints seconds after midnight as "HH:MM" (86_400 -> "24:00"); seconds are dropped.
    pub fn print_time(secs: u32) -> String {
        format!("{:02}:{:02}", secs / 3600, secs % 3600 / 60)
    }

    /// Whether the working hours are well formed (a non-empty part of one day).
    fn has_hours(&self) -> bool {
        self.opens < self.closes && self.closes <= DAY
    }

    /// Whether `weekday` is a working weekday.
    fn works_on(&self, weekday: Weekday) -> bool {
        self.working_days[weekday.num_days_from_monday() as usize]
    }

    /// The working windows in time order, starting with the local day before `from`'s,
    /// for at most the horizon.
    fn windows(&self, from: DateTime<Utc>) -> Windows<'_> {
        let today = self.day_of(from);
        let usable = self.has_hours() && self.working_days.contains(&true);
        Windows {
            calendar: self,
            day: Some(today.pred_opt().unwrap_or(today)),
            left: if usable { HORIZON_DAYS + 2 } else { 0 },
            floor: None,
        }
    }

    /// The working window of local date `day` in UTC, None when `day` is not worked.
    fn window(&self, day: NaiveDate) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        if !self.works_on(day.weekday()) || self.holidays.contains(&day) {
            return None;
        }
        let start = self.to_utc(day, self.opens, Pick::Earliest)?;
        let end = self.to_utc(day, self.closes, Pick::Latest)?;
        (start < end).then_some((start, end))
    }

    /// The instant of local `day` + `secs` (DAY is midnight beginning the next day).
    /// A time in a daylight-saving gap maps to the first instant after the gap.
    fn to_utc(&self, day: NaiveDate, secs: u32, pick: Pick) -> Option<DateTime<Utc>> {
        let local = day
            .and_time(NaiveTime::MIN)
            .checked_add_signed(TimeDelta::try_seconds(i64::from(secs))?)?;
        match self.time_zone.from_local_datetime(&local) {
            LocalResult::Single(at) => Some(at.with_timezone(&Utc)),
            LocalResult::Ambiguous(early, late) => Some(
                match pick {
                    Pick::Earliest => early,
                    Pick::Latest => late,
                }
                .with_timezone(&Utc),
            ),
            LocalResult::None => self.gap_end(local),
        }
    }

    /// The first instant after the daylight-saving gap that swallows the local time `local`:
    /// a binary search between the instants `local` would be under the offsets around it.
    fn gap_end(&self, local: NaiveDateTime) -> Option<DateTime<Utc>> {
        let before = self.offset_at(local.checked_sub_signed(TimeDelta::days(1))?);
        let after = self.offset_at(local.checked_add_signed(TimeDelta::days(1))?);
        let naive = local.and_utc().timestamp();
        // Invariant: the local time at `lo` is before `local`, at `hi` at or after it.
        let (mut lo, mut hi) = (naive - after, naive - before);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            let at = DateTime::from_timestamp(mid, 0)?;
            if at.with_timezone(&self.time_zone).naive_local() >= local {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        DateTime::from_timestamp(hi, 0)
    }

    /// The time zone's offset from UTC, in seconds, at the UTC time `utc`.
    fn offset_at(&self, utc: NaiveDateTime) -> i64 {
        let offset = self.time_zone.offset_from_utc_datetime(&utc);
        i64::from(offset.fix().local_minus_utc())
    }
}

/// Two ASCII digits as a number.
fn two_digits(s: &str) -> Option<u32> {
    match s.as_bytes() {
        [a, b] if a.is_ascii_digit() && b.is_ascii_digit() => Some(u32::from(a - b'0') * 10 + u32::from(b - b'0')),
        _ => None,
    }
}

/// Working windows day by day; a window never starts before the previous one ends
/// (an ambiguous midnight could otherwise make two days' windows overlap).
struct Windows<'a> {
    calendar: &'a Calendar,
    day: Option<NaiveDate>,
    left: u32,
    floor: Option<DateTime<Utc>>,
}

impl Iterator for Windows<'_> {
    type Item = (DateTime<Utc>, DateTime<Utc>);

    fn next(&mut self) -> Option<Self::Item> {
        while self.left > 0 {
            let day = self.day?;
            self.left -= 1;
            self.day = day.succ_opt();
            if let Some((start, end)) = self.calendar.window(day) {
                let start = self.floor.map_or(start, |floor| start.max(floor));
                if start < end {
                    self.floor = Some(end);
                    return Some((start, end));
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::America::New_York;
    use chrono_tz::Europe::Berlin;
    use proptest::prelude::*;

    const HOUR: i64 = 3600;

    fn at(tz: Tz, y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        tz.with_ymd_and_hms(y, mo, d, h, mi, 0)
            .earliest()
            .unwrap()
            .with_timezone(&Utc)
    }

    fn berlin(mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        at(Berlin, 2026, mo, d, h, mi)
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn every_day(tz: Tz, opens: u32, closes: u32) -> Calendar {
        Calendar {
            time_zone: tz,
            working_days: [true; 7],
            opens,
            closes,
            holidays: BTreeSet::new(),
        }
    }

    /// Europe/Berlin, Monday to Friday, 09:00-17:00.
    fn office() -> Calendar {
        Calendar {
            working_days: [true, true, true, true, true, false, false],
            ..every_day(Berlin, 9 * 3600, 17 * 3600)
        }
    }

    #[test]
    fn around_the_clock_is_calendar_time() {
        let calendar = Calendar::around_the_clock();
        assert_eq!(calendar.check(), Ok(()));
        let from = berlin(3, 6, 16, 7) + TimeDelta::milliseconds(250);
        for secs in [0, 1, 59, HOUR, 86_399, 86_400, 86_401, 40 * 86_400 + 17] {
            let to = calendar.add(from, secs).unwrap();
            assert_eq!(to, from + TimeDelta::seconds(secs));
            assert_eq!(calendar.between(from, to), secs);
            assert_eq!(calendar.between(to, from), -secs);
        }
    }

    #[test]
    fn office_hours_roll_over_nights_and_weekends() {
        let office = office();
        assert_eq!(office.day_of(berlin(3, 6, 12, 0)).weekday(), Weekday::Fri);
        // Friday 16:00 + 2 h = Monday 10:00.
        assert_eq!(office.add(berlin(3, 6, 16, 0), 2 * HOUR), Some(berlin(3, 9, 10, 0)));
        // Saturday + 1 h = Monday 10:00.
        assert_eq!(office.add(berlin(3, 7, 11, 0), HOUR), Some(berlin(3, 9, 10, 0)));
        // Before opening: 08:00 + 30 min = 09:30.
        assert_eq!(office.add(berlin(3, 9, 8, 0), 1800), Some(berlin(3, 9, 9, 30)));
        // A full day ends at closing time, one more second is the next morning.
        assert_eq!(office.add(berlin(3, 9, 9, 0), 8 * HOUR), Some(berlin(3, 9, 17, 0)));
        assert_eq!(
            office.add(berlin(3, 9, 9, 0), 8 * HOUR + 1),
            Some(berlin(3, 10, 9, 0) + TimeDelta::seconds(1))
        );
        // 30 business days from Monday morning: Friday of the sixth week, closing time.
        assert_eq!(
            office.add(berlin(3, 9, 9, 0), 30 * 8 * HOUR),
            Some(berlin(4, 17, 17, 0))
        );
    }

    #[test]
    fn zero_seconds_is_now_or_the_next_opening() {
        let office = office();
        assert_eq!(office.add(berlin(3, 9, 11, 5), 0), Some(berlin(3, 9, 11, 5)));
        assert_eq!(office.add(berlin(3, 9, 9, 0), 0), Some(berlin(3, 9, 9, 0)));
        assert_eq!(office.add(berlin(3, 9, 17, 0), 0), Some(berlin(3, 10, 9, 0)));
        assert_eq!(office.add(berlin(3, 6, 17, 0), 0), Some(berlin(3, 9, 9, 0)));
        assert_eq!(office.add(berlin(3, 9, 11, 0), -5), Some(berlin(3, 9, 11, 0)));
    }

    #[test]
    fn holidays_are_skipped() {
        let mut office = office();
        office.holidays.insert(date(2026, 3, 9));
        assert_eq!(office.add(berlin(3, 6, 16, 0), 2 * HOUR), Some(berlin(3, 10, 10, 0)));
        assert_eq!(office.between(berlin(3, 6, 16, 0), berlin(3, 10, 10, 0)), 2 * HOUR);
        assert_eq!(office.add(berlin(3, 9, 12, 0), 0), Some(berlin(3, 10, 9, 0)));
    }

    #[test]
    fn between_counts_only_working_time_and_is_signed() {
        let office = office();
        let (a, b) = (berlin(3, 6, 16, 0), berlin(3, 9, 10, 0));
        assert_eq!(office.between(a, b), 2 * HOUR);
        assert_eq!(office.between(b, a), -2 * HOUR);
        assert_eq!(office.between(a, a), 0);
        assert_eq!(office.between(berlin(3, 7, 0, 0), berlin(3, 8, 23, 0)), 0);
        assert_eq!(office.between(berlin(3, 2, 0, 0), berlin(3, 9, 0, 0)), 5 * 8 * HOUR);
    }

    #[test]
    fn daylight_saving_days_are_23_and_25_hours_long() {
        let calendar = every_day(Berlin, 0, DAY);
        assert_eq!(calendar.between(berlin(3, 29, 0, 0), berlin(3, 30, 0, 0)), 23 * HOUR);
        assert_eq!(calendar.between(berlin(10, 25, 0, 0), berlin(10, 26, 0, 0)), 25 * HOUR);
        assert_eq!(
            calendar.between(berlin(3, 1, 0, 0), berlin(11, 1, 0, 0)),
            (245 * 24) * HOUR
        );
        assert_eq!(calendar.add(berlin(3, 29, 0, 0), 23 * HOUR), Some(berlin(3, 30, 0, 0)));
    }

    #[test]
    fn new_york_office_day_is_eight_hours_across_dst() {
        let calendar = every_day(New_York, 9 * 3600, 17 * 3600);
        for (mo, d) in [(3, 8), (11, 1)] {
            let (midnight, next) = (at(New_York, 2026, mo, d, 0, 0), at(New_York, 2026, mo, d + 1, 0, 0));
            assert_eq!(calendar.between(midnight, next), 8 * HOUR);
            let opening = at(New_York, 2026, mo, d, 9, 0);
            assert_eq!(calendar.add(midnight, 0), Some(opening));
            assert_eq!(calendar.add(midnight, 8 * HOUR), Some(at(New_York, 2026, mo, d, 17, 0)));
        }
    }

    #[test]
    fn gap_and_ambiguous_local_times() {
        // 02:30 does not exist on 2026-03-29 in Berlin: the day opens at 03:00 (01:00 UTC).
        let calendar = every_day(Berlin, 2 * 3600 + 1800, 4 * 3600);
        let gap_end = Utc.with_ymd_and_hms(2026, 3, 29, 1, 0, 0).unwrap();
        assert_eq!(calendar.add(berlin(3, 29, 0, 0), 0), Some(gap_end));
        assert_eq!(calendar.between(berlin(3, 29, 0, 0), berlin(3, 30, 0, 0)), HOUR);
        // 02:30 happens twice on 2026-10-25: opening takes the first, closing the second.
        let calendar = every_day(Berlin, 3600, 2 * 3600 + 1800);
        assert_eq!(
            calendar.between(berlin(10, 25, 0, 0), berlin(10, 26, 0, 0)),
            2 * HOUR + 1800
        );
        let calendar = every_day(Berlin, 2 * 3600 + 1800, 4 * 3600);
        let first = Utc.with_ymd_and_hms(2026, 10, 25, 0, 30, 0).unwrap();
        assert_eq!(calendar.add(berlin(10, 25, 0, 0), 0), Some(first));
    }

    #[test]
    fn no_working_time_within_the_horizon_is_none() {
        let mut mondays = office();
        mondays.working_days = [true, false, false, false, false, false, false];
        let from = date(2026, 1, 5);
        mondays.holidays = from.iter_weeks().take(530).collect();
        assert_eq!(mondays.check(), Ok(()));
        let start = berlin(1, 1, 12, 0);
        assert_eq!(mondays.add(start, 0), None);
        assert_eq!(mondays.add(start, HOUR), None);
        assert_eq!(mondays.between(start, start + TimeDelta::days(4000)), 0);

        let mut idle = office();
        idle.working_days = [false; 7];
        assert_eq!(idle.add(start, HOUR), None);
        assert_eq!(idle.between(start, start + TimeDelta::days(10)), 0);
    }

    #[test]
    fn check_refuses_bad_shapes() {
        assert_eq!(office().check(), Ok(()));
        let field = |calendar: Calendar| calendar.check().unwrap_err().field;
        assert_eq!(
            field(Calendar {
                working_days: [false; 7],
                ..office()
            }),
            "workingDays"
        );
        assert_eq!(
            field(Calendar {
                opens: 17 * 3600,
                ..office()
            }),
            "closes"
        );
        assert_eq!(
            field(Calendar {
                opens: 18 * 3600,
                ..office()
            }),
            "closes"
        );
        assert_eq!(
            field(Calendar {
                closes: DAY + 60,
                ..office()
            }),
            "closes"
        );
        assert_eq!(
            field(Calendar {
                opens: DAY,
                closes: DAY,
                ..office()
            }),
            "closes"
        );
        assert_eq!(
            Calendar {
                opens: 0,
                closes: DAY,
                ..office()
            }
            .check(),
            Ok(())
        );
        let many = date(2030, 1, 1).iter_days().take(1001).collect();
        assert_eq!(
            field(Calendar {
                holidays: many,
                ..office()
            }),
            "holidays"
        );
        let old = BTreeSet::from([date(1999, 12, 31)]);
        assert_eq!(
            field(Calendar {
                holidays: old,
                ..office()
            }),
            "holidays"
        );
        let late = BTreeSet::from([date(2030, 1, 1), date(2101, 1, 1)]);
        assert_eq!(
            field(Calendar {
                holidays: late,
                ..office()
            }),
            "holidays"
        );
        let edges = BTreeSet::from([date(2000, 1, 1), date(2100, 12, 31)]);
        assert_eq!(
            Calendar {
                holidays: edges,
                ..office()
            }
            .check(),
            Ok(())
        );
    }

    #[test]
    fn times_parse_and_print() {
        for (text, secs) in [
            ("00:00", 0),
            ("09:00", 32_400),
            ("17:30", 63_000),
            ("23:59", 86_340),
            ("24:00", DAY),
        ] {
            assert_eq!(Calendar::parse_time(text), Some(secs));
            assert_eq!(Calendar::print_time(secs), text);
        }
        for bad in [
            "25:00",
            "9:5x",
            "24:01",
            "9:00",
            "09:60",
            "",
            ":",
            "0900",
            "09:00:00",
            "+9:00",
            "09:-1",
            "０９:００",
        ] {
            assert_eq!(Calendar::parse_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn day_of_uses_the_local_date() {
        let office = office();
        let late = Utc.with_ymd_and_hms(2026, 3, 6, 23, 30, 0).unwrap();
        assert_eq!(office.day_of(late), date(2026, 3, 7));
        assert_eq!(Calendar::around_the_clock().day_of(late), date(2026, 3, 6));
    }

    fn calendars() -> Vec<Calendar> {
        let mut office = office();
        office.holidays = BTreeSet::from([date(2026, 3, 9), date(2026, 4, 3), date(2026, 12, 25)]);
        let weekend = Calendar {
            working_days: [false, false, false, false, true, true, true],
            ..every_day(New_York, 2 * 3600 + 1800, 20 * 3600)
        };
        vec![office, weekend, every_day(Berlin, 0, DAY), Calendar::around_the_clock()]
    }

    proptest! {
        #[test]
        fn between_inverts_add(
            which in 0usize..4,
            from in 1_767_225_600i64..1_830_297_600,
            secs in 0i64..(60 * 8 * 3600),
            millis in 0i64..1000,
        ) {
            let calendar = &calendars()[which];
            let from = DateTime::from_timestamp(from, 0).unwrap() + TimeDelta::milliseconds(millis);
            let to = calendar.add(from, secs).unwrap();
            prop_assert!(to >= from);
            prop_assert_eq!(calendar.between(from, to), secs);
            prop_assert_eq!(calendar.between(to, from), -secs);
            let start = calendar.add(from, 0).unwrap();
            prop_assert_eq!(calendar.between(from, start), 0);
            prop_assert_eq!(calendar.between(start, to), secs);
        }
    }
}
