//! A store that fails must not cost a re-send: the dispatcher keeps the results the store did
//! not accept, records them when it answers again, and claims nothing new meanwhile. A store
//! that is slow must not cost a round per delivery: results share the rounds.

#[path = "support/fault_store.rs"]
mod fault_store;
mod send_support;

use std::collections::HashMap;
use std::time::Duration;

use fault_store::FaultStore;
use hookrelay::Secret;
use hookrelay::event::OutgoingEvent;
use hookrelay::profile::Profile;
use hookrelay::retry::UnixMillis;
use hookrelay::send::store::{DeliveryLog as _, LogQuery};
use hookrelay::send::{DeliveryStatus, Endpoint, EndpointStatus, ManualClock, Sender};
use send_support::{ScriptedTransport, status};

/// The out-of-crate store, failing `record` and `record_and_claim` (counted together).
fn failing(n: usize) -> FaultStore {
    let store = FaultStore::new();
    store.fail_next_of(&["record", "record_and_claim"], n);
    store
}

fn endpoint(url: &str) -> Endpoint {
    Endpoint::builder(url, Profile::TaskHub)
        .secret(Secret::from_raw("your_webhook_secret").unwrap())
        .status(EndpointStatus::Active)
        .without_rate_limit()
        .build()
        .unwrap()
}

fn task(i: u32) -> OutgoingEvent {
    OutgoingEvent::new("task.created", serde_json::json!({ "taskId": i }))
}

/// How many requests each delivery id received.
fn sends_per_delivery(transport: &ScriptedTransport) -> HashMap<String, usize> {
    let mut sends = HashMap::new();
    for seen in transport.seen() {
        let id = seen
            .header("x-delivery-id")
            .expect("task hub names the delivery");
        *sends.entry(id.to_owned()).or_default() += 1;
    }
    sends
}

async fn all_delivered(sender: &Sender<FaultStore>) -> bool {
    let all = sender
        .store()
        .log_all(&LogQuery::default(), UnixMillis::now())
        .await
        .unwrap();
    !all.is_empty() && all.iter().all(|d| d.status == DeliveryStatus::Delivered)
}

#[tokio::test]
async fn a_store_that_fails_to_record_costs_no_resend_even_past_the_lease() {
    // Six failures in a row: the dispatcher backs off 50, 100, 200, 400, 800, 1600 ms, so
    // the results wait about 3 s — three times the 1 s lease. Before, each failure dropped
    // the results and the deliveries were sent again once their leases ran out.
    let store = failing(6);
    let sender = Sender::new(store.clone());
    let transport = ScriptedTransport::new();
    let (a, b) = ("https://a.example/hook", "https://b.example/hook");
    transport.always(a, status(200)).always(b, status(204));
    let ea = sender.add_endpoint(endpoint(a)).await.unwrap();
    let eb = sender.add_endpoint(endpoint(b)).await.unwrap();
    let handle = sender
        .dispatcher(transport.clone())
        .lease(Duration::from_secs(1))
        .poll_interval(Duration::from_millis(20))
        .spawn();
    sender
        .publish_batch((0..10).map(task).collect())
        .await
        .unwrap();

    let started = std::time::Instant::now();
    while !all_delivered(&sender).await && started.elapsed() < Duration::from_secs(15) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Past another lease: a dropped result would have been sent again by now.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let report = handle.shutdown(Duration::from_secs(5)).await.unwrap();

    assert_eq!(store.failed(), 6, "every fault was hit");
    let all = sender
        .store()
        .log_all(&LogQuery::default(), UnixMillis::now())
        .await
        .unwrap();
    assert_eq!(all.len(), 20, "ten events to two endpoints");
    for delivery in &all {
        assert_eq!(delivery.status, DeliveryStatus::Delivered, "{delivery:?}");
        assert_eq!(delivery.attempts, 1);
        let log = sender.store().attempts(&delivery.id).await.unwrap();
        assert_eq!(log.len(), 1, "one attempt logged");
    }
    let sends = sends_per_delivery(&transport);
    assert_eq!(sends.len(), 20);
    assert!(
        sends.values().all(|&n| n == 1),
        "each delivery sent exactly once: {sends:?}"
    );
    assert_eq!(transport.seen_at(a).len(), 10);
    assert_eq!(transport.seen_at(b).len(), 10);
    assert_eq!(report.unrecorded, 0);
    let _ = (ea, eb);
}

