//! Media types of the GraphQL endpoint: which response type a request's `Accept` asks for, and
//! whether its `Content-Type` is JSON (GraphQL over HTTP, § Media Types).
use axum::http::{HeaderMap, header};

/// The media types a GraphQL response is served as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MediaType {
    /// `application/graphql-response+json`: the status code tells a request error (4xx, no `data`)
    /// from an executed operation (2xx).
    GraphQLResponse,
    /// `application/json`, the legacy type: 200 for every well-formed GraphQL-over-HTTP request.
    Json,
}

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";
const JSON: &str = "application/json";

impl MediaType {
    pub fn content_type(self) -> &'static str {
        match self {
            MediaType::GraphQLResponse => "application/graphql-response+json; charset=utf-8",
            MediaType::Json => "application/json; charset=utf-8",
        }
    }

    fn essence(self) -> &'static str {
        match self {
            MediaType::GraphQLResponse => GRAPHQL_RESPONSE,
            MediaType::Json => JSON,
        }
    }
}

/// The response type for a request's `Accept` header(s), or `None` when it allows neither type
/// (406). No `Accept` (or an empty one) means `application/json`, as the spec asks of servers
/// during the watershed; so do wildcards (`*/*`, `application/*`). `application/graphql-response+json`
/// is chosen when its quality is the higher, or equal and the type is named outright.
pub fn response_type(headers: &HeaderMap) -> Option<MediaType> {
    let mut ranges = String::new();
    for v in headers.get_all(header::ACCEPT) {
        // A header that is not visible ASCII names no type we serve.
        let Ok(v) = v.to_str() else { continue };
        if !ranges.is_empty() {
            ranges.push(',');
        }
        ranges.push_str(v);
    }
    if ranges.trim().is_empty() {
        return Some(MediaType::Json);
    }
    let gr = quality(&ranges, MediaType::GraphQLResponse);
    let json = quality(&ranges, MediaType::Json);
    match (gr, json) {
        (None, None) => None,
        (Some((q, _)), None) if q > 0.0 => Some(MediaType::GraphQLResponse),
        (None, Some((q, _))) if q > 0.0 => Some(MediaType::Json),
        (Some((gq, exact)), Some((jq, _))) if gq > 0.0 || jq > 0.0 => {
            if gq > jq || (gq == jq && exact) {
                Some(MediaType::GraphQLResponse)
            } else {
                Some(MediaType::Json)
            }
        }
        _ => None,
    }
}

/// The quality the ranges give `media` (from the most specific range that matches it) and
/// whether that range names it outright; `None` when no range matches.
fn quality(ranges: &str, media: MediaType) -> Option<(f32, bool)> {
    let essence = media.essence();
    let (ty, _) = essence.split_once('/').expect("a media type has a slash");
    let mut best: Option<(u8, f32)> = None;
    for range in ranges.split(',') {
        let mut parts = range.split(';');
        let name = parts.next().unwrap_or("").trim();
        let specificity = if name.eq_ignore_ascii_case(essence) {
            2
        } else if name.len() == ty.len() + 2 && name[..ty.len()].eq_ignore_ascii_case(ty) && name.ends_with("/*") {
            1
        } else if name == "*/*" {
            0
        } else {
            continue;
        };
        let mut q = 1.0f32;
        for p in parts {
            if let Some((k, v)) = p.split_once('=')
                && k.trim().eq_ignore_ascii_case("q")
            {
                // An unreadable quality makes the range unusable rather than preferred.
                q = v
                    .trim()
                    .parse::<f32>()
                    .ok()
                    .filter(|q| (0.0..=1.0).contains(q))
                    .unwrap_or(0.0);
            }
        }
        match best {
            Some((s, bq)) if s > specificity || (s == specificity && bq >= q) => {}
            _ => best = Some((specificity, q)),
        }
    }
    best.map(|(s, q)| (q, s == 2))
}

