//! `GET /event-types`: the event catalog — every event type hookrelay types for the profiles
//! in use, with the JSON Schema of its data (generated from the Rust types) and an example
//! taken verbatim from the profile's source document.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::response::Response;
use http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::Schema;

use super::body::{json_reply, query_pairs};
use super::problem::Problem;
use super::{Api, Caller};
use crate::event::schema::DataSchema;
use crate::event::{ProposalGeneratorEvent, TaskHubEvent, TaskLinkEvent, taskon};
use crate::profile::Profile;
use crate::send::{DeliveryStore, EndpointQuery, PageLimit};

/// The catalog.
#[derive(Serialize, ToSchema)]
pub(crate) struct EventCatalog {
    /// One entry per profile and event type, in the order of `Profile::ALL` and of the
    /// profile's document.
    event_types: Vec<EventTypeEntry>,
}

/// One event type of one profile.
#[derive(Serialize, ToSchema)]
pub(crate) struct EventTypeEntry {
    /// The event type (`job.created`; for `taskon`, the `reward_type`: `Token`, `GTCPoints`).
    #[serde(rename = "type")]
    event_type: &'static str,
    /// The profile that sends it.
    #[schema(example = "tasklink")]
    profile: &'static str,
    /// Where the data sits in a delivered body: `data` (the envelope's `data` object) or
    /// `body` (the whole body: `taskon`'s flat payloads).
    #[schema(example = "data")]
    data_in: &'static str,
    /// The JSON Schema (2020-12) of the event's data.
    #[schema(value_type = Object)]
    schema: RefOr<Schema>,
    /// The example the profile's document shows, verbatim; null when it shows none.
    #[schema(value_type = Option<Object>)]
    example: Option<serde_json::Value>,
}

/// The seed documents' examples (tests/fixtures holds them as the documents show them).
macro_rules! fixture {
    ($profile:literal, $name:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/",
            $profile,
            "/",
            $name,
            ".json"
        ))
    };
}

/// The document's example of a profile's event type, as `(text, data is under "data")`.
fn seed_example(profile: Profile, event_type: &str) -> Option<(&'static str, bool)> {
    let text = match (profile, event_type) {
        (Profile::ProposalGenerator, "job.created") => {
            fixture!("proposal-generator", "job.created")
        }
        (Profile::ProposalGenerator, "job.started") => {
            fixture!("proposal-generator", "job.started")
        }
        (Profile::ProposalGenerator, "job.progress") => {
            fixture!("proposal-generator", "job.progress")
        }
        (Profile::ProposalGenerator, "job.completed") => {
            fixture!("proposal-generator", "job.completed")
        }
        (Profile::ProposalGenerator, "job.failed") => fixture!("proposal-generator", "job.failed"),
        (Profile::ProposalGenerator, "document.created") => {
            fixture!("proposal-generator", "document.created")
        }
        (Profile::ProposalGenerator, "proposal.created") => {
            fixture!("proposal-generator", "proposal.created")
        }
        (Profile::TaskLink, "job.created") => fixture!("tasklink", "job.created"),
        (Profile::TaskLink, "job.updated") => fixture!("tasklink", "job.updated"),
        (Profile::TaskLink, "job.assigned") => fixture!("tasklink", "job.assigned"),
        (Profile::TaskLink, "job.completed") => fixture!("tasklink", "job.completed"),
        (Profile::TaskLink, "payment.created") => fixture!("tasklink", "payment.created"),
        (Profile::TaskLink, "payment.completed") => fixture!("tasklink", "payment.completed"),
        (Profile::TaskLink, "payment.failed") => fixture!("tasklink", "payment.failed"),
        (Profile::TaskLink, "payment.refunded") => fixture!("tasklink", "payment.refunded"),
        (Profile::TaskLink, "application.submitted") => {
            fixture!("tasklink", "application.submitted")
        }
        (Profile::TaskLink, "application.accepted") => {
            fixture!("tasklink", "application.accepted")
        }
        (Profile::TaskLink, "review.created") => fixture!("tasklink", "review.created"),
        (Profile::TaskLink, "dispute.created") => fixture!("tasklink", "dispute.created"),
        (Profile::TaskLink, "dispute.resolved") => fixture!("tasklink", "dispute.resolved"),
        (Profile::TaskHub, "task.created") => fixture!("task-hub", "task.created"),
        (Profile::TaskHub, "task.updated") => fixture!("task-hub", "task.updated"),
        (Profile::TaskHub, "task.completed") => fixture!("task-hub", "task.completed"),
        (Profile::TaskHub, "task.deleted") => fixture!("task-hub", "task.deleted"),
        (Profile::TaskHub, "system.maintenance") => fixture!("task-hub", "system.maintenance"),
        (Profile::TaskHub, "system.error") => fixture!("task-hub", "system.error"),
        (Profile::TaskOn, "Token") => fixture!("taskon", "reward_token"),
        (Profile::TaskOn, "GTCPoints") => fixture!("taskon", "reward_points"),
        _ => return None,
    };
    let enveloped = matches!(profile, Profile::ProposalGenerator | Profile::TaskLink);
    Some((text, enveloped))
}

