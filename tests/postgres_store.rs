//! PostgreSQL, store level: the transactional outbox (CHECKLIST E45), a stalled worker's late
//! result (E48), endpoint limits shared by independent stores (each with its own pool, as
//! separate processes would have), concurrent claims that never overlap, migrations applied
//! by many processes at once, `LISTEN/NOTIFY`, the purge, and the idempotency store
//! (50 concurrent identical deliveries across two receivers → one handler run).
//!
//! Needs `HOOKRELAY_TEST_DATABASE_URL`; each test works in its own schema.

mod pg_support;
mod send_support;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use hookrelay::Secret;
use hookrelay::event::OutgoingEvent;
use hookrelay::profile::Profile;
use hookrelay::retry::{RateLimit, UnixMillis};
use hookrelay::send::store::{
    AttemptRecord, ClaimedDelivery, DeliveryLog, DeliveryQueue, EndpointRegistry, LogOrder,
    LogQuery, NewDelivery, NewMessage, NextStep, PageLimit, Publication, Recorded, StatusKind,
    TimeRange, TypePattern,
};
use hookrelay::send::{
    DeliveryId, DeliveryStatus, Endpoint, EndpointId, MessageId, Migrations, PostgresStore, Sender,
};

const T0: u64 = 1_700_000_000_000;

fn at(offset_ms: u64) -> UnixMillis {
    UnixMillis::from_millis(T0 + offset_ms)
}

fn endpoint(id: &str) -> hookrelay::send::EndpointBuilder {
    Endpoint::builder(format!("https://{id}.example/hook"), Profile::TaskHub)
        .id(EndpointId::new(id).unwrap())
        .secret(Secret::from_raw("pg-secret").unwrap())
}

