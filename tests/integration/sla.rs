//! SLA clocks, through the API: an upstream's policies (chosen by priority and conditions),
//! its business calendar (time zone, working days and hours, holidays), the due times an
//! order gets at creation (or a draft would get), met by assignment and acceptance, stopped by
//! cancellation; warnings and breaches told once on the upstream's feed by durable timers; the
//! listing's `slaStatus` and `dueBefore`; FEWEST_TODAY counting the engineer's own day. The
//! clock is the test's: timers fire at an instant it names, and an order is aged by moving its
//! stored clock back (as if created earlier); nothing sleeps.
use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, Timelike, Utc};
use chrono_tz::Tz;
use entity::{timer, work_order};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter, Set};
use serde_json::{Value, json};

use crate::common::*;

const CREATE: &str = "mutation($i:CreateSlaPolicyInput!){ createSlaPolicy(input:$i){ policy {
  id name position enabled priorities clock assignedWithin acceptedWithin warnAtPercent
  conditions { field operator values } } } }";
const UPDATE: &str = "mutation($i:UpdateSlaPolicyInput!){ updateSlaPolicy(input:$i){ policy {
  id name assignedWithin acceptedWithin warnAtPercent clock enabled } } }";
const LIST: &str = "{ slaPolicies { id name position } }";
const CALENDAR: &str = "{ businessCalendar { timeZone workingDays opens closes holidays } }";
const SET_CALENDAR: &str = "mutation($i:SetBusinessCalendarInput!){ setBusinessCalendar(input:$i){ calendar {
  timeZone workingDays opens closes holidays } } }";
const SLA: &str = "query($o:ID!){ workOrder(id:$o){ state version sla { policyId policyName clock status
  targets { target within dueAt warnAt metAt remainingSeconds status } } history { kind data } } }";
const ACCEPT: &str = "mutation($t:ID!){ acceptTask(input:{taskId:$t}){ task { status } } }";

async fn policy(app: &TestApp, token: &str, input: Value) -> Value {
    app.ok(token, CREATE, json!({ "i": input })).await["createSlaPolicy"]["policy"].clone()
}

async fn sla(app: &TestApp, w: &World, o: &str) -> Value {
    app.ok(&w.dispatcher_token, SLA, json!({ "o": o })).await["workOrder"].clone()
}

fn at(v: &Value) -> DateTime<Utc> {
    v.as_str().unwrap_or_else(|| panic!("not a time: {v}")).parse().unwrap()
}

fn target<'a>(sla: &'a Value, which: &str) -> &'a Value {
    sla["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["target"] == which)
        .unwrap_or_else(|| panic!("no {which} in {sla}"))
}

async fn sla_timers(app: &TestApp, o: &str) -> i64 {
    app.scalar(&format!(
        "SELECT COUNT(*) FROM timers WHERE work_order_id = '{o}' AND kind LIKE 'SLA_%'"
    ))
    .await
}

async fn fire_at(app: &TestApp, minutes: i64) -> usize {
    let at = Utc::now() + TimeDelta::minutes(minutes);
    dispatchd::service::timers::fire_due(&app.state, at).await.unwrap()
}

/// Moves every instant of the order's SLA (and its SLA timers) `secs` back: the order is as
/// if created `secs` earlier.
async fn age(app: &TestApp, o: &str, secs: i64) {
    fn shift(v: &mut Value, by: TimeDelta) {
        match v {
            Value::String(s) => {
                if let Ok(t) = s.parse::<DateTime<Utc>>() {
                    *s = (t - by).to_rfc3339();
                }
            }
            Value::Array(a) => a.iter_mut().for_each(|x| shift(x, by)),
            Value::Object(m) => m.values_mut().for_each(|x| shift(x, by)),
            _ => {}
        }
    }
    let by = TimeDelta::seconds(secs);
    let db = &app.state.db;
    let row = work_order::Entity::find_by_id(o).one(db).await.unwrap().unwrap();
    let mut clock = row.sla.clone().expect("the order has an SLA");
    shift(&mut clock, by);
    let (due, warn) = (row.sla_next_due.map(|t| t - by), row.sla_next_warn.map(|t| t - by));
    let mut m = row.into_active_model();
    m.sla = Set(Some(clock));
    m.sla_next_due = Set(due);
    m.sla_next_warn = Set(warn);
    m.update(db).await.unwrap();
    let timers = timer::Entity::find()
        .filter(timer::Column::WorkOrderId.eq(o))
        .filter(timer::Column::Kind.starts_with("SLA_"))
        .all(db)
        .await
        .unwrap();
    for t in timers {
        let due = t.due_at - by;
        let mut m = t.into_active_model();
        m.due_at = Set(due);
        m.update(db).await.unwrap();
    }
}

