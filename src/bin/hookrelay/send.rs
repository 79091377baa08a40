//! `hookrelay send`: delivers one event through the dispatcher and an in-memory store,
//! printing one JSON line per attempt.

use std::time::Duration;

use hookrelay::event::{EventId, OutgoingEvent};
use hookrelay::profile::Profile;
use hookrelay::retry::{RetryPolicy, UnixMillis};
use hookrelay::scheme::ApiKey;
use hookrelay::send::store::AttemptError;
use hookrelay::send::{
    AddressPolicy, DeliveryLog as _, DeliveryStatus, DispatcherHandle, Endpoint, EndpointStatus,
    MemoryStore, ReqwestTransport, Sender,
};

use crate::Failure;
use crate::args::SendArgs;

pub(crate) fn run(args: &SendArgs) -> Result<String, Failure> {
    let usage = |why: String| Failure::Usage(why);
    let profile: Profile = args
        .profile
        .parse()
        .map_err(|err: hookrelay::profile::UnknownProfile| usage(crate::chain(&err)))?;
    let secret = profile
        .secret_from_text(&args.secret)
        .map_err(|err| usage(format!("invalid --secret: {err}")))?;
    let data = match (&args.data, &args.data_file) {
        (Some(text), _) => text.clone(),
        (None, Some(path)) => std::fs::read_to_string(path)
            .map_err(|err| usage(format!("cannot read --data-file: {err}")))?,
        (None, None) => return Err(usage("--data or --data-file is required".into())),
    };
    let data: serde_json::Value =
        serde_json::from_str(&data).map_err(|err| usage(format!("--data is not JSON: {err}")))?;
    let event_type = match (&args.event, profile) {
        (Some(kind), _) => kind.clone(),
        (None, Profile::TaskOn) => data
            .get("reward_type")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("reward")
            .to_owned(),
        (None, _) => return Err(usage(format!("--profile {profile} needs --event"))),
    };
    let mut event = OutgoingEvent::new(event_type, data);
    if let Some(id) = &args.id {
        event = event.with_id(EventId::new(id.clone()));
    }
    // Before any connection: an id or type the profile cannot put on the wire is a usage error.
    profile
        .check_event(&event)
        .map_err(|err| usage(format!("cannot send this event: {err}")))?;

    let (policy, first_delay) = policy(profile, args)?;
    // One event, delivered now: no verification handshake, no progress throttling.
    let mut endpoint = Endpoint::builder(args.url.clone(), profile)
        .secret(secret)
        .status(EndpointStatus::Active)
        .without_throttle()
        .retry_policy(policy)
        .without_rate_limit();
    if let Some(key) = &args.api_key {
        endpoint = endpoint.api_key(ApiKey::new(key.clone()).map_err(|e| usage(e.to_string()))?);
    }
    let endpoint = endpoint.build().map_err(|err| usage(crate::chain(&err)))?;

    let mut address = AddressPolicy::default();
    if args.allow_http {
        address = address.allow_http();
    }
    if args.allow_private_network {
        address = address.allow_private_networks();
    }
    let transport = ReqwestTransport::builder()
        .policy(address)
        .build()
        .map_err(|err| Failure::Failed(crate::chain(&err)))?;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|err| Failure::Failed(format!("cannot start runtime: {err}")))?;
    runtime.block_on(deliver(endpoint, event, transport, first_delay))
}

