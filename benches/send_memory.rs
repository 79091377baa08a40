//! Memory per pending delivery in `MemoryStore`, counted by an instrumented allocator.
//!
//! ```sh
//! cargo bench --bench send_memory --features send
//! ```
//!
//! 1. 100 000 messages of 1 KiB each to one endpoint, all pending: bytes held per delivery
//!    beyond its 1 KiB payload (target < 256 B).
//! 2. 10 000 messages of 1 KiB, each fanned out to 10 endpoints: each payload is held once,
//!    so the total grows by 10 deliveries' overhead per message, not 10 payloads.
//!
//! Both publish many deliveries and divide: the store grows its tables a chunk at a time, so
//! one publication alone may allocate nothing or a whole chunk.
//!
//! The baseline in the same run is the payloads alone: 100 000 1 KiB `Bytes` in a `Vec`.

use std::alloc::System;

use hookrelay::Secret;
use hookrelay::event::OutgoingEvent;
use hookrelay::profile::Profile;
use hookrelay::send::{Endpoint, MemoryStore, Sender};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const N: usize = 100_000;
const PAYLOAD: usize = 1024;

fn net(region: &Region<'_, System>) -> i64 {
    let stats = region.change();
    // `realloc` growth and shrinkage are already in these two counters.
    stats.bytes_allocated as i64 - stats.bytes_deallocated as i64
}

fn event(i: usize) -> OutgoingEvent {
    // `{"id":…,"type":"task.created","timestamp":…,"data":{"pad":"…"}}` padded to 1 KiB.
    let envelope = 96;
    let pad = "x".repeat(PAYLOAD - envelope - 12);
    OutgoingEvent::new("task.created", serde_json::json!({ "pad": pad }))
        .with_id(format!("evt_{i:020}").into())
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        // Baseline: the payloads alone.
        let region = Region::new(GLOBAL);
        let payloads: Vec<bytes::Bytes> = (0..N)
            .map(|_| bytes::Bytes::from(vec![b'x'; PAYLOAD]))
            .collect();
        let baseline = net(&region);
        drop(payloads);

        let sender = Sender::new(MemoryStore::new());
        let endpoint = Endpoint::builder("https://example.com/hook", Profile::TaskHub)
            .secret(Secret::from_raw("k").unwrap())
            .build()
            .unwrap();
        sender.add_endpoint(endpoint).await.unwrap();
        let events: Vec<OutgoingEvent> = (0..N).map(event).collect();
        let body_len = Profile::TaskHub
            .render_body(&events[0], Default::default())
            .unwrap()
            .len();
        let region = Region::new(GLOBAL);
        for chunk in events.chunks(1000) {
            sender.publish_batch(chunk.to_vec()).await.unwrap();
        }
        let held = net(&region);
        let per_delivery = (held as f64 - (N * body_len) as f64) / N as f64;
        println!(
            "memory store: {N} pending deliveries of {body_len} B bodies hold {:.1} MiB; \
             {per_delivery:.0} B per delivery beyond its payload (target < 256 B); \
             baseline payloads alone {:.1} MiB",
            held as f64 / 1048576.0,
            baseline as f64 / 1048576.0,
        );

        // Fan-out: 10 000 messages, each to 10 endpoints.
        const MESSAGES: usize = 10_000;
        const FAN: usize = 10;
        let fan = Sender::new(MemoryStore::new());
        for i in 0..FAN {
            fan.add_endpoint(
                Endpoint::builder(format!("https://example.com/{i}"), Profile::TaskHub)
                    .secret(Secret::from_raw("k").unwrap())
                    .build()
                    .unwrap(),
            )
            .await
            .unwrap();
        }
        let events: Vec<OutgoingEvent> = (0..MESSAGES).map(event).collect();
        fan.publish(event(N)).await.unwrap(); // warm the endpoint cache
        let region = Region::new(GLOBAL);
        for chunk in events.chunks(100) {
            fan.publish_batch(chunk.to_vec()).await.unwrap();
        }
        let fanned = net(&region);
        let per_delivery = (fanned as f64 - (MESSAGES * body_len) as f64) / (MESSAGES * FAN) as f64;
        println!(
            "fan-out: {MESSAGES} messages of {body_len} B to {FAN} endpoints each hold {:.1} MiB; \
             {per_delivery:.0} B per delivery beyond its message's payload, held once",
            fanned as f64 / 1048576.0,
        );
    });
}
