//! Which database a `--database`/`--inbox` URL names.

use crate::Failure;

/// A database URL, by backend.
pub(crate) enum Database {
    /// `sqlite://FILE` (created when missing) or `sqlite::memory:`.
    Sqlite(String),
    /// `postgres://…` or `postgresql://…`.
    Postgres(String),
}

impl Database {
    /// Reads `url`, given as `flag`; anything else is a usage error.
    pub(crate) fn parse(url: &str, flag: &str) -> Result<Self, Failure> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres(url.to_owned()))
        } else if url.starts_with("sqlite:") {
            Ok(Self::Sqlite(url.to_owned()))
        } else {
            Err(Failure::Usage(format!(
                "{flag} must be sqlite://FILE or postgres://…"
            )))
        }
    }
}
