//! Which kind of operation a request selects, told from the document's tokens without parsing
//! it: so that GET (and a cross-site request) never runs a mutation, and a subscription is sent
//! to the WebSocket, before any of the gate's limits have looked at the document.
//!
//! The scan is linear and keeps no stack, whatever the document. On a valid document it agrees
//! with the parser; on an invalid one it may not, which is harmless: the parser refuses that
//! document before anything runs.

/// The kind of an operation definition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Query,
    Mutation,
    Subscription,
}

impl Kind {
    /// As the metrics label it.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Query => "query",
            Kind::Mutation => "mutation",
            Kind::Subscription => "subscription",
        }
    }
}

/// What the request selects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Selected {
    /// Exactly one operation, of this kind.
    One(Kind),
    /// None can be picked (no operation, an unknown name, several without a name): the request
    /// will be refused before execution. `writes` tells whether the document defines a mutation
    /// or a subscription at all.
    Unresolved { writes: bool },
}

/// The operation `operation_name` selects in `query`, by the rules async-graphql applies: a
/// name must match exactly one named operation; without a name the document must hold one
/// operation.
pub fn selected(query: &str, operation_name: Option<&str>) -> Selected {
    let ops = operations(query);
    let writes = ops.iter().any(|(_, k)| *k != Kind::Query);
    let mut picked = ops.iter().filter(|(name, _)| match operation_name {
        Some(want) => *name == Some(want),
        None => true,
    });
    match (picked.next(), picked.next()) {
        (Some((_, kind)), None) => Selected::One(*kind),
        _ => Selected::Unresolved { writes },
    }
}

