//! GraphQL documents built from the server's own schema (its SDL, parsed once), driven by the
//! fuzzer's bytes: mostly valid operations with real field names, arguments and IDs, so that
//! inputs reach validation, the gate's limits and execution; some near misses (unknown fields,
//! wrong types, missing selections); and shapes aimed at the limits (deep nesting, alias and
//! fragment fan-out, many directives, long lists, token soup).
use std::collections::HashMap;
use std::fmt::Write;
use std::sync::OnceLock;

use arbitrary::{Arbitrary, Unstructured};
use async_graphql::parser::types::{BaseType, Type, TypeKind, TypeSystemDefinition};
use serde_json::{Map, Value};

/// Draws from the fuzzer's bytes; every draw has a fallback once the bytes run out (the first
/// choice, "no"), so generation always terminates and short inputs make small documents.
pub struct Draw<'a, 'b> {
    pub u: &'a mut Unstructured<'b>,
}

impl<'a, 'b> Draw<'a, 'b> {
    pub fn new(u: &'a mut Unstructured<'b>) -> Self {
        Draw { u }
    }
    /// `n` chances in `d`; false once the bytes are exhausted.
    pub fn chance(&mut self, n: u32, d: u32) -> bool {
        self.u.int_in_range(0..=d - 1).map(|x| x >= d - n).unwrap_or(false)
    }
    /// 0..n (0 when exhausted or n == 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n <= 1 {
            return 0;
        }
        self.u.int_in_range(0..=n - 1).unwrap_or(0)
    }
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }
    pub fn pick<'c, T>(&mut self, items: &'c [T]) -> &'c T {
        &items[self.below(items.len())]
    }
    pub fn byte(&mut self) -> u8 {
        u8::arbitrary(self.u).unwrap_or(0)
    }
    pub fn int(&mut self) -> i64 {
        i64::arbitrary(self.u).unwrap_or(0)
    }
    /// A short string of the fuzzer's choosing (lossy UTF-8).
    pub fn string(&mut self, max: usize) -> String {
        let n = self.below(max + 1);
        let bytes = self.u.bytes(n.min(self.u.len())).unwrap_or(&[]);
        String::from_utf8_lossy(bytes).into_owned()
    }
}

/// A type's shape, from the SDL.
enum Kind {
    Scalar,
    /// Objects and interfaces: fields; for an interface, its implementations.
    Composite {
        fields: Vec<Field>,
        possible: Vec<String>,
    },
    Union(Vec<String>),
    Enum(Vec<String>),
    Input(Vec<InputField>),
}

struct Field {
    name: String,
    args: Vec<InputField>,
    ty: Type,
}

struct InputField {
    name: String,
    ty: Type,
    has_default: bool,
}

/// The schema as the generator needs it.
pub struct Schema {
    types: HashMap<String, Kind>,
    query: String,
    mutation: Option<String>,
    subscription: Option<String>,
    /// Every name in the schema: fields, arguments, types, enum values (for near misses and soup).
    pub names: Vec<String>,
}

/// The server's schema, built from `export_sdl()` (no database needed).
pub fn schema() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    SCHEMA.get_or_init(|| Schema::from_sdl(&dispatchd::app::export_sdl()))
}

