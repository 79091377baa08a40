//! `hookrelay serve`'s arguments and the values they parse into.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;
use hookrelay::server::RateLimit;

use crate::Failure;

/// The environment variable read for an admin token when `--token` is not given.
pub(crate) const TOKEN_ENV: &str = "HOOKRELAY_TOKEN";

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// The address to listen on (port 0 picks a free one; the line `listening on …` says
    /// which).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub(crate) bind: SocketAddr,
    /// `sqlite://FILE` (created when missing) or `postgres://…` (several `serve` processes
    /// share the work).
    #[arg(long, default_value = "sqlite://hookrelay.db")]
    pub(crate) database: String,
    /// The PostgreSQL schema holding hookrelay's tables (created when missing).
    #[arg(long, default_value = "public")]
    pub(crate) postgres_schema: String,
    /// An admin token; repeat for several. Default: the HOOKRELAY_TOKEN environment variable.
    #[arg(long)]
    pub(crate) token: Vec<String>,
    /// A customer's token, `OWNER=TOKEN`; repeat for each.
    #[arg(long, value_name = "OWNER=TOKEN")]
    pub(crate) customer_token: Vec<String>,
    /// The profile of endpoints registered without one.
    #[arg(long, default_value = "standard-webhooks")]
    pub(crate) profile: String,
    /// Configuration requests each token may make, `N/min`.
    #[arg(long, value_name = "N/min")]
    pub(crate) config_rate_limit: Option<String>,
    /// Test sends each token may make, `N/min`.
    #[arg(long, value_name = "N/min")]
    pub(crate) test_rate_limit: Option<String>,
    /// Attempts per delivery for endpoints registered without a retry policy, then it is
    /// dead-lettered (default: the endpoint's default retry policy).
    #[arg(long, value_name = "N")]
    pub(crate) max_attempts: Option<u32>,
    /// Allow plain `http://` endpoint URLs (local development).
    #[arg(long)]
    pub(crate) allow_http: bool,
    /// Allow loopback and private-network endpoint addresses (local development, internal
    /// use).
    #[arg(long)]
    pub(crate) allow_private_network: bool,
    /// The operator's URL for operational webhooks (endpoint disabled, paused, enabled; a
    /// delivery dead-lettered).
    #[arg(long)]
    pub(crate) operational_url: Option<String>,
    /// The operational webhooks' secret, `whsec_…` (default: the one stored, else a new one,
    /// printed once on stdout).
    #[arg(long, requires = "operational_url")]
    pub(crate) operational_secret: Option<String>,
    /// Connections served at once; more are answered 503 and closed.
    #[arg(long, default_value_t = 1024)]
    pub(crate) max_connections: usize,
    /// Milliseconds a client has to send a request's headers.
    #[arg(long, default_value_t = 10_000, hide = true)]
    pub(crate) header_timeout_ms: u64,
    /// Milliseconds a client has to send a request's body.
    #[arg(long, default_value_t = 30_000, hide = true)]
    pub(crate) body_timeout_ms: u64,
    /// Milliseconds shutting down waits for requests and deliveries in flight.
    #[arg(long, default_value_t = 30_000, hide = true)]
    pub(crate) shutdown_grace_ms: u64,
}

/// The rate limits asked for on the command line (`None`: the API's defaults).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RateLimits {
    /// `--config-rate-limit`.
    pub(crate) config: Option<RateLimit>,
    /// `--test-rate-limit`.
    pub(crate) test: Option<RateLimit>,
}

/// What the network side holds clients to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bounds {
    pub(crate) header_timeout: Duration,
    pub(crate) body_timeout: Duration,
    pub(crate) max_connections: usize,
    pub(crate) shutdown_grace: Duration,
}

impl ServeArgs {
    /// The rate limits, checked.
    pub(crate) fn rate_limits(&self) -> Result<RateLimits, Failure> {
        let parse = |flag: &str, text: &Option<String>| {
            text.as_deref().map(|t| rate_limit(flag, t)).transpose()
        };
        Ok(RateLimits {
            config: parse("--config-rate-limit", &self.config_rate_limit)?,
            test: parse("--test-rate-limit", &self.test_rate_limit)?,
        })
    }

    /// The network bounds, checked.
    pub(crate) fn bounds(&self) -> Result<Bounds, Failure> {
        if self.max_connections == 0 {
            return Err(Failure::Usage(
                "--max-connections must be at least 1".into(),
            ));
        }
        let ms = |flag: &str, n: u64| {
            if n == 0 {
                Err(Failure::Usage(format!("{flag} must be at least 1")))
            } else {
                Ok(Duration::from_millis(n))
            }
        };
        Ok(Bounds {
            header_timeout: ms("--header-timeout-ms", self.header_timeout_ms)?,
            body_timeout: ms("--body-timeout-ms", self.body_timeout_ms)?,
            max_connections: self.max_connections,
            shutdown_grace: Duration::from_millis(self.shutdown_grace_ms),
        })
    }
}

/// Reads `N/min` (also `N/s`, `N/h`; N from 1 to 1,000,000) for the option named `flag`.
fn rate_limit(flag: &str, text: &str) -> Result<RateLimit, Failure> {
    text.parse().map_err(|err| {
        Failure::Usage(format!(
            "{flag}: {err}: expected N/min, e.g. 10/min, got {text:?}"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::rate_limit;

    #[test]
    fn rate_limits_read_n_per_period() {
        let Ok(limit) = rate_limit("--x", "10/min") else {
            panic!("10/min is a rate limit")
        };
        assert_eq!((limit.max(), limit.period().as_secs()), (10, 60));
        for bad in ["10", "/min", "0/min", "-1/min", "1.5/min", "10/fortnight"] {
            assert!(rate_limit("--x", bad).is_err(), "{bad}");
        }
    }
}
