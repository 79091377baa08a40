//! Values of the webhook registration APIs: the endpoint URL and the signing secret as they
//! appear in request bodies.

use std::fmt;

use super::wire::string_newtype;

string_newtype!(
    /// A receiver's URL as registered, e.g. `https://your-server.com/webhook`. Kept as text;
    /// the sender validates it (HTTPS, address policy) before delivering.
    EndpointUrl
);

/// A signing secret sent in a registration body (`"secret": "…"`).
///
/// Its `Debug` is redacted, its `PartialEq` compares in constant time (registration bodies
/// are compared as whole values), and it serialises as the plain string only because the
/// registration API requires it in the body. Turn it into a signing key with
/// [`to_secret`](Self::to_secret).
#[derive(Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct RegistrationSecret(String);

impl RegistrationSecret {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        RegistrationSecret(secret.into())
    }

    /// The secret text. Do not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The HMAC key these systems derive from it: the text's bytes, verbatim.
    pub fn to_secret(&self) -> Result<crate::Secret, crate::SecretError> {
        crate::Secret::from_raw(&self.0)
    }
}

impl fmt::Debug for RegistrationSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RegistrationSecret(<redacted>)")
    }
}

impl PartialEq for RegistrationSecret {
    /// Constant-time comparison, so that tests can compare parsed bodies.
    fn eq(&self, other: &Self) -> bool {
        use subtle::ConstantTimeEq as _;
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}

impl From<&str> for RegistrationSecret {
    fn from(s: &str) -> Self {
        RegistrationSecret(s.to_owned())
    }
}
