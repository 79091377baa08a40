//! Turning a verified body into the type a handler wants.

use bytes::Bytes;
use serde::de::DeserializeOwned;

/// A type a verified webhook body can be parsed into.
///
/// Implemented for [`serde_json::Value`], raw [`Bytes`], [`Json<T>`] for any
/// `DeserializeOwned` type of yours.
pub trait WebhookPayload: Sized {
    /// Parses the body; the error text is logged, never sent back.
    fn from_body(body: &Bytes) -> Result<Self, String>;
}

impl WebhookPayload for serde_json::Value {
    fn from_body(body: &Bytes) -> Result<Self, String> {
        serde_json::from_slice(body).map_err(|err| err.to_string())
    }
}

impl WebhookPayload for Bytes {
    fn from_body(body: &Bytes) -> Result<Self, String> {
        Ok(body.clone())
    }
}

/// Your own type, parsed from the JSON body with serde.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Json<T>(pub T);

impl<T: DeserializeOwned> WebhookPayload for Json<T> {
    fn from_body(body: &Bytes) -> Result<Self, String> {
        serde_json::from_slice(body)
            .map(Json)
            .map_err(|err| err.to_string())
    }
}
