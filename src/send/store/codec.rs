//! The stored form of an endpoint's settings, written once for every SQL store (and for your
//! own): a JSON document built from [`Endpoint`]'s public getters and read back through its
//! public builder.
//!
//! The format is stable: databases written by earlier releases stay readable. Secrets are
//! stored (`whsec_<base64>`), so the store must be protected like the secrets themselves;
//! the SQL stores can seal them instead when given a keyring (module
//! `send::store::encryption`, features `sqlite` and `postgres`).
//!
//! ```
//! use hookrelay::Secret;
//! use hookrelay::profile::Profile;
//! use hookrelay::send::store::codec;
//! use hookrelay::send::{Endpoint, EndpointId, EndpointStatus};
//!
//! let endpoint = Endpoint::builder("https://example.com/hooks", Profile::StandardWebhooks)
//!     .id(EndpointId::new("ep_1")?)
//!     .secret(Secret::from_raw([7u8; 32])?)
//!     .build()?;
//! let stored = codec::encode_endpoint(&endpoint);
//! let back = codec::decode_endpoint(endpoint.id().clone(), EndpointStatus::Active, &stored)?;
//! assert_eq!(back.url(), endpoint.url());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::time::Duration;

use serde_json::{Value, json};

#[cfg(any(feature = "sqlite", feature = "postgres"))]
use super::encryption::{Keyring, settings};
use crate::Secret;
use crate::StoreError;
use crate::event::EventMode;
use crate::profile::Profile;
use crate::retry::{
    CircuitBreaker, CircuitBreakerBuilder, Classifier, ClientErrors, Jitter, OutcomeClass,
    RateLimit, RetryPolicy, RetrySchedule, UnixMillis,
};
use crate::scheme::ApiKey;
use crate::send::{
    Batching, DataPointer, DeliveryOrder, Endpoint, EndpointId, EndpointKey, EndpointStatus,
    JsonMode, Owner, SigningSecret, Throttle,
};

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// An endpoint's settings as stored: every setting, secrets included. The status is kept in
/// the document too, but stores keep it in its own column and pass it to
/// [`decode_endpoint`].
pub fn encode_endpoint(endpoint: &Endpoint) -> String {
    endpoint_json(endpoint).to_string()
}

/// The endpoint [`encode_endpoint`] wrote, under `id` with `status`; a corrupt-data error if
/// `stored` is not one.
pub fn decode_endpoint(
    id: EndpointId,
    status: EndpointStatus,
    stored: &str,
) -> Result<Endpoint, StoreError> {
    let value: Value =
        serde_json::from_str(stored).map_err(|_| StoreError::corrupt("endpoint settings"))?;
    endpoint_from_json(id, status, &value).ok_or_else(|| StoreError::corrupt("endpoint settings"))
}

/// [`encode_endpoint`] with every secret field sealed under `keyring` (plain without one).
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn encode_endpoint_sealed(
    endpoint: &Endpoint,
    keyring: Option<&Keyring>,
) -> Result<String, StoreError> {
    let mut value = endpoint_json(endpoint);
    settings::seal_settings(&mut value, endpoint.id().as_str(), keyring)
        .map_err(StoreError::encryption)?;
    Ok(value.to_string())
}

/// [`decode_endpoint`] opening sealed secret fields with `keyring`: a sealed field with no
/// keyring, or one that does not open, is an [encryption](StoreError::is_encryption) error.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn decode_endpoint_sealed(
    id: EndpointId,
    status: EndpointStatus,
    stored: &str,
    keyring: Option<&Keyring>,
) -> Result<Endpoint, StoreError> {
    let mut value: Value =
        serde_json::from_str(stored).map_err(|_| StoreError::corrupt("endpoint settings"))?;
    settings::open_settings(&mut value, id.as_str(), keyring).map_err(StoreError::encryption)?;
    endpoint_from_json(id, status, &value).ok_or_else(|| StoreError::corrupt("endpoint settings"))
}

