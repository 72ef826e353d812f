//! The gate every operation passes, over HTTP and WebSocket alike: limits checked before any
//! resolver runs (and before the work grows with the attack: bytes, then tokens in one lexer
//! pass, then one parse, then one walk with each fragment measured once), introspection as
//! configured, an execution deadline.
use std::collections::HashMap;
use std::time::Duration;

use async_graphql::parser::Positioned;
use async_graphql::parser::types::{Directive, ExecutableDocument, Selection, SelectionSet};
use async_graphql::{Request, Response, ServerError};

use super::AppSchema;
use crate::config::{EdgeConfig, Introspection};

/// What one SQL statement weighs in the complexity model (a field resolved from memory: 1).
pub const STATEMENT_COST: usize = 10;
/// How many rows an unpaged list (partners, engineers, rules, workflows) counts for.
pub const UNPAGED_LIST: usize = 10;
/// `explainDispatch` evaluates every rule of the tenant.
pub const EXPLAIN_COST: usize = 100;
/// Deepest nesting of brackets (`{`, `[`, `(`) in a document: deeper input would only exhaust
/// the parser's stack.
const MAX_NESTING: usize = 64;

/// What an operation may cost and how long it may run.
#[derive(Clone, Debug)]
pub struct Gate {
    pub max_query_bytes: usize,
    pub max_tokens: usize,
    pub max_fields: usize,
    pub max_aliases: usize,
    pub max_directives: usize,
    pub max_root_fields: usize,
    pub max_depth: usize,
    pub introspection: Introspection,
    pub timeout: Duration,
    /// Operations per token subject and per tenant.
    pub limiter: std::sync::Arc<super::limits::RateLimiter>,
    /// Which documents may run (trusted documents, persisted queries).
    pub documents: std::sync::Arc<super::documents::Documents>,
}

/// Why a request was refused before it ran.
#[derive(Debug, PartialEq, Eq)]
pub struct Refusal {
    pub code: &'static str,
    pub message: String,
    /// Where in the document (syntax errors).
    pub at: Option<async_graphql::Pos>,
}

impl Refusal {
    fn large(message: String) -> Refusal {
        Refusal {
            code: "QUERY_TOO_LARGE",
            message,
            at: None,
        }
    }
    fn complex(message: String) -> Refusal {
        Refusal {
            code: "QUERY_TOO_COMPLEX",
            message,
            at: None,
        }
    }
    fn bad(message: String) -> Refusal {
        Refusal {
            code: "BAD_USER_INPUT",
            message,
            at: None,
        }
    }
    fn into_response(self) -> Response {
        let mut e = ServerError::new(self.message, self.at);
        e.extensions.get_or_insert_with(Default::default).set("code", self.code);
        Response::from_errors(vec![e])
    }
}

impl Gate {
    /// The gate of `cfg`, its documents loaded ([`super::documents::Documents::load`]).
    pub fn new(cfg: &EdgeConfig, documents: super::documents::Documents) -> Gate {
        Gate {
            max_query_bytes: cfg.max_query_bytes,
            max_tokens: cfg.max_query_tokens,
            max_fields: cfg.max_query_fields,
            max_aliases: cfg.max_query_aliases,
            max_directives: cfg.max_query_directives,
            max_root_fields: cfg.max_root_fields,
            max_depth: cfg.max_query_depth,
            introspection: cfg.introspection,
            timeout: cfg.operation_timeout(),
            limiter: std::sync::Arc::new(super::limits::RateLimiter::new(cfg)),
            documents: std::sync::Arc::new(documents),
        }
    }

    /// Whether this caller may introspect (and be told "Did you mean …?").
    pub fn may_introspect(&self, authenticated: bool) -> bool {
        match self.introspection {
            Introspection::On => true,
            Introspection::Authenticated => authenticated,
            Introspection::Off => false,
        }
    }

    /// Checks the request's limits and parses it once (execution reuses the parse); sets
    /// introspection for the caller. `Err`: the response to send instead, nothing ran.
    pub fn admit(&self, req: &mut Request, authenticated: bool) -> Result<(), Box<Response>> {
        let may = self.may_introspect(authenticated);
        self.check_for(req, may).map_err(|r| Box::new(r.into_response()))?;
        if !may {
            req.introspection_mode = async_graphql::IntrospectionMode::Disabled;
        }
        Ok(())
    }