fn publication(endpoint: &str) -> Publication {
    Publication {
        message: NewMessage {
            id: MessageId::generate(),
            event_id: "evt_1".into(),
            event_type: "task.created".into(),
            created_at: at(0),
            bodies: vec![Bytes::from_static(br#"{"id":"evt_1"}"#)],
        },
        deliveries: vec![NewDelivery::new(
            DeliveryId::generate(),
            EndpointId::new(endpoint).unwrap(),
            0,
        )],
        key: None,
    }
}

fn delivered(claim: &ClaimedDelivery, started: UnixMillis) -> AttemptRecord {
    AttemptRecord {
        delivery: claim.delivery.clone(),
        token: claim.token,
        attempt: claim.attempts + 1,
        started_at: started,
        latency: Duration::from_millis(3),
        status: Some(200),
        error: None,
        request_headers: Vec::new(),
        response_headers: Vec::new(),
        response_body: Bytes::new(),
        charged: true,
        manual: false,
        next: NextStep::Delivered,
    }
}

/// A store on its own pool (another process would have its own).
async fn open(url: &str, schema: &str) -> PostgresStore {
    PostgresStore::builder()
        .schema(schema)
        .max_connections(4)
        .connect(url)
        .await
        .unwrap()
}

macro_rules! setup {
    ($name:literal) => {{
        let Some(url) = pg_support::database_url($name) else {
            return;
        };
        let schema = pg_support::fresh_schema(&url, $name).await;
        (url, schema)
    }};
}

/// Public types are `Send + Sync` (DESIGN §3).
#[test]
fn postgres_types_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<PostgresStore>();
    check::<hookrelay::send::PostgresStoreBuilder>();
    check::<Migrations>();
    check::<hookrelay::receive::PostgresIdempotencyStore>();
    check::<Sender<PostgresStore>>();
}

#[tokio::test]
async fn outbox_rollback_leaves_nothing_and_commit_exactly_one() {
    let (url, schema) = setup!("outbox");
    let store = open(&url, &schema).await;
    let sender = Sender::new(store.clone());
    sender
        .add_endpoint(endpoint("ep_a").without_rate_limit().build().unwrap())
        .await
        .unwrap();
    let dispatcher_view = open(&url, &schema).await;
    let pool = store.pool().clone();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE TABLE \"{schema}\".orders (id int8 PRIMARY KEY, state text NOT NULL)"
    )))
    .execute(&pool)
    .await
    .unwrap();
    let count = |table: &'static str| {
        let pool = pool.clone();
        let schema = schema.clone();
        async move {
            sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(format!(
                "SELECT count(*) FROM \"{schema}\".{table}"
            )))
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };

    // Rolled back: no order, no message, no delivery.
    let mut tx = pool.begin().await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO \"{schema}\".orders VALUES (1, 'paid')"
    )))
    .execute(&mut *tx)
    .await
    .unwrap();
    let event = OutgoingEvent::new("order.paid", serde_json::json!({"orderId": 1}));
    sender.publish_in(&mut tx, event).await.unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(count("orders").await, 0);
    assert_eq!(count("hookrelay_messages").await, 0);
    assert_eq!(count("hookrelay_deliveries").await, 0);
    assert_eq!(count("hookrelay_bodies").await, 0);

    // Open: a dispatcher's claim sees nothing.
    let mut tx = pool.begin().await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO \"{schema}\".orders VALUES (2, 'paid')"
    )))
    .execute(&mut *tx)
    .await
    .unwrap();
    let event = OutgoingEvent::new("order.paid", serde_json::json!({"orderId": 2}));
    let message = sender.publish_in(&mut tx, event).await.unwrap();
    let now = UnixMillis::now();
    assert!(
        dispatcher_view
            .claim(now, 10, Duration::from_secs(30), &[])
            .await
            .unwrap()
            .is_empty(),
        "not visible before the commit"
    );
    // Committed: exactly one message, one delivery, claimable.
    tx.commit().await.unwrap();
    assert_eq!(count("orders").await, 1);
    assert_eq!(count("hookrelay_messages").await, 1);
    assert_eq!(count("hookrelay_deliveries").await, 1);
    let claims = dispatcher_view
        .claim(now, 10, Duration::from_secs(30), &[])
        .await
        .unwrap();
    assert_eq!(claims.len(), 1);
    assert_eq!(claims[0].message, message);
    let body: serde_json::Value = serde_json::from_slice(&claims[0].body).unwrap();
    assert_eq!(body["data"]["orderId"], 2);

    // A batch and a keyed publish in one transaction; the key deduplicates on a second try.
    let mut tx = pool.begin().await.unwrap();
    let ids = sender
        .publish_batch_in(
            &mut tx,
            (0..5)
                .map(|i| OutgoingEvent::new("order.paid", serde_json::json!({"orderId": 10 + i})))
                .collect(),
        )
        .await
        .unwrap();
    assert_eq!(ids.len(), 5);
    let first = sender
        .publish_with_key_in(
            &mut tx,
            OutgoingEvent::new("order.paid", serde_json::json!({})),
            "order-99",
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let mut tx = pool.begin().await.unwrap();
    let again = sender
        .publish_with_key_in(
            &mut tx,
            OutgoingEvent::new("order.paid", serde_json::json!({})),
            "order-99",
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(first, again);
    assert_eq!(count("hookrelay_messages").await, 1 + 5 + 1);
    drop((store, dispatcher_view));
    pg_support::drop_schema(&url, &schema).await;
}

/// E48: a worker stalls past its lease; another claims the delivery and records it; the
/// stalled worker's late result is refused and does not touch the delivery or its log.
#[tokio::test]
async fn a_stalled_worker_cannot_overwrite_the_newer_attempt() {
    let (url, schema) = setup!("stale");
    let slow = open(&url, &schema).await;
    let fast = open(&url, &schema).await;
    slow.put_endpoint(&endpoint("ep_a").without_rate_limit().build().unwrap())
        .await
        .unwrap();
    slow.enqueue(vec![publication("ep_a")], at(0))
        .await
        .unwrap();
    let lease = Duration::from_secs(10);
    let stalled = slow.claim(at(0), 1, lease, &[]).await.unwrap().remove(0);
    assert!(
        fast.claim(at(9_999), 1, lease, &[])
            .await
            .unwrap()
            .is_empty()
    );
    let newer = fast
        .claim(at(10_000), 1, lease, &[])
        .await
        .unwrap()
        .remove(0);
    assert_eq!(newer.delivery, stalled.delivery);
    assert!(newer.token > stalled.token);
    // The newer attempt failed and is to be retried; the stalled one "succeeded" late.
    let mut retry = delivered(&newer, at(10_000));
    retry.status = Some(503);
    retry.next = NextStep::RetryAt(at(60_000));
    assert_eq!(fast.record(vec![retry]).await.unwrap(), [Recorded::Saved]);
    let late = delivered(&stalled, at(0));
    assert_eq!(slow.record(vec![late]).await.unwrap(), [Recorded::Stale]);
    let record = slow
        .delivery(&stalled.delivery, UnixMillis::from_millis(0))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.status, DeliveryStatus::Pending);
    assert_eq!(record.last_status, Some(503));
    assert_eq!(record.next_attempt_at, Some(at(60_000)));
    let log = slow.attempts(&stalled.delivery).await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].status, Some(503));
    // And a result recorded in the same transaction as a claim is fenced the same way.
    let (recorded, _) = slow
        .record_and_claim(vec![delivered(&stalled, at(0))], at(10_001), 5, lease, &[])
        .await
        .unwrap();
    assert_eq!(recorded, [Recorded::Stale]);
    drop((slow, fast));
    pg_support::drop_schema(&url, &schema).await;
}

