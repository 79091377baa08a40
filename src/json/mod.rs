//! A JSON writer whose output survives the receiver re-serialising it.
//!
//! Several documented receivers (TaskLink, task-hub) do not verify the raw request body: they
//! verify `JSON.stringify(req.body)` (Node) or `json.dumps(req.json, separators=(',', ':'))`
//! (Python). A sender's signature only matches if the bytes it sent are a *fixed point* of that
//! round trip. `serde_json` is not: it writes `500.0` where JavaScript writes `500`, keeps
//! integer-like keys where they are while JavaScript moves them first, and so on. This module
//! writes exactly what the receiver will recompute:
//!
//! | | [`Dialect::JavaScript`] | [`Dialect::PythonAscii`] |
//! |---|---|---|
//! | fixed point of | `JSON.stringify(JSON.parse(x))` | `json.dumps(json.loads(x), separators=(',', ':'))` |
//! | numbers | ECMAScript `Number::toString`: `500`, `4.9`, `1e+21`, `1e-7`, `-0` → `0` | ints as ints; floats as `repr`: `500.0`, `1e+21`, `1e-05`, `-0.0` |
//! | integers beyond 2^53 | refused ([`JsonError::UnsafeInteger`]) unless JavaScript prints them unchanged, or sent as strings with [`BigIntegerPolicy::AsString`] | kept (Python ints are exact) |
//! | object keys | array-index keys (`"0"`…`"4294967294"`, canonical) first in ascending order, then the rest in insertion order | insertion order |
//! | strings | escapes `"` `\` and U+0000–U+001F only (`\b \t \n \f \r`, else `\u00xx`); `/`, U+2028, non-ASCII raw | also escapes U+007F and all non-ASCII as `\uxxxx` (surrogate pairs above U+FFFF) |
//!
//! Numbers are formatted from the shortest round-trip digits (Rust's own float formatting
//! produces them), laid out by the ECMAScript or CPython rules; non-finite numbers are refused.
//!
//! Input is any [`Serialize`] value, including `serde_json::Value` (the crate enables
//! `serde_json`'s `preserve_order`, so a parsed `Value` keeps the sender's key order).
//!
//! Known limits: Rust strings cannot hold lone surrogates, so input JSON containing them is
//! rejected when parsed and never reaches the writer; a value that serialises the same key twice
//! (possible with `#[serde(flatten)]`) is written twice, which `JSON.parse` would collapse.
//! In Python mode, `serde_json::Value` cannot tell `-0` (a Python int) from `-0.0` (a float): both
//! are written `-0.0`.
//!
//! Our own verifier always checks the raw bytes; this writer only matters when *sending*.
//!
//! # Example
//!
//! ```
//! use serde_json::json;
//!
//! let value = json!({"b": 500.0, "10": "x", "2": "y", "s": "a/b\u{2028}"});
//! let bytes = hookrelay::json::to_js_vec(&value)?;
//! assert_eq!(bytes, "{\"2\":\"y\",\"10\":\"x\",\"b\":500,\"s\":\"a/b\u{2028}\"}".as_bytes());
//!
//! let ascii = hookrelay::json::to_python_ascii_vec(&json!({"price": 500.0, "city": "Zürich"}))?;
//! assert_eq!(ascii, br#"{"price":500.0,"city":"Z\u00fcrich"}"#);
//! # Ok::<(), hookrelay::json::JsonError>(())
//! ```

mod number;
mod ser;
mod string;

use std::fmt;

use serde::Serialize;

pub(crate) use number::shortest_digits;

/// Which receiver's re-serialisation the output must survive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Dialect {
    /// Node/JavaScript: `JSON.stringify(JSON.parse(x))`.
    JavaScript,
    /// Python: `json.dumps(json.loads(x), separators=(',', ':'))` (default `ensure_ascii=True`).
    PythonAscii,
}

/// What to do with an integer that JavaScript would change (beyond 2^53 and not printed back
/// with the same digits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum BigIntegerPolicy {
    /// Fail with [`JsonError::UnsafeInteger`] (the default).
    #[default]
    Refuse,
    /// Write the integer's exact digits as a JSON string, e.g. `"9007199254740993"`.
    /// The receiver then sees a string, not a number: opt in only if it expects that.
    AsString,
}

/// Options for [`to_vec_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterOptions {
    dialect: Dialect,
    big_integers: BigIntegerPolicy,
}

impl WriterOptions {
    /// Output for JavaScript receivers; unsafe integers are refused.
    pub const fn javascript() -> Self {
        WriterOptions {
            dialect: Dialect::JavaScript,
            big_integers: BigIntegerPolicy::Refuse,
        }
    }

    /// Output for Python receivers: ASCII only, Python number formatting.
    pub const fn python_ascii() -> Self {
        WriterOptions {
            dialect: Dialect::PythonAscii,
            big_integers: BigIntegerPolicy::Refuse,
        }
    }

    /// Sets the policy for integers JavaScript would change (ignored in Python mode).
    #[must_use]
    pub const fn big_integers(mut self, policy: BigIntegerPolicy) -> Self {
        self.big_integers = policy;
        self
    }

    /// The dialect these options write.
    pub const fn dialect(&self) -> Dialect {
        self.dialect
    }
}

