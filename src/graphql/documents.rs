//! Which documents may run. `DISPATCHD_DOCUMENTS=trusted`: only the operations registered in
//! the manifest `DISPATCHD_TRUSTED_DOCUMENTS` (the production setting for first-party apps),
//! asked for by their SHA-256 or sent whole (then hashed and looked up). `any` (the default):
//! any document, and Apollo's automatic persisted queries: a client sends only
//! `extensions.persistedQuery.sha256Hash`; unknown, it is told `PERSISTED_QUERY_NOT_FOUND` and
//! sends the document with its hash once, which is checked and remembered (the manifest's
//! documents are known from the start).
use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::config::{DocumentsMode, EdgeConfig};
use crate::error::{Error, Result};

/// Documents remembered from clients (automatic persisted queries) at most; beyond, the
/// oldest half is forgotten (a client then sends its document again).
const MAX_REMEMBERED: usize = 10_000;

/// Why a request's document cannot be had.
#[derive(Debug, PartialEq, Eq)]
pub struct Refused {
    pub code: &'static str,
    pub message: String,
}

impl Refused {
    fn new(code: &'static str, message: impl Into<String>) -> Refused {
        Refused {
            code,
            message: message.into(),
        }
    }
}

/// Documents by hash, each with when it came (a counter), and the counter.
type Remembered = (HashMap<String, (u64, Arc<str>)>, u64);

#[derive(Debug, Default)]
pub struct Documents {
    mode: DocumentsMode,
    trusted: HashMap<String, Arc<str>>,
    /// Automatic persisted queries, with the order they came in (to forget the oldest).
    remembered: Mutex<Remembered>,
}

pub fn sha256_hex(text: &str) -> String {
    format!("{:x}", Sha256::digest(text.as_bytes()))
}

impl Documents {
    /// The settings' documents: the manifest read and every entry's hash checked. A trusted
    /// mode without a manifest, or a manifest that cannot be read or does not check, is an
    /// error: the server does not start.
    pub fn load(cfg: &EdgeConfig) -> Result<Documents> {
        let trusted = match &cfg.trusted_documents {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    Error::bad_input(
                        "DISPATCHD_TRUSTED_DOCUMENTS",
                        format!("cannot read {}: {e}", path.display()),
                    )
                })?;
                parse_manifest(&text)
                    .map_err(|m| Error::bad_input("DISPATCHD_TRUSTED_DOCUMENTS", format!("{}: {m}", path.display())))?
            }
            None if cfg.documents == DocumentsMode::Trusted => {
                return Err(Error::bad_input(
                    "DISPATCHD_DOCUMENTS",
                    "trusted documents need a manifest: set DISPATCHD_TRUSTED_DOCUMENTS",
                ));
            }
            None => HashMap::new(),
        };
        Ok(Documents {
            mode: cfg.documents,
            trusted,
            remembered: Mutex::default(),
        })
    }

    /// The document a request runs: its `query`, or the one its persisted-query hash names.
    pub fn resolve(&self, query: Option<String>, extensions: Option<&Map<String, Value>>) -> Result<String, Refused> {
        let hash = persisted_hash(extensions)?;
        match (query, hash) {
            (None, None) => Err(Refused::new("BAD_USER_INPUT", "the request has no `query`")),
            (Some(q), None) => match self.mode {
                DocumentsMode::Any => Ok(q),
                DocumentsMode::Trusted => match self.trusted.get(&sha256_hex(&q)) {
                    Some(_) => Ok(q),
                    None => Err(not_in_list()),
                },
            },
            (Some(q), Some(h)) => {
                if sha256_hex(&q) != h {
                    return Err(Refused::new(
                        "BAD_USER_INPUT",
                        "the persisted query's sha256Hash is not the SHA-256 of the query sent",
                    ));
                }
                match self.mode {
                    DocumentsMode::Trusted if !self.trusted.contains_key(&h) => Err(not_in_list()),
                    DocumentsMode::Trusted => Ok(q),
                    DocumentsMode::Any => {
                        self.remember(h, &q);
                        Ok(q)
                    }
                }
            }
            (None, Some(h)) => {
                if let Some(q) = self.trusted.get(&h) {
                    return Ok(q.to_string());
                }
                match self.mode {
                    DocumentsMode::Trusted => Err(not_in_list()),
                    DocumentsMode::Any => {
                        let r = self.remembered.lock();
                        match r.0.get(&h) {
                            Some((_, q)) => Ok(q.to_string()),
                            None => Err(Refused::new(
                                "PERSISTED_QUERY_NOT_FOUND",
                                "PersistedQueryNotFound: send the query with its sha256Hash once",
                            )),
                        }
                    }
                }
            }
        }
    }

    fn remember(&self, hash: String, query: &str) {
        let mut guard = self.remembered.lock();
        let (map, next) = &mut *guard;
        if map.contains_key(&hash) {
            return;
        }
        if map.len() >= MAX_REMEMBERED {
            let mut ages: Vec<u64> = map.values().map(|(n, _)| *n).collect();
            ages.sort_unstable();
            let cut = ages[ages.len() / 2];
            map.retain(|_, (n, _)| *n >= cut);
        }
        *next += 1;
        map.insert(hash, (*next, Arc::from(query)));
    }
}

