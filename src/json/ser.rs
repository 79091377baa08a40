//! The `serde::Serializer` behind [`crate::json`]: streams JSON into a `Vec<u8>`, and moves
//! "array index" keys to the front of their object when writing for JavaScript.

use serde::ser::{self, Serialize};

use super::number::{
    ecma_string, shortest_digits_f32, write_ecma_digits, write_ecma_f64, write_python_digits,
    write_python_f64,
};
use super::string::{write_ascii_str, write_js_str};
use super::{BigIntegerPolicy, Dialect, JsonError, WriterOptions};

const RAW_VALUE_TOKEN: &str = "$serde_json::private::RawValue";
const MAX_SAFE: u128 = 1 << 53;

pub(crate) struct Writer<'a> {
    pub(crate) out: &'a mut Vec<u8>,
    pub(crate) options: WriterOptions,
}

/// `Some(index)` when `key` is an ECMAScript array index: the canonical decimal string of an
/// integer in `0..2^32 - 1`. Such keys are enumerated first, in ascending numeric order.
#[inline]
pub(crate) fn array_index(key: &str) -> Option<u32> {
    let b = key.as_bytes();
    if b.is_empty() || b.len() > 10 || (b.len() > 1 && b[0] == b'0') {
        return None;
    }
    let mut v: u64 = 0;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u64::from(c - b'0');
    }
    if v < u64::from(u32::MAX) {
        Some(v as u32)
    } else {
        None
    }
}

impl Writer<'_> {
    fn js(&self) -> bool {
        self.options.dialect == Dialect::JavaScript
    }

    #[inline]
    fn write_str(&mut self, s: &str) {
        if self.js() {
            write_js_str(self.out, s);
        } else {
            write_ascii_str(self.out, s);
        }
    }

    fn write_int(&mut self, negative: bool, abs: u128) -> Result<(), JsonError> {
        let mut b = itoa::Buffer::new();
        if !self.js() || abs <= MAX_SAFE {
            if negative {
                self.out.push(b'-');
            }
            match u64::try_from(abs) {
                Ok(small) => self.out.extend_from_slice(b.format(small).as_bytes()),
                Err(_) => self.out.extend_from_slice(b.format(abs).as_bytes()),
            }
            return Ok(());
        }
        let text = b.format(abs);
        // Beyond 2^53: keep the integer only if JavaScript would print the same digits
        // (`abs as f64` rounds to nearest, as JavaScript's parser does).
        let f = abs as f64;
        if f.is_finite() && ecma_string(f) == text {
            if negative {
                self.out.push(b'-');
            }
            self.out.extend_from_slice(text.as_bytes());
            return Ok(());
        }
        let value = if negative {
            format!("-{text}")
        } else {
            text.to_owned()
        };
        match self.options.big_integers {
            BigIntegerPolicy::AsString => {
                self.out.push(b'"');
                self.out.extend_from_slice(value.as_bytes());
                self.out.push(b'"');
                Ok(())
            }
            BigIntegerPolicy::Refuse => Err(JsonError::UnsafeInteger { value }),
        }
    }

    fn write_f64(&mut self, v: f64) -> Result<(), JsonError> {
        if !v.is_finite() {
            return Err(JsonError::NonFiniteNumber);
        }
        // Fast path: integral values below 2^53 print as integers in both dialects (Python
        // appends `.0`); `-0.0` is left to the general path.
        if v.fract() == 0.0 && v.abs() < MAX_SAFE as f64 && v != 0.0 {
            let mut b = itoa::Buffer::new();
            self.out.extend_from_slice(b.format(v as i64).as_bytes());
            if !self.js() {
                self.out.extend_from_slice(b".0");
            }
            return Ok(());
        }
        if self.js() {
            write_ecma_f64(self.out, v);
        } else {
            write_python_f64(self.out, v);
        }
        Ok(())
    }

    fn write_f32(&mut self, v: f32) -> Result<(), JsonError> {
        if !v.is_finite() {
            return Err(JsonError::NonFiniteNumber);
        }
        if v == 0.0 {
            return self.write_f64(f64::from(v));
        }
        let d = shortest_digits_f32(v.abs());
        if self.js() {
            write_ecma_digits(self.out, v < 0.0, d.as_str(), d.n);
        } else {
            write_python_digits(self.out, v < 0.0, d.as_str(), d.n);
        }
        Ok(())
    }

    /// Writes an object key (escaped, quoted) and the colon; returns its array index if any.
    #[inline]
    fn write_key(&mut self, key: &str) -> Option<u32> {
        let idx = if self.js() { array_index(key) } else { None };
        self.write_str(key);
        self.out.push(b':');
        idx
    }
}

