//! CHECKLIST.md sections A, B and C, as they apply to the verifier.

mod common;

use std::time::Duration;

use common::{headers, signed_pairs};
use hookrelay::scheme::{Message, Scheme, StandardWebhooks, Stripe, XHub};
use hookrelay::{
    BuildError, FixedClock, Secret, SecretError, Timestamp, Tolerance, Verifier, VerifyError,
};

const NOW: i64 = 1_700_000_000;
const SW_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const BODY: &[u8] = br#"{"type":"task.created","data":{"taskId":"123"}}"#;

fn sw_secret() -> Secret {
    Secret::from_base64(SW_SECRET).unwrap()
}

fn sw_verifier() -> Verifier {
    common::verifier(Box::new(StandardWebhooks::new()), sw_secret(), NOW)
}

fn sw_headers(id: &str, ts: i64, body: &[u8]) -> Vec<(String, String)> {
    let message = Message::new(body)
        .with_id(id)
        .with_timestamp(Timestamp::from_unix(ts));
    signed_pairs(
        &StandardWebhooks::new()
            .sign(&sw_secret(), &message)
            .unwrap(),
    )
}

fn with_header(mut pairs: Vec<(String, String)>, name: &str, value: &str) -> Vec<(String, String)> {
    pairs.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
    pairs.push((name.to_owned(), value.to_owned()));
    pairs
}

// ---- A. Signatures ------------------------------------------------------------------------

#[test]
fn a4_truncated_signatures_are_rejected() {
    let good = sw_headers("msg_1", NOW, BODY);
    let full = good[2].1.clone();
    for bad in ["v1,", &full[..11], "v1,g", "", "v1", "v1a,"] {
        let pairs = with_header(good.clone(), "webhook-signature", bad);
        assert!(
            sw_verifier().verify(&pairs, BODY).is_err(),
            "{bad:?} accepted"
        );
    }
    let hub = common::verifier(Box::new(XHub::new()), Secret::from_raw("k").unwrap(), NOW);
    for bad in ["sha256=", "sha256=a", "", "sha256=0"] {
        let err = hub
            .verify(&headers(&[("X-Hub-Signature", bad)]), BODY)
            .unwrap_err();
        assert!(
            matches!(err, VerifyError::MalformedHeader(_)),
            "{bad:?}: {err}"
        );
    }
}

#[test]
fn a5_overlong_signatures_are_rejected() {
    let good = sw_headers("msg_1", NOW, BODY);
    let extra = format!("{}AAAA", good[2].1);
    let huge = format!("v1,{}", "A".repeat(1 << 20));
    for bad in [extra.as_str(), huge.as_str()] {
        let pairs = with_header(good.clone(), "webhook-signature", bad);
        assert_eq!(
            sw_verifier().verify(&pairs, BODY).unwrap_err(),
            VerifyError::SignatureMismatch
        );
    }
    let secret = Secret::from_raw("k").unwrap();
    let hub = common::verifier(Box::new(XHub::new()), secret.clone(), NOW);
    let valid = XHub::new().sign(&secret, &Message::new(BODY)).unwrap();
    let longer = format!("{}00", valid.get("X-Hub-Signature").unwrap());
    assert!(
        hub.verify(&headers(&[("X-Hub-Signature", &longer)]), BODY)
            .is_err()
    );
}

