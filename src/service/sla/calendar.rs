//! A tenant's time zone and business calendar: as stored, set by its ADMIN, and cached for
//! what may lag a few seconds behind a change on another instance (the day of FEWEST_TODAY,
//! the time left shown on an order). Due times are always computed from the stored calendar.
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{NaiveDate, Weekday};
use parking_lot::RwLock;
use sea_orm::ConnectionTrait;
use serde::{Deserialize, Serialize};

use crate::auth::Actor;
use crate::domain::sla::Calendar;
use crate::error::{Error, Result};
use crate::service::{Caller, Services};
use crate::store;

/// The calendar as stored (`tenants.business_calendar`) and as the API shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredCalendar {
    /// Monday = 1 .. Sunday = 7.
    pub working_days: Vec<u8>,
    pub opens: String,
    pub closes: String,
    pub holidays: Vec<NaiveDate>,
}

impl StoredCalendar {
    /// Monday to Friday, 09:00 to 17:00, no holidays: a tenant's calendar until its ADMIN sets one.
    pub fn default_hours() -> StoredCalendar {
        StoredCalendar {
            working_days: vec![1, 2, 3, 4, 5],
            opens: "09:00".into(),
            closes: "17:00".into(),
            holidays: Vec::new(),
        }
    }
}

/// A tenant's time zone (IANA name) and calendar.
#[derive(Clone, Debug, PartialEq)]
pub struct TenantCalendar {
    pub time_zone: String,
    pub stored: StoredCalendar,
    pub calendar: Calendar,
}

pub const WEEKDAYS: [Weekday; 7] = [
    Weekday::Mon,
    Weekday::Tue,
    Weekday::Wed,
    Weekday::Thu,
    Weekday::Fri,
    Weekday::Sat,
    Weekday::Sun,
];

/// Checks a calendar as given (field names are the API's) and builds it.
pub fn build(time_zone: &str, stored: StoredCalendar) -> Result<TenantCalendar> {
    let tz: chrono_tz::Tz = time_zone.parse().map_err(|_| {
        Error::bad_input(
            "timeZone",
            format!("'{time_zone}' is not an IANA time zone (e.g. Europe/Berlin, Asia/Shanghai, UTC)"),
        )
    })?;
    let mut working_days = [false; 7];
    for &d in &stored.working_days {
        working_days[usize::from(d.clamp(1, 7) - 1)] = true;
    }
    let time = |field: &'static str, v: &str| {
        Calendar::parse_time(v).ok_or_else(|| Error::bad_input(field, format!("'{v}' is not a time of day: use HH:MM")))
    };
    let calendar = Calendar {
        time_zone: tz,
        working_days,
        opens: time("opens", &stored.opens)?,
        closes: time("closes", &stored.closes)?,
        holidays: stored.holidays.iter().copied().collect::<BTreeSet<_>>(),
    };
    calendar.check().map_err(|e| Error::bad_input(e.field, e.message))?;
    let mut stored = stored;
    stored.working_days.sort_unstable();
    stored.working_days.dedup();
    stored.holidays.sort_unstable();
    stored.holidays.dedup();
    stored.opens = Calendar::print_time(calendar.opens);
    stored.closes = Calendar::print_time(calendar.closes);
    Ok(TenantCalendar {
        time_zone: tz.name().to_owned(),
        stored,
        calendar,
    })
}

/// The calendar from a tenant's stored columns (the defaults for what is not set).
pub fn from_columns(time_zone: Option<String>, stored: Option<serde_json::Value>) -> Result<TenantCalendar> {
    let stored = match stored {
        Some(v) => serde_json::from_value(v).map_err(|e| Error::internal(format!("stored business calendar: {e}")))?,
        None => StoredCalendar::default_hours(),
    };
    build(time_zone.as_deref().unwrap_or("UTC"), stored)
        .map_err(|e| Error::internal(format!("stored business calendar: {e}")))
}

/// Reads a tenant's calendar (in the caller's transaction, when given one).
pub async fn read<C: ConnectionTrait>(conn: &C, tenant: &str) -> Result<TenantCalendar> {
    let (tz, stored) = store::sla::calendar(conn, tenant)
        .await?
        .ok_or_else(|| Error::not_found("tenant", tenant))?;
    from_columns(tz, stored)
}

/// Staff: the caller's tenant's calendar.
#[tracing::instrument(name = "service.business_calendar", level = "debug", skip_all)]
pub async fn business_calendar(state: &Services, actor: &Actor) -> Result<TenantCalendar> {
    let caller = Caller::load(state, actor).await?;
    caller.require_op("Query.businessCalendar")?;
    read(&state.db, caller.tenant_id()).await
}

/// ADMIN, INTEGRATION: sets the caller's tenant's time zone and calendar. Orders keep the due
/// times they were given; orders created from now on are measured on this calendar.
#[tracing::instrument(name = "service.set_business_calendar", level = "debug", skip_all)]
pub async fn set_business_calendar(
    state: &Services,
    actor: &Actor,
    time_zone: &str,
    stored: StoredCalendar,
) -> Result<TenantCalendar> {
    let caller = Caller::load(state, actor).await?;
    caller.require_op("Mutation.setBusinessCalendar")?;
    if stored.working_days.iter().any(|d| !(1..=7).contains(d)) {
        return Err(Error::bad_input("workingDays", "days are MONDAY to SUNDAY"));
    }
    let built = build(time_zone, stored)?;
    let json = serde_json::to_value(&built.stored).map_err(Error::internal)?;
    store::sla::set_calendar(&state.writer, caller.tenant_id(), &built.time_zone, json).await?;
    state.calendars.forget(caller.tenant_id());
    Ok(built)
}

/// How long a cached calendar is trusted (a change on another instance shows within it).
const FRESH_FOR: Duration = Duration::from_secs(30);

/// A tenant's calendar and when it was read.
type Cached = (Instant, Arc<TenantCalendar>);

/// Tenants' calendars, cached for [`FRESH_FOR`].
#[derive(Clone, Default)]
pub struct CalendarCache {
    inner: Arc<RwLock<HashMap<String, Cached>>>,
}

impl CalendarCache {
    pub async fn get<C: ConnectionTrait>(&self, conn: &C, tenant: &str) -> Result<Arc<TenantCalendar>> {
        if let Some((at, c)) = self.inner.read().get(tenant)
            && at.elapsed() < FRESH_FOR
        {
            return Ok(c.clone());
        }
        let c = Arc::new(read(conn, tenant).await?);
        self.inner
            .write()
            .insert(tenant.to_owned(), (Instant::now(), c.clone()));
        Ok(c)
    }

    pub fn forget(&self, tenant: &str) {
        self.inner.write().remove(tenant);
    }

    /// The tenant's day (`YYYY-MM-DD`) at `at`: what FEWEST_TODAY counts by.
    pub async fn day_of<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<String> {
        Ok(self
            .get(conn, tenant)
            .await?
            .calendar
            .day_of(at)
            .format("%Y-%m-%d")
            .to_string())
    }

    /// [`Self::day_of`] for each of `tenants`, by tenant.
    pub async fn days_of<'a, C: ConnectionTrait>(
        &self,
        conn: &C,
        tenants: impl IntoIterator<Item = &'a str>,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<HashMap<String, String>> {
        let tenants: std::collections::BTreeSet<String> = tenants.into_iter().map(str::to_owned).collect();
        let mut out = HashMap::new();
        for t in tenants {
            let day = self.day_of(conn, &t, at).await?;
            out.insert(t, day);
        }
        Ok(out)
    }
}
