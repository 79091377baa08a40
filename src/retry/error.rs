//! [`ConfigError`]: why a retry, health or rate-limit configuration was refused.

use std::fmt;

/// A configuration refused by a `build()` or constructor in [`crate::retry`].
///
/// Setters never fail; validation happens once, when the value is built, so a bad
/// configuration is caught at start-up and never per delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// `max_attempts` lies outside the range this policy allows (`1..=u32::MAX` for custom
    /// policies, `1..=10` for the task-hub preset).
    MaxAttempts {
        /// The value asked for.
        got: u32,
        /// The smallest value allowed.
        min: u32,
        /// The largest value allowed.
        max: u32,
    },
    /// An explicit delay list was empty.
    EmptyDelays,
    /// An exponential factor was below 1 or not finite.
    InvalidFactor,
    /// An exponential cap was below its base delay.
    CapBelowBase,
    /// A proportional jitter percentage was above 100.
    JitterPercent(u8),
    /// A circuit-breaker failure percentage was 0 or above 100.
    FailurePercent(u8),
    /// A duration that must be positive (window, interval, cool-down) was zero.
    ZeroDuration(&'static str),
    /// A count that must be positive (requests, burst, minimum requests) was zero.
    ZeroCount(&'static str),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::MaxAttempts { got, min, max } => {
                write!(f, "max attempts {got} is outside {min}..={max}")
            }
            ConfigError::EmptyDelays => f.write_str("delay list is empty"),
            ConfigError::InvalidFactor => {
                f.write_str("exponential factor must be finite and at least 1")
            }
            ConfigError::CapBelowBase => f.write_str("exponential cap is below the base delay"),
            ConfigError::JitterPercent(p) => write!(f, "jitter of {p} percent is above 100"),
            ConfigError::FailurePercent(p) => {
                write!(f, "failure percentage {p} is outside 1..=100")
            }
            ConfigError::ZeroDuration(what) => write!(f, "{what} must be longer than zero"),
            ConfigError::ZeroCount(what) => write!(f, "{what} must be at least 1"),
        }
    }
}

impl std::error::Error for ConfigError {}