/// The retry policy the flags ask for, and the wait before the first attempt.
fn policy(profile: Profile, args: &SendArgs) -> Result<(RetryPolicy, Duration), Failure> {
    let usage = |why: String| Failure::Usage(why);
    let mut builder = profile.retry_policy().to_builder();
    let mut first = Duration::ZERO;
    if let Some(schedule) = &args.retry_schedule {
        let delays = schedule
            .split(',')
            .map(|item| {
                item.trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|s| s.is_finite() && *s >= 0.0 && *s <= 86_400.0)
                    .map(Duration::from_secs_f64)
                    .ok_or_else(|| {
                        usage(format!(
                            "--retry-schedule: {item:?} is not a number of seconds"
                        ))
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let (head, rest) = delays
            .split_first()
            .ok_or_else(|| usage("--retry-schedule is empty".into()))?;
        first = *head;
        let attempts = u32::try_from(delays.len())
            .map_err(|_| usage("--retry-schedule is too long".into()))?;
        // A one-attempt schedule has no retry delays; any list works then.
        let retry_delays = if rest.is_empty() {
            vec![Duration::ZERO]
        } else {
            rest.to_vec()
        };
        builder = builder
            .delays(retry_delays)
            .max_attempts(attempts)
            .jitter(hookrelay::retry::Jitter::None);
    } else if let Some(n) = args.max_attempts {
        builder = builder.max_attempts(n);
    }
    if let Some(secs) = args.timeout {
        // Policies keep whole milliseconds: 1 ms is the shortest timeout that stays non-zero.
        if !(secs.is_finite() && (0.001..=3600.0).contains(&secs)) {
            return Err(usage(
                "--timeout must be between 0.001 and 3600 seconds".into(),
            ));
        }
        builder = builder.timeout(Duration::from_secs_f64(secs));
    }
    let policy = builder.build().map_err(|err| usage(crate::chain(&err)))?;
    Ok((policy, first))
}

async fn deliver(
    endpoint: Endpoint,
    event: OutgoingEvent,
    transport: ReqwestTransport,
    first_delay: Duration,
) -> Result<String, Failure> {
    let failed = |why: String| Failure::Failed(why);
    let sender = Sender::new(MemoryStore::new());
    let timeout = endpoint.retry_policy().timeout();
    sender
        .add_endpoint(endpoint)
        .await
        .map_err(|e| failed(crate::chain(&e)))?;
    // The lease must outlast the attempt's timeout.
    let lease = timeout.mul_f64(1.5).max(Duration::from_secs(10));
    let dispatcher = sender.dispatcher(transport).lease(lease).spawn();
    let result = report(&sender, &dispatcher, event, first_delay, lease).await;
    // Nothing is left in flight once the delivery has finished.
    let _ = dispatcher.shutdown(Duration::from_secs(1)).await;
    result
}

/// Publishes the event, then prints each attempt as the dispatcher records it, until the
/// delivery is delivered or given up.
async fn report(
    sender: &Sender<MemoryStore>,
    dispatcher: &DispatcherHandle,
    event: OutgoingEvent,
    first_delay: Duration,
    lease: Duration,
) -> Result<String, Failure> {
    let failed = |why: String| Failure::Failed(why);
    tokio::time::sleep(first_delay).await;
    let message = sender.publish(event).await.map_err(|err| match err {
        hookrelay::send::PublishError::Body(e) => {
            Failure::Usage(format!("--data cannot be sent: {e}"))
        }
        hookrelay::send::PublishError::Unsendable(e) => {
            Failure::Usage(format!("cannot send this event: {e}"))
        }
        other => failed(crate::chain(&other)),
    })?;
    let delivery = sender
        .deliveries_of(&message)
        .await
        .map_err(|e| failed(crate::chain(&e)))?
        .pop()
        .ok_or_else(|| failed("no delivery was created".into()))?;

    let mut printed = 0;
    // Bounded: one round per attempt the policy allows, plus slack for pacing.
    for _ in 0..10_000 {
        // The attempt due now (if any) is made and recorded; one that outlasts the lease
        // is looked at again next round.
        if let Err(e) = dispatcher.wait_idle(lease).await
            && e.is_stopped()
        {
            return Err(failed(e.to_string()));
        }
        let record = sender
            .store()
            .delivery(&delivery.id, UnixMillis::now())
            .await
            .map_err(|e| failed(crate::chain(&e)))?
            .ok_or_else(|| failed("the delivery vanished".into()))?;
        let log = sender
            .store()
            .attempts(&delivery.id)
            .await
            .map_err(|e| failed(crate::chain(&e)))?;
        for (i, attempt) in log.iter().enumerate().skip(printed) {
            let last = i + 1 == log.len();
            let outcome = match (last, record.status) {
                (true, DeliveryStatus::Delivered) => "delivered",
                (true, DeliveryStatus::DeadLettered(_) | DeliveryStatus::Expired) => {
                    match attempt.error {
                        Some(AttemptError::Refused(_)) => "refused",
                        _ => "gave_up",
                    }
                }
                _ => "retrying",
            };
            let line = serde_json::json!({
                "attempt": attempt.attempt,
                "status": attempt.status,
                "latency_ms": attempt.latency_ms,
                "outcome": outcome,
                "error": attempt.error.map(AttemptError::as_str),
            });
            println!("{line}");
        }
        printed = log.len();
        match record.status {
            DeliveryStatus::Delivered => return Ok(String::new()),
            DeliveryStatus::DeadLettered(reason) => {
                let why = match log.last().and_then(|a| a.error) {
                    Some(AttemptError::Refused(refusal)) => {
                        format!("destination refused: {refusal}")
                    }
                    _ => match log.last().and_then(|a| a.status) {
                        Some(status) => format!(
                            "gave up after {} attempts ({}); last status {status}",
                            record.attempts,
                            reason.as_str()
                        ),
                        None => format!(
                            "gave up after {} attempts ({}); last error {}",
                            record.attempts,
                            reason.as_str(),
                            log.last()
                                .and_then(|a| a.error)
                                .map_or("none", AttemptError::as_str)
                        ),
                    },
                };
                return Err(failed(why));
            }
            DeliveryStatus::Expired => {
                return Err(failed(
                    "gave up: the event is older than the profile's maximum age".into(),
                ));
            }
            _ => {}
        }
        let wait = record
            .next_attempt_at
            .map_or(Duration::from_millis(10), |at| {
                at.saturating_duration_since(UnixMillis::now())
            });
        tokio::time::sleep(wait.max(Duration::from_millis(1))).await;
    }
    Err(failed("the delivery did not finish".into()))
}