/// Checks the secret fields of one stored endpoint document (of endpoint `id`) against
/// `keyring` and re-seals what `which` selects: `Ok(Some((new document, fields re-sealed)))`
/// when something changed, `Ok(None)` when nothing did (or the document is not JSON: reading
/// the endpoint reports that). A sealed field with no keyring or under an unknown key is an
/// [encryption](StoreError::is_encryption) error.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn reseal_stored(
    id: &str,
    stored: &str,
    keyring: Option<&Keyring>,
    which: settings::Reseal,
) -> Result<Option<(String, u64)>, StoreError> {
    let Ok(mut value) = serde_json::from_str::<Value>(stored) else {
        return Ok(None);
    };
    let changed = settings::reseal_settings(&mut value, id, keyring, which)
        .map_err(StoreError::encryption)?;
    Ok((changed > 0).then(|| {
        (
            value.to_string(),
            u64::try_from(changed).unwrap_or(u64::MAX),
        )
    }))
}

fn endpoint_json(e: &Endpoint) -> Value {
    json!({
        "url": e.url().as_str(),
        "profile": e.profile().name(),
        "api_key": e.api_key().map(ApiKey::expose),
        "secrets": e.secrets().iter().map(|s| json!({
            "key": s.secret().reveal_whsec(),
            "until_ms": s.until().map(UnixMillis::as_millis),
        })).collect::<Vec<_>>(),
        "filter": e.filter().patterns(),
        "status": e.status().as_str(),
        "rate_limit": e.rate_limit().map(rate_limit_json),
        "concurrency": e.concurrency().get(),
        "json": e.json_mode().code(),
        "headers": e.headers().iter()
            .filter_map(|(k, v)| Some(json!([k.as_str(), v.to_str().ok()?])))
            .collect::<Vec<_>>(),
        "name": e.name(),
        "description": e.description(),
        "policy": policy_json(e.retry_policy()),
        "ordering": ordering_json(e.ordering()),
        "throttle": e.throttle().map(throttle_json),
        "auto_disable_ms": e.auto_disable_after().map(millis),
        "breaker": e.circuit_breaker().map(breaker_json),
        "status_note": e.status_note(),
        "batching": e.batching().map(|b| json!([b.max_events(), millis(b.max_wait())])),
        "failing_since_ms": e.failing_since().map(UnixMillis::as_millis),
        "owner": e.owner().map(Owner::as_str),
        "key": e.key().map(EndpointKey::as_str),
        "mode": e.mode().as_str(),
        "event_headers": e.event_headers(),
        "created_at_ms": e.created_at().map(UnixMillis::as_millis),
    })
}

fn endpoint_from_json(id: EndpointId, status: EndpointStatus, value: &Value) -> Option<Endpoint> {
    let text = |v: &Value| v.as_str().map(str::to_owned);
    let profile: Profile = value["profile"].as_str()?.parse().ok()?;
    let mut builder = Endpoint::builder(value["url"].as_str()?, profile)
        .id(id)
        .status(status)
        .concurrency(u32::try_from(value["concurrency"].as_u64()?).ok()?)
        .json(match value["json"].as_u64()? {
            1 => JsonMode::PythonAscii,
            _ => JsonMode::JavaScript,
        })
        .retry_policy(policy_from_json(&value["policy"])?);
    if let Some(key) = value["api_key"].as_str() {
        builder = builder.api_key(ApiKey::new(key).ok()?);
    }
    let mut secrets = Vec::new();
    for s in value["secrets"].as_array()? {
        secrets.push(SigningSecret::new(
            Secret::from_base64(s["key"].as_str()?).ok()?,
            s["until_ms"].as_u64().map(UnixMillis::from_millis),
        ));
    }
    builder = builder.secrets(secrets);
    for pattern in value["filter"].as_array()? {
        builder = builder.subscribe(pattern.as_str()?);
    }
    builder = match &value["rate_limit"] {
        Value::Null => builder.without_rate_limit(),
        l => builder.rate_limit(rate_limit_from_json(l)?),
    };
    for header in value["headers"].as_array()? {
        builder = builder.header(header[0].as_str()?, header[1].as_str()?);
    }
    if let Some(name) = text(&value["name"]) {
        builder = builder.name(name);
    }
    if let Some(description) = text(&value["description"]) {
        builder = builder.description(description);
    }
    builder = builder.ordering(ordering_from_json(&value["ordering"])?);
    builder = match &value["throttle"] {
        Value::Null => builder.without_throttle(),
        t => builder.throttle(throttle_from_json(t)?),
    };
    builder = match value["auto_disable_ms"].as_u64() {
        Some(ms) => builder.auto_disable_after(Duration::from_millis(ms)),
        None => builder.never_auto_disable(),
    };
    if let b @ Value::Array(_) = &value["breaker"] {
        builder = builder.circuit_breaker(breaker_from_json(b)?);
    }
    if let Some(note) = text(&value["status_note"]) {
        builder = builder.status_note(note);
    }
    if let b @ Value::Array(_) = &value["batching"] {
        builder = builder.batch(Batching::new(
            u32::try_from(b[0].as_u64()?).ok()?,
            Duration::from_millis(b[1].as_u64()?),
        ));
    }
    if let Some(since) = value["failing_since_ms"].as_u64() {
        builder = builder.failing_since(UnixMillis::from_millis(since));
    }
    if let Some(owner) = value["owner"].as_str() {
        builder = builder.owner(Owner::new(owner).ok()?);
    }
    if let Some(key) = value["key"].as_str() {
        builder = builder.key(EndpointKey::new(key).ok()?);
    }
    // Both absent from settings written before they existed: live, time unknown.
    if let Some(mode) = value["mode"].as_str() {
        builder = builder.mode(EventMode::parse(mode)?);
    }
    // Absent from settings written before it existed: off.
    if value["event_headers"].as_bool() == Some(true) {
        builder = builder.event_headers(true);
    }
    if let Some(at) = value["created_at_ms"].as_u64() {
        builder = builder.created_at(UnixMillis::from_millis(at));
    }
    builder.build().ok()
}