    fn check_for(&self, req: &mut Request, may_introspect: bool) -> Result<(), Refusal> {
        if req.query.len() > self.max_query_bytes {
            return Err(Refusal::large(format!(
                "the query is {} bytes; at most {} are accepted",
                req.query.len(),
                self.max_query_bytes
            )));
        }
        let lexed = lex(&req.query, self.max_tokens)?;
        if lexed.directives > self.max_directives {
            return Err(Refusal::complex(format!(
                "the query has {} directives; at most {} are accepted",
                lexed.directives, self.max_directives
            )));
        }
        let doc = match async_graphql::parser::parse_query(&req.query) {
            Ok(doc) => doc,
            Err(e) => {
                let at = e.positions().next();
                let message = match at {
                    Some(p) => format!("syntax error at line {}, column {}", p.line, p.column),
                    None => "syntax error".to_owned(),
                };
                return Err(Refusal {
                    at,
                    ..Refusal::bad(message)
                });
            }
        };
        let introspects = self.measure(&doc, req.operation_name.as_deref())?;
        if introspects && !may_introspect {
            return Err(Refusal {
                at: None,
                code: "FORBIDDEN",
                message: match self.introspection {
                    Introspection::Off => "introspection is off on this server".into(),
                    _ => "introspection needs a valid token".into(),
                },
            });
        }
        req.set_parsed_query(doc);
        Ok(())
    }

    /// Walks the operation to run with every fragment measured once (so a fragment spread twice
    /// by each of 24 nested fragments costs 24 steps, not 2^24).
    /// Measures every operation of the document (validation walks them all, whichever is
    /// run). `Ok(true)`: the one to run introspects the schema.
    fn measure(&self, doc: &ExecutableDocument, operation: Option<&str>) -> Result<bool, Refusal> {
        let mut walk = Walk {
            doc,
            memo: HashMap::new(),
            visiting: Vec::new(),
        };
        for (name, frag) in &doc.fragments {
            check_directives(&frag.node.directives, false)?;
            walk.fragment(name.as_str()).map(|_| ())?;
        }
        let mut introspects = false;
        for (name, op) in doc.operations.iter() {
            check_directives(&op.node.directives, false)?;
            let s = walk.set(&op.node.selection_set)?;
            self.within_limits(&s)?;
            let selected = match (operation, name) {
                (Some(want), Some(n)) => n.as_str() == want,
                _ => true,
            };
            introspects |= selected && s.introspects;
        }
        Ok(introspects)
    }

    fn within_limits(&self, s: &Stats) -> Result<(), Refusal> {
        let over = |what: &str, n: u64, max: usize| {
            (n > max as u64).then(|| {
                Refusal::complex(format!(
                    "the operation selects {what} {}; at most {max} are accepted",
                    if n == u64::MAX {
                        "too many".to_owned()
                    } else {
                        n.to_string()
                    }
                ))
            })
        };
        let checks = [
            over("root fields:", s.roots, self.max_root_fields),
            over("fields (fragments expanded):", s.fields, self.max_fields),
            over("aliased fields:", s.aliases, self.max_aliases),
            over("fields nested", s.depth, self.max_depth),
        ];
        match checks.into_iter().flatten().next() {
            Some(r) => Err(r),
            None => Ok(()),
        }
    }

    /// Checks the request, then runs it under the deadline. `authenticated`: the caller
    /// presented a valid token.
    pub async fn execute(&self, schema: &AppSchema, mut req: Request, authenticated: bool) -> Response {
        if let Err(resp) = self.admit(&mut req, authenticated) {
            return *resp;
        }
        let suggest = self.may_introspect(authenticated);
        let mut resp = self.within_deadline(schema.execute(req)).await;
        if !suggest {
            strip_suggestions(&mut resp);
        }
        resp
    }

