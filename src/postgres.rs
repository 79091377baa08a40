//! What every hookrelay PostgreSQL store shares (feature `postgres`): schema names, pools and
//! sanitised errors.

use sqlx::postgres::{PgPool, PgPoolOptions};

/// The schema the stores use unless told otherwise.
pub(crate) const DEFAULT_SCHEMA: &str = "public";

/// Whether `name` may be used as a schema name: `[a-z_][a-z0-9_]*`, at most 48 bytes. The
/// name is spliced into SQL (schemas cannot be bound), so nothing else is accepted.
pub(crate) fn valid_schema(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z' | b'_'))
        && bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_'))
        && name.len() <= 48
}

/// Opens a pool of up to `max` connections to `url` (`postgres://user@host/db`).
pub(crate) async fn open(url: &str, max: u32) -> Result<PgPool, &'static str> {
    PgPoolOptions::new()
        .max_connections(max)
        .connect(url)
        .await
        .map_err(|e| error_kind(&e))
}

/// What went wrong, without the host names, user names and values sqlx errors can carry.
pub(crate) fn error_kind(err: &sqlx::Error) -> &'static str {
    match err {
        sqlx::Error::Database(db) => match db.code().as_deref() {
            Some("40001") => "serialization failure",
            Some("40P01") => "deadlock detected",
            Some("23505") => "unique violation",
            Some(code) if code.starts_with("08") => "connection failure",
            Some("3F000") => "no such schema",
            Some("42P01") => "no such table (migrations not applied?)",
            _ => "database error",
        },
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) => "i/o error",
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => "connection pool unavailable",
        sqlx::Error::RowNotFound => "row not found",
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => "unreadable column",
        sqlx::Error::Configuration(_) => "invalid connection settings",
        _ => "postgres error",
    }
}

#[cfg(test)]
mod tests {
    use super::valid_schema;

    #[test]
    fn schema_names_are_plain_identifiers() {
        assert!(valid_schema("public"));
        assert!(valid_schema("hookrelay_t1"));
        assert!(valid_schema("_x9"));
        for bad in [
            "",
            "1a",
            "A",
            "a-b",
            "a\"b",
            "a;drop",
            "a b",
            &"x".repeat(49),
        ] {
            assert!(!valid_schema(bad), "{bad}");
        }
    }
}
