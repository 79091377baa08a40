//! Where each profile keeps the natural id of one delivery, for [`IdempotencyKey::for_delivery`].

use serde::Deserialize;

use super::IdempotencyKey;
use crate::headers::{HeaderLookup, HeaderValue};
use crate::profile::Profile;
use crate::verify::Verified;

impl IdempotencyKey {
    /// The key that identifies one delivery of one event under `profile`, stable across the
    /// sender's retries, prefixed with the profile name.
    ///
    /// | profile | natural id |
    /// |---|---|
    /// | `proposal-generator`, `stripe` | envelope `id` |
    /// | `tasklink`, `standard-webhooks` | the signed id header |
    /// | `taskon` | `task_id` + `user_id` + `timestamp` |
    /// | `task-hub` | `X-Delivery-ID` |
    /// | `github` | `X-GitHub-Delivery` |
    ///
    /// When the natural id is absent (001's documented examples carry no `id`), the key is the
    /// SHA-256 of the verified body: a sender's retry repeats the body byte for byte.
    pub fn for_delivery(
        profile: Profile,
        verified: &Verified<'_>,
        headers: &(impl HeaderLookup + ?Sized),
    ) -> IdempotencyKey {
        let body = verified.body();
        let owned;
        let natural: Option<&str> = match profile {
            Profile::TaskLink | Profile::StandardWebhooks => verified.id(),
            Profile::TaskHub => header_text(headers, "X-Delivery-ID"),
            Profile::GitHub => header_text(headers, "X-GitHub-Delivery"),
            Profile::TaskOn => {
                owned = peek::<TaskOnKey>(body).and_then(|f| {
                    let parts = [f.task_id?, f.user_id?, f.timestamp?];
                    Some(parts.map(|v| v.to_string()).join(":"))
                });
                owned.as_deref()
            }
            _ => {
                owned = peek::<IdField>(body).and_then(|f| f.id);
                owned.as_deref()
            }
        };
        match natural {
            Some(id) => IdempotencyKey::namespaced(profile.name(), id),
            None => IdempotencyKey::digest(&format!("{}:body", profile.name()), body),
        }
    }
}

fn header_text<'h>(headers: &'h (impl HeaderLookup + ?Sized), name: &str) -> Option<&'h str> {
    match headers.header(name) {
        HeaderValue::One(raw) => std::str::from_utf8(raw)
            .ok()
            .map(str::trim)
            .filter(|id| !id.is_empty()),
        _ => None,
    }
}

fn peek<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Option<T> {
    serde_json::from_slice(body).ok()
}

#[derive(Deserialize)]
struct IdField {
    id: Option<String>,
}

#[derive(Deserialize)]
struct TaskOnKey {
    task_id: Option<serde_json::Number>,
    user_id: Option<serde_json::Number>,
    timestamp: Option<serde_json::Number>,
}
