//! Verification throughput for every scheme at 1 KiB, 16 KiB and 1 MiB, against a raw
//! HMAC-SHA256 over the same bytes with a fresh key each time, in the same run.
//!
//! ```sh
//! cargo bench --bench verify -- --warm-up-time 1 --measurement-time 3
//! python3 benches/report.py verify   # ratio table from criterion's estimates
//! ```
//!
//! After criterion's runs it prints a paired summary at 1 KiB, where the target is tightest:
//! raw HMAC and each scheme timed back to back in alternating rounds, so the machine drifting
//! between criterion's separate benchmarks cannot bias the ratio. `-- none` skips criterion
//! and prints only that summary.

use std::hint::black_box;
use std::time::Instant;

use criterion::{BenchmarkId, Criterion, Throughput};
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

/// A verifier for `scheme` with the benchmark's secret and clock, and the headers it signs
/// for `body`.
fn signed_setup(scheme: Box<dyn Scheme>, body: &[u8]) -> (Verifier, Vec<(String, String)>) {
    let secret = Secret::from_raw(KEY).unwrap();
    let message = Message::new(body)
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
    assert!(verifier.verify(&headers, body).is_ok());
    (verifier, headers)
}

fn raw_hmac(body: &[u8]) -> impl Sized {
    let mut mac = Hmac::<Sha256>::new_from_slice(black_box(KEY)).unwrap();
    mac.update(body);
    mac.finalize().into_bytes()
}

fn verify(c: &mut Criterion) {
    let mut group = c.benchmark_group("verify");
    for (size, label) in SIZES {
        let body = body(size);
        group.throughput(Throughput::Bytes(size as u64));

        group.bench_with_input(BenchmarkId::new("raw-hmac", label), &body, |b, body| {
            b.iter(|| black_box(raw_hmac(body)));
        });

        for (name, scheme) in schemes() {
            let (verifier, headers) = signed_setup(scheme, &body);
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

/// Seconds for `n` calls of `f`.
fn seconds(n: u32, mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    for _ in 0..n {
        f();
    }
    start.elapsed().as_secs_f64()
}

/// The 1 KiB ratios measured in pairs: each round times raw HMAC and the scheme back to back
/// (alternating which goes first), so drift in the machine's speed between criterion's
/// separate benchmarks cannot bias the ratio. Prints the median and the spread of the rounds.
fn paired_report() {
    const ROUNDS: usize = 21;
    const CALLS: u32 = 20_000;
    let body = body(1 << 10);
    println!();
    println!("verify at 1 KiB, paired with raw HMAC ({ROUNDS} rounds × {CALLS} calls each):");
    println!("  scheme               median ratio   (min – max)");
    for (name, scheme) in schemes() {
        let (verifier, headers) = signed_setup(scheme, &body);
        let mut raw = || {
            black_box(raw_hmac(black_box(&body)));
        };
        let mut ours = || {
            black_box(
                verifier
                    .verify(black_box(&headers), black_box(&body))
                    .is_ok(),
            );
        };
        let mut ratios: Vec<f64> = (0..ROUNDS)
            .map(|round| {
                if round % 2 == 0 {
                    let r = seconds(CALLS, &mut raw);
                    r / seconds(CALLS, &mut ours)
                } else {
                    let o = seconds(CALLS, &mut ours);
                    seconds(CALLS, &mut raw) / o
                }
            })
            .collect();
        ratios.sort_by(f64::total_cmp);
        println!(
            "  {name:<20} {:>6.3}×        ({:.3} – {:.3})",
            ratios[ROUNDS / 2],
            ratios[0],
            ratios[ROUNDS - 1]
        );
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    verify(&mut c);
    c.final_summary();
    paired_report();
}