#[tokio::test]
async fn policies_are_kept_in_order_and_checked_field_by_field() {
    let app = TestApp::spawn().await;
    let w = World::new(&app, 900).await;
    let admin = &w.up.admin_token;
    let a = policy(
        &app,
        admin,
        json!({"name": " Urgent ", "priorities": ["URGENT", "HIGH", "URGENT"],
        "assignedWithin": "PT2H", "acceptedWithin": "PT4H"}),
    )
    .await;
    assert_eq!(a["name"], "Urgent");
    assert_eq!(a["priorities"], json!(["HIGH", "URGENT"]));
    assert_eq!(a["clock"], "BUSINESS", "business time unless asked");
    assert_eq!(a["warnAtPercent"], 80);
    assert_eq!(a["enabled"], true);
    assert_eq!(
        (a["assignedWithin"].clone(), a["acceptedWithin"].clone()),
        (json!("PT2H"), json!("PT4H"))
    );
    let b = policy(
        &app,
        admin,
        json!({"name": "North", "clock": "CALENDAR", "acceptedWithin": "P1D",
        "conditions": [{"field": "REGION", "operator": "PREFIX", "values": ["CN-11"]}]}),
    )
    .await;
    assert_eq!(b["position"], 1);
    let first = policy(
        &app,
        admin,
        json!({"name": "Any", "assignedWithin": "PT8H", "position": 0}),
    )
    .await;
    let names = |v: &Value| -> Vec<String> {
        v["slaPolicies"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| s(&p["name"]))
            .collect()
    };
    assert_eq!(names(&app.ok(admin, LIST, json!({})).await), ["Any", "Urgent", "North"]);

    // Every bad field is named, and nothing is saved.
    let before = app.snapshot().await;
    for (input, field) in [
        (json!({"name": "x"}), "assignedWithin"),
        (json!({"name": "x", "assignedWithin": "PT30S"}), "assignedWithin"),
        (json!({"name": "x", "assignedWithin": "P400D"}), "assignedWithin"),
        (json!({"name": "x", "assignedWithin": "soon"}), "assignedWithin"),
        (
            json!({"name": "x", "assignedWithin": "PT4H", "acceptedWithin": "PT2H"}),
            "acceptedWithin",
        ),
        (
            json!({"name": "x", "assignedWithin": "PT4H", "warnAtPercent": 100}),
            "warnAtPercent",
        ),
        (
            json!({"name": "x", "assignedWithin": "PT4H", "warnAtPercent": 0}),
            "warnAtPercent",
        ),
        (json!({"name": " ", "assignedWithin": "PT4H"}), "name"),
        (
            json!({"name": "x", "assignedWithin": "PT4H", "position": 7}),
            "position",
        ),
        (
            json!({"name": "x", "assignedWithin": "PT4H",
                "conditions": [{"field": "REGION", "operator": "PREFIX", "values": ["not a region"]}]}),
            "conditions[0].values[0]",
        ),
    ] {
        let body = app.gql(admin, CREATE, json!({ "i": input })).await;
        assert_error(&body, "BAD_USER_INPUT", field);
        assert_eq!(body["errors"][0]["extensions"]["field"], field, "{body}");
    }
    let upd = |i: Value| app.gql(admin, UPDATE, json!({ "i": i }));
    let id = s(&a["id"]);
    // Removing the only target left is refused; `null` removes one, omitted keeps it.
    let body = upd(json!({"policyId": first["id"], "assignedWithin": null})).await;
    assert_error(&body, "BAD_USER_INPUT", "assignedWithin");
    assert_eq!(app.snapshot().await, before);
    let r = upd(json!({"policyId": id, "acceptedWithin": null, "warnAtPercent": 50, "clock": "CALENDAR"})).await;
    let p = &r["data"]["updateSlaPolicy"]["policy"];
    assert_eq!(p["acceptedWithin"], Value::Null, "{r}");
    assert_eq!(
        (p["assignedWithin"].clone(), p["warnAtPercent"].clone()),
        (json!("PT2H"), json!(50))
    );
    assert_eq!(p["clock"], "CALENDAR");

    // Reordering names every policy once.
    let reorder = "mutation($ids:[ID!]!){ reorderSlaPolicies(input:{policyIds:$ids}){ policies { name position } } }";
    let body = app.gql(admin, reorder, json!({"ids": [b["id"], id]})).await;
    assert_error(&body, "BAD_USER_INPUT", "policyIds");
    let r = app.ok(admin, reorder, json!({"ids": [b["id"], id, first["id"]]})).await;
    let order: Vec<&str> = r["reorderSlaPolicies"]["policies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(order, ["North", "Urgent", "Any"]);

    // Another upstream's policies are not there for it; a provider has none to manage.
    let (other, other_dispatcher) = World::rival(&app).await;
    assert_eq!(
        app.ok(&other_dispatcher, LIST, json!({})).await["slaPolicies"],
        json!([])
    );
    let body = app
        .gql(
            &other.admin_token,
            UPDATE,
            json!({"i": {"policyId": id, "name": "Mine"}}),
        )
        .await;
    assert_eq!(code(&body).as_deref(), Some("NOT_FOUND"), "{body}");
    let del = "mutation($p:ID!){ deleteSlaPolicy(input:{policyId:$p}){ deletedPolicyId } }";
    assert_eq!(app.err(&other.admin_token, del, json!({"p": id})).await, "NOT_FOUND");
    assert_eq!(
        app.err(
            &w.provider.admin_token,
            CREATE,
            json!({"i": {"name": "P", "assignedWithin": "PT1H"}})
        )
        .await,
        "FORBIDDEN"
    );
    assert_eq!(app.err(&w.dispatcher_token, del, json!({"p": id})).await, "FORBIDDEN");

    let r = app.ok(admin, del, json!({"p": id})).await;
    assert_eq!(r["deleteSlaPolicy"]["deletedPolicyId"], id.as_str());
    let left = app.ok(admin, "{ slaPolicies { name position } }", json!({})).await;
    assert_eq!(
        left["slaPolicies"],
        json!([{"name": "North", "position": 0}, {"name": "Any", "position": 1}])
    );
}

#[tokio::test]
async fn each_tenant_sets_its_own_calendar_and_bad_ones_are_refused() {
    let app = TestApp::spawn().await;
    let w = World::new(&app, 900).await;
    let admin = &w.up.admin_token;
    let c = app.ok(&w.dispatcher_token, CALENDAR, json!({})).await;
    assert_eq!(
        c["businessCalendar"],
        json!({"timeZone": "UTC", "workingDays": ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY"],
            "opens": "09:00", "closes": "17:00", "holidays": []})
    );
    let good = json!({"timeZone": "Europe/Berlin", "workingDays": ["SATURDAY", "MONDAY", "MONDAY"],
        "opens": "08:30", "closes": "24:00", "holidays": ["2026-12-25", "2026-12-24", "2026-12-25"]});
    let r = app.ok(admin, SET_CALENDAR, json!({ "i": good })).await;
    assert_eq!(
        r["setBusinessCalendar"]["calendar"],
        json!({"timeZone": "Europe/Berlin", "workingDays": ["MONDAY", "SATURDAY"], "opens": "08:30",
            "closes": "24:00", "holidays": ["2026-12-24", "2026-12-25"]})
    );
    let before = app.snapshot().await;
    for (change, field) in [
        (json!({"timeZone": "Mars/Olympus"}), "timeZone"),
        (json!({"workingDays": []}), "workingDays"),
        (json!({"opens": "9am"}), "opens"),
        (json!({"opens": "25:00"}), "opens"),
        (json!({"closes": "08:00"}), "closes"),
        (json!({"opens": "10:00", "closes": "10:00"}), "closes"),
    ] {
        let mut i = good.clone();
        for (k, v) in change.as_object().unwrap() {
            i[k] = v.clone();
        }
        let body = app.gql(admin, SET_CALENDAR, json!({ "i": i })).await;
        assert_error(&body, "BAD_USER_INPUT", field);
    }
    assert_eq!(app.snapshot().await, before);
    // A provider keeps its own (its engineers' day); the upstream's is untouched by it.
    let mine = json!({"timeZone": "Asia/Shanghai", "workingDays": ["MONDAY"], "opens": "09:00", "closes": "18:00"});
    app.ok(&w.provider.admin_token, SET_CALENDAR, json!({ "i": mine }))
        .await;
    let theirs = app.ok(&w.provider.admin_token, CALENDAR, json!({})).await;
    assert_eq!(theirs["businessCalendar"]["timeZone"], "Asia/Shanghai");
    let ours = app.ok(&w.dispatcher_token, CALENDAR, json!({})).await;
    assert_eq!(ours["businessCalendar"]["timeZone"], "Europe/Berlin");
    assert_eq!(app.err(&w.engineer_tokens[0], CALENDAR, json!({})).await, "FORBIDDEN");
    assert_eq!(
        app.err(&w.dispatcher_token, SET_CALENDAR, json!({ "i": mine })).await,
        "FORBIDDEN"
    );
}

#[tokio::test]
async fn an_order_is_given_due_times_met_by_assignment_and_acceptance() {
    let app = TestApp::spawn().await;
    let w = World::new(&app, 900).await;
    let p = policy(
        &app,
        &w.up.admin_token,
        json!({"name": "Two and four hours", "clock": "CALENDAR",
        "assignedWithin": "PT2H", "acceptedWithin": "PT4H", "warnAtPercent": 80}),
    )
    .await;
    // Only URGENT orders have the second policy; the first applies to every other.
    policy(
        &app,
        &w.up.admin_token,
        json!({"name": "Never", "priorities": ["URGENT"], "assignedWithin": "PT1H", "position": 0}),
    )
    .await;
    let before = Utc::now();
    let o = w.order(&app).await;
    let after = Utc::now();
    let v = sla(&app, &w, &o).await;
    let clock = &v["sla"];
    assert_eq!(clock["policyId"], p["id"], "{v}");
    assert_eq!(clock["policyName"], "Two and four hours");
    assert_eq!(
        (clock["clock"].clone(), clock["status"].clone()),
        (json!("CALENDAR"), json!("ON_TRACK"))
    );
    let assigned = target(clock, "ASSIGNED");
    let due = at(&assigned["dueAt"]);
    assert!(
        due >= before + TimeDelta::hours(2) && due <= after + TimeDelta::hours(2),
        "{assigned}"
    );
    assert_eq!(
        at(&assigned["warnAt"]),
        due - TimeDelta::minutes(24),
        "80% of two hours"
    );
    assert_eq!(assigned["within"], "PT2H");
    let left = assigned["remainingSeconds"].as_i64().unwrap();
    assert!((7100..=7200).contains(&left), "{left}");
    assert_eq!(at(&target(clock, "ACCEPTED")["dueAt"]), due + TimeDelta::hours(2));
    assert_eq!(sla_timers(&app, &o).await, 4, "a warning and a breach per target");

    // Assigned: ASSIGNED is met (its timers go), ACCEPTED still runs.
    app.ok(
        &w.dispatcher_token,
        ASSIGN,
        json!({"o": o, "e": w.engineers[0], "v": 1}),
    )
    .await;
    let v = sla(&app, &w, &o).await;
    let assigned = target(&v["sla"], "ASSIGNED");
    assert_eq!(assigned["status"], "MET", "{v}");
    assert!(at(&assigned["metAt"]) >= after);
    assert_eq!(assigned["remainingSeconds"], Value::Null);
    assert_eq!(target(&v["sla"], "ACCEPTED")["status"], "ON_TRACK");
    assert_eq!(v["sla"]["status"], "ON_TRACK", "the worst of what runs");
    assert_eq!(sla_timers(&app, &o).await, 2);

    // Accepted: everything met, no timer left, and nothing more is told.
    let task = app
        .ok(
            &w.dispatcher_token,
            "query($o:ID!){ workOrder(id:$o){ task { id } } }",
            json!({"o": o}),
        )
        .await;
    app.ok(
        &w.engineer_tokens[0],
        ACCEPT,
        json!({"t": task["workOrder"]["task"]["id"]}),
    )
    .await;
    let v = sla(&app, &w, &o).await;
    assert_eq!(v["sla"]["status"], "MET", "{v}");
    assert_eq!(target(&v["sla"], "ACCEPTED")["status"], "MET");
    assert_eq!(sla_timers(&app, &o).await, 0);
    assert_eq!(fire_at(&app, 600).await, 0);

    // An URGENT order gets the first policy that applies: the one put first.
    let i = json!({"workflowId": w.workflow, "title": "Now", "region": "CN-31-04", "priority": "URGENT"});
    let urgent =
        s(&app.ok(&w.dispatcher_token, CREATE_ORDER, json!({ "i": i })).await["createWorkOrder"]["workOrder"]["id"]);
    assert_eq!(sla(&app, &w, &urgent).await["sla"]["policyName"], "Never");
    // Cancelled before its due time: CANCELLED, its timers gone.
    app.ok(&w.dispatcher_token, CANCEL, json!({"o": urgent, "v": 1})).await;
    let v = sla(&app, &w, &urgent).await;
    assert_eq!(v["sla"]["status"], "CANCELLED", "{v}");
    assert_eq!(sla_timers(&app, &urgent).await, 0);
    // Without a policy that applies, no SLA.
    app.ok(
        &w.up.admin_token,
        "mutation($p:ID!){ deleteSlaPolicy(input:{policyId:$p}){ deletedPolicyId } }",
        json!({"p": p["id"]}),
    )
    .await;
    let plain = w.order(&app).await;
    assert_eq!(sla(&app, &w, &plain).await["sla"], Value::Null);
}

/// The next working day at or after `from` (a local date) that is not in `holidays`.
fn next_working(mut d: NaiveDate, holidays: &[NaiveDate]) -> NaiveDate {
    while holidays.contains(&d) || d.weekday().number_from_monday() > 5 {
        d = d.succ_opt().unwrap();
    }
    d
}

#[tokio::test]
async fn business_time_counts_only_working_hours_in_the_tenants_zone() {
    let app = TestApp::spawn().await;
    let w = World::new(&app, 900).await;
    let zone: Tz = "Asia/Shanghai".parse().unwrap();
    // Today and tomorrow (Shanghai's) are holidays: the clock starts at the next opening.
    let today = Utc::now().with_timezone(&zone).date_naive();
    let holidays = [today, today.succ_opt().unwrap()];
    let cal = json!({"timeZone": "Asia/Shanghai", "workingDays": ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY"],
        "opens": "09:00", "closes": "18:00", "holidays": holidays});
    app.ok(&w.up.admin_token, SET_CALENDAR, json!({ "i": cal })).await;
    policy(
        &app,
        &w.up.admin_token,
        json!({"name": "Business", "assignedWithin": "PT10H", "warnAtPercent": 50}),
    )
    .await;
    let o = w.order(&app).await;
    let v = sla(&app, &w, &o).await;
    let t = target(&v["sla"], "ASSIGNED");
    // Ten working hours from the next opening: 9 on its day, 1 on the next working day.
    let first = next_working(today, &holidays);
    let second = next_working(first.succ_opt().unwrap(), &holidays);
    let local = |d: NaiveDate, h: u32| {
        d.and_hms_opt(h, 0, 0)
            .unwrap()
            .and_local_timezone(zone)
            .unwrap()
            .with_timezone(&Utc)
    };
    assert_eq!(at(&t["dueAt"]), local(second, 10), "{v}");
    assert_eq!(at(&t["warnAt"]), local(first, 14), "half of the working time");
    assert_eq!(t["remainingSeconds"], 36_000, "no working time has passed yet");
    assert_eq!(at(&t["dueAt"]).hour(), 2, "10:00 in Shanghai is 02:00 UTC");
    // A draft is measured the same way, and nothing is written.
    let before = app.snapshot().await;
    let q = "query($i:ExplainDispatchInput!){ explainDispatch(input:$i){ dryRun sla { policyName status targets { target dueAt warnAt remainingSeconds } } } }";
    let draft = app
        .ok(&w.dispatcher_token, q, json!({"i": {"order": {"region": "CN-31-04"}}}))
        .await;
    let d = &draft["explainDispatch"]["sla"];
    assert_eq!(d["policyName"], "Business", "{draft}");
    assert_eq!(d["targets"][0]["dueAt"], t["dueAt"]);
    assert_eq!(d["targets"][0]["remainingSeconds"], 36_000);
    assert_eq!(app.snapshot().await, before);
    // The saved order's explanation shows its own SLA.
    let mine = app.ok(&w.dispatcher_token, q, json!({"i": {"workOrderId": o}})).await;
    assert_eq!(mine["explainDispatch"]["sla"]["targets"][0]["dueAt"], t["dueAt"]);
    // A provider explaining its own dispatch never sees the upstream's SLA.
    let body = app
        .gql(
            &w.provider.admin_token,
            "query($i:ExplainDispatchInput!){ explainDispatch(input:$i){ sla { status } } }",
            json!({"i": {"order": {"region": "CN-31-04"}}}),
        )
        .await;
    assert!(body["data"]["explainDispatch"]["sla"].is_null(), "{body}");
}

/// The next SLA event on the feed (others, e.g. a waiting order's retried dispatch, skipped);
/// none within half a second.
async fn next_sla_event(ws: &mut Ws) -> Option<Value> {
    while let Some(e) = ws.recv_within(std::time::Duration::from_millis(500)).await {
        if e["payload"]["data"]["workOrderEvents"]["kind"]
            .as_str()
            .is_some_and(|k| k.starts_with("SLA_"))
        {
            return Some(e);
        }
    }
    None
}

#[tokio::test]
async fn warnings_and_breaches_are_told_once_on_the_upstreams_feed() {
    let app = TestApp::spawn().await;
    let w = World::new(&app, 900).await;
    policy(
        &app,
        &w.up.admin_token,
        json!({"name": "Hour", "clock": "CALENDAR", "assignedWithin": "PT1H", "warnAtPercent": 75}),
    )
    .await;
    let late = w.order(&app).await;
    let on_time = w.order(&app).await;
    // Assigned in time: its timers are cancelled, nothing is ever told of it.
    app.ok(
        &w.dispatcher_token,
        ASSIGN,
        json!({"o": on_time, "e": w.engineers[0], "v": 1}),
    )
    .await;
    let mut ws = app.ws(&w.dispatcher_token).await;
    ws.subscribe(
        "1",
        "subscription{ workOrderEvents { kind workOrder { id } data } }",
        json!({}),
    )
    .await;

    // The waiting order's retried dispatch (its own timers) is not what this is about.
    app.exec(&format!(
        "DELETE FROM timers WHERE work_order_id = '{late}' AND kind NOT LIKE 'SLA_%'"
    ))
    .await;
    assert_eq!(fire_at(&app, 40).await, 0);
    assert!(next_sla_event(&mut ws).await.is_none(), "before the warning");
    assert_eq!(fire_at(&app, 46).await, 1);
    let e = next_sla_event(&mut ws).await.expect("a warning");
    let event = &e["payload"]["data"]["workOrderEvents"];
    assert_eq!(event["kind"], "SLA_WARNING", "{e}");
    assert_eq!(event["workOrder"]["id"], late.as_str());
    assert_eq!(event["data"]["target"], "ASSIGNED");
    assert_eq!(event["data"]["policyName"], "Hour");
    assert_eq!(fire_at(&app, 46).await, 0, "told once");
    assert_eq!(fire_at(&app, 61).await, 1);
    let e = next_sla_event(&mut ws).await.expect("a breach");
    assert_eq!(
        e["payload"]["data"]["workOrderEvents"]["kind"], "SLA_BREACHED",
        "told once: {e}"
    );
    assert_eq!(fire_at(&app, 600).await, 0);
    assert!(next_sla_event(&mut ws).await.is_none());
    assert_eq!(sla_timers(&app, &late).await, 0);

    let v = sla(&app, &w, &late).await;
    let told: Vec<&str> = kinds(&v["history"])
        .into_iter()
        .filter(|k| k.starts_with("SLA_"))
        .collect();
    assert_eq!(told, ["SLA_WARNING", "SLA_BREACHED"]);
    assert_eq!(v["version"], 1, "telling is not a change of the order");
    let v = sla(&app, &w, &on_time).await;
    assert!(!kinds(&v["history"]).iter().any(|k| k.starts_with("SLA_")), "{v}");
    // The provider's feed and its engineer's notifications carry nothing of it.
    assert_eq!(
        app.scalar(&format!(
            "SELECT COUNT(*) FROM work_order_events WHERE tenant_id = '{}' AND kind LIKE 'SLA_%'",
            w.provider.id
        ))
        .await,
        0
    );
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM notifications WHERE kind LIKE 'SLA_%'")
            .await,
        0
    );
}