impl Schema {
    pub fn from_sdl(sdl: &str) -> Schema {
        let doc = async_graphql::parser::parse_schema(sdl).expect("the server's SDL parses");
        let mut types = HashMap::new();
        let mut names = Vec::new();
        let (mut query, mut mutation, mut subscription) = ("Query".to_owned(), None, None);
        let input = |v: &async_graphql::parser::types::InputValueDefinition| InputField {
            name: v.name.node.to_string(),
            ty: v.ty.node.clone(),
            has_default: v.default_value.is_some(),
        };
        let mut implementations: Vec<(String, String)> = Vec::new();
        for def in doc.definitions {
            match def {
                TypeSystemDefinition::Schema(s) => {
                    if let Some(q) = &s.node.query {
                        query = q.node.to_string();
                    }
                    mutation = s.node.mutation.as_ref().map(|m| m.node.to_string()).or(mutation);
                    subscription = s
                        .node
                        .subscription
                        .as_ref()
                        .map(|m| m.node.to_string())
                        .or(subscription);
                }
                TypeSystemDefinition::Directive(_) => {}
                TypeSystemDefinition::Type(t) => {
                    let t = t.node;
                    let name = t.name.node.to_string();
                    names.push(name.clone());
                    let fields_of = |fields: &[async_graphql::parser::Positioned<
                        async_graphql::parser::types::FieldDefinition,
                    >],
                                     names: &mut Vec<String>| {
                        fields
                            .iter()
                            .map(|f| {
                                names.push(f.node.name.node.to_string());
                                Field {
                                    name: f.node.name.node.to_string(),
                                    args: f
                                        .node
                                        .arguments
                                        .iter()
                                        .map(|a| {
                                            names.push(a.node.name.node.to_string());
                                            input(&a.node)
                                        })
                                        .collect(),
                                    ty: f.node.ty.node.clone(),
                                }
                            })
                            .collect::<Vec<_>>()
                    };
                    let kind = match t.kind {
                        TypeKind::Scalar => Kind::Scalar,
                        TypeKind::Object(o) => {
                            for i in &o.implements {
                                implementations.push((i.node.to_string(), name.clone()));
                            }
                            Kind::Composite {
                                fields: fields_of(&o.fields, &mut names),
                                possible: Vec::new(),
                            }
                        }
                        TypeKind::Interface(i) => Kind::Composite {
                            fields: fields_of(&i.fields, &mut names),
                            possible: Vec::new(),
                        },
                        TypeKind::Union(u) => Kind::Union(u.members.iter().map(|m| m.node.to_string()).collect()),
                        TypeKind::Enum(e) => {
                            let values: Vec<String> = e.values.iter().map(|v| v.node.value.node.to_string()).collect();
                            names.extend(values.iter().cloned());
                            Kind::Enum(values)
                        }
                        TypeKind::InputObject(o) => Kind::Input(
                            o.fields
                                .iter()
                                .map(|f| {
                                    names.push(f.node.name.node.to_string());
                                    input(&f.node)
                                })
                                .collect(),
                        ),
                    };
                    types.insert(name, kind);
                }
            }
        }
        for (interface, object) in implementations {
            if let Some(Kind::Composite { possible, .. }) = types.get_mut(&interface) {
                possible.push(object);
            }
        }
        for builtin in ["Int", "Float", "String", "Boolean", "ID"] {
            types.entry(builtin.to_owned()).or_insert(Kind::Scalar);
        }
        if mutation.is_none() && types.contains_key("Mutation") {
            mutation = Some("Mutation".into());
        }
        if subscription.is_none() && types.contains_key("Subscription") {
            subscription = Some("Subscription".into());
        }
        names.sort();
        names.dedup();
        Schema {
            types,
            query,
            mutation,
            subscription,
            names,
        }
    }

    fn is_composite(&self, name: &str) -> bool {
        matches!(self.types.get(name), Some(Kind::Composite { .. } | Kind::Union(_)))
    }
}

fn named(ty: &Type) -> &str {
    match &ty.base {
        BaseType::Named(n) => n.as_str(),
        BaseType::List(inner) => named(inner),
    }
}

/// Values the generator reuses: IDs that exist, strings the domain knows.
pub struct Pools {
    pub ids: Vec<String>,
}

const STRINGS: &[&str] = &[
    "",
    "CN-31-04",
    "CN-31",
    "CN-32",
    "hvac",
    "plumbing",
    "electrical",
    "Acme Appliances",
    "PO-1001",
    "Home appliance",
    "Repair",
    "Demo customer",
    "1",
    "0",
    "-1",
    "null",
    "true",
    "é✓ 漢字 \u{1F600}",
    "\u{0}",
    "\u{202E}rtl",
    "line\nbreak\ttab",
    "' OR 1=1 --",
    "%00",
    "{\"a\":1}",
    "<script>alert(1)</script>",
    "x:1",
    "Bearer x",
];

const DATES: &[&str] = &[
    "2024-01-01T00:00:00Z",
    "2024-02-30T00:00:00Z",
    "1970-01-01T00:00:00+08:00",
    "9999-12-31T23:59:59Z",
    "0000-01-01T00:00:00Z",
    "-000001-01-01T00:00:00Z",
    "2024-01-01",
    "now",
];

