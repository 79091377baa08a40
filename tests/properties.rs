//! Property tests: any one-bit flip breaks verification; arbitrary input never panics.

mod common;

use hookrelay::scheme::{Message, Scheme, StandardWebhooks, Stripe};
use hookrelay::{Secret, Timestamp};
use proptest::prelude::*;

const NOW: i64 = 1_700_000_000;

fn flip(bytes: &mut [u8], bit: usize) {
    let bit = bit % (bytes.len() * 8);
    bytes[bit / 8] ^= 1 << (bit % 8);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Standard Webhooks: a flipped bit in body, id, timestamp or signature fails.
    #[test]
    fn standard_webhooks_one_bit_flip_fails(
        body in proptest::collection::vec(any::<u8>(), 1..256),
        id in "msg_[A-Za-z0-9]{1,24}",
        offset in 0i64..300,
        part in 0usize..4,
        bit in any::<usize>(),
    ) {
        let secret = Secret::from_base64("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let verifier = common::verifier(Box::new(StandardWebhooks::new()), secret.clone(), NOW);
        let ts = Timestamp::from_unix(NOW - offset);
        let message = Message::new(&body).with_id(&id).with_timestamp(ts);
        let mut headers = common::signed_pairs(&StandardWebhooks::new().sign(&secret, &message).unwrap());
        prop_assert!(verifier.verify(&headers, &body).is_ok());

        let mut body = body.clone();
        match part {
            0 => flip(&mut body, bit),
            1..=3 => {
                let mut raw = headers[part - 1].1.clone().into_bytes();
                flip(&mut raw, bit);
                headers[part - 1].1 = String::from_utf8_lossy(&raw).into_owned();
            }
            _ => unreachable!(),
        }
        prop_assert!(verifier.verify(&headers, &body).is_err());
    }

    /// Every HMAC scheme: a flipped bit in the body or the signature header fails.
    #[test]
    fn every_scheme_one_bit_flip_fails(
        scheme_index in 0usize..7,
        user_id in 1u32..1_000_000,
        extra in "[a-z ]{0,40}",
        flip_signature in any::<bool>(),
        bit in any::<usize>(),
    ) {
        let names = ["raw-body", "id-body", "canonical-json", "x-hub", "github", "standard-webhooks", "stripe"];
        let name = names[scheme_index];
        let body = format!(r#"{{"user_id":{user_id},"timestamp":{NOW},"note":"{extra}"}}"#).into_bytes();
        let scheme = common::scheme(name, Some("api-key"), None);
        let secret = common::secret(name, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        let message = Message::new(&body).with_id("evt_1").with_timestamp(Timestamp::from_unix(NOW));
        let mut headers = common::signed_pairs(&scheme.sign(&secret, &message).unwrap());
        let verifier = common::verifier(scheme, secret, NOW);
        let coverage = verifier.verify(&headers, &body).unwrap().coverage();

        let mut body = body.clone();
        let signature = headers.len() - 1; // every scheme puts its signature last
        if flip_signature {
            let original = headers[signature].1.clone();
            let mut raw = original.clone().into_bytes();
            flip(&mut raw, bit);
            let flipped = String::from_utf8_lossy(&raw).into_owned();
            // Hex is decoded case-insensitively (documented policy): `a` -> `A` is no change.
            let hex_case_only = name != "standard-webhooks" && flipped.eq_ignore_ascii_case(&original);
            prop_assume!(!hex_case_only);
            headers[signature].1 = flipped;
        } else if coverage.covers_whole_body() {
            flip(&mut body, bit);
        } else {
            // TaskOn covers only user_id and timestamp: flip inside the user_id digits.
            let at = body.windows(10).position(|w| w == b"\"user_id\":").unwrap() + 10;
            body[at] = if body[at] == b'9' { b'8' } else { body[at] + 1 };
        }
        prop_assert!(verifier.verify(&headers, &body).is_err());
    }

    /// Arbitrary headers and bodies give a declared error or a verified value, never a panic.
    #[test]
    fn arbitrary_input_never_panics(
        scheme_index in 0usize..7,
        values in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..80), 5),
        body in proptest::collection::vec(any::<u8>(), 0..128),
    ) {
        let names = ["raw-body", "id-body", "canonical-json", "x-hub", "github", "standard-webhooks", "stripe"];
        let name = names[scheme_index];
        let header_names = ["X-Webhook-Signature", "X-Webhook-ID", "X-Signature", "webhook-timestamp", "Stripe-Signature"];
        let headers: Vec<(String, Vec<u8>)> = header_names
            .iter()
            .zip(values)
            .map(|(k, v)| ((*k).to_owned(), v))
            .collect();
        let verifier = common::verifier(
            common::scheme(name, Some("api-key"), None),
            common::secret(name, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            NOW,
        );
        let _ = verifier.verify(&headers, &body);
        let stripe_value = String::from_utf8_lossy(&headers[4].1).into_owned();
        let stripe = common::verifier(Box::new(Stripe), Secret::from_raw("k").unwrap(), NOW);
        let _ = stripe.verify(&[("Stripe-Signature", stripe_value)], &body);
    }
}
