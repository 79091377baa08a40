//! CHECKLIST E46–E47: a dispatcher process using the SQLite store is killed with SIGKILL at
//! random moments while delivering 2 000 events to a recording receiver on 127.0.0.1, and
//! restarted each time. At the end every event reached the receiver at least once, nothing
//! is pending or claimed, and the duplicate count (attempts answered 2xx whose result was not
//! stored before the kill, sent again with the same delivery id) is printed.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::HeaderMap;
use axum::routing::post;
use hookrelay::Secret;
use hookrelay::event::OutgoingEvent;
use hookrelay::profile::Profile;
use hookrelay::retry::UnixMillis;
use hookrelay::send::{
    AddressPolicy, DeliveryLog as _, Endpoint, EndpointId, ReqwestTransport, Sender, SqliteStore,
};

const EVENTS: usize = 2_000;
const KILLS: usize = 8;
const CHILD_ENV: &str = "HOOKRELAY_CRASH_CHILD";

/// The child: publish (idempotently, by key) and deliver until nothing is left.
#[test]
fn crash_child() {
    let Ok(db) = std::env::var(CHILD_ENV) else {
        return; // Only runs when the parent test starts it.
    };
    let url = std::env::var("HOOKRELAY_CRASH_URL").unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let store = SqliteStore::connect(&format!("sqlite://{db}?mode=rwc"))
            .await
            .unwrap();
        let sender = Sender::new(store);
        let endpoint = Endpoint::builder(url, Profile::TaskHub)
            .id(EndpointId::new("ep_crash").unwrap())
            .secret(Secret::from_raw("crash-secret").unwrap())
            .without_rate_limit()
            .concurrency(32)
            .build()
            .unwrap();
        sender.add_endpoint(endpoint).await.unwrap();
        let transport = ReqwestTransport::builder()
            .policy(
                AddressPolicy::default()
                    .allow_http()
                    .allow_private_networks(),
            )
            .build()
            .unwrap();
        let dispatcher = sender
            .dispatcher(transport)
            .concurrency(32)
            .lease(Duration::from_secs(2))
            .spawn();
        for chunk in (0..EVENTS).collect::<Vec<_>>().chunks(100) {
            for &i in chunk {
                let event = OutgoingEvent::new("task.created", serde_json::json!({ "n": i }))
                    .with_id(format!("evt_{i:05}").into());
                sender
                    .publish_with_key(event, format!("crash-{i}"))
                    .await
                    .unwrap();
            }
        }
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let counts = sender.store().counts(UnixMillis::now()).await.unwrap();
            if counts.pending + counts.in_flight == 0 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "child did not finish: {counts:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        dispatcher.shutdown(Duration::from_secs(5)).await.unwrap();
    });
}

fn spawn_child(db: &str, url: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, db)
        .env("HOOKRELAY_CRASH_URL", url)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

/// xorshift: random kill moments, reproducible from the printed seed.
fn next(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_moments_loses_nothing() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    // The recording receiver: event id → times received.
    let received: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let seen = Arc::clone(&received);
    let app = Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let seen = Arc::clone(&seen);
            async move {
                assert!(headers.contains_key("x-hub-signature"));
                let event: serde_json::Value = serde_json::from_slice(&body).unwrap();
                let id = event["id"].as_str().unwrap().to_owned();
                *seen.lock().unwrap().entry(id).or_default() += 1;
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let db = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("hookrelay-crash-{}.db", std::process::id()));
    let db = db.to_str().unwrap().to_owned();
    let mut seed = UnixMillis::now().as_millis() | 1;
    println!("crash test seed {seed}");

    for _ in 0..KILLS {
        let mut child = spawn_child(&db, &url);
        let wait = 150 + next(&mut seed) % 700;
        tokio::time::sleep(Duration::from_millis(wait)).await;
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
    }
    let child = spawn_child(&db, &url);
    let status = tokio::task::spawn_blocking(move || {
        let mut child = child;
        child.wait().unwrap()
    })
    .await
    .unwrap();
    assert!(status.success(), "the last run finished cleanly");

    let store = SqliteStore::connect(&format!("sqlite://{db}?mode=rwc"))
        .await
        .unwrap();
    let counts = store.counts(UnixMillis::now()).await.unwrap();
    assert_eq!(counts.pending, 0, "{counts:?}");
    assert_eq!(counts.in_flight, 0, "{counts:?}");
    assert_eq!(counts.delivered, EVENTS as u64, "{counts:?}");
    let received = received.lock().unwrap();
    let missing: Vec<_> = (0..EVENTS)
        .map(|i| format!("evt_{i:05}"))
        .filter(|id| !received.contains_key(id))
        .collect();
    assert!(missing.is_empty(), "never delivered: {missing:?}");
    let total: usize = received.values().sum();
    println!(
        "crash test: {KILLS} kills, {EVENTS} events delivered, {} duplicate deliveries",
        total - EVENTS
    );
    drop(store);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{db}{suffix}"));
    }
}
