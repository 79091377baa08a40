//! Path parameters that do not decode (an id percent-encoding bytes that are not UTF-8)
//! answer 404 as problem+json: no id can be such text. Without this layer the handlers'
//! `Path` extractor would answer axum's plain-text 400.

use axum::extract::{FromRequestParts as _, Path, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::problem::Problem;

/// The layer: refuses a request whose path parameters do not decode, before any handler.
pub(crate) async fn layer(request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    if Path::<Vec<(String, String)>>::from_request_parts(&mut parts, &())
        .await
        .is_err()
    {
        return Problem::not_found("resource").into_response();
    }
    next.run(Request::from_parts(parts, body)).await
}
