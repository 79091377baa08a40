//! The `hookrelay` binary, driven as external interop checks drive it.

mod common;

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn hookrelay(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hookrelay"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A child that fails on its arguments exits without reading stdin: ignore the broken pipe.
    let _ = child.stdin.take().unwrap().write_all(stdin);
    child.wait_with_output().unwrap()
}

fn vectors() -> Vec<Value> {
    common::vector_cases("schemes.json")
}

fn case_args(case: &Value) -> Vec<String> {
    let mut args = vec![
        "--scheme".to_owned(),
        case["scheme"].as_str().unwrap().to_owned(),
    ];
    if let Some(key) = case["api_key"].as_str() {
        args.extend(["--api-key".to_owned(), key.to_owned()]);
    }
    args
}

fn expected_lines(case: &Value) -> String {
    case["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| format!("{}: {}\n", h[0].as_str().unwrap(), h[1].as_str().unwrap()))
        .collect()
}

#[test]
fn sign_prints_exactly_the_reference_headers() {
    for case in vectors() {
        let body = hex::decode(case["body_hex"].as_str().unwrap()).unwrap();
        let mut args = vec!["sign".to_owned()];
        args.extend(case_args(&case));
        args.extend([
            "--secret".to_owned(),
            case["secret"].as_str().unwrap().to_owned(),
        ]);
        if let Some(id) = case["id"].as_str() {
            args.extend(["--id".to_owned(), id.to_owned()]);
        }
        if let Some(ts) = case["timestamp"].as_i64() {
            args.extend(["--timestamp".to_owned(), ts.to_string()]);
        }
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = hookrelay(&refs, &body);
        assert!(
            out.status.success(),
            "{}: {}",
            case["name"],
            String::from_utf8_lossy(&out.stderr)
        );
        // Schemes that sign no id print none even though the CLI generates one.
        assert_eq!(
            String::from_utf8(out.stdout).unwrap(),
            expected_lines(&case),
            "{}",
            case["name"]
        );
    }
}

#[test]
fn verify_accepts_reference_requests_and_rejects_tampered_ones() {
    for case in vectors() {
        let body = hex::decode(case["body_hex"].as_str().unwrap()).unwrap();
        let body_file = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("hookrelay-cli-{}.bin", std::process::id()));
        std::fs::write(&body_file, &body).unwrap();
        let mut args = vec!["verify".to_owned()];
        args.extend(case_args(&case));
        args.extend(["--secret".to_owned(), "d3JvbmctMQ==".to_owned()]);
        args.extend([
            "--secret".to_owned(),
            case["secret"].as_str().unwrap().to_owned(),
        ]);
        for h in case["headers"].as_array().unwrap() {
            args.extend([
                "-H".to_owned(),
                format!("{}: {}", h[0].as_str().unwrap(), h[1].as_str().unwrap()),
            ]);
        }
        let now = case["timestamp"].as_i64().unwrap_or(1_700_000_000);
        args.extend(["--now".to_owned(), now.to_string()]);

        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = hookrelay(&refs, &body);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}: {}",
            case["name"],
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.stdout, b"verified\n");

        let mut with_file = refs.clone();
        with_file.extend(["--body-file", body_file.to_str().unwrap()]);
        assert_eq!(
            hookrelay(&with_file, b"ignored stdin").status.code(),
            Some(0)
        );

        let mut tampered = body.clone();
        tampered.extend_from_slice(b" ");
        if case["scheme"] != "canonical-json" {
            let out = hookrelay(&refs, &tampered);
            assert_eq!(out.status.code(), Some(1), "{}", case["name"]);
            assert!(out.stdout.is_empty());
            let stderr = String::from_utf8(out.stderr).unwrap();
            assert_eq!(stderr.lines().count(), 1, "{stderr}");
        }
        let _ = std::fs::remove_file(&body_file);
    }
}

