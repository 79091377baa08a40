//! The administration half of the store conformance suite (issue #18): endpoint pages and keys,
//! deleting endpoints, log pages with every filter, messages, endpoint statistics, request
//! headers and owners. The same scenarios, generic over `DeliveryStore`, run against
//! `MemoryStore`, `SqliteStore` (a fresh temporary file each), `PostgresStore` (a fresh schema
//! each, with the `postgres` feature and `HOOKRELAY_TEST_DATABASE_URL`) and `FaultStore`
//! (`tests/support/fault_store.rs`, outside the crate).
//!
//! Expected values come from the scenario's own table of what it stored, never from the
//! query types' `matches`, so a store and the reference cannot share a mistake.

#[path = "support/fault_store.rs"]
mod fault_store;
#[cfg(feature = "postgres")]
mod pg_support;

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use fault_store::FaultStore;
use hookrelay::Secret;
use hookrelay::profile::Profile;
use hookrelay::retry::UnixMillis;
use hookrelay::send::store::{
    AttemptError, AttemptRecord, ClaimedDelivery, Cursor, DeadReason, DeliveryLog, DeliveryStore,
    EndpointQuery, EndpointRegistry, LogOrder, LogQuery, NewBatch, NewDelivery, NewMessage,
    NextStep, Page, PageLimit, Publication, Recorded, Release, ResponseClass, SeriesScope,
    StatusKind, TimeRange, TypePattern,
};
use hookrelay::send::{
    DeliveryId, DeliveryKind, DeliveryStatus, Endpoint, EndpointId, EndpointKey, EndpointStatus,
    LogRetention, MemoryStore, MessageId, Owner, SqliteStore,
};

const T0: u64 = 1_700_000_000_000;
const LEASE: Duration = Duration::from_secs(30);

fn at(offset_ms: u64) -> UnixMillis {
    UnixMillis::from_millis(T0 + offset_ms)
}

fn id(text: &str) -> EndpointId {
    EndpointId::new(text).unwrap()
}

fn owner(text: &str) -> Owner {
    Owner::new(text).unwrap()
}

fn key(text: &str) -> EndpointKey {
    EndpointKey::new(text).unwrap()
}

fn endpoint(name: &str) -> Endpoint {
    builder(name).build().unwrap()
}

fn builder(name: &str) -> hookrelay::send::EndpointBuilder {
    Endpoint::builder(format!("https://{name}.example/hook"), Profile::TaskHub)
        .id(id(name))
        .secret(Secret::from_raw("conformance").unwrap())
        // No rate limit: PostgresStore enforces endpoint limits in its claims; the scenarios
        // claim several deliveries at one instant.
        .without_rate_limit()
        .concurrency(64)
}

fn owned(name: &str, who: Option<&str>) -> Endpoint {
    let b = builder(name);
    match who {
        Some(who) => b.owner(owner(who)),
        None => b,
    }
    .build()
    .unwrap()
}

