//! Command-line arguments, and the pieces `sign` and `verify` share.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use hookrelay::Secret;
use hookrelay::scheme::{
    ApiKey, CanonicalJson, IdBody, RawBody, Scheme, StandardWebhooks, Stripe, XHub,
};

use crate::Failure;

/// Sign and verify webhook requests.
#[derive(Debug, Parser)]
#[command(name = "hookrelay", version, about)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Print the headers that sign a body, one `Name: value` line each.
    Sign(SignArgs),
    /// Verify a request's headers and body; prints `verified` or fails with exit 1.
    Verify(VerifyArgs),
    /// Receive webhooks on 127.0.0.1: verify, de-duplicate, reply as the profile expects,
    /// and print each accepted event as one JSON line.
    Listen(ListenArgs),
    /// Deliver one event with a profile's envelope, headers, signature and retry policy;
    /// prints one JSON line per attempt.
    Send(SendArgs),
    /// Run the management API (under /api), the dashboard (under /dashboard, sign in with a
    /// --token) and the dispatcher over a SQLite file or PostgreSQL; SIGTERM or Ctrl-C stops
    /// it.
    Serve(crate::serve::args::ServeArgs),
    /// Receive under one profile, verify, store in an inbox, and re-publish to an internal
    /// URL under another profile and secret; SIGTERM or Ctrl-C stops it.
    Relay(RelayArgs),
}

#[derive(Debug, Args)]
pub(crate) struct RelayArgs {
    /// The provider's profile (proposal-generator, tasklink, taskon, task-hub,
    /// standard-webhooks, github or stripe).
    #[arg(long)]
    pub(crate) from_profile: String,
    /// The provider's signing secret; repeat during a rotation.
    #[arg(long, required = true)]
    pub(crate) from_secret: Vec<String>,
    /// TaskOn's expected X-API-Key (with --from-profile taskon).
    #[arg(long)]
    pub(crate) api_key: Option<String>,
    /// Allowed clock difference in seconds for the provider's timestamps (default 300).
    #[arg(long, default_value_t = 300)]
    pub(crate) tolerance: u64,
    /// The internal URL to deliver to.
    #[arg(long)]
    pub(crate) to: String,
    /// The profile to deliver under.
    #[arg(long)]
    pub(crate) to_profile: String,
    /// The secret to sign inside deliveries with (`whsec_…` for standard-webhooks).
    #[arg(long)]
    pub(crate) to_secret: String,
    /// Only forward these event types (exact, `task.*` or `*`; repeat); others are
    /// acknowledged and dropped. Default: every type.
    #[arg(long = "events", value_name = "PATTERN")]
    pub(crate) events: Vec<String>,
    /// The address to listen on (port 0 picks a free one, printed on stderr).
    #[arg(long, default_value = "127.0.0.1:8090")]
    pub(crate) bind: std::net::SocketAddr,
    /// The inbox and the outgoing queue: `sqlite://FILE` (created when missing) or
    /// `postgres://…`.
    #[arg(long, default_value = "sqlite://hookrelay-relay.db")]
    pub(crate) database: String,
}

#[derive(Debug, Args)]
pub(crate) struct SendArgs {
    /// Where to POST.
    #[arg(long)]
    pub(crate) url: String,
    /// proposal-generator, tasklink, taskon, task-hub, standard-webhooks, github or stripe.
    #[arg(long)]
    pub(crate) profile: String,
    /// The signing secret (`whsec_…` base64 for standard-webhooks; verbatim otherwise).
    #[arg(long)]
    pub(crate) secret: String,
    /// The event type (not needed for taskon, whose type is the reward's `reward_type`).
    #[arg(long)]
    pub(crate) event: Option<String>,
    /// The event data as JSON (for taskon: the flat reward object).
    #[arg(
        long,
        required_unless_present = "data_file",
        conflicts_with = "data_file"
    )]
    pub(crate) data: Option<String>,
    /// Read the event data from this file.
    #[arg(long)]
    pub(crate) data_file: Option<PathBuf>,
    /// TaskOn's X-API-Key (required with --profile taskon).
    #[arg(long)]
    pub(crate) api_key: Option<String>,
    /// The event id (default: a fresh `evt_…`).
    #[arg(long)]
    pub(crate) id: Option<String>,
    /// Seconds to wait before each attempt, e.g. `0,1,1`: three attempts, now, 1 s later and
    /// 1 s after that. Replaces the profile's schedule.
    #[arg(long, conflicts_with = "max_attempts")]
    pub(crate) retry_schedule: Option<String>,
    /// Attempts in all, on the profile's schedule.
    #[arg(long)]
    pub(crate) max_attempts: Option<u32>,
    /// Seconds each attempt may take, 0.001 to 3600 (default: the profile's).
    #[arg(long)]
    pub(crate) timeout: Option<f64>,
    /// Allow `http://` URLs (local development).
    #[arg(long)]
    pub(crate) allow_http: bool,
    /// Allow loopback and private-network destinations (local development, internal use).
    #[arg(long)]
    pub(crate) allow_private_network: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ListenArgs {
    /// The TCP port on 127.0.0.1 (0 picks a free one, printed on stderr).
    #[arg(long)]
    pub(crate) port: u16,
    /// proposal-generator, tasklink, taskon, task-hub, standard-webhooks, github or stripe.
    #[arg(long)]
    pub(crate) profile: String,
    /// An active secret; repeat during a rotation.
    #[arg(long, required = true)]
    pub(crate) secret: Vec<String>,
    /// TaskOn's expected X-API-Key (required with --profile taskon).
    #[arg(long)]
    pub(crate) api_key: Option<String>,
    /// Allowed clock difference in seconds, both directions (default 300).
    #[arg(long, default_value_t = 300)]
    pub(crate) tolerance: u64,
    /// Store each accepted delivery here (`sqlite://FILE`, created when missing, or
    /// `postgres://…`) before answering, and print it afterwards: stopping and starting
    /// again loses nothing.
    #[arg(long, value_name = "DATABASE")]
    pub(crate) inbox: Option<String>,
}