#[tokio::test]
async fn orders_are_listed_by_sla_status_and_due_time() {
    let app = TestApp::spawn().await;
    let w = World::new(&app, 900).await;
    policy(
        &app,
        &w.up.admin_token,
        json!({"name": "Two hours", "clock": "CALENDAR", "assignedWithin": "PT2H",
        "priorities": ["NORMAL"]}),
    )
    .await;
    let on_track = w.order(&app).await;
    let warning = w.order(&app).await;
    age(&app, &warning, 100 * 60).await;
    let breached = w.order(&app).await;
    age(&app, &breached, 3 * 3600).await;
    let met = w.assigned_order(&app, 0).await;
    let cancelled = w.order(&app).await;
    app.ok(&w.dispatcher_token, CANCEL, json!({"o": cancelled, "v": 1}))
        .await;
    // Met late stays breached.
    let late = w.order(&app).await;
    age(&app, &late, 3 * 3600).await;
    app.ok(
        &w.dispatcher_token,
        ASSIGN,
        json!({"o": late, "e": w.engineers[1], "v": 1}),
    )
    .await;
    let i = json!({"workflowId": w.workflow, "title": "No SLA", "region": "CN-31-04", "priority": "LOW"});
    app.ok(&w.dispatcher_token, CREATE_ORDER, json!({ "i": i })).await;

    let q = "query($f:WorkOrderFilter){ workOrders(filter:$f, first: 50){ totalCount nodes { id sla { status } } } }";
    let list = |f: Value| {
        let app = &app;
        let token = w.dispatcher_token.clone();
        async move {
            let r = app.ok(&token, q, json!({ "f": f })).await;
            let mut ids: Vec<String> = r["workOrders"]["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| s(&n["id"]))
                .collect();
            ids.sort();
            ids
        }
    };
    let sorted = |mut v: Vec<&String>| {
        v.sort();
        v.into_iter().cloned().collect::<Vec<String>>()
    };
    assert_eq!(list(json!({"slaStatus": ["ON_TRACK"]})).await, vec![on_track.clone()]);
    assert_eq!(list(json!({"slaStatus": ["WARNING"]})).await, vec![warning.clone()]);
    assert_eq!(
        list(json!({"slaStatus": ["BREACHED"]})).await,
        sorted(vec![&breached, &late])
    );
    assert_eq!(list(json!({"slaStatus": ["MET"]})).await, vec![met.clone()]);
    assert_eq!(list(json!({"slaStatus": ["CANCELLED"]})).await, vec![cancelled.clone()]);
    assert_eq!(
        list(json!({"slaStatus": ["WARNING", "BREACHED"]})).await,
        sorted(vec![&warning, &breached, &late])
    );
    // Each order shows the status it is listed by.
    let r = app
        .ok(&w.dispatcher_token, q, json!({"f": {"slaStatus": ["WARNING"]}}))
        .await;
    assert_eq!(r["workOrders"]["nodes"][0]["sla"]["status"], "WARNING");
    let r = app.ok(&w.dispatcher_token, SLA, json!({"o": late})).await;
    assert_eq!(target(&r["workOrder"]["sla"], "ASSIGNED")["status"], "BREACHED");
    // Due before an instant: what still runs (met or cancelled ones are not due any more).
    let in_an_hour = (Utc::now() + TimeDelta::hours(1)).to_rfc3339();
    assert_eq!(
        list(json!({"dueBefore": in_an_hour})).await,
        sorted(vec![&warning, &breached])
    );
    let in_three = (Utc::now() + TimeDelta::hours(3)).to_rfc3339();
    assert_eq!(
        list(json!({"dueBefore": in_three})).await,
        sorted(vec![&on_track, &warning, &breached])
    );
    assert_eq!(
        list(json!({"dueBefore": in_three, "slaStatus": ["ON_TRACK"]})).await,
        vec![on_track.clone()]
    );
    // Filtering by an upstream's SLA is the upstream's alone.
    for token in [&w.provider.admin_token, &w.engineer_tokens[0]] {
        for f in [json!({"slaStatus": ["BREACHED"]}), json!({"dueBefore": in_three})] {
            let body = app.gql(token, q, json!({ "f": f })).await;
            assert_eq!(code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
        }
    }
    let body = app.gql(&w.engineer_tokens[0], SLA, json!({"o": met})).await;
    assert!(
        body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["path"] == json!(["workOrder", "sla"]) && e["extensions"]["code"] == "FORBIDDEN"),
        "{body}"
    );
}

#[tokio::test]
async fn fewest_today_counts_the_engineers_own_day() {
    let app = TestApp::spawn().await;
    let w = World::new(&app, 900).await;
    // A zone whose date is not UTC's right now: 14 hours ahead late in the UTC day, 12 behind
    // early in it.
    let now = Utc::now();
    let zone = if now.hour() >= 11 { "Etc/GMT-14" } else { "Etc/GMT+12" };
    let tz: Tz = zone.parse().unwrap();
    let local = now.with_timezone(&tz).date_naive().format("%Y-%m-%d").to_string();
    let utc = now.date_naive().format("%Y-%m-%d").to_string();
    assert_ne!(local, utc);
    let cal = json!({"timeZone": zone, "workingDays": ["MONDAY"], "opens": "09:00", "closes": "17:00"});
    app.ok(&w.provider.admin_token, SET_CALENDAR, json!({ "i": cal })).await;
    // Engineer 0 took five orders on UTC's date, engineer 1 five on the provider's own date,
    // engineer 2 is out of the picture.
    w.set_engineer(&app, &w.engineers[2], json!({"active": false})).await;
    let count = |e: &str, day: &str| {
        format!("INSERT INTO engineer_daily_counts (engineer_id, day, assigned) VALUES ('{e}', '{day}', 5)")
    };
    for sql in [count(&w.engineers[0], &utc), count(&w.engineers[1], &local)] {
        app.exec(&sql).await;
    }
    w.partner_rule(&app, 10, "FEWEST_TODAY").await;
    w.set_engineer(&app, &w.engineers[2], json!({"active": false})).await;
    let o = w.order(&app).await;
    let q = "query($o:ID!){ workOrder(id:$o){ state dispatch { engineer { id } } } }";
    let v = app.ok(&w.dispatcher_token, q, json!({"o": o})).await;
    assert_eq!(
        v["workOrder"]["dispatch"]["engineer"]["id"],
        w.engineers[0].as_str(),
        "{v}"
    );
    // And the assignment is counted on the provider's date.
    let counted = app
        .scalar(&format!(
            "SELECT CAST(assigned AS BIGINT) FROM engineer_daily_counts WHERE engineer_id = '{}' AND day = '{local}'",
            w.engineers[0]
        ))
        .await;
    assert_eq!(counted, 1);
}
