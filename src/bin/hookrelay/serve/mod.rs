//! `hookrelay serve`: the management API (under `/api`, with `/health` at the root too), the
//! dashboard (under `/dashboard`) and
//! the dispatcher, together, over a SQLite file or a PostgreSQL database; operational
//! webhooks to the operator's URL when asked; SIGTERM or Ctrl-C stops it cleanly (exit 0).

pub(crate) mod args;
mod http;

use std::future::Future;

use axum::Router;
use axum::body::Body;
use hookrelay::Secret;
use hookrelay::profile::Profile;
use hookrelay::retry::RetryPolicy;
use hookrelay::send::{
    AddressPolicy, AdminError, DeliveryStore, EndpointId, OperationalWebhooks, Owner,
    PostgresStore, ReqwestTransport, Sender, SqliteStore,
};
use hookrelay::server::{Dashboard, ManagementApi, Principal, Token};

use self::args::{Bounds, RateLimits, ServeArgs, TOKEN_ENV};
use crate::Failure;

/// Everything `serve` runs with, checked before anything starts.
/// The dashboard's session and portal-link key (base64; random per process without it).
const DASHBOARD_KEY_ENV: &str = "HOOKRELAY_DASHBOARD_KEY";

struct Settings {
    bind: std::net::SocketAddr,
    tokens: Vec<(Token, Principal)>,
    profile: Profile,
    /// Parsed and checked; the management API takes them once it has rate limits.
    rate_limits: RateLimits,
    policy: AddressPolicy,
    operational: Option<(String, Option<Secret>)>,
    bounds: Bounds,
    /// `--max-attempts`, as a retry policy.
    retry_policy: Option<RetryPolicy>,
}

pub(crate) fn run(args: &ServeArgs) -> Result<String, Failure> {
    let settings = settings(args)?;
    crate::log::install();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|err| Failure::Failed(format!("cannot start runtime: {err}")))?;
    let database = args.database.as_str();
    runtime.block_on(async move {
        match crate::database::Database::parse(database, "--database")? {
            crate::database::Database::Postgres(database) => {
                let store = PostgresStore::builder()
                    .schema(args.postgres_schema.clone())
                    .connect(&database)
                    .await
                    .map_err(|err| {
                        Failure::Failed(format!("cannot open the database: {}", crate::chain(&err)))
                    })?;
                // Every process sharing the database shares the rate limits and the replays.
                let shared = store.clone();
                serve(store, settings, move |api| {
                    api.rate_limit_store(shared.clone()).replay_store(shared)
                })
                .await
            }
            crate::database::Database::Sqlite(database) => {
                let store = SqliteStore::connect(&database).await.map_err(|err| {
                    Failure::Failed(format!("cannot open the database: {}", crate::chain(&err)))
                })?;
                serve(store, settings, |api| api).await
            }
        }
    })?;
    Ok(String::new())
}

/// Checks every argument before anything starts.
fn settings(args: &ServeArgs) -> Result<Settings, Failure> {
    let usage = |why: String| Failure::Usage(why);
    let mut tokens = Vec::new();
    let mut admin = args.token.clone();
    if admin.is_empty()
        && let Ok(token) = std::env::var(TOKEN_ENV)
        && !token.is_empty()
    {
        admin.push(token);
    }
    for text in admin {
        let token = Token::new(text).map_err(|err| usage(format!("invalid --token: {err}")))?;
        tokens.push((token, Principal::Admin));
    }
    for pair in &args.customer_token {
        let (owner, token) = pair
            .split_once('=')
            .ok_or_else(|| usage("--customer-token is OWNER=TOKEN".into()))?;
        let owner = Owner::new(owner)
            .map_err(|err| usage(format!("invalid --customer-token owner: {err}")))?;
        let token =
            Token::new(token).map_err(|err| usage(format!("invalid --customer-token: {err}")))?;
        tokens.push((token, Principal::Customer(owner)));
    }
    if tokens.is_empty() {
        return Err(usage(format!(
            "serve needs a token: give --token TOKEN or set {TOKEN_ENV}"
        )));
    }
    let profile: Profile = args
        .profile
        .parse()
        .map_err(|err: hookrelay::profile::UnknownProfile| usage(crate::chain(&err)))?;
    let mut policy = AddressPolicy::new();
    if args.allow_http {
        policy = policy.allow_http();
    }
    if args.allow_private_network {
        policy = policy.allow_private_networks();
    }
    let operational = match &args.operational_url {
        Some(url) => {
            let secret = args
                .operational_secret
                .as_deref()
                .map(|text| Profile::StandardWebhooks.secret_from_text(text))
                .transpose()
                .map_err(|err| usage(format!("invalid --operational-secret: {err}")))?;
            Some((url.clone(), secret))
        }
        None => None,
    };
    Ok(Settings {
        bind: args.bind,
        tokens,
        profile,
        rate_limits: args.rate_limits()?,
        policy,
        operational,
        bounds: args.bounds()?,
        retry_policy: args
            .max_attempts
            .map(|n| {
                RetryPolicy::builder()
                    .max_attempts(n)
                    .build()
                    .map_err(|err| usage(format!("--max-attempts: {err}")))
            })
            .transpose()?,
    })
}

