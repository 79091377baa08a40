//! The public API's promises: thread safety, redaction, coverage reporting.

mod common;

use hookrelay::scheme::{
    ApiKey, CanonicalJson, Coverage, IdBody, KeyOrder, Message, RawBody, Scheme, StandardWebhooks,
    Stripe, XHub,
};
use hookrelay::{
    FixedClock, MacTag, Secret, SignedHeaders, SystemClock, Timestamp, Verified, Verifier,
    VerifierBuilder, VerifyError,
};

const NOW: i64 = 1_758_251_308;

#[test]
fn public_types_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Secret>();
    assert_send_sync::<MacTag>();
    assert_send_sync::<Verifier>();
    assert_send_sync::<VerifierBuilder>();
    assert_send_sync::<Verified<'static>>();
    assert_send_sync::<hookrelay::scheme::WebhookId>();
    assert_send_sync::<VerifyError>();
    assert_send_sync::<SignedHeaders>();
    assert_send_sync::<Timestamp>();
    assert_send_sync::<FixedClock>();
    assert_send_sync::<SystemClock>();
    assert_send_sync::<RawBody>();
    assert_send_sync::<IdBody>();
    assert_send_sync::<CanonicalJson>();
    assert_send_sync::<ApiKey>();
    assert_send_sync::<XHub>();
    assert_send_sync::<StandardWebhooks>();
    assert_send_sync::<Stripe>();
    assert_send_sync::<Box<dyn Scheme>>();
    assert_send_sync::<hookrelay::scheme::SignError>();
    assert_send_sync::<hookrelay::SecretError>();
    assert_send_sync::<hookrelay::BuildError>();
    assert_send_sync::<hookrelay::profile::Profile>();
    assert_send_sync::<hookrelay::receive::Receiver>();
    assert_send_sync::<hookrelay::receive::Inbound>();
    assert_send_sync::<hookrelay::receive::Reply>();
    assert_send_sync::<hookrelay::receive::Rejection>();
    assert_send_sync::<hookrelay::receive::MemoryIdempotencyStore>();
    assert_send_sync::<hookrelay::receive::IdempotencyKey>();
    assert_send_sync::<hookrelay::receive::StoreError>();
    assert_send_sync::<hookrelay::retry::RetryPolicy>();
    #[cfg(feature = "sqlite")]
    assert_send_sync::<hookrelay::receive::SqliteIdempotencyStore>();
    #[cfg(feature = "axum")]
    {
        assert_send_sync::<
            hookrelay::receive::axum::WebhookLayer<hookrelay::receive::MemoryIdempotencyStore>,
        >();
        assert_send_sync::<hookrelay::receive::axum::Delivery<serde_json::Value>>();
        assert_send_sync::<hookrelay::receive::axum::Webhook<serde_json::Value>>();
        assert_send_sync::<hookrelay::receive::axum::WebhookRejection>();
    }
    #[cfg(feature = "ed25519")]
    {
        assert_send_sync::<hookrelay::scheme::Ed25519SigningKey>();
        assert_send_sync::<hookrelay::scheme::Ed25519VerifyingKey>();
    }
}

