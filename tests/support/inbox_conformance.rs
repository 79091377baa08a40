//! What every inbox store must do, whatever it is backed by: run from tests/inbox.rs
//! (memory, SQLite) and tests/inbox_postgres.rs.

use std::time::Duration;

use bytes::Bytes;
use hookrelay::profile::Profile;
use hookrelay::receive::IdempotencyKey;
use hookrelay::receive::inbox::{
    Accepted, AttemptResult, EntryStatus, InboxAttempt, InboxQuery, InboxStore, NewEntry, Recorded,
};
use hookrelay::retry::UnixMillis;

pub const T0: u64 = 1_700_000_000_000;
const LEASE: Duration = Duration::from_secs(30);

pub fn at(offset_ms: u64) -> UnixMillis {
    UnixMillis::from_millis(T0 + offset_ms)
}

/// A stored entry for `key`, received at `T0 + offset`; its body names `kind`.
pub fn entry(key: &str, kind: &str, offset_ms: u64, order_key: Option<&str>) -> NewEntry {
    let body = format!(r#"{{"type":"{kind}","data":{{"key":"{key}"}}}}"#);
    let mut entry = NewEntry::new(
        &fake_inbound(key, kind, body.clone()),
        vec![("content-type".into(), "application/json".into())],
        at(offset_ms),
    );
    entry.order_key = order_key.map(str::to_owned);
    // The key the tests name, so they can make duplicates.
    entry.key = IdempotencyKey::new(key);
    entry
}

fn fake_inbound(key: &str, kind: &str, body: String) -> hookrelay::receive::Inbound {
    // The only public way to an Inbound is verification: sign with task-hub's scheme.
    use hookrelay::receive::Receiver;
    use hookrelay::scheme::{Message, Scheme, XHub};
    let secret = hookrelay::Secret::from_raw("conformance-secret").unwrap();
    let receiver = Receiver::builder(Profile::TaskHub)
        .secret(secret.clone())
        .build()
        .unwrap();
    let mut headers = XHub::new()
        .sign(&secret, &Message::new(body.as_bytes()))
        .unwrap()
        .to_header_map()
        .unwrap();
    headers.insert("x-event-type", kind.parse().unwrap());
    headers.insert("x-delivery-id", key.parse().unwrap());
    receiver.verify(&headers, Bytes::from(body)).unwrap()
}

async fn stored(store: &impl InboxStore, entry: NewEntry) -> hookrelay::receive::inbox::InboxId {
    match store.accept(entry).await.unwrap() {
        Accepted::Stored(id) => id,
        other => panic!("expected a new entry, got {other:?}"),
    }
}

/// Accepting stores once per key; the entry reads back as accepted.
pub async fn accepts_once_per_key(store: &impl InboxStore) {
    let first = entry("k-accept", "task.created", 0, None);
    let id = stored(store, first.clone()).await;
    let again = store.accept(first.clone()).await.unwrap();
    assert_eq!(again, Accepted::Duplicate(id));
    let (read, attempts) = store.entry(id).await.unwrap().expect("stored");
    assert_eq!(read.accepted, first);
    assert_eq!(read.status, EntryStatus::Pending);
    assert_eq!(read.attempts, 0);
    assert!(attempts.is_empty());
    assert_eq!(
        store
            .entry(hookrelay::receive::inbox::InboxId::new(id.get() + 1000))
            .await
            .unwrap(),
        None
    );
    let counts = store.counts().await.unwrap();
    assert_eq!(
        (counts.pending, counts.processing, counts.done, counts.dead),
        (1, 0, 0, 0)
    );
}

/// Claims lease due entries, oldest first; a lease that ends lets another claim take the
/// entry, and the first claim's result is then stale.
pub async fn leases_and_fences(store: &impl InboxStore) {
    let a = stored(store, entry("k-lease-a", "t", 0, None)).await;
    let b = stored(store, entry("k-lease-b", "t", 10, None)).await;
    assert!(
        store
            .claim(at(0), LEASE, 10)
            .await
            .unwrap()
            .iter()
            .all(|c| c.entry.id != b),
        "b is not due yet"
    );
    // (a was claimed by the call above.)
    let claimed = store.claim(at(20), LEASE, 10).await.unwrap();
    assert_eq!(
        claimed.iter().map(|c| c.entry.id).collect::<Vec<_>>(),
        vec![b]
    );
    assert!(
        store.claim(at(20), LEASE, 10).await.unwrap().is_empty(),
        "both leased"
    );
    assert_eq!(
        store.next_due().await.unwrap(),
        Some(at(LEASE.as_millis() as u64))
    );
    // a's lease ends: claimed again under a new token.
    let again = store
        .claim(at(LEASE.as_millis() as u64 + 1), LEASE, 10)
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].entry.id, a);
    assert_eq!(again[0].entry.status, EntryStatus::Processing);
    let stale = store
        .record(
            a,
            again[0].token - 1,
            InboxAttempt::new(at(1), Duration::from_millis(5), None),
            AttemptResult::Done,
        )
        .await
        .unwrap();
    assert_eq!(stale, Recorded::Stale);
    let applied = store
        .record(
            a,
            again[0].token,
            InboxAttempt::new(at(40_000), Duration::from_millis(5), None),
            AttemptResult::Done,
        )
        .await
        .unwrap();
    assert_eq!(applied, Recorded::Applied);
    let (read, attempts) = store.entry(a).await.unwrap().unwrap();
    assert_eq!(read.status, EntryStatus::Done);
    assert_eq!(read.attempts, 1);
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].error, None);
    assert!(!attempts[0].manual);
}