#[tokio::test]
async fn concurrent_claims_from_many_stores_never_overlap() {
    let (url, schema) = setup!("overlap");
    let first = open(&url, &schema).await;
    first
        .put_endpoint(
            &endpoint("ep_a")
                .without_rate_limit()
                .concurrency(10_000)
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    let publications: Vec<_> = (0..600).map(|_| publication("ep_a")).collect();
    first.enqueue(publications, at(0)).await.unwrap();
    let mut workers = Vec::new();
    for _ in 0..4 {
        let store = open(&url, &schema).await;
        workers.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            for _ in 0..100 {
                let claims = store
                    .claim(at(1), 7, Duration::from_secs(600), &[])
                    .await
                    .unwrap();
                if claims.is_empty() {
                    break;
                }
                mine.extend(claims.into_iter().map(|c| (c.delivery, c.token)));
            }
            mine
        }));
    }
    let mut seen = HashSet::new();
    let mut tokens = HashSet::new();
    for worker in workers {
        for (delivery, token) in worker.await.unwrap() {
            assert!(seen.insert(delivery), "a delivery claimed twice");
            tokens.insert(token);
        }
    }
    assert_eq!(seen.len(), 600);
    assert!(tokens.len() >= 600 / 7, "one fresh token per claim");
    drop(first);
    pg_support::drop_schema(&url, &schema).await;
}

/// The concurrency cap counts unexpired leases in the database; the token bucket lives in
/// the endpoint's row: both hold across stores with separate pools.
#[tokio::test]
async fn endpoint_limits_hold_across_stores() {
    let (url, schema) = setup!("limits");
    let a = open(&url, &schema).await;
    let b = open(&url, &schema).await;
    let lease = Duration::from_secs(30);
    a.put_endpoint(
        &endpoint("ep_capped")
            .without_rate_limit()
            .concurrency(3)
            .build()
            .unwrap(),
    )
    .await
    .unwrap();
    a.put_endpoint(
        &endpoint("ep_paced")
            .rate_limit(RateLimit::new(10, Duration::from_secs(1), 2).unwrap())
            .concurrency(100)
            .build()
            .unwrap(),
    )
    .await
    .unwrap();
    let publications: Vec<_> = (0..10)
        .flat_map(|_| [publication("ep_capped"), publication("ep_paced")])
        .collect();
    a.enqueue(publications, at(0)).await.unwrap();
    let paced = EndpointId::new("ep_paced").unwrap();
    let capped = EndpointId::new("ep_capped").unwrap();

    // Concurrency: 3 in flight in all, whoever claims.
    let mine = a
        .claim(at(0), 10, lease, std::slice::from_ref(&paced))
        .await
        .unwrap();
    assert_eq!(mine.len(), 3);
    assert!(
        b.claim(at(0), 10, lease, std::slice::from_ref(&paced))
            .await
            .unwrap()
            .is_empty()
    );
    a.record(vec![delivered(&mine[0], at(0))]).await.unwrap();
    let theirs = b
        .claim(at(1), 10, lease, std::slice::from_ref(&paced))
        .await
        .unwrap();
    assert_eq!(theirs.len(), 1, "one slot freed");
    // An expired lease no longer counts.
    let after_lease = b
        .claim(at(30_001), 10, lease, std::slice::from_ref(&paced))
        .await
        .unwrap();
    assert_eq!(after_lease.len(), 3);

    // Rate: 10/s, bursts of 2 → 2 at once, then one per 100 ms, whoever claims.
    let skip = std::slice::from_ref(&capped);
    assert_eq!(a.claim(at(0), 10, lease, skip).await.unwrap().len(), 2);
    assert!(b.claim(at(0), 10, lease, skip).await.unwrap().is_empty());
    assert!(b.claim(at(99), 10, lease, skip).await.unwrap().is_empty());
    assert_eq!(b.next_due().await.unwrap(), Some(at(100)));
    assert_eq!(b.claim(at(100), 10, lease, skip).await.unwrap().len(), 1);
    assert_eq!(a.claim(at(350), 10, lease, skip).await.unwrap().len(), 2);
    drop((a, b));
    pg_support::drop_schema(&url, &schema).await;
}

#[tokio::test]
async fn migrations_apply_once_when_many_processes_start_together() {
    let (url, schema) = setup!("migrate");
    let opens: Vec<_> = (0..6)
        .map(|_| {
            let (url, schema) = (url.clone(), schema.clone());
            tokio::spawn(async move { open(&url, &schema).await })
        })
        .collect();
    let mut stores = Vec::new();
    for o in opens {
        stores.push(o.await.unwrap());
    }
    let versions: Vec<i32> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT version FROM \"{schema}\".hookrelay_migrations ORDER BY version"
    )))
    .fetch_all(stores[0].pool())
    .await
    .unwrap();
    assert_eq!(versions, [1, 2, 3, 4, 5]);
    drop(stores);
    pg_support::drop_schema(&url, &schema).await;

    // The same script from the application's own migration tool, then AlreadyApplied.
    let script = PostgresStore::migration_sql(&schema).unwrap();
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(script.as_str()))
        .execute(&pool)
        .await
        .unwrap();
    let store = PostgresStore::builder()
        .schema(&schema)
        .migrations(Migrations::AlreadyApplied)
        .pool(pool.clone())
        .await
        .unwrap();
    store
        .put_endpoint(&endpoint("ep_a").build().unwrap())
        .await
        .unwrap();
    // Applying again finds every step recorded and changes nothing.
    let again = PostgresStore::builder().schema(&schema).pool(pool).await;
    assert!(again.is_ok());
    assert!(PostgresStore::migration_sql("Bad-Name").is_none());
    assert!(
        PostgresStore::builder()
            .schema("x; DROP TABLE y")
            .connect(&url)
            .await
            .is_err()
    );
    drop((store, again));
    pg_support::drop_schema(&url, &schema).await;
}

