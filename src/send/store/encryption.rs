//! Endpoint secrets encrypted at rest: an [`EncryptionKey`], a [`Keyring`] for rotation, and
//! the sealed form the SQL stores write instead of plain secrets.
//!
//! # What it protects, and what it does not
//!
//! With a keyring configured, a SQL store keeps every endpoint signing secret sealed with
//! XChaCha20-Poly1305 (an AEAD: encrypted and authenticated). That protects the secrets
//! against anyone who gets **the data without the key**:
//!
//! - a copied SQLite file, a `pg_dump`, a disk image or a backup;
//! - a read-only SQL injection or a reporting user who can `SELECT` the endpoint table;
//! - a sealed value moved to another endpoint's row, or to another field: it was sealed with
//!   that row's identity as associated data, so it no longer opens ([`EncryptionError::Tampered`]).
//!
//! It does **not** protect against:
//!
//! - an attacker who has the key, or the application's environment or configuration it is
//!   read from (keep the key out of the database, its backups and the repository);
//! - an attacker who can read the process's memory: the store decrypts the secrets while it is
//!   open, because it signs with them;
//! - anyone who can write to the database *and* run the application: they can register an
//!   endpoint of their own;
//! - metadata: URLs, profiles, subscriptions, headers other than secrets, message bodies and
//!   the attempt log stay in plain text.
//!
//! # With the SQL stores
//!
//! Give the store builder a keyring ([`SqliteStoreBuilder::encryption`](crate::send::SqliteStoreBuilder::encryption),
//! [`PostgresStoreBuilder::encryption`](crate::send::PostgresStoreBuilder::encryption)): secrets are
//! sealed when an endpoint is written and opened when it is read. At start the store seals
//! any plain secret it holds (one transaction) and refuses to open, with an error that
//! [is an encryption error](crate::StoreError::is_encryption), when it holds a sealed secret
//! and has no keyring or lacks the key that sealed it.
//!
//! ```
//! # #[cfg(feature = "sqlite")]
//! # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
//! use hookrelay::send::{EncryptionKey, Keyring, SqliteStore};
//!
//! // In production: EncryptionKey::from_default_env()?, from HOOKRELAY_ENCRYPTION_KEY.
//! let key = EncryptionKey::generate()?;
//! let store = SqliteStore::builder()
//!     .encryption(Keyring::new(key))
//!     .connect("sqlite::memory:")
//!     .await?;
//! assert_eq!(store.rotate_encryption().await?, 0); // nothing stored yet
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The sealed form
//!
//! ```text
//! enc:v1:<key id>:<base64(nonce ‖ ciphertext ‖ tag)>
//! ```
//!
//! - `v1`: the format: XChaCha20-Poly1305 with a 24-byte random nonce from the operating
//!   system (`getrandom`), a 16-byte tag, standard base64 with padding.
//! - `<key id>`: 16 lowercase hex digits, the first 8 bytes of
//!   SHA-256(`"hookrelay encryption key id v1\0"` ‖ key). A value sealed under a key the
//!   keyring does not hold is refused by id ([`EncryptionError::UnknownKey`]) before any
//!   decryption is tried; the id says nothing useful about the key.
//! - The associated data is the ASCII header `enc:v1:<key id>:` followed by the caller's
//!   `aad` (for the stores: which endpoint and which field). Changing any byte of the header,
//!   the nonce, the ciphertext, the tag or the `aad` makes [`Keyring::open`] fail.
//!
//! A plain value never starts with `enc:` (stored secrets are `whsec_<base64>`), so
//! [`Keyring::is_sealed`] tells the two apart.
//!
//! # Rotation
//!
//! A [`Keyring`] holds one current key, which seals, and any number of previous keys, which
//! still open. To rotate: make the new key current and keep the old one as previous, re-seal
//! everything under the new key (a SQL store's `rotate_encryption`), then drop the old key.
//!
//! ```
//! use hookrelay::send::{EncryptionKey, Keyring};
//!
//! let old = EncryptionKey::generate()?;
//! let sealed = Keyring::new(old.clone()).seal(b"whsec_c2VjcmV0", b"endpoint ep_1 secret 0")?;
//! assert!(Keyring::is_sealed(&sealed));
//!
//! let keyring = Keyring::new(EncryptionKey::generate()?).with_previous(old);
//! assert!(keyring.needs_reseal(&sealed)?);
//! let resealed = keyring.reseal(&sealed, b"endpoint ep_1 secret 0")?;
//! assert!(!keyring.needs_reseal(&resealed)?);
//! assert_eq!(&*keyring.open(&resealed, b"endpoint ep_1 secret 0")?, b"whsec_c2VjcmV0");
//! # Ok::<(), hookrelay::send::EncryptionError>(())
//! ```

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD as BASE64, STANDARD_NO_PAD as BASE64_NO_PAD};
use chacha20poly1305::aead::{AeadInPlace as _, KeyInit as _};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

