//! An answer given before an operation ran (refused at the edge): an HTTP status and one
//! GraphQL error with its code.
use std::borrow::Cow;

use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value as Json;

use super::negotiate::MediaType;

/// An answer given before anything ran: an HTTP status and one GraphQL error, no `data`.
pub(super) struct Refusal {
    status: StatusCode,
    code: &'static str,
    message: Cow<'static, str>,
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl Refusal {
    pub(super) fn new(status: StatusCode, code: &'static str, message: impl Into<Cow<'static, str>>) -> Refusal {
        Refusal {
            status,
            code,
            message: message.into(),
            headers: Vec::new(),
        }
    }

    /// Not a well-formed GraphQL-over-HTTP request: 400 whatever the media type.
    pub(super) fn malformed(message: impl Into<Cow<'static, str>>) -> Refusal {
        Refusal::new(StatusCode::BAD_REQUEST, "BAD_USER_INPUT", message)
    }

    pub(super) fn header(self, name: HeaderName, value: &'static str) -> Refusal {
        self.header_value(name, HeaderValue::from_static(value))
    }

    pub(super) fn header_value(mut self, name: HeaderName, value: HeaderValue) -> Refusal {
        self.headers.push((name, value));
        self
    }

    pub(super) fn into_response(self, media: MediaType) -> Response {
        // `message` before `extensions`, as async-graphql writes an error.
        let body = format!(
            r#"{{"errors":[{{"message":{},"extensions":{{"code":{}}}}}]}}"#,
            Json::String(self.message.into_owned()),
            Json::String(self.code.to_owned())
        );
        let mut resp = (self.status, body).into_response();
        let headers = resp.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(media.content_type()));
        headers.extend(self.headers);
        resp
    }
}
