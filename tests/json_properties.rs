//! Property tests of the JSON writer: its output is a fixed point of parse-and-rewrite, and
//! JavaScript key order is "array indices ascending, then insertion order".

use hookrelay::json::{self, WriterOptions};
use proptest::prelude::*;
use serde_json::{Map, Value};

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9]{1,3}",
        "(0|[1-9][0-9]{0,9})",
        "[a-z]{0,3}",
        Just("4294967295".to_owned()),
        Just("4294967294".to_owned()),
        Just("-1".to_owned()),
        Just("é\u{2028}😀".to_owned()),
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-(1i64 << 53)..=(1i64 << 53)).prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "\\PC{0,8}".prop_map(Value::String),
        "[\\x00-\\x1f\"\\\\/\u{7f}\u{2028}]{0,4}".prop_map(Value::String),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..6)
                .prop_map(|entries| Value::Object(entries.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn is_index(k: &str) -> bool {
    (k == "0" || (!k.starts_with('0') && !k.is_empty() && k.len() <= 10))
        && k.bytes().all(|b| b.is_ascii_digit())
        && k.parse::<u64>().is_ok_and(|v| v < u64::from(u32::MAX))
}

/// Reference ordering, written independently of the writer.
fn js_order(v: &Value) -> Value {
    match v {
        Value::Array(a) => Value::Array(a.iter().map(js_order).collect()),
        Value::Object(m) => {
            let mut idx: Vec<(&String, &Value)> = m.iter().filter(|(k, _)| is_index(k)).collect();
            idx.sort_by_key(|(k, _)| k.parse::<u64>().unwrap());
            let rest = m.iter().filter(|(k, _)| !is_index(k));
            Value::Object(
                idx.into_iter()
                    .chain(rest)
                    .map(|(k, v)| (k.clone(), js_order(v)))
                    .collect(),
            )
        }
        other => other.clone(),
    }
}

/// JavaScript has one number type: compare numbers as `f64`, with `-0` equal to `0`.
fn js_number(v: &Value) -> Value {
    match v {
        Value::Number(n) => {
            let f = n.as_f64().unwrap();
            Value::from(if f == 0.0 { 0.0 } else { f })
        }
        Value::Array(a) => Value::Array(a.iter().map(js_number).collect()),
        Value::Object(m) => {
            Value::Object(m.iter().map(|(k, v)| (k.clone(), js_number(v))).collect())
        }
        other => other.clone(),
    }
}

fn keys_in_order(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Array(a) => a.iter().for_each(|x| keys_in_order(x, out)),
        Value::Object(m) => {
            for (k, x) in m {
                out.push(k.clone());
                keys_in_order(x, out);
            }
        }
        _ => {}
    }
}

proptest! {
    #[test]
    fn js_output_is_a_fixed_point(v in value()) {
        let once = json::to_js_vec(&v).unwrap();
        let parsed: Value = serde_json::from_slice(&once).unwrap();
        prop_assert_eq!(js_number(&parsed), js_number(&v), "value changed");
        let twice = json::to_js_vec(&parsed).unwrap();
        prop_assert_eq!(&once, &twice);
        // Key order: indices first, ascending, then insertion order.
        let (mut got, mut want) = (Vec::new(), Vec::new());
        keys_in_order(&parsed, &mut got);
        keys_in_order(&js_order(&v), &mut want);
        prop_assert_eq!(got, want);
    }

    #[test]
    fn python_output_is_ascii_and_a_fixed_point(v in value()) {
        let once = json::to_vec_with(&v, WriterOptions::python_ascii()).unwrap();
        prop_assert!(once.is_ascii());
        let parsed: Value = serde_json::from_slice(&once).unwrap();
        prop_assert_eq!(&parsed, &v);
        let twice = json::to_vec_with(&parsed, WriterOptions::python_ascii()).unwrap();
        prop_assert_eq!(once, twice);
    }
}

#[test]
fn raw_values_are_rewritten() {
    let raw = serde_json::value::RawValue::from_string(r#"{"b": 1.0, "1": [2e0]}"#.into()).unwrap();
    assert_eq!(json::to_js_string(&raw).unwrap(), r#"{"1":[2],"b":1}"#);
}

#[test]
fn other_serialize_shapes() {
    #[derive(serde::Serialize)]
    enum E {
        Unit,
        New(u8),
        Tuple(u8, f32),
        Struct { a: i128 },
    }
    let v = (
        E::Unit,
        E::New(1),
        E::Tuple(2, 0.1),
        E::Struct { a: -3 },
        'x',
        b"ab" as &[u8],
    );
    assert_eq!(
        json::to_js_string(&v).unwrap(),
        r#"["Unit",{"New":1},{"Tuple":[2,0.1]},{"Struct":{"a":-3}},"x",[97,98]]"#
    );
    let mut m = std::collections::BTreeMap::new();
    m.insert(10u32, "a");
    m.insert(2u32, "b");
    assert_eq!(json::to_js_string(&m).unwrap(), r#"{"2":"b","10":"a"}"#);
    let bad: std::collections::BTreeMap<(u8, u8), u8> = [((1, 2), 3)].into_iter().collect();
    assert_eq!(json::to_js_vec(&bad), Err(json::JsonError::KeyMustBeString));
}