/// The length of an [`EncryptionKey`], in bytes.
pub const KEY_LEN: usize = 32;
/// The length of a sealed value's nonce, in bytes.
const NONCE_LEN: usize = 24;
/// The length of a sealed value's authentication tag, in bytes.
const TAG_LEN: usize = 16;
/// Every sealed value starts with this.
const SEALED_PREFIX: &str = "enc:";
/// The format this module writes.
const VERSION: &str = "v1";
/// Domain separation for key ids: no other hash of the key can collide with one.
const KEY_ID_DOMAIN: &[u8] = b"hookrelay encryption key id v1\0";

/// A 256-bit key that seals endpoint secrets at rest.
///
/// - `Debug` prints the [`KeyId`] only; there is no `Display` and no `PartialEq`.
/// - The key bytes are zeroed when the last copy is dropped.
/// - Keep it out of the database it protects: an environment variable
///   ([`EncryptionKey::from_env`]), a secrets manager, a file only the application reads.
///
/// ```
/// use hookrelay::send::EncryptionKey;
///
/// let key = EncryptionKey::from_base64("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")?;
/// assert_eq!(key.id().to_string().len(), 16);
/// assert!(!format!("{key:?}").contains("AAECAw"));
/// # Ok::<(), hookrelay::send::EncryptionError>(())
/// ```
#[derive(Clone)]
pub struct EncryptionKey {
    key: Zeroizing<[u8; KEY_LEN]>,
    id: KeyId,
}

impl EncryptionKey {
    /// The environment variable [`EncryptionKey::from_default_env`] reads:
    /// `HOOKRELAY_ENCRYPTION_KEY`, 32 bytes in standard base64.
    pub const ENV_VAR: &'static str = "HOOKRELAY_ENCRYPTION_KEY";

    /// Uses exactly [`KEY_LEN`] (32) bytes as the key.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, EncryptionError> {
        let key: [u8; KEY_LEN] = bytes.try_into().map_err(|_| EncryptionError::InvalidKey)?;
        Ok(Self::from_array(Zeroizing::new(key)))
    }

    /// Decodes 32 bytes from standard base64 (padding optional; surrounding whitespace ignored).
    pub fn from_base64(text: &str) -> Result<Self, EncryptionError> {
        let trimmed = text.trim().trim_end_matches('=');
        let decoded = Zeroizing::new(
            BASE64_NO_PAD
                .decode(trimmed)
                .map_err(|_| EncryptionError::InvalidKey)?,
        );
        Self::from_bytes(&decoded)
    }

    /// Reads the key from the environment variable `name` (standard base64, as
    /// [`EncryptionKey::from_base64`]).
    ///
    /// `Ok(None)` when the variable is unset or empty (run without encryption, or let the
    /// store refuse to start if it holds sealed secrets); an error when it is set but is not a
    /// 32-byte base64 key.
    pub fn from_env(name: &str) -> Result<Option<Self>, EncryptionError> {
        match std::env::var(name) {
            Ok(text) if text.trim().is_empty() => Ok(None),
            Ok(text) => {
                let text = Zeroizing::new(text);
                Self::from_base64(&text).map(Some)
            }
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => Err(EncryptionError::InvalidKey),
        }
    }

    /// [`EncryptionKey::from_env`] with [`EncryptionKey::ENV_VAR`].
    pub fn from_default_env() -> Result<Option<Self>, EncryptionError> {
        Self::from_env(Self::ENV_VAR)
    }

    /// A fresh key from the operating system's random number generator.
    pub fn generate() -> Result<Self, EncryptionError> {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        getrandom::fill(key.as_mut()).map_err(|_| EncryptionError::RandomUnavailable)?;
        Ok(Self::from_array(key))
    }

    fn from_array(key: Zeroizing<[u8; KEY_LEN]>) -> Self {
        let mut hash = Sha256::new();
        hash.update(KEY_ID_DOMAIN);
        hash.update(key.as_ref());
        let digest = hash.finalize();
        let mut id = [0u8; 8];
        id.copy_from_slice(&digest[..8]);
        Self { key, id: KeyId(id) }
    }

    /// The key's id: written into every value it seals, safe to log.
    pub fn id(&self) -> KeyId {
        self.id
    }

    /// The key in standard base64, to store once where the application reads it from (for
    /// a key made with [`EncryptionKey::generate`]). Keep the result out of logs.
    pub fn reveal_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(BASE64.encode(self.key.as_ref()))
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(self.key.as_ref().into())
    }
}

impl fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EncryptionKey(<redacted>, id {})", self.id)
    }
}

