//! Reading request headers case-insensitively, and the headers a scheme asks a sender to attach.

use std::borrow::Cow;
use std::fmt;

/// What a request holds under one header name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderValue<'a> {
    /// The header is absent.
    Missing,
    /// Exactly one value.
    One(&'a [u8]),
    /// The header appears more than once; security headers are refused in this case.
    Repeated,
}

/// Read access to request headers, matched ASCII-case-insensitively.
///
/// Implemented for [`http::HeaderMap`] and for slices and vectors of `(name, value)` pairs,
/// so any server framework can hand its headers to the [`Verifier`](crate::Verifier).
///
/// ```
/// use hookrelay::{HeaderLookup, HeaderValue};
///
/// let headers = [("X-Webhook-ID", "evt_1")];
/// assert_eq!(headers.header("x-webhook-id"), HeaderValue::One(b"evt_1"));
/// assert_eq!(headers.header("x-other"), HeaderValue::Missing);
/// ```
pub trait HeaderLookup {
    /// The value(s) stored under `name`, whatever their case.
    fn header(&self, name: &str) -> HeaderValue<'_>;
}

/// Finds `name` among `(name, value)` pairs by comparing names, whatever their case.
#[inline]
fn scan<'a>(pairs: impl Iterator<Item = (&'a str, &'a [u8])>, name: &str) -> HeaderValue<'a> {
    let mut found = HeaderValue::Missing;
    for (key, value) in pairs {
        // Exact bytes first: senders mostly spell names as the scheme does (and a
        // `HeaderMap` holds them lowercase).
        if key.len() == name.len() && (key == name || key.eq_ignore_ascii_case(name)) {
            if found != HeaderValue::Missing {
                return HeaderValue::Repeated;
            }
            found = HeaderValue::One(value);
        }
    }
    found
}

/// Up to this many values, [`http::HeaderMap`] lookups scan the entries: for the dozen or so
/// headers of a webhook request that is about twice as fast as parsing `name` into a
/// `HeaderName` and hashing it.
const SCAN_HEADER_MAP_UP_TO: usize = 24;

impl HeaderLookup for http::HeaderMap {
    fn header(&self, name: &str) -> HeaderValue<'_> {
        if self.len() <= SCAN_HEADER_MAP_UP_TO {
            return scan(self.iter().map(|(k, v)| (k.as_str(), v.as_bytes())), name);
        }
        let mut values = self.get_all(name).iter();
        match (values.next(), values.next()) {
            (None, _) => HeaderValue::Missing,
            (Some(one), None) => HeaderValue::One(one.as_bytes()),
            (Some(_), Some(_)) => HeaderValue::Repeated,
        }
    }
}

impl<K: AsRef<str>, V: AsRef<[u8]>> HeaderLookup for [(K, V)] {
    fn header(&self, name: &str) -> HeaderValue<'_> {
        scan(self.iter().map(|(k, v)| (k.as_ref(), v.as_ref())), name)
    }
}

impl<K: AsRef<str>, V: AsRef<[u8]>, const N: usize> HeaderLookup for [(K, V); N] {
    fn header(&self, name: &str) -> HeaderValue<'_> {
        self.as_slice().header(name)
    }
}

impl<K: AsRef<str>, V: AsRef<[u8]>> HeaderLookup for Vec<(K, V)> {
    fn header(&self, name: &str) -> HeaderValue<'_> {
        self.as_slice().header(name)
    }
}

impl<T: HeaderLookup + ?Sized> HeaderLookup for &T {
    fn header(&self, name: &str) -> HeaderValue<'_> {
        (**self).header(name)
    }
}

/// The headers a [`Scheme`](crate::Scheme) asks the sender to attach, in order.
///
/// Values that authenticate the request (signatures, API keys) are redacted in `Debug`.
#[derive(Clone, Default)]
pub struct SignedHeaders {
    entries: Vec<Entry>,
}

#[derive(Clone)]
struct Entry {
    name: Cow<'static, str>,
    value: String,
    redact: Redact,
}

/// Whether a header's value may appear in `Debug` output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redact {
    /// The value is harmless to print (ids, timestamps).
    No,
    /// The value authenticates the request (signatures, API keys).
    Yes,
}

impl SignedHeaders {
    /// No headers yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends one header.
    pub fn push(&mut self, name: impl Into<Cow<'static, str>>, value: String, redact: Redact) {
        self.entries.push(Entry {
            name: name.into(),
            value,
            redact,
        });
    }

    /// The value of `name` (case-insensitive), if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value)
    }

    /// `(name, value)` pairs in the order the scheme produced them.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.entries
            .iter()
            .map(|entry| (entry.name.as_ref(), entry.value.as_str()))
    }

    /// Number of headers.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no headers.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Copies the headers into an [`http::HeaderMap`], replacing same-named ones.
    ///
    /// Fails only if a custom scheme produced a name or value that is not valid in HTTP.
    pub fn to_header_map(&self) -> Result<http::HeaderMap, InvalidHeader> {
        let mut map = http::HeaderMap::with_capacity(self.entries.len());
        for entry in &self.entries {
            let name = http::HeaderName::from_bytes(entry.name.as_bytes())
                .map_err(|_| InvalidHeader(entry.name.clone()))?;
            let mut value = http::HeaderValue::from_str(&entry.value)
                .map_err(|_| InvalidHeader(entry.name.clone()))?;
            value.set_sensitive(entry.redact == Redact::Yes);
            map.insert(name, value);
        }
        Ok(map)
    }
}

impl fmt::Debug for SignedHeaders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for entry in &self.entries {
            match entry.redact {
                Redact::No => map.entry(&entry.name, &entry.value),
                Redact::Yes => map.entry(&entry.name, &"<redacted>"),
            };
        }
        map.finish()
    }
}

/// A header name or value that HTTP cannot carry; holds the header's name only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidHeader(pub Cow<'static, str>);

impl fmt::Display for InvalidHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "header `{}` is not valid in http", self.0)
    }
}

impl std::error::Error for InvalidHeader {}

#[cfg(test)]
mod tests {
    use super::{HeaderLookup as _, HeaderValue, SCAN_HEADER_MAP_UP_TO};

    /// Small maps (scanned) and large maps (hashed) answer alike: any case, repeats, misses.
    #[test]
    fn header_map_lookup_is_the_same_scanned_or_hashed() {
        for filler in [0, SCAN_HEADER_MAP_UP_TO + 1] {
            let mut map = http::HeaderMap::new();
            for i in 0..filler {
                map.insert(
                    http::HeaderName::try_from(format!("x-filler-{i}")).unwrap(),
                    http::HeaderValue::from_static("f"),
                );
            }
            map.insert("webhook-id", http::HeaderValue::from_static("msg_1"));
            map.append("webhook-signature", http::HeaderValue::from_static("a"));
            map.append("webhook-signature", http::HeaderValue::from_static("b"));
            assert_eq!(
                map.header("Webhook-ID"),
                HeaderValue::One(b"msg_1"),
                "{filler}"
            );
            assert_eq!(
                map.header("webhook-id"),
                HeaderValue::One(b"msg_1"),
                "{filler}"
            );
            assert_eq!(map.header("webhook-signature"), HeaderValue::Repeated);
            assert_eq!(map.header("webhook-timestamp"), HeaderValue::Missing);
            assert_eq!(map.header("webhook-i"), HeaderValue::Missing);
        }
    }
}