    /// Runs an operation, stopped with `TIMEOUT` at the deadline (a change in flight is rolled
    /// back with its transaction, or committed whole if it was already committing).
    pub async fn within_deadline(&self, op: impl std::future::Future<Output = Response>) -> Response {
        tokio::time::timeout(self.timeout, op)
            .await
            .unwrap_or_else(|_| self.timed_out())
    }

    /// The answer to an operation stopped at its deadline.
    pub fn timed_out(&self) -> Response {
        Refusal {
            at: None,
            code: "TIMEOUT",
            message: format!(
                "the operation did not finish within {} ms (a change is applied whole or not at all: read it back to know)",
                self.timeout.as_millis()
            ),
        }
        .into_response()
    }
}

/// Validation errors' "Did you mean …?" name fields and types of the schema: only for those
/// who may introspect it.
pub fn strip_suggestions(resp: &mut Response) {
    for e in &mut resp.errors {
        if let Some(i) = e.message.find(" Did you mean") {
            e.message.truncate(i);
        }
    }
}

#[derive(Clone, Copy, Default)]
struct Stats {
    fields: u64,
    aliases: u64,
    depth: u64,
    roots: u64,
    /// Selects `__schema` or `__type`.
    introspects: bool,
}

impl Stats {
    fn add(&mut self, o: Stats) {
        self.fields = self.fields.saturating_add(o.fields);
        self.aliases = self.aliases.saturating_add(o.aliases);
        self.depth = self.depth.max(o.depth);
        self.roots = self.roots.saturating_add(o.roots);
        self.introspects |= o.introspects;
    }
}

struct Walk<'a> {
    doc: &'a ExecutableDocument,
    memo: HashMap<&'a str, Stats>,
    visiting: Vec<&'a str>,
}

impl<'a> Walk<'a> {
    fn set(&mut self, set: &'a Positioned<SelectionSet>) -> Result<Stats, Refusal> {
        let mut s = Stats::default();
        for item in &set.node.items {
            match &item.node {
                Selection::Field(f) => {
                    let f = &f.node;
                    check_directives(&f.directives, true)?;
                    if f.name.node.as_str() == "__typename" && !f.arguments.is_empty() {
                        return Err(Refusal::bad("`__typename` takes no arguments".into()));
                    }
                    let child = self.set(&f.selection_set)?;
                    s.add(Stats {
                        fields: child.fields.saturating_add(1),
                        aliases: child.aliases.saturating_add(f.alias.is_some() as u64),
                        depth: child.depth.saturating_add(1),
                        roots: 1,
                        introspects: child.introspects || matches!(f.name.node.as_str(), "__schema" | "__type"),
                    });
                }
                Selection::FragmentSpread(sp) => {
                    check_directives(&sp.node.directives, true)?;
                    let f = self.fragment(sp.node.fragment_name.node.as_str())?;
                    s.add(f);
                }
                Selection::InlineFragment(inl) => {
                    check_directives(&inl.node.directives, true)?;
                    let f = self.set(&inl.node.selection_set)?;
                    s.add(f);
                }
            }
        }
        Ok(s)
    }

    fn fragment(&mut self, name: &str) -> Result<Stats, Refusal> {
        if let Some(s) = self.memo.get(name) {
            return Ok(*s);
        }
        let Some((key, def)) = self.doc.fragments.get_key_value(name) else {
            return Ok(Stats::default()); // validation refuses the unknown fragment
        };
        let key = key.as_str();
        if self.visiting.contains(&key) {
            return Err(Refusal::bad(format!("fragment `{key}` spreads itself")));
        }
        self.visiting.push(key);
        let s = self.set(&def.node.selection_set);
        self.visiting.pop();
        let s = s?;
        self.memo.insert(key, s);
        Ok(s)
    }
}

