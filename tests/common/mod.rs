//! Helpers shared by the integration tests.
#![allow(dead_code)]

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