impl Default for WriterOptions {
    fn default() -> Self {
        Self::javascript()
    }
}

/// Why a value could not be written.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum JsonError {
    /// An integer beyond 2^53 that a JavaScript receiver would change.
    UnsafeInteger {
        /// The integer's exact decimal digits.
        value: String,
    },
    /// NaN or an infinity: JSON has no such numbers.
    NonFiniteNumber,
    /// A map key that is not a string, a char or an integer.
    KeyMustBeString,
    /// A `Serialize` implementation reported an error.
    Serialize {
        /// Its message.
        message: String,
    },
}

impl JsonError {
    fn custom_msg(message: impl Into<String>) -> Self {
        JsonError::Serialize {
            message: message.into(),
        }
    }
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JsonError::UnsafeInteger { value } => write!(
                f,
                "integer {value} is beyond 2^53 and would change in a javascript receiver"
            ),
            JsonError::NonFiniteNumber => f.write_str("json has no nan or infinite numbers"),
            JsonError::KeyMustBeString => f.write_str("json object keys must be strings"),
            JsonError::Serialize { message } => write!(f, "cannot serialize value: {message}"),
        }
    }
}

impl std::error::Error for JsonError {}

impl serde::ser::Error for JsonError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        JsonError::custom_msg(msg.to_string())
    }
}

/// Appends `value` to `out` with `options`. On error, `out` may hold a partial value.
pub fn write_with<T: ?Sized + Serialize>(
    out: &mut Vec<u8>,
    value: &T,
    options: WriterOptions,
) -> Result<(), JsonError> {
    let mut w = ser::Writer { out, options };
    value.serialize(&mut w)
}

/// Serialises `value` with `options`.
pub fn to_vec_with<T: ?Sized + Serialize>(
    value: &T,
    options: WriterOptions,
) -> Result<Vec<u8>, JsonError> {
    let mut out = Vec::with_capacity(128);
    write_with(&mut out, value, options)?;
    Ok(out)
}

/// Serialises `value` as a fixed point of `JSON.stringify(JSON.parse(x))`.
pub fn to_js_vec<T: ?Sized + Serialize>(value: &T) -> Result<Vec<u8>, JsonError> {
    to_vec_with(value, WriterOptions::javascript())
}

/// [`to_js_vec`] as a `String`.
pub fn to_js_string<T: ?Sized + Serialize>(value: &T) -> Result<String, JsonError> {
    let bytes = to_js_vec(value)?;
    // The writer only emits UTF-8 (copied from `str`s) and ASCII.
    String::from_utf8(bytes).map_err(|_| JsonError::custom_msg("output is not utf-8"))
}

/// Serialises `value` as a fixed point of Python's
/// `json.dumps(json.loads(x), separators=(',', ':'))`.
pub fn to_python_ascii_vec<T: ?Sized + Serialize>(value: &T) -> Result<Vec<u8>, JsonError> {
    to_vec_with(value, WriterOptions::python_ascii())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn key_order_js() {
        let v: serde_json::Value =
            serde_json::from_str(r#"{"b":1,"10":2,"a":3,"2":4,"01":5,"4294967295":6,"0":7}"#)
                .unwrap();
        assert_eq!(
            to_js_string(&v).unwrap(),
            r#"{"0":7,"2":4,"10":2,"b":1,"a":3,"01":5,"4294967295":6}"#
        );
        let py = String::from_utf8(to_python_ascii_vec(&v).unwrap()).unwrap();
        assert_eq!(
            py,
            r#"{"b":1,"10":2,"a":3,"2":4,"01":5,"4294967295":6,"0":7}"#
        );
    }

    #[test]
    fn nested_and_empty() {
        let v = json!({"a": [], "b": {}, "c": [1, [2, {}]], "3": {"1": null, "x": [true]}});
        assert_eq!(
            to_js_string(&v).unwrap(),
            r#"{"3":{"1":null,"x":[true]},"a":[],"b":{},"c":[1,[2,{}]]}"#
        );
    }

    #[test]
    fn big_integers() {
        assert_eq!(
            to_js_string(&9_007_199_254_740_992u64).unwrap(),
            "9007199254740992"
        );
        assert_eq!(
            to_js_string(&9_007_199_254_740_993u64),
            Err(JsonError::UnsafeInteger {
                value: "9007199254740993".into()
            })
        );
        assert_eq!(
            to_js_string(&-9_007_199_254_740_993i64),
            Err(JsonError::UnsafeInteger {
                value: "-9007199254740993".into()
            })
        );
        let opts = WriterOptions::javascript().big_integers(BigIntegerPolicy::AsString);
        assert_eq!(
            to_vec_with(&9_007_199_254_740_993u64, opts).unwrap(),
            b"\"9007199254740993\""
        );
        assert_eq!(
            to_python_ascii_vec(&u64::MAX).unwrap(),
            b"18446744073709551615"
        );
        // 2^60 is exact in binary64 but JavaScript prints 1152921504606847000.
        assert!(to_js_vec(&(1u64 << 60)).is_err());
    }

    #[test]
    fn non_finite_refused() {
        assert_eq!(to_js_vec(&f64::NAN), Err(JsonError::NonFiniteNumber));
    }
}
