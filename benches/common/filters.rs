//! The database time of one page of each `workOrders` filter, alone and combined, on the seeded
//! world (whose newest orders are waiting ones, so a filter on any other state reads behind
//! them): `store::lists::order_page` called in this process, the first page and one 500 orders
//! deep, each timed many times. What the server adds (HTTP, GraphQL, lookups) is measured by
//! the page scenarios.
use std::time::Instant;

use chrono::{DateTime, TimeDelta, Utc};
use dispatchd::config::DbConfig;
use dispatchd::domain::sla::Status as SlaStatus;
use dispatchd::domain::work_order::State;
use dispatchd::store::lists::{OrderQuery, OrderScope, SlaFilter, order_page};
use sea_orm::{ConnectionTrait, Statement};

/// One filter's page times, in milliseconds.
pub struct FilterTime {
    pub name: &'static str,
    pub rows: usize,
    pub first_p50: f64,
    pub first_p99: f64,
    pub deep_p50: f64,
    pub deep_p99: f64,
}

impl FilterTime {
    pub fn worst(&self) -> f64 {
        self.first_p50.max(self.deep_p50)
    }
}

fn pct(mut v: Vec<f64>, q: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * q).round() as usize]
}

/// Times each filter `rounds` times per page (after a few untimed ones).
pub async fn run(url: &str, rounds: usize) -> Vec<FilterTime> {
    let pools = dispatchd::store::db::connect(&DbConfig::new(url))
        .await
        .expect("connect");
    let db = pools.read.clone();
    // A dispatched order of the history gives the partner, engineer, provider and region.
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT tenant_id, field_partner, field_out_deal_user, field_downstream_outer_tenant_id, region \
             FROM work_orders WHERE field_partner IS NOT NULL ORDER BY id DESC LIMIT 1",
        ))
        .await
        .expect("a dispatched order")
        .expect("the world has dispatched orders");
    let get = |i: usize| -> String { row.try_get_by_index(i).expect("column") };
    let (tenant, partner, engineer, outer, region) = (get(0), get(1), get(2), get(3), get(4));
    let province = region[..5].to_owned();
    let upstream = |states: Option<Vec<State>>| OrderQuery {
        scope: OrderScope::Upstream(tenant.clone()),
        states,
        partner_id: None,
        engineer_id: None,
        region_prefix: None,
        external_ref: None,
        sla: Default::default(),
    };
    let assigned = || Some(vec![State::EngineerAssigned, State::DownstreamTask]);
    let sla = |statuses: Option<Vec<SlaStatus>>, due_before: Option<DateTime<Utc>>| SlaFilter {
        statuses,
        due_before,
        now: Utc::now(),
    };
    let with = |q: OrderQuery, f: &dyn Fn(&mut OrderQuery)| {
        let mut q = q;
        f(&mut q);
        q
    };
    let filters: Vec<(&'static str, OrderQuery)> = vec![
        ("none (newest first)", upstream(None)),
        (
            "states: waiting (the newest)",
            upstream(Some(vec![State::AwaitingManual])),
        ),
        ("states: assigned (behind the waiting)", upstream(assigned())),
        (
            "states: cancelled (1 in 20 of the oldest)",
            upstream(Some(vec![State::Cancelled])),
        ),
        (
            "partner",
            with(upstream(None), &|q| q.partner_id = Some(partner.clone())),
        ),
        (
            "partner + assigned",
            with(upstream(assigned()), &|q| q.partner_id = Some(partner.clone())),
        ),
        (
            "engineer",
            with(upstream(None), &|q| q.engineer_id = Some(engineer.clone())),
        ),
        (
            "engineer + states: DOWNSTREAM_TASK",
            with(upstream(Some(vec![State::DownstreamTask])), &|q| {
                q.engineer_id = Some(engineer.clone())
            }),
        ),
        (
            "region prefix (a province)",
            with(upstream(None), &|q| q.region_prefix = Some(province.clone())),
        ),
        (
            "region prefix + assigned",
            with(upstream(assigned()), &|q| q.region_prefix = Some(province.clone())),
        ),
        (
            "region (exact) + partner",
            with(upstream(None), &|q| {
                q.region_prefix = Some(region.clone());
                q.partner_id = Some(partner.clone());
            }),
        ),
        (
            "slaStatus: BREACHED (the oldest waiting, 1 in 10 of the met)",
            with(upstream(None), &|q| q.sla = sla(Some(vec![SlaStatus::Breached]), None)),
        ),
        (
            "slaStatus: WARNING (a band of the waiting)",
            with(upstream(None), &|q| q.sla = sla(Some(vec![SlaStatus::Warning]), None)),
        ),
        (
            "slaStatus: WARNING or BREACHED, waiting",
            with(upstream(Some(vec![State::AwaitingManual])), &|q| {
                q.sla = sla(Some(vec![SlaStatus::Warning, SlaStatus::Breached]), None)
            }),
        ),
        (
            "dueBefore: an hour from now",
            with(upstream(None), &|q| {
                q.sla = sla(None, Some(Utc::now() + TimeDelta::hours(1)))
            }),
        ),
        (
            "a provider's own list",
            OrderQuery {
                scope: OrderScope::Provider(outer.clone()),
                ..upstream(None)
            },
        ),
        (
            "a provider's list + assigned",
            OrderQuery {
                scope: OrderScope::Provider(outer.clone()),
                ..upstream(assigned())
            },
        ),
        (
            "an engineer's own list",
            OrderQuery {
                scope: OrderScope::Engineer(engineer.clone()),
                ..upstream(None)
            },
        ),
    ];
    let mut out = Vec::new();
    for (name, q) in filters {
        let first = order_page(&db, &q, None, 51).await.expect("page");
        // Deep: after the 500th order of the list (or its last).
        let deep = order_page(&db, &q, None, 500).await.expect("page");
        let after = deep.last().map(|o| o.id.clone());
        let time = |after: Option<String>| {
            let (db, q) = (db.clone(), q.clone());
            async move {
                let mut ms = Vec::with_capacity(rounds);
                for i in 0..rounds + 5 {
                    let t = Instant::now();
                    let page = order_page(&db, &q, after.as_deref(), 51).await.expect("page");
                    std::hint::black_box(page);
                    if i >= 5 {
                        ms.push(t.elapsed().as_secs_f64() * 1000.0);
                    }
                }
                ms
            }
        };
        let (f, d) = (time(None).await, time(after).await);
        out.push(FilterTime {
            name,
            rows: first.len(),
            first_p50: pct(f.clone(), 0.5),
            first_p99: pct(f, 0.99),
            deep_p50: pct(d.clone(), 0.5),
            deep_p99: pct(d, 0.99),
        });
    }
    pools.read.close().await.ok();
    pools.write.close().await.ok();
    out
}

pub fn print(times: &[FilterTime]) {
    println!("| filter | rows (first page) | first page p50 ms | p99 ms | 500 deep p50 ms | p99 ms |");
    println!("|---|---|---|---|---|---|");
    for t in times {
        println!(
            "| {} | {} | {:.2} | {:.2} | {:.2} | {:.2} |",
            t.name, t.rows, t.first_p50, t.first_p99, t.deep_p50, t.deep_p99
        );
    }
}
