//! Features `metrics` and `tracing`: a captured metrics recorder and tracing subscriber see
//! the names, labels and span fields documented in `hookrelay::send::telemetry`, and never a
//! secret, a URL, an id in a metric label, or a body.

mod send_support;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hookrelay::Secret;
use hookrelay::event::OutgoingEvent;
use hookrelay::profile::Profile;
use hookrelay::retry::{Jitter, RateLimit, RetryPolicy, UnixMillis};
use hookrelay::send::telemetry::names;
use hookrelay::send::{Endpoint, EndpointStatus, ManualClock, MemoryStore, Sender};
use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};
use send_support::{ScriptedTransport, status, status_with};
use serde_json::json;
use tracing::field::{Field, Visit};
use tracing::{Subscriber, span};

const SECRET: &str = "telemetry-secret-value";

/// One metric series: name and labels.
type Series = (String, BTreeMap<String, String>);

#[derive(Default)]
struct Cell(AtomicU64);

impl CounterFn for Cell {
    fn increment(&self, value: u64) {
        self.0.fetch_add(value, Ordering::Relaxed);
    }
    fn absolute(&self, value: u64) {
        self.0.store(value, Ordering::Relaxed);
    }
}

impl GaugeFn for Cell {
    fn increment(&self, _: f64) {}
    fn decrement(&self, _: f64) {}
    fn set(&self, value: f64) {
        self.0.store(value as u64, Ordering::Relaxed);
    }
}

impl HistogramFn for Cell {
    fn record(&self, _: f64) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// Keeps every series registered and its value (a histogram counts its samples).
#[derive(Clone, Default)]
struct Metrics(Arc<Mutex<BTreeMap<Series, Arc<Cell>>>>);

impl Metrics {
    fn cell(&self, key: &Key) -> Arc<Cell> {
        let labels = key
            .labels()
            .map(|l| (l.key().to_owned(), l.value().to_owned()))
            .collect();
        Arc::clone(
            self.0
                .lock()
                .unwrap()
                .entry((key.name().to_owned(), labels))
                .or_default(),
        )
    }

    fn value(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        let want: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|((n, l), _)| n == name && want.iter().all(|(k, v)| l.get(k) == Some(v)))
            .map(|(_, cell)| cell.0.load(Ordering::Relaxed))
            .sum()
    }

    fn series(&self) -> Vec<Series> {
        self.0.lock().unwrap().keys().cloned().collect()
    }
}

impl Recorder for Metrics {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(self.cell(key))
    }
    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(self.cell(key))
    }
    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(self.cell(key))
    }
}

/// One span as the subscriber saw it.
#[derive(Debug, Clone)]
struct SpanSeen {
    name: String,
    target: String,
    fields: BTreeMap<String, String>,
}

#[derive(Clone, Default)]
struct Spans {
    spans: Arc<Mutex<Vec<SpanSeen>>>,
    events: Arc<Mutex<Vec<BTreeMap<String, String>>>>,
}

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

impl Subscriber for Spans {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, attrs: &span::Attributes<'_>) -> span::Id {
        let mut fields = BTreeMap::new();
        attrs.record(&mut Fields(&mut fields));
        let mut spans = self.spans.lock().unwrap();
        spans.push(SpanSeen {
            name: attrs.metadata().name().to_owned(),
            target: attrs.metadata().target().to_owned(),
            fields,
        });
        span::Id::from_u64(spans.len() as u64)
    }
    fn record(&self, id: &span::Id, values: &span::Record<'_>) {
        let mut spans = self.spans.lock().unwrap();
        let span = &mut spans[id.into_u64() as usize - 1];
        values.record(&mut Fields(&mut span.fields));
    }
    fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        self.events.lock().unwrap().push(fields);
    }
    fn enter(&self, _: &span::Id) {}
    fn exit(&self, _: &span::Id) {}
}

