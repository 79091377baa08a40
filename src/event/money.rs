//! Exact decimal amounts.
//!
//! Money arrives as JSON numbers (TaskLink: `"amount": 500.00`) or strings (TaskOn:
//! `"reward_amount": "0.1"`). [`Decimal`] holds the amount as decimal text, never as a binary
//! float, and compares by value (`500.00 == 500`).
//!
//! Why not `rust_decimal` or serde_json's `arbitrary_precision`? `arbitrary_precision` changes
//! `serde_json` for every crate in the build and is known to break `#[serde(flatten)]`, which
//! the event types use to keep unknown fields; `rust_decimal` adds arithmetic we do not need to
//! carry an amount from one webhook to the next. A validated decimal string is the leanest
//! exact representation; convert with [`Decimal::as_str`] or [`Decimal::mantissa_scale`] to do
//! arithmetic in the decimal library of your choice.
//!
//! What "exact" means for JSON numbers: without `arbitrary_precision`, serde_json hands a
//! number's value over as an `f64`. We turn that `f64` back into its *shortest round-trip*
//! decimal digits, which are the digits the sender wrote for any amount of up to 15 significant
//! digits, minus trailing zeros: `500.00` reads back as `500`, `4.9` as `4.9` — equal as
//! decimals. (Every JavaScript or Python receiver of the same body sees exactly this `f64`.)
//! When writing a number, an amount that no `f64` carries exactly (more than 15-17 significant
//! digits) is refused rather than rounded; send such amounts as strings ([`as_string`]).
//!
//! Writing back: the JavaScript-compatible writer prints `500` for `500.00`, as
//! `JSON.stringify(JSON.parse("500.00"))` does. Fixtures are therefore compared as decimal
//! values, not as text.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

/// An exact decimal amount such as `500.00` or `0.1`.
///
/// ```
/// use hookrelay::event::Decimal;
///
/// let a: Decimal = "500.00".parse()?;
/// assert_eq!(a, "500".parse::<Decimal>()?);
/// assert_eq!(a.as_str(), "500.00");
/// assert_eq!(a.mantissa_scale(), Some((50000, 2)));
/// assert_eq!(hookrelay::json::to_js_string(&a)?, "500");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Decimal {
    /// `-?[0-9]+(\.[0-9]+)?`
    text: Box<str>,
}

/// The text is not a plain decimal (`-?digits[.digits]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecimalError {
    text: String,
}

impl fmt::Display for DecimalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid decimal {:?}", self.text)
    }
}

impl std::error::Error for DecimalError {}

fn valid(s: &str) -> bool {
    let b = s.strip_prefix('-').unwrap_or(s).as_bytes();
    let (int, frac) = match b.iter().position(|&c| c == b'.') {
        Some(p) => (&b[..p], Some(&b[p + 1..])),
        None => (b, None),
    };
    !int.is_empty()
        && int.iter().all(u8::is_ascii_digit)
        && frac.is_none_or(|f| !f.is_empty() && f.iter().all(u8::is_ascii_digit))
}

impl Decimal {
    /// Parses plain decimal text (`-?digits[.digits]`, no exponent), keeping it as written.
    pub fn parse(text: &str) -> Result<Self, DecimalError> {
        if valid(text) {
            Ok(Decimal { text: text.into() })
        } else {
            Err(DecimalError {
                text: text.to_owned(),
            })
        }
    }

    /// The shortest decimal that round-trips to `value`; `None` for NaN or infinities.
    pub fn from_f64(value: f64) -> Option<Self> {
        if !value.is_finite() {
            return None;
        }
        if value == 0.0 {
            return Some(Decimal { text: "0".into() });
        }
        let d = crate::json::shortest_digits(value.abs());
        let (digits, n) = (d.as_str(), d.n);
        let k = digits.len() as i32;
        let mut text = String::with_capacity(digits.len() + 8);
        if value < 0.0 {
            text.push('-');
        }
        if n <= 0 {
            text.push_str("0.");
            text.extend(std::iter::repeat_n('0', (-n) as usize));
            text.push_str(digits);
        } else if n >= k {
            text.push_str(digits);
            text.extend(std::iter::repeat_n('0', (n - k) as usize));
        } else {
            text.push_str(&digits[..n as usize]);
            text.push('.');
            text.push_str(&digits[n as usize..]);
        }
        Some(Decimal { text: text.into() })
    }

