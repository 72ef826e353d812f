//! GraphiQL at `/`, fully offline: our page, and GraphiQL, React and ReactDOM as vendored in
//! `assets/graphiql` (see its README), embedded in the binary and served under `/graphiql/`.
use std::sync::LazyLock;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
/// An asset's URL changes with its content, so a browser may keep it for good.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// One file of `assets/graphiql`, and its gzip copy for the large ones.
struct Asset {
    file: &'static str,
    content_type: &'static str,
    body: &'static [u8],
    gzip: Option<&'static [u8]>,
}

macro_rules! asset {
    ($file:literal, $type:expr) => {
        Asset {
            file: $file,
            content_type: $type,
            body: include_bytes!(concat!("../../assets/graphiql/", $file)),
            gzip: None,
        }
    };
    ($file:literal, $type:expr, gzip) => {
        Asset {
            file: $file,
            content_type: $type,
            body: include_bytes!(concat!("../../assets/graphiql/", $file)),
            gzip: Some(include_bytes!(concat!("../../assets/graphiql/", $file, ".gz"))),
        }
    };
}

/// In the order the page loads them.
static ASSETS: [Asset; 6] = [
    asset!("graphiql.min.css", CSS, gzip),
    asset!("dispatchd-graphiql.css", CSS),
    asset!("react.production.min.js", JS, gzip),
    asset!("react-dom.production.min.js", JS, gzip),
    asset!("graphiql.min.js", JS, gzip),
    asset!("dispatchd-graphiql.js", JS),
];

/// Each asset's path, in the order of `ASSETS`: `/graphiql/<hash of its content>/<file>`.
static PATHS: LazyLock<Vec<String>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|a| format!("/graphiql/{:016x}/{}", fnv1a(a.body), a.file))
        .collect()
});

/// The routes GraphiQL needs: its page at `/`, its assets under `/graphiql/`.
pub(super) fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    ASSETS
        .iter()
        .zip(PATHS.iter())
        .fold(Router::new().route("/", get(page)), |router, (asset, path)| {
            router.route(
                path,
                get(move |headers: HeaderMap| async move { asset.respond(&headers) }),
            )
        })
}

impl Asset {
    fn respond(&self, request: &HeaderMap) -> Response {
        let gzip = self.gzip.filter(|_| accepts_gzip(request));
        let mut resp = Response::new(Body::from(gzip.unwrap_or(self.body)));
        let headers = resp.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(self.content_type));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(IMMUTABLE));
        headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        if self.gzip.is_some() {
            headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        }
        if gzip.is_some() {
            headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        resp
    }
}

/// The page: local assets only, and a CSP that lets it load nothing else. Inline scripts are
/// refused; inline styles only with this answer's nonce (GraphiQL's dialogs insert a `<style>`).
async fn page(request: HeaderMap) -> Response {
    let nonce = format!("{:032x}", rand::random::<u128>());
    let csp = content_security_policy(&nonce, request.get(header::HOST));
    let headers = [
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        ),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_str(&csp).unwrap_or(HeaderValue::from_static("default-src 'none'")),
        ),
        (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
    ];
    (headers, html(&nonce)).into_response()
}

fn html(nonce: &str) -> String {
    let stylesheets: String = ASSETS
        .iter()
        .zip(PATHS.iter())
        .filter(|(a, _)| a.content_type == CSS)
        .map(|(_, path)| format!("<link rel=\"stylesheet\" href=\"{path}\">\n"))
        .collect();
    let scripts: String = ASSETS
        .iter()
        .zip(PATHS.iter())
        .filter(|(a, _)| a.content_type == JS)
        .map(|(_, path)| format!("<script src=\"{path}\"></script>\n"))
        .collect();
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="csp-nonce" content="{nonce}">
<title>dispatchd · GraphiQL</title>
<link rel="icon" href="data:,">
{stylesheets}</head>
<body>
<div id="graphiql" data-endpoint="/graphql" data-subscription-endpoint="/graphql/ws">Loading GraphiQL…</div>
<noscript>GraphiQL needs JavaScript.</noscript>
{scripts}</body>
</html>
"#
    )
}

