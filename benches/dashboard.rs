//! The dashboard's pages over the store calls they make, on SQLite with a 10 000-delivery
//! history (every delivery attempted once): each page through the whole router (session
//! cookie, CSRF-bearing forms, HTML rendering, security headers), paired in the same run with
//! the bare `Sender` calls behind it. Reports the median of each and their ratio.
//!
//! ```sh
//! cargo bench --bench dashboard --features server,sqlite
//! ```
//!
//! `DASH_BENCH_RUNS` (default 30): timed requests per page.

use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use http::Request;
use http_body_util::BodyExt;
use tower::ServiceExt;

use hookrelay::Secret;
use hookrelay::event::OutgoingEvent;
use hookrelay::profile::Profile;
use hookrelay::retry::UnixMillis;
use hookrelay::send::store::TimeRange;
use hookrelay::send::{
    Endpoint, EndpointId, EndpointQuery, LogQuery, OutboundRequest, PageLimit, Sender, SqliteStore,
    Transport, TransportError, TransportResponse,
};
use hookrelay::server::{Dashboard, Principal, Token};

const HISTORY: usize = 10_000;
const HOUR_MS: u64 = 3_600_000;

struct Accept;

impl Transport for Accept {
    async fn send(&self, _: OutboundRequest) -> Result<TransportResponse, TransportError> {
        Ok(TransportResponse::status(204))
    }
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

async fn page(app: &Router, uri: &str, cookie: &str) {
    let reply = app
        .clone()
        .oneshot(
            Request::get(uri)
                .header("cookie", cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(reply.status(), 200, "{uri}");
    reply.into_body().collect().await.unwrap();
}

async fn sign_in(app: &Router) -> String {
    let reply = app
        .clone()
        .oneshot(
            Request::get("/dashboard/sign-in")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let cookie = |r: &http::Response<Body>| {
        r.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned()
    };
    let pre = cookie(&reply);
    let body = reply.into_body().collect().await.unwrap().to_bytes();
    let body = String::from_utf8(body.to_vec()).unwrap();
    let at = body.find("name=\"csrf\" value=\"").unwrap() + 19;
    let csrf = body[at..].split('"').next().unwrap();
    let reply = app
        .clone()
        .oneshot(
            Request::post("/dashboard/sign-in")
                .header("cookie", pre)
                .body(Body::from(format!("csrf={csrf}&token=bench")))
                .unwrap(),
        )
        .await
        .unwrap();
    cookie(&reply)
}

fn main() {
    let runs: usize = std::env::var("DASH_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let path = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("hookrelay-dash-bench-{}.db", std::process::id()));
        let store = SqliteStore::connect(&format!("sqlite://{}?mode=rwc", path.display()))
            .await
            .unwrap();
        let sender = Sender::new(store);
        let id: EndpointId = sender
            .add_endpoint(
                Endpoint::builder("https://a.example/hook", Profile::StandardWebhooks)
                    .secret(Secret::generate().unwrap())
                    .build()
                    .unwrap(),
            )
            .await
            .unwrap();
        for chunk in 0..HISTORY / 100 {
            let events = (0..100)
                .map(|i| {
                    OutgoingEvent::new("bench.item", serde_json::json!({ "i": chunk * 100 + i }))
                })
                .collect();
            sender.publish_batch(events).await.unwrap();
        }
        let dispatcher = sender.dispatcher(Accept).spawn();
        dispatcher.wait_idle(Duration::MAX).await.unwrap();
        let app = Router::new().nest(
            "/dashboard",
            Dashboard::new(sender.clone())
                .token(Token::new("bench").unwrap(), Principal::Admin)
                .router(),
        );
        let cookie = sign_in(&app).await;
        let now = UnixMillis::now().as_millis();
        let day = TimeRange::between(
            UnixMillis::from_millis(now - 24 * HOUR_MS),
            UnixMillis::from_millis(now + 1),
        );
        let start = now - now % HOUR_MS - 23 * HOUR_MS;
        let hours: Vec<TimeRange> = (0..24)
            .map(|i| {
                TimeRange::between(
                    UnixMillis::from_millis(start + i * HOUR_MS),
                    UnixMillis::from_millis(start + (i + 1) * HOUR_MS),
                )
            })
            .collect();
        println!("dashboard pages, SQLite, {HISTORY} deliveries; median of {runs}");
        println!(
            "{:<34} {:>10} {:>10} {:>7}",
            "page", "router", "bare", "ratio"
        );
        let pages: [(&str, String); 3] = [
            ("GET /deliveries (50 rows)", "/dashboard/deliveries".into()),
            (
                "GET /endpoints (24 h numbers)",
                "/dashboard/endpoints".into(),
            ),
            (
                "GET /endpoints/{id} (charts)",
                format!("/dashboard/endpoints/{id}"),
            ),
        ];
        for (i, (name, uri)) in pages.iter().enumerate() {
            let mut routed = Vec::new();
            let mut bare = Vec::new();
            for _ in 0..runs {
                let t = Instant::now();
                page(&app, uri, &cookie).await;
                routed.push(t.elapsed());
                let t = Instant::now();
                match i {
                    0 => {
                        let query = LogQuery {
                            limit: PageLimit::new(50).unwrap(),
                            ..LogQuery::default()
                        };
                        sender.delivery_log(&query).await.unwrap();
                    }
                    1 => {
                        let list = sender
                            .list_endpoints(&EndpointQuery::default())
                            .await
                            .unwrap();
                        let ids: Vec<_> = list.items.iter().map(|e| e.id().clone()).collect();
                        sender.endpoints_stats(&ids, day).await.unwrap();
                    }
                    _ => {
                        sender.endpoint(&id).await.unwrap();
                        sender.endpoint_stats(&id, day).await.unwrap();
                        sender.endpoint_series(&id, &hours).await.unwrap();
                    }
                }
                bare.push(t.elapsed());
            }
            let (r, b) = (median(routed), median(bare));
            println!(
                "{name:<34} {:>8.2}ms {:>8.2}ms {:>6.2}x",
                r.as_secs_f64() * 1000.0,
                b.as_secs_f64() * 1000.0,
                r.as_secs_f64() / b.as_secs_f64()
            );
        }
        dispatcher.shutdown(Duration::from_secs(5)).await.unwrap();
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    });
}
