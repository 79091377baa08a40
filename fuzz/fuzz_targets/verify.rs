//! Structured fuzzing of the verifier and of sign → verify round trips.
//!
//! Part 1 (hostile request): a scheme index, several `(name, value bytes)` headers drawn
//! mostly from the names the schemes read, a body and a "now"; the verifier (fixed secret)
//! must return a `VerifyError`, never panic and never accept (the fuzzer does not know the
//! secret).
//!
//! Part 2 (round trip): the fuzzed body, id and signing timestamp are signed under every
//! scheme (HMAC, plus Standard Webhooks `v1a` with a fixed Ed25519 key). Whenever signing
//! succeeds:
//! - signing must have succeeded exactly when the inputs were signable (id rules, timestamp
//!   before the epoch);
//! - our own verifier must accept the signed request, through `(name, value)` pairs and
//!   through an `http::HeaderMap`, with unrelated fuzzed headers added, exactly when the
//!   timestamp lies within the ±300 s tolerance (schemes that sign one);
//! - the reported id, timestamp and coverage must be the signed ones;
//! - with one body byte flipped, schemes covering the whole body must reject.
#![no_main]

use arbitrary::Arbitrary;
use hookrelay::scheme::{
    ApiKey, CanonicalJson, Ed25519SigningKey, IdBody, KeyOrder, Message, RawBody, Scheme,
    StandardWebhooks, Stripe, XHub,
};
use hookrelay::{FixedClock, Secret, SignedHeaders, Timestamp, Verifier, VerifyError};
use libfuzzer_sys::fuzz_target;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const OTHER_SECRET: &str = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const SEED: &str = "whsk_AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=";
const API_KEY: &str = "fuzz-api-key";
const TOLERANCE_SECS: i64 = 300;

#[derive(Debug, Arbitrary)]
enum Name {
    StripeSignature,
    WebhookSignature,
    WebhookId,
    WebhookTimestamp,
    SvixSignature,
    SvixId,
    SvixTimestamp,
    XHubSignature,
    XHubSignature256,
    XWebhookSignature,
    XWebhookId,
    XSignature,
    XApiKey,
    Other(String),
}

impl Name {
    fn text(&self) -> &str {
        match self {
            Self::StripeSignature => "Stripe-Signature",
            Self::WebhookSignature => "webhook-signature",
            Self::WebhookId => "webhook-id",
            Self::WebhookTimestamp => "webhook-timestamp",
            Self::SvixSignature => "svix-signature",
            Self::SvixId => "svix-id",
            Self::SvixTimestamp => "svix-timestamp",
            Self::XHubSignature => "X-Hub-Signature",
            Self::XHubSignature256 => "X-Hub-Signature-256",
            Self::XWebhookSignature => "X-Webhook-Signature",
            Self::XWebhookId => "X-Webhook-ID",
            Self::XSignature => "X-Signature",
            Self::XApiKey => "X-API-Key",
            Self::Other(name) => name,
        }
    }
}

/// How "now" relates to the signing timestamp.
#[derive(Debug, Arbitrary)]
enum Now {
    /// `timestamp + offset`, offset clamped to ±400 s: straddles the tolerance edges.
    Near(i16),
    /// Any instant at all (overflow and saturation paths).
    Absolute(i64),
}

#[derive(Debug, Arbitrary)]
struct Input {
    scheme: u8,
    headers: Vec<(Name, Vec<u8>)>,
    body: Vec<u8>,
    id: String,
    timestamp: i64,
    now: Now,
    flip_at: usize,
    flip_mask: u8,
}

/// The scheme at `index`, its name, and whether its sign/verify involve id and timestamp.
#[derive(Debug, Clone, Copy)]
struct Kind {
    signs_id: bool,
    id_without_dot: bool,
    signs_timestamp: bool,
}

const SCHEME_COUNT: u8 = 8;

fn scheme(index: u8, public_key: bool) -> (Box<dyn Scheme>, Kind) {
    let none = Kind {
        signs_id: false,
        id_without_dot: false,
        signs_timestamp: false,
    };
    match index % SCHEME_COUNT {
        0 => (Box::new(RawBody), none),
        1 => (
            Box::new(IdBody),
            Kind {
                signs_id: true,
                ..none
            },
        ),
        2 => (
            Box::new(CanonicalJson::new(ApiKey::new(API_KEY).unwrap())),
            none,
        ),
        3 => (
            Box::new(
                CanonicalJson::new(ApiKey::new(API_KEY).unwrap()).key_order(KeyOrder::NodeExample),
            ),
            none,
        ),
        4 => (Box::new(XHub::new()), none),
        5 => (Box::new(XHub::github()), none),
        6 => {
            let mut standard = StandardWebhooks::new();
            if public_key {
                standard = standard.with_public_key(signing_key().verifying_key());
            }
            (
                Box::new(standard),
                Kind {
                    signs_id: true,
                    id_without_dot: true,
                    signs_timestamp: true,
                },
            )
        }
        _ => (
            Box::new(Stripe),
            Kind {
                signs_timestamp: true,
                ..none
            },
        ),
    }
}

fn signing_key() -> Ed25519SigningKey {
    Ed25519SigningKey::parse(SEED).unwrap()
}

fn secret() -> Secret {
    Secret::from_base64(SECRET).unwrap()
}

