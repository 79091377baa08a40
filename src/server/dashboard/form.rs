//! Reading `application/x-www-form-urlencoded` bodies and query strings.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;

use super::error::PageError;
use super::session::Viewer;

/// A form's (or a query string's) fields, in order.
#[derive(Debug, Default)]
pub(crate) struct Fields(Vec<(String, String)>);

impl Fields {
    /// The fields of a query string.
    pub(crate) fn query(raw: Option<&str>) -> Self {
        Self::parse(raw.unwrap_or("").as_bytes())
    }

    fn parse(bytes: &[u8]) -> Self {
        Self(url::form_urlencoded::parse(bytes).into_owned().collect())
    }

    /// A posted form's fields.
    pub(crate) fn body(body: Result<Bytes, BytesRejection>) -> Result<Self, PageError> {
        let bytes = body.map_err(|_| PageError::BadRequest("the form could not be read".into()))?;
        Ok(Self::parse(&bytes))
    }

    /// A posted form's fields, once its CSRF token is the viewer's.
    pub(crate) fn checked(
        body: Result<Bytes, BytesRejection>,
        viewer: &Viewer,
    ) -> Result<Self, PageError> {
        let fields = Self::body(body)?;
        if !viewer.csrf_ok(fields.get("csrf")) {
            return Err(PageError::Forbidden);
        }
        Ok(fields)
    }

    /// The first value of `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first value of `name`, trimmed, when not empty.
    pub(crate) fn text(&self, name: &str) -> Option<&str> {
        self.get(name).map(str::trim).filter(|v| !v.is_empty())
    }
}