/// Retry and dead results, the attempt log, replay one and replay by filter.
pub async fn retries_dead_letters_and_replays(store: &impl InboxStore) {
    let id = stored(store, entry("k-retry", "task.failed", 0, None)).await;
    let other = stored(store, entry("k-retry-2", "task.other", 0, None)).await;
    let claimed = store.claim(at(0), LEASE, 10).await.unwrap();
    assert_eq!(claimed.len(), 2);
    for c in &claimed {
        let result = AttemptResult::RetryAt {
            at: at(1_000),
            error: "boom 1".into(),
        };
        let attempt = InboxAttempt::new(at(0), Duration::from_millis(3), Some("boom 1".into()));
        assert_eq!(
            store
                .record(c.entry.id, c.token, attempt, result)
                .await
                .unwrap(),
            Recorded::Applied
        );
    }
    let (read, _) = store.entry(id).await.unwrap().unwrap();
    assert_eq!(
        (read.status, read.attempts, read.next_attempt_at),
        (EntryStatus::Pending, 1, at(1_000))
    );
    assert_eq!(read.last_error.as_deref(), Some("boom 1"));
    assert!(store.claim(at(999), LEASE, 10).await.unwrap().is_empty());
    let claimed = store.claim(at(1_000), LEASE, 10).await.unwrap();
    assert_eq!(claimed.len(), 2);
    for c in &claimed {
        let attempt = InboxAttempt::new(at(1_000), Duration::from_millis(3), Some("boom 2".into()));
        let result = AttemptResult::Dead {
            error: "boom 2".into(),
        };
        store
            .record(c.entry.id, c.token, attempt, result)
            .await
            .unwrap();
    }
    let dead = store
        .list(&InboxQuery::new().status(EntryStatus::Dead))
        .await
        .unwrap();
    assert_eq!(dead.entries.len(), 2);
    assert_eq!(dead.entries[0].last_error.as_deref(), Some("boom 2"));
    assert_eq!(store.next_due().await.unwrap(), None);

    // Replay one: pending now, runs, and its next attempt is marked manual.
    assert!(store.replay(id, at(5_000)).await.unwrap());
    assert!(
        !store.replay(id, at(5_000)).await.unwrap(),
        "no longer dead"
    );
    let claimed = store.claim(at(5_000), LEASE, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let attempt = InboxAttempt::new(at(5_000), Duration::from_millis(3), None);
    store
        .record(id, claimed[0].token, attempt, AttemptResult::Done)
        .await
        .unwrap();
    let (read, attempts) = store.entry(id).await.unwrap().unwrap();
    assert_eq!(read.status, EntryStatus::Done);
    assert_eq!(read.attempts, 3);
    assert_eq!(
        attempts
            .iter()
            .map(|a| (a.error.clone(), a.manual))
            .collect::<Vec<_>>(),
        vec![
            (Some("boom 1".into()), false),
            (Some("boom 2".into()), false),
            (None, true)
        ]
    );

    // Replay by filter: only the matching dead entry.
    assert_eq!(
        store
            .replay_matching(&InboxQuery::new().event_type("task.nothing"), at(6_000))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .replay_matching(&InboxQuery::new().status(EntryStatus::Pending), at(6_000))
            .await
            .unwrap(),
        0,
        "a filter without dead replays nothing"
    );
    assert_eq!(
        store
            .replay_matching(&InboxQuery::new().event_type("task.other"), at(6_000))
            .await
            .unwrap(),
        1
    );
    let (read, _) = store.entry(other).await.unwrap().unwrap();
    assert_eq!(read.status, EntryStatus::Pending);
}

/// Entries sharing an order key run one at a time, in order; a dead one stops holding its
/// key back; other keys are not held back.
pub async fn orders_by_key(store: &impl InboxStore) {
    let a1 = stored(store, entry("k-ord-1", "t", 0, Some("job-a"))).await;
    let a2 = stored(store, entry("k-ord-2", "t", 1, Some("job-a"))).await;
    let b1 = stored(store, entry("k-ord-3", "t", 2, Some("job-b"))).await;
    let free = stored(store, entry("k-ord-4", "t", 3, None)).await;
    let claimed = store.claim(at(10), LEASE, 10).await.unwrap();
    let ids: Vec<_> = claimed.iter().map(|c| c.entry.id).collect();
    assert_eq!(ids, vec![a1, b1, free]);
    assert!(
        store.claim(at(10), LEASE, 10).await.unwrap().is_empty(),
        "a2 waits for a1"
    );
    let c1 = &claimed[0];
    let attempt = InboxAttempt::new(at(10), Duration::ZERO, Some("no".into()));
    store
        .record(
            a1,
            c1.token,
            attempt,
            AttemptResult::Dead { error: "no".into() },
        )
        .await
        .unwrap();
    let next = store.claim(at(11), LEASE, 10).await.unwrap();
    assert_eq!(
        next.iter().map(|c| c.entry.id).collect::<Vec<_>>(),
        vec![a2]
    );
}

/// Pages newest first by cursor, with filters; purge removes finished old entries only.
pub async fn lists_pages_and_purges(store: &impl InboxStore) {
    let mut ids = Vec::new();
    for i in 0..7u64 {
        let kind = if i % 2 == 0 { "even" } else { "odd" };
        ids.push(stored(store, entry(&format!("k-page-{i}"), kind, i * 100, None)).await);
    }
    let first = store
        .list(&InboxQuery::new().limit(3).unwrap())
        .await
        .unwrap();
    assert_eq!(
        first.entries.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![ids[6], ids[5], ids[4]]
    );
    let cursor = first.next_cursor.expect("more pages");
    let second = store
        .list(&InboxQuery::new().limit(3).unwrap().after_cursor(cursor))
        .await
        .unwrap();
    assert_eq!(
        second.entries.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![ids[3], ids[2], ids[1]]
    );
    let third = store
        .list(
            &InboxQuery::new()
                .limit(3)
                .unwrap()
                .after_cursor(second.next_cursor.unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(
        third.entries.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![ids[0]]
    );
    assert_eq!(third.next_cursor, None);
    let odd = store
        .list(&InboxQuery::new().event_type("odd"))
        .await
        .unwrap();
    assert_eq!(odd.entries.len(), 3);
    let window = store
        .list(&InboxQuery::new().since(at(200)).until(at(500)))
        .await
        .unwrap();
    assert_eq!(
        window.entries.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![ids[4], ids[3], ids[2]]
    );

    // Finish the first three; purge what is finished and received before 250 ms.
    let claimed = store.claim(at(1_000), LEASE, 3).await.unwrap();
    assert_eq!(claimed.len(), 3);
    for c in claimed {
        let attempt = InboxAttempt::new(at(1_000), Duration::ZERO, None);
        store
            .record(c.entry.id, c.token, attempt, AttemptResult::Done)
            .await
            .unwrap();
    }
    assert_eq!(store.purge(at(250)).await.unwrap(), 3);
    assert!(store.entry(ids[0]).await.unwrap().is_none());
    assert!(
        store.entry(ids[3]).await.unwrap().is_some(),
        "unfinished entries stay"
    );
    // A purged key is accepted again.
    assert!(matches!(
        store
            .accept(entry("k-page-0", "even", 0, None))
            .await
            .unwrap(),
        Accepted::Stored(_)
    ));
}

/// Runs every case on fresh stores made by `make`.
#[macro_export]
macro_rules! hookrelay_inbox_conformance {
    ($make:expr) => {
        #[tokio::test]
        async fn accepts_once_per_key() {
            conformance::accepts_once_per_key(&$make.await).await;
        }
        #[tokio::test]
        async fn leases_and_fences() {
            conformance::leases_and_fences(&$make.await).await;
        }
        #[tokio::test]
        async fn retries_dead_letters_and_replays() {
            conformance::retries_dead_letters_and_replays(&$make.await).await;
        }
        #[tokio::test]
        async fn orders_by_key() {
            conformance::orders_by_key(&$make.await).await;
        }
        #[tokio::test]
        async fn lists_pages_and_purges() {
            conformance::lists_pages_and_purges(&$make.await).await;
        }
    };
}
