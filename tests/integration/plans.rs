//! The plans of the list pages, pinned: a page of orders of some states reads each state's
//! ordered range of `(tenant_id, state, id)`, never a walk back through the primary key past
//! every newer order of other states (issue 16: 45,002 rows skipped, 15-27 ms a page).
use chrono::{Duration, Utc};
use dispatchd::domain::work_order::State;
use dispatchd::store::lists::{OrderQuery, OrderScope, order_page, page_statement};
use entity::work_order;
use sea_orm::{ConnectionTrait, DatabaseBackend, EntityTrait, Set, Statement};
use serde_json::json;

use crate::common::*;

/// `older` dispatched orders, then `newer` waiting ones (the newest), straight into the table.
async fn seed(app: &TestApp, w: &World, older: usize, newer: usize) -> Vec<String> {
    let now = Utc::now() - Duration::days(30);
    let mut rows = Vec::with_capacity(older + newer);
    let mut dispatched = Vec::new();
    for i in 0..older + newer {
        let id = dispatchd::ids::new(dispatchd::ids::WORK_ORDER);
        let waiting = i >= older;
        if !waiting {
            dispatched.push(id.clone());
        }
        let at = now + Duration::seconds(i as i64);
        rows.push(work_order::ActiveModel {
            id: Set(id),
            tenant_id: Set(w.up.id.clone()),
            workflow_id: Set(w.workflow.clone()),
            external_ref: Set(None),
            title: Set(format!("order {i}")),
            description: Set(None),
            customer: Set(None),
            state: Set(if waiting { "AWAITING_MANUAL" } else { "DOWNSTREAM_TASK" }.into()),
            current_node: Set(0),
            version: Set(1),
            region: Set(format!("CN-{:02}-01", 11 + i % 30)),
            product: Set(None),
            service_type: Set(None),
            priority: Set("NORMAL".into()),
            required_skills: Set(json!([])),
            custom_fields: Set(None),
            assign_user: Set(None),
            assign_way: Set(None),
            assign_time: Set(None),
            field_partner: Set(None),
            field_fwssf: Set(None),
            field_out_deal_user: Set(None),
            field_downstream_outer_tenant_name: Set(None),
            field_downstream_outer_tenant_id: Set(None),
            out_assign_user: Set(None),
            out_assign_way: Set(None),
            out_assign_time: Set(None),
            created_at: Set(at),
            updated_at: Set(at),
            dispatch_rule_id: Set(None),
            dispatch_trace: Set(None),
            provider_rule_id: Set(None),
            provider_dispatch_trace: Set(None),
            sla: Set(None),
            sla_next_due: Set(None),
            sla_next_warn: Set(None),
            sla_settled: Set(None),
        });
    }
    for chunk in rows.chunks(500) {
        work_order::Entity::insert_many(chunk.to_vec())
            .exec(&app.state.db)
            .await
            .unwrap();
    }
    app.state.db.execute_unprepared("ANALYZE").await.unwrap();
    dispatched
}

async fn plan(app: &TestApp, s: Statement) -> String {
    let explain = match app.backend() {
        DatabaseBackend::Postgres => "EXPLAIN",
        _ => "EXPLAIN QUERY PLAN",
    };
    let s = Statement::from_sql_and_values(app.backend(), format!("{explain} {}", s.sql), s.values.unwrap().0);
    let rows = app.state.db.query_all_raw(s).await.unwrap();
    rows.iter()
        .map(|r| {
            // PostgreSQL: one column of text; SQLite: (id, parent, notused, detail).
            r.try_get_by_index::<String>(0)
                .or_else(|_| r.try_get_by_index::<String>(3))
                .unwrap()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn a_page_of_assigned_orders_behind_newer_waiting_ones_reads_the_state_index() {
    let app = TestApp::spawn().await;
    let w = World::new(&app, 900).await;
    let dispatched = seed(&app, &w, 2_000, 20_000).await;
    let query = OrderQuery {
        scope: OrderScope::Upstream(w.up.id.clone()),
        states: Some(vec![State::EngineerAssigned, State::DownstreamTask]),
        partner_id: None,
        engineer_id: None,
        region_prefix: None,
        external_ref: None,
        sla: Default::default(),
    };
    // The page: the newest 51 dispatched orders, newest first; then the next, after the last.
    let page = order_page(&app.state.db, &query, None, 51).await.unwrap();
    let ids: Vec<&str> = page.iter().map(|o| o.id.as_str()).collect();
    let newest: Vec<&str> = dispatched.iter().rev().take(51).map(String::as_str).collect();
    assert_eq!(ids, newest);
    let next = order_page(&app.state.db, &query, Some(ids[50]), 51).await.unwrap();
    assert_eq!(next[0].id, dispatched[dispatched.len() - 52]);
    // An empty list of states holds no order.
    let none = OrderQuery {
        states: Some(vec![]),
        ..query.clone()
    };
    assert!(order_page(&app.state.db, &none, None, 51).await.unwrap().is_empty());

    for after in [None, Some(ids[50])] {
        let s = page_statement(app.backend(), &query, after, 51).unwrap();
        let plan = plan(&app, s).await;
        assert!(
            plan.contains("ix_work_orders_state"),
            "the state index is read:\n{plan}"
        );
        match app.backend() {
            DatabaseBackend::Postgres => {
                assert!(
                    !plan.contains("work_orders_pkey"),
                    "no walk along the primary key:\n{plan}"
                );
                assert!(!plan.contains("Seq Scan"), "no scan of the table:\n{plan}");
            }
            _ => {
                assert!(
                    !plan.lines().any(|l| l.trim() == "SCAN work_orders"),
                    "no scan of the table:\n{plan}"
                );
            }
        }
    }
}