/// Which [`EncryptionKey`] sealed a value: 8 bytes derived from the key with SHA-256, shown
/// as 16 lowercase hex digits. Not secret.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyId([u8; 8]);

impl KeyId {
    fn parse(hex_text: &str) -> Option<Self> {
        if hex_text.len() != 16 || hex_text.bytes().any(|b| b.is_ascii_uppercase()) {
            return None;
        }
        let mut id = [0u8; 8];
        hex::decode_to_slice(hex_text, &mut id).ok()?;
        Some(Self(id))
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

/// The keys a store seals and opens secrets with: one current key, which seals, and previous
/// keys, which still open (for rotation; see the [module docs](self)).
///
/// `Debug` shows key ids only.
#[derive(Clone)]
pub struct Keyring {
    current: EncryptionKey,
    previous: Vec<EncryptionKey>,
}

impl Keyring {
    /// A keyring that seals and opens with `current` only.
    pub fn new(current: EncryptionKey) -> Self {
        Self {
            current,
            previous: Vec::new(),
        }
    }

    /// Also opens values sealed under `key` (a key being rotated out). A key with the
    /// current key's id, or one already held, is not added twice.
    pub fn with_previous(mut self, key: EncryptionKey) -> Self {
        if !self.knows(key.id()) {
            self.previous.push(key);
        }
        self
    }

    /// The id of the key that seals.
    pub fn current_id(&self) -> KeyId {
        self.current.id
    }

    /// Every key id this keyring opens, current first.
    pub fn key_ids(&self) -> Vec<KeyId> {
        std::iter::once(&self.current)
            .chain(&self.previous)
            .map(EncryptionKey::id)
            .collect()
    }

    /// Whether this keyring holds the key with `id`.
    pub fn knows(&self, id: KeyId) -> bool {
        self.key(id).is_some()
    }

    fn key(&self, id: KeyId) -> Option<&EncryptionKey> {
        std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|k| k.id == id)
    }

    /// Whether `stored` is a sealed value (starts with `enc:`) rather than a plain one.
    ///
    /// It says nothing about whether the value is well formed or which key sealed it: see
    /// [`Keyring::sealed_key_id`].
    pub fn is_sealed(stored: &str) -> bool {
        stored.starts_with(SEALED_PREFIX)
    }

    /// Which key sealed `stored`: `Ok(None)` for a plain value; an error for a sealed value
    /// that is not well formed or has a format version this build does not read.
    pub fn sealed_key_id(stored: &str) -> Result<Option<KeyId>, EncryptionError> {
        if !Self::is_sealed(stored) {
            return Ok(None);
        }
        parse(stored).map(|p| Some(p.key_id))
    }

    /// Seals `plaintext` under the current key, binding `aad` (which record and field the
    /// value belongs to; it must be given again to open it, and is not stored).
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<String, EncryptionError> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|_| EncryptionError::RandomUnavailable)?;
        self.seal_with_nonce(plaintext, aad, nonce)
    }

    /// [`Keyring::seal`] with a caller-chosen nonce, for test vectors only: reusing a nonce
    /// under one key breaks the encryption.
    #[doc(hidden)]
    pub fn seal_with_nonce(
        &self,
        plaintext: &[u8],
        aad: &[u8],
        nonce: [u8; NONCE_LEN],
    ) -> Result<String, EncryptionError> {
        let header = header(self.current.id);
        let associated = associated_data(&header, aad);
        let mut buffer = Zeroizing::new(Vec::with_capacity(plaintext.len() + TAG_LEN));
        buffer.extend_from_slice(plaintext);
        self.current
            .cipher()
            .encrypt_in_place(XNonce::from_slice(&nonce), &associated, &mut *buffer)
            .map_err(|_| EncryptionError::Malformed)?;
        let mut sealed = Vec::with_capacity(NONCE_LEN + buffer.len());
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&buffer);
        Ok(format!("{header}{}", BASE64.encode(&sealed)))
    }

    /// Opens a value [`Keyring::seal`] produced, with the same `aad`.
    ///
    /// The plaintext is zeroed when dropped. Errors: [`EncryptionError::Malformed`] or
    /// [`EncryptionError::UnsupportedVersion`] for text that is not a sealed value this build
    /// reads (a plain value included), [`EncryptionError::UnknownKey`] when no key in the
    /// keyring has the value's key id, [`EncryptionError::Tampered`] when the value or `aad`
    /// was changed.
    pub fn open(&self, stored: &str, aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, EncryptionError> {
        let parsed = parse(stored)?;
        let key = self
            .key(parsed.key_id)
            .ok_or(EncryptionError::UnknownKey(parsed.key_id))?;
        let associated = associated_data(parsed.header, aad);
        let mut buffer = Zeroizing::new(parsed.ciphertext);
        key.cipher()
            .decrypt_in_place(XNonce::from_slice(&parsed.nonce), &associated, &mut *buffer)
            .map_err(|_| EncryptionError::Tampered)?;
        Ok(buffer)
    }

    /// Whether `stored` should be sealed again under the current key: a plain value, or one
    /// sealed under a previous key. Errors as [`Keyring::sealed_key_id`]; an unknown key id
    /// is [`EncryptionError::UnknownKey`].
    pub fn needs_reseal(&self, stored: &str) -> Result<bool, EncryptionError> {
        match Self::sealed_key_id(stored)? {
            None => Ok(true),
            Some(id) if id == self.current.id => Ok(false),
            Some(id) if self.knows(id) => Ok(true),
            Some(id) => Err(EncryptionError::UnknownKey(id)),
        }
    }

    /// Opens `stored` (or takes a plain value as it is) and seals it under the current key.
    pub fn reseal(&self, stored: &str, aad: &[u8]) -> Result<String, EncryptionError> {
        if Self::is_sealed(stored) {
            let plaintext = self.open(stored, aad)?;
            self.seal(&plaintext, aad)
        } else {
            self.seal(stored.as_bytes(), aad)
        }
    }
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("current", &self.current.id)
            .field(
                "previous",
                &self.previous.iter().map(|k| k.id).collect::<Vec<_>>(),
            )
            .finish()
    }
}

