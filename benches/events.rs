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

criterion_group!(benches, parse, write);
criterion_main!(benches);
