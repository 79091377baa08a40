//! [`StoreError`]: why a store — a delivery store or an idempotency store, in memory, SQLite,
//! PostgreSQL or your own — could not answer.
//!
//! One opaque type for both sides, like `reqwest::Error`: callers branch on queries
//! ([`is_retryable`](StoreError::is_retryable), [`is_not_found`](StoreError::is_not_found),
//! …), never on message text. The database's own error stays reachable through
//! [`source`](std::error::Error::source) (boxed: no third-party type in the signature), and
//! the message names no URL, host, file path or secret and does not repeat the source's text.

use std::borrow::Cow;
use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

/// A boxed underlying error.
type Source = Arc<dyn StdError + Send + Sync + 'static>;

/// A store could not answer.
///
/// Ask what kind of failure it is:
///
/// | query | meaning | what to do |
/// |---|---|---|
/// | [`is_retryable`](Self::is_retryable) | transient: serialization failure, deadlock, lost or refused connection, server shutting down, pool or statement time-out, SQLite busy or locked, I/O | try again (a publish inside your transaction: retry the transaction) |
/// | [`is_timeout`](Self::is_timeout) | a time-out (pool acquire, statement time-out); also retryable | try again, perhaps later |
/// | [`is_not_found`](Self::is_not_found) | the thing named does not exist (an endpoint) | fix the request |
/// | [`is_conflict`](Self::is_conflict) | a unique or other constraint refused the write | do not retry as is |
/// | [`is_corrupt`](Self::is_corrupt) | stored data could not be read back | inspect the database |
/// | [`is_invalid_input`](Self::is_invalid_input) | the request was malformed (a cursor another listing made) | fix the request (HTTP 400) |
/// | [`is_full`](Self::is_full) | a bounded in-memory store is full | answer 503; raise its capacity |
/// | [`is_encryption`](Self::is_encryption) | encrypted endpoint secrets cannot be opened or sealed: no key configured, a key the keyring lacks, a changed value | configure the right key (the source names at most its id) |
///
/// An idempotency store's failure is a temporary failure for the sender (503): never process
/// without a claim, never acknowledge without processing.
///
/// ```
/// use hookrelay::StoreError;
///
/// let err = StoreError::retryable(std::io::Error::other("connection reset"));
/// assert!(err.is_retryable());
/// assert_eq!(err.to_string(), "store temporarily unavailable");
/// // The underlying error is the source, printed once by whoever walks the chain.
/// assert!(std::error::Error::source(&err).is_some());
/// ```
///
/// Two errors are equal when they are of the same kind with the same description; their
/// sources are not compared.
#[derive(Clone)]
pub struct StoreError {
    kind: Kind,
    /// A fixed description (`"endpoint"`, `"serialization failure"`): never data.
    what: Option<Cow<'static, str>>,
    source: Option<Source>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Retryable,
    Timeout,
    NotFound,
    Conflict,
    Corrupt,
    Full { capacity: usize },
    Invalid,
    InvalidInput,
    Encryption,
    Other,
}

impl StoreError {
    fn new(kind: Kind) -> Self {
        StoreError {
            kind,
            what: None,
            source: None,
        }
    }

    fn with_source(mut self, source: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        self.source = Some(Arc::from(source.into()));
        self
    }

    /// Adds a fixed description of the failure (`"serialization failure"`), shown after the
    /// kind's message. Never pass data (ids, URLs, values): the message is logged.
    pub fn describe(mut self, what: &'static str) -> Self {
        self.what = Some(Cow::Borrowed(what));
        self
    }

    /// A transient failure caused by `source`: trying again may succeed.
    pub fn retryable(source: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        Self::new(Kind::Retryable).with_source(source)
    }

    /// A time-out (acquiring a connection, a statement) caused by `source`; retryable.
    pub fn timeout(source: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        Self::new(Kind::Timeout).with_source(source)
    }

    /// No such `what` (`"endpoint"`).
    pub fn not_found(what: &'static str) -> Self {
        Self::new(Kind::NotFound).describe(what)
    }

    /// A unique or other constraint refused the write, as `source` says.
    pub fn conflict(source: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        Self::new(Kind::Conflict).with_source(source)
    }

    /// Stored data could not be read back: `what` (`"endpoint settings"`) is unreadable.
    pub fn corrupt(what: &'static str) -> Self {
        Self::new(Kind::Corrupt).describe(what)
    }

    /// A bounded store is full at `capacity` records.
    pub fn full(capacity: usize) -> Self {
        Self::new(Kind::Full { capacity })
    }

    /// The store's settings are invalid: `what` (`"schema name"`).
    pub fn invalid_config(what: &'static str) -> Self {
        Self::new(Kind::Invalid).describe(what)
    }

    /// The caller's request is malformed, as `source` says (a cursor another listing made).
    pub fn invalid_input(source: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        Self::new(Kind::InvalidInput).with_source(source)
    }

    /// Stored endpoint secrets could not be sealed or opened with the configured encryption
    /// keys (or none is configured), as `source` says: with the SQL stores, an
    /// [`EncryptionError`](crate::send::EncryptionError). Never put a secret in `source`.
    pub fn encryption(source: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        Self::new(Kind::Encryption).with_source(source)
    }

    /// Any other failure, caused by `source`.
    pub fn other(source: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        Self::new(Kind::Other).with_source(source)
    }