    /// The decimal as written (`500.00` stays `500.00`).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// `(negative, integer digits without leading zeros, fraction digits without trailing zeros)`.
    fn normalized(&self) -> (bool, &str, &str) {
        let (neg, rest) = match self.text.strip_prefix('-') {
            Some(r) => (true, r),
            None => (false, &*self.text),
        };
        let (int, frac) = rest.split_once('.').unwrap_or((rest, ""));
        let int = int.trim_start_matches('0');
        let frac = frac.trim_end_matches('0');
        let zero = int.is_empty() && frac.is_empty();
        (neg && !zero, int, frac)
    }

    /// `true` when the value has no fractional part.
    pub fn is_integer(&self) -> bool {
        self.normalized().2.is_empty()
    }

    /// The value as `mantissa × 10^-scale`, keeping the written scale (`500.00` →
    /// `(50000, 2)`); `None` if the mantissa does not fit an `i128`.
    pub fn mantissa_scale(&self) -> Option<(i128, u32)> {
        let (neg, rest) = match self.text.strip_prefix('-') {
            Some(r) => (true, r),
            None => (false, &*self.text),
        };
        let (int, frac) = rest.split_once('.').unwrap_or((rest, ""));
        let mut m: i128 = 0;
        for c in int.bytes().chain(frac.bytes()) {
            m = m.checked_mul(10)?.checked_add(i128::from(c - b'0'))?;
        }
        Some((if neg { -m } else { m }, frac.len() as u32))
    }

    /// The nearest `f64`, for display or statistics only (never for money arithmetic).
    pub fn to_f64_lossy(&self) -> f64 {
        self.text.parse().unwrap_or(f64::NAN)
    }

    /// The JSON number form: an integer, or an `f64` whose shortest digits are exactly this
    /// value. `None` when no JSON number carries the value exactly.
    fn number_form(&self) -> Option<NumberForm> {
        let (neg, int, frac) = self.normalized();
        if frac.is_empty() {
            let int = if int.is_empty() { "0" } else { int };
            if neg {
                return format!("-{int}").parse().ok().map(NumberForm::I64);
            }
            return int.parse().ok().map(NumberForm::U64);
        }
        let f: f64 = self.text.parse().ok()?;
        let back = Decimal::from_f64(f)?;
        (back == *self).then_some(NumberForm::F64(f))
    }
}

enum NumberForm {
    I64(i64),
    U64(u64),
    F64(f64),
}

impl FromStr for Decimal {
    type Err = DecimalError;
    fn from_str(s: &str) -> Result<Self, DecimalError> {
        Decimal::parse(s)
    }
}

impl From<u64> for Decimal {
    fn from(v: u64) -> Self {
        Decimal {
            text: v.to_string().into(),
        }
    }
}

impl From<i64> for Decimal {
    fn from(v: i64) -> Self {
        Decimal {
            text: v.to_string().into(),
        }
    }
}

impl Default for Decimal {
    fn default() -> Self {
        Decimal { text: "0".into() }
    }
}

impl fmt::Debug for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Decimal({})", self.text)
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl PartialEq for Decimal {
    fn eq(&self, other: &Self) -> bool {
        self.normalized() == other.normalized()
    }
}

impl Eq for Decimal {}

impl Hash for Decimal {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.normalized().hash(state);
    }
}

/// Serialises as a JSON number (see the module docs for which amounts are refused).
impl serde::Serialize for Decimal {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.number_form() {
            Some(NumberForm::I64(v)) => serializer.serialize_i64(v),
            Some(NumberForm::U64(v)) => serializer.serialize_u64(v),
            Some(NumberForm::F64(v)) => serializer.serialize_f64(v),
            None => Err(serde::ser::Error::custom(format_args!(
                "decimal {} has no exact json number form; send it as a string",
                self.text
            ))),
        }
    }
}