fn header(id: KeyId) -> String {
    format!("{SEALED_PREFIX}{VERSION}:{id}:")
}

fn associated_data(header: &str, aad: &[u8]) -> Vec<u8> {
    let mut associated = Vec::with_capacity(header.len() + aad.len());
    associated.extend_from_slice(header.as_bytes());
    associated.extend_from_slice(aad);
    associated
}

struct Parsed<'a> {
    /// `enc:v1:<key id>:`, bound as associated data.
    header: &'a str,
    key_id: KeyId,
    nonce: [u8; NONCE_LEN],
    /// Ciphertext followed by the tag.
    ciphertext: Vec<u8>,
}

fn parse(stored: &str) -> Result<Parsed<'_>, EncryptionError> {
    let rest = stored
        .strip_prefix(SEALED_PREFIX)
        .ok_or(EncryptionError::Malformed)?;
    let (version, rest) = rest.split_once(':').ok_or(EncryptionError::Malformed)?;
    if version != VERSION {
        return if version.starts_with('v') {
            Err(EncryptionError::UnsupportedVersion)
        } else {
            Err(EncryptionError::Malformed)
        };
    }
    let (id_text, body) = rest.split_once(':').ok_or(EncryptionError::Malformed)?;
    let key_id = KeyId::parse(id_text).ok_or(EncryptionError::Malformed)?;
    let header = &stored[..stored.len() - body.len()];
    let bytes = BASE64
        .decode(body)
        .map_err(|_| EncryptionError::Malformed)?;
    if bytes.len() < NONCE_LEN + TAG_LEN {
        return Err(EncryptionError::Malformed);
    }
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&bytes[..NONCE_LEN]);
    Ok(Parsed {
        header,
        key_id,
        nonce,
        ciphertext: bytes[NONCE_LEN..].to_vec(),
    })
}

pub(crate) mod settings {
    //! The secret fields of an endpoint's stored settings (the JSON the endpoint codec writes):
    //! `api_key` and every `secrets[i].key`. Each is sealed with the endpoint id and its field name
    //! as associated data, so a sealed value copied to another endpoint or field does not open.
    // Used by the SQL stores' endpoint codec.

    use zeroize::Zeroizing;

    use super::{EncryptionError, Keyring};