/// The signing schemes, by their command-line names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum SchemeName {
    /// `X-Webhook-Signature: <hex>` over the body (Proposal Generator).
    RawBody,
    /// `X-Webhook-ID` + `X-Webhook-Signature: sha256=<hex>` over id ‖ body (TaskLink).
    IdBody,
    /// `X-API-Key` + `X-Signature` over `{"timestamp":T,"user_id":U}` (TaskOn).
    CanonicalJson,
    /// `X-Hub-Signature: sha256=<hex>` over the body (task-hub).
    XHub,
    /// `X-Hub-Signature-256: sha256=<hex>` over the body (GitHub).
    Github,
    /// `webhook-id` / `webhook-timestamp` / `webhook-signature: v1,<base64>`.
    StandardWebhooks,
    /// `Stripe-Signature: t=<ts>,v1=<hex>`.
    Stripe,
}

/// Options both subcommands take.
#[derive(Debug, Args)]
pub(crate) struct Common {
    /// The signing scheme.
    #[arg(long, value_enum)]
    pub(crate) scheme: SchemeName,
    /// TaskOn's X-API-Key (canonical-json only; required there).
    #[arg(long)]
    pub(crate) api_key: Option<String>,
    /// The signature header name (x-hub only; default X-Hub-Signature).
    #[arg(long)]
    pub(crate) header_name: Option<String>,
    /// Read the body from this file instead of stdin.
    #[arg(long)]
    pub(crate) body_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct SignArgs {
    #[command(flatten)]
    pub(crate) common: Common,
    /// The shared secret (`whsec_…` base64 for standard-webhooks; used verbatim otherwise).
    #[arg(long)]
    pub(crate) secret: String,
    /// The message id (generated when the scheme needs one and it is missing).
    #[arg(long)]
    pub(crate) id: Option<String>,
    /// The signing time in unix seconds (default: now).
    #[arg(long)]
    pub(crate) timestamp: Option<i64>,
}

#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    #[command(flatten)]
    pub(crate) common: Common,
    /// An active secret; repeat during a rotation.
    #[arg(long, required = true)]
    pub(crate) secret: Vec<String>,
    /// A request header, `Name: value`; repeat for each.
    #[arg(short = 'H', long = "header")]
    pub(crate) headers: Vec<String>,
    /// Allowed clock difference in seconds, both directions (default 300).
    #[arg(long, default_value_t = 300)]
    pub(crate) tolerance: u64,
    /// Treat this unix time as now (default: the system clock).
    #[arg(long)]
    pub(crate) now: Option<i64>,
}

impl Common {
    /// The scheme with its options.
    pub(crate) fn scheme(&self) -> Result<Box<dyn Scheme>, Failure> {
        if self.header_name.is_some() && self.scheme != SchemeName::XHub {
            return Err(Failure::Usage(
                "--header-name applies to --scheme x-hub only".into(),
            ));
        }
        if self.api_key.is_some() && self.scheme != SchemeName::CanonicalJson {
            return Err(Failure::Usage(
                "--api-key applies to --scheme canonical-json only".into(),
            ));
        }
        Ok(match self.scheme {
            SchemeName::RawBody => Box::new(RawBody),
            SchemeName::IdBody => Box::new(IdBody),
            SchemeName::CanonicalJson => {
                let key = self.api_key.clone().ok_or_else(|| {
                    Failure::Usage("--scheme canonical-json needs --api-key".into())
                })?;
                let key = ApiKey::new(key).map_err(|err| Failure::Usage(err.to_string()))?;
                Box::new(CanonicalJson::new(key))
            }
            SchemeName::XHub => match &self.header_name {
                Some(name) => Box::new(XHub::with_header_name(name.clone())),
                None => Box::new(XHub::new()),
            },
            SchemeName::Github => Box::new(XHub::github()),
            SchemeName::StandardWebhooks => Box::new(StandardWebhooks::new()),
            SchemeName::Stripe => Box::new(Stripe),
        })
    }

    /// Reads a secret the way the scheme's senders write it.
    pub(crate) fn secret(&self, text: &str) -> Result<Secret, Failure> {
        let parsed = match self.scheme {
            SchemeName::StandardWebhooks => Secret::from_base64(text),
            _ => Secret::from_raw(text),
        };
        parsed.map_err(|err| Failure::Usage(format!("invalid --secret: {err}")))
    }

    /// The body bytes, from `--body-file` or stdin.
    pub(crate) fn body(&self) -> Result<Vec<u8>, Failure> {
        use std::io::Read as _;
        match &self.body_file {
            Some(path) => std::fs::read(path)
                .map_err(|err| Failure::Usage(format!("cannot read --body-file: {err}"))),
            None => {
                let mut body = Vec::new();
                std::io::stdin()
                    .read_to_end(&mut body)
                    .map_err(|err| Failure::Usage(format!("cannot read stdin: {err}")))?;
                Ok(body)
            }
        }
    }
}