/// Runs the API and the dispatcher over `store` until SIGTERM or Ctrl-C.
///
/// `stores` gives the API where to count rate limits and keep idempotent replays (memory
/// unless the database can share them).
async fn serve<S: DeliveryStore>(
    store: S,
    settings: Settings,
    stores: impl FnOnce(ManagementApi<S>) -> ManagementApi<S>,
) -> Result<(), Failure> {
    let failed = |what: &str, err: &dyn std::error::Error| {
        Failure::Failed(format!("{what}: {}", crate::chain(err)))
    };
    let sender = Sender::new(store).with_url_policy(settings.policy.clone());
    let transport = ReqwestTransport::builder()
        .policy(settings.policy)
        .build()
        .map_err(|err| failed("cannot build the http client", &err))?;
    let operational = match settings.operational {
        Some((url, secret)) => Some(install_operational(&sender, &url, secret).await?),
        None => None,
    };

    // The dashboard: the same tokens sign in; the same transport verifies endpoints.
    let mut dashboard = Dashboard::new(sender.clone())
        .default_profile(settings.profile)
        .transport(transport.clone());
    for (token, principal) in &settings.tokens {
        dashboard = dashboard.token(token.clone(), principal.clone());
    }
    if let Some(policy) = &settings.retry_policy {
        dashboard = dashboard.default_retry_policy(policy.clone());
    }
    if let Ok(key) = std::env::var(DASHBOARD_KEY_ENV) {
        let key = Secret::from_base64(&key)
            .map_err(|err| Failure::Usage(format!("invalid {DASHBOARD_KEY_ENV}: {err}")))?;
        dashboard = dashboard.key(key);
    }

    // The same transport (and so the same URL policy) runs the registration handshake.
    let mut api = ManagementApi::new(sender.clone())
        .default_profile(settings.profile)
        .transport(transport.clone());
    for (token, principal) in settings.tokens {
        api = api.token(token, principal);
    }
    if let Some(policy) = settings.retry_policy {
        api = api.default_retry_policy(policy);
    }
    if let Some(limit) = settings.rate_limits.config {
        api = api.config_rate_limit(limit);
    }
    if let Some(limit) = settings.rate_limits.test {
        api = api.test_rate_limit(limit);
    }
    let api = stores(api).router();
    let app = Router::new()
        .nest("/api", api.clone())
        .nest("/dashboard", dashboard.router())
        // `/dashboard/`, as people type it, goes where `/dashboard` goes.
        .route(
            "/dashboard/",
            axum::routing::get(|| async { axum::response::Redirect::to("/dashboard") }),
        )
        .route_service("/health", api.into_service::<Body>());
    let app = http::bounded(app, &settings.bounds);

    let listener = tokio::net::TcpListener::bind(settings.bind)
        .await
        .map_err(|err| Failure::Usage(format!("cannot listen on {}: {err}", settings.bind)))?;
    let address = listener
        .local_addr()
        .map_err(|err| failed("cannot read the bound address", &err))?;
    // Before the line below: a signal sent as soon as it is read is caught.
    let stop = stop_signal().map_err(|err| failed("cannot catch signals", &err))?;
    let dispatcher = sender.dispatcher(transport).spawn();
    let forwarding = operational.map(|id| OperationalWebhooks::new(sender.clone(), id).spawn());
    eprintln!("hookrelay: listening on http://{address}");
    eprintln!("hookrelay: dashboard at http://{address}/dashboard (sign in with a --token)");

    http::serve(listener, app, settings.bounds, stop).await;
    tracing::info!(target: "hookrelay::serve", "stopping: finishing deliveries in flight");
    let report = dispatcher
        .shutdown(settings.bounds.shutdown_grace)
        .await
        .map_err(|err| failed("the dispatcher failed", &err))?;
    if let Some(forwarding) = forwarding {
        forwarding.stop();
    }
    tracing::info!(
        target: "hookrelay::serve",
        "stopped: {} attempts finished, {} released, {} unrecorded",
        report.finished,
        report.released,
        report.unrecorded,
    );
    Ok(())
}

/// Registers the operational endpoint, or updates the one stored: its URL, and its secret
/// when one is given. A new endpoint without a given secret gets a generated one, printed
/// once on stdout.
async fn install_operational<S: DeliveryStore>(
    sender: &Sender<S>,
    url: &str,
    secret: Option<Secret>,
) -> Result<EndpointId, Failure> {
    let existing = OperationalWebhooks::find(sender)
        .await
        .map_err(|err| Failure::Failed(format!("cannot read the store: {}", crate::chain(&err))))?;
    let mut builder = OperationalWebhooks::<S>::endpoint(url);
    let mut generated = None;
    builder = match (secret, &existing) {
        (Some(secret), _) => builder.secret(secret),
        (None, Some(stored)) => builder.secrets(stored.secrets().to_vec()),
        (None, None) => {
            let secret = Secret::generate()
                .map_err(|err| Failure::Failed(format!("cannot generate a secret: {err}")))?;
            generated = Some(secret.reveal_whsec());
            builder.secret(secret)
        }
    };
    if let Some(stored) = &existing {
        builder = builder.id(stored.id().clone());
    }
    let endpoint = builder.build().map_err(|err| {
        Failure::Usage(format!("invalid --operational-url: {}", crate::chain(&err)))
    })?;
    let id = sender
        .add_endpoint(endpoint)
        .await
        .map_err(|err| match err {
            AdminError::UrlRefused(_) => Failure::Usage(format!(
                "invalid --operational-url: {} (see --allow-http, --allow-private-network)",
                crate::chain(&err)
            )),
            other => Failure::Failed(format!(
                "cannot store the operational endpoint: {}",
                crate::chain(&other)
            )),
        })?;
    if let Some(whsec) = generated {
        // Shown this once: stdout, not the logs.
        println!("operational webhooks secret: {whsec}");
    }
    Ok(id)
}

/// Resolves at SIGTERM or Ctrl-C; the handlers are in place when this returns.
pub(crate) fn stop_signal() -> std::io::Result<impl Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut terminate = signal(SignalKind::terminate())?;
        let mut interrupt = signal(SignalKind::interrupt())?;
        Ok(async move {
            tokio::select! {
                _ = terminate.recv() => {}
                _ = interrupt.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}