fn endpoint(url: &str, profile: Profile) -> hookrelay::send::EndpointBuilder {
    Endpoint::builder(url, profile)
        .secret(Secret::from_raw(SECRET).unwrap())
        .status(EndpointStatus::Active)
        .without_rate_limit()
        .retry_policy(
            RetryPolicy::builder()
                .delays([Duration::from_secs(1)])
                .max_attempts(3)
                .jitter(Jitter::None)
                .build()
                .unwrap(),
        )
}

/// A run that touches every metric: a retry then success, a 429 paced by the receiver, a
/// `410`, our own rate limit, a superseded progress event and an expired delivery.
async fn scenario() -> (Vec<String>, Vec<String>) {
    let clock = ManualClock::at(UnixMillis::from_secs(1_700_000_000));
    let sender = Sender::with_clock(MemoryStore::new(), clock.clone());
    let transport = ScriptedTransport::new();
    let urls = [
        "https://retry.internal.example/hook?token=abc",
        "https://paced.internal.example/hook",
        "https://gone.internal.example/hook",
        "https://limited.internal.example/hook",
        "https://pg.internal.example/hook",
        "https://old.internal.example/hook",
    ];
    transport.answer(urls[0], [status_with(500, &[], "secret-looking body")]);
    transport.answer(urls[1], [status_with(429, &[("retry-after", "5")], "")]);
    transport.always(urls[2], status(410));
    transport.always(urls[5], status(500));
    sender
        .add_endpoint(
            endpoint(urls[0], Profile::TaskHub)
                .subscribe("task.*")
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    sender
        .add_endpoint(
            endpoint(urls[1], Profile::TaskLink)
                .subscribe("task.*")
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    sender
        .add_endpoint(
            endpoint(urls[2], Profile::StandardWebhooks)
                .subscribe("task.*")
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    sender
        .add_endpoint(
            endpoint(urls[3], Profile::GitHub)
                .subscribe("task.*")
                .rate_limit(RateLimit::new(1, Duration::from_secs(60), 1).unwrap())
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    sender
        .add_endpoint(
            endpoint(urls[4], Profile::ProposalGenerator)
                .subscribe("job.*")
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    sender
        .add_endpoint(
            endpoint(urls[5], Profile::Stripe)
                .subscribe("order.*")
                .retry_policy(
                    RetryPolicy::builder()
                        .delays([Duration::from_secs(7200)])
                        .max_age(Duration::from_secs(3600))
                        .jitter(Jitter::None)
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    let mut dispatcher = sender.dispatcher(transport.clone()).build();
    for n in 0..2 {
        sender
            .publish(OutgoingEvent::new(
                "task.created",
                json!({ "n": n, "note": "payload-text" }),
            ))
            .await
            .unwrap();
    }
    for percent in [10, 20] {
        sender
            .publish(OutgoingEvent::new(
                "job.progress",
                json!({"job_id": "job_1", "progress": {"percentage": percent}}),
            ))
            .await
            .unwrap();
    }
    sender
        .publish(OutgoingEvent::new("order.paid", json!({})))
        .await
        .unwrap();
    for _ in 0..8 {
        dispatcher.run_due().await.unwrap();
        clock.advance(Duration::from_secs(1800));
    }
    (
        urls.iter().map(|u| u.to_string()).collect(),
        vec![SECRET.to_owned()],
    )
}

#[test]
fn metrics_and_spans_are_the_documented_ones_and_leak_nothing() {
    let metrics = Metrics::default();
    let spans = Spans::default();
    let (urls, secrets) = metrics::with_local_recorder(&metrics, || {
        tracing::subscriber::with_default(spans.clone(), || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(scenario())
        })
    });

    // The documented names and labels, with the values this run must have produced.
    let v = |name, labels: &[(&str, &str)]| metrics.value(name, labels);
    assert_eq!(
        v(
            names::ATTEMPTS,
            &[
                ("profile", "task-hub"),
                ("outcome", "retry"),
                ("status_class", "5xx")
            ]
        ),
        1
    );
    assert!(
        v(
            names::ATTEMPTS,
            &[
                ("profile", "task-hub"),
                ("outcome", "delivered"),
                ("status_class", "2xx")
            ]
        ) >= 1
    );
    assert_eq!(
        v(
            names::ATTEMPTS,
            &[("profile", "tasklink"), ("outcome", "paced")]
        ),
        1
    );
    assert!(
        v(
            names::ATTEMPT_DURATION,
            &[("profile", "task-hub"), ("status_class", "5xx")]
        ) >= 1
    );
    assert!(v(names::RETRIES, &[("profile", "task-hub")]) >= 1);
    assert!(
        v(
            names::RATE_LIMITED,
            &[("profile", "tasklink"), ("source", "receiver")]
        ) >= 1
    );
    assert!(
        v(
            names::RATE_LIMITED,
            &[("profile", "github"), ("source", "ours")]
        ) >= 1
    );
    assert_eq!(v(names::THROTTLED, &[("profile", "proposal-generator")]), 1);
    assert!(
        v(
            names::DEAD_LETTERS,
            &[
                ("profile", "standard-webhooks"),
                ("reason", "endpoint_gone")
            ]
        ) >= 1
    );
    assert_eq!(
        v(
            names::ENDPOINTS_DISABLED,
            &[("profile", "standard-webhooks"), ("reason", "gone")]
        ),
        1
    );
    assert_eq!(v(names::EXPIRED, &[("profile", "stripe")]), 1);
    assert!(
        metrics
            .series()
            .iter()
            .any(|(name, labels)| name == names::QUEUE_DEPTH && labels.get("state").is_some())
    );

    // Labels come from bounded sets only.
    let allowed: BTreeMap<&str, BTreeSet<&str>> = [
        ("profile", Profile::ALL.iter().map(|p| p.name()).collect()),
        (
            "outcome",
            ["delivered", "retry", "paced", "dead", "expired", "disabled"].into(),
        ),
        (
            "status_class",
            [
                "2xx",
                "3xx",
                "4xx",
                "5xx",
                "timeout",
                "connection",
                "refused",
                "other",
            ]
            .into(),
        ),
        ("source", ["ours", "receiver"].into()),
        (
            "reason",
            [
                "exhausted",
                "not_retryable",
                "endpoint_gone",
                "refused",
                "gone",
                "failing",
            ]
            .into(),
        ),
        ("state", ["pending", "in_flight"].into()),
    ]
    .into_iter()
    .collect();
    for (name, labels) in metrics.series() {
        assert!(name.starts_with("hookrelay_"), "{name}");
        for (key, value) in labels {
            assert!(
                allowed
                    .get(key.as_str())
                    .is_some_and(|set| set.contains(value.as_str())),
                "{name}: label {key}={value} is not in a documented set"
            );
        }
    }

    // One span per attempt, with the documented fields, and nothing secret.
    let spans = spans.spans.lock().unwrap().clone();
    let attempts: Vec<&SpanSeen> = spans.iter().filter(|s| s.name == "attempt").collect();
    assert!(attempts.len() >= 8, "{}", attempts.len());
    for span in &attempts {
        assert_eq!(span.target, "hookrelay::send");
        for field in ["profile", "endpoint", "delivery", "attempt", "outcome"] {
            assert!(
                span.fields.contains_key(field),
                "{field} missing in {span:?}"
            );
        }
        assert!(span.fields["endpoint"].starts_with("ep_"));
        assert!(span.fields["delivery"].starts_with("dlv_"));
    }
    assert!(attempts.iter().any(
        |s| s.fields.get("status").map(String::as_str) == Some("429")
            && s.fields["outcome"] == "paced"
    ));
    let everything = format!("{spans:?}");
    for secret in &secrets {
        assert!(!everything.contains(secret.as_str()));
    }
    for url in &urls {
        let host = url.split('/').nth(2).unwrap();
        assert!(!everything.contains(host), "{host} in a span");
    }
    for text in ["payload-text", "secret-looking body", "sha256=", "v1,"] {
        assert!(!everything.contains(text), "{text} in a span");
    }
}
