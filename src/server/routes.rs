//! The one list of the API's routes: the router is built from it, and a test checks that the
//! OpenAPI document has exactly these operations.

use std::sync::Arc;

use axum::handler::Handler;
use axum::routing::{MethodFilter, MethodRouter, on};
use http::Method;

use super::{Api, actions, catalog, deliveries, inbox, openapi, webhooks};
use crate::send::DeliveryStore;

/// One operation: a method on a path (as the router writes it, `{id}` for a parameter).
pub(crate) struct Route<S> {
    /// Read by the test that compares the routes with the OpenAPI document.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) method: Method,
    pub(crate) path: &'static str,
    pub(crate) handler: MethodRouter<Arc<Api<S>>>,
}

fn route<S, H, T>(method: Method, path: &'static str, handler: H) -> Route<S>
where
    S: DeliveryStore,
    H: Handler<T, Arc<Api<S>>>,
    T: 'static,
{
    let filter = MethodFilter::try_from(method.clone())
        .unwrap_or_else(|_| unreachable!("only the standard methods are listed"));
    Route {
        method,
        path,
        handler: on(filter, handler),
    }
}

/// Every route of the API.
pub(crate) fn all<S: DeliveryStore>() -> Vec<Route<S>> {
    vec![
        route(Method::POST, "/webhooks", webhooks::create::<S>),
        route(Method::GET, "/webhooks", webhooks::list::<S>),
        route(Method::GET, "/webhooks/{id}", webhooks::show::<S>),
        route(Method::PUT, "/webhooks/{id}", webhooks::update::<S>),
        route(Method::DELETE, "/webhooks/{id}", webhooks::delete::<S>),
        route(Method::POST, "/webhooks/{id}/pause", webhooks::pause::<S>),
        route(Method::POST, "/webhooks/{id}/resume", webhooks::resume::<S>),
        route(
            Method::POST,
            "/webhooks/{id}/rotate-secret",
            webhooks::rotate_secret::<S>,
        ),
        route(Method::POST, "/webhooks/{id}/test", actions::test::<S>),
        route(Method::POST, "/webhooks/{id}/verify", actions::verify::<S>),
        route(
            Method::POST,
            "/webhooks/{id}/recover",
            actions::recover::<S>,
        ),
        route(
            Method::GET,
            "/webhooks/{id}/deliveries",
            deliveries::of_webhook::<S>,
        ),
        route(Method::GET, "/webhooks/{id}/stats", deliveries::stats::<S>),
        route(
            Method::POST,
            "/deliveries/retry",
            deliveries::bulk_retry::<S>,
        ),
        route(Method::GET, "/deliveries/{id}", deliveries::show::<S>),
        route(
            Method::POST,
            "/deliveries/{id}/retry",
            deliveries::retry::<S>,
        ),
        route(Method::POST, "/events", deliveries::publish::<S>),
        route(Method::GET, "/inbox", inbox::list::<S>),
        route(Method::GET, "/inbox/counts", inbox::counts::<S>),
        route(Method::POST, "/inbox/replay", inbox::replay_matching::<S>),
        route(Method::GET, "/inbox/{id}", inbox::show::<S>),
        route(Method::POST, "/inbox/{id}/replay", inbox::replay::<S>),
        route(Method::GET, "/event-types", catalog::event_types::<S>),
        route(Method::GET, "/openapi.json", openapi::document),
        route(Method::GET, "/health", webhooks::health::<S>),
    ]
}
