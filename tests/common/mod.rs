//! Helpers shared by the integration tests.
#![allow(dead_code)]

use hookrelay::receive::{Claim, IdempotencyKey, IdempotencyStore, Retention, StoreError};
use hookrelay::scheme::{
    ApiKey, CanonicalJson, IdBody, KeyOrder, RawBody, Scheme, StandardWebhooks, Stripe, XHub,
};
use hookrelay::{FixedClock, Secret, Timestamp, Verifier};

/// The scheme registered under a CLI name, with TaskOn's API key where needed.
pub fn scheme(name: &str, api_key: Option<&str>, key_order: Option<&str>) -> Box<dyn Scheme> {
    match name {
        "raw-body" => Box::new(RawBody),
        "id-body" => Box::new(IdBody),
        "canonical-json" => {
            let order = match key_order {
                Some("node-example") => KeyOrder::NodeExample,
                _ => KeyOrder::Sorted,
            };
            let key = ApiKey::new(api_key.expect("canonical-json needs an api key")).unwrap();
            Box::new(CanonicalJson::new(key).key_order(order))
        }
        "x-hub" => Box::new(XHub::new()),
        "github" => Box::new(XHub::github()),
        "standard-webhooks" => Box::new(StandardWebhooks::new()),
        "stripe" => Box::new(Stripe),
        other => panic!("unknown scheme {other}"),
    }
}

/// A secret read the way the scheme's senders write it.
pub fn secret(scheme: &str, text: &str) -> Secret {
    match scheme {
        "standard-webhooks" => Secret::from_base64(text).unwrap(),
        _ => Secret::from_raw(text).unwrap(),
    }
}

/// A verifier at a fixed time with one secret.
pub fn verifier(scheme: Box<dyn Scheme>, secret: Secret, now: i64) -> Verifier {
    Verifier::builder(scheme)
        .secret(secret)
        .clock(FixedClock(Timestamp::from_unix(now)))
        .build()
        .unwrap()
}

/// Owned `(name, value)` header pairs.
pub fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Owned pairs from a scheme's signed headers.
pub fn signed_pairs(signed: &hookrelay::SignedHeaders) -> Vec<(String, String)> {
    signed
        .iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// A case from tests/vectors/schemes.json (signatures computed by Python's hmac): its
/// headers, body and the whole case.
pub fn vector(name: &str) -> (Vec<(String, String)>, Vec<u8>, serde_json::Value) {
    let case = vector_cases("schemes.json")
        .into_iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no vector named {name}"));
    let headers = case["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h[0].as_str().unwrap().to_owned(),
                h[1].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let body = hex::decode(case["body_hex"].as_str().unwrap()).unwrap();
    (headers, body, case)
}

/// A whole delivery from tests/vectors/schemes.json: the signature headers (Python hmac)
/// followed by the case's `extra_headers` (event type, delivery id, … as the sender sends
/// them), the body and the case.
pub fn delivery(name: &str) -> (Vec<(String, String)>, Vec<u8>, serde_json::Value) {
    let (mut headers, body, case) = vector(name);
    for pair in case["extra_headers"].as_array().unwrap() {
        headers.push((
            pair[0].as_str().unwrap().to_owned(),
            pair[1].as_str().unwrap().to_owned(),
        ));
    }
    (headers, body, case)
}

/// All cases of one vector file in tests/vectors.
pub fn vector_cases(file: &str) -> Vec<serde_json::Value> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors")
        .join(file);
    let parsed: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    parsed["cases"].as_array().unwrap().clone()
}

/// An idempotency store whose database went away: `claim` succeeds only when `claims` is set
/// (the database failed mid-request), `complete` and `release` always fail.
#[derive(Debug)]
pub struct UnreachableStore {
    pub claims: bool,
}

/// What [`UnreachableStore`] answers when it fails.
pub const UNREACHABLE: &str = "database unreachable";

impl IdempotencyStore for UnreachableStore {
    async fn claim(
        &self,
        _: &IdempotencyKey,
        _: Timestamp,
        _: Retention,
    ) -> Result<Claim, StoreError> {
        match self.claims {
            true => Ok(Claim::Acquired),
            false => Err(StoreError::retryable(UNREACHABLE)),
        }
    }

    async fn complete(
        &self,
        _: &IdempotencyKey,
        _: Timestamp,
        _: Retention,
    ) -> Result<(), StoreError> {
        Err(StoreError::retryable(UNREACHABLE))
    }

    async fn release(&self, _: &IdempotencyKey) -> Result<(), StoreError> {
        Err(StoreError::retryable(UNREACHABLE))
    }
}