/// One array or object being written.
pub(crate) struct Compound<'w, 'a> {
    w: &'w mut Writer<'a>,
    close: u8,
    /// Extra `}` to write after `close` (for `{"Variant": …}` wrappers).
    wrapped: bool,
    /// Offset of the first byte after `[` or `{`.
    body_start: usize,
    entry_start: usize,
    pending_index: Option<u32>,
    /// Start of the first entry whose key is not an array index.
    first_other: Option<usize>,
    /// Array-index entries, sorted by index: (index, start offset).
    index_entries: Vec<(u32, usize)>,
    /// Writing a `serde_json::value::RawValue`.
    raw: bool,
}

impl<'w, 'a> Compound<'w, 'a> {
    fn open(w: &'w mut Writer<'a>, open: u8, close: u8, wrapped: bool) -> Self {
        w.out.push(open);
        let body_start = w.out.len();
        Compound {
            w,
            close,
            wrapped,
            body_start,
            entry_start: body_start,
            pending_index: None,
            first_other: None,
            index_entries: Vec::new(),
            raw: false,
        }
    }

    fn finish(self) -> Result<(), JsonError> {
        if self.raw {
            return Ok(());
        }
        if self.w.out.len() > self.body_start {
            // Replace the trailing comma.
            if let Some(last) = self.w.out.last_mut() {
                *last = self.close;
            }
        } else {
            self.w.out.push(self.close);
        }
        if self.wrapped {
            self.w.out.push(b'}');
        }
        Ok(())
    }

    #[inline]
    fn element<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), JsonError> {
        value.serialize(&mut *self.w)?;
        self.w.out.push(b',');
        Ok(())
    }

    #[inline]
    fn begin_entry(&mut self, key: &str) {
        self.entry_start = self.w.out.len();
        self.pending_index = self.w.write_key(key);
    }

    /// Writes one `"key":value` entry of a struct.
    fn field<T: ?Sized + Serialize>(&mut self, key: &str, value: &T) -> Result<(), JsonError> {
        self.begin_entry(key);
        value.serialize(&mut *self.w)?;
        self.end_entry();
        Ok(())
    }

    #[inline]
    fn end_entry(&mut self) {
        self.w.out.push(b',');
        let start = self.entry_start;
        match self.pending_index.take() {
            None => {
                if self.first_other.is_none() {
                    self.first_other = Some(start);
                }
            }
            Some(idx) => {
                let end = self.w.out.len();
                let pos = self.index_entries.partition_point(|&(i, _)| i <= idx);
                let insert_at = self
                    .index_entries
                    .get(pos)
                    .map(|&(_, s)| s)
                    .or(self.first_other)
                    .unwrap_or(start);
                if insert_at < start {
                    let len = end - start;
                    self.w.out[insert_at..end].rotate_right(len);
                    for e in &mut self.index_entries[pos..] {
                        e.1 += len;
                    }
                    if let Some(f) = self.first_other.as_mut() {
                        *f += len;
                    }
                }
                self.index_entries.insert(pos, (idx, insert_at));
            }
        }
    }
}

