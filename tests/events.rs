//! Seed fixtures parse into the right typed variants and round-trip; catch-alls, optional
//! fields, error paths, exact money, the producer side.

mod event_support;

use event_support::{assert_same_json, fixture, fixture_names, without_key};
use hookrelay::event::proposal_generator::{self, Message, ProposalGeneratorEvent};
use hookrelay::event::task_hub::{self, TaskHubEvent};
use hookrelay::event::tasklink::{self, TaskLinkEvent};
use hookrelay::event::taskon::{self, TaskOnEvent};
use hookrelay::event::{
    Decimal, Envelope, EventData, EventError, EventFactory, EventType, FixedEventClock,
    SequentialIds, TaskLinkEnvelope,
};
use hookrelay::json;

/// Every field the seeds show is typed: no fixture may leave anything in an `extra` map.
#[track_caller]
fn assert_fully_typed(value: &impl std::fmt::Debug) {
    let debug = format!("{value:?}");
    assert!(
        !debug.contains("extra: {\""),
        "untyped fields left in extra: {debug}"
    );
    assert!(!debug.contains("Unknown"), "unknown variant: {debug}");
    assert!(!debug.contains("Other("), "unknown enum value: {debug}");
}

#[test]
fn proposal_generator_event_fixtures() {
    let events = [
        "document.created",
        "job.completed",
        "job.created",
        "job.failed",
        "job.progress",
        "job.started",
        "proposal.created",
    ];
    for name in events {
        let body = fixture("proposal-generator", name);
        let Message::Event(env) = Message::from_slice(&body).unwrap() else {
            panic!("{name}: not an event")
        };
        assert_eq!(env.event_type.as_str(), name);
        assert_eq!(env.data.event_type().as_str(), name);
        assert!(env.id.is_none(), "001 examples carry no id");
        assert_fully_typed(&env);
        assert_same_json(&body, &env.to_js_bytes().unwrap());
        // The envelope type parses the same bodies directly.
        let direct = Envelope::<ProposalGeneratorEvent>::from_slice(&body).unwrap();
        assert_eq!(direct, env);
    }
    let body = fixture("proposal-generator", "job.progress");
    let Message::Event(env) = Message::from_slice(&body).unwrap() else {
        panic!()
    };
    let ProposalGeneratorEvent::JobProgress(p) = env.data else {
        panic!()
    };
    assert_eq!(
        (
            p.progress.completed,
            p.progress.total,
            p.progress.percentage
        ),
        (Some(5), Some(10), Some(50.0))
    );
    let body = fixture("proposal-generator", "job.failed");
    let Message::Event(env) = Message::from_slice(&body).unwrap() else {
        panic!()
    };
    let ProposalGeneratorEvent::JobFailed(f) = env.data else {
        panic!()
    };
    assert_eq!(f.error.as_deref(), Some("Error message"));
    assert_eq!(f.error_details, Some(serde_json::Map::new()));
}