#[test]
fn a7_wrong_secret_or_foreign_id_and_timestamp_are_rejected() {
    let other = Secret::from_base64("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap();
    let verifier = common::verifier(Box::new(StandardWebhooks::new()), other, NOW);
    assert_eq!(
        verifier
            .verify(&sw_headers("msg_1", NOW, BODY), BODY)
            .unwrap_err(),
        VerifyError::SignatureMismatch
    );

    // Signature from delivery A with the id / timestamp of delivery B.
    let a = sw_headers("msg_a", NOW, BODY);
    let b = sw_headers("msg_b", NOW - 5, BODY);
    let mixed_id = with_header(a.clone(), "webhook-id", &b[0].1);
    let mixed_ts = with_header(a, "webhook-timestamp", &b[1].1);
    assert!(sw_verifier().verify(&mixed_id, BODY).is_err());
    assert!(sw_verifier().verify(&mixed_ts, BODY).is_err());
}

#[test]
fn a8_a9_empty_and_malformed_secrets_fail_at_construction() {
    assert_eq!(Secret::from_raw("").unwrap_err(), SecretError::Empty);
    assert_eq!(
        Secret::from_base64("whsec_").unwrap_err(),
        SecretError::Empty
    );
    assert_eq!(Secret::from_base64("").unwrap_err(), SecretError::Empty);
    assert_eq!("whsec_".parse::<Secret>().unwrap_err(), SecretError::Empty);
    for bad in ["whsec_!!!!", "whsec_abc$", "whsec_A"] {
        assert_eq!(
            Secret::from_base64(bad).unwrap_err(),
            SecretError::MalformedBase64,
            "{bad}"
        );
    }
    // A verifier cannot exist without a key.
    assert_eq!(
        Verifier::builder(XHub::new()).build().unwrap_err(),
        BuildError::NoSecrets
    );
}

#[test]
fn a8_request_signed_with_an_empty_key_is_never_accepted() {
    use hmac::Mac as _;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"").unwrap();
    mac.update(BODY);
    let forged = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    let hub = common::verifier(Box::new(XHub::new()), Secret::from_raw("k").unwrap(), NOW);
    assert!(
        hub.verify(&headers(&[("X-Hub-Signature", &forged)]), BODY)
            .is_err()
    );
}

#[test]
fn a10_rotation_accepts_old_and_new_but_not_a_third() {
    let old = Secret::from_raw("old-secret").unwrap();
    let new = Secret::from_raw("new-secret").unwrap();
    let third = Secret::from_raw("third-secret").unwrap();
    let verifier = Verifier::builder(Stripe)
        .secrets([old.clone(), new.clone()])
        .clock(FixedClock(Timestamp::from_unix(NOW)))
        .build()
        .unwrap();
    let message = Message::new(BODY).with_timestamp(Timestamp::from_unix(NOW));
    for (secret, ok) in [(old, true), (new, true), (third, false)] {
        let signed = signed_pairs(&Stripe.sign(&secret, &message).unwrap());
        assert_eq!(verifier.verify(&signed, BODY).is_ok(), ok);
    }
}

#[test]
fn a11_ten_thousand_signatures_are_capped() {
    let good = sw_headers("msg_1", NOW, BODY);
    let many = vec![good[2].1.as_str(); 10_000].join(" ");
    let pairs = with_header(good.clone(), "webhook-signature", &many);
    assert_eq!(
        sw_verifier().verify(&pairs, BODY).unwrap_err(),
        VerifyError::TooManySignatures
    );
    let stripe_many = format!("t={NOW},{}", vec!["v1=00"; 10_000].join(","));
    let stripe = common::verifier(Box::new(Stripe), Secret::from_raw("k").unwrap(), NOW);
    assert_eq!(
        stripe
            .verify(&headers(&[("Stripe-Signature", &stripe_many)]), BODY)
            .unwrap_err(),
        VerifyError::TooManySignatures
    );
    // Up to the limit, the valid one among junk still counts.
    let mut few = vec!["v1,AAAA".to_owned(); 15];
    few.push(good[2].1.clone());
    let pairs = with_header(good, "webhook-signature", &few.join(" "));
    assert!(sw_verifier().verify(&pairs, BODY).is_ok());
}

#[test]
fn a12_unknown_versions_are_ignored_never_valid() {
    let good = sw_headers("msg_1", NOW, BODY);
    let b64 = good[2].1.trim_start_matches("v1,").to_owned();
    for version in ["v2", "v1a", "V1", "v0", "v1b"] {
        let pairs = with_header(
            good.clone(),
            "webhook-signature",
            &format!("{version},{b64}"),
        );
        assert_eq!(
            sw_verifier().verify(&pairs, BODY).unwrap_err(),
            VerifyError::SignatureMismatch,
            "{version}"
        );
    }
    // An unknown version next to a valid v1 does not spoil it.
    let pairs = with_header(
        good.clone(),
        "webhook-signature",
        &format!("v2,xyz {}", good[2].1),
    );
    assert!(sw_verifier().verify(&pairs, BODY).is_ok());
}