const INTS: &[i64] = &[
    0,
    1,
    -1,
    2,
    3,
    5,
    10,
    50,
    99,
    100,
    101,
    1000,
    10_000,
    i32::MAX as i64,
    i32::MIN as i64,
    i32::MAX as i64 + 1,
    i64::MAX,
    i64::MIN,
];

const ID_PREFIXES: &[&str] = &[
    "tnt", "usr", "acc", "ptn", "eng", "wfl", "wo", "evt", "tsk", "rul", "ntf", "xyz",
];

/// A generated operation: the document, the variables it declares (with values), the name to ask for.
#[derive(Clone, Debug, Default)]
pub struct Doc {
    pub text: String,
    pub variables: Map<String, Value>,
    pub operation_name: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    Query,
    Mutation,
    Subscription,
}

/// The documents' generator state.
struct Gen<'s, 'p> {
    s: &'s Schema,
    pools: &'p Pools,
    vars: Vec<(String, String)>,
    var_values: Map<String, Value>,
    fragments: Vec<(String, String, String)>,
    /// Fragments being generated (a spread of one of them makes a cycle).
    open_fragments: Vec<String>,
    budget: usize,
    max_depth: usize,
}

/// A document for `kind` (or the fuzzer's choice of kind when `None`).
pub fn document(d: &mut Draw, pools: &Pools, kind: Option<OpKind>) -> Doc {
    let s = schema();
    match d.below(20) {
        0 => bomb(d, s, pools),
        1 => soup(d, s),
        2 => introspection(d),
        _ => {
            let kind = kind.unwrap_or_else(|| match d.below(10) {
                0..=5 => OpKind::Query,
                6..=8 => OpKind::Mutation,
                _ => OpKind::Subscription,
            });
            operation(d, s, pools, kind)
        }
    }
}

fn operation(d: &mut Draw, s: &Schema, pools: &Pools, kind: OpKind) -> Doc {
    let mut g = Gen {
        s,
        pools,
        vars: Vec::new(),
        var_values: Map::new(),
        fragments: Vec::new(),
        open_fragments: Vec::new(),
        budget: d.range(4, 60),
        max_depth: if d.chance(1, 12) { d.range(6, 24) } else { d.range(1, 5) },
    };
    let (keyword, root) = match kind {
        OpKind::Query => ("query", Some(s.query.clone())),
        OpKind::Mutation => ("mutation", s.mutation.clone()),
        OpKind::Subscription => ("subscription", s.subscription.clone()),
    };
    let root = root.unwrap_or_else(|| s.query.clone());
    let body = if kind == OpKind::Subscription || kind == OpKind::Mutation {
        // One root field, as subscriptions require (and mutations mostly do).
        let mut out = String::from("{ ");
        let n = if d.chance(1, 8) { d.range(2, 3) } else { 1 };
        for _ in 0..n {
            g.selection(d, &root, 1, &mut out);
        }
        out.push('}');
        out
    } else {
        g.selection_set(d, &root, 0)
    };
    let name = match d.below(6) {
        0 => None,
        1 => Some(d.string(8)).filter(|n| is_name(n)),
        _ => Some(format!("Op{}", d.below(3))),
    };
    let mut text = String::new();
    let shorthand = kind == OpKind::Query && name.is_none() && g.vars.is_empty() && d.chance(1, 2);
    if !shorthand {
        text.push_str(keyword);
        if let Some(n) = &name {
            let _ = write!(text, " {n}");
        }
        if !g.vars.is_empty() {
            text.push('(');
            let defs: Vec<String> = g.vars.iter().map(|(n, t)| format!("${n}: {t}")).collect();
            text.push_str(&defs.join(", "));
            text.push(')');
        }
        if d.chance(1, 30) {
            text.push_str(" @skip(if: false)");
        }
        text.push(' ');
    }
    text.push_str(&body);
    for (fname, on, fbody) in &g.fragments {
        let _ = write!(text, "\nfragment {fname} on {on} {fbody}");
    }
    let mut operation_name = match d.below(8) {
        0 => Some(d.string(8)),
        1 | 2 => name.clone(),
        _ => None,
    };
    if d.chance(1, 10) {
        // A second operation: operationName decides which one runs.
        let other = if d.chance(1, 2) { "mutation" } else { "query" };
        let n2 = format!("Second{}", d.below(2));
        let _ = write!(text, "\n{other} {n2} {{ __typename }}");
        if d.chance(1, 2) {
            operation_name = Some(n2);
        }
    }
    Doc {
        text,
        variables: g.var_values,
        operation_name,
    }
}

fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

impl Gen<'_, '_> {
    fn selection_set(&mut self, d: &mut Draw, ty: &str, depth: usize) -> String {
        let mut out = String::from("{ ");
        let n = d.range(1, 4);
        for _ in 0..n {
            self.selection(d, ty, depth + 1, &mut out);
        }
        out.push('}');
        out
    }

    fn selection(&mut self, d: &mut Draw, ty: &str, depth: usize, out: &mut String) {
        let s = self.s;
        if self.budget == 0 {
            out.push_str("__typename ");
            return;
        }
        self.budget -= 1;
        let possible: Vec<String> = match s.types.get(ty) {
            Some(Kind::Composite { possible, .. }) => possible.clone(),
            Some(Kind::Union(members)) => members.clone(),
            _ => Vec::new(),
        };
        match d.below(24) {
            0 => out.push_str("__typename "),
            1 => {
                // A near miss: a name from elsewhere in the schema.
                let name = d.pick(&s.names).clone();
                let _ = write!(out, "{name} ");
            }
            2 | 3 => {
                // A fragment spread: an existing fragment on this type, or a new one.
                let existing: Vec<String> = self
                    .fragments
                    .iter()
                    .filter(|(_, on, _)| on == ty)
                    .map(|(n, _, _)| n.clone())
                    .chain(self.open_fragments.iter().filter(|_| d.chance(1, 20)).cloned())
                    .collect();
                if !existing.is_empty() && d.chance(1, 2) {
                    let _ = write!(out, "...{} ", d.pick(&existing));
                } else if d.chance(1, 30) {
                    out.push_str("...Missing ");
                } else {
                    let name = format!("F{}", self.fragments.len() + self.open_fragments.len());
                    self.open_fragments.push(name.clone());
                    let on = if !possible.is_empty() && d.chance(1, 2) {
                        d.pick(&possible).clone()
                    } else {
                        ty.to_owned()
                    };
                    let body = self.selection_set(d, &on, depth);
                    self.open_fragments.retain(|f| f != &name);
                    self.fragments.push((name.clone(), on, body));
                    let _ = write!(out, "...{name}{} ", self.directives(d));
                }
            }
            4 => {
                // An inline fragment: on a possible type, the type itself, or none.
                let on = match d.below(4) {
                    0 if !possible.is_empty() => d.pick(&possible).clone(),
                    1 => d.pick(&s.names).clone(),
                    _ => ty.to_owned(),
                };
                let body = self.selection_set(d, &on, depth);
                if d.chance(1, 4) {
                    let _ = write!(out, "...{} {body} ", self.directives(d));
                } else {
                    let _ = write!(out, "... on {on}{} {body} ", self.directives(d));
                }
            }
            _ => {
                let fields = match s.types.get(ty) {
                    Some(Kind::Composite { fields, .. }) if !fields.is_empty() => fields,
                    _ => {
                        // A union: its members through inline fragments.
                        if !possible.is_empty() {
                            let on = d.pick(&possible).clone();
                            let body = self.selection_set(d, &on, depth);
                            let _ = write!(out, "... on {on} {body} ");
                        } else {
                            out.push_str("__typename ");
                        }
                        return;
                    }
                };
                let f = &fields[d.below(fields.len())];
                self.field(d, f, depth, out);
            }
        }
    }