fn not_in_list() -> Refused {
    Refused::new(
        "PERSISTED_QUERY_NOT_IN_LIST",
        "this server runs trusted documents only, and this one is not among them",
    )
}

/// `extensions.persistedQuery`: `{version: 1, sha256Hash: "<64 hex digits>"}`, if given.
fn persisted_hash(extensions: Option<&Map<String, Value>>) -> Result<Option<String>, Refused> {
    let Some(pq) = extensions.and_then(|e| e.get("persistedQuery")) else {
        return Ok(None);
    };
    let bad = |m: &str| Refused::new("BAD_USER_INPUT", format!("extensions.persistedQuery: {m}"));
    if pq.get("version").and_then(Value::as_i64) != Some(1) {
        return Err(bad("only version 1 is supported"));
    }
    match pq.get("sha256Hash").and_then(Value::as_str) {
        Some(h) if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) => Ok(Some(h.to_ascii_lowercase())),
        _ => Err(bad("sha256Hash must be 64 hexadecimal digits")),
    }
}

/// A manifest: Apollo's persisted query manifest (`{"format": "apollo-persisted-query-manifest",
/// "version": 1, "operations": [{"id", "body", ...}]}`) or a plain object of hash to document.
fn parse_manifest(text: &str) -> Result<HashMap<String, Arc<str>>, String> {
    let json: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let entries: Vec<(String, String)> = match &json {
        Value::Object(m) if m.contains_key("operations") => m["operations"]
            .as_array()
            .ok_or("`operations` must be a list")?
            .iter()
            .map(|op| {
                match (
                    op.get("id").and_then(Value::as_str),
                    op.get("body").and_then(Value::as_str),
                ) {
                    (Some(id), Some(body)) => Ok((id.to_owned(), body.to_owned())),
                    _ => Err("every operation has a string `id` and `body`".to_owned()),
                }
            })
            .collect::<Result<_, _>>()?,
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| match v.as_str() {
                Some(body) => Ok((k.clone(), body.to_owned())),
                None => Err(format!("the document of {k} is not a string")),
            })
            .collect::<Result<_, _>>()?,
        _ => return Err("a manifest is a JSON object".into()),
    };
    let mut out = HashMap::new();
    for (id, body) in entries {
        let id = id.to_ascii_lowercase();
        if sha256_hex(&body) != id {
            return Err(format!("{id} is not the SHA-256 of its document"));
        }
        out.insert(id, Arc::from(body.as_str()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pq(hash: &str) -> Map<String, Value> {
        serde_json::from_value(serde_json::json!({"persistedQuery": {"version": 1, "sha256Hash": hash}})).unwrap()
    }

    #[test]
    fn automatic_persisted_queries_are_remembered_once_checked() {
        let d = Documents::default();
        let q = "{ me { id } }";
        let h = sha256_hex(q);
        assert_eq!(
            d.resolve(None, Some(&pq(&h))).unwrap_err().code,
            "PERSISTED_QUERY_NOT_FOUND"
        );
        let wrong = sha256_hex("{ other }");
        assert_eq!(
            d.resolve(Some(q.into()), Some(&pq(&wrong))).unwrap_err().code,
            "BAD_USER_INPUT"
        );
        assert_eq!(d.resolve(Some(q.into()), Some(&pq(&h))).unwrap(), q);
        assert_eq!(d.resolve(None, Some(&pq(&h.to_uppercase()))).unwrap(), q);
        assert_eq!(
            d.resolve(Some("{ a }".into()), None).unwrap(),
            "{ a }",
            "any document runs"
        );
    }

    #[test]
    fn trusted_mode_runs_the_manifest_only() {
        let q = "query Me { me { id } }";
        let manifest = serde_json::json!({"format": "apollo-persisted-query-manifest", "version": 1,
            "operations": [{"id": sha256_hex(q), "name": "Me", "type": "query", "body": q}]});
        let d = Documents {
            mode: DocumentsMode::Trusted,
            trusted: parse_manifest(&manifest.to_string()).unwrap(),
            remembered: Mutex::default(),
        };
        assert_eq!(d.resolve(None, Some(&pq(&sha256_hex(q)))).unwrap(), q);
        assert_eq!(
            d.resolve(Some(q.into()), None).unwrap(),
            q,
            "sent whole, it hashes to a listed one"
        );
        let other = "{ me { role } }";
        assert_eq!(
            d.resolve(Some(other.into()), None).unwrap_err().code,
            "PERSISTED_QUERY_NOT_IN_LIST"
        );
        assert_eq!(
            d.resolve(Some(other.into()), Some(&pq(&sha256_hex(other))))
                .unwrap_err()
                .code,
            "PERSISTED_QUERY_NOT_IN_LIST",
            "no registration by clients"
        );
    }

    #[test]
    fn a_manifest_whose_hashes_do_not_check_is_refused() {
        assert!(
            parse_manifest(r#"{"0000000000000000000000000000000000000000000000000000000000000000": "{ me { id } }"}"#)
                .is_err()
        );
        assert!(parse_manifest("[]").is_err());
        let q = "{ me { id } }";
        assert_eq!(
            parse_manifest(&serde_json::json!({ sha256_hex(q): q }).to_string())
                .unwrap()
                .len(),
            1
        );
    }
}