/// Only this server: scripts from its files, styles from its files or with the nonce, fonts and
/// images from its files or `data:` (GraphiQL's stylesheet embeds its fonts and icons), requests to
/// `/graphql` and the WebSocket on the page's host. `'self'` covers `ws:`/`wss:` of the same host
/// in CSP level 3; the host is also named for browsers that predate it (when it is a plain
/// `host[:port]`, so that no header can add a directive).
fn content_security_policy(nonce: &str, host: Option<&HeaderValue>) -> String {
    let host = host.and_then(|h| h.to_str().ok()).filter(|h| {
        !h.is_empty()
            && h.len() <= 255
            && h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
    });
    let connect = match host {
        Some(h) => format!("'self' ws://{h} wss://{h}"),
        None => "'self'".to_owned(),
    };
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self' 'nonce-{nonce}'; \
         img-src 'self' data:; font-src 'self' data:; connect-src {connect}; \
         base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
}

/// Whether the client takes gzip (`Accept-Encoding`: `gzip` or `*`, without `q=0`).
fn accepts_gzip(request: &HeaderMap) -> bool {
    let (mut gzip, mut any) = (None, None);
    for item in request
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
    {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or("").trim();
        let accepted = parts
            .filter_map(|p| p.trim().strip_prefix("q=").or_else(|| p.trim().strip_prefix("Q=")))
            .all(|q| q.trim().parse::<f32>().map_or(true, |q| q > 0.0));
        if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
            gzip = Some(accepted);
        } else if coding == "*" {
            any = Some(accepted);
        }
    }
    gzip.or(any).unwrap_or(false)
}

