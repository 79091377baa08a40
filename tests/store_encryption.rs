//! Endpoint secrets encrypted at rest (`hookrelay::send::store::encryption`), checked against
//! an independent XChaCha20-Poly1305 implementation: `tests/scripts/xchacha_open.py`
//! (PyNaCl, i.e. libsodium, or pycryptodome). Skips that part when python3 or both packages
//! are missing; `.ci/run` installs PyNaCl.
//!
//! Then the SQL stores with a keyring: every scenario runs on SQLite, and on PostgreSQL (a
//! fresh schema each) when `HOOKRELAY_TEST_DATABASE_URL` is set.

#[cfg(feature = "postgres")]
mod pg_support;
mod send_support;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use hmac::{Hmac, Mac as _};
use hookrelay::Secret;
use hookrelay::StoreError;
use hookrelay::event::OutgoingEvent;
use hookrelay::profile::Profile;
use hookrelay::retry::UnixMillis;
use hookrelay::scheme::ApiKey;
use hookrelay::send::store::DeliveryStore;
use hookrelay::send::{
    EncryptionError, EncryptionKey, Endpoint, EndpointRegistry, EndpointStatus, Keyring,
    ManualClock, Sender, SqliteStore,
};
use send_support::ScriptedTransport;
use sha2::Sha256;

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

// ---------------------------------------------------------------------------------------
// The SQL stores with a keyring.

/// The current signing secret (raw bytes: Proposal Generator signs with them as they are).
const SIGNING: &str = "encryption-test-signing-secret";
/// A secret being rotated out, and TaskOn's API key: neither may appear in the table.
const RETIRING: &str = "encryption-test-retiring-secret";
const API_KEY: &str = "encryption-test-taskon-api-key";
const URL: &str = "https://hooks.example/encrypted";

fn endpoint(id: &str) -> Endpoint {
    Endpoint::builder(URL, Profile::ProposalGenerator)
        .id(hookrelay::send::EndpointId::new(id).unwrap())
        .secret(Secret::from_raw(SIGNING).unwrap())
        .retiring_secret(
            Secret::from_raw(RETIRING).unwrap(),
            std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(4_000_000_000),
        )
        // No verification handshake: deliver at once.
        .status(EndpointStatus::Active)
        .without_rate_limit()
        .build()
        .unwrap()
}

fn taskon_endpoint(id: &str) -> Endpoint {
    Endpoint::builder("https://hooks.example/taskon", Profile::TaskOn)
        .id(hookrelay::send::EndpointId::new(id).unwrap())
        .secret(Secret::from_raw(SIGNING).unwrap())
        .api_key(ApiKey::new(API_KEY).unwrap())
        .status(EndpointStatus::Active)
        .without_rate_limit()
        .build()
        .unwrap()
}

fn key(byte: u8) -> EncryptionKey {
    EncryptionKey::from_bytes(&[byte; 32]).unwrap()
}

/// One SQL backend, reopened at will on the same database.
trait Backend {
    type Store: DeliveryStore + Clone + std::fmt::Debug;
    async fn open(&self, keyring: Option<Keyring>) -> Result<Self::Store, StoreError>;
    /// The settings column of every endpoint row, read with a plain query.
    async fn raw_settings(&self, store: &Self::Store) -> Vec<String>;
    async fn rotate(&self, store: &Self::Store) -> Result<u64, StoreError>;
}

struct Sqlite(String);

impl Sqlite {
    fn fresh() -> Self {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let path = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "hookrelay-encryption-{}-{}.db",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
        Sqlite(format!("sqlite://{}?mode=rwc", path.display()))
    }
}

impl Backend for Sqlite {
    type Store = SqliteStore;
    async fn open(&self, keyring: Option<Keyring>) -> Result<SqliteStore, StoreError> {
        let mut builder = SqliteStore::builder();
        if let Some(keyring) = keyring {
            builder = builder.encryption(keyring);
        }
        builder.connect(&self.0).await
    }
    async fn raw_settings(&self, store: &SqliteStore) -> Vec<String> {
        sqlx::query_scalar("SELECT settings FROM hookrelay_endpoints ORDER BY id")
            .fetch_all(store.pool())
            .await
            .unwrap()
    }
    async fn rotate(&self, store: &SqliteStore) -> Result<u64, StoreError> {
        store.rotate_encryption().await
    }
}

#[cfg(feature = "postgres")]
struct Postgres {
    url: String,
    schema: String,
}

#[cfg(feature = "postgres")]
impl Backend for Postgres {
    type Store = hookrelay::send::PostgresStore;
    async fn open(&self, keyring: Option<Keyring>) -> Result<Self::Store, StoreError> {
        let mut builder = hookrelay::send::PostgresStore::builder().schema(&self.schema);
        if let Some(keyring) = keyring {
            builder = builder.encryption(keyring);
        }
        builder.connect(&self.url).await
    }
    async fn raw_settings(&self, store: &Self::Store) -> Vec<String> {
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT settings::text FROM \"{}\".hookrelay_endpoints ORDER BY id",
            self.schema
        )))
        .fetch_all(store.pool())
        .await
        .unwrap()
    }
    async fn rotate(&self, store: &Self::Store) -> Result<u64, StoreError> {
        store.rotate_encryption().await
    }
}

