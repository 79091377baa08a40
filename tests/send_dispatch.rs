//! The dispatcher against a scripted transport and a manual clock.

mod send_support;

use std::time::Duration;

use hookrelay::Secret;
use hookrelay::event::OutgoingEvent;
use hookrelay::profile::Profile;
use hookrelay::retry::UnixMillis;
use hookrelay::send::store::DeadReason;
use hookrelay::send::{
    DeliveryStatus, DeliveryStore, Endpoint, EndpointStatus, ManualClock, MemoryStore, Sender,
};
use send_support::{ScriptedTransport, status, status_with};

const T0: u64 = 1_700_000_000;

fn setup() -> (Sender<MemoryStore>, ManualClock, ScriptedTransport) {
    let clock = ManualClock::at(UnixMillis::from_secs(T0));
    let sender = Sender::with_clock(MemoryStore::new(), clock.clone());
    (sender, clock, ScriptedTransport::new())
}

fn endpoint(url: &str, profile: Profile) -> Endpoint {
    Endpoint::builder(url, profile)
        .secret(Secret::from_raw("your_webhook_secret").unwrap())
        .without_rate_limit()
        .build()
        .unwrap()
}

#[tokio::test]
async fn proposal_generator_retry_timeline_then_dead_letter() {
    let (sender, clock, transport) = setup();
    let url = "https://hooks.example/pg";
    transport.always(url, status_with(500, &[], "try later"));
    sender
        .add_endpoint(endpoint(url, Profile::ProposalGenerator))
        .await
        .unwrap();
    let mut dispatcher = sender.dispatcher(transport.clone()).jitter_seed(1).build();
    let message = sender
        .publish(OutgoingEvent::new(
            "job.completed",
            serde_json::json!({"job_id": "job_1"}),
        ))
        .await
        .unwrap();

    // 6 attempts: now, +1, +2, +4, +8, +16 seconds (DESIGN.md trap 8).
    let mut offsets = Vec::new();
    for _ in 0..200 {
        let made = dispatcher.run_due().await.unwrap();
        if made > 0 {
            offsets.push(clock.now_secs() - T0);
        }
        let record = sender.deliveries_of(&message).await.unwrap().remove(0);
        if record.status != DeliveryStatus::Pending {
            break;
        }
        clock.advance(Duration::from_millis(500));
    }
    assert_eq!(offsets, vec![0, 1, 3, 7, 15, 31]);
    let record = sender.deliveries_of(&message).await.unwrap().remove(0);
    assert_eq!(
        record.status,
        DeliveryStatus::DeadLettered(DeadReason::Exhausted)
    );
    assert_eq!(record.attempts, 6);
    let log = sender.store().attempts(&record.id).await.unwrap();
    assert_eq!(log.len(), 6);
    assert_eq!(log[5].status, Some(500));
    assert_eq!(&log[5].response_body[..], b"try later");
}

#[tokio::test]
async fn gone_disables_the_endpoint() {
    let (sender, _clock, transport) = setup();
    let url = "https://hooks.example/gone";
    transport.always(url, status(410));
    let id = sender
        .add_endpoint(endpoint(url, Profile::TaskHub))
        .await
        .unwrap();
    let mut dispatcher = sender.dispatcher(transport.clone()).build();
    let message = sender
        .publish(OutgoingEvent::new(
            "task.created",
            serde_json::json!({"taskId": "1"}),
        ))
        .await
        .unwrap();
    assert_eq!(dispatcher.run_due().await.unwrap(), 1);
    let record = sender.deliveries_of(&message).await.unwrap().remove(0);
    assert_eq!(
        record.status,
        DeliveryStatus::DeadLettered(DeadReason::EndpointGone)
    );
    let endpoint = sender.store().endpoint(&id).await.unwrap().unwrap();
    assert_eq!(endpoint.status(), EndpointStatus::Disabled);
}

trait NowSecs {
    fn now_secs(&self) -> u64;
}

impl NowSecs for ManualClock {
    fn now_secs(&self) -> u64 {
        use hookrelay::send::SendClock;
        self.now().as_millis() / 1000
    }
}