struct DecimalVisitor;

impl serde::de::Visitor<'_> for DecimalVisitor {
    type Value = Decimal;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a decimal number or a decimal string")
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Decimal, E> {
        Ok(Decimal {
            text: itoa::Buffer::new().format(v).into(),
        })
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Decimal, E> {
        Ok(Decimal {
            text: itoa::Buffer::new().format(v).into(),
        })
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Decimal, E> {
        Decimal::from_f64(v).ok_or_else(|| E::custom("non-finite decimal"))
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Decimal, E> {
        Decimal::parse(v).map_err(E::custom)
    }
}

/// Accepts a JSON number or a decimal string.
impl<'de> serde::Deserialize<'de> for Decimal {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(DecimalVisitor)
    }
}

/// A [`Decimal`] that is sent as a JSON *string* (TaskOn's `"reward_amount": "0.1"`).
/// Reading accepts a number or a string; writing always writes the decimal's text as a string.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct DecimalString(pub Decimal);

impl DecimalString {
    /// The decimal as written.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl std::ops::Deref for DecimalString {
    type Target = Decimal;
    fn deref(&self) -> &Decimal {
        &self.0
    }
}

impl From<Decimal> for DecimalString {
    fn from(d: Decimal) -> Self {
        DecimalString(d)
    }
}

impl FromStr for DecimalString {
    type Err = DecimalError;
    fn from_str(s: &str) -> Result<Self, DecimalError> {
        Decimal::parse(s).map(DecimalString)
    }
}

impl serde::Serialize for DecimalString {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        as_string::serialize(&self.0, serializer)
    }
}

impl<'de> serde::Deserialize<'de> for DecimalString {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        as_string::deserialize(deserializer).map(DecimalString)
    }
}

/// `#[serde(with = "as_string")]`: a [`Decimal`] written as a JSON string, as TaskOn sends
/// `"reward_amount": "0.1"`. Reading accepts a number or a string.
pub mod as_string {
    use super::{Decimal, DecimalVisitor};

    /// Writes the decimal's text as a string.
    pub fn serialize<S: serde::Serializer>(
        value: &Decimal,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(value.as_str())
    }

    /// Reads a number or a decimal string.
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Decimal, D::Error> {
        deserializer.deserialize_any(DecimalVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equality_is_by_value() {
        let d = |s: &str| Decimal::parse(s).unwrap();
        assert_eq!(d("500.00"), d("500"));
        assert_eq!(d("-0.0"), d("0"));
        assert_eq!(d("007.10"), d("7.1"));
        assert_ne!(d("0.1"), d("0.01"));
        for bad in ["", "-", ".5", "5.", "1e5", "+1", "0x10", " 1"] {
            assert!(Decimal::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn from_f64_is_shortest() {
        assert_eq!(Decimal::from_f64(500.0).unwrap().as_str(), "500");
        assert_eq!(Decimal::from_f64(4.9).unwrap().as_str(), "4.9");
        assert_eq!(Decimal::from_f64(1e-7).unwrap().as_str(), "0.0000001");
        assert_eq!(
            Decimal::from_f64(-1.5e22).unwrap().as_str(),
            "-15000000000000000000000"
        );
    }

    #[test]
    fn json_forms() {
        let v: Decimal = serde_json::from_str("500.00").unwrap();
        assert_eq!(v, Decimal::parse("500").unwrap());
        assert_eq!(serde_json::to_string(&v).unwrap(), "500");
        let v: Decimal = serde_json::from_str("\"0.1\"").unwrap();
        assert_eq!(v.as_str(), "0.1");
        assert_eq!(
            crate::json::to_js_string(&Decimal::parse("450.50").unwrap()).unwrap(),
            "450.5"
        );
        let too_precise = Decimal::parse("0.12345678901234567890123").unwrap();
        assert!(serde_json::to_string(&too_precise).is_err());
    }
}
