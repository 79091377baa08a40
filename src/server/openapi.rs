//! The API's OpenAPI 3.1 document, generated from the code: each handler's
//! `#[utoipa::path]`, the reply and request types' `ToSchema` derives, and [`Conventions`],
//! which adds what every route shares (bearer security and 401, problem+json errors, 413 on
//! bodies, `Idempotency-Key` on `POST`s, `X-RateLimit-*` and 429 on limited routes).
//! Served at `GET /openapi.json` without authentication.

use std::sync::LazyLock;

use axum::extract::OriginalUri;
use axum::response::Response;
use http::{StatusCode, Uri};
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{HttpMethod, Operation, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{Content, Ref, RefOr, Required, ResponseBuilder, Server};
use utoipa::{Modify, OpenApi};

use super::body::json_reply;
use super::problem::{FieldError, PROBLEM_JSON, Problem};
use super::{actions, catalog, deliveries, inbox, webhooks};

/// The document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "hookrelay management API",
        description = "Register webhook endpoints, read and retry their deliveries, publish \
            events. Every route but `/openapi.json` and `/health` needs `Authorization: Bearer \
            TOKEN`; a customer's token sees only its own endpoints and deliveries (another \
            customer's id answers 404). Errors are RFC 9457 `application/problem+json`.",
        license(name = "MIT OR Apache-2.0")
    ),
    paths(
        webhooks::create,
        webhooks::list,
        webhooks::show,
        webhooks::update,
        webhooks::delete,
        webhooks::pause,
        webhooks::resume,
        webhooks::rotate_secret,
        actions::test,
        actions::verify,
        actions::recover,
        deliveries::of_webhook,
        deliveries::stats,
        deliveries::bulk_retry,
        deliveries::show,
        deliveries::retry,
        deliveries::publish,
        inbox::list,
        inbox::counts,
        inbox::replay_matching,
        inbox::show,
        inbox::replay,
        catalog::event_types,
        document,
        webhooks::health,
    ),
    components(schemas(Problem, FieldError)),
    modifiers(&Conventions),
    tags(
        (name = "webhooks", description = "Endpoints that receive webhooks"),
        (name = "deliveries", description = "The delivery log, retries and publishing"),
        (name = "inbox", description = "The receiver's inbox: entries, dead letters, replay (admin only)"),
        (name = "meta", description = "The event catalog, this document and liveness"),
    )
)]
pub(crate) struct ApiDoc;

/// The name of the bearer security scheme.
const BEARER: &str = "bearer";

/// Routes that answer without authentication.
pub(crate) const OPEN_ROUTES: &[&str] = &["/openapi.json", "/health"];

/// Which rate limit a route counts against (issue #19: configuration requests 10 per minute,
/// test sends 5 per minute, per token), if any.
pub(crate) fn rate_limit(method: &HttpMethod, path: &str) -> Option<&'static str> {
    let changes = matches!(
        method,
        HttpMethod::Post | HttpMethod::Put | HttpMethod::Delete
    );
    if !changes || !path.starts_with("/webhooks") {
        None
    } else if path.ends_with("/test") {
        Some("test sends")
    } else {
        Some("configuration requests")
    }
}

/// What every operation shares, added to the paths the handlers describe.
struct Conventions;

impl Modify for Conventions {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("a token the server was configured with"))
                    .build(),
            ),
        );
        for (path, item) in doc.paths.paths.iter_mut() {
            let operations = [
                (HttpMethod::Get, &mut item.get),
                (HttpMethod::Put, &mut item.put),
                (HttpMethod::Post, &mut item.post),
                (HttpMethod::Delete, &mut item.delete),
                (HttpMethod::Patch, &mut item.patch),
            ];
            for (method, operation) in operations {
                if let Some(operation) = operation {
                    conventions(path, &method, operation);
                }
            }
        }
    }
}

fn conventions(path: &str, method: &HttpMethod, operation: &mut Operation) {
    let responses = &mut operation.responses.responses;
    if !OPEN_ROUTES.contains(&path) {
        operation.security = Some(vec![SecurityRequirement::new(BEARER, Vec::<String>::new())]);
        responses.insert(
            "401".into(),
            problem("no `Authorization: Bearer` token, or one the server does not know").into(),
        );
    }
    if operation.request_body.is_some() {
        responses.insert(
            "413".into(),
            problem("the body is over 1 MiB (1048576 bytes)").into(),
        );
    }
    if *method == HttpMethod::Post && !OPEN_ROUTES.contains(&path) {
        let key = ParameterBuilder::new()
            .name("Idempotency-Key")
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .description(Some(
                "1 to 255 visible ASCII characters (400 otherwise). A repeat with the same key \
                 and body within 24 hours returns the first response without doing anything \
                 again (with `Idempotent-Replayed: true`); the same key with another body is \
                 422; a repeat while the first runs is 409.",
            ))
            .schema(Some(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some("^[!-~]{1,255}$")),
            ))
            .build();
        operation.parameters.get_or_insert_with(Vec::new).push(key);
        let idempotency = [
            (
                "400",
                "the `Idempotency-Key` header is not 1 to 255 visible ASCII characters",
            ),
            (
                "409",
                "a request with this `Idempotency-Key` is in progress",
            ),
            (
                "422",
                "this `Idempotency-Key` was used with another request",
            ),
        ];
        for (status, description) in idempotency {
            match responses.get_mut(status) {
                Some(RefOr::T(response)) => {
                    response.description = format!("{}; or {description}", response.description);
                }
                Some(RefOr::Ref(_)) => {}
                None => {
                    responses.insert(status.into(), problem(description).into());
                }
            }
        }
    }
    if let Some(limit) = rate_limit(method, path) {
        let mut too_many = problem(&format!(
            "past the limit of {limit} per minute for this token; nothing was changed"
        ));
        too_many.headers.insert(
            "Retry-After".into(),
            integer_header("seconds until the window resets"),
        );
        responses.insert("429".into(), too_many.into());
        // A request without a principal is refused before any limit applies: its 401
        // carries none of these headers.
        for (status, response) in responses.iter_mut() {
            if let RefOr::T(response) = response
                && status != "401"
            {
                rate_limit_headers(response, limit);
            }
        }
    }
    // Every error without a body of its own is a problem document.
    for (status, response) in responses.iter_mut() {
        if let RefOr::T(response) = response
            && status.as_str() >= "400"
            && response.content.is_empty()
        {
            response.content.insert(
                PROBLEM_JSON.into(),
                Content::new(Some(Ref::from_schema_name("Problem"))),
            );
        }
    }
}

