//! The error every event parser returns.

use std::fmt;

/// Why a webhook body could not be parsed into an event.
///
/// Field errors name the path of the offending field, e.g. `data.job.id`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EventError {
    /// The body is not well-formed JSON.
    Syntax {
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// What was wrong.
        message: String,
    },
    /// The JSON is well-formed but a field is missing or has the wrong type or value.
    Field {
        /// Dotted path of the field (`.` for the top level), e.g. `data.payment.amount`.
        path: String,
        /// What was wrong.
        message: String,
    },
}

impl EventError {
    /// The path of the offending field, for [`EventError::Field`].
    pub fn path(&self) -> Option<&str> {
        match self {
            EventError::Field { path, .. } => Some(path),
            EventError::Syntax { .. } => None,
        }
    }

    pub(crate) fn field(path: &str, message: impl Into<String>) -> Self {
        EventError::Field {
            path: path.to_owned(),
            message: message.into(),
        }
    }

    /// Prefixes a field path with `prefix` (`job.id` under `data` becomes `data.job.id`).
    pub(crate) fn under(self, prefix: &str) -> Self {
        match self {
            EventError::Field { path, message } => {
                let path = if path == "." {
                    prefix.to_owned()
                } else {
                    format!("{prefix}.{path}")
                };
                EventError::Field { path, message }
            }
            other => other,
        }
    }

    fn from_json(path: String, err: serde_json::Error) -> Self {
        let mut message = err.to_string();
        if let Some(i) = message.rfind(" at line ") {
            message.truncate(i);
        }
        if err.is_data() {
            EventError::Field { path, message }
        } else {
            EventError::Syntax {
                line: err.line(),
                column: err.column(),
                message,
            }
        }
    }
}

impl fmt::Display for EventError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventError::Syntax {
                line,
                column,
                message,
            } => {
                write!(f, "invalid json at line {line} column {column}: {message}")
            }
            EventError::Field { path, message } => write!(f, "invalid field `{path}`: {message}"),
        }
    }
}

impl std::error::Error for EventError {}

/// Deserialises `T` from JSON text, tracking the field path for errors.
pub(crate) fn from_str_path<'a, T: serde::Deserialize<'a>>(text: &'a str) -> Result<T, EventError> {
    from_slice_path(text.as_bytes())
}

/// Deserialises `T` from JSON bytes, tracking the field path for errors.
pub(crate) fn from_slice_path<'a, T: serde::Deserialize<'a>>(
    bytes: &'a [u8],
) -> Result<T, EventError> {
    // Fast path without path tracking (which allocates per key); on error, parse again with
    // tracking to name the field.
    if let Ok(value) = serde_json::from_slice(bytes) {
        return Ok(value);
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        EventError::from_json(path, e.into_inner())
    })?;
    de.end()
        .map_err(|e| EventError::from_json(".".to_owned(), e))?;
    Ok(value)
}
