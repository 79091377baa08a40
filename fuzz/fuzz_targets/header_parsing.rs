//! Arbitrary bytes as header values, verified under every built-in scheme, plus the
//! string parsers (`Timestamp::parse_header`, `Secret::from_base64`, `str::parse::<Secret>`,
//! `ApiKey::new`, the Ed25519 key parsers).
//!
//! Input layout: byte 0 picks which header (if any) is sent twice; the rest is split on
//! `0x00` into the values of `HEADERS` in order, and whatever follows the last of them is the
//! body. Missing pieces mean missing headers.
//!
//! Checks: nothing panics; every verification fails with a `VerifyError` (the fuzzer does not
//! know the secret, so an `Ok` would be a forgery); error `Display` never echoes a header
//! value; a parsed timestamp prints back to exactly its input; a parsed secret survives a
//! `reveal_whsec` round trip.
#![no_main]

use hookrelay::scheme::{
    ApiKey, CanonicalJson, Ed25519SigningKey, Ed25519VerifyingKey, IdBody, KeyOrder, RawBody,
    Scheme, StandardWebhooks, Stripe, XHub,
};
use hookrelay::{FixedClock, Secret, Timestamp, Tolerance, Verifier};
use libfuzzer_sys::fuzz_target;

/// Header names filled from the input, in order.
const HEADERS: &[&str] = &[
    "Stripe-Signature",
    "webhook-signature",
    "webhook-id",
    "webhook-timestamp",
    "X-Hub-Signature",
    "X-Webhook-Signature",
    "X-Signature",
    "X-API-Key",
    "X-Webhook-ID",
    "X-Hub-Signature-256",
    "svix-signature",
    "svix-id",
    "svix-timestamp",
];

/// "Now" for every verifier: close to timestamps the fuzzer can discover via CMP tracing.
const NOW: i64 = 1_700_000_000;
const SEED: &str = "whsk_AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=";

fn verifiers() -> Vec<Verifier> {
    let secret = Secret::from_raw("header-parsing-fuzz-secret").unwrap();
    let api_key = || ApiKey::new("fuzz-api-key").unwrap();
    let public = Ed25519SigningKey::parse(SEED).unwrap().verifying_key();
    let schemes: Vec<Box<dyn Scheme>> = vec![
        Box::new(RawBody),
        Box::new(IdBody),
        Box::new(CanonicalJson::new(api_key())),
        Box::new(CanonicalJson::new(api_key()).key_order(KeyOrder::NodeExample)),
        Box::new(CanonicalJson::new(api_key()).freshness(Tolerance::DEFAULT)),
        Box::new(XHub::new()),
        Box::new(XHub::github()),
        Box::new(StandardWebhooks::new()),
        Box::new(StandardWebhooks::new().with_public_key(public)),
        Box::new(Stripe),
    ];
    schemes
        .into_iter()
        .map(|scheme| {
            Verifier::builder(scheme)
                .secret(secret.clone())
                .max_signatures(4)
                .clock(FixedClock(Timestamp::from_unix(NOW)))
                .build()
                .unwrap()
        })
        .collect()
}

fn parse_strings(raw: &[u8]) {
    // Timestamps: strict decimal, so Ok means the canonical text of a non-negative i64.
    if let Ok(t) = Timestamp::parse_header(raw) {
        assert!(t.as_unix() >= 0);
        assert_eq!(t.to_string().as_bytes(), raw, "timestamp is not canonical");
    }
    let text = String::from_utf8_lossy(raw);
    if let Ok(t) = text.parse::<Timestamp>() {
        assert_eq!(t.to_string(), text);
    }
    // Secrets: whatever decodes must round-trip through its whsec_ form.
    let probe: &[&[u8]] = &[b"probe"];
    if let Ok(secret) = Secret::from_base64(&text) {
        let again = Secret::from_base64(&secret.reveal_whsec()).expect("whsec round trip");
        assert!(again.mac(probe).matches(secret.mac(probe).as_bytes()));
    }
    if let Ok(secret) = text.parse::<Secret>() {
        let _ = secret.mac(probe).to_hex();
        let _ = format!("{secret:?}");
    }
    if let Ok(secret) = Secret::from_raw(raw) {
        assert!(secret.mac(probe).matches(secret.mac(probe).as_bytes()));
    }
    let _ = ApiKey::new(text.as_ref());
    if let Ok(key) = Ed25519SigningKey::parse(&text) {
        let reparsed = Ed25519SigningKey::parse(&key.reveal()).expect("whsk round trip");
        assert_eq!(
            reparsed.verifying_key().to_string(),
            key.verifying_key().to_string()
        );
    }
    if let Ok(key) = Ed25519VerifyingKey::parse(&text) {
        let shown = key.to_string();
        assert_eq!(
            Ed25519VerifyingKey::parse(&shown).unwrap().to_string(),
            shown
        );
    }
}

fuzz_target!(|data: &[u8]| {
    thread_local! {
        static VERIFIERS: Vec<Verifier> = verifiers();
    }
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };

    let mut pieces = rest.splitn(HEADERS.len() + 1, |&b| b == 0);
    let mut headers: Vec<(String, &[u8])> = Vec::new();
    for name in HEADERS {
        match pieces.next() {
            Some(value) => headers.push(((*name).to_owned(), value)),
            None => break,
        }
    }
    let body = pieces.next().unwrap_or(b"");
    if mode & 0x80 != 0 && !headers.is_empty() {
        // Repeat one header, in another case, to exercise duplicate detection.
        let (name, value) = &headers[usize::from(mode & 0x0f) % headers.len()];
        let repeated = (name.to_ascii_uppercase(), *value);
        headers.push(repeated);
    }
    if mode & 0x40 != 0 {
        headers.reverse();
    }

    VERIFIERS.with(|verifiers| {
        for verifier in verifiers {
            match verifier.verify(&headers, body) {
                Ok(verified) => panic!("forged request accepted: {verified:?} by {verifier:?}"),
                Err(err) => {
                    let message = err.to_string();
                    let _ = err.is_malformed();
                    for (_, value) in &headers {
                        // Longer than any fixed message, so a match can only be an echo.
                        if value.len() > 64 {
                            let value = String::from_utf8_lossy(value);
                            assert!(
                                !message.contains(value.as_ref()),
                                "error message echoes a header value: {message}"
                            );
                        }
                    }
                }
            }
        }
    });

    for (_, value) in &headers {
        parse_strings(value);
    }
    parse_strings(body);
});