fn problem(description: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            PROBLEM_JSON,
            Content::new(Some(Ref::from_schema_name("Problem"))),
        )
        .build()
}

fn integer_header(description: &str) -> utoipa::openapi::header::Header {
    HeaderBuilder::new()
        .schema(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(0)),
        )
        .description(Some(description))
        .build()
}

fn rate_limit_headers(response: &mut utoipa::openapi::Response, limit: &str) {
    let headers = [
        ("X-RateLimit-Limit", format!("{limit} allowed per minute")),
        (
            "X-RateLimit-Remaining",
            "requests left in the current window".to_owned(),
        ),
        (
            "X-RateLimit-Reset",
            "unix seconds at which the window resets".to_owned(),
        ),
    ];
    for (name, description) in headers {
        response
            .headers
            .insert(name.into(), integer_header(&description));
    }
}

/// Headers every response that documents them carries (utoipa's `Header` has no
/// `required`, so the JSON document gets it).
const REQUIRED_HEADERS: &[&str] = &[
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
    "Retry-After",
];

/// The document as JSON, built once.
static DOCUMENT: LazyLock<serde_json::Value> = LazyLock::new(|| {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_else(|_| serde_json::json!({}));
    let operations = doc
        .get_mut("paths")
        .and_then(|p| p.as_object_mut())
        .into_iter()
        .flat_map(|paths| paths.values_mut())
        .filter_map(|item| item.as_object_mut())
        .flat_map(|item| item.values_mut());
    for operation in operations {
        let responses = operation
            .get_mut("responses")
            .and_then(|r| r.as_object_mut())
            .into_iter()
            .flat_map(|responses| responses.values_mut());
        for response in responses {
            let Some(headers) = response.get_mut("headers").and_then(|h| h.as_object_mut()) else {
                continue;
            };
            for (name, header) in headers.iter_mut() {
                if REQUIRED_HEADERS.contains(&name.as_str())
                    && let Some(header) = header.as_object_mut()
                {
                    header.insert("required".into(), serde_json::Value::Bool(true));
                }
            }
        }
    }
    doc
});

/// The path the router is nested under: the request's original path less the path the
/// router saw (`/api` when nested under `/api`).
fn mount_point(original: &Uri, seen: &Uri) -> String {
    original
        .path()
        .strip_suffix(seen.path())
        .unwrap_or("")
        .trim_end_matches('/')
        .to_owned()
}

/// `GET /openapi.json`: the document, with `servers` naming where the router is mounted.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "meta",
    responses((status = 200, description = "this document (OpenAPI 3.1)", body = Object))
)]
pub(crate) async fn document(OriginalUri(original): OriginalUri, uri: Uri) -> Response {
    let mut doc = DOCUMENT.clone();
    let base = mount_point(&original, &uri);
    let server = Server::new(if base.is_empty() {
        "/".to_owned()
    } else {
        base
    });
    if let (Some(object), Ok(servers)) = (doc.as_object_mut(), serde_json::to_value([server])) {
        object.insert("servers".into(), servers);
    }
    json_reply(StatusCode::OK, &doc)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::send::MemoryStore;

    #[test]
    fn the_document_has_exactly_the_routers_operations() {
        let routes: BTreeSet<(String, String)> = super::super::routes::all::<MemoryStore>()
            .into_iter()
            .map(|r| (r.method.as_str().to_lowercase(), r.path.to_owned()))
            .collect();
        let doc = DOCUMENT.clone();
        let mut documented = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                if ["get", "put", "post", "delete", "patch"].contains(&method.as_str()) {
                    documented.insert((method.clone(), path.clone()));
                }
            }
        }
        let missing: Vec<_> = routes.difference(&documented).collect();
        let extra: Vec<_> = documented.difference(&routes).collect();
        assert!(
            missing.is_empty(),
            "routes missing from the document: {missing:?}"
        );
        assert!(
            extra.is_empty(),
            "documented routes the router lacks: {extra:?}"
        );
    }

    #[test]
    fn the_mount_point_is_what_the_router_did_not_see() {
        let uri = |s: &str| s.parse::<Uri>().unwrap();
        assert_eq!(
            mount_point(&uri("/api/openapi.json"), &uri("/openapi.json")),
            "/api"
        );
        assert_eq!(
            mount_point(&uri("/openapi.json"), &uri("/openapi.json")),
            ""
        );
        assert_eq!(
            mount_point(&uri("/a/b/openapi.json?x=1"), &uri("/openapi.json")),
            "/a/b"
        );
    }
}
