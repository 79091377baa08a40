//! Requests per second through the axum layer and extractor (verify + parse + dedup) over
//! loopback with 1 KiB events, against the same axum route without verification, in the
//! same run. Both routes get the same signed requests; every request carries a fresh
//! `webhook-id`, so each one is verified, claimed, parsed and recorded — no duplicate
//! short-cuts. 16 keep-alive connections send concurrently (as a load generator would), so
//! the server, not wake-up latency, is measured.
//!
//! ```sh
//! cargo bench --bench receive --features axum -- --warm-up-time 1 --measurement-time 5
//! python3 benches/report.py receive plain-axum
//! ```

// criterion_group! generates an undocumented function.
#![allow(missing_docs)]

use std::time::Instant;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;
use axum::serve::ListenerExt as _;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hookrelay::profile::Profile;
use hookrelay::receive::axum::{Delivery, WebhookLayer};
use hookrelay::receive::{MemoryIdempotencyStore, Receiver};
use hookrelay::scheme::{Message, Scheme, StandardWebhooks};
use hookrelay::{Secret, Timestamp};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn body() -> Vec<u8> {
    let mut body = br#"{"type":"task.created","timestamp":"2025-01-01T00:00:00Z","data":{"taskId":"123","note":""#.to_vec();
    body.resize(1024 - 3, b'x');
    body.extend_from_slice(br#""}}"#);
    body
}

/// Starts both routers on loopback; returns (plain port, hookrelay port).
fn serve(runtime: &tokio::runtime::Runtime) -> (u16, u16) {
    let plain = Router::new().route(
        "/hook",
        post(|body: axum::body::Bytes| async move {
            let parsed: serde_json::Value = serde_json::from_slice(&body).unwrap();
            std::hint::black_box(parsed);
            StatusCode::OK
        }),
    );
    let receiver = Receiver::builder(Profile::StandardWebhooks)
        .secret(Secret::from_base64(SECRET).unwrap())
        .store(MemoryIdempotencyStore::with_capacity(50_000_000))
        .build()
        .unwrap();
    let verified = Router::new()
        .route(
            "/hook",
            post(|delivery: Delivery<serde_json::Value>| async move {
                std::hint::black_box(delivery.event);
                StatusCode::OK
            }),
        )
        .route_layer(WebhookLayer::new(receiver));
    runtime.block_on(async {
        let a = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let b = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let ports = (
            a.local_addr().unwrap().port(),
            b.local_addr().unwrap().port(),
        );
        // Both servers answer without Nagle delays, like the client.
        let a = a.tap_io(|stream| {
            let _ = stream.set_nodelay(true);
        });
        let b = b.tap_io(|stream| {
            let _ = stream.set_nodelay(true);
        });
        tokio::spawn(async move { axum::serve(a, plain).await.unwrap() });
        tokio::spawn(async move { axum::serve(b, verified).await.unwrap() });
        ports
    })
}

/// One keep-alive HTTP/1.1 connection; sends a request, reads the whole response.
async fn round_trip(stream: &mut TcpStream, request: &[u8], buf: &mut Vec<u8>) {
    stream.write_all(request).await.unwrap();
    buf.clear();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = std::str::from_utf8(&buf[..end]).unwrap();
            assert!(head.starts_with("HTTP/1.1 200"), "{head}");
            let length: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(|v| v.trim().parse().unwrap())
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + length {
                return;
            }
        }
    }
}

const CONNECTIONS: usize = 16;
/// Requests per criterion iteration.
const BATCH: usize = 1000;

/// `CONNECTIONS` keep-alive connections, opened once and reused by every sample.
async fn connect(port: u16) -> Vec<TcpStream> {
    let mut streams = Vec::new();
    for _ in 0..CONNECTIONS {
        let stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        stream.set_nodelay(true).unwrap();
        streams.push(stream);
    }
    streams
}

/// Sends `requests` spread over the pooled connections concurrently; returns the time taken.
async fn send_all(pool: &mut Vec<TcpStream>, requests: Vec<Vec<u8>>) -> std::time::Duration {
    let mut shares: Vec<Vec<Vec<u8>>> = vec![Vec::new(); pool.len()];
    for (i, request) in requests.into_iter().enumerate() {
        shares[i % CONNECTIONS].push(request);
    }
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (mut stream, share) in pool.drain(..).zip(shares) {
        tasks.spawn(async move {
            let mut buf = Vec::new();
            for request in &share {
                round_trip(&mut stream, request, &mut buf).await;
            }
            stream
        });
    }
    while let Some(stream) = tasks.join_next().await {
        pool.push(stream.unwrap());
    }
    start.elapsed()
}

fn request(body: &[u8], headers: &[(String, String)]) -> Vec<u8> {
    let mut head = format!(
        "POST /hook HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(body);
    out
}

fn receive(c: &mut Criterion) {
    let server = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let client = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (plain_port, hookrelay_port) = serve(&server);
    let body = body();
    let secret = Secret::from_base64(SECRET).unwrap();
    let mut counter = 0u64;

    let mut group = c.benchmark_group("receive");
    // One iteration is a batch of BATCH requests over the 16 connections.
    group.throughput(Throughput::Elements(BATCH as u64));
    group.sample_size(20);

    // Both routes get the same requests, signature headers included (the plain route
    // ignores them), so the difference is the verification, not the bytes on the wire.
    // Signing happens outside the timed section; every request is a new delivery.
    let mut signed_batch = || -> Vec<Vec<u8>> {
        let now = Timestamp::now();
        (0..BATCH)
            .map(|_| {
                counter += 1;
                let id = format!("msg_{counter}");
                let message = Message::new(&body).with_id(&id).with_timestamp(now);
                let signed = StandardWebhooks::new().sign(&secret, &message).unwrap();
                let pairs: Vec<(String, String)> = signed
                    .iter()
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect();
                request(&body, &pairs)
            })
            .collect()
    };

    let mut plain_pool = client.block_on(connect(plain_port));
    group.bench_function("plain-axum", |b| {
        b.iter_custom(|iters| {
            let mut total = std::time::Duration::ZERO;
            for _ in 0..iters {
                let requests = signed_batch();
                total += client.block_on(send_all(&mut plain_pool, requests));
            }
            total
        });
    });

    let mut hookrelay_pool = client.block_on(connect(hookrelay_port));
    group.bench_function("hookrelay-layer", |b| {
        b.iter_custom(|iters| {
            let mut total = std::time::Duration::ZERO;
            for _ in 0..iters {
                let requests = signed_batch();
                total += client.block_on(send_all(&mut hookrelay_pool, requests));
            }
            total
        });
    });
    group.finish();
}

criterion_group!(benches, receive);
criterion_main!(benches);
