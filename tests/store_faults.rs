//! Store faults (the persistence issue, item 5): a database that is killed, restarted,
//! locked or stops answering must cost no event, leave nothing stuck, and cause no re-send
//! of its own — the dispatcher keeps the results it could not record and records them as
//! soon as the store answers again.
//!
//! - **PostgreSQL sessions terminated** (`pg_terminate_backend` on every connection the
//!   dispatcher and publisher hold, five times mid-run).
//! - **PostgreSQL restarted** (`pg_ctl stop -m fast`, two seconds down, start) during a
//!   5 000-event run, while publishing goes on: a `publish` during the outage returns a
//!   retryable error, never `Ok` for an event that was not stored.
//! - **PostgreSQL hung** (every server process stopped with SIGSTOP: connections stay open,
//!   nothing answers): `publish` returns within the configured acquire and statement
//!   time-outs, the dispatcher keeps running and finishes once the server resumes.
//! - **SQLite locked** by another connection holding the write lock for 2 s: `publish` waits
//!   within its busy time-out or returns a retryable error; nothing is lost.
//!
//! The PostgreSQL cases run on a private server of the test's own (`pg_private`), so
//! stopping it disturbs no other test. Deliveries go to an in-process transport that counts
//! requests per `X-Delivery-ID`: every stored event must be sent exactly once.

mod pg_private;
mod send_support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hookrelay::Secret;
use hookrelay::event::OutgoingEvent;
use hookrelay::profile::Profile;
use hookrelay::send::{
    DeliveryStatus, DeliveryStore, Endpoint, LogQuery, MessageId, PublishError, Sender,
};
use pg_private::PrivatePostgres;
use send_support::ScriptedTransport;

const URL: &str = "https://receiver.test/hook";

fn endpoint() -> Endpoint {
    Endpoint::builder(URL, Profile::TaskHub)
        .secret(Secret::from_raw("fault-secret").unwrap())
        .without_rate_limit()
        .concurrency(64)
        .build()
        .unwrap()
}

fn event(n: usize) -> OutgoingEvent {
    OutgoingEvent::new(
        "task.created",
        serde_json::json!({ "taskId": n.to_string() }),
    )
}

