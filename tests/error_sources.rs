//! An error's message is printed once in its `source()` chain: no error's `Display` repeats
//! a cause that its `source()` also returns, so a chain printer (anyhow's `{:#}`, the CLI's
//! `a: b: c`) shows each level once.

use std::error::Error;

use hookrelay::event::OutgoingEvent;
use hookrelay::profile::Profile;
use hookrelay::receive::{Receiver, Rejection};
use hookrelay::scheme::{Message, Scheme as _, StandardWebhooks, XHub};
use hookrelay::send::{Endpoint, MemoryStore, PublishError, ReqwestTransport, Sender};
use hookrelay::{Secret, Verifier, VerifyError};

/// Every level's message, outermost first; asserts no level contains a deeper one.
fn levels(err: &(dyn Error + 'static)) -> Vec<String> {
    let mut levels = Vec::new();
    let mut current = Some(err);
    while let Some(e) = current {
        levels.push(e.to_string());
        current = e.source();
    }
    for (i, outer) in levels.iter().enumerate() {
        assert!(!outer.is_empty(), "{levels:?}");
        for inner in &levels[i + 1..] {
            assert!(
                !outer.contains(inner.as_str()),
                "{outer:?} repeats its source {inner:?}"
            );
        }
    }
    levels
}

fn verify_error() -> VerifyError {
    let verifier = Verifier::builder(StandardWebhooks::new())
        .secret(Secret::from_base64("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap())
        .build()
        .unwrap();
    verifier.verify(&http::HeaderMap::new(), b"{}").unwrap_err()
}

#[tokio::test]
async fn publish_error_gives_its_cause_as_the_source() {
    let sender = Sender::new(MemoryStore::new());
    let unsafe_int = OutgoingEvent::new(
        "task.created",
        serde_json::json!({ "n": 9_007_199_254_740_993_u64 }),
    );
    let err = sender.publish(unsafe_int).await.unwrap_err();
    assert!(matches!(err, PublishError::Body(_)), "{err:?}");
    let levels = levels(&err);
    assert_eq!(levels.len(), 2, "{levels:?}");
    assert_eq!(levels[0], "the event cannot be written as JSON");
}

#[test]
fn transport_build_error_gives_reqwest_error_as_the_source() {
    let err = ReqwestTransport::builder()
        .root_certificate(reqwest::Certificate::from_der(b"not a certificate").unwrap())
        .build()
        .unwrap_err();
    let levels = levels(&err);
    assert_eq!(levels[0], "cannot build the http client");
    assert!(levels.len() >= 2, "{levels:?}");
}

#[test]
fn verification_errors_and_rejections() {
    let err = verify_error();
    assert_eq!(levels(&err).len(), 1);

    let rejection = Rejection::from_verify(err.clone());
    let levels = levels(&rejection);
    assert_eq!(levels.len(), 2, "{levels:?}");
    assert_eq!(levels[1], err.to_string());
}

#[test]
fn payload_error_stands_alone() {
    let secret = Secret::from_raw("It's a Secret to Everybody").unwrap();
    let body = b"[]";
    let signed = XHub::github().sign(&secret, &Message::new(body)).unwrap();
    let headers: Vec<(String, String)> = signed
        .iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let verifier = Verifier::builder(XHub::github())
        .secret(secret)
        .build()
        .unwrap();
    let verified = verifier.verify(&headers, body).unwrap();
    // serde's words are the payload error's own message; it has no source.
    let err = verified.json::<u32>().unwrap_err();
    let levels = levels(&err);
    assert_eq!(levels.len(), 1, "{levels:?}");
    assert!(
        levels[0].starts_with("payload does not parse: "),
        "{levels:?}"
    );
}

#[test]
fn builder_errors() {
    let endpoint = Endpoint::builder("not a url", Profile::TaskHub)
        .secret(Secret::from_raw("your-secret-key").unwrap())
        .build()
        .unwrap_err();
    assert_eq!(levels(&endpoint).len(), 1);

    let receiver = Receiver::builder(Profile::TaskOn).build().unwrap_err();
    let levels = levels(&receiver);
    assert_eq!(levels.len(), 2, "{levels:?}");
}
