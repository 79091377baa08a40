//! The management API's cost over the store call it fronts: requests per second for
//! `GET /api/webhooks/{id}/deliveries` and `POST /api/events` through the whole router
//! (bearer authentication, ownership check, rate-limit and idempotency layers, problem+json,
//! the API's JSON views), each paired in the same run with a plain axum handler that makes the
//! same `Sender` call and writes a comparable JSON reply without any of those layers.
//!
//! ```sh
//! cargo bench --bench management --features server,sqlite,postgres
//! MGMT_BENCH_STORES=sqlite,postgres HOOKRELAY_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \
//!   cargo bench --bench management --features server,sqlite,postgres
//! ```
//!
//! - `MGMT_BENCH_STORES` (default `sqlite`, plus `postgres` when `HOOKRELAY_TEST_DATABASE_URL`
//!   is set): which stores run.
//! - `MGMT_BENCH_SECS` (default 2): seconds per measured cell; `MGMT_BENCH_ROUNDS` (default 3):
//!   rounds, alternating router and plain handler; the median round is reported.
//! - `MGMT_BENCH_CONNECTIONS` (default 8): keep-alive connections, each sending its next
//!   request when the previous reply is read.
//!
//! Both servers run in this process on 127.0.0.1 (the same axum version and runtime
//! `hookrelay serve` uses), with no dispatcher: published deliveries stay pending, so the
//! history grows through the run; the log read is the newest page of 50 of one endpoint.
//! The client is a minimal HTTP/1.1 writer and reader over `TcpStream`, the same for both
//! sides.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use hookrelay::Secret;
use hookrelay::event::OutgoingEvent;
use hookrelay::profile::Profile;
use hookrelay::send::{
    DeliveryStore, Endpoint, EndpointId, LogQuery, PostgresStore, Sender, SqliteStore,
};
use hookrelay::server::{ManagementApi, Principal, Token};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

const TOKEN: &str = "bench-admin-token";
const ENDPOINT: &str = "ep_bench";
const HISTORY: usize = 2_000;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The plain handler's view of a delivery: the fields the API shows.
#[derive(Serialize)]
struct PlainDelivery<'a> {
    id: &'a str,
    webhook_id: &'a str,
    message_id: &'a str,
    event_id: &'a str,
    event_type: &'a str,
    status: &'static str,
    kind: &'static str,
    attempts: u32,
    created_at: u64,
    next_attempt_at: Option<u64>,
    finished_at: Option<u64>,
    last_status: Option<u16>,
}

#[derive(Deserialize)]
struct PlainEvent {
    #[serde(rename = "type")]
    event_type: String,
    data: serde_json::Value,
}

async fn plain_log<S: DeliveryStore>(
    State(sender): State<Sender<S>>,
    Path(id): Path<String>,
) -> axum::response::Response {
    let query = LogQuery {
        endpoint: Some(EndpointId::new(id).unwrap()),
        ..LogQuery::default()
    };
    let page = sender.delivery_log(&query).await.unwrap();
    let items: Vec<PlainDelivery<'_>> = page
        .items
        .iter()
        .map(|d| PlainDelivery {
            id: d.id.as_str(),
            webhook_id: d.endpoint.as_str(),
            message_id: d.message.as_str(),
            event_id: d.event_id.as_str(),
            event_type: d.event_type.as_str(),
            status: d.status.as_str(),
            kind: d.kind.as_str(),
            attempts: d.attempts,
            created_at: d.created_at.as_millis(),
            next_attempt_at: d.next_attempt_at.map(|t| t.as_millis()),
            finished_at: d.finished_at.map(|t| t.as_millis()),
            last_status: d.last_status,
        })
        .collect();
    let body = serde_json::json!({
        "deliveries": items,
        "next_cursor": page.next.as_ref().map(|c| c.as_str()),
    });
    json(http::StatusCode::OK, &body)
}

