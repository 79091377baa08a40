//! JSON Schemas of the event types (feature `server`), generated from the Rust types: the
//! wire macros give every data object, string newtype and string enum a schema through
//! [`DataSchema`], and public types also implement utoipa's `ToSchema`, so an app can put
//! them in its own OpenAPI document.
//!
//! Why not `#[derive(ToSchema)]`: the event types serialise through hand-rolled serde impls
//! (unknown fields kept in `extra`, unknown enum values in `Other`), which a derive would not
//! see; the macros that write those impls write the schemas from the same field lists, so the
//! two cannot drift.
//!
//! The schemas describe what hookrelay reads: objects keep unknown fields (no
//! `additionalProperties: false`), string enums list their known values but accept others,
//! amounts are JSON numbers or decimal strings.

use serde_json::{Map, Value};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{
    AdditionalProperties, ArrayBuilder, KnownFormat, ObjectBuilder, OneOfBuilder, Schema,
    SchemaFormat, SchemaType, Type,
};

/// A type's JSON Schema, self-contained (nested types inlined, no `$ref`).
pub(crate) trait DataSchema {
    /// The schema.
    fn data_schema() -> RefOr<Schema>;
}

/// `{"type": t}` with a description.
pub(crate) fn typed(t: Type, description: &str) -> RefOr<Schema> {
    let mut builder = ObjectBuilder::new().schema_type(t);
    if !description.is_empty() {
        builder = builder.description(Some(description));
    }
    builder.into()
}

/// A string enum's schema: a string, its known values listed (others are accepted and kept).
pub(crate) fn string_enum(description: &str, known: &[&str]) -> RefOr<Schema> {
    let known: Vec<String> = known.iter().map(|v| format!("`{v}`")).collect();
    let text = format!(
        "{}Known values: {} (others are accepted and kept).",
        if description.is_empty() {
            String::new()
        } else {
            format!("{description} ")
        },
        known.join(", ")
    );
    typed(Type::String, &text)
}

/// `schema` with `description` (a field's doc comment) in place of its own, if given.
pub(crate) fn described(schema: RefOr<Schema>, description: &str) -> RefOr<Schema> {
    if description.is_empty() {
        return schema;
    }
    match schema {
        RefOr::T(Schema::Object(mut object)) => {
            object.description = Some(description.to_owned());
            RefOr::T(Schema::Object(object))
        }
        RefOr::T(Schema::Array(mut array)) => {
            array.description = Some(description.to_owned());
            RefOr::T(Schema::Array(array))
        }
        RefOr::T(Schema::OneOf(mut one_of)) => {
            one_of.description = Some(description.to_owned());
            RefOr::T(Schema::OneOf(one_of))
        }
        other => other,
    }
}

/// A doc comment's text: its lines trimmed, joined by spaces.
pub(crate) fn doc_text(lines: &[&str]) -> String {
    lines
        .iter()
        .map(|line| line.trim())
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// An object with these properties (`(wire name, required, schema)`), keeping unknown fields.
pub(crate) fn object(description: &str, fields: Vec<(&str, bool, RefOr<Schema>)>) -> RefOr<Schema> {
    let mut builder = ObjectBuilder::new().schema_type(Type::Object);
    if !description.is_empty() {
        builder = builder.description(Some(description));
    }
    for (name, required, schema) in fields {
        builder = builder.property(name, schema);
        if required {
            builder = builder.required(name);
        }
    }
    builder.into()
}

impl DataSchema for String {
    fn data_schema() -> RefOr<Schema> {
        typed(Type::String, "")
    }
}

impl DataSchema for u64 {
    fn data_schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(0))
            .into()
    }
}

impl DataSchema for i64 {
    fn data_schema() -> RefOr<Schema> {
        typed(Type::Integer, "")
    }
}

impl DataSchema for f64 {
    fn data_schema() -> RefOr<Schema> {
        typed(Type::Number, "")
    }
}

impl DataSchema for bool {
    fn data_schema() -> RefOr<Schema> {
        typed(Type::Boolean, "")
    }
}

impl DataSchema for Value {
    fn data_schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(SchemaType::AnyValue)
            .description(Some("any JSON value"))
            .into()
    }
}

impl DataSchema for Map<String, Value> {
    fn data_schema() -> RefOr<Schema> {
        typed(Type::Object, "")
    }
}

impl<T: DataSchema> DataSchema for Vec<T> {
    fn data_schema() -> RefOr<Schema> {
        ArrayBuilder::new().items(T::data_schema()).into()
    }
}

impl DataSchema for super::Decimal {
    fn data_schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .description(Some(
                "an exact decimal amount: a JSON number, or a decimal string",
            ))
            .item(typed(Type::Number, ""))
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some(r"^-?[0-9]+(\.[0-9]+)?$")),
            )
            .into()
    }
}

impl DataSchema for super::DecimalString {
    fn data_schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(r"^-?[0-9]+(\.[0-9]+)?$"))
            .description(Some("an exact decimal amount, sent as a string"))
            .into()
    }
}

impl DataSchema for super::EventTime {
    fn data_schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
            .description(Some("an RFC 3339 time, kept as written"))
            .into()
    }
}

impl DataSchema for super::LenientTime {
    fn data_schema() -> RefOr<Schema> {
        typed(
            Type::String,
            "a time the sender documents loosely: RFC 3339 text, kept as written",
        )
    }
}

impl DataSchema for super::RegistrationSecret {
    fn data_schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .write_only(Some(true))
            .description(Some("the signing secret"))
            .into()
    }
}

impl DataSchema for super::tasklink::Changes {
    fn data_schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some("changed field name → its old and new value"))
            .additional_properties(Some(AdditionalProperties::RefOr(
                <super::tasklink::Change as DataSchema>::data_schema(),
            )))
            .into()
    }
}

/// A number newtype (TaskOn's ids and unix times).
macro_rules! integer_schema {
    ($($ty:ty => $min:expr, $description:literal;)*) => {
        $(
            impl DataSchema for $ty {
                fn data_schema() -> RefOr<Schema> {
                    let mut builder = ObjectBuilder::new()
                        .schema_type(Type::Integer)
                        .description(Some($description));
                    if let Some(min) = $min {
                        builder = builder.minimum(Some(min));
                    }
                    builder.into()
                }
            }
        )*
    };
}

integer_schema! {
    super::taskon::TaskId => Some(0), "a TaskOn task id";
    super::taskon::UserId => Some(0), "a TaskOn user id";
    super::taskon::UnixTime => None::<i64>, "unix seconds";
}

/// `PartialSchema` and `ToSchema` (named after the type) from a [`DataSchema`].
macro_rules! to_schema {
    ($($ty:ty => $name:expr),* $(,)?) => {
        $(
            impl utoipa::PartialSchema for $ty {
                fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                    <$ty as $crate::event::schema::DataSchema>::data_schema()
                }
            }

            impl utoipa::ToSchema for $ty {
                fn name() -> std::borrow::Cow<'static, str> {
                    std::borrow::Cow::Borrowed($name)
                }
            }
        )*
    };
}
pub(crate) use to_schema;

to_schema!(
    super::Decimal => "Decimal",
    super::DecimalString => "DecimalString",
    super::EventTime => "EventTime",
    super::LenientTime => "LenientTime",
    super::RegistrationSecret => "RegistrationSecret",
    super::tasklink::Changes => "Changes",
    super::taskon::TaskId => "TaskOnTaskId",
    super::taskon::UserId => "TaskOnUserId",
    super::taskon::UnixTime => "UnixTime",
);
