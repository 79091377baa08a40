//! Classifying sqlx errors into [`StoreError`]s (features `sqlite`, `postgres`): one function,
//! [`from_sqlx`], for every SQL store, sending and receiving. The adapters' edge: the core
//! `StoreError` knows nothing of sqlx.

use crate::StoreError;

/// What kind of failure, by the public constructors' names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Retryable,
    Timeout,
    Conflict,
    Corrupt,
    Invalid,
    Other,
}

/// Classifies an sqlx error: by SQLSTATE (PostgreSQL), by result code (SQLite), or by
/// variant. The sqlx error is kept as the [`source`](std::error::Error::source); the message
/// says only what kind of failure it was.
pub(crate) fn from_sqlx(err: sqlx::Error) -> StoreError {
    use sqlx::Error as E;
    let (kind, what): (Kind, &'static str) = match &err {
        E::Database(db) => {
            let code = db.code();
            database_kind(code.as_deref().unwrap_or(""), db.kind())
        }
        E::Io(_) => (Kind::Retryable, "i/o error"),
        E::Tls(_) => (Kind::Retryable, "tls error"),
        E::Protocol(_) => (Kind::Retryable, "protocol error"),
        E::PoolTimedOut => (Kind::Timeout, "connection pool time-out"),
        E::PoolClosed => (Kind::Retryable, "connection pool closed"),
        E::WorkerCrashed => (Kind::Retryable, "database worker stopped"),
        E::RowNotFound => (Kind::Other, "row not found"),
        E::ColumnDecode { .. } | E::Decode(_) | E::ColumnNotFound(_) | E::TypeNotFound { .. } => {
            (Kind::Corrupt, "unreadable column")
        }
        E::Configuration(_) => (Kind::Invalid, "connection settings"),
        _ => (Kind::Other, "database error"),
    };
    match kind {
        Kind::Retryable => StoreError::retryable(err).describe(what),
        Kind::Timeout => StoreError::timeout(err).describe(what),
        Kind::Conflict => StoreError::conflict(err).describe(what),
        Kind::Corrupt => StoreError::corrupt(what),
        Kind::Invalid => StoreError::invalid_config(what),
        Kind::Other => StoreError::other(err).describe(what),
    }
}

/// The kind of a database error from its code: a PostgreSQL SQLSTATE or an SQLite result
/// code (primary or extended), and sqlx's own classification.
fn database_kind(code: &str, kind: sqlx::error::ErrorKind) -> (Kind, &'static str) {
    use sqlx::error::ErrorKind as K;
    match code {
        // PostgreSQL.
        "40001" => return (Kind::Retryable, "serialization failure"),
        "40P01" => return (Kind::Retryable, "deadlock detected"),
        "57P01" | "57P02" => return (Kind::Retryable, "server shutting down"),
        "57P03" => return (Kind::Retryable, "server not accepting connections"),
        "57014" => return (Kind::Timeout, "statement time-out"),
        "55P03" => return (Kind::Retryable, "lock not available"),
        "53300" => return (Kind::Retryable, "too many connections"),
        "3F000" => return (Kind::Invalid, "no such schema"),
        "42P01" => return (Kind::Invalid, "no such table (migrations not applied?)"),
        c if c.starts_with("08") => return (Kind::Retryable, "connection failure"),
        // SQLite: SQLITE_BUSY (5) and SQLITE_LOCKED (6), with their extended codes
        // (low byte), and SQLITE_IOERR (10). Its result codes have at most 4 digits (the
        // largest extended code is 8458); a 5-character code is a PostgreSQL SQLSTATE, some
        // all digits (`22021`, `42501`) with a low byte that would read as "busy".
        c if c.len() < 5 && c.bytes().all(|b| b.is_ascii_digit()) => {
            match c.parse::<u32>().map(|n| n & 0xff) {
                Ok(5) => return (Kind::Retryable, "database busy"),
                Ok(6) => return (Kind::Retryable, "database table locked"),
                Ok(10) => return (Kind::Retryable, "i/o error"),
                _ => {}
            }
        }
        _ => {}
    }
    match kind {
        K::UniqueViolation => (Kind::Conflict, "unique violation"),
        K::ForeignKeyViolation | K::NotNullViolation | K::CheckViolation => {
            (Kind::Conflict, "constraint violation")
        }
        _ if code == "23505" => (Kind::Conflict, "unique violation"),
        _ if code.starts_with("23") => (Kind::Conflict, "constraint violation"),
        _ if code.parse::<u32>().is_ok_and(|n| n & 0xff == 19) => {
            (Kind::Conflict, "constraint violation")
        }
        _ => (Kind::Other, "database error"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlx_errors_are_classified() {
        assert!(from_sqlx(sqlx::Error::PoolTimedOut).is_timeout());
        assert!(from_sqlx(sqlx::Error::PoolClosed).is_retryable());
        assert!(from_sqlx(sqlx::Error::Io(std::io::Error::other("x"))).is_retryable());
        assert!(!from_sqlx(sqlx::Error::RowNotFound).is_retryable());
        for (code, retry) in [
            ("40001", true),
            ("40P01", true),
            ("57P01", true),
            ("57P03", true),
            ("08006", true),
            ("57014", true),
            ("5", true),
            ("517", true),
            ("6", true),
            ("42601", false),
            // PostgreSQL SQLSTATEs of digits only, whose low byte is SQLite's BUSY/LOCKED/IOERR:
            // invalid text (a NUL), permission denied; and SQLite codes still classified.
            ("22021", false),
            ("42501", false),
            ("2067", false),
            ("261", true),
            ("3850", true),
        ] {
            let (kind, _) = database_kind(code, sqlx::error::ErrorKind::Other);
            assert_eq!(
                matches!(kind, Kind::Retryable | Kind::Timeout),
                retry,
                "{code}"
            );
        }
        assert_eq!(
            database_kind("23505", sqlx::error::ErrorKind::Other).0,
            Kind::Conflict
        );
        assert_eq!(
            database_kind("2067", sqlx::error::ErrorKind::Other).0,
            Kind::Conflict
        );
        assert_eq!(
            database_kind("57014", sqlx::error::ErrorKind::Other).0,
            Kind::Timeout
        );
    }
}