fn assert_no_secret_in(rows: &[String]) {
    assert!(!rows.is_empty());
    for row in rows {
        for secret in [
            "whsec_",
            SIGNING,
            RETIRING,
            API_KEY,
            &base64_of(SIGNING),
            &base64_of(RETIRING),
        ] {
            assert!(!row.contains(secret), "{secret} in {row}");
        }
        assert!(row.contains("enc:v1:"), "{row}");
        // Metadata stays readable.
        assert!(row.contains("hooks.example"), "{row}");
    }
}

fn base64_of(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}

fn hmac_hex(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// With a key: nothing secret in the table, the endpoint reads back whole, deliveries sign
/// with the decrypted secret (checked with the `hmac` crate over the raw body, Proposal
/// Generator's documented signed bytes).
async fn sealed_at_rest_and_signing_still_works<B: Backend>(backend: B) {
    let keyring = Keyring::new(key(1));
    let store = backend.open(Some(keyring.clone())).await.unwrap();
    store.put_endpoint(&endpoint("ep_enc_1")).await.unwrap();
    store
        .put_endpoint(&taskon_endpoint("ep_enc_2"))
        .await
        .unwrap();
    assert_no_secret_in(&backend.raw_settings(&store).await);

    let back = store.endpoints().await.unwrap();
    assert_eq!(back.len(), 2);
    assert_eq!(back[0].secrets().len(), 2);
    assert_eq!(
        back[1].api_key().map(ApiKey::expose),
        Some(API_KEY),
        "the API key reads back"
    );

    let clock = ManualClock::at(UnixMillis::from_secs(1_700_000_000));
    let sender = Sender::with_clock(store.clone(), clock.clone());
    let transport = ScriptedTransport::new();
    let mut dispatcher = sender.dispatcher(transport.clone()).build();
    sender
        .publish(OutgoingEvent::new(
            "job.completed",
            serde_json::json!({"job_id": "job_1"}),
        ))
        .await
        .unwrap();
    dispatcher.run_due().await.unwrap();
    let seen = transport.seen_at(URL);
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].header("x-webhook-signature"),
        Some(&*hmac_hex(SIGNING, &seen[0].body))
    );
    // Status changes written in place (SQL JSON functions) keep the secrets sealed.
    store
        .set_endpoint_status(back[0].id(), EndpointStatus::Paused, Some("paused by test"))
        .await
        .unwrap();
    assert_no_secret_in(&backend.raw_settings(&store).await);
    let reread = store.endpoint(back[0].id()).await.unwrap().unwrap();
    assert_eq!(reread.status(), EndpointStatus::Paused);
    assert_eq!(reread.secrets().len(), 2);
}

/// Reopening without the key, or with another key, fails at start with a typed error.
async fn the_wrong_key_or_none_fails_at_start<B: Backend>(backend: B) {
    let store = backend.open(Some(Keyring::new(key(1)))).await.unwrap();
    store.put_endpoint(&endpoint("ep_enc_1")).await.unwrap();
    drop(store);

    let none = backend.open(None).await.unwrap_err();
    assert!(none.is_encryption(), "{none:?}");
    assert_eq!(none.encryption_error(), Some(&EncryptionError::KeyRequired));
    assert!(!none.is_retryable());

    let wrong = backend.open(Some(Keyring::new(key(2)))).await.unwrap_err();
    assert!(wrong.is_encryption(), "{wrong:?}");
    assert_eq!(
        wrong.encryption_error(),
        Some(&EncryptionError::UnknownKey(key(1).id()))
    );
    for err in [&none, &wrong] {
        let message = err.to_string();
        assert!(!message.contains(SIGNING) && !message.contains("whsec_"));
    }
    // The right key still opens it, unchanged by the failed starts.
    let store = backend.open(Some(Keyring::new(key(1)))).await.unwrap();
    assert_eq!(store.endpoints().await.unwrap().len(), 1);
}

