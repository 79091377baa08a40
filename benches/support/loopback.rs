//! Loopback HTTP/1.1 for the receive benchmarks: a server on 127.0.0.1 and keep-alive
//! client connections that send pre-built requests and read whole responses.
#![allow(dead_code)]

use std::time::Instant;

use axum::Router;
use axum::serve::ListenerExt as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

pub fn serve(runtime: &tokio::runtime::Runtime, router: Router) -> u16 {
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        // The server answers without Nagle delays, like the client.
        let listener = listener.tap_io(|stream| {
            let _ = stream.set_nodelay(true);
        });
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        port
    })
}

/// One keep-alive HTTP/1.1 connection; sends a request, reads the whole response.
pub async fn round_trip(stream: &mut TcpStream, request: &[u8], buf: &mut Vec<u8>) {
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

/// `count` keep-alive connections, opened once and reused by every sample.
pub async fn connect(port: u16, count: usize) -> Vec<TcpStream> {
    let mut streams = Vec::new();
    for _ in 0..count {
        let stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        stream.set_nodelay(true).unwrap();
        streams.push(stream);
    }
    streams
}

/// Sends `requests` spread over the pooled connections concurrently; returns the time taken.
pub async fn send_all(pool: &mut Vec<TcpStream>, requests: Vec<Vec<u8>>) -> std::time::Duration {
    let mut shares: Vec<Vec<Vec<u8>>> = vec![Vec::new(); pool.len()];
    for (i, request) in requests.into_iter().enumerate() {
        let connections = shares.len();
        shares[i % connections].push(request);
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

/// A POST of `body` to `path` as sent on the wire, with `headers` after the content type.
pub fn wire_request(path: &str, headers: &[(String, String)], body: &[u8]) -> Vec<u8> {
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
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
