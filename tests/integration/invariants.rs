//! The invariants of dispatch, in one place: what must hold of every order, task, engineer,
//! notification and event however many changes raced, checked through the database and the
//! API after a workload (the races, the stress test, the crash test).
use std::collections::HashMap;

use entity::{engineer, event_counter, notification, notification_counter, task, work_order, work_order_event};
use sea_orm::EntityTrait;
use serde_json::json;

use crate::common::*;

fn open(t: &task::Model) -> bool {
    t.status == "ASSIGNED" || t.status == "ACCEPTED"
}

/// Every invariant that does not hold, each as a sentence (empty: all hold).
pub async fn violations(app: &TestApp) -> Vec<String> {
    let db = &app.state.db;
    // Events committed a moment ago are numbered first (PostgreSQL numbers them after commit).
    for t in event_tenants(app).await {
        dispatchd::service::numbering::number_now(&app.state, &t).await.unwrap();
    }
    let orders = work_order::Entity::find().all(db).await.unwrap();
    let tasks = task::Entity::find().all(db).await.unwrap();
    let notes = notification::Entity::find().all(db).await.unwrap();
    let engineers = engineer::Entity::find().all(db).await.unwrap();
    let counters = notification_counter::Entity::find().all(db).await.unwrap();
    let events = work_order_event::Entity::find().all(db).await.unwrap();
    let event_counters = event_counter::Entity::find().all(db).await.unwrap();
    let mut bad = Vec::new();
    let mut tasks_of: HashMap<&str, Vec<&task::Model>> = HashMap::new();
    for t in &tasks {
        tasks_of.entry(t.work_order_id.as_str()).or_default().push(t);
    }
    for o in &orders {
        let mine = tasks_of.get(o.id.as_str()).cloned().unwrap_or_default();
        let open_tasks: Vec<&&task::Model> = mine.iter().filter(|t| open(t)).collect();
        let fields = [
            o.assign_way.is_some(),
            o.assign_time.is_some(),
            o.field_partner.is_some(),
            o.field_out_deal_user.is_some(),
            o.field_downstream_outer_tenant_name.is_some(),
            o.field_downstream_outer_tenant_id.is_some(),
        ];
        let (all, none) = (fields.iter().all(|f| *f), fields.iter().all(|f| !*f));
        if open_tasks.len() > 1 {
            bad.push(format!("order {} has {} open tasks", o.id, open_tasks.len()));
        }
        if let Some(t) = open_tasks.first()
            && Some(&t.engineer_id) != o.field_out_deal_user.as_ref()
        {
            bad.push(format!("order {}'s open task {} is not its engineer's", o.id, t.id));
        }
        match o.state.as_str() {
            "ENGINEER_ASSIGNED" | "DOWNSTREAM_TASK" => {
                if !all {
                    bad.push(format!("order {} in {} lacks dispatch fields", o.id, o.state));
                }
                if open_tasks.len() != 1 {
                    bad.push(format!("order {} in {} has no open task", o.id, o.state));
                }
            }
            "AWAITING_MANUAL" => {
                if !none {
                    bad.push(format!("order {} waiting has dispatch fields", o.id));
                }
                if !open_tasks.is_empty() {
                    bad.push(format!("order {} waiting has an open task", o.id));
                }
            }
            // A cancelled order keeps the record of who was assigned when it was cancelled
            // (all eight fields, or none if it never was), and no open task.
            "CANCELLED" => {
                if !(all || none) {
                    bad.push(format!("cancelled order {} has a partial dispatch record", o.id));
                }
                if !open_tasks.is_empty() {
                    bad.push(format!("cancelled order {} has an open task", o.id));
                }
            }
            other => bad.push(format!("order {} left in {other}", o.id)),
        }
        for t in &mine {
            let count = |kind: &str| {
                notes
                    .iter()
                    .filter(|n| n.task_id == t.id && n.kind == kind && n.engineer_id == t.engineer_id)
                    .count()
            };
            if count("TASK_ASSIGNED") != 1 {
                bad.push(format!("task {} announced {} times", t.id, count("TASK_ASSIGNED")));
            }
            let closed = usize::from(t.status == "REVOKED" || t.status == "CANCELLED");
            if count("TASK_REVOKED") != closed {
                bad.push(format!(
                    "task {} ({}) has {} revocation notices",
                    t.id,
                    t.status,
                    count("TASK_REVOKED")
                ));
            }
            let updated = count("TASK_UPDATED");
            let must = usize::from(t.status == "DECLINED" || t.status == "ACCEPTED");
            if updated < must || updated > 2 || (t.status == "ASSIGNED" && updated != 0) {
                bad.push(format!("task {} ({}) has {updated} update notices", t.id, t.status));
            }
        }
    }
    for n in &notes {
        if !tasks.iter().any(|t| t.id == n.task_id) {
            bad.push(format!("notification {} has no task", n.id));
        }
    }
    for e in &engineers {
        let open_now = tasks.iter().filter(|t| t.engineer_id == e.id && open(t)).count();
        if e.open_tasks as usize != open_now {
            bad.push(format!(
                "engineer {} counts {} open tasks, has {open_now}",
                e.id, e.open_tasks
            ));
        }
        let mut seqs: Vec<i64> = notes.iter().filter(|n| n.engineer_id == e.id).map(|n| n.seq).collect();
        seqs.sort();
        if seqs != (1..=seqs.len() as i64).collect::<Vec<_>>() {
            bad.push(format!("engineer {}'s notification sequence has a gap", e.id));
        }
        let last = counters
            .iter()
            .find(|c| c.engineer_id == e.id)
            .map_or(0, |c| c.last_seq);
        if last != seqs.len() as i64 {
            bad.push(format!("engineer {}'s notification counter is {last}", e.id));
        }
    }
    let mut seqs_of: HashMap<&str, Vec<i64>> = HashMap::new();
    for ev in &events {
        match ev.seq {
            Some(s) => seqs_of.entry(ev.tenant_id.as_str()).or_default().push(s),
            None => bad.push(format!("event {} left unnumbered", ev.id)),
        }
    }
    for (tenant, mut seqs) in seqs_of {
        seqs.sort();
        if seqs != (1..=seqs.len() as i64).collect::<Vec<_>>() {
            bad.push(format!("tenant {tenant}'s event sequence has a gap or a duplicate"));
        }
        let last = event_counters
            .iter()
            .find(|c| c.tenant_id == tenant)
            .map_or(0, |c| c.last_seq);
        if last != seqs.len() as i64 {
            bad.push(format!("tenant {tenant}'s event counter is {last}"));
        }
    }
    bad
}

