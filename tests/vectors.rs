//! Our signer and verifier against values computed by independent implementations:
//! Python's `hmac` (tests/vectors/generate.py), Node's `crypto` (generate_node.js),
//! RFC 4231, GitHub's documented example and the Standard Webhooks specification.

mod common;

use std::path::Path;
use std::process::Command;

use hookrelay::scheme::Message;
use hookrelay::{Secret, Timestamp};
use serde_json::Value;

fn load(file: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors")
        .join(file);
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn str_field<'a>(case: &'a Value, key: &str) -> Option<&'a str> {
    case.get(key).and_then(Value::as_str)
}

fn check_case(case: &Value) {
    let name = str_field(case, "name").unwrap();
    let scheme_name = str_field(case, "scheme").unwrap();
    let body = hex::decode(str_field(case, "body_hex").unwrap()).unwrap();
    let expected: Vec<(String, String)> = case["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|pair| {
            (
                pair[0].as_str().unwrap().to_owned(),
                pair[1].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let scheme = || {
        common::scheme(
            scheme_name,
            str_field(case, "api_key"),
            str_field(case, "key_order"),
        )
    };
    let secret = common::secret(scheme_name, str_field(case, "secret").unwrap());
    let timestamp = case.get("timestamp").and_then(Value::as_i64);

    // Our signer produces exactly the independent implementation's headers.
    let mut message = Message::new(&body);
    if let Some(id) = str_field(case, "id") {
        message = message.with_id(id);
    }
    if let Some(t) = timestamp {
        message = message.with_timestamp(Timestamp::from_unix(t));
    }
    let signed = scheme().sign(&secret, &message).unwrap();
    assert_eq!(common::signed_pairs(&signed), expected, "{name}: sign");

    // Our verifier accepts the independent implementation's headers...
    let now = timestamp.unwrap_or(1_700_000_000);
    let verifier = common::verifier(scheme(), secret, now);
    let verified = verifier
        .verify(&expected, &body)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(verified.body(), body.as_slice());
    assert_eq!(verified.id(), str_field(case, "id"), "{name}: id");

    // ...and rejects them for a body one byte different, where the body is covered.
    if verified.coverage().covers_whole_body() {
        let mut tampered = body.clone();
        tampered.push(b' ');
        assert!(verifier.verify(&expected, &tampered).is_err(), "{name}");
    }
}

#[test]
fn python_hmac_vectors() {
    let vectors = load("schemes.json");
    let cases = vectors["cases"].as_array().unwrap();
    assert!(cases.len() >= 12);
    for scheme in [
        "raw-body",
        "id-body",
        "canonical-json",
        "x-hub",
        "github",
        "standard-webhooks",
        "stripe",
    ] {
        assert!(
            cases.iter().any(|c| c["scheme"] == scheme),
            "no vector for {scheme}"
        );
    }
    cases.iter().for_each(check_case);
}

#[test]
fn node_crypto_vectors() {
    load("node.json")["cases"]
        .as_array()
        .unwrap()
        .iter()
        .for_each(check_case);
}

#[test]
fn rfc4231_through_our_hmac() {
    let vectors = load("schemes.json");
    let cases = vectors["rfc4231"].as_array().unwrap();
    assert_eq!(cases.len(), 6);
    for case in cases {
        let key = hex::decode(case["key_hex"].as_str().unwrap()).unwrap();
        let data = hex::decode(case["data_hex"].as_str().unwrap()).unwrap();
        let tag = Secret::from_raw(&key).unwrap().mac(&[&data]);
        assert_eq!(
            tag.to_hex(),
            case["mac_hex"].as_str().unwrap(),
            "{}",
            case["case"]
        );
    }
}

/// RFC 4231 case 2 and case 6 written out here from the RFC text, not from our script.
#[test]
fn rfc4231_published_values() {
    let jefe = Secret::from_raw("Jefe").unwrap();
    assert_eq!(
        jefe.mac(&[b"what do ya want ", b"for nothing?"]).to_hex(),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
    let long_key = Secret::from_raw([0xaa; 131]).unwrap();
    assert_eq!(
        long_key
            .mac(&[b"Test Using Larger Than Block-Size Key - Hash Key First"])
            .to_hex(),
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
    );
}

#[test]
fn github_documented_vector() {
    let verifier = common::verifier(
        common::scheme("github", None, None),
        Secret::from_raw("It's a Secret to Everybody").unwrap(),
        0,
    );
    let good = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    let headers = common::headers(&[("X-Hub-Signature-256", good)]);
    assert!(verifier.verify(&headers, b"Hello, World!").is_ok());

    // Policy: hex is decoded, so uppercase is the same signature; the prefix is required.
    let upper = format!("sha256={}", good[7..].to_uppercase());
    assert!(
        verifier
            .verify(
                &common::headers(&[("X-Hub-Signature-256", &upper)]),
                b"Hello, World!"
            )
            .is_ok()
    );
    let bare = &good[7..];
    assert!(
        verifier
            .verify(
                &common::headers(&[("X-Hub-Signature-256", bare)]),
                b"Hello, World!"
            )
            .is_err()
    );
}

#[test]
fn taskon_seed_signed_bytes_follow_go() {
    // The seed's Go signer marshals a map: keys sorted.
    let body = br#"{"user_id":11111,"timestamp":1758251308}"#;
    let signed = hookrelay::scheme::CanonicalJson::signed_bytes(body, Default::default()).unwrap();
    assert_eq!(signed, br#"{"timestamp":1758251308,"user_id":11111}"#);
}

/// The committed vector files are exactly what the scripts produce today.
#[test]
fn vector_files_match_their_scripts() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors");
    for (interpreter, script, committed) in [
        ("python3", "generate.py", "schemes.json"),
        ("node", "generate_node.js", "node.json"),
    ] {
        let out = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("hookrelay-{}-{committed}", std::process::id()));
        match Command::new(interpreter)
            .arg(dir.join(script))
            .arg(&out)
            .status()
        {
            Ok(status) => assert!(status.success(), "{script} failed"),
            Err(_) => {
                eprintln!("SKIPPED: {interpreter} not found; cannot regenerate {committed}");
                continue;
            }
        }
        let fresh = std::fs::read(&out).unwrap();
        let _ = std::fs::remove_file(&out);
        assert_eq!(
            fresh,
            std::fs::read(dir.join(committed)).unwrap(),
            "{committed} is stale: run {interpreter} tests/vectors/{script}"
        );
    }
}
