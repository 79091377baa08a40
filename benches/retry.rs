//! Cost of one retry-planning decision, against a trivial baseline (`base × factor^n`
//! computed directly), and the memory one pending delivery's planning state takes.
//!
//! Run: `cargo bench --bench retry -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::time::Instant;

use criterion::Criterion;
use hookrelay::retry::{
    AttemptOutcome, Decision, DeliveryState, RetryPolicy, SeededJitter, UnixMillis,
};

const T0: UnixMillis = UnixMillis::from_secs(1_700_000_000);

/// A delivery whose first attempt just failed with `outcome`: the next `plan` does the full
/// work (classify, schedule, jitter, Retry-After, max age).
fn failed_once(outcome: AttemptOutcome) -> DeliveryState {
    let mut s = DeliveryState::new(T0);
    s.record(outcome, T0);
    s
}

fn baseline(base_ms: u64, factor: f64, n: i32) -> u64 {
    (base_ms as f64 * factor.powi(n)) as u64
}

fn benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("retry");
    let standard = RetryPolicy::standard_webhooks();
    let task_hub = RetryPolicy::task_hub();
    let proposal = RetryPolicy::proposal_generator();
    let mut jitter = SeededJitter::new(1);

    g.bench_function("baseline: base * factor^n", |b| {
        b.iter(|| baseline(black_box(5_000), black_box(5.0), black_box(3)))
    });

    let s500 = failed_once(AttemptOutcome::status(500));
    g.bench_function("plan: standard_webhooks, 500, ±20% jitter", |b| {
        b.iter(|| {
            let mut s = black_box(&s500).clone();
            standard.plan(&mut s, black_box(T0), &mut jitter)
        })
    });

    let s429 = failed_once(AttemptOutcome::from_response(429, Some(b"30")));
    g.bench_function("plan: task_hub, 429 + Retry-After", |b| {
        b.iter(|| {
            let mut s = black_box(&s429).clone();
            task_hub.plan(&mut s, black_box(T0), &mut jitter)
        })
    });

    let timeout = failed_once(AttemptOutcome::Timeout);
    g.bench_function("plan: proposal_generator, timeout, max age", |b| {
        b.iter(|| {
            let mut s = black_box(&timeout).clone();
            proposal.plan(&mut s, black_box(T0), &mut jitter)
        })
    });

    g.bench_function("parse Retry-After: HTTP-date", |b| {
        b.iter(|| hookrelay::retry::RetryAfter::parse(black_box(b"Sun, 06 Nov 1994 08:49:37 GMT")))
    });
    g.finish();
}

/// Nanoseconds per call of `f`, the best of five runs of `n` calls.
fn ns_per_call(n: u32, mut f: impl FnMut() -> u64) -> f64 {
    (0..5)
        .map(|_| {
            let start = Instant::now();
            let mut acc = 0u64;
            for _ in 0..n {
                acc = acc.wrapping_add(f());
            }
            black_box(acc);
            start.elapsed().as_secs_f64() * 1e9 / f64::from(n)
        })
        .fold(f64::INFINITY, f64::min)
}

fn report() {
    let policy = RetryPolicy::standard_webhooks();
    let state = failed_once(AttemptOutcome::status(500));
    let mut jitter = SeededJitter::new(2);
    let n = 2_000_000;
    let plan = ns_per_call(n, || {
        let mut s = black_box(&state).clone();
        match policy.plan(&mut s, black_box(T0), &mut jitter) {
            Decision::RetryAt { at, .. } => at.as_millis(),
            _ => 0,
        }
    });
    let base = ns_per_call(n, || {
        baseline(black_box(5_000), black_box(5.0), black_box(3))
    });
    let size = std::mem::size_of::<DeliveryState>();
    println!();
    println!("retry planner summary (best of 5 × {n} calls, same process):");
    println!("  plan (standard_webhooks, 500, jitter): {plan:.1} ns/decision");
    println!("  baseline base*factor^n:               {base:.1} ns");
    println!(
        "  ratio plan / baseline:                {:.1}×",
        plan / base
    );
    println!("  size_of::<DeliveryState>():           {size} bytes");
    println!(
        "  1 000 000 pending deliveries:         {:.1} MB ({:.1} MiB) of planning state",
        size as f64 * 1e6 / 1e6,
        size as f64 * 1e6 / (1024.0 * 1024.0)
    );
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    benches(&mut c);
    c.final_summary();
    report();
}