fn json(status: http::StatusCode, body: &serde_json::Value) -> axum::response::Response {
    let mut response =
        axum::response::Response::new(axum::body::Body::from(serde_json::to_vec(body).unwrap()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

async fn plain_publish<S: DeliveryStore>(
    State(sender): State<Sender<S>>,
    body: Bytes,
) -> axum::response::Response {
    let event: PlainEvent = serde_json::from_slice(&body).unwrap();
    let receipt = sender
        .publish_with_receipt(OutgoingEvent::new(event.event_type, event.data))
        .await
        .unwrap();
    let deliveries: Vec<&str> = receipt.deliveries.iter().map(|d| d.as_str()).collect();
    json(
        http::StatusCode::ACCEPTED,
        &serde_json::json!({ "id": receipt.message.as_str(), "deliveries": deliveries }),
    )
}

/// Serves `app` on a fresh 127.0.0.1 port.
async fn serve(app: axum::Router) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// One keep-alive connection: writes `request`, reads the reply (status line, headers, a
/// `Content-Length` body), and returns the status.
struct Connection {
    stream: BufReader<TcpStream>,
    line: String,
    body: Vec<u8>,
}

impl Connection {
    async fn open(addr: std::net::SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        Self {
            stream: BufReader::new(stream),
            line: String::new(),
            body: Vec::new(),
        }
    }

    async fn exchange(&mut self, request: &[u8]) -> u16 {
        self.stream.get_mut().write_all(request).await.unwrap();
        self.line.clear();
        self.stream.read_line(&mut self.line).await.unwrap();
        let status: u16 = self.line[9..12].parse().unwrap();
        let mut length = 0usize;
        loop {
            self.line.clear();
            self.stream.read_line(&mut self.line).await.unwrap();
            let header = self.line.trim_end();
            if header.is_empty() {
                break;
            }
            let lower = header.to_ascii_lowercase();
            if let Some(value) = lower.strip_prefix("content-length:") {
                length = value.trim().parse().unwrap();
            }
            assert!(
                !lower.starts_with("transfer-encoding"),
                "the bench client reads only Content-Length bodies"
            );
        }
        self.body.resize(length, 0);
        self.stream.read_exact(&mut self.body).await.unwrap();
        status
    }
}

/// Requests per second of `connections` clients sending `request` for `secs` seconds.
async fn rate(
    addr: std::net::SocketAddr,
    request: Arc<Vec<u8>>,
    expect: u16,
    connections: usize,
    secs: u64,
) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let mut clients = Vec::new();
    for _ in 0..connections {
        let (stop, done, request) = (stop.clone(), done.clone(), request.clone());
        let mut connection = Connection::open(addr).await;
        clients.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let status = connection.exchange(&request).await;
                assert_eq!(
                    status,
                    expect,
                    "{}",
                    String::from_utf8_lossy(&connection.body)
                );
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let start = Instant::now();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    stop.store(true, Ordering::Relaxed);
    let elapsed = start.elapsed();
    for client in clients {
        client.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / elapsed.as_secs_f64()
}

fn get_request(path: &str, token: Option<&str>) -> Arc<Vec<u8>> {
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    Arc::new(format!("GET {path} HTTP/1.1\r\nHost: bench\r\n{auth}\r\n").into_bytes())
}

fn post_request(path: &str, token: Option<&str>, body: &str) -> Arc<Vec<u8>> {
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    Arc::new(
        format!(
            "POST {path} HTTP/1.1\r\nHost: bench\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

async fn bench_store<S: DeliveryStore + Clone>(name: &str, store: S) {
    let secs = env_usize("MGMT_BENCH_SECS", 2) as u64;
    let rounds = env_usize("MGMT_BENCH_ROUNDS", 3);
    let connections = env_usize("MGMT_BENCH_CONNECTIONS", 8);
    let sender = Sender::new(store);
    let endpoint = Endpoint::builder("https://receiver.example/hook", Profile::StandardWebhooks)
        .id(EndpointId::new(ENDPOINT).unwrap())
        .secret(Secret::from_raw("whsec_bench-secret-bench-secret").unwrap())
        .build()
        .unwrap();
    sender.add_endpoint(endpoint).await.unwrap();
    for chunk in 0..HISTORY / 100 {
        let events = (0..100)
            .map(|i| {
                OutgoingEvent::new(
                    "task.completed",
                    serde_json::json!({ "taskId": chunk * 100 + i }),
                )
            })
            .collect();
        sender.publish_batch(events).await.unwrap();
    }

    let api = ManagementApi::new(sender.clone())
        .token(Token::new(TOKEN).unwrap(), Principal::Admin)
        .router();
    let api_addr = serve(axum::Router::new().nest("/api", api)).await;
    let plain = axum::Router::new()
        .route("/plain/webhooks/{id}/deliveries", get(plain_log::<S>))
        .route("/plain/events", post(plain_publish::<S>))
        .with_state(sender.clone());
    let plain_addr = serve(plain).await;

    let event = r#"{"type":"task.completed","data":{"taskId":"123","status":"completed"}}"#;
    let cells = [
        (
            "GET /api/webhooks/{id}/deliveries",
            get_request(&format!("/api/webhooks/{ENDPOINT}/deliveries"), Some(TOKEN)),
            get_request(&format!("/plain/webhooks/{ENDPOINT}/deliveries"), None),
            200,
        ),
        (
            "POST /api/events",
            post_request("/api/events", Some(TOKEN), event),
            post_request("/plain/events", None, event),
            202,
        ),
    ];
    for (label, api_request, plain_request, status) in cells {
        let (mut routed, mut bare) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            bare.push(rate(plain_addr, plain_request.clone(), status, connections, secs).await);
            routed.push(rate(api_addr, api_request.clone(), status, connections, secs).await);
        }
        let (routed, bare) = (median(routed), median(bare));
        println!(
            "{name:<8} {label:<36} router {routed:>8.0} req/s   plain handler {bare:>8.0} req/s   ratio {:.2}×",
            routed / bare
        );
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let database = std::env::var("HOOKRELAY_TEST_DATABASE_URL").ok();
    let default_stores = if database.is_some() {
        "sqlite,postgres"
    } else {
        "sqlite"
    };
    let stores = std::env::var("MGMT_BENCH_STORES").unwrap_or_else(|_| default_stores.into());
    println!(
        "management API vs plain axum handler, {} connections, median of {} rounds × {} s",
        env_usize("MGMT_BENCH_CONNECTIONS", 8),
        env_usize("MGMT_BENCH_ROUNDS", 3),
        env_usize("MGMT_BENCH_SECS", 2)
    );
    runtime.block_on(async {
        for store in stores.split(',') {
            match store {
                "sqlite" => {
                    let path = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
                        .join(format!("hr_mgmt_bench_{}.db", std::process::id()));
                    let url = format!("sqlite://{}?mode=rwc", path.display());
                    let store = SqliteStore::connect(&url).await.unwrap();
                    bench_store("sqlite", store).await;
                    for suffix in ["", "-wal", "-shm"] {
                        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                    }
                }
                "postgres" => {
                    let Some(url) = database.as_deref() else {
                        println!("postgres: skipped (HOOKRELAY_TEST_DATABASE_URL unset)");
                        continue;
                    };
                    let schema = format!("hr_mgmt_bench_{}", std::process::id());
                    let store = PostgresStore::builder()
                        .schema(&schema)
                        .connect(url)
                        .await
                        .unwrap();
                    bench_store("postgres", store.clone()).await;
                    sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
                        .execute(store.pool())
                        .await
                        .unwrap();
                }
                other => panic!("unknown store {other:?} in MGMT_BENCH_STORES"),
            }
        }
    });
}
