//! Reading requests (JSON bodies, query strings) and writing JSON replies, with every
//! failure a [`Problem`] naming the field.

use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::problem::{Problem, from_json_error};
use crate::send::{Cursor, PageLimit};

/// A JSON body; an empty one or `null` reads as `{}` when `empty_is_object` (routes whose
/// fields are all optional).
pub(crate) fn json_body<T: DeserializeOwned>(
    body: Result<Bytes, BytesRejection>,
    empty_is_object: bool,
) -> Result<T, Problem> {
    let bytes = body.map_err(|rejection| {
        let status = rejection.status();
        let detail = if status == StatusCode::PAYLOAD_TOO_LARGE {
            format!("the body is over {} bytes", super::MAX_BODY)
        } else {
            "the body could not be read".to_owned()
        };
        Problem::new(status, detail)
    })?;
    let blank = bytes.iter().all(u8::is_ascii_whitespace) || bytes.trim_ascii() == b"null";
    let bytes: &[u8] = if blank && empty_is_object {
        b"{}"
    } else {
        &bytes
    };
    // Every body is an object; serde would read a struct from an array too.
    if bytes.trim_ascii_start().first() != Some(&b'{') {
        return Err(
            match serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
                Ok(_) => Problem::invalid(".", "the body is a JSON object"),
                Err(e) => from_json_error(String::new(), &e),
            },
        );
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        from_json_error(path, e.inner())
    })?;
    de.end().map_err(|e| from_json_error(String::new(), &e))?;
    Ok(value)
}

/// An optional whole number that JSON may write as `272` or `272.0` (JSON Schema's
/// `integer` admits both).
pub(crate) fn whole_number<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<u64>, D::Error> {
    use serde::Deserialize;
    use serde::de::Error;
    let Some(number) = Option::<serde_json::Number>::deserialize(deserializer)? else {
        return Ok(None);
    };
    if let Some(n) = number.as_u64() {
        return Ok(Some(n));
    }
    match number.as_f64() {
        Some(f) if f >= 0.0 && f.fract() == 0.0 && f < u64::MAX as f64 => Ok(Some(f as u64)),
        _ => Err(D::Error::custom(format!(
            "invalid value: {number}, expected a whole number from 0"
        ))),
    }
}

/// The pairs of a query string, decoded.
pub(crate) fn query_pairs(raw: Option<&str>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(raw.unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

/// A JSON reply.
pub(crate) fn json_reply(status: StatusCode, value: &impl Serialize) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => {
            let mut response = Response::new(Body::from(body));
            *response.status_mut() = status;
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
        }
        Err(_) => {
            Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "the reply failed").into_response()
        }
    }
}

/// The `limit` query parameter.
pub(crate) fn limit(value: &str) -> Result<PageLimit, Problem> {
    value
        .parse()
        .ok()
        .and_then(|n| PageLimit::new(n).ok())
        .ok_or_else(|| {
            let max = PageLimit::MAX.get();
            Problem::bad_request("limit", format!("a number from 1 to {max}"))
        })
}

/// The `cursor` query parameter.
pub(crate) fn cursor(value: &str) -> Result<Cursor, Problem> {
    value
        .parse()
        .map_err(|_| Problem::bad_request("cursor", "not a cursor this listing gave"))
}
