//! Who sees what, and who may do what: the one policy. Every field of every object type of the
//! API has a row here naming the audiences it is shown to, and every operation (root field) the
//! callers that may run it. The GraphQL layer checks every field it resolves against this table
//! (whatever path reached the object), the service layer checks every operation, the tests walk
//! the schema and fail on anything without a row, and the README's tables are printed from it.
//! What has no row is refused: deny by default.
use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;

use super::{Role, TenantKind};

/// How the caller stands to one object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Audience {
    /// Staff (ADMIN, DISPATCHER, INTEGRATION) of the upstream tenant the object belongs to, or
    /// is connected to (its partners' tenants and engineers).
    Upstream,
    /// Staff (ADMIN, DISPATCHER, INTEGRATION) of a service provider: its own tenant, users,
    /// engineers and partner records, the upstream tenants connected to it, the orders assigned
    /// to it.
    Provider,
    /// An engineer: itself, its tenant, its tasks, the orders assigned to it.
    Engineer,
    /// An engineer or provider whose assignment of an order has ended (reassigned, declined):
    /// it still reaches the order through its own task or notification, and sees what it was
    /// given to do the work, nothing of what was decided after it.
    Former,
    /// No relation to the object: nothing of it is shown.
    Stranger,
}

impl Audience {
    pub const ALL: [Audience; 5] = [
        Audience::Upstream,
        Audience::Provider,
        Audience::Engineer,
        Audience::Former,
        Audience::Stranger,
    ];

    fn bit(self) -> u8 {
        match self {
            Audience::Upstream => 1,
            Audience::Provider => 2,
            Audience::Engineer => 4,
            Audience::Former => 8,
            Audience::Stranger => 0,
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Audience::Upstream => "the upstream tenant's staff",
            Audience::Provider => "the service provider's staff",
            Audience::Engineer => "the engineer",
            Audience::Former => "a former assignee",
            Audience::Stranger => "a caller with no relation to it",
        }
    }
}

impl fmt::Display for Audience {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// Who a field is shown to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grant {
    /// To these audiences of the object (a set of [`Audience`] bits).
    To(u8),
    /// A field of a container (a payload, a connection, an edge, the viewer): it has no owner
    /// of its own and shows whoever the operation answered; what it holds is checked on its own.
    Caller,
}

impl Grant {
    pub fn allows(self, a: Audience) -> bool {
        match self {
            Grant::To(bits) => bits & a.bit() != 0,
            Grant::Caller => true,
        }
    }
}

mod table;
pub use table::FIELDS;

/// The seed's eight dispatch fields (`WorkOrder.apiFields`, keyed by API name) and the field of
/// `DispatchRecord` each is: an audience sees a key exactly when it sees that field.
pub const API_FIELDS: [(&str, &str); 11] = [
    ("assign_user", "dispatcher"),
    ("assign_way__c", "method"),
    ("assign_time__c", "assignedAt"),
    ("field_partner__c", "partner"),
    ("field_fwssf__c", "legacyAccount"),
    ("field_outDealUser__c", "engineer"),
    ("field_downstreamOuterTenantName__c", "connectedEnterpriseName"),
    ("field_downstreamOuterTenantId__c", "connectedEnterpriseId"),
    ("out_assign_user", "providerDispatcher"),
    ("out_assign_way__c", "providerMethod"),
    ("out_assign_time__c", "providerAssignedAt"),
];

/// The dispatch fields (an object keyed by API name) with only the keys `audience` sees.
pub fn api_fields_for(audience: Audience, mut fields: serde_json::Value) -> serde_json::Value {
    if let Some(map) = fields.as_object_mut() {
        map.retain(|key, _| {
            API_FIELDS
                .iter()
                .any(|(api, field)| api == key && allows("DispatchRecord", field, Some(audience)))
        });
    }
    fields
}

pub use super::operations::{CallerKind, OPERATIONS};