// ---- B. Replay ----------------------------------------------------------------------------

#[test]
fn b15_b16_tolerance_edges_both_sides() {
    let tolerance = 300;
    let at = |ts: i64| sw_verifier().verify(&sw_headers("msg_1", ts, BODY), BODY);
    assert!(at(NOW - tolerance).is_ok());
    assert_eq!(
        at(NOW - tolerance - 1).unwrap_err(),
        VerifyError::TimestampTooOld
    );
    assert!(at(NOW + tolerance).is_ok());
    assert_eq!(
        at(NOW + tolerance + 1).unwrap_err(),
        VerifyError::TimestampInFuture
    );
    assert_eq!(
        at(NOW + 10 * 365 * 86_400).unwrap_err(),
        VerifyError::TimestampInFuture
    );

    // Asymmetric windows are configurable.
    let lenient_past = Verifier::builder(StandardWebhooks::new())
        .secret(sw_secret())
        .tolerance(Tolerance::new(
            Duration::from_secs(3_600),
            Duration::from_secs(0),
        ))
        .clock(FixedClock(Timestamp::from_unix(NOW)))
        .build()
        .unwrap();
    assert!(
        lenient_past
            .verify(&sw_headers("msg_1", NOW - 3_600, BODY), BODY)
            .is_ok()
    );
    assert!(
        lenient_past
            .verify(&sw_headers("msg_1", NOW + 1, BODY), BODY)
            .is_err()
    );
}

#[test]
fn b17_weird_timestamps_are_rejected_without_panics() {
    let good = sw_headers("msg_1", NOW, BODY);
    let max = i64::MAX.to_string();
    for bad in [
        "",
        "-1",
        "1e9",
        "1700000000.5",
        "+1700000000",
        max.as_str(),
        "12345678901234567890",
        "0x10",
        " ",
        "١٧٠٠٠٠٠٠٠٠",
    ] {
        let pairs = with_header(good.clone(), "webhook-timestamp", bad);
        let err = sw_verifier().verify(&pairs, BODY).unwrap_err();
        assert!(
            matches!(
                err,
                VerifyError::InvalidTimestamp(_) | VerifyError::TimestampInFuture
            ),
            "{bad:?}: {err:?}"
        );
        let stripe = common::verifier(Box::new(Stripe), Secret::from_raw("k").unwrap(), NOW);
        let header = format!("t={bad},v1={}", "0".repeat(64));
        assert!(
            stripe
                .verify(&headers(&[("Stripe-Signature", &header)]), BODY)
                .is_err()
        );
    }
    // A clock at the extremes does not overflow either.
    for now in [i64::MIN, i64::MAX] {
        let verifier = common::verifier(Box::new(StandardWebhooks::new()), sw_secret(), now);
        assert!(
            verifier
                .verify(&sw_headers("msg_1", NOW, BODY), BODY)
                .is_err()
        );
    }
}

#[test]
fn b21_dots_in_id_cannot_forge_another_signed_string() {
    // "msg.1700000000" + "." + "1700000000" + "." + body would collide with
    // id "msg", timestamp "1700000000", body "1700000000.{body}".
    let forged_body = [format!("{NOW}.").as_bytes(), BODY].concat();
    let original = sw_headers("msg", NOW, &forged_body);
    let shifted = with_header(original, "webhook-id", &format!("msg.{NOW}"));
    assert_eq!(
        sw_verifier().verify(&shifted, BODY).unwrap_err(),
        VerifyError::MalformedHeader("webhook-id".into())
    );
    let message = Message::new(BODY)
        .with_id("a.b")
        .with_timestamp(Timestamp::from_unix(NOW));
    assert!(
        StandardWebhooks::new()
            .sign(&sw_secret(), &message)
            .is_err()
    );
}

