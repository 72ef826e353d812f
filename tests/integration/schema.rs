//! schema.graphql is the SDL the code builds (UPDATE_SCHEMA=1 rewrites it).
use crate::common::SEED_API_NAMES;

#[test]
fn schema_file_matches_the_code() {
    let sdl = dispatchd::app::export_sdl();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql");
    if std::env::var("UPDATE_SCHEMA").is_ok_and(|v| v == "1") {
        std::fs::write(path, &sdl).unwrap();
    }
    let file = std::fs::read_to_string(path).unwrap();
    assert!(
        file == sdl,
        "schema.graphql differs from the code: run `UPDATE_SCHEMA=1 cargo test schema` and review the diff"
    );
}

#[test]
fn schema_has_the_contract_core() {
    let sdl = dispatchd::app::export_sdl();
    for needle in [
        "interface Node",
        "enum WorkOrderState",
        "AUTO_DISPATCH_ATTEMPTED",
        "enum DispatchMethod",
        "enum Priority",
        "type DispatchRecord",
        "apiFields: JSON!",
        "workOrders(first: Int, after: String, filter: WorkOrderFilter): WorkOrderConnection!",
        "engineers(partnerId: ID): [Engineer!]!",
        "createWorkflow(input: CreateWorkflowInput!): WorkflowPayload!",
        "connectServiceProvider(input: ConnectServiceProviderInput!): PartnerPayload!",
        "addEngineer(input: AddEngineerInput!): EngineerPayload!",
        "addUser(input: AddUserInput!): UserPayload!",
        "createWorkOrder(input: CreateWorkOrderInput!): WorkOrderPayload!",
        "assignEngineer(input: AssignEngineerInput!): WorkOrderPayload!",
        "reassignEngineer(input: AssignEngineerInput!): WorkOrderPayload!",
        "cancelWorkOrder(input: CancelWorkOrderInput!): WorkOrderPayload!",
    ] {
        assert!(sdl.contains(needle), "SDL lacks `{needle}`");
    }
    for api_name in SEED_API_NAMES {
        assert!(
            sdl.contains(&format!("`{api_name}`")),
            "no field description names {api_name}"
        );
    }
}

/// The README's "Who sees what" tables are the policy's own (UPDATE_README=1 rewrites them).
#[test]
fn readme_who_sees_what_is_the_policy() {
    let (begin, end) = ("<!-- who-sees-what:begin -->\n", "<!-- who-sees-what:end -->");
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
    let readme = std::fs::read_to_string(path).unwrap();
    let (head, rest) = readme.split_once(begin).expect("README has the who-sees-what markers");
    let (_, tail) = rest.split_once(end).expect("README has the who-sees-what end marker");
    let want = dispatchd::domain::visibility::markdown();
    if std::env::var("UPDATE_README").is_ok_and(|v| v == "1") {
        std::fs::write(path, format!("{head}{begin}{want}{end}{tail}")).unwrap();
        return;
    }
    assert!(
        rest.starts_with(&format!("{want}{end}")),
        "README's who-sees-what tables differ from the policy: run `UPDATE_README=1 cargo test readme` (or `dispatchd policy`)"
    );
}