    fn field(&mut self, d: &mut Draw, f: &Field, depth: usize, out: &mut String) {
        let s = self.s;
        // Sometimes the same field many times under aliases (the alias limit), generated once.
        let repeat = if d.chance(1, 40) { d.range(2, 40) } else { 1 };
        let alias = repeat > 1 || d.chance(1, 10);
        let mut text = String::from(&f.name);
        let mut args = Vec::new();
        for a in &f.args {
            let required = !a.ty.nullable && !a.has_default;
            let include = if required { !d.chance(1, 24) } else { d.chance(1, 3) };
            if include {
                let v = self.argument(d, &a.ty);
                args.push(format!("{}: {v}", a.name));
            }
        }
        if d.chance(1, 30) {
            let name = d.pick(&s.names).clone();
            args.push(format!("{name}: {}", literal(&self.json(d, &ty("String"), 0), None, s)));
        }
        if !args.is_empty() {
            let _ = write!(text, "({})", args.join(", "));
        }
        text.push_str(&self.directives(d));
        let inner = named(&f.ty).to_owned();
        if s.is_composite(&inner) {
            if d.chance(1, 40) {
                // No selection on an object: a validation error.
            } else if depth >= self.max_depth {
                text.push_str(" { __typename }");
            } else {
                let set = self.selection_set(d, &inner, depth);
                text.push(' ');
                text.push_str(&set);
            }
        } else if d.chance(1, 60) {
            text.push_str(" { __typename }");
        }
        let collide = d.chance(1, 8);
        for i in 0..repeat {
            if alias {
                // Colliding aliases (same name, different arguments) now and then.
                let n = if collide { 0 } else { i };
                let _ = write!(out, "a{n}: ");
            }
            out.push_str(&text);
            out.push(' ');
        }
    }

    fn directives(&mut self, d: &mut Draw) -> String {
        if !d.chance(1, 10) {
            return String::new();
        }
        let n = if d.chance(1, 10) { d.range(2, 80) } else { 1 };
        let mut out = String::new();
        for _ in 0..n {
            match d.below(6) {
                0 => out.push_str(" @include(if: true)"),
                1 => out.push_str(" @skip(if: false)"),
                2 => {
                    let b = d.chance(1, 2);
                    let v = self.variable(d, "Boolean!", Value::Bool(b));
                    let _ = write!(out, " @include(if: ${v})");
                }
                3 => out.push_str(" @deprecated"),
                4 => out.push_str(" @skip"),
                _ => out.push_str(" @unknown(x: 1)"),
            }
        }
        out
    }

    /// Declares a variable of `ty` with `value` (sometimes left out of the variables).
    fn variable(&mut self, d: &mut Draw, ty: &str, value: Value) -> String {
        let name = format!("v{}", self.vars.len());
        let declared = if d.chance(1, 30) {
            "String".to_owned()
        } else {
            ty.to_owned()
        };
        self.vars.push((name.clone(), declared));
        if !d.chance(1, 20) {
            self.var_values.insert(name.clone(), value);
        }
        name
    }

    fn argument(&mut self, d: &mut Draw, t: &Type) -> String {
        let value = self.json(d, t, 0);
        if d.chance(1, 5) {
            let v = self.variable(d, &t.to_string(), value);
            return format!("${v}");
        }
        literal(&value, Some(t), self.s)
    }

    /// A JSON value for an input of type `t` (mostly of the right shape).
    fn json(&mut self, d: &mut Draw, t: &Type, depth: usize) -> Value {
        if t.nullable && d.chance(1, 12) {
            return Value::Null;
        }
        if d.chance(1, 30) || depth > 5 {
            return wrong_kind(d, self.pools);
        }
        match &t.base {
            BaseType::List(inner) => {
                if d.chance(1, 6) {
                    // A single value where a list is expected (input coercion).
                    return self.json(d, inner, depth + 1);
                }
                let n = if d.chance(1, 40) { d.range(50, 1000) } else { d.below(4) };
                Value::Array((0..n).map(|_| self.json(d, inner, depth + 1)).collect())
            }
            BaseType::Named(name) => self.named_json(d, name.as_str(), depth),
        }
    }