/// A commit in one store wakes a waiter on another (its own listener connection).
#[tokio::test]
async fn a_commit_notifies_listening_stores() {
    let (url, schema) = setup!("notify");
    let producer = open(&url, &schema).await;
    let idle = open(&url, &schema).await;
    producer
        .put_endpoint(&endpoint("ep_a").build().unwrap())
        .await
        .unwrap();
    // Subscribe, and wait until the listener is connected (it signals once when it is).
    idle.new_work().await;
    let woken = idle.new_work();
    let sender = Sender::new(producer.clone());
    let mut tx = producer.pool().begin().await.unwrap();
    sender
        .publish_in(
            &mut tx,
            OutgoingEvent::new("task.created", serde_json::json!({})),
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();
    tokio::time::timeout(Duration::from_secs(20), woken)
        .await
        .expect("the NOTIFY sent at commit reached the other store");
    drop((producer, idle));
    pg_support::drop_schema(&url, &schema).await;
}

#[tokio::test]
async fn purge_removes_finished_history_in_batches() {
    let (url, schema) = setup!("purge");
    let store = open(&url, &schema).await;
    store
        .put_endpoint(
            &endpoint("ep_a")
                .without_rate_limit()
                .concurrency(1000)
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    store
        .enqueue((0..25).map(|_| publication("ep_a")).collect(), at(0))
        .await
        .unwrap();
    let claims = store
        .claim(at(0), 20, Duration::from_secs(30), &[])
        .await
        .unwrap();
    let results = claims.iter().map(|c| delivered(c, at(1))).collect();
    store.record(results).await.unwrap();
    // Finished "long ago" from the purge's point of view: everything past retention.
    let later = at(1).saturating_add(Duration::from_secs(200 * 24 * 3600));
    let mut purged = 0;
    for _ in 0..10 {
        let n = store
            .purge(&hookrelay::send::LogRetention::default(), later, 8)
            .await
            .unwrap()
            .deliveries;
        purged += n;
        if n < 8 {
            break;
        }
    }
    assert_eq!(purged, 20);
    let counts = store.counts(at(1)).await.unwrap();
    assert_eq!((counts.pending, counts.delivered), (5, 0));
    // The queue depth, from pending rows only, agrees with the full counts.
    store
        .claim(at(1), 2, Duration::from_secs(30), &[])
        .await
        .unwrap();
    let counts = store.counts(at(2)).await.unwrap();
    assert_eq!(store.queue_depth(at(2)).await.unwrap(), (3, 2));
    assert_eq!((counts.pending, counts.in_flight), (3, 2));
    let messages: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM \"{schema}\".hookrelay_messages"
    )))
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(messages, 5);
    drop(store);
    pg_support::drop_schema(&url, &schema).await;
}