/// Whether a POST's `Content-Type` is `application/json` (any case), with no charset or UTF-8.
/// Anything else, or none, is refused (415): this is also what keeps a cross-site form or a
/// "simple" cross-origin request (`text/plain`, form encodings) from reaching a mutation.
pub fn is_json_content_type(headers: &HeaderMap) -> bool {
    let mut values = headers.get_all(header::CONTENT_TYPE).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return false;
    };
    let Ok(value) = value.to_str() else { return false };
    let mut parts = value.split(';');
    if !parts.next().unwrap_or("").trim().eq_ignore_ascii_case(JSON) {
        return false;
    }
    parts.all(|p| match p.split_once('=') {
        Some((k, v)) if k.trim().eq_ignore_ascii_case("charset") => {
            let v = v.trim().trim_matches('"');
            v.eq_ignore_ascii_case("utf-8") || v.eq_ignore_ascii_case("utf8")
        }
        Some(_) => true,
        None => p.trim().is_empty(),
    })
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::MediaType::{GraphQLResponse, Json};
    use super::*;

    fn accept(values: &[&str]) -> Option<MediaType> {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(header::ACCEPT, HeaderValue::from_str(v).unwrap());
        }
        response_type(&h)
    }

    #[test]
    fn accept_picks_the_type_the_client_prefers() {
        assert_eq!(accept(&[]), Some(Json), "no Accept: application/json");
        assert_eq!(accept(&[""]), Some(Json));
        assert_eq!(accept(&["*/*"]), Some(Json));
        assert_eq!(accept(&["application/*"]), Some(Json));
        assert_eq!(accept(&["application/json"]), Some(Json));
        assert_eq!(accept(&["Application/JSON; charset=utf-8"]), Some(Json));
        assert_eq!(accept(&["application/graphql-response+json"]), Some(GraphQLResponse));
        assert_eq!(
            accept(&["application/graphql-response+json, application/json;q=0.9"]),
            Some(GraphQLResponse)
        );
        assert_eq!(
            accept(&["application/graphql-response+json;q=0.5, application/json"]),
            Some(Json)
        );
        assert_eq!(
            accept(&["application/json", "application/graphql-response+json"]),
            Some(GraphQLResponse),
            "equal quality: the named recommended type"
        );
        assert_eq!(accept(&["application/json, */*;q=0.1"]), Some(Json));
        assert_eq!(
            accept(&["application/graphql-response+json, */*"]),
            Some(GraphQLResponse)
        );
        assert_eq!(accept(&["text/html, */*;q=0.8"]), Some(Json), "browsers' default");
    }

    #[test]
    fn accept_without_either_type_is_not_acceptable() {
        assert_eq!(accept(&["text/html"]), None);
        assert_eq!(accept(&["application/xml, text/*"]), None);
        assert_eq!(accept(&["application/json;q=0"]), None);
        assert_eq!(accept(&["*/*;q=0"]), None);
        assert_eq!(
            accept(&["application/json;q=0, */*"]),
            Some(GraphQLResponse),
            "the most specific range rules: JSON refused, the other allowed by */*"
        );
        assert_eq!(
            accept(&["application/json;q=0, application/graphql-response+json"]),
            Some(GraphQLResponse)
        );
        assert_eq!(accept(&["application/json;q=nope"]), None);
    }

    fn content_type(values: &[&str]) -> bool {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(header::CONTENT_TYPE, HeaderValue::from_str(v).unwrap());
        }
        is_json_content_type(&h)
    }

    #[test]
    fn only_json_content_is_read() {
        assert!(content_type(&["application/json"]));
        assert!(content_type(&["application/json; charset=utf-8"]));
        assert!(content_type(&["Application/Json;Charset=\"UTF-8\""]));
        assert!(!content_type(&[]), "no Content-Type");
        assert!(!content_type(&["text/plain"]));
        assert!(!content_type(&["text/plain; charset=utf-8"]));
        assert!(!content_type(&["application/x-www-form-urlencoded"]));
        assert!(!content_type(&["multipart/form-data; boundary=x"]));
        assert!(!content_type(&["application/graphql"]));
        assert!(!content_type(&["application/jsonx"]));
        assert!(!content_type(&["application/json; charset=latin1"]));
        assert!(!content_type(&["application/json", "text/plain"]), "two types");
    }
}