#[test]
fn verify_applies_tolerance_and_now() {
    let case = vectors()
        .into_iter()
        .find(|c| c["scheme"] == "standard-webhooks")
        .unwrap();
    let ts = case["timestamp"].as_i64().unwrap();
    let body = hex::decode(case["body_hex"].as_str().unwrap()).unwrap();
    let headers: Vec<String> = case["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| format!("{}: {}", h[0].as_str().unwrap(), h[1].as_str().unwrap()))
        .collect();
    let run = |now: i64, tolerance: &str| {
        let now = now.to_string();
        let mut args = vec![
            "verify",
            "--scheme",
            "standard-webhooks",
            "--secret",
            case["secret"].as_str().unwrap(),
            "--now",
            &now,
            "--tolerance",
            tolerance,
        ];
        for h in &headers {
            args.extend(["-H", h.as_str()]);
        }
        hookrelay(&args, &body).status.code()
    };
    assert_eq!(run(ts + 300, "300"), Some(0));
    assert_eq!(run(ts + 301, "300"), Some(1));
    assert_eq!(run(ts + 3_000, "3600"), Some(0));
    assert_eq!(run(ts - 301, "300"), Some(1));
}

#[test]
fn sign_generates_missing_id_and_timestamp() {
    let out = hookrelay(
        &[
            "sign",
            "--scheme",
            "standard-webhooks",
            "--secret",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        ],
        b"{}",
    );
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3);
    assert!(lines[0].starts_with("webhook-id: msg_"));
    let ts: i64 = lines[1]
        .strip_prefix("webhook-timestamp: ")
        .unwrap()
        .parse()
        .unwrap();
    assert!((ts - hookrelay::Timestamp::now().as_unix()).abs() < 60);
    assert!(lines[2].starts_with("webhook-signature: v1,"));

    let out = hookrelay(&["sign", "--scheme", "id-body", "--secret", "k"], b"{}");
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .starts_with("X-Webhook-ID: evt_")
    );

    let out = hookrelay(
        &[
            "sign",
            "--scheme",
            "x-hub",
            "--secret",
            "k",
            "--header-name",
            "X-Custom-Sig",
        ],
        b"{}",
    );
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .starts_with("X-Custom-Sig: sha256=")
    );
}

#[test]
fn usage_errors_exit_2_and_failures_exit_1() {
    let usage: &[&[&str]] = &[
        &["sign", "--scheme", "nope", "--secret", "k"],
        &["sign", "--scheme", "raw-body"],
        &["sign", "--scheme", "canonical-json", "--secret", "k"],
        &["sign", "--scheme", "raw-body", "--secret", ""],
        &[
            "sign",
            "--scheme",
            "standard-webhooks",
            "--secret",
            "whsec_!!",
        ],
        &[
            "sign",
            "--scheme",
            "raw-body",
            "--secret",
            "k",
            "--body-file",
            "/nonexistent/x",
        ],
        &[
            "sign",
            "--scheme",
            "raw-body",
            "--secret",
            "k",
            "--api-key",
            "x",
        ],
        &["verify", "--scheme", "raw-body"],
        &[
            "verify", "--scheme", "raw-body", "--secret", "k", "-H", "no colon",
        ],
        &["frobnicate"],
    ];
    for args in usage {
        let out = hookrelay(args, b"{}");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    // A body TaskOn cannot sign is a failure, not a usage error.
    let out = hookrelay(
        &[
            "sign",
            "--scheme",
            "canonical-json",
            "--secret",
            "k",
            "--api-key",
            "a",
        ],
        b"{}",
    );
    assert_eq!(out.status.code(), Some(1));
    // Missing signature header: exit 1 with one line naming it.
    let out = hookrelay(&["verify", "--scheme", "raw-body", "--secret", "k"], b"{}");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("X-Webhook-Signature")
    );
}

#[cfg(feature = "ed25519")]
#[test]
fn ed25519_keys_work_from_the_cli() {
    let vector: Value = serde_json::from_slice(
        &std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/vectors/ed25519.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let body = vector["body"].as_str().unwrap();
    let out = hookrelay(
        &[
            "sign",
            "--scheme",
            "standard-webhooks",
            "--secret",
            vector["secret_key"].as_str().unwrap(),
            "--id",
            "msg_ed",
            "--timestamp",
            "1700000000",
        ],
        body.as_bytes(),
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.ends_with(&format!(
        "webhook-signature: {}\n",
        vector["signature"].as_str().unwrap()
    )));
    let signature = format!(
        "webhook-signature: {}",
        vector["signature"].as_str().unwrap()
    );
    let out = hookrelay(
        &[
            "verify",
            "--scheme",
            "standard-webhooks",
            "--secret",
            vector["public_key"].as_str().unwrap(),
            "-H",
            "webhook-id: msg_ed",
            "-H",
            "webhook-timestamp: 1700000000",
            "-H",
            &signature,
            "--now",
            "1700000000",
        ],
        body.as_bytes(),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