/// One message published at `created` with one delivery per `(endpoint, owner)`.
fn publication(
    event_type: &str,
    created: UnixMillis,
    kind: DeliveryKind,
    to: &[(&str, Option<&str>)],
) -> Publication {
    let message = MessageId::generate();
    Publication {
        message: NewMessage {
            event_id: format!("evt_{}", message.as_str()).as_str().into(),
            id: message,
            event_type: event_type.into(),
            created_at: created,
            bodies: vec![Bytes::from_static(br#"{"form":0}"#)],
        },
        deliveries: to
            .iter()
            .map(|(endpoint, who)| NewDelivery {
                owner: who.map(owner),
                kind,
                ..NewDelivery::new(DeliveryId::generate(), id(endpoint), 0)
            })
            .collect(),
        key: None,
    }
}

/// Publishes one event to one endpoint; returns its message and delivery.
async fn publish<S: DeliveryStore>(
    store: &S,
    endpoint: &str,
    who: Option<&str>,
    created: UnixMillis,
) -> (MessageId, DeliveryId) {
    let p = publication(
        "task.created",
        created,
        DeliveryKind::Event,
        &[(endpoint, who)],
    );
    let ids = (p.message.id.clone(), p.deliveries[0].id.clone());
    store.enqueue(vec![p], at(0)).await.unwrap();
    ids
}

/// Claims `delivery` at `now`: claims everything due and hands the others back, due at once.
async fn claim<S: DeliveryStore>(
    store: &S,
    delivery: &DeliveryId,
    now: UnixMillis,
) -> ClaimedDelivery {
    let (mine, others): (Vec<_>, Vec<_>) = store
        .claim(now, 250, LEASE, &[])
        .await
        .unwrap()
        .into_iter()
        .partition(|c| c.delivery == *delivery);
    store
        .release(
            others
                .into_iter()
                .map(|c| Release {
                    delivery: c.delivery,
                    token: c.token,
                    due_at: now,
                })
                .collect(),
        )
        .await
        .unwrap();
    mine.into_iter().next().expect("the delivery is claimable")
}

/// The result of an attempt under `claim`.
fn outcome(
    claim: &ClaimedDelivery,
    started: UnixMillis,
    latency_ms: u64,
    status: Option<u16>,
    next: NextStep,
) -> AttemptRecord {
    AttemptRecord {
        delivery: claim.delivery.clone(),
        token: claim.token,
        attempt: claim.attempts + 1,
        started_at: started,
        latency: Duration::from_millis(latency_ms),
        status,
        error: status.is_none().then_some(AttemptError::Timeout),
        request_headers: vec![("content-type".into(), "application/json".into())],
        response_headers: Vec::new(),
        response_body: Bytes::new(),
        charged: true,
        manual: claim.manual,
        next,
    }
}

/// Claims `delivery` at `started` and records one attempt.
async fn attempt<S: DeliveryStore>(
    store: &S,
    delivery: &DeliveryId,
    started: UnixMillis,
    latency_ms: u64,
    status: Option<u16>,
    next: NextStep,
) {
    let c = claim(store, delivery, started).await;
    let saved = store
        .record(vec![outcome(&c, started, latency_ms, status, next)])
        .await
        .unwrap();
    assert_eq!(saved, vec![Recorded::Saved]);
}

fn endpoint_ids(page: &Page<Arc<Endpoint>>) -> Vec<String> {
    page.items
        .iter()
        .map(|e| e.id().as_str().to_owned())
        .collect()
}

/// Every endpoint page of `query` (at `limit` a page), checking that only the last has no
/// `next`.
async fn walk_endpoints<S: DeliveryStore>(
    store: &S,
    query: &EndpointQuery,
    limit: usize,
) -> Vec<String> {
    let mut query = EndpointQuery {
        limit: PageLimit::new(limit).unwrap(),
        ..query.clone()
    };
    let mut all = Vec::new();
    for _ in 0..100 {
        let page = store.endpoint_page(&query).await.unwrap();
        assert!(page.items.len() <= limit);
        assert!(
            !page.items.is_empty() || query.after.is_none(),
            "a `next` led to an empty page: it must be `None` when nothing more matches"
        );
        all.extend(endpoint_ids(&page));
        match page.next {
            Some(next) => {
                assert_eq!(page.items.len(), limit, "only the last page is short");
                query.after = Some(next);
            }
            None => return all,
        }
    }
    panic!("endpoint paging did not end");
}

/// An endpoint as the page scenario stores it: id, status, profile, owner, subscription.
type EndpointRow = (
    String,
    EndpointStatus,
    Profile,
    Option<&'static str>,
    &'static str,
);

async fn endpoint_pages_filter_and_walk_every_endpoint_once<S: DeliveryStore>(store: S) {
    // Put in an order that is not the id order; ids sort the same bytewise and in any
    // collation.
    let table: Vec<EndpointRow> = (0..12)
        .map(|i| {
            let status = match i % 3 {
                0 => EndpointStatus::Active,
                1 => EndpointStatus::Paused,
                _ => EndpointStatus::Disabled,
            };
            let profile = if i % 4 == 0 {
                Profile::TaskLink
            } else {
                Profile::TaskHub
            };
            let who = [Some("acme"), Some("globex"), None][i % 3 / 2 + i % 2];
            let subscription = if i < 6 { "invoice.*" } else { "job.done" };
            (format!("ep_{i:02}"), status, profile, who, subscription)
        })
        .collect();
    for i in [7, 0, 11, 3, 5, 1, 10, 2, 9, 4, 8, 6] {
        let (name, status, profile, who, subscription) = &table[i];
        let mut b = Endpoint::builder(format!("https://{name}.example/hook"), *profile)
            .id(id(name))
            .secret(Secret::from_raw("conformance").unwrap())
            .subscribe(subscription)
            .status(*status);
        if let Some(who) = who {
            b = b.owner(owner(who));
        }
        store.put_endpoint(&b.build().unwrap()).await.unwrap();
    }
    let all: Vec<String> = table.iter().map(|row| row.0.clone()).collect();
    let expect = |keep: &dyn Fn(&EndpointRow) -> bool| {
        table
            .iter()
            .filter(|row| keep(row))
            .map(|row| row.0.clone())
            .collect::<Vec<_>>()
    };

    // Every page size walks every endpoint exactly once, in id order; a page limit that
    // divides the total exactly still ends with `next: None` on the last full page.
    for limit in [1, 4, 5, 12, 250] {
        assert_eq!(
            walk_endpoints(&store, &EndpointQuery::default(), limit).await,
            all,
            "limit {limit}"
        );
    }
    let first = store
        .endpoint_page(&EndpointQuery {
            limit: PageLimit::new(5).unwrap(),
            ..EndpointQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(endpoint_ids(&first), all[..5]);
    assert_eq!(first.next, Some(Cursor::endpoint(&id("ep_04"))));
    let full = store
        .endpoint_page(&EndpointQuery {
            limit: PageLimit::new(12).unwrap(),
            ..EndpointQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(full.items.len(), 12);
    assert_eq!(full.next, None, "nothing after the twelfth");

    // A cursor naming an id that is not stored still starts strictly after it.
    let after = store
        .endpoint_page(&EndpointQuery {
            after: Some(Cursor::endpoint(&id("ep_05a"))),
            ..EndpointQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(endpoint_ids(&after), all[6..]);

    let filters: Vec<(EndpointQuery, Vec<String>)> = vec![
        (
            EndpointQuery {
                statuses: vec![EndpointStatus::Paused],
                ..EndpointQuery::default()
            },
            expect(&|r| r.1 == EndpointStatus::Paused),
        ),
        (
            EndpointQuery {
                statuses: vec![EndpointStatus::Active, EndpointStatus::Disabled],
                ..EndpointQuery::default()
            },
            expect(&|r| r.1 != EndpointStatus::Paused),
        ),
        (
            EndpointQuery {
                profile: Some(Profile::TaskLink),
                ..EndpointQuery::default()
            },
            expect(&|r| r.2 == Profile::TaskLink),
        ),
        (
            EndpointQuery {
                owner: Some(owner("acme")),
                ..EndpointQuery::default()
            },
            expect(&|r| r.3 == Some("acme")),
        ),
        (
            EndpointQuery {
                owner: Some(owner("nobody")),
                ..EndpointQuery::default()
            },
            Vec::new(),
        ),
        (
            EndpointQuery {
                event_type: Some("invoice.paid".into()),
                ..EndpointQuery::default()
            },
            expect(&|r| r.4 == "invoice.*"),
        ),
        (
            EndpointQuery {
                event_type: Some("job.done".into()),
                ..EndpointQuery::default()
            },
            expect(&|r| r.4 == "job.done"),
        ),
        (
            EndpointQuery {
                owner: Some(owner("globex")),
                statuses: vec![EndpointStatus::Active],
                event_type: Some("job.done".into()),
                ..EndpointQuery::default()
            },
            expect(&|r| {
                r.3 == Some("globex") && r.1 == EndpointStatus::Active && r.4 == "job.done"
            }),
        ),
    ];
    for (query, expected) in &filters {
        assert!(!expected.is_empty() || query.owner.is_some(), "{query:?}");
        for limit in [1, 2, 250] {
            assert_eq!(
                walk_endpoints(&store, query, limit).await,
                *expected,
                "{query:?} at {limit} a page"
            );
        }
    }

    // A log cursor is not an endpoint cursor.
    let err = store
        .endpoint_page(&EndpointQuery {
            after: Some(Cursor::log(3)),
            ..EndpointQuery::default()
        })
        .await
        .unwrap_err();
    assert!(err.is_invalid_input(), "{err:?}");
    // The message says what was wrong (an API answers 400 with it).
    assert!(err.to_string().contains("cursor"), "{err}");
}

async fn endpoint_keys_are_unique_per_owner<S: DeliveryStore>(store: S) {
    let keyed = |name: &str, who: Option<&str>, k: &str| {
        let b = builder(name).key(key(k));
        match who {
            Some(who) => b.owner(owner(who)),
            None => b,
        }
        .build()
        .unwrap()
    };
    let found = async |who: Option<&str>, k: &str| {
        store
            .endpoint_by_key(who.map(owner).as_ref(), &key(k))
            .await
            .unwrap()
            .map(|e| e.id().as_str().to_owned())
    };

    store
        .put_endpoint(&keyed("ep_a", Some("acme"), "billing"))
        .await
        .unwrap();
    // Another endpoint of the same owner cannot take the key; nothing is written.
    let err = store
        .put_endpoint(&keyed("ep_b", Some("acme"), "billing"))
        .await
        .unwrap_err();
    assert!(err.is_conflict(), "{err:?}");
    assert!(store.endpoint(&id("ep_b")).await.unwrap().is_none());
    // Re-putting the holder with its own key is an update.
    let renamed = keyed("ep_a", Some("acme"), "billing")
        .to_builder()
        .name("renamed")
        .build()
        .unwrap();
    store.put_endpoint(&renamed).await.unwrap();
    assert_eq!(
        store.endpoint(&id("ep_a")).await.unwrap().unwrap().name(),
        Some("renamed")
    );
    // Other owners, and endpoints without an owner, have their own namespaces.
    store
        .put_endpoint(&keyed("ep_c", Some("globex"), "billing"))
        .await
        .unwrap();
    store
        .put_endpoint(&keyed("ep_d", None, "billing"))
        .await
        .unwrap();
    let err = store
        .put_endpoint(&keyed("ep_e", None, "billing"))
        .await
        .unwrap_err();
    assert!(err.is_conflict(), "{err:?}");
    assert!(store.endpoint(&id("ep_e")).await.unwrap().is_none());

    assert_eq!(
        found(Some("acme"), "billing").await.as_deref(),
        Some("ep_a")
    );
    assert_eq!(
        found(Some("globex"), "billing").await.as_deref(),
        Some("ep_c")
    );
    assert_eq!(found(None, "billing").await.as_deref(), Some("ep_d"));
    assert_eq!(found(Some("acme"), "shipping").await, None);
    assert_eq!(found(Some("initech"), "billing").await, None);

    // An existing endpoint cannot take a held key either, and keeps what it had.
    store
        .put_endpoint(&owned("ep_b", Some("acme")))
        .await
        .unwrap();
    let err = store
        .put_endpoint(&keyed("ep_b", Some("acme"), "billing"))
        .await
        .unwrap_err();
    assert!(err.is_conflict(), "{err:?}");
    assert_eq!(
        store.endpoint(&id("ep_b")).await.unwrap().unwrap().key(),
        None
    );
    // A key given up is free: ep_a moves to another key, ep_b takes the old one.
    store
        .put_endpoint(&keyed("ep_a", Some("acme"), "billing-v2"))
        .await
        .unwrap();
    store
        .put_endpoint(&keyed("ep_b", Some("acme"), "billing"))
        .await
        .unwrap();
    assert_eq!(
        found(Some("acme"), "billing").await.as_deref(),
        Some("ep_b")
    );
    assert_eq!(
        found(Some("acme"), "billing-v2").await.as_deref(),
        Some("ep_a")
    );
    // A key moves with its endpoint to another owner.
    store
        .put_endpoint(&keyed("ep_a", Some("initech"), "billing-v2"))
        .await
        .unwrap();
    assert_eq!(found(Some("acme"), "billing-v2").await, None);
    assert_eq!(
        found(Some("initech"), "billing-v2").await.as_deref(),
        Some("ep_a")
    );
    // A deleted endpoint's key is free again.
    store.delete_endpoint(&id("ep_d"), at(0)).await.unwrap();
    assert_eq!(found(None, "billing").await, None);
    store
        .put_endpoint(&keyed("ep_e", None, "billing"))
        .await
        .unwrap();
    assert_eq!(found(None, "billing").await.as_deref(), Some("ep_e"));
}

async fn deleting_an_endpoint_cancels_its_pending_deliveries<S: DeliveryStore>(store: S) {
    store.put_endpoint(&endpoint("ep_a")).await.unwrap();
    store.put_endpoint(&endpoint("ep_b")).await.unwrap();
    let (_, done) = publish(&store, "ep_a", None, at(0)).await;
    attempt(&store, &done, at(0), 5, Some(200), NextStep::Delivered).await;
    let (_, held) = publish(&store, "ep_a", None, at(1)).await;
    let held_claim = claim(&store, &held, at(10)).await;
    let (_, waiting) = publish(&store, "ep_a", None, at(2)).await;
    let (_, other) = publish(&store, "ep_b", None, at(3)).await;
    let deleted_at = at(1_000);
    assert_eq!(
        store
            .delete_endpoint(&id("ep_a"), deleted_at)
            .await
            .unwrap(),
        2
    );
    assert!(store.endpoint(&id("ep_a")).await.unwrap().is_none());
    for delivery in [&held, &waiting] {
        let record = store.delivery(delivery, at(1_001)).await.unwrap().unwrap();
        assert_eq!(record.status, DeliveryStatus::Cancelled, "{delivery}");
        assert_eq!(record.finished_at, Some(deleted_at));
        assert_eq!(record.next_attempt_at, None);
        assert!(!record.claimed);
    }
    let kept = store.delivery(&done, at(1_001)).await.unwrap().unwrap();
    assert_eq!(kept.status, DeliveryStatus::Delivered);
    assert_eq!(kept.finished_at, Some(at(5)));
    let untouched = store.delivery(&other, at(1_001)).await.unwrap().unwrap();
    assert_eq!(untouched.status, DeliveryStatus::Pending);

    // The worker that held a cancelled delivery comes back too late.
    let late = store
        .record(vec![outcome(
            &held_claim,
            at(10),
            5,
            Some(200),
            NextStep::Delivered,
        )])
        .await
        .unwrap();
    assert_eq!(late, vec![Recorded::Stale]);
    assert!(store.attempts(&held).await.unwrap().is_empty());
    assert_eq!(
        store
            .delivery(&held, at(1_001))
            .await
            .unwrap()
            .unwrap()
            .status,
        DeliveryStatus::Cancelled
    );
    // Nobody retries them by hand either, and nothing of theirs is claimable.
    assert!(
        store
            .retry_now(&[held.clone(), waiting.clone()], at(1_002))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .delivery(&waiting, at(1_003))
            .await
            .unwrap()
            .unwrap()
            .status,
        DeliveryStatus::Cancelled
    );
    let claims = store.claim(at(1_003), 250, LEASE, &[]).await.unwrap();
    assert_eq!(
        claims.iter().map(|c| &c.delivery).collect::<Vec<_>>(),
        vec![&other]
    );

    let counts = store.counts(at(1_003)).await.unwrap();
    assert_eq!(
        (
            counts.cancelled,
            counts.delivered,
            counts.in_flight,
            counts.pending
        ),
        (2, 1, 1, 0)
    );
    // The log still lists them.
    let log = store
        .log_page(
            &LogQuery {
                endpoint: Some(id("ep_a")),
                ..LogQuery::default()
            },
            at(1_003),
        )
        .await
        .unwrap();
    assert_eq!(
        log.items.iter().map(|r| r.id.clone()).collect::<Vec<_>>(),
        vec![waiting.clone(), held.clone(), done.clone()]
    );
    let cancelled = store
        .log_page(
            &LogQuery {
                statuses: vec![StatusKind::Cancelled],
                ..LogQuery::default()
            },
            at(1_003),
        )
        .await
        .unwrap();
    assert_eq!(
        cancelled
            .items
            .iter()
            .map(|r| r.id.clone())
            .collect::<Vec<_>>(),
        vec![waiting.clone(), held.clone()]
    );

    // Cancelled deliveries go with the failed ones' retention, not before.
    let retention = LogRetention {
        delivered: Duration::from_secs(3_600),
        failed: Duration::from_secs(10),
        manual: Duration::from_secs(3_600),
    };
    let early = store.purge(&retention, at(10_999), 100).await.unwrap();
    assert_eq!(early.deliveries, 0);
    let purged = store.purge(&retention, at(11_000), 100).await.unwrap();
    assert_eq!(purged.deliveries, 2);
    assert_eq!(purged.messages, 2);
    assert!(store.delivery(&held, at(11_000)).await.unwrap().is_none());
    assert!(
        store
            .delivery(&waiting, at(11_000))
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.delivery(&done, at(11_000)).await.unwrap().is_some());
    assert_eq!(store.counts(at(11_000)).await.unwrap().cancelled, 0);

    for gone in ["ep_a", "ep_zz"] {
        let err = store
            .delete_endpoint(&id(gone), at(12_000))
            .await
            .unwrap_err();
        assert!(err.is_not_found(), "{gone}: {err:?}");
    }
}

/// What a log scenario stored about one delivery: the reference the store is checked against.
#[derive(Debug, Clone)]
struct Stored {
    id: DeliveryId,
    message: MessageId,
    endpoint: &'static str,
    owner: Option<&'static str>,
    event_type: &'static str,
    created: UnixMillis,
    kind: DeliveryKind,
    status: StatusKind,
    last_status: Option<u16>,
}

/// What happens to a delivery in the log scenario.
#[derive(Debug, Clone, Copy)]
enum Fate {
    Untouched,
    Delivered(u16),
    Dead(u16),
    Retrying(Option<u16>),
}

/// Where a publication goes: `(endpoint, owner)` pairs.
type Recipients = &'static [(&'static str, Option<&'static str>)];

/// Stores the log scenario: three endpoints (two owners and none), event types that tempt a
/// `LIKE` into matching too much, every status and response class; returns the reference
/// in creation order.
async fn log_fixture<S: DeliveryStore>(store: &S) -> Vec<Stored> {
    store
        .put_endpoint(&owned("ep_a", Some("acme")))
        .await
        .unwrap();
    store
        .put_endpoint(&owned("ep_b", Some("globex")))
        .await
        .unwrap();
    store.put_endpoint(&owned("ep_c", None)).await.unwrap();
    let plan: [(Recipients, &str, DeliveryKind, Fate); 14] = [
        (
            &[("ep_a", Some("acme"))],
            "invoice.paid",
            DeliveryKind::Event,
            Fate::Delivered(200),
        ),
        (
            &[("ep_b", Some("globex"))],
            "invoice.paid",
            DeliveryKind::Event,
            Fate::Dead(503),
        ),
        (
            &[("ep_a", Some("acme")), ("ep_b", Some("globex"))],
            "invoice.failed",
            DeliveryKind::Event,
            Fate::Retrying(Some(429)),
        ),
        (
            &[("ep_c", None)],
            "job.done",
            DeliveryKind::Event,
            Fate::Untouched,
        ),
        (
            &[("ep_a", Some("acme"))],
            "a%b.x",
            DeliveryKind::Event,
            Fate::Delivered(204),
        ),
        (
            &[("ep_a", Some("acme"))],
            "a_b.x",
            DeliveryKind::Event,
            Fate::Retrying(None),
        ),
        (
            &[("ep_b", Some("globex"))],
            "aXb.x",
            DeliveryKind::Event,
            Fate::Dead(404),
        ),
        (
            &[("ep_c", None)],
            "a%bc",
            DeliveryKind::Test,
            Fate::Retrying(Some(302)),
        ),
        (
            &[("ep_c", None)],
            r"a\b.x",
            DeliveryKind::Event,
            Fate::Delivered(200),
        ),
        (
            &[("ep_a", Some("acme"))],
            "invoice",
            DeliveryKind::Test,
            Fate::Untouched,
        ),
        (
            &[("ep_b", Some("globex"))],
            "invoices.paid",
            DeliveryKind::Event,
            Fate::Retrying(Some(500)),
        ),
        (
            &[("ep_c", None)],
            "job.done",
            DeliveryKind::Event,
            Fate::Delivered(201),
        ),
        (
            &[("ep_a", Some("acme"))],
            "ab.x",
            DeliveryKind::Event,
            Fate::Untouched,
        ),
        (
            &[("ep_b", Some("globex"))],
            "a_bc",
            DeliveryKind::Test,
            Fate::Dead(410),
        ),
    ];
    let mut stored = Vec::new();
    let mut fates = Vec::new();
    for (i, (to, event_type, kind, fate)) in plan.into_iter().enumerate() {
        // Publish times out of creation order: the log runs by creation, not publish time.
        let created = at(1_000 * ((i as u64 * 5) % 14));
        let p = publication(event_type, created, kind, to);
        for (d, (endpoint, who)) in p.deliveries.iter().zip(to) {
            let (status, last_status) = match fate {
                Fate::Untouched => (StatusKind::Pending, None),
                Fate::Delivered(s) => (StatusKind::Delivered, Some(s)),
                Fate::Dead(s) => (StatusKind::Dead, Some(s)),
                Fate::Retrying(s) => (StatusKind::Pending, s),
            };
            stored.push(Stored {
                id: d.id.clone(),
                message: p.message.id.clone(),
                endpoint,
                owner: *who,
                event_type,
                created,
                kind,
                status,
                last_status,
            });
            fates.push((d.id.clone(), fate));
        }
        // One publication per call, so creation order is the plan's order.
        store.enqueue(vec![p], at(0)).await.unwrap();
    }
    let claims = store.claim(at(100), 250, LEASE, &[]).await.unwrap();
    assert_eq!(claims.len(), stored.len());
    let mut results = Vec::new();
    let mut releases = Vec::new();
    for c in &claims {
        let fate = fates.iter().find(|(d, _)| *d == c.delivery).unwrap().1;
        let record = |status, next| outcome(c, at(100), 10, status, next);
        match fate {
            Fate::Untouched => releases.push(Release {
                delivery: c.delivery.clone(),
                token: c.token,
                due_at: at(100),
            }),
            Fate::Delivered(s) => results.push(record(Some(s), NextStep::Delivered)),
            Fate::Dead(s) => results.push(record(
                Some(s),
                NextStep::DeadLetter(DeadReason::NotRetryable),
            )),
            Fate::Retrying(s) => results.push(record(s, NextStep::RetryAt(at(60_000)))),
        }
    }
    store.release(releases).await.unwrap();
    let saved = store.record(results).await.unwrap();
    assert!(saved.iter().all(|r| *r == Recorded::Saved));
    stored
}

/// Every page of `query` at `limit` a page, newest first or oldest first as it says.
async fn walk_log<S: DeliveryStore>(store: &S, query: &LogQuery, limit: usize) -> Vec<DeliveryId> {
    let mut query = LogQuery {
        limit: PageLimit::new(limit).unwrap(),
        ..query.clone()
    };
    let mut all = Vec::new();
    for _ in 0..100 {
        let page = store.log_page(&query, at(200)).await.unwrap();
        assert!(page.items.len() <= limit);
        assert!(
            !page.items.is_empty() || query.after.is_none(),
            "a `next` led to an empty page: it must be `None` when nothing more matches"
        );
        all.extend(page.items.iter().map(|r| r.id.clone()));
        match page.next {
            Some(next) => {
                assert_eq!(page.items.len(), limit, "only the last page is short");
                query.after = Some(next);
            }
            None => return all,
        }
    }
    panic!("log paging did not end");
}

async fn log_pages_filter_order_and_walk<S: DeliveryStore>(store: S) {
    let stored = log_fixture(&store).await;
    let newest_first = |keep: &dyn Fn(&Stored) -> bool| {
        stored
            .iter()
            .rev()
            .filter(|s| keep(s))
            .map(|s| s.id.clone())
            .collect::<Vec<_>>()
    };

    // The rows themselves.
    let page = store.log_page(&LogQuery::default(), at(200)).await.unwrap();
    assert_eq!(page.next, None);
    assert_eq!(page.items.len(), stored.len());
    for (record, s) in page.items.iter().zip(stored.iter().rev()) {
        assert_eq!(record.id, s.id);
        assert_eq!(record.message, s.message);
        assert_eq!(record.endpoint.as_str(), s.endpoint);
        assert_eq!(record.owner.as_ref().map(Owner::as_str), s.owner);
        assert_eq!(record.event_type.as_str(), s.event_type);
        assert_eq!(record.created_at, s.created);
        assert_eq!(record.kind, s.kind);
        assert_eq!(record.status.kind(), s.status, "{}", s.id);
        assert_eq!(record.last_status, s.last_status, "{}", s.id);
    }
    let oldest = store
        .log_page(
            &LogQuery {
                order: LogOrder::OldestFirst,
                ..LogQuery::default()
            },
            at(200),
        )
        .await
        .unwrap();
    assert_eq!(
        oldest
            .items
            .iter()
            .map(|r| r.id.clone())
            .collect::<Vec<_>>(),
        stored.iter().map(|s| s.id.clone()).collect::<Vec<_>>()
    );

    let prefix = |p: &str| Some(TypePattern::Prefix(p.to_owned()));
    let some_message = stored[2].message.clone();
    let cases: Vec<(&str, LogQuery, Vec<DeliveryId>)> = vec![
        ("all", LogQuery::default(), newest_first(&|_| true)),
        (
            "endpoint",
            LogQuery {
                endpoint: Some(id("ep_b")),
                ..LogQuery::default()
            },
            newest_first(&|s| s.endpoint == "ep_b"),
        ),
        (
            "owner",
            LogQuery {
                owner: Some(owner("acme")),
                ..LogQuery::default()
            },
            newest_first(&|s| s.owner == Some("acme")),
        ),
        (
            "message",
            LogQuery {
                message: Some(some_message.clone()),
                ..LogQuery::default()
            },
            newest_first(&|s| s.message == some_message),
        ),
        (
            "exact type",
            LogQuery {
                event_type: Some(TypePattern::Exact("invoice.paid".into())),
                ..LogQuery::default()
            },
            newest_first(&|s| s.event_type == "invoice.paid"),
        ),
        (
            "exact type with %",
            LogQuery {
                event_type: Some(TypePattern::Exact("a%b.x".into())),
                ..LogQuery::default()
            },
            newest_first(&|s| s.event_type == "a%b.x"),
        ),
        (
            "prefix",
            LogQuery {
                event_type: Some(TypePattern::parse("invoice.*")),
                ..LogQuery::default()
            },
            newest_first(&|s| s.event_type.starts_with("invoice.")),
        ),
        (
            "prefix without a dot",
            LogQuery {
                event_type: prefix("invoice"),
                ..LogQuery::default()
            },
            newest_first(&|s| s.event_type.starts_with("invoice")),
        ),
        (
            "prefix with % matches it literally",
            LogQuery {
                event_type: prefix("a%b"),
                ..LogQuery::default()
            },
            newest_first(&|s| ["a%b.x", "a%bc"].contains(&s.event_type)),
        ),
        (
            "prefix with _ matches it literally",
            LogQuery {
                event_type: prefix("a_b"),
                ..LogQuery::default()
            },
            newest_first(&|s| ["a_b.x", "a_bc"].contains(&s.event_type)),
        ),
        (
            "prefix with a backslash",
            LogQuery {
                event_type: prefix(r"a\"),
                ..LogQuery::default()
            },
            newest_first(&|s| s.event_type == r"a\b.x"),
        ),
        (
            "empty prefix",
            LogQuery {
                event_type: Some(TypePattern::parse("*")),
                ..LogQuery::default()
            },
            newest_first(&|_| true),
        ),
        // No stored type holds NUL (PostgreSQL text cannot): such a filter matches
        // nothing on every store, rather than failing on one.
        (
            "nothing: a type with NUL",
            LogQuery {
                event_type: Some(TypePattern::parse("a\0b.x")),
                ..LogQuery::default()
            },
            newest_first(&|_| false),
        ),
        (
            "nothing: a prefix with NUL",
            LogQuery {
                event_type: prefix("a\0"),
                ..LogQuery::default()
            },
            newest_first(&|_| false),
        ),
        (
            "statuses",
            LogQuery {
                statuses: vec![StatusKind::Delivered],
                ..LogQuery::default()
            },
            newest_first(&|s| s.status == StatusKind::Delivered),
        ),
        (
            "two statuses",
            LogQuery {
                statuses: vec![StatusKind::Dead, StatusKind::Pending],
                ..LogQuery::default()
            },
            newest_first(&|s| matches!(s.status, StatusKind::Dead | StatusKind::Pending)),
        ),
        (
            "kinds",
            LogQuery {
                kinds: vec![DeliveryKind::Test],
                ..LogQuery::default()
            },
            newest_first(&|s| s.kind == DeliveryKind::Test),
        ),
        (
            "created range",
            LogQuery {
                created: TimeRange::between(at(3_000), at(7_000)),
                ..LogQuery::default()
            },
            newest_first(&|s| s.created >= at(3_000) && s.created < at(7_000)),
        ),
        (
            "created from",
            LogQuery {
                created: TimeRange {
                    from: Some(at(10_000)),
                    until: None,
                },
                ..LogQuery::default()
            },
            newest_first(&|s| s.created >= at(10_000)),
        ),
        (
            "no response",
            LogQuery {
                responses: vec![ResponseClass::None],
                ..LogQuery::default()
            },
            newest_first(&|s| s.last_status.is_none()),
        ),
        (
            "server errors",
            LogQuery {
                responses: vec![ResponseClass::ServerError],
                ..LogQuery::default()
            },
            newest_first(&|s| s.last_status.is_some_and(|c| c >= 500)),
        ),
        (
            "successes and client errors",
            LogQuery {
                responses: vec![ResponseClass::Success, ResponseClass::ClientError],
                ..LogQuery::default()
            },
            newest_first(&|s| {
                s.last_status
                    .is_some_and(|c| (200..300).contains(&c) || (400..500).contains(&c))
            }),
        ),
        (
            "redirects",
            LogQuery {
                responses: vec![ResponseClass::Redirect],
                ..LogQuery::default()
            },
            newest_first(&|s| s.last_status.is_some_and(|c| (300..400).contains(&c))),
        ),
        (
            "everything at once",
            LogQuery {
                owner: Some(owner("globex")),
                event_type: prefix("invoice"),
                statuses: vec![StatusKind::Pending, StatusKind::Dead],
                kinds: vec![DeliveryKind::Event],
                created: TimeRange::between(at(0), at(14_000)),
                responses: vec![ResponseClass::ClientError, ResponseClass::ServerError],
                ..LogQuery::default()
            },
            newest_first(&|s| {
                s.owner == Some("globex")
                    && s.event_type.starts_with("invoice")
                    && s.last_status.is_some_and(|c| c >= 400)
            }),
        ),
        (
            "nothing",
            LogQuery {
                endpoint: Some(id("ep_c")),
                owner: Some(owner("acme")),
                ..LogQuery::default()
            },
            Vec::new(),
        ),
    ];
    for (name, query, expected) in &cases {
        assert!(
            !expected.is_empty() || name.starts_with("nothing"),
            "{name}: a case that tests nothing"
        );
        let page = store.log_page(query, at(200)).await.unwrap();
        assert_eq!(
            page.items.iter().map(|r| r.id.clone()).collect::<Vec<_>>(),
            *expected,
            "{name}"
        );
        assert_eq!(page.next, None, "{name}");
        for limit in [1, 3] {
            assert_eq!(
                walk_log(&store, query, limit).await,
                *expected,
                "{name} at {limit}"
            );
            let oldest = LogQuery {
                order: LogOrder::OldestFirst,
                ..query.clone()
            };
            let mut reversed = expected.clone();
            reversed.reverse();
            assert_eq!(
                walk_log(&store, &oldest, limit).await,
                reversed,
                "{name} oldest first at {limit}"
            );
        }
    }

    // A limit cuts the page and says where the next one starts.
    let three = store
        .log_page(
            &LogQuery {
                limit: PageLimit::new(3).unwrap(),
                ..LogQuery::default()
            },
            at(200),
        )
        .await
        .unwrap();
    assert_eq!(
        three.items.iter().map(|r| r.id.clone()).collect::<Vec<_>>(),
        newest_first(&|_| true)[..3]
    );
    assert!(three.next.is_some());

    // Cursors of another listing are refused.
    let err = store
        .log_page(
            &LogQuery {
                after: Some(Cursor::endpoint(&id("ep_a"))),
                ..LogQuery::default()
            },
            at(200),
        )
        .await
        .unwrap_err();
    assert!(err.is_invalid_input(), "{err:?}");
    // The message says what was wrong (an API answers 400 with it).
    assert!(err.to_string().contains("cursor"), "{err}");
}

/// Walks the log a page at a time while new deliveries keep arriving between pages: every
/// row there was before the walk comes exactly once, in order.
async fn log_pages_neither_skip_nor_repeat_while_deliveries_arrive<S: DeliveryStore>(store: S) {
    store.put_endpoint(&endpoint("ep_a")).await.unwrap();
    store.put_endpoint(&endpoint("ep_b")).await.unwrap();
    let mut old = Vec::new();
    for i in 0..11 {
        let (_, d) = publish(&store, ["ep_a", "ep_b"][i % 2], None, at(i as u64)).await;
        old.push(d);
    }
    for order in [LogOrder::NewestFirst, LogOrder::OldestFirst] {
        let mut query = LogQuery {
            order,
            limit: PageLimit::new(3).unwrap(),
            ..LogQuery::default()
        };
        let mut seen = Vec::new();
        let mut new = HashSet::new();
        for round in 0..100 {
            let page = store.log_page(&query, at(100)).await.unwrap();
            seen.extend(page.items.iter().map(|r| r.id.clone()));
            // Two more deliveries arrive before the next page is read.
            for _ in 0..2 {
                let (_, d) = publish(&store, "ep_a", None, at(1_000 + round as u64)).await;
                new.insert(d);
            }
            match page.next {
                Some(next) => query.after = Some(next),
                None => break,
            }
            assert!(round < 50, "the walk ends");
        }
        let unique: HashSet<_> = seen.iter().collect();
        assert_eq!(unique.len(), seen.len(), "{order:?}: a row came twice");
        let seen_old: Vec<_> = seen.iter().filter(|d| !new.contains(*d)).cloned().collect();
        let mut expected = old.clone();
        if order == LogOrder::NewestFirst {
            expected.reverse();
            assert!(
                seen.iter().all(|d| !new.contains(d)),
                "newest first, arrivals are before the first page"
            );
        }
        assert_eq!(
            seen_old, expected,
            "{order:?}: every old row once, in order"
        );
        // Everything published so far is old for the next walk (oldest first).
        let oldest_first = LogQuery {
            order: LogOrder::OldestFirst,
            ..LogQuery::default()
        };
        let all = store.log_all(&oldest_first, at(100)).await.unwrap();
        old = all.into_iter().map(|r| r.id).collect();
    }
}

async fn a_message_comes_back_with_its_first_body<S: DeliveryStore>(store: S) {
    store.put_endpoint(&endpoint("ep_a")).await.unwrap();
    let message = MessageId::generate();
    let publication = Publication {
        message: NewMessage {
            id: message.clone(),
            event_id: "evt_msg".into(),
            event_type: "invoice.paid".into(),
            created_at: at(42),
            bodies: vec![
                Bytes::from_static(br#"{"form":0}"#),
                Bytes::from_static(br#"{"form":1}"#),
            ],
        },
        deliveries: vec![
            NewDelivery::new(DeliveryId::generate(), id("ep_a"), 1),
            NewDelivery::new(DeliveryId::generate(), id("ep_a"), 0),
        ],
        key: None,
    };
    store.enqueue(vec![publication], at(0)).await.unwrap();
    let record = store.message(&message).await.unwrap().unwrap();
    assert_eq!(record.id, message);
    assert_eq!(record.event_id.as_str(), "evt_msg");
    assert_eq!(record.event_type.as_str(), "invoice.paid");
    assert_eq!(record.created_at, at(42));
    assert_eq!(&record.body[..], br#"{"form":0}"#);
    assert_eq!(store.message(&MessageId::generate()).await.unwrap(), None);
}

async fn endpoint_stats_count_the_window<S: DeliveryStore>(store: S) {
    store.put_endpoint(&endpoint("ep_s")).await.unwrap();
    store.put_endpoint(&endpoint("ep_other")).await.unwrap();
    let window = TimeRange::between(at(10_000), at(20_000));
    let retry = |ms| NextStep::RetryAt(at(ms));
    // Published in the window:
    let (_, delivered) = publish(&store, "ep_s", None, at(10_000)).await;
    let (_, dead) = publish(&store, "ep_s", None, at(10_500)).await;
    let (_, untried) = publish(&store, "ep_s", None, at(11_000)).await;
    let (_, retrying) = publish(&store, "ep_s", None, at(19_999)).await;
    // Published outside it:
    let (_, before) = publish(&store, "ep_s", None, at(5_000)).await;
    let (_, after) = publish(&store, "ep_s", None, at(20_000)).await;
    // Another endpoint's, in the window:
    let (_, foreign) = publish(&store, "ep_other", None, at(12_000)).await;
    let _ = untried;

    attempt(&store, &before, at(9_999), 5_000, Some(503), retry(11_000)).await;
    attempt(
        &store,
        &delivered,
        at(11_000),
        100,
        Some(503),
        retry(12_000),
    )
    .await;
    attempt(
        &store,
        &delivered,
        at(12_000),
        40,
        Some(200),
        NextStep::Delivered,
    )
    .await;
    attempt(&store, &dead, at(13_000), 30, Some(429), retry(14_000)).await;
    let exhausted = NextStep::DeadLetter(DeadReason::Exhausted);
    attempt(&store, &dead, at(14_000), 250, Some(500), exhausted).await;
    attempt(&store, &retrying, at(15_000), 1_000, None, retry(30_000)).await;
    attempt(
        &store,
        &before,
        at(16_000),
        60,
        Some(200),
        NextStep::Delivered,
    )
    .await;
    attempt(&store, &foreign, at(17_000), 7_000, Some(500), exhausted).await;
    attempt(
        &store,
        &after,
        at(20_000),
        9_000,
        Some(200),
        NextStep::Delivered,
    )
    .await;

    let stats = store.endpoint_stats(&id("ep_s"), window).await.unwrap();
    assert_eq!(stats.window, window);
    let d = stats.deliveries;
    assert_eq!(
        (d.delivered, d.dead, d.pending, d.total()),
        (1, 1, 2, 4),
        "{d:?}"
    );
    assert_eq!(stats.success_rate, Some(0.5));
    // In the window: 503, 200, 429, 500, time-out and `before`'s 200.
    assert_eq!(stats.attempts, 6);
    assert_eq!(stats.retries, 3);
    assert_eq!(stats.rate_limited, 1);
    let o = stats.outcomes;
    assert_eq!(
        (
            o.success,
            o.server_error,
            o.rate_limited,
            o.timeout,
            o.client_error
        ),
        (2, 2, 1, 1, 0)
    );
    // Latencies 30, 40, 60, 100, 250, 1000 (nearest rank: p50 the 3rd, p95 and p99 the 6th).
    assert_eq!(
        (
            stats.p50_latency_ms,
            stats.p95_latency_ms,
            stats.p99_latency_ms
        ),
        (Some(60), Some(1_000), Some(1_000))
    );
    assert_eq!(
        stats.average_latency_ms,
        Some((100 + 40 + 30 + 250 + 1_000 + 60) / 6)
    );
    assert_eq!(stats.last_success, Some(at(16_000)));
    assert_eq!(stats.last_failure, Some(at(15_000)));

    let everything = store
        .endpoint_stats(&id("ep_s"), TimeRange::all())
        .await
        .unwrap();
    assert_eq!(everything.deliveries.total(), 6);
    assert_eq!(everything.attempts, 8);
    // Plus 5000 and 9000: eight latencies, p50 the 4th (100), p95 and p99 the 8th.
    assert_eq!(
        (
            everything.p50_latency_ms,
            everything.p95_latency_ms,
            everything.p99_latency_ms
        ),
        (Some(100), Some(9_000), Some(9_000))
    );
    let nobody = store
        .endpoint_stats(&id("ep_nobody"), TimeRange::all())
        .await
        .unwrap();
    assert_eq!((nobody.attempts, nobody.deliveries.total()), (0, 0));
    // Several endpoints at once: the same numbers, in the order asked, a repeat and an
    // unknown id included.
    for range in [window, TimeRange::all()] {
        let ids = [id("ep_other"), id("ep_nobody"), id("ep_s"), id("ep_other")];
        let many = store.endpoints_stats(&ids, range).await.unwrap();
        assert_eq!(many.len(), ids.len());
        for (one, stats) in ids.iter().zip(&many) {
            assert_eq!(
                *stats,
                store.endpoint_stats(one, range).await.unwrap(),
                "{one}"
            );
        }
    }
    assert_eq!(store.endpoints_stats(&[], window).await.unwrap(), vec![]);
    // One endpoint over several windows (overlapping, open-ended, empty): the same numbers.
    let windows = [
        TimeRange::between(at(0), at(11_000)),
        window,
        TimeRange::between(at(11_000), at(16_001)),
        TimeRange {
            from: Some(at(15_000)),
            until: None,
        },
        TimeRange::all(),
        TimeRange::between(at(50_000), at(60_000)),
    ];
    for endpoint in [id("ep_s"), id("ep_other"), id("ep_nobody")] {
        let series = store
            .series(&SeriesScope::Endpoint(endpoint.clone()), &windows)
            .await
            .unwrap();
        assert_eq!(series.len(), windows.len());
        for (w, stats) in windows.iter().zip(&series) {
            assert_eq!(
                *stats,
                store.endpoint_stats(&endpoint, *w).await.unwrap(),
                "{w:?}"
            );
        }
    }
    assert_eq!(
        store
            .series(&SeriesScope::Endpoint(id("ep_s")), &[])
            .await
            .unwrap(),
        vec![]
    );
    // The series' buckets carry the percentiles: before 11 000 only `before`'s 5000 ms; from
    // 15 000 on 1000, 60 and 9000 (p50 the 2nd).
    let series = store
        .series(&SeriesScope::Endpoint(id("ep_s")), &windows)
        .await
        .unwrap();
    let percentiles =
        |s: &hookrelay::send::EndpointStats| (s.p50_latency_ms, s.p95_latency_ms, s.p99_latency_ms);
    assert_eq!(
        percentiles(&series[0]),
        (Some(5_000), Some(5_000), Some(5_000))
    );
    assert_eq!(
        percentiles(&series[3]),
        (Some(1_000), Some(9_000), Some(9_000))
    );
    assert_eq!(percentiles(&series[5]), (None, None, None));
}

async fn request_headers_come_back_with_the_attempt<S: DeliveryStore>(store: S) {
    store.put_endpoint(&endpoint("ep_a")).await.unwrap();
    let (_, d) = publish(&store, "ep_a", None, at(0)).await;
    let c = claim(&store, &d, at(0)).await;
    let sent = vec![
        ("content-type".to_owned(), "application/json".to_owned()),
        ("webhook-id".to_owned(), "msg_1".to_owned()),
        ("webhook-signature".to_owned(), "[redacted]".to_owned()),
        ("x-tenant".to_owned(), "acme, \"quoted\" \u{e9}".to_owned()),
    ];
    let record = AttemptRecord {
        request_headers: sent.clone(),
        response_headers: vec![("retry-after".into(), "5".into())],
        ..outcome(&c, at(0), 12, Some(503), NextStep::RetryAt(at(5_000)))
    };
    store.record(vec![record]).await.unwrap();
    let c = claim(&store, &d, at(5_000)).await;
    store
        .record(vec![AttemptRecord {
            request_headers: Vec::new(),
            ..outcome(&c, at(5_000), 8, Some(200), NextStep::Delivered)
        }])
        .await
        .unwrap();
    let logs = store.attempts(&d).await.unwrap();
    assert_eq!(logs.len(), 2);
    assert_eq!(logs[0].request_headers, sent);
    assert_eq!(
        logs[0].response_headers,
        vec![("retry-after".to_owned(), "5".to_owned())]
    );
    assert!(logs[1].request_headers.is_empty());
}

async fn an_owner_change_moves_pending_deliveries_only<S: DeliveryStore>(store: S) {
    store
        .put_endpoint(&owned("ep_o", Some("acme")))
        .await
        .unwrap();
    let (_, done) = publish(&store, "ep_o", Some("acme"), at(0)).await;
    attempt(&store, &done, at(0), 5, Some(200), NextStep::Delivered).await;
    let (_, held) = publish(&store, "ep_o", Some("acme"), at(1)).await;
    let _held_claim = claim(&store, &held, at(10)).await;
    let (_, waiting) = publish(&store, "ep_o", Some("acme"), at(2)).await;
    let owners = async || {
        let mut out = Vec::new();
        for d in [&done, &held, &waiting] {
            let record = store.delivery(d, at(20)).await.unwrap().unwrap();
            out.push(record.owner.map(|o| o.as_str().to_owned()));
        }
        out
    };
    let some = |o: &str| Some(o.to_owned());
    assert_eq!(
        owners().await,
        vec![some("acme"), some("acme"), some("acme")]
    );

    store
        .put_endpoint(&owned("ep_o", Some("globex")))
        .await
        .unwrap();
    assert_eq!(
        owners().await,
        vec![some("acme"), some("globex"), some("globex")]
    );
    let of = async |who: &str| {
        store
            .log_page(
                &LogQuery {
                    owner: Some(owner(who)),
                    ..LogQuery::default()
                },
                at(20),
            )
            .await
            .unwrap()
            .items
            .into_iter()
            .map(|r| r.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(of("globex").await, vec![waiting.clone(), held.clone()]);
    assert_eq!(of("acme").await, vec![done.clone()]);
    // A listing of the endpoint sees the owners too.
    let listed = store
        .log_all(
            &LogQuery {
                endpoint: Some(id("ep_o")),
                order: LogOrder::OldestFirst,
                ..LogQuery::default()
            },
            at(20),
        )
        .await
        .unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|r| r.owner.as_ref().map(Owner::as_str))
            .collect::<Vec<_>>(),
        vec![Some("acme"), Some("globex"), Some("globex")]
    );

    // Re-putting with the same owner changes nothing; dropping the owner clears theirs.
    store
        .put_endpoint(&owned("ep_o", Some("globex")))
        .await
        .unwrap();
    assert_eq!(
        owners().await,
        vec![some("acme"), some("globex"), some("globex")]
    );
    store.put_endpoint(&owned("ep_o", None)).await.unwrap();
    assert_eq!(owners().await, vec![some("acme"), None, None]);
}

async fn a_batch_belongs_to_its_endpoints_owner<S: DeliveryStore>(store: S) {
    store
        .put_endpoint(&owned("ep_o", Some("acme")))
        .await
        .unwrap();
    for i in 0..2 {
        publish(&store, "ep_o", Some("acme"), at(i)).await;
    }
    let members: Vec<_> = store
        .claim(at(10), 250, LEASE, &[])
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.delivery, c.token))
        .collect();
    assert_eq!(members.len(), 2);
    let batch = DeliveryId::generate();
    let formed = store
        .form_batch(
            NewBatch {
                message: NewMessage {
                    id: MessageId::generate(),
                    event_id: "bat_1".into(),
                    event_type: "batch".into(),
                    created_at: at(0),
                    bodies: vec![Bytes::from_static(b"[1,2]")],
                },
                delivery: batch.clone(),
                endpoint: id("ep_o"),
                members,
            },
            at(10),
            LEASE,
        )
        .await
        .unwrap();
    assert!(formed.is_some());
    let record = store.delivery(&batch, at(10)).await.unwrap().unwrap();
    assert_eq!(record.kind, DeliveryKind::Batch);
    assert_eq!(record.owner, Some(owner("acme")));
    let page = store
        .log_page(
            &LogQuery {
                owner: Some(owner("acme")),
                kinds: vec![DeliveryKind::Batch],
                ..LogQuery::default()
            },
            at(10),
        )
        .await
        .unwrap();
    assert_eq!(
        page.items.iter().map(|r| r.id.clone()).collect::<Vec<_>>(),
        vec![batch]
    );
}

/// A clock the scenario moves by hand (the suite does not need `test-util`).
#[derive(Debug, Clone, Default)]
struct HandClock(Arc<std::sync::atomic::AtomicU64>);

impl HandClock {
    fn set(&self, t: UnixMillis) {
        self.0
            .store(t.as_millis(), std::sync::atomic::Ordering::SeqCst);
    }
}

impl hookrelay::event::EventClock for HandClock {
    fn now(&self) -> std::time::SystemTime {
        std::time::UNIX_EPOCH
            + Duration::from_millis(self.0.load(std::sync::atomic::Ordering::SeqCst))
    }
}

/// An endpoint's registration time (the sender's clock at `add_endpoint`) and its mode are
/// stored and read back, kept by updates, status changes and a replacement under the same
/// id; live events go to live endpoints only and test events to test endpoints only.
async fn registration_time_and_mode_come_back<S: DeliveryStore>(store: S) {
    use hookrelay::event::{EventMode, OutgoingEvent};
    let clock = HandClock::default();
    clock.set(at(1_000));
    let sender = hookrelay::send::Sender::with_clock(store, clock.clone());
    sender.add_endpoint(endpoint("ep_live")).await.unwrap();
    sender
        .add_endpoint(builder("ep_test").mode(EventMode::Test).build().unwrap())
        .await
        .unwrap();
    let read = |name: &'static str| {
        let sender = &sender;
        async move { sender.endpoint(&id(name)).await.unwrap().unwrap() }
    };
    let live = read("ep_live").await;
    assert_eq!(live.created_at(), Some(at(1_000)));
    assert_eq!(live.mode(), EventMode::Live);
    let test = read("ep_test").await;
    assert_eq!(test.created_at(), Some(at(1_000)));
    assert_eq!(test.mode(), EventMode::Test);

    clock.set(at(5_000));
    sender
        .update_endpoint(&id("ep_test"), |b| b.name("renamed"))
        .await
        .unwrap();
    sender.pause_endpoint(&id("ep_test")).await.unwrap();
    sender.resume_endpoint(&id("ep_test")).await.unwrap();
    let test = read("ep_test").await;
    assert_eq!(test.name(), Some("renamed"));
    assert_eq!(test.created_at(), Some(at(1_000)), "kept by changes");
    assert_eq!(test.mode(), EventMode::Test, "kept by changes");
    // Replaced under the same id by a freshly built endpoint: still first registered at 1 s.
    sender.add_endpoint(endpoint("ep_live")).await.unwrap();
    assert_eq!(read("ep_live").await.created_at(), Some(at(1_000)));
    sender
        .update_endpoint(&id("ep_live"), |b| b.mode(EventMode::Test))
        .await
        .unwrap();
    assert_eq!(read("ep_live").await.mode(), EventMode::Test);
    sender
        .update_endpoint(&id("ep_live"), |b| b.mode(EventMode::Live))
        .await
        .unwrap();
    let page = sender
        .list_endpoints(&EndpointQuery::default())
        .await
        .unwrap();
    let seen: Vec<_> = page
        .items
        .iter()
        .map(|e| (e.id().as_str().to_owned(), e.mode(), e.created_at()))
        .collect();
    assert_eq!(
        seen,
        [
            ("ep_live".to_owned(), EventMode::Live, Some(at(1_000))),
            ("ep_test".to_owned(), EventMode::Test, Some(at(1_000))),
        ]
    );

    let targets = |receipt: hookrelay::send::Receipt| {
        let sender = &sender;
        async move {
            let mut to: Vec<String> = sender
                .deliveries_of(&receipt.message)
                .await
                .unwrap()
                .into_iter()
                .map(|d| {
                    assert!(receipt.deliveries.contains(&d.id), "the receipt names it");
                    d.endpoint.as_str().to_owned()
                })
                .collect();
            assert_eq!(to.len(), receipt.deliveries.len());
            to.sort();
            to
        }
    };
    let live = OutgoingEvent::new("task.created", serde_json::json!({"n": 1}));
    let receipt = sender.publish_with_receipt(live).await.unwrap();
    assert_eq!(targets(receipt).await, ["ep_live"]);
    let test = OutgoingEvent::new("task.created", serde_json::json!({"n": 2})).test();
    let receipt = sender.publish_with_receipt(test).await.unwrap();
    assert_eq!(targets(receipt).await, ["ep_test"]);
    // A test send reaches its endpoint whatever its mode.
    let receipt = sender
        .send_test_with_receipt(&id("ep_live"), None)
        .await
        .unwrap();
    assert_eq!(targets(receipt).await, ["ep_live"]);
}

/// A series over one owner's endpoints, or over every delivery, counts exactly those
/// deliveries and attempts; its percentiles are over all of them together.
async fn series_cover_an_owner_or_everything<S: DeliveryStore>(store: S) {
    store
        .put_endpoint(&owned("ep_a1", Some("acme")))
        .await
        .unwrap();
    store
        .put_endpoint(&owned("ep_a2", Some("acme")))
        .await
        .unwrap();
    store
        .put_endpoint(&owned("ep_g", Some("globex")))
        .await
        .unwrap();
    let (_, a1) = publish(&store, "ep_a1", Some("acme"), at(1_000)).await;
    let (_, a2) = publish(&store, "ep_a2", Some("acme"), at(1_500)).await;
    let (_, g) = publish(&store, "ep_g", Some("globex"), at(2_000)).await;
    attempt(&store, &a1, at(3_000), 10, Some(200), NextStep::Delivered).await;
    attempt(&store, &a2, at(3_000), 30, Some(200), NextStep::Delivered).await;
    attempt(&store, &g, at(3_000), 500, Some(200), NextStep::Delivered).await;
    let windows = [TimeRange::between(at(0), at(10_000)), TimeRange::all()];
    let acme = store
        .series(&SeriesScope::Owner(owner("acme")), &windows)
        .await
        .unwrap();
    let all = store.series(&SeriesScope::All, &windows).await.unwrap();
    let nobody = store
        .series(&SeriesScope::Owner(owner("initech")), &windows)
        .await
        .unwrap();
    for i in 0..windows.len() {
        assert_eq!((acme[i].deliveries.total(), acme[i].attempts), (2, 2));
        // Latencies 10 and 30: nearest rank p50 is the first, p99 the second.
        assert_eq!(
            (acme[i].p50_latency_ms, acme[i].p99_latency_ms),
            (Some(10), Some(30))
        );
        assert_eq!((all[i].deliveries.total(), all[i].attempts), (3, 3));
        assert_eq!(
            (all[i].p50_latency_ms, all[i].p99_latency_ms),
            (Some(30), Some(500))
        );
        assert_eq!((nobody[i].deliveries.total(), nobody[i].attempts), (0, 0));
    }
}

async fn run_all<S: DeliveryStore, F: Future<Output = S>>(make: impl Fn() -> F) {
    endpoint_pages_filter_and_walk_every_endpoint_once(make().await).await;
    endpoint_keys_are_unique_per_owner(make().await).await;
    deleting_an_endpoint_cancels_its_pending_deliveries(make().await).await;
    log_pages_filter_order_and_walk(make().await).await;
    log_pages_neither_skip_nor_repeat_while_deliveries_arrive(make().await).await;
    a_message_comes_back_with_its_first_body(make().await).await;
    endpoint_stats_count_the_window(make().await).await;
    series_cover_an_owner_or_everything(make().await).await;
    request_headers_come_back_with_the_attempt(make().await).await;
    an_owner_change_moves_pending_deliveries_only(make().await).await;
    a_batch_belongs_to_its_endpoints_owner(make().await).await;
    registration_time_and_mode_come_back(make().await).await;
}

fn temp_db() -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let path = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "hookrelay-admin-conformance-{}-{}.db",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    path.display().to_string()
}

#[tokio::test]
async fn memory_store_administers() {
    run_all(|| async { MemoryStore::new() }).await;
}

#[tokio::test]
async fn sqlite_store_administers() {
    run_all(|| async {
        SqliteStore::connect(&format!("sqlite://{}?mode=rwc", temp_db()))
            .await
            .unwrap()
    })
    .await;
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn postgres_store_administers() {
    let Some(url) = pg_support::database_url("postgres_store_administers") else {
        return;
    };
    let schemas = std::sync::Mutex::new(Vec::new());
    run_all(|| async {
        let schema = pg_support::fresh_schema(&url, "admin").await;
        schemas.lock().unwrap().push(schema.clone());
        hookrelay::send::PostgresStore::builder()
            .schema(schema)
            .max_connections(4)
            .connect(&url)
            .await
            .unwrap()
    })
    .await;
    for schema in schemas.into_inner().unwrap() {
        pg_support::drop_schema(&url, &schema).await;
    }
}

/// The store written outside the crate forwards every administration method.
#[tokio::test]
async fn a_store_outside_the_crate_administers() {
    run_all(|| async { FaultStore::new() }).await;
}

/// Its faults reach the new methods too, as retryable errors.
#[tokio::test]
async fn faults_reach_the_administration_methods() {
    let store = FaultStore::new();
    store.put_endpoint(&endpoint("ep_a")).await.unwrap();
    let methods = [
        "endpoint_page",
        "endpoint_by_key",
        "delete_endpoint",
        "log_page",
        "message",
        "endpoint_stats",
    ];
    for method in methods {
        store.fail_next(method, 1);
    }
    let errors = [
        store.endpoint_page(&EndpointQuery::default()).await.err(),
        store.endpoint_by_key(None, &key("k")).await.err(),
        store.delete_endpoint(&id("ep_a"), at(0)).await.err(),
        store.log_page(&LogQuery::default(), at(0)).await.err(),
        store.message(&MessageId::generate()).await.err(),
        store
            .endpoint_stats(&id("ep_a"), TimeRange::all())
            .await
            .err(),
    ];
    for (method, err) in methods.iter().zip(errors) {
        assert!(err.is_some_and(|e| e.is_retryable()), "{method}");
    }
    assert_eq!(store.failed(), methods.len());
    // The failed delete did nothing; the next one works.
    assert_eq!(store.delete_endpoint(&id("ep_a"), at(0)).await.unwrap(), 0);
}
