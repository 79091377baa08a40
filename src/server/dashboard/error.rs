//! Why a page could not be shown: a small HTML page with a 4xx or 5xx status (never a panic;
//! never the store's own words).

use axum::response::{IntoResponse, Response};
use http::StatusCode;

use super::html::{esc, html_response, layout};
use crate::StoreError;
use crate::send::{AdminError, PublishError};

/// A page that failed.
#[derive(Debug)]
pub(crate) enum PageError {
    /// No such thing, or not the viewer's (404 either way).
    NotFound(&'static str),
    /// The form or query was wrong; the message says how.
    BadRequest(String),
    /// A state-changing form without its session's CSRF token.
    Forbidden,
    /// Operators only.
    OperatorsOnly,
    /// The store failed or no randomness was available.
    Unavailable,
}

impl From<StoreError> for PageError {
    fn from(e: StoreError) -> Self {
        if e.is_not_found() {
            Self::NotFound("that")
        } else if e.is_invalid_input() {
            Self::BadRequest("the request does not fit this listing".to_owned())
        } else {
            Self::Unavailable
        }
    }
}

impl From<AdminError> for PageError {
    fn from(e: AdminError) -> Self {
        match e {
            AdminError::NotFound => Self::NotFound("endpoint"),
            AdminError::Store(e) => e.into(),
            AdminError::Invalid(why) => Self::BadRequest(format!("the endpoint is invalid: {why}")),
            AdminError::NoRandomness => Self::Unavailable,
            other => Self::BadRequest(other.to_string()),
        }
    }
}

impl From<PublishError> for PageError {
    fn from(e: PublishError) -> Self {
        match e {
            PublishError::Store(e) => e.into(),
            other => Self::BadRequest(other.to_string()),
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, title, detail) = match self {
            Self::NotFound(what) => (
                StatusCode::NOT_FOUND,
                "Not found",
                format!("No such {what}."),
            ),
            Self::BadRequest(detail) => (StatusCode::BAD_REQUEST, "Bad request", detail),
            Self::Forbidden => (
                StatusCode::FORBIDDEN,
                "Forbidden",
                "The form's CSRF token is missing or stale: reload the page and try again."
                    .to_owned(),
            ),
            Self::OperatorsOnly => (
                StatusCode::FORBIDDEN,
                "Forbidden",
                "Only operators may do this.".to_owned(),
            ),
            Self::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Unavailable",
                "The delivery store did not answer; try again.".to_owned(),
            ),
        };
        let html = format!(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <title>{title}</title></head><body><main><h1>{title}</h1><p class=\"error\">{}</p>\
             </main></body></html>",
            esc(&detail)
        );
        let mut response = html_response(status, html);
        // The router's layer renders it again inside the shell (it knows the base path).
        response
            .extensions_mut()
            .insert(ErrorPage { title, detail });
        response
    }
}

/// A failed page's words, for the router's layer to put in the shell.
#[derive(Debug, Clone)]
pub(crate) struct ErrorPage {
    pub(crate) title: &'static str,
    pub(crate) detail: String,
}

impl ErrorPage {
    /// The page in the shell (without navigation: the visitor may have no session).
    pub(crate) fn render(&self, base: &str) -> String {
        let body = format!(
            "<p class=\"error\" role=\"alert\">{}</p><p><a href=\"{}/endpoints\">Back to the dashboard</a></p>",
            esc(&self.detail),
            esc(base)
        );
        layout(base, None, self.title, &body)
    }
}

/// Unknown dashboard routes.
pub(crate) async fn not_found() -> PageError {
    PageError::NotFound("page")
}