/// FNV-1a, 64 bits: a fingerprint for asset URLs (not a security measure).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt;

    async fn get(path: &str, headers: &[(&str, &str)]) -> (StatusCode, HeaderMap, Vec<u8>) {
        let mut req = Request::get(path);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let resp = router::<()>().oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
        let (parts, body) = resp.into_parts();
        let body = axum::body::to_bytes(body, usize::MAX).await.unwrap().to_vec();
        (parts.status, parts.headers, body)
    }

    /// The values of every `src="…"` and `href="…"` of a page.
    fn references(page: &str) -> Vec<String> {
        ["src=\"", "href=\""]
            .iter()
            .flat_map(|attr| page.split(attr).skip(1))
            .map(|rest| rest.split('"').next().unwrap().to_owned())
            .collect()
    }

    #[tokio::test]
    async fn the_page_loads_only_local_assets_and_each_answers() {
        let (status, headers, body) = get("/", &[("host", "127.0.0.1:8080")]).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
        let page = String::from_utf8(body).unwrap();
        assert!(
            !page.contains("http://") && !page.contains("https://"),
            "no URL to another host: {page}"
        );
        assert!(page.contains("data-subscription-endpoint=\"/graphql/ws\""), "{page}");

        let refs = references(&page);
        let local: Vec<&String> = refs.iter().filter(|r| r.as_str() != "data:,").collect();
        assert_eq!(local.len(), ASSETS.len(), "every asset, nothing else: {refs:?}");
        for r in local {
            assert!(r.starts_with("/graphiql/"), "{r}");
            let (status, headers, body) = get(r, &[]).await;
            assert_eq!(status, StatusCode::OK, "{r}");
            let expected = if r.ends_with(".js") { JS } else { CSS };
            assert_eq!(headers[header::CONTENT_TYPE], expected, "{r}");
            assert_eq!(headers[header::CACHE_CONTROL], IMMUTABLE, "{r}");
            assert!(headers.get(header::CONTENT_ENCODING).is_none(), "{r}");
            assert!(!body.is_empty(), "{r}");
        }
        // React first, then ReactDOM, GraphiQL, and our script, which uses all three.
        let order: Vec<&str> = references(&page)
            .iter()
            .filter(|r| r.ends_with(".js"))
            .map(|r| {
                ASSETS
                    .iter()
                    .find(|a| r.ends_with(&format!("/{}", a.file)))
                    .unwrap()
                    .file
            })
            .collect();
        assert_eq!(
            order,
            [
                "react.production.min.js",
                "react-dom.production.min.js",
                "graphiql.min.js",
                "dispatchd-graphiql.js"
            ]
        );
    }

    #[tokio::test]
    async fn the_csp_allows_only_this_server_and_the_pages_nonce() {
        let (_, headers, body) = get("/", &[("host", "localhost:8080")]).await;
        let page = String::from_utf8(body).unwrap();
        let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap().to_owned();
        let nonce = page
            .split("<meta name=\"csp-nonce\" content=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap();
        assert_eq!(nonce.len(), 32);
        assert!(csp.contains(&format!("style-src 'self' 'nonce-{nonce}';")), "{csp}");
        assert!(csp.starts_with("default-src 'none'; script-src 'self';"), "{csp}");
        assert!(
            csp.contains("connect-src 'self' ws://localhost:8080 wss://localhost:8080;"),
            "{csp}"
        );
        assert_eq!(headers[header::CACHE_CONTROL], "no-cache");

        // A fresh nonce for every answer.
        let (_, again, _) = get("/", &[]).await;
        assert_ne!(
            again[header::CONTENT_SECURITY_POLICY],
            headers[header::CONTENT_SECURITY_POLICY]
        );
        // No host (or one that is not a plain host[:port]): 'self' alone, nothing added.
        assert!(
            again[header::CONTENT_SECURITY_POLICY]
                .to_str()
                .unwrap()
                .contains("connect-src 'self';")
        );
        let (_, odd, _) = get("/", &[("host", "a; script-src *")]).await;
        let odd = odd[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(odd.contains("connect-src 'self';") && !odd.contains('*'), "{odd}");
    }

    #[tokio::test]
    async fn large_assets_are_gzipped_for_clients_that_accept_it() {
        let path = &PATHS[ASSETS.iter().position(|a| a.file == "graphiql.min.js").unwrap()];
        let asset = ASSETS.iter().find(|a| a.file == "graphiql.min.js").unwrap();
        let (_, headers, body) = get(path, &[("accept-encoding", "gzip, deflate, br")]).await;
        assert_eq!(headers[header::CONTENT_ENCODING], "gzip");
        assert_eq!(headers[header::VARY], "accept-encoding");
        assert_eq!(headers[header::CONTENT_TYPE], JS);
        assert_eq!(body, asset.gzip.unwrap());
        for refused in ["gzip;q=0", "br", "identity", "gzip; q=0.0, *"] {
            let (_, headers, body) = get(path, &[("accept-encoding", refused)]).await;
            assert!(headers.get(header::CONTENT_ENCODING).is_none(), "{refused}");
            assert_eq!(body, asset.body, "{refused}");
        }
        let (_, headers, _) = get(path, &[("accept-encoding", "*")]).await;
        assert_eq!(headers[header::CONTENT_ENCODING], "gzip");
    }

    /// A refresh that forgot the gzip copies (or edited a file by hand) would serve stale code to
    /// browsers: each copy's trailer (CRC-32 and length of what it decompresses to) must match.
    #[test]
    fn gzip_copies_match_their_files() {
        fn crc32(bytes: &[u8]) -> u32 {
            !bytes.iter().fold(!0u32, |crc, &b| {
                (0..8).fold(crc ^ u32::from(b), |c, _| {
                    (c >> 1) ^ (0xedb8_8320 & (c & 1).wrapping_neg())
                })
            })
        }
        for asset in ASSETS.iter().filter(|a| a.gzip.is_some()) {
            let gz = asset.gzip.unwrap();
            assert_eq!(&gz[..2], [0x1f, 0x8b], "{}: not gzip", asset.file);
            let trailer = &gz[gz.len() - 8..];
            let crc = u32::from_le_bytes(trailer[..4].try_into().unwrap());
            let len = u32::from_le_bytes(trailer[4..].try_into().unwrap());
            assert_eq!(
                len,
                asset.body.len() as u32,
                "{}.gz: run assets/graphiql/refresh.sh",
                asset.file
            );
            assert_eq!(
                crc,
                crc32(asset.body),
                "{}.gz: run assets/graphiql/refresh.sh",
                asset.file
            );
        }
    }

    #[test]
    fn asset_urls_change_with_their_content() {
        assert_ne!(fnv1a(b"react 18.3.1"), fnv1a(b"react 18.3.2"));
        let unique: std::collections::HashSet<&String> = PATHS.iter().collect();
        assert_eq!(unique.len(), ASSETS.len());
    }
}