    fn named_json(&mut self, d: &mut Draw, name: &str, depth: usize) -> Value {
        match name {
            "Int" => Value::from(if d.chance(1, 4) { d.int() } else { *d.pick(INTS) }),
            "Float" => match d.below(5) {
                0 => Value::from(1.5),
                1 => Value::from(1e308),
                2 => Value::from(-0.0),
                3 => Value::from(d.int() as f64 / 7.0),
                _ => Value::from(*d.pick(INTS)),
            },
            "Boolean" => Value::Bool(d.chance(1, 2)),
            "ID" => id(d, self.pools),
            "String" => string(d, self.pools),
            "DateTime" => {
                if d.chance(1, 5) {
                    Value::String(d.string(30))
                } else {
                    Value::String(d.pick(DATES).to_string())
                }
            }
            "JSON" => small_json(d, 3),
            _ => match self.s.types.get(name) {
                Some(Kind::Enum(values)) => {
                    if d.chance(1, 20) {
                        Value::String(d.pick(&self.s.names).clone())
                    } else {
                        Value::String(d.pick(values).clone())
                    }
                }
                Some(Kind::Input(fields)) => {
                    let mut m = Map::new();
                    for f in fields {
                        let required = !f.ty.nullable && !f.has_default;
                        let include = if required { !d.chance(1, 24) } else { d.chance(1, 2) };
                        if include {
                            let v = self.json(d, &f.ty, depth + 1);
                            m.insert(f.name.clone(), v);
                        }
                    }
                    if d.chance(1, 25) {
                        m.insert(d.pick(&self.s.names).clone(), Value::from(1));
                    }
                    Value::Object(m)
                }
                _ => string(d, self.pools),
            },
        }
    }
}

fn ty(name: &str) -> Type {
    Type::new(name).expect("a type")
}

fn id(d: &mut Draw, pools: &Pools) -> Value {
    match d.below(10) {
        0 => Value::String(format!(
            "{}_{:032x}",
            d.pick(ID_PREFIXES),
            if d.chance(1, 2) { 0 } else { d.int() as u128 }
        )),
        1 => Value::String(d.string(40)),
        2 => Value::from(d.int()),
        _ if !pools.ids.is_empty() => Value::String(d.pick(&pools.ids).clone()),
        _ => Value::String("wo_0".into()),
    }
}

fn string(d: &mut Draw, pools: &Pools) -> Value {
    match d.below(10) {
        0 => Value::String(d.string(64)),
        1 => Value::String("x".repeat(if d.chance(1, 8) {
            d.range(1000, 70_000)
        } else {
            d.range(10, 300)
        })),
        2 if !pools.ids.is_empty() => Value::String(d.pick(&pools.ids).clone()),
        _ => Value::String(d.pick(STRINGS).to_string()),
    }
}

fn wrong_kind(d: &mut Draw, pools: &Pools) -> Value {
    match d.below(6) {
        0 => Value::Null,
        1 => Value::from(d.int()),
        2 => string(d, pools),
        3 => Value::Bool(true),
        4 => Value::Array(vec![Value::from(1), Value::String("a".into())]),
        _ => small_json(d, 2),
    }
}

/// Any small JSON value.
pub fn small_json(d: &mut Draw, depth: usize) -> Value {
    match d.below(if depth == 0 { 5 } else { 7 }) {
        0 => Value::Null,
        1 => Value::Bool(d.chance(1, 2)),
        2 => Value::from(if d.chance(1, 2) { d.int() } else { *d.pick(INTS) }),
        3 => Value::from(d.int() as f64 / 3.0),
        4 => Value::String(if d.chance(1, 2) {
            d.string(24)
        } else {
            d.pick(STRINGS).to_string()
        }),
        5 => Value::Array((0..d.below(4)).map(|_| small_json(d, depth - 1)).collect()),
        _ => {
            let mut m = Map::new();
            for _ in 0..d.below(4) {
                let k = if d.chance(1, 2) {
                    d.pick(&schema().names).clone()
                } else {
                    d.string(8)
                };
                m.insert(k, small_json(d, depth - 1));
            }
            Value::Object(m)
        }
    }
}

