//! Macros for the crate's wire vocabulary: string newtypes, string enums with a catch-all,
//! and per-profile event enums parsed by event type.

/// A `String` newtype that serialises as a plain JSON string.
macro_rules! string_newtype {
    ($(#[doc = $doc:literal])* $name:ident) => {
        $(#[doc = $doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        #[derive(serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps a value.
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }

            /// The value as sent on the wire.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// Unwraps the value.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                Self(value.to_owned())
            }
        }

        impl From<String> for $name {
            fn from(value: String) -> Self {
                Self(value)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        #[cfg(feature = "server")]
        impl $crate::event::schema::DataSchema for $name {
            fn data_schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                $crate::event::schema::typed(
                    utoipa::openapi::schema::Type::String,
                    &$crate::event::schema::doc_text(&[$($doc),*]),
                )
            }
        }

        #[cfg(feature = "server")]
        $crate::event::schema::to_schema!($name => stringify!($name));
    };
}
pub(crate) use string_newtype;

/// A string enum whose unknown values land in `Other(String)`.
macro_rules! wire_enum {
    ($(#[doc = $doc:literal])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal,)* }) => {
        $(#[doc = $doc])*
        ///
        /// Values this version does not know are kept in `Other`, so a new value from the sender
        /// never makes a webhook fail to parse. Build values with `From<&str>`, which maps known
        /// strings to their variant.
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)*
            /// A value not known to this version of hookrelay, kept as sent.
            Other(String),
        }

        impl $name {
            /// The value as it appears on the wire.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $text,)*
                    Self::Other(s) => s,
                }
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                match value {
                    $($text => Self::$variant,)*
                    other => Self::Other(other.to_owned()),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct V;
                impl serde::de::Visitor<'_> for V {
                    type Value = $name;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str("a string")
                    }
                    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<$name, E> {
                        Ok($name::from(v))
                    }
                }
                deserializer.deserialize_str(V)
            }
        }

        #[cfg(feature = "server")]
        impl $crate::event::schema::DataSchema for $name {
            fn data_schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                $crate::event::schema::string_enum(
                    &$crate::event::schema::doc_text(&[$($doc),*]),
                    &[$($text),*],
                )
            }
        }

        #[cfg(feature = "server")]
        $crate::event::schema::to_schema!($name => stringify!($name));
    };
}
pub(crate) use wire_enum;

/// A profile's event enum: one variant per known event type plus `Unknown`, with
/// [`EventData`](crate::event::EventData) and `Serialize` (the data object only).
macro_rules! event_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident($ty:ty) => $text:literal,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq)]
        #[non_exhaustive]
        pub enum $name {
            $($(#[$vmeta])* $variant($ty),)*
            /// An event type this version does not know: its type and data, kept as sent.
            Unknown {
                /// The event type from the envelope.
                event_type: $crate::event::EventType,
                /// The `data` object, unparsed.
                data: serde_json::Value,
            },
        }

        impl $name {
            /// The event types this enum has a typed variant for.
            pub const KNOWN_TYPES: &'static [&'static str] = &[$($text,)*];

            /// Each known event type with the JSON Schema of its data (feature `server`).
            #[cfg(feature = "server")]
            pub(crate) fn data_schemas(
            ) -> Vec<(&'static str, utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>)> {
                vec![$(($text, <$ty as $crate::event::schema::DataSchema>::data_schema()),)*]
            }
        }

        impl $crate::event::EventData for $name {
            fn event_type(&self) -> $crate::event::EventType {
                match self {
                    $(Self::$variant(_) => $crate::event::EventType::from($text),)*
                    Self::Unknown { event_type, .. } => event_type.clone(),
                }
            }

            fn from_data(
                event_type: &$crate::event::EventType,
                data: &str,
            ) -> Result<Self, $crate::event::EventError> {
                match event_type.as_str() {
                    $($text => $crate::event::error::from_str_path(data).map(Self::$variant),)*
                    _ => Ok(Self::Unknown {
                        event_type: event_type.clone(),
                        data: $crate::event::error::from_str_path(data)?,
                    }),
                }
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                match self {
                    $(Self::$variant(v) => v.serialize(serializer),)*
                    Self::Unknown { data, .. } => data.serialize(serializer),
                }
            }
        }

        $(
            impl From<$ty> for $name {
                fn from(value: $ty) -> Self {
                    Self::$variant(value)
                }
            }
        )*
    };
}
pub(crate) use event_enum;