impl<'w, 'a> ser::Serializer for &'w mut Writer<'a> {
    type Ok = ();
    type Error = JsonError;
    type SerializeSeq = Compound<'w, 'a>;
    type SerializeTuple = Compound<'w, 'a>;
    type SerializeTupleStruct = Compound<'w, 'a>;
    type SerializeTupleVariant = Compound<'w, 'a>;
    type SerializeMap = Compound<'w, 'a>;
    type SerializeStruct = Compound<'w, 'a>;
    type SerializeStructVariant = Compound<'w, 'a>;

    fn serialize_bool(self, v: bool) -> Result<(), JsonError> {
        self.out
            .extend_from_slice(if v { b"true" } else { b"false" });
        Ok(())
    }
    fn serialize_i8(self, v: i8) -> Result<(), JsonError> {
        self.serialize_i64(i64::from(v))
    }
    fn serialize_i16(self, v: i16) -> Result<(), JsonError> {
        self.serialize_i64(i64::from(v))
    }
    fn serialize_i32(self, v: i32) -> Result<(), JsonError> {
        self.serialize_i64(i64::from(v))
    }
    fn serialize_i64(self, v: i64) -> Result<(), JsonError> {
        self.write_int(v < 0, u128::from(v.unsigned_abs()))
    }
    fn serialize_i128(self, v: i128) -> Result<(), JsonError> {
        self.write_int(v < 0, v.unsigned_abs())
    }
    fn serialize_u8(self, v: u8) -> Result<(), JsonError> {
        self.serialize_u64(u64::from(v))
    }
    fn serialize_u16(self, v: u16) -> Result<(), JsonError> {
        self.serialize_u64(u64::from(v))
    }
    fn serialize_u32(self, v: u32) -> Result<(), JsonError> {
        self.serialize_u64(u64::from(v))
    }
    fn serialize_u64(self, v: u64) -> Result<(), JsonError> {
        self.write_int(false, u128::from(v))
    }
    fn serialize_u128(self, v: u128) -> Result<(), JsonError> {
        self.write_int(false, v)
    }
    fn serialize_f32(self, v: f32) -> Result<(), JsonError> {
        self.write_f32(v)
    }
    fn serialize_f64(self, v: f64) -> Result<(), JsonError> {
        self.write_f64(v)
    }
    fn serialize_char(self, v: char) -> Result<(), JsonError> {
        let mut b = [0u8; 4];
        self.write_str(v.encode_utf8(&mut b));
        Ok(())
    }
    #[inline]
    fn serialize_str(self, v: &str) -> Result<(), JsonError> {
        self.write_str(v);
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), JsonError> {
        let mut seq = Compound::open(self, b'[', b']', false);
        for b in v {
            seq.element(b)?;
        }
        seq.finish()
    }
    fn serialize_none(self) -> Result<(), JsonError> {
        self.serialize_unit()
    }
    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Result<(), JsonError> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), JsonError> {
        self.out.extend_from_slice(b"null");
        Ok(())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), JsonError> {
        self.serialize_unit()
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), JsonError> {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), JsonError> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), JsonError> {
        self.out.push(b'{');
        self.write_key(variant);
        value.serialize(&mut *self)?;
        self.out.push(b'}');
        Ok(())
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Compound<'w, 'a>, JsonError> {
        Ok(Compound::open(self, b'[', b']', false))
    }
    fn serialize_tuple(self, _len: usize) -> Result<Compound<'w, 'a>, JsonError> {
        Ok(Compound::open(self, b'[', b']', false))
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Compound<'w, 'a>, JsonError> {
        Ok(Compound::open(self, b'[', b']', false))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'w, 'a>, JsonError> {
        self.out.push(b'{');
        self.write_key(variant);
        Ok(Compound::open(self, b'[', b']', true))
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Compound<'w, 'a>, JsonError> {
        Ok(Compound::open(self, b'{', b'}', false))
    }
    fn serialize_struct(
        self,
        name: &'static str,
        _len: usize,
    ) -> Result<Compound<'w, 'a>, JsonError> {
        if name == RAW_VALUE_TOKEN {
            let body_start = self.out.len();
            return Ok(Compound {
                w: self,
                close: b'}',
                wrapped: false,
                body_start,
                entry_start: body_start,
                pending_index: None,
                first_other: None,
                index_entries: Vec::new(),
                raw: true,
            });
        }
        Ok(Compound::open(self, b'{', b'}', false))
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'w, 'a>, JsonError> {
        self.out.push(b'{');
        self.write_key(variant);
        Ok(Compound::open(self, b'{', b'}', true))
    }
}

/// The sequence-like compounds all write one element after another.
macro_rules! sequence_compound {
    ($($trait:ident::$method:ident),+ $(,)?) => {$(
        impl ser::$trait for Compound<'_, '_> {
            type Ok = ();
            type Error = JsonError;
            fn $method<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), JsonError> {
                self.element(value)
            }
            fn end(self) -> Result<(), JsonError> {
                self.finish()
            }
        }
    )+};
}

sequence_compound!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field,
);

impl ser::SerializeMap for Compound<'_, '_> {
    type Ok = ();
    type Error = JsonError;
    fn serialize_key<T: ?Sized + Serialize>(&mut self, key: &T) -> Result<(), JsonError> {
        key.serialize(KeySerializer { compound: self })
    }
    fn serialize_value<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), JsonError> {
        value.serialize(&mut *self.w)?;
        self.end_entry();
        Ok(())
    }
    fn end(self) -> Result<(), JsonError> {
        self.finish()
    }
}

impl ser::SerializeStruct for Compound<'_, '_> {
    type Ok = ();
    type Error = JsonError;
    fn serialize_field<T: ?Sized + Serialize>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), JsonError> {
        if self.raw {
            // `RawValue` serialises its text as the one field: parse it, write it our way.
            let text = match serde_json::to_value(value) {
                Ok(serde_json::Value::String(s)) => s,
                _ => return Err(JsonError::custom_msg("raw json value is not text")),
            };
            let parsed: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| JsonError::custom_msg(format!("raw json value: {e}")))?;
            return parsed.serialize(&mut *self.w);
        }
        self.field(key, value)
    }
    fn end(self) -> Result<(), JsonError> {
        self.finish()
    }
}