fn fields() -> &'static HashMap<(&'static str, &'static str), Grant> {
    static TABLE: OnceLock<HashMap<(&'static str, &'static str), Grant>> = OnceLock::new();
    TABLE.get_or_init(|| {
        FIELDS
            .iter()
            .flat_map(|(ty, fs)| fs.iter().map(move |(f, g)| ((*ty, *f), *g)))
            .collect()
    })
}

/// The grant of a field; None when the table has no row for it (then it is refused).
pub fn grant(type_name: &str, field: &str) -> Option<Grant> {
    fields().get(&(type_name, field)).copied()
}

/// Whether `field` of an object of `type_name` is shown to `audience` (None: a container,
/// which has no audience of its own). A field without a row is refused.
pub fn allows(type_name: &str, field: &str, audience: Option<Audience>) -> bool {
    match (grant(type_name, field), audience) {
        (Some(Grant::Caller), _) => true,
        (Some(g @ Grant::To(_)), Some(a)) => g.allows(a),
        _ => false,
    }
}

/// One object type's rows, found once: a field's grant is then a short scan of a few names
/// (the check runs for every field of every object a response holds).
pub struct TypePolicy {
    pub name: String,
    fields: &'static [(&'static str, Grant)],
}

impl TypePolicy {
    /// The rows of `type_name` (none when the table has no such type: every field refused).
    pub fn of(type_name: &str) -> TypePolicy {
        let fields = FIELDS
            .iter()
            .find(|(ty, _)| *ty == type_name)
            .map(|(_, fs)| *fs)
            .unwrap_or(&[]);
        TypePolicy {
            name: type_name.to_owned(),
            fields,
        }
    }

    pub fn grant(&self, field: &str) -> Option<Grant> {
        self.fields.iter().find(|(f, _)| *f == field).map(|(_, g)| *g)
    }

    /// As [`allows`], for this type.
    pub fn allows(&self, field: &str, audience: Option<Audience>) -> bool {
        match (self.grant(field), audience) {
            (Some(Grant::Caller), _) => true,
            (Some(g @ Grant::To(_)), Some(a)) => g.allows(a),
            _ => false,
        }
    }
}

/// The callers that may run an operation (`Query.workOrders`); None when it has no row.
pub fn operation(name: &str) -> Option<&'static [CallerKind]> {
    OPERATIONS.iter().find(|(n, _)| *n == name).map(|(_, who)| *who)
}

/// Whether a caller of `kind` may run the operation; an operation without a row is refused.
pub fn may(name: &str, kind: CallerKind) -> bool {
    operation(name).is_some_and(|who| who.contains(&kind))
}