fn verifier(scheme: Box<dyn Scheme>, now: Timestamp) -> Verifier {
    Verifier::builder(scheme)
        .secret(Secret::from_base64(OTHER_SECRET).unwrap())
        .secret(secret())
        .clock(FixedClock(now))
        .build()
        .unwrap()
}

fn valid_id(id: &str, without_dot: bool) -> bool {
    !id.is_empty()
        && id.len() <= 256
        && id.bytes().all(|b| b.is_ascii_graphic())
        && !(without_dot && id.contains('.'))
}

/// Checks one signed request against our own verifier.
fn check_round_trip(
    input: &Input,
    index: u8,
    kind: Kind,
    signed: &SignedHeaders,
    now: Timestamp,
    public_key: bool,
) {
    let body = &input.body[..];
    let fresh = {
        let age = now.as_unix().saturating_sub(input.timestamp);
        (-TOLERANCE_SECS..=TOLERANCE_SECS).contains(&age)
    };
    let expect_ok = fresh || !kind.signs_timestamp;

    // The signed headers plus unrelated fuzzed headers (names no scheme reads).
    let mut pairs: Vec<(String, Vec<u8>)> = signed
        .iter()
        .map(|(k, v)| (k.to_owned(), v.as_bytes().to_vec()))
        .collect();
    for (name, value) in &input.headers {
        if let Name::Other(name) = name {
            let lower = name.to_ascii_lowercase();
            let read = lower.starts_with("webhook-")
                || lower.starts_with("svix-")
                || lower.starts_with("x-")
                || lower == "stripe-signature";
            if !read {
                pairs.push((name.clone(), value.clone()));
            }
        }
    }

    let (verify_scheme, _) = scheme(index, public_key);
    let verifier = verifier(verify_scheme, now);
    let result = verifier.verify(&pairs, body);
    match (&result, expect_ok) {
        (Ok(verified), true) => {
            if kind.signs_id {
                assert_eq!(verified.id(), Some(input.id.as_str()));
            }
            if kind.signs_timestamp {
                assert_eq!(
                    verified.timestamp(),
                    Some(Timestamp::from_unix(input.timestamp))
                );
            }
            let whole = verified.coverage().covers_whole_body();
            assert_eq!(whole, !matches!(index % SCHEME_COUNT, 2 | 3));
            assert_eq!(verified.body(), body);
        }
        (Err(VerifyError::TimestampTooOld | VerifyError::TimestampInFuture), false) => {}
        _ => panic!(
            "scheme {index}: signed request gave {result:?}, expected ok={expect_ok} \
             (now {now}, signed {})",
            input.timestamp
        ),
    }

    // The same through an http::HeaderMap (the signed headers only).
    if let Ok(map) = signed.to_header_map() {
        assert_eq!(verifier.verify(&map, body).is_ok(), result.is_ok());
    }

    // One flipped body byte.
    if !body.is_empty() {
        let mut tampered = body.to_vec();
        let at = input.flip_at % tampered.len();
        tampered[at] ^= input.flip_mask.max(1);
        let tampered_result = verifier.verify(&pairs, &tampered);
        match tampered_result {
            Ok(verified) => assert!(
                !verified.coverage().covers_whole_body(),
                "scheme {index}: accepted a tampered body"
            ),
            Err(_) => {}
        }
    }
}

fuzz_target!(|input: Input| {
    // Part 1: a hostile request.
    let hostile_now = match input.now {
        Now::Near(offset) => Timestamp::from_unix(1_700_000_000 + i64::from(offset)),
        Now::Absolute(now) => Timestamp::from_unix(now),
    };
    let headers: Vec<(&str, &[u8])> = input
        .headers
        .iter()
        .map(|(name, value)| (name.text(), value.as_slice()))
        .collect();
    let (hostile, _) = scheme(input.scheme, input.flip_mask & 1 == 1);
    let result = verifier(hostile, hostile_now).verify(&headers, &input.body);
    if let Ok(verified) = result {
        panic!("forged request accepted: {verified:?}");
    }

    // Part 2: sign and verify under every scheme.
    let now = match input.now {
        Now::Near(offset) => Timestamp::from_unix(
            input
                .timestamp
                .saturating_add(i64::from(offset).clamp(-400, 400)),
        ),
        Now::Absolute(now) => Timestamp::from_unix(now),
    };
    let message = Message::new(&input.body)
        .with_id(&input.id)
        .with_timestamp(Timestamp::from_unix(input.timestamp));
    for index in 0..SCHEME_COUNT {
        let (signer, kind) = scheme(index, false);
        let signed = signer.sign(&secret(), &message);
        let signable = (!kind.signs_id || valid_id(&input.id, kind.id_without_dot))
            && (!kind.signs_timestamp || input.timestamp >= 0);
        match &signed {
            Ok(signed) => {
                assert!(signable, "scheme {index} signed an unsignable message");
                check_round_trip(&input, index, kind, signed, now, false);
            }
            // TaskOn signs fields of the body, so any body may be unsignable.
            Err(_) if matches!(index, 2 | 3) => {}
            Err(err) => assert!(
                !signable,
                "scheme {index} refused a signable message: {err}"
            ),
        }
    }

    // Standard Webhooks v1a (Ed25519).
    if let Ok(signed) = StandardWebhooks::new().sign_ed25519(&signing_key(), &message) {
        let (_, kind) = scheme(6, true);
        check_round_trip(&input, 6, kind, &signed, now, true);
    }
});