    /// Whether trying again may succeed: serialization failures, deadlocks, lost, closed or
    /// refused connections, a server shutting down or starting up, time-outs, SQLite busy or
    /// locked, I/O errors.
    pub fn is_retryable(&self) -> bool {
        matches!(self.kind, Kind::Retryable | Kind::Timeout)
    }

    /// Whether a time-out caused it (pool acquire, statement time-out). Such errors are also
    /// [retryable](Self::is_retryable).
    pub fn is_timeout(&self) -> bool {
        self.kind == Kind::Timeout
    }

    /// Whether the thing asked for does not exist (an endpoint).
    pub fn is_not_found(&self) -> bool {
        self.kind == Kind::NotFound
    }

    /// Whether a unique or other constraint refused the write.
    pub fn is_conflict(&self) -> bool {
        self.kind == Kind::Conflict
    }

    /// Whether stored data could not be read back.
    pub fn is_corrupt(&self) -> bool {
        self.kind == Kind::Corrupt
    }

    /// Whether the request itself was malformed (a foreign cursor): answer 400, do not retry.
    pub fn is_invalid_input(&self) -> bool {
        self.kind == Kind::InvalidInput
    }

    /// Whether a bounded store is full (the memory idempotency store).
    pub fn is_full(&self) -> bool {
        matches!(self.kind, Kind::Full { .. })
    }

    /// Whether encrypted endpoint secrets could not be sealed or opened: a sealed secret with
    /// no keyring configured, one sealed under a key the keyring does not hold, or a sealed
    /// value that fails authentication. Not retryable: configure the right key.
    pub fn is_encryption(&self) -> bool {
        self.kind == Kind::Encryption
    }

    /// The [`EncryptionError`](crate::send::EncryptionError) behind an
    /// [encryption](Self::is_encryption) failure of a SQL store.
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    #[cfg_attr(docsrs, doc(cfg(any(feature = "sqlite", feature = "postgres"))))]
    pub fn encryption_error(&self) -> Option<&crate::send::EncryptionError> {
        if self.kind != Kind::Encryption {
            return None;
        }
        self.source.as_deref()?.downcast_ref()
    }

    /// The capacity of a full store ([`is_full`](Self::is_full)).
    pub fn capacity(&self) -> Option<usize> {
        match self.kind {
            Kind::Full { capacity } => Some(capacity),
            _ => None,
        }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            Kind::Retryable => f.write_str("store temporarily unavailable")?,
            Kind::Timeout => f.write_str("store timed out")?,
            Kind::NotFound => {
                return write!(f, "no such {}", self.what.as_deref().unwrap_or("record"));
            }
            Kind::Conflict => f.write_str("store refused a conflicting write")?,
            Kind::Corrupt => f.write_str("store holds unreadable data")?,
            Kind::Full { capacity } => write!(f, "store is full ({capacity} records)")?,
            Kind::Invalid => f.write_str("invalid store settings")?,
            Kind::InvalidInput => f.write_str("invalid store request")?,
            Kind::Encryption => f.write_str("store cannot open or seal endpoint secrets")?,
            Kind::Other => f.write_str("store failed")?,
        }
        match &self.what {
            Some(what) => write!(f, ": {what}"),
            None => Ok(()),
        }
    }
}

impl fmt::Debug for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("StoreError");
        s.field("kind", &self.kind);
        if let Some(what) = &self.what {
            s.field("what", what);
        }
        if let Some(source) = &self.source {
            s.field("source", source);
        }
        s.finish()
    }
}

impl PartialEq for StoreError {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind && self.what == other.what
    }
}

impl Eq for StoreError {}

impl StdError for StoreError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn StdError + 'static))
    }
}

/// Displays an error and its `source()` chain, each message once, joined by `: `: what
/// logs show.
#[cfg_attr(not(feature = "tracing"), allow(dead_code))]
pub(crate) struct Chain<'a>(pub(crate) &'a (dyn StdError + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut next = self.0.source();
        while let Some(source) = next {
            write!(f, ": {source}")?;
            next = source.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_answer_their_queries() {
        let io = || std::io::Error::other("x");
        assert!(StoreError::retryable(io()).is_retryable());
        assert!(StoreError::timeout(io()).is_retryable());
        assert!(StoreError::timeout(io()).is_timeout());
        assert!(StoreError::not_found("endpoint").is_not_found());
        assert!(StoreError::conflict(io()).is_conflict());
        assert!(!StoreError::conflict(io()).is_retryable());
        assert!(StoreError::corrupt("endpoint settings").is_corrupt());
        assert!(StoreError::full(3).is_full());
        assert_eq!(StoreError::full(3).capacity(), Some(3));
        assert!(!StoreError::other(io()).is_retryable());
        assert!(StoreError::encryption(io()).is_encryption());
        assert!(!StoreError::encryption(io()).is_retryable());
        assert!(!StoreError::other(io()).is_encryption());
    }

    #[test]
    fn display_is_lowercase_and_does_not_repeat_the_source() {
        let err = StoreError::retryable(std::io::Error::other("secret host db.internal"));
        assert_eq!(err.to_string(), "store temporarily unavailable");
        assert_eq!(
            StoreError::not_found("endpoint").to_string(),
            "no such endpoint"
        );
        assert_eq!(StoreError::full(2).to_string(), "store is full (2 records)");
        assert!(
            err.source()
                .is_some_and(|s| s.to_string().contains("db.internal"))
        );
    }
}
