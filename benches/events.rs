//! Typed event parsing vs `serde_json::Value`, and the JavaScript-compatible writer vs
//! `serde_json::to_vec`, over the seed documents' examples.
//!
//! `cargo bench --bench events -- --warm-up-time 1 --measurement-time 3`

#![allow(missing_docs)] // criterion_group! generates undocumented functions

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use hookrelay::event::proposal_generator::Message;
use hookrelay::event::{
    EventData, EventType, TaskHubEvent, TaskLinkEnvelope, TaskLinkEvent, TaskOnEvent,
};

macro_rules! fixtures {
    ($dir:literal: $($name:literal),* $(,)?) => {
        &[$(($name, include_bytes!(concat!("../tests/fixtures/", $dir, "/", $name, ".json")) as &[u8])),*]
    };
}

const PROPOSAL_GENERATOR: &[(&str, &[u8])] = fixtures!("proposal-generator":
    "job.created", "job.started", "job.progress", "job.completed", "job.failed",
    "document.created", "proposal.created", "webhook.verify");
const TASKLINK: &[(&str, &[u8])] = fixtures!("tasklink":
    "job.created", "job.updated", "job.assigned", "job.completed", "payment.created",
    "payment.completed", "payment.failed", "payment.refunded", "application.submitted",
    "application.accepted", "review.created", "dispute.created", "dispute.resolved");
const TASKON: &[(&str, &[u8])] = fixtures!("taskon":
    "reward_token", "reward_points", "curl_reward_token", "curl_reward_points");
const TASK_HUB: &[(&str, &[u8])] = fixtures!("task-hub":
    "task.created", "task.updated", "task.completed", "task.deleted", "system.maintenance",
    "system.error");

fn parse_value(set: &[(&str, &[u8])]) {
    for (_, body) in set {
        black_box(serde_json::from_slice::<serde_json::Value>(black_box(body)).unwrap());
    }
}

fn parse(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse");
    g.bench_function("proposal-generator/typed", |b| {
        b.iter(|| {
            for (_, body) in PROPOSAL_GENERATOR {
                black_box(Message::from_slice(black_box(body)).unwrap());
            }
        })
    });
    g.bench_function("proposal-generator/value", |b| {
        b.iter(|| parse_value(PROPOSAL_GENERATOR))
    });
    g.bench_function("tasklink/typed", |b| {
        b.iter(|| {
            for (_, body) in TASKLINK {
                black_box(TaskLinkEnvelope::<TaskLinkEvent>::from_slice(black_box(body)).unwrap());
            }
        })
    });
    g.bench_function("tasklink/value", |b| b.iter(|| parse_value(TASKLINK)));
    g.bench_function("taskon/typed", |b| {
        b.iter(|| {
            for (_, body) in TASKON {
                black_box(TaskOnEvent::from_slice(black_box(body)).unwrap());
            }
        })
    });
    g.bench_function("taskon/value", |b| b.iter(|| parse_value(TASKON)));
    let hub: Vec<(EventType, &str)> = TASK_HUB
        .iter()
        .map(|(name, body)| (EventType::from(*name), std::str::from_utf8(body).unwrap()))
        .collect();
    g.bench_function("task-hub/typed", |b| {
        b.iter(|| {
            for (t, body) in &hub {
                black_box(TaskHubEvent::from_data(t, black_box(body)).unwrap());
            }
        })
    });
    g.bench_function("task-hub/value", |b| b.iter(|| parse_value(TASK_HUB)));
    g.finish();
}

fn write(c: &mut Criterion) {
    let typed: Vec<TaskLinkEnvelope<TaskLinkEvent>> = TASKLINK
        .iter()
        .map(|(_, b)| TaskLinkEnvelope::from_slice(b).unwrap())
        .collect();
    let values: Vec<serde_json::Value> = TASKLINK
        .iter()
        .chain(PROPOSAL_GENERATOR)
        .chain(TASKON)
        .chain(TASK_HUB)
        .map(|(_, b)| serde_json::from_slice(b).unwrap())
        .collect();
    let mut g = c.benchmark_group("write");
    g.bench_function("tasklink-typed/js", |b| {
        b.iter(|| {
            for e in &typed {
                black_box(hookrelay::json::to_js_vec(black_box(e)).unwrap());
            }
        })
    });
    g.bench_function("tasklink-typed/serde_json", |b| {
        b.iter(|| {
            for e in &typed {
                black_box(serde_json::to_vec(black_box(e)).unwrap());
            }
        })
    });
    g.bench_function("all-seeds-value/js", |b| {
        b.iter(|| {
            for v in &values {
                black_box(hookrelay::json::to_js_vec(black_box(v)).unwrap());
            }
        })
    });
    g.bench_function("all-seeds-value/python-ascii", |b| {
        b.iter(|| {
            for v in &values {
                black_box(hookrelay::json::to_python_ascii_vec(black_box(v)).unwrap());
            }
        })
    });
    g.bench_function("all-seeds-value/serde_json", |b| {
        b.iter(|| {
            for v in &values {
                black_box(serde_json::to_vec(black_box(v)).unwrap());
            }
        })
    });
    g.finish();
    // Keep `EventData` in use for the task-hub path above.
    let _ = TaskHubEvent::KNOWN_TYPES.len()
        + usize::from(typed[0].data.event_type().as_str().is_empty());
}