/// 50 concurrent copies of one delivery, split across two receivers with their own pools
/// (as two receiver processes would be): the handler runs once; every copy is eventually
/// acknowledged (409 while in progress, like a sender's retry).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_copies_across_two_receivers_run_the_handler_once() {
    use hookrelay::receive::{PostgresIdempotencyStore, Receiver};
    use hookrelay::scheme::{Message, Scheme as _, XHub};
    let (url, schema) = setup!("idem");
    let secret = Secret::from_raw("pg-receiver").unwrap();
    let body = Bytes::from_static(br#"{"id":"evt_1","type":"task.completed","data":{}}"#);
    let mut headers: Vec<(String, String)> = XHub::new()
        .sign(&secret, &Message::new(&body))
        .unwrap()
        .iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    headers.push(("X-Delivery-ID".into(), "dlv_once".into()));
    let mut receivers = Vec::new();
    for _ in 0..2 {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(5)
            .connect(&url)
            .await
            .unwrap();
        let store = PostgresIdempotencyStore::from_pool_in(pool, &schema)
            .await
            .unwrap();
        receivers.push(Arc::new(
            Receiver::builder(Profile::TaskHub)
                .secret(secret.clone())
                .store(store)
                .build()
                .unwrap(),
        ));
    }
    let runs = Arc::new(AtomicUsize::new(0));
    let mut copies = Vec::new();
    for i in 0..50 {
        let receiver = Arc::clone(&receivers[i % 2]);
        let (headers, body, runs) = (headers.clone(), body.clone(), Arc::clone(&runs));
        copies.push(tokio::spawn(async move {
            for _ in 0..200 {
                let runs = Arc::clone(&runs);
                let reply = receiver
                    .handle(&headers, body.clone(), |_| async move {
                        runs.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Ok::<(), std::io::Error>(())
                    })
                    .await;
                if reply.status.is_success() {
                    return;
                }
                assert_eq!(reply.status, 409, "in progress elsewhere");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            panic!("never acknowledged");
        }));
    }
    for copy in copies {
        copy.await.unwrap();
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    pg_support::drop_schema(&url, &schema).await;
}

/// Inside the handler's own transaction: the effect and the memory of it commit together;
/// a rolled-back attempt leaves neither, so the retry processes it.
#[tokio::test]
async fn idempotency_inside_the_handlers_transaction() {
    use hookrelay::receive::{Claim as Idem, IdempotencyKey, PostgresIdempotencyStore, Retention};
    let (url, schema) = setup!("idemtx");
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let store = PostgresIdempotencyStore::from_pool_in(pool.clone(), &schema)
        .await
        .unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE TABLE \"{schema}\".payments (event_id text PRIMARY KEY)"
    )))
    .execute(&pool)
    .await
    .unwrap();
    let key = IdempotencyKey::new("evt_pay_1");
    let now = hookrelay::Timestamp::from_unix(1_700_000_000);
    let retention = Retention::default();
    for commit in [false, true, true] {
        let mut tx = pool.begin().await.unwrap();
        if store.claim_in(&mut tx, &key, now, retention).await.unwrap() == Idem::Acquired {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO \"{schema}\".payments VALUES ($1)"
            )))
            .bind("evt_pay_1")
            .execute(&mut *tx)
            .await
            .unwrap();
            store
                .complete_in(&mut tx, &key, now, retention)
                .await
                .unwrap();
        }
        if commit {
            tx.commit().await.unwrap();
        } else {
            tx.rollback().await.unwrap();
        }
    }
    let payments: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM \"{schema}\".payments"
    )))
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(payments, 1);
    use hookrelay::receive::IdempotencyStore as _;
    assert_eq!(store.claim(&key, now, retention).await.unwrap(), Idem::Done);
    assert!(
        store
            .sweep(hookrelay::Timestamp::from_unix(1_900_000_000), 100)
            .await
            .unwrap()
            >= 1
    );
    pg_support::drop_schema(&url, &schema).await;
}

/// An application role that may use the tables but not create anything opens an already
/// migrated schema with `Migrations::Apply`: nothing is left to create, so nothing is tried.
#[tokio::test]
async fn a_role_without_create_privilege_opens_a_migrated_schema() {
    let (url, schema) = setup!("role");
    let admin = open(&url, &schema).await;
    let role = format!("{schema}_app");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP ROLE IF EXISTS \"{role}\"; CREATE ROLE \"{role}\" LOGIN;
         GRANT USAGE ON SCHEMA \"{schema}\" TO \"{role}\";
         GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA \"{schema}\" TO \"{role}\";
         GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA \"{schema}\" TO \"{role}\";"
    )))
    .execute(admin.pool())
    .await
    .unwrap();
    let options: sqlx::postgres::PgConnectOptions = url.parse().unwrap();
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect_with(options.username(&role))
        .await
        .unwrap();
    let store = PostgresStore::builder()
        .schema(&schema)
        .pool(pool.clone())
        .await
        .expect("opens without creating anything");
    store
        .put_endpoint(&endpoint("ep_a").build().unwrap())
        .await
        .unwrap();
    pool.close().await;
    drop(store);
    pg_support::drop_schema(&url, &schema).await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP ROLE IF EXISTS \"{role}\""
    )))
    .execute(admin.pool())
    .await
    .unwrap();
}