/// `v` as a GraphQL literal for type `t` (enum values bare).
fn literal(v: &Value, t: Option<&Type>, s: &Schema) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => {
            let text = n.to_string();
            // GraphQL floats need digits around the point: JSON's `1e308` is fine, `-0.0` too.
            text
        }
        Value::String(text) => {
            let is_enum = t.is_some_and(|t| matches!(s.types.get(named(t)), Some(Kind::Enum(_))));
            if is_enum && is_name(text) && !matches!(text.as_str(), "true" | "false" | "null") {
                text.clone()
            } else {
                serde_json::to_string(text).unwrap_or_default()
            }
        }
        Value::Array(items) => {
            let inner = t.and_then(|t| match &t.base {
                BaseType::List(inner) => Some(inner.as_ref()),
                BaseType::Named(_) => None,
            });
            let items: Vec<String> = items.iter().map(|i| literal(i, inner.or(t), s)).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Object(m) => {
            let fields = t.and_then(|t| match s.types.get(named(t)) {
                Some(Kind::Input(fields)) => Some(fields),
                _ => None,
            });
            let items: Vec<String> = m
                .iter()
                .filter(|(k, _)| is_name(k))
                .map(|(k, v)| {
                    let ft = fields.and_then(|fs| fs.iter().find(|f| &f.name == k)).map(|f| &f.ty);
                    format!("{k}: {}", literal(v, ft, s))
                })
                .collect();
            format!("{{{}}}", items.join(", "))
        }
    }
}

/// Documents aimed at the limits: sizes and counts the gate must refuse before the work.
fn bomb(d: &mut Draw, s: &Schema, pools: &Pools) -> Doc {
    let n = if d.chance(1, 4) {
        d.range(1, 3000)
    } else {
        d.range(1, 400)
    };
    let first_id = pools.ids.first().cloned().unwrap_or_default();
    let text = match d.below(10) {
        // Deep nesting through a recursive path (order → task → order …).
        0 => {
            let mut t = String::from("{ workOrders { nodes { ");
            for _ in 0..n.min(3000) {
                t.push_str("task { workOrder { ");
            }
            t.push_str("id ");
            for _ in 0..n.min(3000) {
                t.push_str("} } ");
            }
            t.push_str("} } }");
            t
        }
        // Unbalanced braces, deep: the parser's recursion.
        1 => format!("{{ {}", "a { ".repeat(n)),
        // A deeply nested list value.
        2 => format!(
            "{{ workOrder(id: {}\"{first_id}\"{}) {{ id }} }}",
            "[".repeat(n),
            "]".repeat(n)
        ),
        // Many aliases of a list field.
        3 => {
            let mut t = String::from("{ ");
            for i in 0..n.min(1000) {
                let _ = write!(
                    t,
                    "a{i}: workOrders(first: 100) {{ nodes {{ id history {{ kind }} }} }} "
                );
            }
            t.push('}');
            t
        }
        // Fragment fan-out: each level spreads the previous one twice under two aliases.
        4 => {
            let levels = n.min(64);
            let mut t = String::from("{ workOrders { nodes { ...L0 } } }\nfragment Lbase on WorkOrder { id title }\n");
            for i in 0..levels {
                let prev = if i + 1 == levels {
                    "Lbase".to_owned()
                } else {
                    format!("L{}", i + 1)
                };
                let _ = writeln!(
                    t,
                    "fragment L{i} on WorkOrder {{ x: task {{ workOrder {{ ...{prev} }} }} y: task {{ workOrder {{ ...{prev} }} }} }}"
                );
            }
            t
        }
        // Many directives on one field.
        5 => format!("{{ me {{ __typename {} }} }}", "@include(if: true) ".repeat(n)),
        // Many root fields.
        6 => {
            let mut t = String::from("{ ");
            for i in 0..n.min(1000) {
                let _ = write!(t, "r{i}: partners {{ id }} ");
            }
            t.push('}');
            t
        }
        // A long list argument.
        7 => {
            let ids: Vec<String> = (0..n)
                .map(|i| {
                    format!(
                        "\"{}\"",
                        pools.ids.get(i % pools.ids.len().max(1)).cloned().unwrap_or_default()
                    )
                })
                .collect();
            format!(
                "mutation {{ reorderDispatchRules(input: {{ruleIds: [{}]}}) {{ __typename }} }}",
                ids.join(",")
            )
        }
        // A fragment cycle, and a self-spread.
        8 => "{ me { ...A } }\nfragment A on Viewer { ...B }\nfragment B on Viewer { ...A }".into(),
        // Many variables, many tokens.
        _ => {
            let vars: Vec<String> = (0..n.min(5000)).map(|i| format!("$v{i}: Int")).collect();
            format!("query Q({}) {{ __typename }}", vars.join(", "))
        }
    };
    let _ = s;
    Doc { text, ..Doc::default() }
}