#[tokio::test]
async fn nothing_new_is_claimed_while_results_wait() {
    // One slot: the first attempt's result fails to record twice. The second event must
    // not go out before the first one's result is stored.
    let store = failing(2);
    let sender = Sender::new(store.clone());
    let transport = ScriptedTransport::new();
    let url = "https://a.example/hook";
    transport.always(url, status(200));
    sender.add_endpoint(endpoint(url)).await.unwrap();
    let first = sender.publish(task(1)).await.unwrap();
    let handle = sender
        .dispatcher(transport.clone())
        .concurrency(1)
        .poll_interval(Duration::from_millis(5))
        .spawn();
    let started = std::time::Instant::now();
    while transport.seen().is_empty() && started.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    sender.publish(task(2)).await.unwrap();
    while !all_delivered(&sender).await && started.elapsed() < Duration::from_secs(10) {
        let sent = transport.seen().len();
        if sent == 2 {
            // When the second went out, the first was already recorded.
            let record = sender.deliveries_of(&first).await.unwrap().remove(0);
            assert_eq!(record.status, DeliveryStatus::Delivered);
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    handle.shutdown(Duration::from_secs(5)).await.unwrap();
    assert!(all_delivered(&sender).await);
    assert_eq!(transport.seen().len(), 2);
    assert_eq!(store.failed(), 2);
}

#[tokio::test]
async fn shutdown_reports_what_it_could_not_record() {
    let store = failing(usize::MAX);
    let sender = Sender::new(store.clone());
    let transport = ScriptedTransport::new();
    let url = "https://a.example/hook";
    transport.always(url, status(200));
    sender.add_endpoint(endpoint(url)).await.unwrap();
    let message = sender.publish(task(1)).await.unwrap();
    let handle = sender.dispatcher(transport.clone()).spawn();
    let started = std::time::Instant::now();
    while transport.seen().is_empty() && started.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let begun = std::time::Instant::now();
    let report = handle.shutdown(Duration::from_millis(300)).await.unwrap();
    assert!(
        begun.elapsed() < Duration::from_secs(3),
        "the deadline holds"
    );
    assert_eq!(report.unrecorded, 1);
    assert_eq!(report.finished, 0);
    assert_eq!(transport.seen().len(), 1, "sent once, never again");
    let record = sender.deliveries_of(&message).await.unwrap().remove(0);
    assert_eq!(record.status, DeliveryStatus::Pending);
    assert!(store.failed() >= 2, "retried");
}

#[tokio::test]
async fn run_due_keeps_results_across_a_store_failure() {
    let store = failing(1);
    let clock = ManualClock::at(UnixMillis::from_secs(1_700_000_000));
    let sender = Sender::with_clock(store.clone(), clock);
    let transport = ScriptedTransport::new();
    let url = "https://a.example/hook";
    transport.always(url, status(200));
    sender.add_endpoint(endpoint(url)).await.unwrap();
    let message = sender.publish(task(1)).await.unwrap();
    let mut dispatcher = sender.dispatcher(transport.clone()).build();

    assert!(dispatcher.run_due().await.is_err(), "the store failed");
    assert_eq!(transport.seen().len(), 1);
    assert_eq!(
        dispatcher.run_due().await.unwrap(),
        0,
        "recorded, not resent"
    );
    assert_eq!(transport.seen().len(), 1);
    let record = sender.deliveries_of(&message).await.unwrap().remove(0);
    assert_eq!(record.status, DeliveryStatus::Delivered);
}

#[tokio::test]
async fn a_slow_store_at_concurrency_one_records_many_results_per_round() {
    // Each round takes 20 ms (a commit), each attempt next to nothing. With one claim ahead
    // of the one slot, every delivery waited for a round of its own: 150 deliveries, ~150
    // rounds, ~3 s. The claims ahead grow with the results a round records, so attempts go
    // on while a round is in the store and the next one carries their results.
    let store = FaultStore::new();
    store.slow_rounds(Duration::from_millis(20));
    let sender = Sender::new(store.clone());
    let transport = ScriptedTransport::new();
    let url = "https://a.example/hook";
    transport.always(url, status(200));
    sender.add_endpoint(endpoint(url)).await.unwrap();
    sender
        .publish_batch((0..150).map(task).collect())
        .await
        .unwrap();
    let handle = sender
        .dispatcher(transport.clone())
        .concurrency(1)
        .poll_interval(Duration::from_millis(20))
        .spawn();
    handle.wait_idle(Duration::from_secs(30)).await.unwrap();
    assert!(all_delivered(&sender).await);
    let sends = sends_per_delivery(&transport);
    assert_eq!(sends.len(), 150);
    assert!(sends.values().all(|n| *n == 1), "{sends:?}");
    let rounds = store.calls("record") + store.calls("record_and_claim");
    assert_eq!(store.records(), 150);
    assert!(
        rounds <= 30,
        "{rounds} rounds recorded 150 results: they should share rounds"
    );
    handle.shutdown(Duration::from_secs(5)).await.unwrap();
}