fn rate_limit_json(l: RateLimit) -> Value {
    json!([l.requests(), millis(l.interval()), l.burst()])
}

fn rate_limit_from_json(l: &Value) -> Option<RateLimit> {
    RateLimit::new(
        u32::try_from(l[0].as_u64()?).ok()?,
        Duration::from_millis(l[1].as_u64()?),
        u32::try_from(l[2].as_u64()?).ok()?,
    )
    .ok()
}

fn class_name(c: OutcomeClass) -> &'static str {
    match c {
        OutcomeClass::Delivered => "delivered",
        OutcomeClass::Retryable => "retryable",
        OutcomeClass::Final => "final",
        OutcomeClass::DisableEndpoint => "disable_endpoint",
    }
}

fn policy_json(p: &RetryPolicy) -> Value {
    let schedule = match p.schedule() {
        RetrySchedule::Delays(delays) => {
            json!({ "delays_ms": delays.into_iter().map(millis).collect::<Vec<_>>() })
        }
        RetrySchedule::Exponential { base, factor, cap } => {
            json!({ "base_ms": millis(base), "factor": factor, "cap_ms": millis(cap) })
        }
    };
    let jitter = match p.jitter() {
        Jitter::None => json!("none"),
        Jitter::Full => json!("full"),
        Jitter::Equal => json!("equal"),
        Jitter::Proportional { percent } => json!({ "percent": percent }),
    };
    let (min, max) = p.max_attempts_range();
    json!({
        "schedule": schedule,
        "max_attempts": p.max_attempts(),
        "max_age_ms": p.max_age().map(millis),
        "jitter": jitter,
        "timeout_ms": millis(p.timeout()),
        "retry_after_cap_ms": millis(p.retry_after_cap()),
        "client_errors": match p.classifier().client_errors() {
            ClientErrors::Final => "final",
            _ => "retry",
        },
        "overrides": p.classifier().overrides().iter()
            .map(|&(code, c)| json!([code, class_name(c)])).collect::<Vec<_>>(),
        "rate_limit": p.rate_limit().map(rate_limit_json),
        "attempts_range": [min, max],
    })
}