const PUNCT: &[&str] = &[
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    ":",
    "...",
    "@",
    "$",
    "!",
    "=",
    ",",
    "|",
    "&",
    "\"",
    "\"\"\"",
    "#",
    "\n",
    " ",
    "on",
    "query",
    "mutation",
    "subscription",
    "fragment",
    "true",
    "false",
    "null",
    "1",
    "-1.5e10",
    "\"s\"",
    "\"\\u00",
    "\"\\uD800\"",
    "0x",
    "__typename",
    "__schema",
    "__type",
    "\u{FEFF}",
];

/// Tokens in random order: the lexer and the parser, and the token count before parsing.
fn soup(d: &mut Draw, s: &Schema) -> Doc {
    let n = d.range(1, 400);
    let mut text = String::new();
    for _ in 0..n {
        if d.chance(1, 3) {
            text.push_str(&d.pick(&s.names).clone());
        } else {
            let p: &&str = d.pick(PUNCT);
            text.push_str(p);
        }
        if d.chance(1, 2) {
            text.push(' ');
        }
    }
    Doc { text, ..Doc::default() }
}

const INTROSPECTION: &[&str] = &[
    "{ __schema { types { name kind fields { name args { name type { name kind ofType { name } } } } } } }",
    "{ __schema { queryType { name } mutationType { name } subscriptionType { name } directives { name locations } } }",
    "{ __type(name: \"WorkOrder\") { name fields(includeDeprecated: true) { name isDeprecated } } }",
    "{ __type(name: \"\") { name } }",
    "{ __typename }",
    "query IntrospectionQuery { __schema { types { ...FullType } } } fragment FullType on __Type { kind name fields(includeDeprecated: true) { name type { ...TypeRef } } inputFields { name type { ...TypeRef } } } fragment TypeRef on __Type { kind name ofType { kind name ofType { kind name ofType { kind name } } } }",
];

fn introspection(d: &mut Draw) -> Doc {
    Doc {
        text: d.pick(INTROSPECTION).to_string(),
        ..Doc::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How deep brackets nest (strings included: an upper bound).
    fn nesting(doc: &str) -> usize {
        let (mut depth, mut max) = (0usize, 0usize);
        for b in doc.bytes() {
            match b {
                b'[' | b'{' | b'(' => {
                    depth += 1;
                    max = max.max(depth);
                }
                b']' | b'}' | b')' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        max
    }

    /// The generator's output from random bytes: sizes stay moderate, most documents parse.
    #[test]
    fn documents_from_random_bytes() {
        let pools = Pools {
            ids: vec!["wo_0123456789abcdef0123456789abcdef".into()],
        };
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let (mut parsed, mut total, mut bytes, mut largest) = (0, 0, 0, 0);
        let (mut generating, mut parsing) = (std::time::Duration::ZERO, std::time::Duration::ZERO);
        for _ in 0..3000 {
            let data: Vec<u8> = (0..512)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect();
            let mut u = Unstructured::new(&data);
            let t = std::time::Instant::now();
            let doc = document(&mut Draw::new(&mut u), &pools, None);
            generating += t.elapsed();
            let t = std::time::Instant::now();
            total += 1;
            bytes += doc.text.len();
            largest = largest.max(doc.text.len());
            // Not parsed when deeply nested: async-graphql-parser's recursion overflows the test
            // thread's stack (the server's gate refuses such documents before parsing them).
            if nesting(&doc.text) <= 64 && async_graphql::parser::parse_query(&doc.text).is_ok() {
                parsed += 1;
            }
            parsing += t.elapsed();
        }
        println!(
            "{parsed}/{total} parse; mean {} bytes, largest {largest}; generating {generating:?}, parsing {parsing:?}",
            bytes / total
        );
        assert!(parsed * 2 > total, "most generated documents parse");
    }
}
