//! Every error the management API answers, as `application/problem+json` (RFC 9457), and
//! the one place where administration and store errors become HTTP statuses.

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde::Serialize;

use crate::StoreError;
use crate::send::{AdminError, EndpointError, PublishError};

/// The media type of every error reply.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// One field a request got wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// The field, as a JSON path from the body's root (`url`, `events[1]`) or a query
    /// parameter's name.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

/// An RFC 9457 problem: `{type, title, status, detail}`, and `errors` naming each field for
/// a validation failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// `about:blank`: the status says what happened.
    #[serde(rename = "type")]
    kind: &'static str,
    title: &'static str,
    status: u16,
    detail: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    errors: Vec<FieldError>,
}

impl Problem {
    /// A problem with this status (its reason phrase is the title).
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            kind: "about:blank",
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            detail: detail.into(),
            errors: Vec::new(),
        }
    }

    /// 422 naming one field.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        let message = message.into();
        let mut problem = Self::new(StatusCode::UNPROCESSABLE_ENTITY, message.clone());
        problem.errors.push(FieldError {
            field: field.into(),
            message,
        });
        problem
    }

    /// 400 naming one field (a query parameter that does not parse, a malformed cursor).
    pub fn bad_request(field: impl Into<String>, message: impl Into<String>) -> Self {
        let mut problem = Self::invalid(field, message);
        problem.status = StatusCode::BAD_REQUEST.as_u16();
        problem.title = "Bad Request";
        problem
    }

    /// 401: no credentials, or ones nobody holds.
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "send Authorization: Bearer with a valid token",
        )
    }

    /// 404 for an id that does not exist or is not the caller's (the same answer for both).
    pub fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, format!("no such {what}"))
    }

    /// 403 for what only an admin may do.
    pub fn admin_only() -> Self {
        Self::new(StatusCode::FORBIDDEN, "only an admin may do this")
    }

    /// The same problem under another title (the status's reason phrase by default).
    pub(crate) fn with_title(mut self, title: &'static str) -> Self {
        self.title = title;
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// The fields named.
    pub fn errors(&self) -> &[FieldError] {
        &self.errors
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = Response::new(Body::from(body));
        *response.status_mut() = self.status();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if self.status == 401 {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<StoreError> for Problem {
    fn from(e: StoreError) -> Self {
        if e.is_not_found() {
            Self::not_found("resource")
        } else if e.is_invalid_input() {
            Self::bad_request("cursor", "the cursor is not one this listing gave")
        } else if e.is_conflict() {
            Self::new(
                StatusCode::CONFLICT,
                "the change conflicts with stored data",
            )
        } else if e.is_retryable() {
            Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the store is unavailable; try again",
            )
        } else {
            Self::new(StatusCode::INTERNAL_SERVER_ERROR, "the store failed")
        }
    }
}

impl From<AdminError> for Problem {
    fn from(e: AdminError) -> Self {
        match e {
            AdminError::NotFound => Self::not_found("webhook"),
            AdminError::KeyTaken => Self::new(StatusCode::CONFLICT, e.to_string()),
            AdminError::Invalid(why) => endpoint_invalid(&why),
            AdminError::UrlRefused(_) => Self::invalid("url", e.to_string()),
            AdminError::GraceTooLong => Self::invalid("grace_period_seconds", e.to_string()),
            AdminError::Unverified => Self::new(StatusCode::CONFLICT, e.to_string()),
            AdminError::Store(store) => store.into(),
            _ => Self::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        }
    }
}

impl From<PublishError> for Problem {
    fn from(e: PublishError) -> Self {
        match e {
            PublishError::Store(store) => store.into(),
            PublishError::Unsendable(_) => Self::invalid("type", e.to_string()),
            _ => Self::invalid("data", e.to_string()),
        }
    }
}

/// 422 naming the field an endpoint's settings got wrong.
pub(crate) fn endpoint_invalid(e: &EndpointError) -> Problem {
    let field = match e {
        EndpointError::InvalidUrl
        | EndpointError::UnsupportedScheme
        | EndpointError::CredentialsInUrl => "url",
        EndpointError::NoSecret => "secret",
        EndpointError::InvalidHeader(_) | EndpointError::ReservedHeader(_) => "headers",
        _ => "profile",
    };
    Problem::invalid(field, e.to_string())
}

/// A body that does not parse: 400 when it is not JSON, 422 naming the field when a value
/// has the wrong type or a required field is missing.
pub(crate) fn from_json_error(path: String, e: &serde_json::Error) -> Problem {
    use serde_json::error::Category;
    match e.classify() {
        Category::Data => {
            let message = e.to_string();
            let missing = message
                .strip_prefix("missing field `")
                .and_then(|rest| rest.split('`').next());
            let field = match (missing, path.as_str()) {
                (Some(name), "." | "") => name.to_owned(),
                (Some(name), parent) => format!("{parent}.{name}"),
                (None, _) => path,
            };
            Problem::invalid(field, strip_position(&message))
        }
        _ => Problem::new(
            StatusCode::BAD_REQUEST,
            format!(
                "the body is not valid JSON: {}",
                strip_position(&e.to_string())
            ),
        ),
    }
}

/// serde_json's message without its " at line 1 column 9" tail.
fn strip_position(message: &str) -> String {
    message
        .rsplit_once(" at line ")
        .map_or(message, |(head, _)| head)
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_errors_become_statuses_in_one_place() {
        let status = |e: AdminError| Problem::from(e).status().as_u16();
        assert_eq!(status(AdminError::NotFound), 404);
        assert_eq!(status(AdminError::KeyTaken), 409);
        assert_eq!(status(AdminError::GraceTooLong), 422);
        assert_eq!(status(AdminError::Invalid(EndpointError::InvalidUrl)), 422);
        let retryable = StoreError::retryable(std::io::Error::other("down"));
        assert_eq!(status(AdminError::Store(retryable)), 503);
        assert_eq!(
            Problem::from(StoreError::invalid_input("cursor"))
                .status()
                .as_u16(),
            400
        );
        let url = Problem::from(AdminError::Invalid(EndpointError::UnsupportedScheme));
        assert_eq!(url.errors()[0].field, "url");
    }
}
