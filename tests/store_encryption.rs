//! Endpoint secrets encrypted at rest (`hookrelay::send::store::encryption`), checked against
//! an independent XChaCha20-Poly1305 implementation: `tests/scripts/xchacha_open.py`
//! (PyNaCl, i.e. libsodium, or pycryptodome). Skips that part when python3 or both packages
//! are missing; `.ci/run` installs PyNaCl.

use std::path::PathBuf;
use std::process::Command;

use hookrelay::send::{EncryptionError, EncryptionKey, Keyring};

/// Bytes 0..32.
const KEY_B64: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
/// Bytes 0..24.
const NONCE: [u8; 24] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23,
];
const AAD: &[u8] = b"endpoint ep_1 secrets.0";
const PLAINTEXT: &[u8] = b"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// The sealed form of PLAINTEXT under KEY_B64, NONCE and AAD, as PyNaCl (libsodium) wrote it:
/// `python3 tests/scripts/xchacha_open.py seal <KEY_B64> <hex AAD> <hex NONCE> <hex PLAINTEXT>`.
const SEALED_BY_LIBSODIUM: &str = "enc:v1:995abaa6fa8f244b:AAECAwQFBgcICQoLDA0ODxAREhMUFRYX6ap8GvONwMh4FR+88xXjsTo1fNKXg02vR1Nz5mfkmmsSZ/qFEhC9mLrvn+R+XUZ184BNWnYH";

fn keyring() -> Keyring {
    Keyring::new(EncryptionKey::from_base64(KEY_B64).unwrap())
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/scripts/xchacha_open.py")
}

/// Runs the script; `None` (skip) when python3 or both crypto packages are missing.
fn python(args: &[&str]) -> Option<String> {
    let out = match Command::new("python3").arg(script()).args(args).output() {
        Ok(out) => out,
        Err(_) => {
            eprintln!("skipped: python3 is not installed");
            return None;
        }
    };
    if out.status.code() == Some(3) {
        eprintln!("skipped: neither PyNaCl nor pycryptodome is installed");
        return None;
    }
    assert!(
        out.status.success(),
        "xchacha_open.py {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8(out.stdout).unwrap().trim().to_owned())
}

#[test]
fn our_sealed_value_matches_the_one_libsodium_wrote() {
    let ours = keyring().seal_with_nonce(PLAINTEXT, AAD, NONCE).unwrap();
    assert_eq!(ours, SEALED_BY_LIBSODIUM);
    assert_eq!(
        &*keyring().open(SEALED_BY_LIBSODIUM, AAD).unwrap(),
        PLAINTEXT
    );
}

#[test]
fn python_opens_what_we_seal() {
    // A random nonce and a plaintext of every length class the stores see.
    for plaintext in [&b""[..], b"k", PLAINTEXT, &[0xffu8; 300]] {
        let sealed = keyring().seal(plaintext, AAD).unwrap();
        let Some(opened) = python(&["open", KEY_B64, &hex::encode(AAD), &sealed]) else {
            return;
        };
        assert_eq!(opened, hex::encode(plaintext));
    }
}

#[test]
fn python_refuses_what_was_moved_or_changed() {
    let sealed = keyring().seal(PLAINTEXT, AAD).unwrap();
    // Another record's identity: the script's decryption must fail too.
    let out = Command::new("python3")
        .arg(script())
        .args([
            "open",
            KEY_B64,
            &hex::encode(b"endpoint ep_2 secrets.0"),
            &sealed,
        ])
        .output();
    let Ok(out) = out else {
        eprintln!("skipped: python3 is not installed");
        return;
    };
    if out.status.code() == Some(3) {
        eprintln!("skipped: neither PyNaCl nor pycryptodome is installed");
        return;
    }
    assert!(!out.status.success());
}

#[test]
fn we_open_what_python_seals() {
    let nonce = "ffeeddccbbaa99887766554433221100ffeeddccbbaa9988";
    let Some(sealed) = python(&[
        "seal",
        KEY_B64,
        &hex::encode(AAD),
        nonce,
        &hex::encode(PLAINTEXT),
    ]) else {
        return;
    };
    assert_eq!(&*keyring().open(&sealed, AAD).unwrap(), PLAINTEXT);
    assert_eq!(
        keyring()
            .open(&sealed, b"endpoint ep_1 secrets.1")
            .unwrap_err(),
        EncryptionError::Tampered
    );
    let mut nonce_bytes = [0u8; 24];
    hex::decode_to_slice(nonce, &mut nonce_bytes).unwrap();
    assert_eq!(
        keyring()
            .seal_with_nonce(PLAINTEXT, AAD, nonce_bytes)
            .unwrap(),
        sealed
    );
}