/// The policy as Markdown tables (the README's "Who sees what", `dispatchd policy`): the
/// fields of each type grouped by who sees them, then who may run each operation.
pub fn markdown() -> String {
    let cols = [
        Audience::Upstream,
        Audience::Provider,
        Audience::Engineer,
        Audience::Former,
    ];
    let mut out = String::from(
        "| type | fields | upstream staff | provider staff | engineer | former assignee |\n|---|---|---|---|---|---|\n",
    );
    let mut containers = Vec::new();
    for (ty, fields) in FIELDS {
        if fields.iter().all(|(_, g)| *g == Grant::Caller) {
            containers.push(*ty);
            continue;
        }
        let mut groups: Vec<(Grant, Vec<&str>)> = Vec::new();
        for (f, g) in fields.iter() {
            match groups.iter_mut().find(|(x, _)| x == g) {
                Some((_, fs)) => fs.push(f),
                None => groups.push((*g, vec![f])),
            }
        }
        for (g, fs) in groups {
            let marks: Vec<&str> = cols.iter().map(|a| if g.allows(*a) { "yes" } else { "—" }).collect();
            out.push_str(&format!("| `{ty}` | {} | {} |\n", fs.join(", "), marks.join(" | ")));
        }
    }
    out.push_str(&format!(
        "\nContainers show whoever the operation answered; what they hold is checked on its own: {}.\n",
        containers
            .iter()
            .map(|c| format!("`{c}`"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    out.push_str("\n| operation | who may run it |\n|---|---|\n");
    for (op, who) in OPERATIONS {
        let names: Vec<String> = who
            .iter()
            .map(|(k, r)| {
                let kind = if *k == TenantKind::Upstream {
                    "upstream"
                } else {
                    "provider"
                };
                match r {
                    Role::Engineer => "engineer".to_owned(),
                    r => format!("{kind} {r}"),
                }
            })
            .collect();
        out.push_str(&format!("| `{op}` | {} |\n", names.join(", ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_unique_and_decide_every_audience() {
        let mut seen = std::collections::HashSet::new();
        for (ty, fs) in FIELDS {
            for (f, g) in fs.iter() {
                assert!(seen.insert((ty, f)), "{ty}.{f} listed twice");
                assert!(!g.allows(Audience::Stranger) || *g == Grant::Caller, "{ty}.{f}");
            }
        }
        let mut ops = std::collections::HashSet::new();
        for (op, who) in OPERATIONS {
            assert!(ops.insert(op), "{op} listed twice");
            assert!(!who.is_empty(), "{op} must name its callers");
        }
    }

    #[test]
    fn the_dispatch_fields_follow_the_dispatch_record() {
        let all: serde_json::Map<String, serde_json::Value> = API_FIELDS
            .iter()
            .map(|(k, _)| (k.to_string(), serde_json::json!("x")))
            .collect();
        let all = serde_json::Value::Object(all);
        assert_eq!(
            api_fields_for(Audience::Upstream, all.clone())
                .as_object()
                .unwrap()
                .len(),
            all.as_object().unwrap().len() - 1,
            "all but the provider's dispatcher"
        );
        let engineer = api_fields_for(Audience::Engineer, all.clone());
        let keys: Vec<&String> = engineer.as_object().unwrap().keys().collect();
        assert!(!keys.contains(&&"assign_user".to_string()));
        assert!(!keys.contains(&&"field_fwssf__c".to_string()));
        assert!(keys.contains(&&"field_outDealUser__c".to_string()));
        assert!(
            !keys.contains(&&"out_assign_user".to_string()),
            "the provider's own user"
        );
        assert_eq!(keys.len(), 8);
        let upstream = api_fields_for(Audience::Upstream, all.clone());
        assert!(!upstream.as_object().unwrap().contains_key("out_assign_user"));
        let provider = api_fields_for(Audience::Provider, all.clone());
        assert!(provider.as_object().unwrap().contains_key("out_assign_user"));
        assert_eq!(api_fields_for(Audience::Former, all), serde_json::json!({}));
    }

    #[test]
    fn unknown_fields_and_operations_are_refused() {
        assert!(allows("WorkOrder", "title", Some(Audience::Engineer)));
        assert!(!allows("WorkOrder", "dispatchTrace", Some(Audience::Engineer)));
        assert!(!allows("WorkOrder", "title", Some(Audience::Stranger)));
        assert!(!allows("WorkOrder", "title", None), "an object field needs an audience");
        assert!(
            !allows("WorkOrder", "secret", Some(Audience::Upstream)),
            "no row: refused"
        );
        assert!(allows("PageInfo", "endCursor", None));
        let wo = TypePolicy::of("WorkOrder");
        assert!(wo.allows("title", Some(Audience::Former)) && !wo.allows("history", Some(Audience::Engineer)));
        assert!(!TypePolicy::of("Unknown").allows("id", Some(Audience::Upstream)));
        let engineer = (TenantKind::Downstream, Role::Engineer);
        assert!(may("Query.me", engineer));
        assert!(!may("Mutation.createWorkOrder", engineer));
        assert!(
            !may("Mutation.somethingNew", (TenantKind::Upstream, Role::Admin)),
            "no row: refused"
        );
    }
}
