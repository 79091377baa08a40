//! hookrelay's Standard Webhooks verify vs. the `svix` crate's `Webhook::verify`, plus a raw
//! HMAC-SHA256 baseline over the same signed bytes, at 1 KiB, 16 KiB and 1 MiB bodies.
//!
//! Run from this directory: `cargo bench -- --warm-up-time 1 --measurement-time 3`.

use std::hint::black_box;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use hmac::{Hmac, Mac};
use hookrelay::scheme::{Message, Scheme, StandardWebhooks};
use hookrelay::{Secret, Timestamp, Verifier};
use http::{HeaderMap, HeaderName, HeaderValue};
use sha2::Sha256;

/// The Standard Webhooks specification's example secret.
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const MSG_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const SIZES: [(usize, &str); 3] = [(1 << 10, "1KiB"), (16 << 10, "16KiB"), (1 << 20, "1MiB")];

/// A JSON-ish body of exactly `len` bytes.
fn body(len: usize) -> Vec<u8> {
    let mut body = br#"{"type":"bench","data":""#.to_vec();
    let tail = br#""}"#;
    let filler = len - body.len() - tail.len();
    body.extend((0..filler).map(|i| b'a' + (i % 26) as u8));
    body.extend_from_slice(tail);
    assert_eq!(body.len(), len);
    body
}

/// Signs `body` now with hookrelay and returns the headers as an `http::HeaderMap`
/// (the `http` 1.x type both crates read) plus the timestamp text used.
fn signed_headers(secret: &Secret, body: &[u8]) -> (HeaderMap, String) {
    let now = Timestamp::now();
    let message = Message::new(body).with_id(MSG_ID).with_timestamp(now);
    let signed = StandardWebhooks::new()
        .sign(secret, &message)
        .expect("signing succeeds");
    let mut map = HeaderMap::new();
    for (name, value) in signed.iter() {
        map.insert(
            HeaderName::from_bytes(name.as_bytes()).expect("header name"),
            HeaderValue::from_str(value).expect("header value"),
        );
    }
    (map, now.to_string())
}

fn bench(c: &mut Criterion) {
    let secret = Secret::from_base64(SECRET).expect("secret");
    // The raw HMAC key bytes behind `whsec_…` (what both verifiers key HMAC with).
    let key = BASE64
        .decode(SECRET.strip_prefix("whsec_").unwrap())
        .expect("base64");
    let hookrelay = Verifier::builder(StandardWebhooks::new())
        .secret(secret.clone())
        .max_body_bytes(4 << 20)
        .build()
        .expect("verifier");
    let svix = svix::webhooks::Webhook::new(SECRET).expect("svix webhook");

    let mut group = c.benchmark_group("standard-webhooks-verify");
    for (len, label) in SIZES {
        let body = body(len);
        let (headers, timestamp) = signed_headers(&secret, &body);

        // Both verifiers must accept the same signed input before anything is timed...
        hookrelay
            .verify(&headers, &body)
            .expect("hookrelay accepts its own signature");
        svix.verify(&body, &headers)
            .expect("svix accepts hookrelay's signature");
        // ...and both must reject it with one body byte flipped.
        let mut tampered = body.clone();
        tampered[len / 2] ^= 1;
        assert!(hookrelay.verify(&headers, &tampered).is_err());
        assert!(svix.verify(&tampered, &headers).is_err());
        // The baseline computes the same tag that is in the header.
        let tag = raw_hmac(&key, &timestamp, &body);
        let header = headers["webhook-signature"].to_str().unwrap();
        assert_eq!(header, format!("v1,{}", BASE64.encode(tag)));

        group.throughput(Throughput::Bytes(len as u64));
        group.bench_with_input(BenchmarkId::new("hookrelay", label), &body, |b, body| {
            // `expect` inside the loop: a stale timestamp would otherwise time the cheap
            // rejection path instead of the HMAC.
            b.iter(|| {
                hookrelay
                    .verify(black_box(&headers), black_box(body))
                    .map(|verified| verified.body().len())
                    .expect("hookrelay accepts")
            })
        });
        group.bench_with_input(BenchmarkId::new("svix", label), &body, |b, body| {
            b.iter(|| {
                svix.verify(black_box(body), black_box(&headers))
                    .expect("svix accepts")
            })
        });
        group.bench_with_input(BenchmarkId::new("raw-hmac", label), &body, |b, body| {
            b.iter(|| raw_hmac(black_box(&key), black_box(&timestamp), black_box(body)))
        });
    }
    group.finish();
}

/// HMAC-SHA256 over `{id}.{timestamp}.{body}`, keyed afresh on every call.
fn raw_hmac(key: &[u8], timestamp: &str, body: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
    mac.update(MSG_ID.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().into()
}

criterion_group! {
    name = benches;
    config = Criterion::default();
    targets = bench
}
criterion_main!(benches);