/// Publishes `n` events, retrying a publish the store refused as retryable (after a short
/// pause), and panicking on any other error. Returns the message ids of those stored and
/// how many publishes failed as retryable.
async fn publish_all<S: DeliveryStore>(
    sender: &Sender<S>,
    range: std::ops::Range<usize>,
) -> (Vec<MessageId>, usize) {
    let mut ids = Vec::with_capacity(range.len());
    let mut refused = 0;
    for n in range {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            match sender.publish(event(n)).await {
                Ok(id) => {
                    ids.push(id);
                    break;
                }
                Err(e) if e.is_retryable() => {
                    refused += 1;
                    assert!(Instant::now() < deadline, "store never came back: {e:?}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("publish failed with a non-retryable error: {e:?}"),
            }
        }
    }
    (ids, refused)
}

/// Waits until every delivery of `ids` is finished, then checks each was delivered and sent
/// exactly once. Returns the number of requests seen.
async fn check_all_delivered_once<S: DeliveryStore>(
    sender: &Sender<S>,
    transport: &ScriptedTransport,
    ids: &[MessageId],
    limit: Duration,
) {
    let deadline = Instant::now() + limit;
    let expected = ids.len();
    loop {
        let sent = transport.seen().len();
        if sent >= expected {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {sent} of {expected} deliveries were sent in {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Every delivery is recorded as delivered (the results held through the fault included).
    let mut pending;
    loop {
        pending = 0;
        let records = sender
            .store()
            .log_all(&LogQuery::default(), hookrelay::retry::UnixMillis::now())
            .await
            .unwrap();
        for r in &records {
            if r.status != DeliveryStatus::Delivered {
                pending += 1;
            }
        }
        if pending == 0 && records.len() == expected {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{pending} of {} deliveries not delivered (expected {expected} in all)",
            records.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut per_delivery: HashMap<String, usize> = HashMap::new();
    for seen in transport.seen() {
        let id = seen
            .header("x-delivery-id")
            .expect("task-hub delivery id")
            .to_owned();
        *per_delivery.entry(id).or_default() += 1;
    }
    let resent: Vec<_> = per_delivery.iter().filter(|(_, n)| **n > 1).collect();
    assert_eq!(per_delivery.len(), expected, "every stored event was sent");
    assert!(
        resent.is_empty(),
        "{} deliveries were sent more than once because of the fault: {:?}",
        resent.len(),
        resent.iter().take(5).collect::<Vec<_>>()
    );
}

async fn pg_sender(server: &PrivatePostgres) -> Sender<hookrelay::send::PostgresStore> {
    let store = hookrelay::send::PostgresStore::builder()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(2))
        .statement_timeout(Duration::from_secs(2))
        .connect(&server.url())
        .await
        .unwrap();
    let sender = Sender::new(store);
    sender.add_endpoint(endpoint()).await.unwrap();
    sender
}

/// Terminates every session on the server but the caller's.
async fn terminate_sessions(url: &str) -> i64 {
    use sqlx::Connection as _;
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    let killed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE pid <> pg_backend_pid() AND datname = current_database()) t",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    killed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_sessions_terminated_mid_run() {
    let Some(server) = PrivatePostgres::start("postgres_sessions_terminated_mid_run") else {
        return;
    };
    let sender = pg_sender(&server).await;
    let transport = ScriptedTransport::new();
    transport.delay(URL, Duration::from_millis(2));
    let handle = sender.dispatcher(transport.clone()).concurrency(32).spawn();

    let url = server.url();
    let killer = tokio::spawn(async move {
        let mut killed = 0;
        for _ in 0..5 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            killed += terminate_sessions(&url).await;
        }
        killed
    });
    let (ids, refused) = publish_all(&sender, 0..2_000).await;
    let killed = killer.await.unwrap();
    assert!(killed > 0, "the test terminated no session");
    check_all_delivered_once(&sender, &transport, &ids, Duration::from_secs(120)).await;
    let report = handle.shutdown(Duration::from_secs(10)).await.unwrap();
    eprintln!(
        "terminated {killed} sessions; {refused} publishes refused as retryable and retried; {report:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_during_a_5000_event_run() {
    let Some(server) = PrivatePostgres::start("postgres_restarted_during_a_5000_event_run") else {
        return;
    };
    let server = Arc::new(server);
    let sender = pg_sender(&server).await;
    let transport = ScriptedTransport::new();
    transport.delay(URL, Duration::from_millis(2));
    let handle = sender.dispatcher(transport.clone()).concurrency(32).spawn();

    let (mut ids, _) = publish_all(&sender, 0..2_500).await;
    // Restart while the dispatcher is busy with the first half and publishing goes on.
    let restarter = {
        let server = Arc::clone(&server);
        tokio::task::spawn_blocking(move || {
            server.stop();
            std::thread::sleep(Duration::from_secs(2));
            server.start_again();
        })
    };
    // A publish while the server is down is refused as retryable, never `Ok` unstored.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut refused_during_outage = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !restarter.is_finished() && Instant::now() < deadline {
        match sender.publish(event(99_999)).await {
            Err(PublishError::Store(e)) => {
                assert!(e.is_retryable(), "an outage is retryable: {e:?}");
                refused_during_outage += 1;
            }
            Err(e) => panic!("unexpected error during the outage: {e:?}"),
            Ok(id) => ids.push(id), // stored before the stop or after the start
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    restarter.await.unwrap();
    assert!(refused_during_outage > 0, "no publish met the outage");
    let (more, refused) = publish_all(&sender, 2_500..5_000).await;
    ids.extend(more);
    check_all_delivered_once(&sender, &transport, &ids, Duration::from_secs(180)).await;
    let report = handle.shutdown(Duration::from_secs(10)).await.unwrap();
    eprintln!(
        "restart: {refused_during_outage} publishes refused during the outage, {refused} retried after; {} events stored; {report:?}",
        ids.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_that_stops_answering_does_not_hang_publish_or_the_dispatcher() {
    let Some(server) = PrivatePostgres::start("postgres_hung") else {
        return;
    };
    let sender = pg_sender(&server).await;
    let transport = ScriptedTransport::new();
    let handle = sender.dispatcher(transport.clone()).concurrency(16).spawn();
    let (mut ids, _) = publish_all(&sender, 0..200).await;

    server.signal_all("STOP");
    // `publish` gives up within the acquire (2 s) and statement (2 s) time-outs.
    let started = Instant::now();
    let result = sender.publish(event(1_000)).await;
    let waited = started.elapsed();
    match result {
        Err(PublishError::Store(e)) => assert!(e.is_retryable(), "{e:?}"),
        Err(e) => panic!("unexpected error: {e:?}"),
        Ok(_) => panic!("publish succeeded against a stopped server"),
    }
    assert!(
        waited < Duration::from_secs(10),
        "publish hung for {waited:?} against a stopped server"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    server.signal_all("CONT");

    let (more, _) = publish_all(&sender, 200..400).await;
    ids.extend(more);
    check_all_delivered_once(&sender, &transport, &ids, Duration::from_secs(120)).await;
    handle.shutdown(Duration::from_secs(10)).await.unwrap();
    eprintln!("hung server: publish gave up after {waited:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_write_lock_held_elsewhere_for_two_seconds() {
    use sqlx::Connection as _;
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("hookrelay-locked-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("deliveries.db");
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let store = hookrelay::send::SqliteStore::builder()
        .busy_timeout(Duration::from_secs(5))
        .connect(&url)
        .await
        .unwrap();
    let sender = Sender::new(store);
    sender.add_endpoint(endpoint()).await.unwrap();
    let transport = ScriptedTransport::new();
    transport.delay(URL, Duration::from_millis(1));
    let handle = sender.dispatcher(transport.clone()).concurrency(16).spawn();

    let (mut ids, _) = publish_all(&sender, 0..300).await;
    // Another connection takes the write lock and holds it for 2 s.
    let mut other = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut other)
        .await
        .unwrap();
    let holder = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(2)).await;
        sqlx::query("COMMIT").execute(&mut other).await.unwrap();
    });
    let started = Instant::now();
    let (more, refused) = publish_all(&sender, 300..600).await;
    let first_batch = started.elapsed();
    holder.await.unwrap();
    ids.extend(more);
    check_all_delivered_once(&sender, &transport, &ids, Duration::from_secs(60)).await;
    handle.shutdown(Duration::from_secs(10)).await.unwrap();
    eprintln!(
        "sqlite locked 2 s: publishing 300 took {first_batch:?}, {refused} refused as retryable"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