    /// What [`reseal_settings`] re-seals.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) enum Reseal {
        /// Plain values only (a database moving to encryption); sealed values are opened to
        /// check them and kept.
        Plain,
        /// Every value not sealed under the current key (rotation).
        NotCurrent,
    }

    fn field_aad(endpoint: &str, field: &str) -> Vec<u8> {
        format!("hookrelay endpoint\0{endpoint}\0{field}").into_bytes()
    }

    /// Calls `f` with each secret field's name and value, in a fixed order.
    fn for_each_secret<E>(
        settings: &mut serde_json::Value,
        mut f: impl FnMut(&str, &mut serde_json::Value) -> Result<(), E>,
    ) -> Result<(), E> {
        if let Some(api_key) = settings.get_mut("api_key")
            && api_key.is_string()
        {
            f("api_key", api_key)?;
        }
        if let Some(secrets) = settings
            .get_mut("secrets")
            .and_then(serde_json::Value::as_array_mut)
        {
            for (i, secret) in secrets.iter_mut().enumerate() {
                if let Some(key) = secret.get_mut("key")
                    && key.is_string()
                {
                    f(&format!("secrets.{i}.key"), key)?;
                }
            }
        }
        Ok(())
    }

    /// Seals every plain secret field of `settings` (an endpoint's stored JSON, under the id
    /// `endpoint`); without a keyring, leaves them plain.
    pub(crate) fn seal_settings(
        settings: &mut serde_json::Value,
        endpoint: &str,
        keyring: Option<&Keyring>,
    ) -> Result<(), EncryptionError> {
        let Some(keyring) = keyring else {
            return Ok(());
        };
        for_each_secret(settings, |field, value| {
            let text = value.as_str().unwrap_or_default();
            if !Keyring::is_sealed(text) {
                *value = serde_json::Value::String(
                    keyring.seal(text.as_bytes(), &field_aad(endpoint, field))?,
                );
            }
            Ok(())
        })
    }

    /// Opens every sealed secret field of `settings` in place. A sealed field with no keyring is
    /// [`EncryptionError::KeyRequired`]; plain fields are left as they are.
    pub(crate) fn open_settings(
        settings: &mut serde_json::Value,
        endpoint: &str,
        keyring: Option<&Keyring>,
    ) -> Result<(), EncryptionError> {
        for_each_secret(settings, |field, value| {
            let text = value.as_str().unwrap_or_default();
            if !Keyring::is_sealed(text) {
                return Ok(());
            }
            let keyring = keyring.ok_or(EncryptionError::KeyRequired)?;
            let plaintext = keyring.open(text, &field_aad(endpoint, field))?;
            let plaintext =
                std::str::from_utf8(&plaintext).map_err(|_| EncryptionError::Malformed)?;
            *value = serde_json::Value::String(plaintext.to_owned());
            Ok(())
        })
    }

    /// Checks every secret field of `settings` against `keyring` and re-seals what `which`
    /// selects; returns how many fields changed.
    ///
    /// Without a keyring, a sealed field is [`EncryptionError::KeyRequired`] and nothing
    /// changes. With one, every sealed field is opened (an unknown key or a tampered value is an
    /// error) before anything is re-sealed.
    pub(crate) fn reseal_settings(
        settings: &mut serde_json::Value,
        endpoint: &str,
        keyring: Option<&Keyring>,
        which: Reseal,
    ) -> Result<usize, EncryptionError> {
        let mut changed = 0;
        for_each_secret(settings, |field, value| {
            let text = value.as_str().unwrap_or_default();
            let sealed = Keyring::is_sealed(text);
            let Some(keyring) = keyring else {
                return if sealed {
                    Err(EncryptionError::KeyRequired)
                } else {
                    Ok(())
                };
            };
            let aad = field_aad(endpoint, field);
            let plaintext = if sealed {
                keyring.open(text, &aad)?
            } else {
                Zeroizing::new(text.as_bytes().to_vec())
            };
            let reseal = match which {
                Reseal::Plain => !sealed,
                Reseal::NotCurrent => keyring.needs_reseal(text)?,
            };
            if reseal {
                *value = serde_json::Value::String(keyring.seal(&plaintext, &aad)?);
                changed += 1;
            }
            Ok(())
        })?;
        Ok(changed)
    }
}

/// Why a key could not be built or a value could not be sealed or opened.
///
/// Messages name key ids at most, never a key or a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EncryptionError {
    /// Key material that is not 32 bytes of (base64) key.
    InvalidKey,
    /// A sealed value was found and no keyring was configured to open it.
    KeyRequired,
    /// The value was sealed under a key the keyring does not hold.
    UnknownKey(KeyId),
    /// The value is not a well-formed sealed value (or is plain where a sealed one was
    /// expected, or the plaintext was too long to seal).
    Malformed,
    /// The value was sealed in a format version this build does not read.
    UnsupportedVersion,
    /// Authentication failed: the value, or the record or field it is bound to, was changed.
    Tampered,
    /// The operating system's random number generator failed.
    RandomUnavailable,
}

impl fmt::Display for EncryptionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidKey => f.write_str("an encryption key must be 32 bytes in base64"),
            Self::KeyRequired => {
                f.write_str("a sealed secret was found and no encryption key is configured")
            }
            Self::UnknownKey(id) => write!(
                f,
                "a secret is sealed under encryption key {id}, which is not configured"
            ),
            Self::Malformed => f.write_str("not a well-formed sealed value"),
            Self::UnsupportedVersion => {
                f.write_str("a sealed value has a format version this build does not read")
            }
            Self::Tampered => f.write_str(
                "a sealed value failed authentication (changed, or moved to another record)",
            ),
            Self::RandomUnavailable => {
                f.write_str("the operating system's random number generator failed")
            }
        }
    }
}