/// An object key, borrowed from the input when it has no escapes.
pub(crate) struct FieldKey<'de>(pub(crate) std::borrow::Cow<'de, str>);

impl<'de> serde::Deserialize<'de> for FieldKey<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = FieldKey<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a field name")
            }
            fn visit_borrowed_str<E: serde::de::Error>(
                self,
                v: &'de str,
            ) -> Result<Self::Value, E> {
                Ok(FieldKey(std::borrow::Cow::Borrowed(v)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(FieldKey(std::borrow::Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(FieldKey(std::borrow::Cow::Owned(v)))
            }
        }
        deserializer.deserialize_identifier(V)
    }
}

/// A wire object: named fields (`req` or `opt`) plus an `extra` map that keeps fields this
/// version does not know, written back after the known ones.
///
/// Hand-rolled instead of `#[serde(flatten)]` because flatten buffers the whole object, which
/// is slower and loses the field path in error messages.
macro_rules! data_struct {
    (@fty req $t:ty) => { $t };
    (@fty opt $t:ty) => { Option<$t> };
    (@read req $map:ident $t:ty) => { Some($map.next_value::<$t>()?) };
    (@read opt $map:ident $t:ty) => { $map.next_value::<Option<$t>>()? };
    (@finish req $v:ident $wire:literal) => {
        match $v {
            Some(v) => v,
            None => return Err(serde::de::Error::missing_field($wire)),
        }
    };
    (@finish opt $v:ident $wire:literal) => { $v };
    (@count req $v:expr) => { 1usize };
    (@count opt $v:expr) => { usize::from($v.is_some()) };
    (@ser req $map:ident $wire:literal $v:expr) => { $map.serialize_entry($wire, &$v)?; };
    (@ser opt $map:ident $wire:literal $v:expr) => {
        if let Some(v) = &$v {
            $map.serialize_entry($wire, v)?;
        }
    };
    (@req req) => { true };
    (@req opt) => { false };
    (
        $(#[doc = $doc:literal])*
        pub struct $name:ident {
            $( $(#[doc = $fdoc:literal])* $kind:ident $field:ident : $ty:ty = $wire:literal, )*
        }
    ) => {
        $(#[doc = $doc])*
        #[derive(Debug, Clone, PartialEq, Default)]
        pub struct $name {
            $( $(#[doc = $fdoc])* pub $field: $crate::event::wire::data_struct!(@fty $kind $ty), )*
            /// Fields this version does not know, kept as sent and written back.
            pub extra: serde_json::Map<String, serde_json::Value>,
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeMap as _;
                let len = 0usize $( + $crate::event::wire::data_struct!(@count $kind self.$field) )*
                    + self.extra.len();
                let mut map = serializer.serialize_map(Some(len))?;
                $( $crate::event::wire::data_struct!(@ser $kind map $wire self.$field); )*
                for (k, v) in &self.extra {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> serde::de::Visitor<'de> for V {
                    type Value = $name;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str(concat!("a ", stringify!($name), " object"))
                    }
                    #[allow(unused_mut)]
                    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<$name, A::Error> {
                        $( let mut $field: Option<$ty> = None; )*
                        let mut extra = serde_json::Map::new();
                        while let Some(key) = map.next_key::<$crate::event::wire::FieldKey<'de>>()? {
                            match &*key.0 {
                                $( $wire => {
                                    $field = $crate::event::wire::data_struct!(@read $kind map $ty);
                                } )*
                                _ => {
                                    let value: serde_json::Value = map.next_value()?;
                                    extra.insert(key.0.into_owned(), value);
                                }
                            }
                        }
                        Ok($name {
                            $( $field: $crate::event::wire::data_struct!(@finish $kind $field $wire), )*
                            extra,
                        })
                    }
                }
                deserializer.deserialize_map(V)
            }
        }

        #[cfg(feature = "server")]
        impl $crate::event::schema::DataSchema for $name {
            fn data_schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                $crate::event::schema::object(
                    &$crate::event::schema::doc_text(&[$($doc),*]),
                    vec![$((
                        $wire,
                        $crate::event::wire::data_struct!(@req $kind),
                        $crate::event::schema::described(
                            <$ty as $crate::event::schema::DataSchema>::data_schema(),
                            &$crate::event::schema::doc_text(&[$($fdoc),*]),
                        ),
                    ),)*],
                )
            }
        }

        #[cfg(feature = "server")]
        $crate::event::schema::to_schema!($name => stringify!($name));
    };
}
pub(crate) use data_struct;
