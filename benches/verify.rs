//! Verification throughput for every scheme at 1 KiB, 16 KiB and 1 MiB, against a raw
//! HMAC-SHA256 over the same bytes with a fresh key each time, in the same run.
//!
//! ```sh
//! cargo bench --bench verify -- --warm-up-time 1 --measurement-time 3
//! python3 benches/report.py verify   # ratio table from criterion's estimates
//! ```

// criterion_group! generates an undocumented function.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use hmac::{Hmac, Mac as _};
use hookrelay::scheme::{
    ApiKey, CanonicalJson, IdBody, Message, RawBody, Scheme, StandardWebhooks, Stripe, XHub,
};
use hookrelay::{FixedClock, Secret, Timestamp, Verifier};
use sha2::Sha256;

const SIZES: [(usize, &str); 3] = [(1 << 10, "1KiB"), (16 << 10, "16KiB"), (1 << 20, "1MiB")];
const NOW: i64 = 1_758_251_308;
const KEY: &[u8] = b"whsec_benchmark_secret_key_32by";

/// A JSON body of exactly `size` bytes carrying TaskOn's signed fields.
fn body(size: usize) -> Vec<u8> {
    let head = format!(r#"{{"user_id":11111,"timestamp":{NOW},"pad":""#);
    let mut body = head.into_bytes();
    body.resize(size - 2, b'x');
    body.extend_from_slice(b"\"}");
    body
}

fn schemes() -> Vec<(&'static str, Box<dyn Scheme>)> {
    vec![
        ("raw-body", Box::new(RawBody)),
        ("id-body", Box::new(IdBody)),
        (
            "canonical-json",
            Box::new(CanonicalJson::new(ApiKey::new("api-key").unwrap())),
        ),
        ("x-hub", Box::new(XHub::new())),
        ("github", Box::new(XHub::github())),
        ("standard-webhooks", Box::new(StandardWebhooks::new())),
        ("stripe", Box::new(Stripe)),
    ]
}

fn verify(c: &mut Criterion) {
    let mut group = c.benchmark_group("verify");
    for (size, label) in SIZES {
        let body = body(size);
        group.throughput(Throughput::Bytes(size as u64));

        group.bench_with_input(BenchmarkId::new("raw-hmac", label), &body, |b, body| {
            b.iter(|| {
                let mut mac = Hmac::<Sha256>::new_from_slice(black_box(KEY)).unwrap();
                mac.update(body);
                black_box(mac.finalize().into_bytes())
            });
        });

        for (name, scheme) in schemes() {
            let secret = Secret::from_raw(KEY).unwrap();
            let message = Message::new(&body)
                .with_id("msg_2Yq8bench")
                .with_timestamp(Timestamp::from_unix(NOW));
            let headers: Vec<(String, String)> = scheme
                .sign(&secret, &message)
                .unwrap()
                .iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            let verifier = Verifier::builder(scheme)
                .secret(secret)
                .clock(FixedClock(Timestamp::from_unix(NOW)))
                .max_body_bytes(usize::MAX)
                .build()
                .unwrap();
            assert!(verifier.verify(&headers, &body).is_ok());
            group.bench_with_input(BenchmarkId::new(name, label), &body, |b, body| {
                b.iter(|| {
                    black_box(
                        verifier
                            .verify(black_box(&headers), black_box(body))
                            .is_ok(),
                    )
                });
            });
        }
    }
    group.finish();
}

criterion_group!(benches, verify);
criterion_main!(benches);