/// The event types hookrelay types for `profile`, each with its data's schema.
fn typed_events(profile: Profile) -> Vec<(&'static str, RefOr<Schema>)> {
    match profile {
        Profile::ProposalGenerator => ProposalGeneratorEvent::data_schemas(),
        Profile::TaskLink => TaskLinkEvent::data_schemas(),
        Profile::TaskHub => TaskHubEvent::data_schemas(),
        Profile::TaskOn => vec![
            ("Token", taskon::TokenReward::data_schema()),
            ("GTCPoints", taskon::PointsReward::data_schema()),
        ],
        _ => Vec::new(),
    }
}

fn entries(profile: Profile) -> Vec<EventTypeEntry> {
    typed_events(profile)
        .into_iter()
        .map(|(event_type, schema)| {
            let seed = seed_example(profile, event_type);
            let example = seed.and_then(|(text, enveloped)| {
                let body: serde_json::Value = serde_json::from_str(text).ok()?;
                if enveloped {
                    body.get("data").cloned()
                } else {
                    Some(body)
                }
            });
            let enveloped = profile != Profile::TaskOn;
            EventTypeEntry {
                event_type,
                profile: profile.name(),
                data_in: if enveloped { "data" } else { "body" },
                schema,
                example,
            }
        })
        .collect()
}

/// The profiles in use: the default one and those of the caller's endpoints.
async fn profiles_in_use<S: DeliveryStore>(
    api: &Api<S>,
    caller: &super::Principal,
) -> Result<BTreeSet<usize>, Problem> {
    let index = |p: Profile| Profile::ALL.iter().position(|q| *q == p).unwrap_or(0);
    let mut profiles = BTreeSet::from([index(api.default_profile)]);
    let mut query = EndpointQuery {
        owner: caller.owner().cloned(),
        limit: PageLimit::MAX,
        ..EndpointQuery::default()
    };
    // Bounded: at most 10 000 pages of endpoints.
    for _ in 0..10_000 {
        let page = api.sender.list_endpoints(&query).await?;
        profiles.extend(page.items.iter().map(|e| index(e.profile())));
        match page.next {
            Some(next) => query.after = Some(next),
            None => break,
        }
    }
    Ok(profiles)
}

/// `GET /event-types`: the catalog for the profiles in use, or for the profiles named by
/// `profile` (comma-separated).
#[utoipa::path(
    get,
    path = "/event-types",
    tag = "meta",
    params((
        "profile" = Option<String>, Query,
        pattern = "^(proposal-generator|tasklink|taskon|task-hub|standard-webhooks|github|stripe)(,(proposal-generator|tasklink|taskon|task-hub|standard-webhooks|github|stripe))*$",
        description = "Comma-separated profile names (`proposal-generator`, `tasklink`, \
            `taskon`, `task-hub`, `standard-webhooks`, `github`, `stripe`); without it, the \
            profiles in use: the default profile and those of the caller's endpoints."
    )),
    responses(
        (status = 200, description = "the event catalog", body = EventCatalog),
        (status = 400, description = "`profile` names no profile"),
    )
)]
pub(crate) async fn event_types<S: DeliveryStore>(
    State(api): State<Arc<Api<S>>>,
    Caller(caller): Caller,
    RawQuery(raw): RawQuery,
) -> Result<Response, Problem> {
    let mut asked: Option<BTreeSet<usize>> = None;
    for (name, value) in query_pairs(raw.as_deref()) {
        if name != "profile" {
            continue;
        }
        for name in value.split(',') {
            let index = Profile::ALL
                .iter()
                .position(|p| p.name() == name)
                .ok_or_else(|| {
                    let names: Vec<&str> = Profile::ALL.iter().map(|p| p.name()).collect();
                    Problem::bad_request("profile", format!("one of {}", names.join(", ")))
                })?;
            asked.get_or_insert_with(BTreeSet::new).insert(index);
        }
    }
    let profiles = match asked {
        Some(asked) => asked,
        None => profiles_in_use(&api, &caller).await?,
    };
    let catalog = EventCatalog {
        event_types: profiles
            .into_iter()
            .flat_map(|i| entries(Profile::ALL[i]))
            .collect(),
    };
    Ok(json_reply(StatusCode::OK, &catalog))
}