/// Prompt pick-up (issue item 4): a dispatcher idling with a 10-minute poll interval delivers
/// an event committed by another process (another store, its own pool) at once — only the
/// `NOTIFY` sent at commit can have woken it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_dispatcher_is_woken_by_another_process_commit() {
    let (url, schema) = setup!("wake");
    let here = open(&url, &schema).await;
    let there = open(&url, &schema).await;
    let target = "https://ep-wake.example/hook";
    let producer = Sender::new(there.clone());
    producer
        .add_endpoint(
            Endpoint::builder(target, Profile::TaskHub)
                .id(EndpointId::new("ep_wake").unwrap())
                .secret(Secret::from_raw("pg-secret").unwrap())
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    let transport = send_support::ScriptedTransport::new();
    transport.always(target, send_support::status(200));
    let consumer = Sender::new(here.clone());
    let dispatcher = consumer
        .dispatcher(transport.clone())
        .poll_interval(Duration::from_secs(600))
        .spawn();
    // Let it look once, find nothing, and settle into its long sleep.
    here.new_work().await; // the listener is connected
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(transport.seen().is_empty());

    let mut tx = there.pool().begin().await.unwrap();
    producer
        .publish_in(
            &mut tx,
            OutgoingEvent::new("task.created", serde_json::json!({"n": 1})),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(transport.seen().is_empty(), "nothing before the commit");
    tx.commit().await.unwrap();
    for _ in 0..400 {
        if !transport.seen().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        transport.seen_at(target).len(),
        1,
        "woken well before its next poll"
    );
    dispatcher.shutdown(Duration::from_secs(5)).await.unwrap();
    drop((here, there));
    pg_support::drop_schema(&url, &schema).await;
}

/// Ordering holds across processes: the second delivery with an order key is not claimable
/// by any store while the first is pending (claimed by another), and is once it is recorded.
#[tokio::test]
async fn an_order_key_holds_across_stores() {
    let (url, schema) = setup!("order");
    let a = open(&url, &schema).await;
    let b = open(&url, &schema).await;
    a.put_endpoint(&endpoint("ep_a").without_rate_limit().build().unwrap())
        .await
        .unwrap();
    let ordered = |n: u8| {
        let mut p = publication("ep_a");
        p.message.event_id = format!("evt_{n}").into();
        p.deliveries[0].order_key = Some("job_1".into());
        p
    };
    a.enqueue(vec![ordered(1), ordered(2)], at(0))
        .await
        .unwrap();
    let lease = Duration::from_secs(30);
    let first = a.claim(at(0), 10, lease, &[]).await.unwrap();
    assert_eq!(first.len(), 1, "one at a time");
    assert_eq!(first[0].event_id.as_str(), "evt_1");
    assert!(b.claim(at(1), 10, lease, &[]).await.unwrap().is_empty());
    a.record(vec![delivered(&first[0], at(1))]).await.unwrap();
    let second = b.claim(at(2), 10, lease, &[]).await.unwrap();
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].event_id.as_str(), "evt_2");
    drop((a, b));
    pg_support::drop_schema(&url, &schema).await;
}

/// A pending delivery no worker holds (released, due later) is brought forward by a manual
/// retry, keeping its id; a claimed one is left alone.
#[tokio::test]
async fn retry_now_brings_forward_an_unheld_pending_delivery() {
    use hookrelay::send::store::Release;
    let (url, schema) = setup!("retry");
    let store = open(&url, &schema).await;
    store
        .put_endpoint(&endpoint("ep_a").without_rate_limit().build().unwrap())
        .await
        .unwrap();
    store
        .enqueue(vec![publication("ep_a"), publication("ep_a")], at(0))
        .await
        .unwrap();
    let lease = Duration::from_secs(30);
    let claims = store.claim(at(0), 2, lease, &[]).await.unwrap();
    store
        .release(vec![Release {
            delivery: claims[0].delivery.clone(),
            token: claims[0].token,
            due_at: at(3_600_000),
        }])
        .await
        .unwrap();
    let ids = [claims[0].delivery.clone(), claims[1].delivery.clone()];
    let queued = store.retry_now(&ids, at(1)).await.unwrap();
    assert_eq!(
        queued,
        [claims[0].delivery.clone()],
        "the held one is left alone"
    );
    let again = store.claim(at(1), 2, lease, &[]).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].delivery, claims[0].delivery);
    assert!(again[0].manual);
    drop(store);
    pg_support::drop_schema(&url, &schema).await;
}

/// A schema migrated by hookrelay 0.1 has `hookrelay_migrations` without its `name` column:
/// opening adds the column, names the steps already applied, and applies nothing twice.
#[tokio::test]
async fn an_old_migrations_table_gains_its_names() {
    let (url, schema) = setup!("oldmig");
    let store = open(&url, &schema).await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "ALTER TABLE \"{schema}\".hookrelay_migrations DROP COLUMN name"
    )))
    .execute(store.pool())
    .await
    .unwrap();
    let pool = store.pool().clone();
    drop(store);
    let store = PostgresStore::builder()
        .schema(&schema)
        .pool(pool)
        .await
        .unwrap();
    let rows: Vec<(i32, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT version, name FROM \"{schema}\".hookrelay_migrations ORDER BY version"
    )))
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert_eq!(
        rows,
        vec![
            (1, "0001_init".to_owned()),
            (2, "0002_administration".to_owned()),
            (3, "0003_endpoint_fields".to_owned()),
            (4, "0004_management_limits".to_owned()),
            (5, "0005_claim_order".to_owned())
        ]
    );
    drop(store);
    pg_support::drop_schema(&url, &schema).await;
}

/// A statement running past the store's `statement_timeout` is cancelled and reported as
/// a retryable time-out.
#[tokio::test]
async fn the_statement_timeout_bounds_a_stuck_database() {
    let (url, schema) = setup!("stmt_timeout");
    let store = PostgresStore::builder()
        .schema(&schema)
        .statement_timeout(Duration::from_millis(200))
        .acquire_timeout(Duration::from_secs(2))
        .connect(&url)
        .await
        .unwrap();
    let err = sqlx::query("SELECT pg_sleep(5)")
        .execute(store.pool())
        .await
        .unwrap_err();
    let code = match &err {
        sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()),
        _ => None,
    };
    assert_eq!(code.as_deref(), Some("57014"), "{err:?}");
    drop(store);
    pg_support::drop_schema(&url, &schema).await;
}

