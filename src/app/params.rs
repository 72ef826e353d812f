//! A GraphQL-over-HTTP request's parameters (`query`, `operationName`, `variables`,
//! `extensions`), read from a POST's JSON body or a GET's URL and checked for their types.
use async_graphql::Value;
use serde_json::{Map, Value as Json};

use super::refusal::Refusal;

/// A GraphQL-over-HTTP request's parameters, checked for their types.
#[derive(Debug)]
pub(super) struct Params {
    /// Absent when a persisted query's hash names it.
    pub query: Option<String>,
    pub operation_name: Option<String>,
    pub variables: Option<Map<String, Json>>,
    pub extensions: Option<Map<String, Json>>,
}

impl Params {
    /// From a POST's JSON body: one object (a batch, an array, is not supported).
    pub fn from_body(bytes: &[u8]) -> Result<Params, Refusal> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(Refusal::malformed(
                "the request body is empty: send a JSON object with a `query`",
            ));
        }
        // Errors name a place, never the content: a message must not echo the request.
        let json: Json = serde_json::from_slice(bytes).map_err(|e| {
            Refusal::malformed(format!(
                "the request body is not valid JSON in UTF-8 (line {}, column {})",
                e.line(),
                e.column()
            ))
        })?;
        match json {
            Json::Object(map) => Params::from_map(map),
            Json::Array(_) => Err(Refusal::malformed(
                "batched requests (a JSON array) are not supported: send one JSON object",
            )),
            _ => Err(Refusal::malformed(
                "the request body must be a JSON object with a `query`",
            )),
        }
    }

    /// From a GET's URL parameters: `query`, `operationName`, and `variables` and `extensions`
    /// as JSON text. An empty parameter counts as absent.
    pub fn from_url(query_string: &str) -> Result<Params, Refusal> {
        let pairs: Vec<(String, String)> = axum::extract::Query::try_from_uri(
            &format!("/?{query_string}")
                .parse()
                .map_err(|_| Refusal::malformed("the URL's parameters cannot be read"))?,
        )
        .map(|axum::extract::Query(pairs)| pairs)
        .map_err(|_| Refusal::malformed("the URL's parameters cannot be read"))?;
        let mut map = Map::new();
        for (key, value) in pairs {
            let name = match key.as_str() {
                "query" | "operationName" | "variables" | "extensions" => key,
                _ => continue,
            };
            if value.is_empty() {
                continue;
            }
            let value = if name == "variables" || name == "extensions" {
                serde_json::from_str(&value)
                    .map_err(|_| Refusal::malformed(format!("the `{name}` parameter is not valid JSON")))?
            } else {
                Json::String(value)
            };
            if map.insert(name.clone(), value).is_some() {
                return Err(Refusal::malformed(format!(
                    "the `{name}` parameter is given more than once"
                )));
            }
        }
        Params::from_map(map)
    }

    fn from_map(mut map: Map<String, Json>) -> Result<Params, Refusal> {
        let query = match map.remove("query") {
            Some(Json::String(q)) => Some(q),
            None | Some(Json::Null) => None,
            Some(_) => return Err(Refusal::malformed("`query` must be a string")),
        };
        let operation_name = match map.remove("operationName") {
            None | Some(Json::Null) => None,
            Some(Json::String(name)) => Some(name),
            Some(_) => return Err(Refusal::malformed("`operationName` must be a string or null")),
        };
        let object = |map: &mut Map<String, Json>, name: &str| match map.remove(name) {
            None | Some(Json::Null) => Ok(None),
            Some(Json::Object(m)) => Ok(Some(m)),
            Some(_) => Err(Refusal::malformed(format!(
                "`{name}` must be a map (a JSON object) or null"
            ))),
        };
        let variables = object(&mut map, "variables")?;
        let extensions = object(&mut map, "extensions")?;
        if query.is_none() && extensions.as_ref().is_none_or(|e| !e.contains_key("persistedQuery")) {
            return Err(Refusal::malformed("the request has no `query`"));
        }
        Ok(Params {
            query,
            operation_name,
            variables,
            extensions,
        })
    }

    pub fn into_request(self) -> async_graphql::Request {
        let mut req = async_graphql::Request::new(self.query.unwrap_or_default());
        if let Some(name) = self.operation_name {
            req = req.operation_name(name);
        }
        if let Some(vars) = self.variables {
            req = req.variables(async_graphql::Variables::from_json(Json::Object(vars)));
        }
        if let Some(ext) = self.extensions {
            req.extensions = async_graphql::Extensions(
                ext.into_iter()
                    .map(|(k, v)| (k, Value::from_json(v).unwrap_or(Value::Null)))
                    .collect(),
            );
        }
        req
    }
}