fn policy_from_json(value: &Value) -> Option<RetryPolicy> {
    let ms = |v: &Value| v.as_u64().map(Duration::from_millis);
    let u32_of = |v: &Value| v.as_u64().and_then(|n| u32::try_from(n).ok());
    let schedule = &value["schedule"];
    let mut builder = RetryPolicy::builder();
    builder = if let Some(delays) = schedule["delays_ms"].as_array() {
        builder.delays(delays.iter().map(ms).collect::<Option<Vec<_>>>()?)
    } else {
        builder.exponential(
            ms(&schedule["base_ms"])?,
            schedule["factor"].as_f64()?,
            ms(&schedule["cap_ms"])?,
        )
    };
    builder = builder
        .max_attempts_range(
            u32_of(&value["attempts_range"][0])?,
            u32_of(&value["attempts_range"][1])?,
        )
        .max_attempts(u32_of(&value["max_attempts"])?)
        .timeout(ms(&value["timeout_ms"])?)
        .retry_after_cap(ms(&value["retry_after_cap_ms"])?);
    builder = match &value["max_age_ms"] {
        Value::Null => builder.without_max_age(),
        age => builder.max_age(ms(age)?),
    };
    builder = builder.jitter(match &value["jitter"] {
        Value::String(s) if s == "none" => Jitter::None,
        Value::String(s) if s == "full" => Jitter::Full,
        Value::String(s) if s == "equal" => Jitter::Equal,
        other => Jitter::Proportional {
            percent: u8::try_from(other["percent"].as_u64()?).ok()?,
        },
    });
    let mut classifier =
        Classifier::new().with_client_errors(if value["client_errors"] == "final" {
            ClientErrors::Final
        } else {
            ClientErrors::Retry
        });
    for rule in value["overrides"].as_array()? {
        let code = u16::try_from(rule[0].as_u64()?).ok()?;
        let class = match rule[1].as_str()? {
            "delivered" => OutcomeClass::Delivered,
            "retryable" => OutcomeClass::Retryable,
            "final" => OutcomeClass::Final,
            "disable_endpoint" => OutcomeClass::DisableEndpoint,
            _ => return None,
        };
        classifier = classifier.with_status(code, class);
    }
    builder = builder.classifier(classifier);
    builder = match &value["rate_limit"] {
        Value::Null => builder.without_rate_limit(),
        limit => builder.rate_limit(rate_limit_from_json(limit)?),
    };
    builder.build().ok()
}

fn ordering_json(o: &DeliveryOrder) -> Value {
    match o {
        DeliveryOrder::PerEndpoint => Value::String(String::new()),
        DeliveryOrder::PerKey(field) => Value::String(field.as_str().to_owned()),
        DeliveryOrder::Unordered => Value::Null,
    }
}

fn ordering_from_json(value: &Value) -> Option<DeliveryOrder> {
    match value {
        Value::Null => Some(DeliveryOrder::Unordered),
        Value::String(s) if s.is_empty() => Some(DeliveryOrder::PerEndpoint),
        Value::String(s) => DataPointer::new(s).ok().map(DeliveryOrder::PerKey),
        _ => None,
    }
}

fn throttle_json(t: &Throttle) -> Value {
    json!({
        "progress": t.progress_type(),
        "terminal": t.terminal_types(),
        "key": t.key().as_str(),
        "window_ms": millis(t.window_length()),
    })
}

fn throttle_from_json(value: &Value) -> Option<Throttle> {
    let terminal = value["terminal"]
        .as_array()?
        .iter()
        .map(Value::as_str)
        .collect::<Option<Vec<_>>>()?;
    Some(
        Throttle::new(
            value["progress"].as_str()?,
            DataPointer::new(value["key"].as_str()?).ok()?,
            &terminal,
        )
        .window(Duration::from_millis(value["window_ms"].as_u64()?)),
    )
}

fn breaker_json(b: &CircuitBreakerBuilder) -> Value {
    let (percent, window, min_requests, cool_down) = b.settings();
    json!([percent, millis(window), min_requests, millis(cool_down)])
}

