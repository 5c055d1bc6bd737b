//! Every error answer is `application/problem+json` with the stable `code` of API.md.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use ticketing::{Error, ErrorCode};

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The stable code of API.md.
    pub code: &'static str,
    /// What happened, for people.
    pub detail: String,
}

#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    detail: &'a str,
    code: &'a str,
}

impl ApiError {
    /// An error answer with this status, code and detail.
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
        }
    }

    /// `400 invalid_request`.
    pub fn invalid(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidRequest.as_str(),
            detail,
        )
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let code = e.code();
        let status =
            StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if code == ErrorCode::Unavailable {
            tracing::warn!(error = ?e, "backing store unavailable");
        }
        if code == ErrorCode::OutcomeUnknown {
            tracing::warn!(error = ?e, "a change's outcome is unknown");
        }
        Self::new(status, code.as_str(), e.to_string())
    }
}

/// The problem+json body for a status, code and detail. A `503` says when to try again
/// (`Retry-After: 1`: it means nothing changed, and the store or the server is expected back
/// soon); a `429` says so itself ([`crate::limit`]).
pub fn problem(status: StatusCode, code: &str, detail: &str) -> Response {
    let body = Problem {
        kind: format!("https://ticketing.invalid/problems/{code}"),
        title: status.canonical_reason().unwrap_or("error"),
        status: status.as_u16(),
        detail,
        code,
    };
    metrics::counter!("ticketing_failures_total", "code" => code.to_owned()).increment(1);
    let mut response = (status, axum::Json(body)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        problem(self.status, self.code, &self.detail)
    }
}

/// The code for an error answer that did not come from a handler (unknown route, wrong method,
/// time-out, ...), so that every error answer has one.
pub fn code_for_status(status: StatusCode) -> &'static str {
    match status {
        StatusCode::NOT_FOUND => ErrorCode::NotFound.as_str(),
        StatusCode::GATEWAY_TIMEOUT => ErrorCode::OutcomeUnknown.as_str(),
        s if s.is_server_error() || s == StatusCode::REQUEST_TIMEOUT => {
            ErrorCode::Unavailable.as_str()
        }
        _ => ErrorCode::InvalidRequest.as_str(),
    }
}