// ---- C. Bad input -------------------------------------------------------------------------

#[test]
fn c22_missing_headers_are_typed_client_errors() {
    let good = sw_headers("msg_1", NOW, BODY);
    for drop in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
        let pairs: Vec<_> = good.iter().filter(|(k, _)| k != drop).cloned().collect();
        let err = sw_verifier().verify(&pairs, BODY).unwrap_err();
        assert!(
            matches!(err, VerifyError::MissingHeader(_)),
            "{drop}: {err:?}"
        );
        assert!(err.is_malformed());
    }
    let none: Vec<(String, String)> = Vec::new();
    for scheme in ["raw-body", "id-body", "x-hub", "github", "stripe"] {
        let verifier = common::verifier(
            common::scheme(scheme, None, None),
            Secret::from_raw("k").unwrap(),
            NOW,
        );
        assert!(matches!(
            verifier.verify(&none, BODY).unwrap_err(),
            VerifyError::MissingHeader(_)
        ));
    }
}

#[test]
fn c23_any_case_is_found_and_duplicates_are_refused() {
    let good = sw_headers("msg_1", NOW, BODY);
    let shouting: Vec<_> = good
        .iter()
        .map(|(k, v)| (k.to_uppercase(), v.clone()))
        .collect();
    assert!(sw_verifier().verify(&shouting, BODY).is_ok());

    for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
        let mut doubled = good.clone();
        let value = good.iter().find(|(k, _)| k == name).unwrap().1.clone();
        doubled.push((name.to_uppercase(), value));
        assert_eq!(
            sw_verifier().verify(&doubled, BODY).unwrap_err(),
            VerifyError::DuplicateHeader(name.into())
        );
    }

    // The same through http::HeaderMap, as servers hand it over.
    let mut map = http::HeaderMap::new();
    for (k, v) in &good {
        map.append(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    assert!(sw_verifier().verify(&map, BODY).is_ok());
    map.append("webhook-id", "msg_2".parse().unwrap());
    assert!(matches!(
        sw_verifier().verify(&map, BODY).unwrap_err(),
        VerifyError::DuplicateHeader(_)
    ));

    // Svix's header names work too.
    let svix: Vec<_> = good
        .iter()
        .map(|(k, v)| (k.replace("webhook-", "svix-"), v.clone()))
        .collect();
    assert_eq!(
        sw_verifier().verify(&svix, BODY).unwrap().id(),
        Some("msg_1")
    );
}

#[test]
fn c24_stripe_header_edge_cases() {
    let secret = Secret::from_raw("whsec_stripe").unwrap();
    let verifier = common::verifier(Box::new(Stripe), secret.clone(), NOW);
    let message = Message::new(BODY).with_timestamp(Timestamp::from_unix(NOW));
    let signed = Stripe.sign(&secret, &message).unwrap();
    let good = signed.get("Stripe-Signature").unwrap().to_owned();
    let v1 = good.split_once(",v1=").unwrap().1.to_owned();
    let check = |value: &str| verifier.verify(&headers(&[("Stripe-Signature", value)]), BODY);

    assert!(check(&good).is_ok());
    assert!(check(&format!(" t={NOW} , v1={v1} ")).is_ok(), "spaces");
    assert!(
        check(&format!("t={NOW},v1={v1},")).is_ok(),
        "trailing comma"
    );
    assert!(check(&format!("t={NOW},,v1={v1}")).is_ok(), "empty item");
    assert!(
        check(&format!("t={NOW},v1,v1={v1}")).is_ok(),
        "v1 without ="
    );
    assert!(
        check(&format!("t={NOW},v0=abc,v1={v1}")).is_ok(),
        "v0 ignored"
    );
    assert!(
        check(&format!("t={NOW},v1=ff,v1={v1}")).is_ok(),
        "roll: second matches"
    );
    assert_eq!(
        check(&format!("t={NOW},t={NOW},v1={v1}")).unwrap_err(),
        VerifyError::MalformedHeader("Stripe-Signature".into()),
        "repeated t"
    );
    assert_eq!(
        check(&format!("t={NOW},v1={v1}=")).unwrap_err(),
        VerifyError::SignatureMismatch,
        "split on first ="
    );
    assert!(matches!(
        check(&format!("v1={v1}")).unwrap_err(),
        VerifyError::MalformedHeader(_)
    ));
    assert_eq!(
        check(&format!("t={NOW}")).unwrap_err(),
        VerifyError::SignatureMismatch
    );
    assert!(check("").is_err());
    assert!(check(",,,=,==,t").is_err());
}

#[test]
fn c25_non_utf8_header_bytes_are_a_declared_error() {
    let good = sw_headers("msg_1", NOW, BODY);
    let mut raw: Vec<(String, Vec<u8>)> = good
        .iter()
        .map(|(k, v)| (k.clone(), v.as_bytes().to_vec()))
        .collect();
    raw[0].1 = b"msg_\xff\xfe".to_vec();
    assert_eq!(
        sw_verifier().verify(&raw, BODY).unwrap_err(),
        VerifyError::MalformedHeader("webhook-id".into())
    );
}

#[test]
fn c26_oversized_bodies_are_refused_before_verification() {
    let body = vec![b'x'; 2_000];
    let verifier = Verifier::builder(StandardWebhooks::new())
        .secret(sw_secret())
        .clock(FixedClock(Timestamp::from_unix(NOW)))
        .max_body_bytes(1_999)
        .build()
        .unwrap();
    // Correctly signed, still refused: the size check comes first.
    assert_eq!(
        verifier
            .verify(&sw_headers("msg_1", NOW, &body), &body)
            .unwrap_err(),
        VerifyError::BodyTooLarge { limit: 1_999 }
    );
    assert!(
        verifier
            .verify(&sw_headers("msg_1", NOW, &body[..1_999]), &body[..1_999])
            .is_ok()
    );
}

#[test]
fn c27_to_c30_bodies_verify_on_bytes_and_parse_cleanly_after() {
    // Empty body.
    let verified = sw_verifier()
        .verify(&sw_headers("msg_1", NOW, b""), b"")
        .unwrap();
    assert!(verified.json::<serde_json::Value>().is_err());

    // Non-UTF-8 body.
    let binary = b"\xff\x00\xfe";
    assert!(
        sw_verifier()
            .verify(&sw_headers("msg_1", NOW, binary), binary)
            .is_ok()
    );

    // Invalid JSON with a valid signature: verified, then a clean parse error.
    let not_json = b"{not json";
    let verified = sw_verifier()
        .verify(&sw_headers("msg_1", NOW, not_json), not_json)
        .unwrap();
    assert!(verified.json::<serde_json::Value>().is_err());

    // 100 000 nested arrays: a bounded error, no stack overflow.
    let deep = vec![b'['; 100_000];
    let verified = sw_verifier()
        .verify(&sw_headers("msg_1", NOW, &deep), &deep)
        .unwrap();
    assert!(verified.json::<serde_json::Value>().is_err());
}

#[test]
fn errors_name_headers_but_never_carry_values_or_secrets() {
    let good = sw_headers("msg_1", NOW, BODY);
    let signature = good[2].1.clone();
    let bad_sig = with_header(good.clone(), "webhook-signature", "v1,c2VjcmV0LXZhbHVl");
    for pairs in [good.clone(), bad_sig] {
        let other = common::verifier(
            Box::new(StandardWebhooks::new()),
            Secret::from_raw("another").unwrap(),
            NOW,
        );
        if let Err(err) = other.verify(&pairs, BODY) {
            let shown = format!("{err} {err:?}");
            assert!(!shown.contains(&signature));
            assert!(!shown.contains("c2VjcmV0LXZhbHVl"));
            assert!(!shown.contains("MfKQ9r8G"));
            assert!(!shown.contains("task.created"));
        }
    }
}
