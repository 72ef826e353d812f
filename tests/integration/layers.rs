//! The architecture, read from the code: every module imports only its own layer and those
//! below (`main/cli → app → graphql → service → store, notify → domain`, with `config`,
//! `error`, `ids`, `auth`, `metrics` and `telemetry` as ground helpers), no sea-orm above the service layer, and no
//! source file longer than a newcomer can read whole.
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// How far down a top-level module sits; a module may import its own layer and lower ones.
fn rank(module: &str) -> Option<u8> {
    Some(match module {
        "domain" => 1,
        "store" | "notify" => 2,
        "service" => 3,
        "graphql" => 4,
        "app" => 5,
        "cli" | "main" | "lib" => 6,
        _ => return None,
    })
}

/// The ground helpers: anyone may use them; they use each other, and `error` and `auth` the
/// domain too.
fn ground(module: &str) -> bool {
    matches!(module, "config" | "error" | "ids" | "auth" | "metrics" | "telemetry")
}

fn allowed(from: &str, to: &str) -> bool {
    if from == to || ground(to) {
        return true;
    }
    if ground(from) {
        return to == "domain" && matches!(from, "error" | "auth");
    }
    match (rank(from), rank(to)) {
        // store and notify are siblings that do not know each other.
        (Some(a), Some(b)) => b < a || (a == b && a != 2),
        _ => false,
    }
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to: `src/service/orders/create.rs` → `service`.
fn module_of(root: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(root).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy()
        .into_owned();
    first.trim_end_matches(".rs").to_owned()
}

/// Code lines only: comments (doc comments included) name modules without importing them.
fn code(text: &str) -> String {
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) if !l[..i].contains('"') => &l[..i],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn ident(s: &str) -> &str {
    let end = s.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(s.len());
    &s[..end]
}

/// Every top-level module named by a `crate::` path, `use crate::{a, b::c}` groups included.
fn targets(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in code.match_indices("crate::") {
        // `dispatchd::…` is not `crate::…`, but `some_crate::` would match: want a boundary.
        if code[..i]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_')
        {
            continue;
        }
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0;
            let mut start = 0;
            for (j, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        out.insert(ident(group[start..j].trim()).to_owned());
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        out.insert(ident(group[start..j].trim()).to_owned());
                        start = j + 1;
                    }
                    _ => {}
                }
            }
        } else {
            out.insert(ident(rest).to_owned());
        }
    }
    out.remove("");
    out
}

fn src_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn the_checker_sees_what_it_must() {
    let t = targets("use crate::{app::Services, store::{self, Db}, error::Result};\nlet x = crate::graphql::x();");
    assert_eq!(t, ["app", "error", "graphql", "store"].map(String::from).into());
    assert!(targets(&code("// see crate::app\nfoo();")).is_empty());
    assert!(!allowed("service", "app") && !allowed("config", "service") && !allowed("store", "notify"));
    assert!(!allowed("domain", "store") && !allowed("graphql", "app") && !allowed("ids", "domain"));
    assert!(allowed("app", "graphql") && allowed("service", "store") && allowed("auth", "domain"));
    assert!(allowed("graphql", "service") && allowed("domain", "error") && allowed("cli", "app"));
}

#[test]
fn layers_import_only_downward() {
    let root = src_root();
    let mut files = Vec::new();
    sources(&root, &mut files);
    assert!(
        files.len() > 40,
        "found only {} sources under {}",
        files.len(),
        root.display()
    );
    let mut upward = Vec::new();
    for file in &files {
        let from = module_of(&root, file);
        let text = code(&std::fs::read_to_string(file).unwrap());
        for to in targets(&text) {
            if !allowed(&from, &to) {
                upward.push(format!(
                    "{} ({from}) imports crate::{to}",
                    file.strip_prefix(&root).unwrap().display()
                ));
            }
        }
        // The services run queries through the store; `error` turns sea-orm's errors into ours.
        let sea_orm_allowed = matches!(from.as_str(), "service" | "store" | "notify" | "error");
        if !sea_orm_allowed && (text.contains("sea_orm::") || text.contains("use sea_orm")) {
            upward.push(format!(
                "{} ({from}) uses sea-orm",
                file.strip_prefix(&root).unwrap().display()
            ));
        }
    }
    assert!(
        upward.is_empty(),
        "imports against the layering:\n{}",
        upward.join("\n")
    );
}

/// Lines of a file before its unit tests.
fn lines_before_tests(text: &str) -> usize {
    text.lines().take_while(|l| !l.starts_with("#[cfg(test)]")).count()
}

#[test]
fn no_source_file_is_longer_than_a_reader_keeps_in_mind() {
    const MAX_LINES: usize = 600;
    let root = src_root();
    let mut files = Vec::new();
    sources(&root, &mut files);
    let long: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let n = lines_before_tests(&std::fs::read_to_string(f).unwrap());
            (n > MAX_LINES).then(|| format!("{}: {n} lines", f.strip_prefix(&root).unwrap().display()))
        })
        .collect();
    assert!(
        long.is_empty(),
        "split these by use case (at most {MAX_LINES} lines before the tests):\n{}",
        long.join("\n")
    );
}
