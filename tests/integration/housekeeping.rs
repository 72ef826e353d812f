//! Housekeeping on the timers: an order left waiting for a dispatcher has its automatic
//! dispatch retried by itself, backing off, so a rule added meanwhile takes effect; what makes
//! the wait end cancels the retry; acknowledged notifications (and, when set, old events) are
//! pruned after their retention. The clock is the test's.
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::json;

use crate::common::*;

const HISTORY: &str = "query($o:ID!){ workOrder(id:$o){ state history { kind actorRole } } }";

/// The order's retry timer: (minutes from now until due, attempt), if any.
async fn retry_of(app: &TestApp, o: &str) -> Option<(i64, i64)> {
    let sql = format!("SELECT COUNT(*) FROM timers WHERE work_order_id = '{o}' AND kind = 'RETRY_DISPATCH'");
    match app.scalar(&sql).await {
        0 => None,
        1 => {
            use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
            let t = entity::timer::Entity::find()
                .filter(entity::timer::Column::WorkOrderId.eq(o))
                .one(&app.state.db)
                .await
                .unwrap()
                .unwrap();
            let due: DateTime<Utc> = t.due_at;
            Some(((due - Utc::now()).num_seconds().div_euclid(60) + 1, t.attempt as i64))
        }
        n => panic!("{n} retry timers for one order"),
    }
}

async fn fire_at(app: &TestApp, minutes: i64) -> usize {
    let at = Utc::now() + TimeDelta::minutes(minutes);
    dispatchd::service::timers::fire_due(&app.state, at).await.unwrap()
}

#[tokio::test]
async fn an_order_waiting_for_a_dispatcher_is_retried_with_backoff_until_a_rule_takes_it() {
    let app = TestApp::spawn().await;
    let w = World::new(&app, 900).await;
    let o = w.order(&app).await;
    assert_eq!(retry_of(&app, &o).await, Some((10, 0)), "first retry in ten minutes");
    assert_eq!(fire_at(&app, 9).await, 0);
    assert_eq!(fire_at(&app, 11).await, 1);
    let h = app.ok(&w.dispatcher_token, HISTORY, json!({"o": o})).await;
    let k = kinds(&h["workOrder"]["history"]);
    assert_eq!(
        k[k.len() - 3..],
        ["AUTO_DISPATCH_RETRIED", "AUTO_DISPATCH_ATTEMPTED", "ROUTED_TO_MANUAL"]
    );
    assert!(h["workOrder"]["history"].as_array().unwrap().last().unwrap()["actorRole"].is_null());
    assert_eq!(retry_of(&app, &o).await, Some((20, 1)), "then twice as long");
    assert_eq!(fire_at(&app, 11).await, 0, "not due again yet");
    assert_eq!(fire_at(&app, 21).await, 1);
    assert_eq!(retry_of(&app, &o).await, Some((40, 2)));
    // A rule added meanwhile takes the order at the next retry, with no dispatcher asking.
    w.partner_rule(&app, 5, "ROUND_ROBIN").await;
    assert_eq!(fire_at(&app, 41).await, 1);
    let h = app.ok(&w.dispatcher_token, HISTORY, json!({"o": o})).await;
    assert_eq!(h["workOrder"]["state"], "DOWNSTREAM_TASK");
    assert_eq!(retry_of(&app, &o).await, None);

    // What ends the wait cancels the retry: a manual assignment, a cancellation.
    for (i, end) in [ASSIGN, CANCEL].into_iter().enumerate() {
        let rule_free = app
            .ok(
                &w.dispatcher_token,
                CREATE_ORDER,
                json!({"i": {"workflowId": w.workflow, "title": "Far away", "region": "US-CA"}}),
            )
            .await;
        let o = s(&rule_free["createWorkOrder"]["workOrder"]["id"]);
        assert!(retry_of(&app, &o).await.is_some());
        let vars = match i {
            0 => json!({"o": o, "e": w.engineers[1], "v": 1}),
            _ => json!({"o": o, "v": 1, "r": "gone"}),
        };
        app.ok(&w.dispatcher_token, end, vars).await;
        assert_eq!(retry_of(&app, &o).await, None, "{end}");
    }
}

#[tokio::test]
async fn retries_are_off_when_set_so() {
    let app = TestApp::spawn_with(|c| c.manual_retry_secs = 0).await;
    let w = World::new(&app, 900).await;
    let o = w.order(&app).await;
    assert_eq!(retry_of(&app, &o).await, None);
}

#[tokio::test]
async fn acknowledged_notifications_and_old_events_go_after_their_retention() {
    use dispatchd::service::housekeeping::{Settings, prune};

    let app = TestApp::spawn().await;
    let w = World::new(&app, 900).await;
    for e in 0..2 {
        w.assigned_order(&app, e).await;
    }
    // The first engineer reads its notification; the second does not.
    let ack = "mutation($u:String!){ acknowledgeNotifications(input:{upTo:$u}){ acknowledged } }";
    app.ok(&w.engineer_tokens[0], ack, json!({"u": "1"})).await;
    let count = |t: &'static str| {
        let app = &app;
        async move { app.scalar(&format!("SELECT COUNT(*) FROM {t}")).await }
    };
    let (events, notifications) = (count("work_order_events").await, count("notifications").await);
    assert_eq!(notifications, 2);
    // Within their retention: nothing goes.
    assert_eq!(
        prune(&app.state, Utc::now() + TimeDelta::days(29)).await.unwrap(),
        (0, 0)
    );
    // Past it: the acknowledged notification goes; events are kept by default.
    assert_eq!(
        prune(&app.state, Utc::now() + TimeDelta::days(31)).await.unwrap(),
        (1, 0)
    );
    assert_eq!(count("notifications").await, 1);
    assert_eq!(count("work_order_events").await, events);
    app.state.housekeeping.set(Settings {
        event_retention: Some(std::time::Duration::from_secs(90 * 86_400)),
        ..Settings::default()
    });
    assert_eq!(
        prune(&app.state, Utc::now() + TimeDelta::days(91)).await.unwrap(),
        (0, events as u64)
    );
    assert_eq!(count("work_order_events").await, 0);
}