/// Only `@include(if:)` and `@skip(if:)` exist where a query may put directives, each at most
/// once per place (`on_selection`); none on operations and fragment definitions.
fn check_directives(dirs: &[Positioned<Directive>], on_selection: bool) -> Result<(), Refusal> {
    let mut seen: Vec<&str> = Vec::new();
    for d in dirs {
        let name = d.node.name.node.as_str();
        if !on_selection || !matches!(name, "include" | "skip") {
            return Err(Refusal::bad(format!("unknown or misplaced directive `@{name}`")));
        }
        if seen.contains(&name) {
            return Err(Refusal::bad(format!("directive `@{name}` given twice in one place")));
        }
        seen.push(name);
        let args: Vec<&str> = d.node.arguments.iter().map(|(n, _)| n.node.as_str()).collect();
        if args != ["if"] {
            return Err(Refusal::bad(format!("`@{name}` takes exactly one argument, `if`")));
        }
    }
    Ok(())
}

/// What one lexer pass tells before parsing.
#[derive(Debug, Default)]
struct Lexed {
    directives: usize,
}

/// Counts the document's tokens, stopping at `max`; refuses nesting deeper than
/// `MAX_NESTING`. Linear in the document, allocates nothing.
fn lex(q: &str, max: usize) -> Result<Lexed, Refusal> {
    let b = q.as_bytes();
    let (mut i, mut tokens, mut depth) = (0usize, 0usize, 0usize);
    let mut out = Lexed::default();
    let too_many = || Refusal::large(format!("the query has more than {max} tokens"));
    while i < b.len() {
        let c = b[i];
        match c {
            b' ' | b'\t' | b'\n' | b'\r' | b',' => {
                i += 1;
                continue;
            }
            b'#' => {
                while i < b.len() && b[i] != b'\n' && b[i] != b'\r' {
                    i += 1;
                }
                continue;
            }
            b'"' if b[i..].starts_with(b"\"\"\"") => {
                i += 3;
                while i < b.len() && !b[i..].starts_with(b"\"\"\"") {
                    i += if b[i..].starts_with(b"\\\"\"\"") { 4 } else { 1 };
                }
                i += 3;
            }
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' && b[i] != b'\n' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'{' | b'[' | b'(' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(Refusal::complex(format!(
                        "the query nests brackets deeper than {MAX_NESTING}"
                    )));
                }
                i += 1;
            }
            b'}' | b']' | b')' => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            b'@' => {
                out.directives += 1;
                i += 1;
            }
            b'.' if b[i..].starts_with(b"...") => i += 3,
            c if c.is_ascii_alphanumeric() || c == b'_' || c == b'-' || c == b'.' || c == b'+' => {
                while i < b.len() && (b[i].is_ascii_alphanumeric() || matches!(b[i], b'_' | b'.' | b'+' | b'-')) {
                    i += 1;
                }
            }
            _ => i += 1,
        }
        tokens += 1;
        if tokens > max {
            return Err(too_many());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate() -> Gate {
        Gate::new(&EdgeConfig::default(), Default::default())
    }

    fn refused(q: &str) -> Option<Refusal> {
        gate().check_for(&mut Request::new(q), true).err()
    }

    /// 24 fragments, each spreading the previous twice: 2^24 fields once expanded.
    pub(crate) fn fragment_bomb() -> String {
        let mut q = String::from("query { me { ...F23 } }\nfragment F0 on Viewer { __typename }\n");
        for i in 1..24 {
            q.push_str(&format!("fragment F{i} on Viewer {{ ...F{p} ...F{p} }}\n", p = i - 1));
        }
        q
    }

    #[test]
    fn the_fragment_bomb_is_refused_in_milliseconds() {
        let q = fragment_bomb();
        let t = std::time::Instant::now();
        let r = refused(&q).expect("refused");
        assert_eq!(r.code, "QUERY_TOO_COMPLEX", "{}", r.message);
        assert!(t.elapsed() < Duration::from_millis(100), "{:?}", t.elapsed());
        assert!(!r.message.contains("F23"), "never echoes the query: {}", r.message);
    }

    #[test]
    fn each_limit_refuses_with_its_code() {
        let big = format!("{{ me {{ id }} }} #{}", "x".repeat(40_000));
        assert_eq!(refused(&big).unwrap().code, "QUERY_TOO_LARGE");
        let tokens = format!("{{ {} }}", "__typename ".repeat(5000));
        assert_eq!(refused(&tokens).unwrap().code, "QUERY_TOO_LARGE");
        let aliases: String = (0..31).map(|i| format!("a{i}: __typename ")).collect();
        assert_eq!(refused(&format!("{{ {aliases} }}")).unwrap().code, "QUERY_TOO_COMPLEX");
        let roots: String = (0..21).map(|i| format!("a{i}: me {{ id }} ")).collect();
        let r = refused(&format!("{{ {roots} }}")).unwrap();
        assert_eq!(r.code, "QUERY_TOO_COMPLEX");
        assert!(r.message.contains("root fields"), "{}", r.message);
        let dirs = "@include(if: true) ".repeat(51);
        assert_eq!(
            refused(&format!("{{ __typename {dirs} }}")).unwrap().code,
            "QUERY_TOO_COMPLEX"
        );
        let deep = format!("{}{}", "{ a ".repeat(16), "}".repeat(16));
        assert_eq!(refused(&deep).unwrap().code, "QUERY_TOO_COMPLEX");
        let nested = format!("{{ node(id: {}1{}) {{ id }} }}", "[".repeat(100), "]".repeat(100));
        assert_eq!(refused(&nested).unwrap().code, "QUERY_TOO_COMPLEX");
        assert!(refused("{ me { id } workOrders(first: 5) { totalCount } }").is_none());
        // A single named operation run without its name is measured too, and so is one not run.
        assert_eq!(
            refused(&format!("query Q {{ {roots} }}")).unwrap().code,
            "QUERY_TOO_COMPLEX"
        );
        let two = format!("query A {{ __typename }} query B {{ {roots} }}");
        let mut req = Request::new(two).operation_name("A");
        assert_eq!(gate().check_for(&mut req, true).unwrap_err().code, "QUERY_TOO_COMPLEX");
    }

    #[test]
    fn directives_and_arguments_that_do_not_exist_are_refused() {
        for q in [
            "{ __typename @nope }",
            "{ __typename(x: 1) }",
            "{ __typename @include(if: true) @include(if: true) }",
            "{ __typename @skip(if: true, also: 1) }",
            "query @include(if: true) { __typename }",
        ] {
            assert_eq!(refused(q).map(|r| r.code), Some("BAD_USER_INPUT"), "{q}");
        }
        assert!(refused("{ __typename @skip(if: false) me @include(if: true) { id } }").is_none());
    }

    #[test]
    fn syntax_errors_say_where_not_what() {
        let r = refused("{ me { id } secretTokenHere(").unwrap();
        assert_eq!(r.code, "BAD_USER_INPUT");
        assert!(r.message.starts_with("syntax error at line 1"), "{}", r.message);
        assert!(!r.message.contains("secretTokenHere"), "{}", r.message);
    }

    #[test]
    fn the_lexer_counts_strings_comments_and_spreads_as_graphql_does() {
        let q = "query Q($a: String = \"x y, z\") { # a comment, with words\n ...F f(s: \"\"\"a \\\"\"\" b\"\"\") }";
        // query Q ( $ a : String = "…" ) { ... F f ( s : """…""" ) }
        assert!(lex(q, 20).is_ok());
        assert!(lex(q, 19).is_err());
    }

    #[tokio::test]
    async fn an_operation_past_its_deadline_is_answered_timeout() {
        let mut g = gate();
        g.timeout = Duration::from_millis(20);
        let slow = async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Response::new(async_graphql::Value::Null)
        };
        let t = std::time::Instant::now();
        let resp = g.within_deadline(slow).await;
        assert!(t.elapsed() < Duration::from_secs(1));
        let code = resp.errors[0].extensions.as_ref().and_then(|x| x.get("code")).cloned();
        assert_eq!(code.map(|c| c.to_string()).as_deref(), Some("\"TIMEOUT\""));
    }

    #[test]
    fn introspection_follows_the_setting() {
        let mut g = gate();
        assert!(
            g.may_introspect(true) && !g.may_introspect(false),
            "default: authenticated"
        );
        g.introspection = Introspection::Off;
        assert!(!g.may_introspect(true));
        g.introspection = Introspection::On;
        assert!(g.may_introspect(false));
    }
}