#[test]
fn secrets_and_signatures_never_print() {
    let text = "super-secret-value-123";
    let secret = Secret::from_raw(text).unwrap();
    let tag = secret.mac(&[b"body"]);
    let verifier = Verifier::builder(XHub::new())
        .secret(secret.clone())
        .build()
        .unwrap();
    let api_key = ApiKey::new("api-key-value-456").unwrap();
    let signed = CanonicalJson::new(api_key.clone())
        .sign(&secret, &Message::new(br#"{"user_id":1,"timestamp":2}"#))
        .unwrap();
    let generated = Secret::generate().unwrap();
    let whsec = generated.reveal_whsec();

    let printed = format!(
        "{secret:?} {tag:?} {verifier:?} {api_key:?} {signed:?} {generated:?} {:?}",
        Verifier::builder(XHub::new()).secret(secret.clone())
    );
    for leaked in [
        text,
        &tag.to_hex(),
        "api-key-value-456",
        signed.get("X-Signature").unwrap(),
        &whsec[6..],
    ] {
        assert!(!printed.contains(leaked), "{leaked} printed in {printed}");
    }
    assert!(printed.contains("<redacted>"));
}

#[test]
fn generated_secrets_are_random_and_round_trip() {
    let a = Secret::generate().unwrap();
    let b = Secret::generate().unwrap();
    assert_ne!(a.reveal_whsec(), b.reveal_whsec());
    let again = Secret::from_base64(&a.reveal_whsec()).unwrap();
    assert_eq!(a.mac(&[b"x"]).to_hex(), again.mac(&[b"x"]).to_hex());
    assert_eq!(a.reveal_whsec().len(), "whsec_".len() + 44);
}

#[test]
fn taskon_reports_partial_coverage_and_checks_the_api_key() {
    let key = ApiKey::new("your-api-key").unwrap();
    let secret = Secret::from_raw("your-secret-key").unwrap();
    let body = br#"{"task_id":111111,"reward_type":"Token","reward_amount":"0.1","user_id":11111,"timestamp":1758251308}"#;
    let headers = common::signed_pairs(
        &CanonicalJson::new(key.clone())
            .sign(&secret, &Message::new(body))
            .unwrap(),
    );
    let verifier = common::verifier(Box::new(CanonicalJson::new(key)), secret, NOW);
    let verified = verifier.verify(&headers, body).unwrap();
    assert_eq!(
        verified.coverage(),
        Coverage::Fields(&["timestamp", "user_id"])
    );
    assert!(!verified.coverage().covers_whole_body());
    assert_eq!(
        verified.timestamp(),
        Some(Timestamp::from_unix(1_758_251_308))
    );

    // The documented weakness: an unsigned field changed in flight still verifies.
    let altered = br#"{"task_id":111111,"reward_type":"Token","reward_amount":"9999","user_id":11111,"timestamp":1758251308}"#;
    assert!(verifier.verify(&headers, altered).is_ok());

    // A wrong API key is refused even with a right signature.
    let mut wrong_key = headers.clone();
    wrong_key[0].1 = "your-api-kez".into();
    assert_eq!(
        verifier.verify(&wrong_key, body).unwrap_err(),
        VerifyError::InvalidApiKey
    );
    // Bodies without integer signed fields are a typed error.
    for bad in [
        &br#"{"user_id":"11111","timestamp":1758251308}"#[..],
        br#"{"timestamp":1758251308}"#,
        br#"{"user_id":1.5,"timestamp":1758251308}"#,
        br#"{"user_id":9007199254740993,"timestamp":1758251308}"#,
        b"[]",
        b"",
    ] {
        assert_eq!(
            verifier.verify(&headers, bad).unwrap_err(),
            VerifyError::UnsignedBody
        );
    }
}

#[test]
fn taskon_node_ordering_is_opt_in_only() {
    let key = ApiKey::new("k").unwrap();
    let secret = Secret::from_raw("s").unwrap();
    let body = br#"{"user_id":11111,"timestamp":1758251308}"#;
    let node_signed = common::signed_pairs(
        &CanonicalJson::new(key.clone())
            .key_order(KeyOrder::NodeExample)
            .sign(&secret, &Message::new(body))
            .unwrap(),
    );
    let default = common::verifier(
        Box::new(CanonicalJson::new(key.clone())),
        secret.clone(),
        NOW,
    );
    assert_eq!(
        default.verify(&node_signed, body).unwrap_err(),
        VerifyError::SignatureMismatch
    );
    let opted_in = common::verifier(
        Box::new(CanonicalJson::new(key).key_order(KeyOrder::NodeExample)),
        secret,
        NOW,
    );
    assert!(opted_in.verify(&node_signed, body).is_ok());
}

#[test]
fn coverage_is_reported_per_scheme() {
    let body = br#"{"user_id":1,"timestamp":1758251308}"#;
    for (name, coverage) in [
        ("raw-body", Coverage::Body),
        ("id-body", Coverage::IdAndBody),
        ("x-hub", Coverage::Body),
        ("github", Coverage::Body),
        ("standard-webhooks", Coverage::IdTimestampAndBody),
        ("stripe", Coverage::TimestampAndBody),
    ] {
        let secret = common::secret(name, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        let message = Message::new(body)
            .with_id("evt_1")
            .with_timestamp(Timestamp::from_unix(NOW));
        let scheme = common::scheme(name, None, None);
        let headers = common::signed_pairs(&scheme.sign(&secret, &message).unwrap());
        let verified = common::verifier(scheme, secret, NOW)
            .verify(&headers, body)
            .unwrap();
        assert_eq!(verified.coverage(), coverage, "{name}");
        assert!(verified.coverage().covers_whole_body());
    }
}

#[test]
fn signing_requires_what_the_scheme_signs() {
    use hookrelay::scheme::SignError;
    let secret = Secret::from_raw("k").unwrap();
    let body = Message::new(b"{}");
    assert_eq!(
        IdBody.sign(&secret, &body).unwrap_err(),
        SignError::MissingId
    );
    assert_eq!(
        Stripe.sign(&secret, &body).unwrap_err(),
        SignError::MissingTimestamp
    );
    assert_eq!(
        StandardWebhooks::new()
            .sign(&secret, &body.with_id("msg_1"))
            .unwrap_err(),
        SignError::MissingTimestamp
    );
    assert_eq!(
        IdBody.sign(&secret, &body.with_id("evt 1")).unwrap_err(),
        SignError::InvalidId
    );
    assert!(ApiKey::new("").is_err());
    assert!(ApiKey::new(" padded ").is_err());
    assert!(ApiKey::new("line\nbreak").is_err());
}

#[cfg(feature = "ed25519")]
#[test]
fn ed25519_v1a_signs_and_verifies() {
    use hookrelay::scheme::{Ed25519SigningKey, Ed25519VerifyingKey};

    let key = Ed25519SigningKey::generate().unwrap();
    let public = key.verifying_key();
    let parsed = Ed25519VerifyingKey::parse(&public.to_string()).unwrap();
    assert_eq!(parsed, public);
    assert_eq!(
        Ed25519SigningKey::parse(&key.reveal())
            .unwrap()
            .verifying_key(),
        public
    );
    assert!(!format!("{key:?}").contains(&key.reveal()[5..]));

    let body = br#"{"type":"task.created"}"#;
    let message = Message::new(body)
        .with_id("msg_1")
        .with_timestamp(Timestamp::from_unix(NOW));
    let headers = common::signed_pairs(
        &StandardWebhooks::new()
            .sign_ed25519(&key, &message)
            .unwrap(),
    );

    // Public key only: no shared secret needed.
    let verifier = Verifier::builder(StandardWebhooks::new().with_public_key(public))
        .clock(FixedClock(Timestamp::from_unix(NOW)))
        .build()
        .unwrap();
    assert!(verifier.verify(&headers, body).is_ok());
    assert!(verifier.verify(&headers, b"{}").is_err());

    // Another key's signature, or v1a with no public key configured, is rejected.
    let other = Ed25519SigningKey::generate().unwrap();
    let foreign = common::signed_pairs(
        &StandardWebhooks::new()
            .sign_ed25519(&other, &message)
            .unwrap(),
    );
    assert!(verifier.verify(&foreign, body).is_err());
    let hmac_only = common::verifier(
        Box::new(StandardWebhooks::new()),
        Secret::from_raw("k").unwrap(),
        NOW,
    );
    assert_eq!(
        hmac_only.verify(&headers, body).unwrap_err(),
        VerifyError::SignatureMismatch
    );

    for bad in ["whpk_", "whpk_AAAA", "whsk_AAAA", "nope"] {
        assert!(Ed25519VerifyingKey::parse(bad).is_err());
    }
}

/// An Ed25519 signature computed by Node's crypto (see tests/vectors/ed25519_node.js).
#[cfg(feature = "ed25519")]
#[test]
fn ed25519_matches_node_crypto() {
    use hookrelay::scheme::{Ed25519SigningKey, Ed25519VerifyingKey};

    let vector: serde_json::Value = serde_json::from_slice(
        &std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/vectors/ed25519.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let field = |k: &str| vector[k].as_str().unwrap().to_owned();
    let key = Ed25519SigningKey::parse(&field("secret_key")).unwrap();
    let public = Ed25519VerifyingKey::parse(&field("public_key")).unwrap();
    assert_eq!(key.verifying_key(), public);
    let body = field("body");
    let message = Message::new(body.as_bytes())
        .with_id("msg_ed")
        .with_timestamp(Timestamp::from_unix(1_700_000_000));
    let signed = StandardWebhooks::new()
        .sign_ed25519(&key, &message)
        .unwrap();
    // Ed25519 is deterministic: our signature equals Node's byte for byte.
    assert_eq!(signed.get("webhook-signature").unwrap(), field("signature"));
}