impl ser::SerializeStructVariant for Compound<'_, '_> {
    type Ok = ();
    type Error = JsonError;
    fn serialize_field<T: ?Sized + Serialize>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), JsonError> {
        self.field(key, value)
    }
    fn end(self) -> Result<(), JsonError> {
        self.finish()
    }
}

/// Turns a map key into its JSON string form, as serde_json does (strings, chars, integers).
struct KeySerializer<'c, 'w, 'a> {
    compound: &'c mut Compound<'w, 'a>,
}

macro_rules! key_int {
    ($($f:ident: $t:ty),*) => {$(
        fn $f(self, v: $t) -> Result<(), JsonError> {
            self.compound.begin_entry(itoa::Buffer::new().format(v));
            Ok(())
        }
    )*};
}

macro_rules! key_reject {
    ($($f:ident: $t:ty),*) => {$(
        fn $f(self, _v: $t) -> Result<(), JsonError> {
            Err(JsonError::KeyMustBeString)
        }
    )*};
}

impl ser::Serializer for KeySerializer<'_, '_, '_> {
    type Ok = ();
    type Error = JsonError;
    type SerializeSeq = ser::Impossible<(), JsonError>;
    type SerializeTuple = ser::Impossible<(), JsonError>;
    type SerializeTupleStruct = ser::Impossible<(), JsonError>;
    type SerializeTupleVariant = ser::Impossible<(), JsonError>;
    type SerializeMap = ser::Impossible<(), JsonError>;
    type SerializeStruct = ser::Impossible<(), JsonError>;
    type SerializeStructVariant = ser::Impossible<(), JsonError>;

    key_int!(serialize_i8: i8, serialize_i16: i16, serialize_i32: i32, serialize_i64: i64,
        serialize_i128: i128, serialize_u8: u8, serialize_u16: u16, serialize_u32: u32,
        serialize_u64: u64, serialize_u128: u128);
    key_reject!(serialize_bool: bool, serialize_f32: f32, serialize_f64: f64,
        serialize_bytes: &[u8]);

    fn serialize_char(self, v: char) -> Result<(), JsonError> {
        self.compound.begin_entry(v.encode_utf8(&mut [0u8; 4]));
        Ok(())
    }
    #[inline]
    fn serialize_str(self, v: &str) -> Result<(), JsonError> {
        self.compound.begin_entry(v);
        Ok(())
    }
    fn serialize_none(self) -> Result<(), JsonError> {
        Err(JsonError::KeyMustBeString)
    }
    fn serialize_some<T: ?Sized + Serialize>(self, _v: &T) -> Result<(), JsonError> {
        Err(JsonError::KeyMustBeString)
    }
    fn serialize_unit(self) -> Result<(), JsonError> {
        Err(JsonError::KeyMustBeString)
    }
    fn serialize_unit_struct(self, _n: &'static str) -> Result<(), JsonError> {
        Err(JsonError::KeyMustBeString)
    }
    fn serialize_unit_variant(
        self,
        _n: &'static str,
        _i: u32,
        variant: &'static str,
    ) -> Result<(), JsonError> {
        self.compound.begin_entry(variant);
        Ok(())
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _n: &'static str,
        value: &T,
    ) -> Result<(), JsonError> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _n: &'static str,
        _i: u32,
        _v: &'static str,
        _value: &T,
    ) -> Result<(), JsonError> {
        Err(JsonError::KeyMustBeString)
    }
    fn serialize_seq(self, _l: Option<usize>) -> Result<Self::SerializeSeq, JsonError> {
        Err(JsonError::KeyMustBeString)
    }
    fn serialize_tuple(self, _l: usize) -> Result<Self::SerializeTuple, JsonError> {
        Err(JsonError::KeyMustBeString)
    }
    fn serialize_tuple_struct(
        self,
        _n: &'static str,
        _l: usize,
    ) -> Result<Self::SerializeTupleStruct, JsonError> {
        Err(JsonError::KeyMustBeString)
    }
    fn serialize_tuple_variant(
        self,
        _n: &'static str,
        _i: u32,
        _v: &'static str,
        _l: usize,
    ) -> Result<Self::SerializeTupleVariant, JsonError> {
        Err(JsonError::KeyMustBeString)
    }
    fn serialize_map(self, _l: Option<usize>) -> Result<Self::SerializeMap, JsonError> {
        Err(JsonError::KeyMustBeString)
    }
    fn serialize_struct(
        self,
        _n: &'static str,
        _l: usize,
    ) -> Result<Self::SerializeStruct, JsonError> {
        Err(JsonError::KeyMustBeString)
    }
    fn serialize_struct_variant(
        self,
        _n: &'static str,
        _i: u32,
        _v: &'static str,
        _l: usize,
    ) -> Result<Self::SerializeStructVariant, JsonError> {
        Err(JsonError::KeyMustBeString)
    }
}

#[cfg(test)]
mod tests {
    use super::array_index;

    #[test]
    fn array_index_keys() {
        assert_eq!(array_index("0"), Some(0));
        assert_eq!(array_index("10"), Some(10));
        assert_eq!(array_index("4294967294"), Some(4_294_967_294));
        assert_eq!(array_index("4294967295"), None);
        assert_eq!(array_index("01"), None);
        assert_eq!(array_index("-1"), None);
        assert_eq!(array_index(""), None);
        assert_eq!(array_index("1.5"), None);
        assert_eq!(array_index("99999999999"), None);
    }
}