fn breaker_from_json(b: &Value) -> Option<CircuitBreakerBuilder> {
    Some(
        CircuitBreaker::builder()
            .failure_percent(u8::try_from(b[0].as_u64()?).ok()?)
            .window(Duration::from_millis(b[1].as_u64()?))
            .min_requests(u32::try_from(b[2].as_u64()?).ok()?)
            .cool_down(Duration::from_millis(b[3].as_u64()?)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::send::Endpoint;

    #[test]
    fn policies_round_trip() {
        for policy in [
            RetryPolicy::proposal_generator(),
            RetryPolicy::tasklink(),
            RetryPolicy::taskon(),
            RetryPolicy::task_hub_builder()
                .max_attempts(10)
                .build()
                .unwrap(),
            RetryPolicy::standard_webhooks(),
            RetryPolicy::builder()
                .exponential(Duration::from_secs(2), 1.5, Duration::from_secs(90))
                .classify_status(404, OutcomeClass::Final)
                .client_errors(ClientErrors::Final)
                .build()
                .unwrap(),
        ] {
            assert_eq!(policy_from_json(&policy_json(&policy)), Some(policy));
        }
    }

    #[test]
    fn endpoints_round_trip() {
        let endpoint = Endpoint::builder("https://example.com/hooks", Profile::TaskOn)
            .id(EndpointId::new("ep_1").unwrap())
            .secret(Secret::from_raw([7u8; 32]).unwrap())
            .api_key(ApiKey::new("key_123").unwrap())
            .subscribe("job.*")
            .header("x-tenant", "t1")
            .name("n")
            .description("d")
            .ordering(DeliveryOrder::by_key(DataPointer::new("/job_id").unwrap()))
            .throttle(Throttle::job_progress().window(Duration::from_secs(3)))
            .auto_disable_after(Duration::from_secs(60))
            .circuit_breaker(CircuitBreaker::builder().failure_percent(40))
            .batch(Batching::new(5, Duration::from_millis(250)))
            .status_note("why")
            .failing_since(UnixMillis::from_millis(1234))
            .mode(EventMode::Test)
            .event_headers(true)
            .created_at(UnixMillis::from_millis(1_700_000_000_123))
            .build()
            .unwrap();
        let stored = encode_endpoint(&endpoint);
        let back = decode_endpoint(endpoint.id().clone(), EndpointStatus::Paused, &stored).unwrap();
        assert_eq!(
            encode_endpoint(
                &back
                    .to_builder()
                    .status(EndpointStatus::Active)
                    .status_note("why")
                    .build()
                    .unwrap()
            ),
            stored
        );
        assert_eq!(back.status(), EndpointStatus::Paused);
        assert_eq!(back.failing_since(), Some(UnixMillis::from_millis(1234)));
        assert_eq!(back.api_key().map(ApiKey::expose), Some("key_123"));
        assert_eq!(back.mode(), EventMode::Test);
        assert!(back.event_headers());
        assert_eq!(
            back.created_at(),
            Some(UnixMillis::from_millis(1_700_000_000_123))
        );
    }

    /// A document as the 0.1 stores wrote it: existing databases keep working.
    #[test]
    fn reads_the_stored_format() {
        let stored = r#"{"url":"https://example.com/hooks","profile":"task-hub","api_key":null,
            "secrets":[{"key":"whsec_BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=","until_ms":null}],
            "filter":["task.*"],"status":"active","rate_limit":[60,60000,60],"concurrency":16,
            "json":0,"headers":[["x-a","b"]],"name":null,"description":null,
            "policy":{"schedule":{"delays_ms":[5000,25000]},"max_attempts":5,"max_age_ms":null,
              "jitter":"none","timeout_ms":10000,"retry_after_cap_ms":3600000,"client_errors":"final",
              "overrides":[[429,"retryable"]],"rate_limit":null,"attempts_range":[1,10]},
            "ordering":null,"throttle":null,"auto_disable_ms":432000000,"breaker":null,
            "status_note":null,"batching":null,"failing_since_ms":null}"#;
        let id = EndpointId::new("ep_old").unwrap();
        let endpoint = decode_endpoint(id, EndpointStatus::Active, stored).unwrap();
        assert_eq!(endpoint.url().as_str(), "https://example.com/hooks");
        assert_eq!(endpoint.retry_policy().max_attempts(), 5);
        assert_eq!(endpoint.retry_policy().max_attempts_range(), (1, 10));
        assert_eq!(endpoint.filter().patterns(), vec!["task.*".to_owned()]);
        assert!(endpoint.rate_limit().is_some());
        assert_eq!(endpoint.mode(), EventMode::Live, "older settings are live");
        assert!(!endpoint.event_headers(), "and name no event in headers");
        assert_eq!(endpoint.created_at(), None, "and of unknown age");
        assert!(
            decode_endpoint(
                EndpointId::new("ep_x").unwrap(),
                EndpointStatus::Active,
                "{}"
            )
            .unwrap_err()
            .is_corrupt()
        );
    }
}