async fn event_tenants(app: &TestApp) -> Vec<String> {
    dispatchd::store::events::unnumbered_tenants(&app.state.db)
        .await
        .unwrap()
}

pub async fn assert_consistent(app: &TestApp) {
    let bad = violations(app).await;
    assert!(bad.is_empty(), "{} invariants broken:\n{}", bad.len(), bad.join("\n"));
}

/// Every page of a connection (`{ <field>(first: 100, after: $after) { nodes { … } pageInfo } }`).
async fn all_pages(app: &TestApp, token: &str, field: &str, nodes: &str) -> Vec<serde_json::Value> {
    let q = format!(
        "query($after:String){{ {field}(first: 100, after: $after) {{ nodes {{ {nodes} }} pageInfo {{ hasNextPage endCursor }} }} }}"
    );
    let (mut out, mut after) = (Vec::new(), serde_json::Value::Null);
    loop {
        let d = app.ok(token, &q, json!({ "after": after })).await;
        out.extend(d[field]["nodes"].as_array().unwrap().iter().cloned());
        if d[field]["pageInfo"]["hasNextPage"] != true {
            return out;
        }
        after = d[field]["pageInfo"]["endCursor"].clone();
    }
}

/// The same through the API, as each engineer sees it: its open-task count equals the open
/// tasks of the orders it sees, and its notifications replay without a gap.
pub async fn api_violations(app: &TestApp, engineer_tokens: &[String]) -> Vec<String> {
    let mut bad = Vec::new();
    for token in engineer_tokens {
        let me = app.ok(token, "{ me { engineer { id openTasks } } }", json!({})).await;
        let id = me["me"]["engineer"]["id"].clone();
        let orders = all_pages(app, token, "workOrders", "id task { status engineer { id } }").await;
        let open_seen = orders
            .iter()
            .filter(|o| {
                let t = &o["task"];
                t["engineer"]["id"] == id && (t["status"] == "ASSIGNED" || t["status"] == "ACCEPTED")
            })
            .count();
        if me["me"]["engineer"]["openTasks"].as_u64() != Some(open_seen as u64) {
            bad.push(format!(
                "engineer {id}: openTasks {} but {open_seen} open tasks seen",
                me["me"]["engineer"]["openTasks"]
            ));
        }
        let mut seqs: Vec<i64> = all_pages(app, token, "notifications", "sequence")
            .await
            .iter()
            .map(|n| n["sequence"].as_i64().unwrap())
            .collect();
        seqs.sort();
        if seqs != (1..=seqs.len() as i64).collect::<Vec<_>>() {
            bad.push(format!("engineer {id}: its {} notifications have a gap", seqs.len()));
        }
    }
    bad
}