/// A schema at step 1 holding history (as a release before the administration step left it)
/// gains step 2 when opened: its deliveries get their message's type and publish time, so
/// the log's filters find them, and nothing else changes.
#[tokio::test]
async fn the_administration_step_applies_on_top_of_a_step_one_schema() {
    let (url, schema) = setup!("step2");
    let script = PostgresStore::migration_sql(&schema).unwrap();
    let step_one_end = script.find("VALUES (1, '0001_init');").unwrap();
    let step_one_end = step_one_end + script[step_one_end..].find('\n').unwrap();
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(&script[..=step_one_end]))
        .execute(&pool)
        .await
        .unwrap();
    let s = format!("\"{schema}\"");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "INSERT INTO {s}.hookrelay_messages (id, event_id, event_type, created_at)
             VALUES ('msg_old', 'evt_old', 'invoice.paid', {T0});
         INSERT INTO {s}.hookrelay_bodies VALUES (1, 0, '\\x7b7d');
         INSERT INTO {s}.hookrelay_deliveries (id, message_seq, endpoint_id, form, status,
                 dead_reason, finished_at, last_status, attempts)
             VALUES ('dlv_old', 1, 'ep_old', 0, 'dead', 'exhausted', {T0}, 500, 3);
         INSERT INTO {s}.hookrelay_attempts (delivery_seq, attempt, started_at, latency_ms,
                 status, response_headers, response_body)
             VALUES (1, 1, {T0}, 5, 500, '[]', '');"
    )))
    .execute(&pool)
    .await
    .unwrap();
    let store = PostgresStore::builder()
        .schema(&schema)
        .pool(pool)
        .await
        .unwrap();
    let page = store
        .log_page(
            &LogQuery {
                event_type: Some(TypePattern::parse("invoice.*")),
                created: TimeRange::between(at(0), at(1)),
                statuses: vec![StatusKind::Dead],
                ..LogQuery::default()
            },
            at(10),
        )
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
    let old = &page.items[0];
    assert_eq!(
        (old.id.as_str(), old.owner.as_ref(), old.created_at),
        ("dlv_old", None, at(0))
    );
    assert_eq!(old.event_type.as_str(), "invoice.paid");
    let attempts = store
        .attempts(&DeliveryId::new("dlv_old").unwrap())
        .await
        .unwrap();
    assert!(attempts[0].request_headers.is_empty());
    let message = store
        .message(&MessageId::new("msg_old").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&message.body[..], b"{}");
    drop(store);
    pg_support::drop_schema(&url, &schema).await;
}