/// The name of the operation that runs, as the metrics label it: the one asked for, or the
/// document's only operation's own.
pub fn selected_name(query: &str, operation_name: Option<&str>) -> Option<String> {
    if let Some(name) = operation_name {
        return Some(name.to_owned());
    }
    match operations(query).as_slice() {
        [(Some(name), _)] => Some((*name).to_owned()),
        _ => None,
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between definitions.
    Start,
    /// After `query`/`mutation`/`subscription`: the next name (not a directive's) is the
    /// operation's.
    AfterKind,
    /// Inside the head of a definition, up to its selection set.
    Head,
}

/// The top-level operation definitions of a document: (name, kind), in order.
fn operations(src: &str) -> Vec<(Option<&str>, Kind)> {
    let b = src.as_bytes();
    let mut out: Vec<(Option<&str>, Kind)> = Vec::new();
    let mut state = State::Start;
    let mut depth = 0usize;
    let mut directive = false;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b' ' | b'\t' | b'\n' | b'\r' | b',' => i += 1,
            b'#' => {
                while i < b.len() && b[i] != b'\n' && b[i] != b'\r' {
                    i += 1;
                }
            }
            b'"' if b[i..].starts_with(b"\"\"\"") => {
                i += 3;
                while i < b.len() && !b[i..].starts_with(b"\"\"\"") {
                    // `\"""` is an escaped delimiter inside a block string.
                    i += if b[i..].starts_with(b"\\\"\"\"") { 4 } else { 1 };
                }
                i += 3;
            }
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' && b[i] != b'\n' && b[i] != b'\r' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'{' | b'(' | b'[' => {
                if depth == 0 && c == b'{' && state == State::Start {
                    // `{ … }` alone: the query shorthand.
                    out.push((None, Kind::Query));
                }
                if depth == 0 && (c == b'{' || state == State::AfterKind) {
                    state = State::Head;
                }
                depth += 1;
                directive = false;
                i += 1;
            }
            b'}' | b')' | b']' => {
                depth = depth.saturating_sub(1);
                if depth == 0 && c == b'}' {
                    state = State::Start;
                }
                i += 1;
            }
            b'@' => {
                directive = true;
                i += 1;
            }
            b'_' | b'a'..=b'z' | b'A'..=b'Z' => {
                let start = i;
                while i < b.len() && (b[i] == b'_' || b[i].is_ascii_alphanumeric()) {
                    i += 1;
                }
                let name = &src[start..i];
                if depth == 0 {
                    match state {
                        State::Start => {
                            let kind = match name {
                                "query" => Some(Kind::Query),
                                "mutation" => Some(Kind::Mutation),
                                "subscription" => Some(Kind::Subscription),
                                _ => None,
                            };
                            if let Some(kind) = kind {
                                out.push((None, kind));
                                state = State::AfterKind;
                            } else {
                                // `fragment`, or something the parser will refuse.
                                state = State::Head;
                            }
                        }
                        State::AfterKind => {
                            if !directive && let Some(last) = out.last_mut() {
                                last.0 = Some(name);
                            }
                            state = State::Head;
                        }
                        State::Head => {}
                    }
                }
                directive = false;
            }
            _ => {
                // Punctuators (`$ : = ! | & ...`), numbers, and bytes of other characters
                // (never part of a name): none of them starts or names an operation.
                directive = false;
                if state == State::AfterKind {
                    state = State::Head;
                }
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::Kind::*;
    use super::*;

    #[test]
    fn finds_the_operations_of_a_document() {
        assert_eq!(operations("{ me { id } }"), vec![(None, Query)]);
        assert_eq!(operations("query { a }"), vec![(None, Query)]);
        assert_eq!(
            operations("mutation M($x: In = {a: \"}\"}) @d { a }"),
            vec![(Some("M"), Mutation)]
        );
        assert_eq!(
            operations("subscription @live { a } "),
            vec![(None, Subscription)],
            "a directive's name is not the operation's"
        );
        assert_eq!(
            operations(
                "# mutation Commented { x }\nquery Q { a(s: \"mutation X {\") b(s: \"\"\"\n mutation Y { \\\"\"\" }\n\"\"\") }\n\
                 fragment F on Query { mutation: a }\nmutation M { c }"
            ),
            vec![(Some("Q"), Query), (Some("M"), Mutation)]
        );
        assert_eq!(
            operations("query Q { ...F } fragment F on Q { a }"),
            vec![(Some("Q"), Query)]
        );
        assert_eq!(operations("query,Q,{a}"), vec![(Some("Q"), Query)]);
        assert_eq!(operations(""), vec![]);
        assert_eq!(
            operations("\u{feff}{ a }"),
            vec![(None, Query)],
            "a BOM before the document"
        );
    }

    #[test]
    fn selects_as_async_graphql_does() {
        let doc = "query A { a } mutation B { b } subscription C { c }";
        assert_eq!(selected(doc, Some("A")), Selected::One(Query));
        assert_eq!(selected(doc, Some("B")), Selected::One(Mutation));
        assert_eq!(selected(doc, Some("C")), Selected::One(Subscription));
        assert_eq!(selected(doc, Some("D")), Selected::Unresolved { writes: true });
        assert_eq!(selected(doc, None), Selected::Unresolved { writes: true });
        assert_eq!(selected("mutation { a }", None), Selected::One(Mutation));
        assert_eq!(
            selected("mutation { a }", Some("X")),
            Selected::Unresolved { writes: true }
        );
        assert_eq!(selected("{ a }", None), Selected::One(Query));
        assert_eq!(selected("{", None), Selected::One(Query));
        assert_eq!(
            selected("query A { a } query B { b }", None),
            Selected::Unresolved { writes: false }
        );
        assert_eq!(selected("", None), Selected::Unresolved { writes: false });
    }

    #[test]
    fn agrees_with_the_parser_on_valid_documents() {
        use async_graphql::parser::parse_query;
        use async_graphql::parser::types::{DocumentOperations, OperationType};
        let docs = [
            "{ a }",
            "query { a }",
            "query Q($v: [Int!] = [1, 2]) @skip(if: false) { a { b } }",
            "mutation M { a(x: {y: \"}{\"}) }",
            "subscription S { a }",
            "query A { a } mutation B { b } fragment F on T { c } subscription C { d }",
            "mutation\n# comment { \n M2 { a(s: \"\"\"block \\\"\"\" { \"\"\") }",
        ];
        for doc in docs {
            let parsed = parse_query(doc).unwrap();
            let mut want: Vec<(Option<String>, Kind)> = Vec::new();
            let kind = |t: OperationType| match t {
                OperationType::Query => Query,
                OperationType::Mutation => Mutation,
                OperationType::Subscription => Subscription,
            };
            match &parsed.operations {
                DocumentOperations::Single(op) => want.push((None, kind(op.node.ty))),
                DocumentOperations::Multiple(ops) => {
                    for (name, op) in ops {
                        want.push((Some(name.to_string()), kind(op.node.ty)));
                    }
                }
            }
            let mut got: Vec<(Option<String>, Kind)> = operations(doc)
                .into_iter()
                .map(|(n, k)| (n.map(str::to_owned), k))
                .collect();
            want.sort_by_key(|(n, _)| n.clone());
            got.sort_by_key(|(n, _)| n.clone());
            assert_eq!(got, want, "{doc}");
        }
    }
}