/// Best of 15 alternating rounds of `n` calls each of `ours` and `base`, in nanoseconds per
/// call. Alternating keeps a busy machine's load changes from favouring either side.
fn best_pair(n: u32, mut ours: impl FnMut(), mut base: impl FnMut()) -> (f64, f64) {
    let time = |f: &mut dyn FnMut()| {
        let start = std::time::Instant::now();
        for _ in 0..n {
            f();
        }
        start.elapsed().as_nanos() as f64 / f64::from(n)
    };
    let (mut a, mut b) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..15 {
        a = a.min(time(&mut ours));
        b = b.min(time(&mut base));
    }
    (a, b)
}

/// Prints the ratios the targets are stated in, measured back to back in one process.
fn summary(_: &mut Criterion) {
    if std::env::var_os("EVENTS_NO_SUMMARY").is_some() {
        return;
    }
    let typed: Vec<TaskLinkEnvelope<TaskLinkEvent>> = TASKLINK
        .iter()
        .map(|(_, b)| TaskLinkEnvelope::from_slice(b).unwrap())
        .collect();
    let values: Vec<serde_json::Value> = TASKLINK
        .iter()
        .chain(PROPOSAL_GENERATOR)
        .chain(TASKON)
        .chain(TASK_HUB)
        .map(|(_, b)| serde_json::from_slice(b).unwrap())
        .collect();
    let hub: Vec<(EventType, &str)> = TASK_HUB
        .iter()
        .map(|(name, body)| (EventType::from(*name), std::str::from_utf8(body).unwrap()))
        .collect();
    let n = 1_000;
    let write_serde_json = || {
        for v in &values {
            black_box(serde_json::to_vec(black_box(v)).unwrap());
        }
    };
    let rows = [
        (
            "parse proposal-generator: typed / Value",
            best_pair(
                n,
                || {
                    for (_, body) in PROPOSAL_GENERATOR {
                        black_box(Message::from_slice(black_box(body)).unwrap());
                    }
                },
                || parse_value(PROPOSAL_GENERATOR),
            ),
        ),
        (
            "parse tasklink: typed / Value",
            best_pair(
                n,
                || {
                    for (_, body) in TASKLINK {
                        black_box(
                            TaskLinkEnvelope::<TaskLinkEvent>::from_slice(black_box(body)).unwrap(),
                        );
                    }
                },
                || parse_value(TASKLINK),
            ),
        ),
        (
            "parse taskon: typed / Value",
            best_pair(
                n,
                || {
                    for (_, body) in TASKON {
                        black_box(TaskOnEvent::from_slice(black_box(body)).unwrap());
                    }
                },
                || parse_value(TASKON),
            ),
        ),
        (
            "parse task-hub: typed / Value",
            best_pair(
                n,
                || {
                    for (t, body) in &hub {
                        black_box(TaskHubEvent::from_data(t, black_box(body)).unwrap());
                    }
                },
                || parse_value(TASK_HUB),
            ),
        ),
        (
            "write tasklink typed: js / serde_json",
            best_pair(
                n,
                || {
                    for e in &typed {
                        black_box(hookrelay::json::to_js_vec(black_box(e)).unwrap());
                    }
                },
                || {
                    for e in &typed {
                        black_box(serde_json::to_vec(black_box(e)).unwrap());
                    }
                },
            ),
        ),
        (
            "write all seeds Value: js / serde_json",
            best_pair(
                n,
                || {
                    for v in &values {
                        black_box(hookrelay::json::to_js_vec(black_box(v)).unwrap());
                    }
                },
                write_serde_json,
            ),
        ),
        (
            "write all seeds Value: python-ascii / serde_json",
            best_pair(
                n,
                || {
                    for v in &values {
                        black_box(hookrelay::json::to_python_ascii_vec(black_box(v)).unwrap());
                    }
                },
                write_serde_json,
            ),
        ),
    ];
    println!(
        "\nsummary (best of 15 alternating rounds x {n} batches; ns per batch of seed examples):"
    );
    for (name, (ours, base)) in rows {
        println!(
            "  {name:<50} {ours:>8.0} / {base:>8.0} = {:.2}x",
            ours / base
        );
    }
}

criterion_group!(benches, parse, write, summary);
criterion_main!(benches);