/// Log pages over more rows than the first statement's window (`log_filter::WINDOW`, 1000),
/// with publish times out of `seq` order: every query, paged to the end both ways, returns
/// exactly the rows `LogQuery::matches` picks from the whole log, in `seq` order, each once.
#[tokio::test]
async fn log_pages_past_the_window_match_the_reference() {
    let (url, schema) = setup!("logwin");
    let store = open(&url, &schema).await;
    let s = format!("\"{schema}\"");
    const N: i64 = 2600;
    for sql in [
        "INSERT INTO {s}.hookrelay_messages (seq, id, event_id, event_type, created_at)
         SELECT g, 'msg_' || g, 'evt_' || g,
                (ARRAY['job_%.done', 'job_x.done', 'job.done', 'invoice.paid'])[1 + g % 4],
                $2 + ((g * 7919) % $1) * 1000
         FROM generate_series(1, $1) g",
        "INSERT INTO {s}.hookrelay_bodies (message_seq, form, body)
         SELECT g, 0, '\\x7b7d' FROM generate_series(1, $1) g WHERE $2 > 0",
        "INSERT INTO {s}.hookrelay_deliveries
             (seq, id, message_seq, endpoint_id, owner, event_type, created_at, form, status,
              dead_reason, attempts, last_status, finished_at, kind)
         SELECT g, 'dlv_' || g, g, 'ep_' || (g % 3), 'own_' || (g % 2), m.event_type,
                m.created_at, 0,
                (ARRAY['delivered', 'dead', 'expired', 'pending', 'cancelled'])[1 + g % 5],
                CASE WHEN g % 5 = 1 THEN 'exhausted' END, 1,
                CASE WHEN g % 7 = 0 THEN NULL ELSE 200 + (g % 4) * 100 END,
                m.created_at + 10,
                CASE WHEN g % 11 = 0 THEN 'test' ELSE 'event' END
         FROM generate_series(1, $1) g JOIN {s}.hookrelay_messages m ON m.seq = g",
    ] {
        sqlx::query(sqlx::AssertSqlSafe(sql.replace("{s}", &s)))
            .bind(N)
            .bind(T0 as i64)
            .execute(store.pool())
            .await
            .unwrap();
    }
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT setval(pg_get_serial_sequence('{s}.hookrelay_deliveries', 'seq'), {N})"
    )))
    .execute(store.pool())
    .await
    .unwrap();
    let now = at(N as u64 * 1000 + 1);
    // The reference: the whole log unfiltered, oldest first.
    let oldest_first = LogQuery {
        order: LogOrder::OldestFirst,
        ..LogQuery::default()
    };
    let all = store.log_all(&oldest_first, now).await.unwrap();
    assert_eq!(all.len(), N as usize);
    let ms = |s: u64| Some(at(s * 1000));
    let queries = [
        LogQuery {
            created: TimeRange {
                from: ms(100),
                until: ms(160),
            },
            ..LogQuery::default()
        },
        LogQuery {
            created: TimeRange {
                from: ms(2400),
                until: None,
            },
            endpoint: Some(EndpointId::new("ep_1").unwrap()),
            ..LogQuery::default()
        },
        LogQuery {
            event_type: Some(TypePattern::parse("job_%*")),
            statuses: vec![StatusKind::Dead, StatusKind::Cancelled],
            ..LogQuery::default()
        },
        LogQuery {
            kinds: vec![hookrelay::send::DeliveryKind::Test],
            responses: vec![
                hookrelay::send::store::ResponseClass::None,
                hookrelay::send::store::ResponseClass::Redirect,
            ],
            owner: Some(hookrelay::send::Owner::new("own_1").unwrap()),
            ..LogQuery::default()
        },
        LogQuery {
            event_type: Some(TypePattern::parse("job.done")),
            created: TimeRange {
                from: None,
                until: ms(300),
            },
            ..LogQuery::default()
        },
    ];
    for base in queries {
        for order in [LogOrder::NewestFirst, LogOrder::OldestFirst] {
            let mut expected: Vec<&str> = all
                .iter()
                .filter(|d| base.matches(d))
                .map(|d| d.id.as_str())
                .collect();
            if order == LogOrder::NewestFirst {
                expected.reverse();
            }
            let mut got = Vec::new();
            let mut query = LogQuery {
                order,
                limit: PageLimit::new(40).unwrap(),
                ..base.clone()
            };
            for _ in 0..=N {
                let page = store.log_page(&query, now).await.unwrap();
                assert!(page.items.len() <= 40);
                got.extend(page.items.iter().map(|d| d.id.as_str().to_owned()));
                match page.next {
                    Some(next) => query.after = Some(next),
                    None => break,
                }
            }
            assert_eq!(got, expected, "{base:?} {order:?}");
            assert!(!expected.is_empty(), "{base:?}");
        }
    }
    drop(store);
    pg_support::drop_schema(&url, &schema).await;
}

/// Step 3 gives endpoints registered before it a registration time (their oldest delivery's
/// publish time, else the migration's) and the live mode; endpoints that have both keep them.
#[tokio::test]
async fn step_three_backfills_endpoint_times_and_modes() {
    use hookrelay::event::EventMode;
    let (url, schema) = setup!("step3");
    let store = open(&url, &schema).await;
    store
        .put_endpoint(&endpoint("ep_busy").build().unwrap())
        .await
        .unwrap();
    store
        .put_endpoint(&endpoint("ep_idle").build().unwrap())
        .await
        .unwrap();
    let kept = endpoint("ep_kept")
        .mode(EventMode::Test)
        .created_at(at(42))
        .build()
        .unwrap();
    store.put_endpoint(&kept).await.unwrap();
    let mut first = publication("ep_busy");
    first.message.created_at = at(5_000);
    let mut later = publication("ep_busy");
    later.message.created_at = at(9_000);
    store.enqueue(vec![first, later], at(9_000)).await.unwrap();
    // As a schema written before step 3: the fields absent, the step not recorded.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "UPDATE \"{schema}\".hookrelay_endpoints
         SET settings = (settings::jsonb - 'created_at_ms' - 'mode')::text WHERE id <> 'ep_kept';
         DELETE FROM \"{schema}\".hookrelay_migrations WHERE version = 3;"
    )))
    .execute(store.pool())
    .await
    .unwrap();
    drop(store);
    let before = UnixMillis::from(std::time::SystemTime::now());
    let store = open(&url, &schema).await;
    let after = UnixMillis::from(std::time::SystemTime::now());
    let read = |id: &'static str| {
        let store = &store;
        async move {
            store
                .endpoint(&EndpointId::new(id).unwrap())
                .await
                .unwrap()
                .unwrap()
        }
    };
    let busy = read("ep_busy").await;
    assert_eq!(busy.created_at(), Some(at(5_000)), "its oldest delivery");
    assert_eq!(busy.mode(), EventMode::Live);
    let idle = read("ep_idle").await.created_at().unwrap();
    // PostgreSQL's now() is the transaction's start, in microseconds: a millisecond's slack.
    let idle = idle.as_millis();
    assert!(before.as_millis() - 1 <= idle && idle <= after.as_millis() + 1);
    let kept = read("ep_kept").await;
    assert_eq!(kept.created_at(), Some(at(42)));
    assert_eq!(kept.mode(), EventMode::Test);
    drop(store);
    pg_support::drop_schema(&url, &schema).await;
}
