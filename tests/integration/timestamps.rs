//! One timestamp format across the API: the raw vendor fields (`apiFields`) write theirs as the
//! typed `DateTime` fields do.
use serde_json::json;

use crate::common::*;

const ASSIGN_READ: &str = "mutation($o:ID!,$e:ID!,$v:Int!){ assignEngineer(input:{workOrderId:$o, engineerId:$e, expectedVersion:$v}){ workOrder { apiFields dispatch { assignedAt } } } }";
const READ: &str = "query($id:ID!){ workOrder(id:$id){ apiFields dispatch { assignedAt } } }";

#[tokio::test]
async fn assign_time_is_written_as_assigned_at_is() {
    let app = TestApp::spawn().await;
    let w = World::new(&app, 900).await;
    let id = w.order(&app).await;
    let assigned = app
        .ok(
            &w.dispatcher_token,
            ASSIGN_READ,
            json!({"o": id, "e": w.engineers[0], "v": 1}),
        )
        .await;
    let read = app.ok(&w.dispatcher_token, READ, json!({"id": id})).await;
    for o in [&assigned["assignEngineer"]["workOrder"], &read["workOrder"]] {
        let raw = o["apiFields"]["assign_time__c"].as_str().expect("assign_time__c");
        let typed = o["dispatch"]["assignedAt"].as_str().expect("assignedAt");
        // The same text, not only the same instant: a client comparing or storing them as
        // strings sees one value.
        assert_eq!(raw, typed, "{o:#}");
        chrono::DateTime::parse_from_rfc3339(raw).expect("RFC 3339");
    }
}