impl std::error::Error for EncryptionError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> EncryptionKey {
        EncryptionKey::from_bytes(&[byte; KEY_LEN]).unwrap()
    }

    const AAD: &[u8] = b"endpoint ep_1 secrets.0";

    #[test]
    fn round_trip() {
        let keyring = Keyring::new(key(1));
        let sealed = keyring.seal(b"whsec_c2VjcmV0", AAD).unwrap();
        assert!(sealed.starts_with(&format!("enc:v1:{}:", keyring.current_id())));
        assert!(!sealed.contains("whsec_"));
        assert_eq!(&*keyring.open(&sealed, AAD).unwrap(), b"whsec_c2VjcmV0");
        // A fresh nonce every time.
        assert_ne!(sealed, keyring.seal(b"whsec_c2VjcmV0", AAD).unwrap());
        // The empty plaintext seals and opens too.
        let empty = keyring.seal(b"", AAD).unwrap();
        assert_eq!(&*keyring.open(&empty, AAD).unwrap(), b"");
    }

    #[test]
    fn any_changed_byte_is_refused() {
        let keyring = Keyring::new(key(1));
        let sealed = keyring.seal(b"whsec_c2VjcmV0", AAD).unwrap();
        let (header, body) = sealed.rsplit_once(':').unwrap();
        let bytes = BASE64.decode(body).unwrap();
        for i in 0..bytes.len() {
            let mut changed = bytes.clone();
            changed[i] ^= 0x01;
            let stored = format!("{header}:{}", BASE64.encode(&changed));
            assert_eq!(
                keyring.open(&stored, AAD).unwrap_err(),
                EncryptionError::Tampered,
                "byte {i}"
            );
        }
        // Truncated below nonce + tag: malformed, not a panic.
        let short = format!(
            "{header}:{}",
            BASE64.encode(&bytes[..NONCE_LEN + TAG_LEN - 1])
        );
        assert_eq!(
            keyring.open(&short, AAD).unwrap_err(),
            EncryptionError::Malformed
        );
    }

    #[test]
    fn wrong_key_is_refused_by_id() {
        let sealed = Keyring::new(key(1)).seal(b"secret", AAD).unwrap();
        let other = Keyring::new(key(2));
        assert_eq!(
            other.open(&sealed, AAD).unwrap_err(),
            EncryptionError::UnknownKey(key(1).id())
        );
        assert_eq!(
            other.needs_reseal(&sealed).unwrap_err(),
            EncryptionError::UnknownKey(key(1).id())
        );
        // A forged header naming the right key id still fails authentication.
        let forged = sealed.replace(&key(1).id().to_string(), &key(2).id().to_string());
        assert_eq!(
            other.open(&forged, AAD).unwrap_err(),
            EncryptionError::Tampered
        );
    }

    #[test]
    fn rotation_opens_old_and_reseals_under_new() {
        let old = key(1);
        let sealed = Keyring::new(old.clone()).seal(b"secret", AAD).unwrap();
        let keyring = Keyring::new(key(2)).with_previous(old);
        assert_eq!(keyring.key_ids(), vec![key(2).id(), key(1).id()]);
        assert_eq!(&*keyring.open(&sealed, AAD).unwrap(), b"secret");
        assert!(keyring.needs_reseal(&sealed).unwrap());

        let resealed = keyring.reseal(&sealed, AAD).unwrap();
        assert_eq!(
            Keyring::sealed_key_id(&resealed).unwrap(),
            Some(key(2).id())
        );
        assert!(!keyring.needs_reseal(&resealed).unwrap());
        // The old key can go: the new one alone opens the re-sealed value.
        assert_eq!(
            &*Keyring::new(key(2)).open(&resealed, AAD).unwrap(),
            b"secret"
        );
        // Adding a key twice keeps one copy.
        let twice = Keyring::new(key(2))
            .with_previous(key(2))
            .with_previous(key(1));
        assert_eq!(twice.key_ids().len(), 2);
    }

    #[test]
    fn a_value_moved_to_another_record_or_field_does_not_open() {
        let keyring = Keyring::new(key(1));
        let sealed = keyring.seal(b"secret", b"endpoint ep_1 secrets.0").unwrap();
        for aad in [
            &b"endpoint ep_2 secrets.0"[..],
            b"endpoint ep_1 secrets.1",
            b"",
        ] {
            assert_eq!(
                keyring.open(&sealed, aad).unwrap_err(),
                EncryptionError::Tampered
            );
        }
    }

    #[test]
    fn plain_values_are_recognised_as_plain() {
        let keyring = Keyring::new(key(1));
        for plain in ["whsec_c2VjcmV0", "", "plain api key", "ENC:v1:x"] {
            assert!(!Keyring::is_sealed(plain), "{plain}");
            assert_eq!(Keyring::sealed_key_id(plain).unwrap(), None);
            assert!(keyring.needs_reseal(plain).unwrap());
            assert_eq!(
                keyring.open(plain, AAD).unwrap_err(),
                EncryptionError::Malformed
            );
        }
        let resealed = keyring.reseal("whsec_c2VjcmV0", AAD).unwrap();
        assert!(Keyring::is_sealed(&resealed));
        assert_eq!(&*keyring.open(&resealed, AAD).unwrap(), b"whsec_c2VjcmV0");
    }

    #[test]
    fn malformed_sealed_values_are_typed_errors() {
        let keyring = Keyring::new(key(1));
        let id = key(1).id();
        for (stored, expected) in [
            ("enc:", EncryptionError::Malformed),
            ("enc:v1", EncryptionError::Malformed),
            ("enc:v1:", EncryptionError::Malformed),
            ("enc:v1:zz:AAAA", EncryptionError::Malformed),
            (
                &*format!("enc:v1:{}:AAAA", id.to_string().to_uppercase()),
                EncryptionError::Malformed,
            ),
            (
                &*format!("enc:v1:{id}:not base64!"),
                EncryptionError::Malformed,
            ),
            (&*format!("enc:v1:{id}:"), EncryptionError::Malformed),
            (
                "enc:v2:0011223344556677:AAAA",
                EncryptionError::UnsupportedVersion,
            ),
            ("enc:x1:0011223344556677:AAAA", EncryptionError::Malformed),
        ] {
            assert!(Keyring::is_sealed(stored));
            assert_eq!(keyring.open(stored, AAD).unwrap_err(), expected, "{stored}");
        }
    }

    #[test]
    fn keys_from_text_and_environment() {
        let text = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
        let expected: Vec<u8> = (0..32).collect();
        let from_text = EncryptionKey::from_base64(text).unwrap();
        assert_eq!(
            from_text.id(),
            EncryptionKey::from_bytes(&expected).unwrap().id()
        );
        assert_eq!(
            from_text.id(),
            EncryptionKey::from_base64(&format!("  {}\n", text.trim_end_matches('=')))
                .unwrap()
                .id()
        );
        assert_eq!(&*from_text.reveal_base64(), text);
        for bad in ["", "AAEC", "not base64 at all!", &BASE64.encode([0u8; 33])] {
            assert_eq!(
                EncryptionKey::from_base64(bad).unwrap_err(),
                EncryptionError::InvalidKey
            );
        }
        assert_eq!(
            EncryptionKey::from_bytes(&[0; 31]).unwrap_err(),
            EncryptionError::InvalidKey
        );

        // Setting a variable is `unsafe` in the 2024 edition (and the crate forbids unsafe
        // code), so read one that is unset and one that is set but is no key.
        assert!(
            EncryptionKey::from_env("HOOKRELAY_ENCRYPTION_UNIT_TEST_UNSET")
                .unwrap()
                .is_none()
        );
        if std::env::var("PATH").is_ok_and(|path| !path.trim().is_empty()) {
            assert_eq!(
                EncryptionKey::from_env("PATH").unwrap_err(),
                EncryptionError::InvalidKey
            );
        }
        let generated = EncryptionKey::generate().unwrap();
        assert_ne!(generated.id(), EncryptionKey::generate().unwrap().id());
        assert_eq!(
            EncryptionKey::from_base64(&generated.reveal_base64())
                .unwrap()
                .id(),
            generated.id()
        );
    }

    #[test]
    fn debug_never_shows_key_material() {
        let key = EncryptionKey::from_bytes(&[0xab; KEY_LEN]).unwrap();
        let shown = format!("{key:?} {:?}", Keyring::new(key.clone()));
        assert!(shown.contains("<redacted>"));
        assert!(shown.contains(&key.id().to_string()));
        assert!(!shown.contains("abab"));
        assert!(!shown.contains(&*key.reveal_base64()));
        assert!(!shown.contains("q6ur")); // base64 of 0xab bytes
        for error in [
            EncryptionError::InvalidKey,
            EncryptionError::KeyRequired,
            EncryptionError::UnknownKey(key.id()),
            EncryptionError::Malformed,
            EncryptionError::UnsupportedVersion,
            EncryptionError::Tampered,
            EncryptionError::RandomUnavailable,
        ] {
            let message = error.to_string();
            assert!(!message.contains("abab") && !message.contains("q6ur"));
            assert_eq!(message, message.to_lowercase(), "{message}");
        }
    }

    #[test]
    fn key_id_is_the_documented_hash() {
        // SHA-256("hookrelay encryption key id v1\0" ‖ 32 zero bytes), first 8 bytes, from
        // Python: hashlib.sha256(b"hookrelay encryption key id v1\0" + bytes(32)).hexdigest()[:16]
        let id = EncryptionKey::from_bytes(&[0; KEY_LEN]).unwrap().id();
        assert_eq!(id.to_string(), "764eabb702c1a36f");
        assert_eq!(format!("{id:?}"), "KeyId(764eabb702c1a36f)");
    }

    fn sample_settings() -> serde_json::Value {
        serde_json::json!({
            "url": "https://example.com/hook",
            "api_key": "tk_live_key",
            "secrets": [
                {"key": "whsec_c2VjcmV0", "until_ms": null},
                {"key": "whsec_b2xk", "until_ms": 5},
            ],
        })
    }

    #[test]
    fn settings_seal_every_secret_field_and_open_back() {
        let keyring = Keyring::new(key(1));
        let mut stored = sample_settings();
        settings::seal_settings(&mut stored, "ep_1", Some(&keyring)).unwrap();
        let text = stored.to_string();
        for secret in ["whsec_", "c2VjcmV0", "b2xk", "tk_live_key"] {
            assert!(!text.contains(secret), "{text}");
        }
        assert_eq!(stored["url"], "https://example.com/hook");
        assert_eq!(stored["secrets"][1]["until_ms"], 5);

        let mut opened = stored.clone();
        settings::open_settings(&mut opened, "ep_1", Some(&keyring)).unwrap();
        assert_eq!(opened, sample_settings());

        // Another endpoint's row, or swapped fields, do not open.
        let mut moved = stored.clone();
        assert_eq!(
            settings::open_settings(&mut moved, "ep_2", Some(&keyring)).unwrap_err(),
            EncryptionError::Tampered
        );
        let mut swapped = stored.clone();
        let first = swapped["secrets"][0]["key"].take();
        swapped["secrets"][0]["key"] = swapped["secrets"][1]["key"].take();
        swapped["secrets"][1]["key"] = first;
        assert_eq!(
            settings::open_settings(&mut swapped, "ep_1", Some(&keyring)).unwrap_err(),
            EncryptionError::Tampered
        );
        // No keyring: sealed fields are refused, never passed on as text.
        assert_eq!(
            settings::open_settings(&mut stored.clone(), "ep_1", None).unwrap_err(),
            EncryptionError::KeyRequired
        );
        // No keyring, nothing sealed: as it was.
        let mut plain = sample_settings();
        settings::seal_settings(&mut plain, "ep_1", None).unwrap();
        settings::open_settings(&mut plain, "ep_1", None).unwrap();
        assert_eq!(plain, sample_settings());
    }

    #[test]
    fn settings_reseal_plain_then_rotate() {
        let old = Keyring::new(key(1));
        let mut stored = sample_settings();
        assert_eq!(
            settings::reseal_settings(&mut stored, "ep_1", None, settings::Reseal::Plain).unwrap(),
            0
        );
        assert_eq!(
            settings::reseal_settings(&mut stored, "ep_1", Some(&old), settings::Reseal::Plain)
                .unwrap(),
            3
        );
        assert_eq!(
            settings::reseal_settings(&mut stored, "ep_1", Some(&old), settings::Reseal::Plain)
                .unwrap(),
            0
        );
        assert_eq!(
            settings::reseal_settings(&mut stored.clone(), "ep_1", None, settings::Reseal::Plain)
                .unwrap_err(),
            EncryptionError::KeyRequired
        );
        assert_eq!(
            settings::reseal_settings(
                &mut stored.clone(),
                "ep_1",
                Some(&Keyring::new(key(2))),
                settings::Reseal::Plain
            )
            .unwrap_err(),
            EncryptionError::UnknownKey(key(1).id())
        );

        let new = Keyring::new(key(2)).with_previous(key(1));
        assert_eq!(
            settings::reseal_settings(&mut stored, "ep_1", Some(&new), settings::Reseal::Plain)
                .unwrap(),
            0
        );
        assert_eq!(
            settings::reseal_settings(
                &mut stored,
                "ep_1",
                Some(&new),
                settings::Reseal::NotCurrent
            )
            .unwrap(),
            3
        );
        assert_eq!(
            settings::reseal_settings(
                &mut stored,
                "ep_1",
                Some(&new),
                settings::Reseal::NotCurrent
            )
            .unwrap(),
            0
        );
        let mut opened = stored.clone();
        settings::open_settings(&mut opened, "ep_1", Some(&Keyring::new(key(2)))).unwrap();
        assert_eq!(opened, sample_settings());
    }

    #[test]
    fn types_are_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<EncryptionKey>();
        check::<Keyring>();
        check::<KeyId>();
        check::<EncryptionError>();
    }
}