#[test]
fn proposal_generator_challenge_fixture() {
    let body = fixture("proposal-generator", "webhook.verify");
    let Message::Challenge(c) = Message::from_slice(&body).unwrap() else {
        panic!()
    };
    assert_eq!(c.challenge.as_str(), "a1b2c3d4e5");
    assert_same_json(&body, &json::to_js_vec(&c).unwrap());
    assert_eq!(
        json::to_js_string(&c.response()).unwrap(),
        r#"{"challenge":"a1b2c3d4e5"}"#
    );
    // A challenge without its challenge field is a clear error.
    let err = Message::from_slice(br#"{"type":"webhook.verify"}"#).unwrap_err();
    assert!(err.to_string().contains("challenge"), "{err}");
}

#[test]
fn proposal_generator_management_fixtures() {
    use proposal_generator::{
        Registration, RegistrationUpdate, Webhook, WebhookList, WebhookStatus,
    };
    fn check<T: serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug>(name: &str) -> T {
        let body = fixture("proposal-generator", name);
        let v: T = serde_json::from_slice(&body).unwrap();
        assert_fully_typed(&v);
        assert_same_json(&body, &json::to_js_vec(&v).unwrap());
        v
    }
    let r: Registration = check("registration_request");
    assert_eq!(r.secret.unwrap().expose(), "your_webhook_secret");
    let w: Webhook = check("registration_response");
    assert_eq!(w.status, Some(WebhookStatus::Active));
    assert_eq!(w.created_at.unwrap().as_str(), "2024-01-15T10:30:00Z");
    let l: WebhookList = check("list_webhooks_response");
    assert_eq!(l.webhooks.len(), 1);
    let _: RegistrationUpdate = check("update_request");
}

#[test]
fn tasklink_fixtures() {
    let names = fixture_names("tasklink");
    assert_eq!(names.len(), 13);
    for name in &names {
        let body = fixture("tasklink", name);
        let env = TaskLinkEnvelope::<TaskLinkEvent>::from_slice(&body).unwrap();
        assert_eq!(env.event_type.as_str(), name);
        assert_eq!(env.data.event_type().as_str(), name);
        assert!(env.id.as_str().starts_with("evt_"));
        assert!(env.body_signature.is_some(), "{name}: body signature kept");
        assert_fully_typed(&env);
        // The body signature is not written by default…
        let out = env.to_js_bytes().unwrap();
        assert!(!String::from_utf8_lossy(&out).contains("\"signature\""));
        assert_same_json(&without_key(&body, "signature"), &out);
        // …only on request.
        assert_same_json(&body, &env.to_js_bytes_with_body_signature().unwrap());
    }
}

#[test]
fn tasklink_money_is_exact() {
    let body = fixture("tasklink", "payment.created");
    let env = TaskLinkEnvelope::<TaskLinkEvent>::from_slice(&body).unwrap();
    let TaskLinkEvent::PaymentCreated(p) = &env.data else {
        panic!()
    };
    let d = |s: &str| s.parse::<Decimal>().unwrap();
    assert_eq!(p.payment.amount, Some(d("500.00")));
    assert_eq!(p.payment.fee, Some(d("50")));
    assert_eq!(p.payment.net_amount, Some(d("450.00")));
    assert_eq!(p.payment.currency.as_ref().unwrap().as_str(), "ZAR");
    let out = env.to_js_bytes().unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains(r#""amount":500,"#), "{text}");
    assert_eq!(env.timestamp.as_str(), "2025-10-07T10:00:00.000Z");
    assert!(text.contains(r#""timestamp":"2025-10-07T10:00:00.000Z""#));

    let body = fixture("tasklink", "job.updated");
    let env = TaskLinkEnvelope::<TaskLinkEvent>::from_slice(&body).unwrap();
    let TaskLinkEvent::JobUpdated(u) = &env.data else {
        panic!()
    };
    let change = u.change("budget").unwrap();
    assert_eq!(change.from_as::<Decimal>(), Some(d("500")));
    assert_eq!(change.to_as::<Decimal>(), Some(d("550.00")));
    assert_eq!(u.changes.as_ref().unwrap().iter().count(), 1);
    let body = fixture("tasklink", "job.assigned");
    let env = TaskLinkEnvelope::<TaskLinkEvent>::from_slice(&body).unwrap();
    let TaskLinkEvent::JobAssigned(a) = &env.data else {
        panic!()
    };
    assert_eq!(a.worker.as_ref().unwrap().rating, Some(4.9));
}

#[test]
fn taskon_fixtures() {
    for name in ["reward_token", "curl_reward_token"] {
        let body = fixture("taskon", name);
        let ev = TaskOnEvent::from_slice(&body).unwrap();
        let TaskOnEvent::Token(r) = &ev else {
            panic!("{name}: {ev:?}")
        };
        assert_eq!(r.reward_amount.as_str(), "0.1");
        assert_eq!(r.token_symbol.as_deref(), Some("USDT"));
        assert_eq!(
            ev.idempotency_key(),
            Some((taskon::TaskId(111111), taskon::UnixTime(1758251308)))
        );
        assert_fully_typed(&ev);
        let out = ev.to_js_bytes().unwrap();
        assert!(String::from_utf8_lossy(&out).contains(r#""reward_amount":"0.1""#));
        assert_same_json(&body, &out);
    }
    for name in ["reward_points", "curl_reward_points"] {
        let body = fixture("taskon", name);
        let ev = TaskOnEvent::from_slice(&body).unwrap();
        let TaskOnEvent::Points(r) = &ev else {
            panic!("{name}: {ev:?}")
        };
        assert_eq!(r.reward_amount.as_str(), "100");
        assert_eq!(r.point_name.as_deref(), Some("PointNameA"));
        assert_fully_typed(&ev);
        assert_same_json(&body, &ev.to_js_bytes().unwrap());
    }
    let body = fixture("taskon", "signature_payload");
    let s: taskon::SignedFields = serde_json::from_slice(&body).unwrap();
    assert_eq!((s.user_id.0, s.timestamp.0), (11111, 1758251308));
    assert_same_json(&body, &json::to_js_vec(&s).unwrap());
    let body = fixture("taskon", "expected_response");
    let ack: taskon::RewardAck = serde_json::from_slice(&body).unwrap();
    assert_eq!(ack, taskon::RewardAck::ok());
    assert_same_json(&body, &json::to_js_vec(&ack).unwrap());
    assert_eq!(
        json::to_js_string(&taskon::RewardAck::failed("Invalid signature")).unwrap(),
        r#"{"result":false,"error":"Invalid signature"}"#
    );
}

#[test]
fn task_hub_fixtures() {
    for name in TaskHubEvent::KNOWN_TYPES {
        let body = fixture("task-hub", name);
        let text = std::str::from_utf8(&body).unwrap();
        let ev = TaskHubEvent::from_data(&EventType::from(*name), text).unwrap();
        assert_eq!(ev.event_type().as_str(), *name);
        assert_fully_typed(&ev);
        assert_same_json(&body, &json::to_js_vec(&ev).unwrap());
        // In hookrelay's chosen envelope, and back.
        let env = EventFactory::new().envelope(ev.clone());
        let parsed = Envelope::<TaskHubEvent>::from_slice(&env.to_js_bytes().unwrap()).unwrap();
        assert_eq!(parsed.data, ev);
    }
    let body = fixture("task-hub", "task.completed");
    let ev = TaskHubEvent::from_data(
        &"task.completed".into(),
        std::str::from_utf8(&body).unwrap(),
    )
    .unwrap();
    let TaskHubEvent::TaskCompleted(t) = ev else {
        panic!()
    };
    assert_eq!(t.completed_at.as_ref().unwrap().as_str(), "...");
    assert!(t.completed_at.unwrap().parse().is_err());

    for name in ["registration_request", "registration_test_mode"] {
        let body = fixture("task-hub", name);
        let r: task_hub::Registration = serde_json::from_slice(&body).unwrap();
        assert_fully_typed(&r);
        assert_same_json(&body, &json::to_js_vec(&r).unwrap());
    }
    let body = fixture("task-hub", "test_event_payload");
    let p: task_hub::TestPayload = serde_json::from_slice(&body).unwrap();
    assert_eq!(p.status.as_deref(), Some("completed"));
    assert_same_json(&body, &json::to_js_vec(&p).unwrap());
}

#[test]
fn every_fixture_is_covered() {
    let total: usize = ["proposal-generator", "tasklink", "taskon", "task-hub"]
        .iter()
        .map(|p| fixture_names(p).len())
        .sum();
    assert_eq!(total, 12 + 13 + 6 + 9);
}

#[test]
fn unknown_event_types_are_kept() {
    let body = br#"{"event":"invoice.paid","id":"evt_9","timestamp":"2025-10-07T07:37:03.000Z","data":{"invoice":{"id":"inv_1","total":12.50}},"signature":"sha256=x","region":"za"}"#;
    let env = TaskLinkEnvelope::<TaskLinkEvent>::from_slice(body).unwrap();
    let TaskLinkEvent::Unknown { event_type, data } = &env.data else {
        panic!()
    };
    assert_eq!(event_type.as_str(), "invoice.paid");
    assert_eq!(data["invoice"]["id"], "inv_1");
    assert_eq!(env.extra["region"], "za");
    assert_same_json(&without_key(body, "signature"), &env.to_js_bytes().unwrap());

    let body = br#"{"type":"proposal.archived","timestamp":"2024-01-15T10:30:00Z","data":{"proposal_id":"p"}}"#;
    let Message::Event(env) = Message::from_slice(body).unwrap() else {
        panic!()
    };
    assert!(matches!(env.data, ProposalGeneratorEvent::Unknown { .. }));
    assert_eq!(env.data.event_type().as_str(), "proposal.archived");

    let ev = TaskHubEvent::from_data(&"task.archived".into(), r#"{"taskId":"1"}"#).unwrap();
    assert!(matches!(ev, TaskHubEvent::Unknown { .. }));

    let body =
        br#"{"task_id":1,"reward_type":"NFT","reward_amount":"1","user_id":2,"timestamp":3}"#;
    let ev = TaskOnEvent::from_slice(body).unwrap();
    let TaskOnEvent::Unknown { reward_type, .. } = &ev else {
        panic!()
    };
    assert_eq!(reward_type, &taskon::RewardType::Other("NFT".into()));
    assert_eq!(ev.user_id(), Some(taskon::UserId(2)));
    assert_same_json(body, &ev.to_js_bytes().unwrap());
}

#[test]
fn unknown_enum_values_and_fields_are_kept() {
    let body = br#"{"event":"job.created","id":"evt_1","timestamp":"2025-10-07T07:37:03.000Z","data":{"job":{"id":"j","status":"ON_HOLD","budgetType":"per_m2","urgency":"high","budget":1e2}}}"#;
    let env = TaskLinkEnvelope::<TaskLinkEvent>::from_slice(body).unwrap();
    let TaskLinkEvent::JobCreated(c) = &env.data else {
        panic!()
    };
    assert_eq!(
        c.job.status,
        Some(tasklink::JobStatus::Other("ON_HOLD".into()))
    );
    assert_eq!(
        c.job.budget_type,
        Some(tasklink::BudgetType::Other("per_m2".into()))
    );
    assert_eq!(c.job.extra["urgency"], "high");
    assert_same_json(body, &env.to_js_bytes().unwrap());
    assert_eq!(tasklink::JobStatus::from("OPEN"), tasklink::JobStatus::Open);
    assert_eq!(tasklink::Priority::from("URGENT").as_str(), "URGENT");
}

#[test]
fn optional_fields_may_be_missing() {
    let body = br#"{"event":"payment.completed","id":"evt_1","timestamp":"2025-10-07T07:37:03Z","data":{"payment":{"id":"pay_1"}}}"#;
    let env = TaskLinkEnvelope::<TaskLinkEvent>::from_slice(body).unwrap();
    let TaskLinkEvent::PaymentCompleted(p) = &env.data else {
        panic!()
    };
    assert!(p.payment.amount.is_none() && p.job.is_none());
    let body = br#"{"event":"payment.completed","id":"evt_1","timestamp":"2025-10-07T07:37:03Z","data":{"payment":{"id":"pay_1","amount":null}}}"#;
    assert!(TaskLinkEnvelope::<TaskLinkEvent>::from_slice(body).is_ok());
}

#[track_caller]
fn field_error(result: Result<impl std::fmt::Debug, EventError>) -> (String, String) {
    match result.unwrap_err() {
        EventError::Field { path, message } => (path, message),
        other => panic!("expected a field error, got {other:?}"),
    }
}

#[test]
fn errors_name_the_field_path() {
    let body = br#"{"event":"job.created","id":"evt_1","timestamp":"2025-10-07T07:37:03Z","data":{"job":{"id":42}}}"#;
    let (path, message) = field_error(TaskLinkEnvelope::<TaskLinkEvent>::from_slice(body));
    assert_eq!(path, "data.job.id");
    assert!(message.contains("invalid type"), "{message}");

    let body = br#"{"event":"payment.created","id":"evt_1","timestamp":"2025-10-07T07:37:03Z","data":{"payment":{"id":"p","amount":"lots"}}}"#;
    let (path, _) = field_error(TaskLinkEnvelope::<TaskLinkEvent>::from_slice(body));
    assert_eq!(path, "data.payment.amount");

    let body = br#"{"event":"job.created","id":"evt_1","timestamp":"2025-10-07T07:37:03Z","data":{"job":{}}}"#;
    let (path, message) = field_error(TaskLinkEnvelope::<TaskLinkEvent>::from_slice(body));
    assert_eq!(
        (path.as_str(), message.as_str()),
        ("data.job", "missing field `id`")
    );

    let body = br#"{"event":"job.created","id":"evt_1","timestamp":"yesterday","data":{}}"#;
    let (path, _) = field_error(TaskLinkEnvelope::<TaskLinkEvent>::from_slice(body));
    assert_eq!(path, "timestamp");

    let body = br#"{"event":"job.created","timestamp":"2025-10-07T07:37:03Z","data":{}}"#;
    let err = TaskLinkEnvelope::<TaskLinkEvent>::from_slice(body).unwrap_err();
    assert_eq!(err.to_string(), "invalid field `.`: missing field `id`");

    let body = br#"{"type":"job.progress","timestamp":"2024-01-15T10:32:00Z","data":{"job_id":"j","progress":{"completed":"five"}}}"#;
    let (path, _) = field_error(Envelope::<ProposalGeneratorEvent>::from_slice(body));
    assert_eq!(path, "data.progress.completed");

    let (path, _) = field_error(TaskOnEvent::from_slice(
        br#"{"reward_type":"Token","task_id":"x"}"#,
    ));
    assert_eq!(path, "task_id");

    let err = TaskLinkEnvelope::<TaskLinkEvent>::from_slice(b"{\"event\": ").unwrap_err();
    assert!(matches!(err, EventError::Syntax { line: 1, .. }), "{err:?}");
    assert!(TaskLinkEnvelope::<TaskLinkEvent>::from_slice(b"{} trailing").is_err());
}

#[test]
fn own_types_via_deserialize_owned() {
    #[derive(serde::Deserialize, serde::Serialize, Debug, PartialEq)]
    struct MyJob {
        job: serde_json::Value,
    }
    let body = fixture("tasklink", "job.created");
    let env = TaskLinkEnvelope::<MyJob>::from_slice_as(&body).unwrap();
    assert_eq!(env.data.job["title"], "Garden Maintenance Service");
    let body = fixture("proposal-generator", "job.created");
    let env = Envelope::<serde_json::Value>::from_slice_as(&body).unwrap();
    assert_eq!(env.data["job_id"], "job_123");
}

#[test]
fn producer_builds_complete_envelopes() {
    let factory = EventFactory::new()
        .with_ids(SequentialIds::new("evt_"))
        .with_clock(FixedEventClock::at_unix(1_759_822_623, 987_000_000));
    let event = TaskLinkEvent::from(tasklink::PaymentCreated {
        payment: tasklink::Payment {
            id: "pay_1".into(),
            amount: Some("500.00".parse().unwrap()),
            currency: Some("ZAR".into()),
            status: Some(tasklink::PaymentStatus::Pending),
            ..Default::default()
        },
        ..Default::default()
    });
    let a = factory.tasklink(event.clone());
    let b = factory.tasklink(event);
    assert_eq!((a.id.as_str(), b.id.as_str()), ("evt_1", "evt_2"));
    assert_eq!(
        json::to_js_string(&a).unwrap(),
        r#"{"event":"payment.created","id":"evt_1","timestamp":"2025-10-07T07:37:03.987Z","data":{"payment":{"id":"pay_1","amount":500,"currency":"ZAR","status":"PENDING"}}}"#
    );
    // Random ids by default.
    let env = EventFactory::new().tasklink(TaskLinkEvent::from(tasklink::JobCreated::default()));
    assert!(env.id.as_str().starts_with("evt_") && env.id.as_str().len() == 28);

    let clock = FixedEventClock::at_unix(1_758_251_308, 5);
    let reward = TaskOnEvent::from(taskon::TokenReward::new(
        taskon::TaskId(1),
        "0.10".parse().unwrap(),
        taskon::UserId(7),
        taskon::UnixTime::now(&clock),
    ));
    assert_eq!(
        String::from_utf8(reward.to_js_bytes().unwrap()).unwrap(),
        r#"{"task_id":1,"reward_type":"Token","reward_amount":"0.10","user_id":7,"timestamp":1758251308}"#
    );
}

#[test]
fn public_types_are_send_sync() {
    fn check<T: Send + Sync + std::fmt::Debug>() {}
    check::<Envelope<ProposalGeneratorEvent>>();
    check::<Envelope<TaskHubEvent>>();
    check::<TaskLinkEnvelope<TaskLinkEvent>>();
    check::<TaskOnEvent>();
    check::<Message>();
    check::<EventError>();
    check::<EventFactory>();
    check::<Decimal>();
    check::<hookrelay::event::DecimalString>();
    check::<hookrelay::event::EventTime>();
    check::<hookrelay::event::LenientTime>();
    check::<hookrelay::event::TimeError>();
    check::<hookrelay::event::RandomIds>();
    check::<SequentialIds>();
    check::<hookrelay::event::RegistrationSecret>();
    check::<json::JsonError>();
    check::<json::WriterOptions>();
    check::<proposal_generator::VerifyChallenge>();
    check::<task_hub::Registration>();
    check::<taskon::RewardAck>();
}

#[test]
fn registration_secret_is_redacted() {
    let r: proposal_generator::Registration =
        serde_json::from_slice(&fixture("proposal-generator", "registration_request")).unwrap();
    assert!(!format!("{r:?}").contains("your_webhook_secret"));
}