/// Rotation re-seals everything under the new key; the old key can then be dropped.
async fn rotation_reseals_and_the_old_key_can_go<B: Backend>(backend: B) {
    let store = backend.open(Some(Keyring::new(key(1)))).await.unwrap();
    store.put_endpoint(&endpoint("ep_enc_1")).await.unwrap();
    store
        .put_endpoint(&taskon_endpoint("ep_enc_2"))
        .await
        .unwrap();
    drop(store);

    let rotating = Keyring::new(key(2)).with_previous(key(1));
    let store = backend.open(Some(rotating)).await.unwrap();
    // Two secrets on the first endpoint; a secret and the API key on the second.
    assert_eq!(backend.rotate(&store).await.unwrap(), 4);
    assert_eq!(backend.rotate(&store).await.unwrap(), 0);
    let rows = backend.raw_settings(&store).await;
    assert_no_secret_in(&rows);
    for row in &rows {
        assert!(!row.contains(&key(1).id().to_string()), "{row}");
        assert!(row.contains(&key(2).id().to_string()), "{row}");
    }
    drop(store);

    let store = backend.open(Some(Keyring::new(key(2)))).await.unwrap();
    let back = store.endpoints().await.unwrap();
    assert_eq!(back.len(), 2);
    assert_eq!(back[1].api_key().map(ApiKey::expose), Some(API_KEY));
    drop(store);
    let old_only = backend.open(Some(Keyring::new(key(1)))).await.unwrap_err();
    assert_eq!(
        old_only.encryption_error(),
        Some(&EncryptionError::UnknownKey(key(2).id()))
    );
}

/// A database written without a key is sealed on the first start with one.
async fn plain_secrets_are_sealed_at_first_start_with_a_key<B: Backend>(backend: B) {
    let store = backend.open(None).await.unwrap();
    store.put_endpoint(&endpoint("ep_enc_1")).await.unwrap();
    store
        .put_endpoint(&taskon_endpoint("ep_enc_2"))
        .await
        .unwrap();
    let plain = backend.raw_settings(&store).await;
    assert!(plain[0].contains("whsec_"), "no key, plain as before");
    drop(store);

    let store = backend.open(Some(Keyring::new(key(1)))).await.unwrap();
    assert_no_secret_in(&backend.raw_settings(&store).await);
    let back = store.endpoints().await.unwrap();
    assert_eq!(back.len(), 2);
    assert_eq!(back[0].secrets().len(), 2);
    assert_eq!(back[1].api_key().map(ApiKey::expose), Some(API_KEY));
    // Nothing left to rotate: everything is under the current key.
    assert_eq!(backend.rotate(&store).await.unwrap(), 0);
    drop(store);
    // And from now on the key is required.
    assert!(backend.open(None).await.unwrap_err().is_encryption());
}

#[tokio::test]
async fn sqlite_seals_secrets_at_rest() {
    sealed_at_rest_and_signing_still_works(Sqlite::fresh()).await;
}

#[tokio::test]
async fn sqlite_refuses_to_start_without_the_key() {
    the_wrong_key_or_none_fails_at_start(Sqlite::fresh()).await;
}

#[tokio::test]
async fn sqlite_rotates_encryption_keys() {
    rotation_reseals_and_the_old_key_can_go(Sqlite::fresh()).await;
}

#[tokio::test]
async fn sqlite_moves_plain_secrets_to_encryption() {
    plain_secrets_are_sealed_at_first_start_with_a_key(Sqlite::fresh()).await;
}

#[tokio::test]
async fn without_a_key_nothing_changes() {
    let backend = Sqlite::fresh();
    let store = backend.open(None).await.unwrap();
    store.put_endpoint(&endpoint("ep_plain")).await.unwrap();
    let rows = backend.raw_settings(&store).await;
    assert!(rows[0].contains("whsec_") && !rows[0].contains("enc:v1:"));
    let err = backend.rotate(&store).await.unwrap_err();
    assert_eq!(err.encryption_error(), Some(&EncryptionError::KeyRequired));
}

#[cfg(feature = "postgres")]
async fn postgres(test: &str) -> Option<Postgres> {
    let url = pg_support::database_url(test)?;
    let schema = pg_support::fresh_schema(&url, "enc").await;
    Some(Postgres { url, schema })
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn postgres_seals_secrets_at_rest() {
    if let Some(b) = postgres("postgres_seals_secrets_at_rest").await {
        let schema = (b.url.clone(), b.schema.clone());
        sealed_at_rest_and_signing_still_works(b).await;
        pg_support::drop_schema(&schema.0, &schema.1).await;
    }
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn postgres_refuses_to_start_without_the_key() {
    if let Some(b) = postgres("postgres_refuses_to_start_without_the_key").await {
        let schema = (b.url.clone(), b.schema.clone());
        the_wrong_key_or_none_fails_at_start(b).await;
        pg_support::drop_schema(&schema.0, &schema.1).await;
    }
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn postgres_rotates_encryption_keys() {
    if let Some(b) = postgres("postgres_rotates_encryption_keys").await {
        let schema = (b.url.clone(), b.schema.clone());
        rotation_reseals_and_the_old_key_can_go(b).await;
        pg_support::drop_schema(&schema.0, &schema.1).await;
    }
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn postgres_moves_plain_secrets_to_encryption() {
    if let Some(b) = postgres("postgres_moves_plain_secrets_to_encryption").await {
        let schema = (b.url.clone(), b.schema.clone());
        plain_secrets_are_sealed_at_first_start_with_a_key(b).await;
        pg_support::drop_schema(&schema.0, &schema.1).await;
    }
}
