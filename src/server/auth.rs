//! Who a request speaks for: [`Principal`], the pluggable [`PrincipalResolver`], and the
//! built-in static table of bearer [`Token`]s.

use std::fmt;

use http::request::Parts;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::send::Owner;

/// Who a request speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Principal {
    /// Sees and changes everything, and may publish events.
    Admin,
    /// Sees and changes only this owner's endpoints and their deliveries; endpoints it
    /// creates belong to it.
    Customer(Owner),
}

impl Principal {
    /// The owner every listing and lookup is limited to (`None` for an admin).
    pub fn owner(&self) -> Option<&Owner> {
        match self {
            Self::Admin => None,
            Self::Customer(owner) => Some(owner),
        }
    }
}

/// Decides who a request speaks for, from its method, URI and headers; `None` answers 401.
///
/// The built-in [`TokenTable`] reads `Authorization: Bearer TOKEN`; an app with its own
/// authentication (sessions, JWTs) implements this instead.
///
/// ```
/// use hookrelay::send::Owner;
/// use hookrelay::server::{Principal, PrincipalResolver};
///
/// /// Trusts a header a gateway in front of the app has already checked.
/// struct FromGateway;
///
/// impl PrincipalResolver for FromGateway {
///     fn resolve(&self, parts: &http::request::Parts) -> Option<Principal> {
///         let customer = parts.headers.get("x-customer")?.to_str().ok()?;
///         Owner::new(customer).ok().map(Principal::Customer)
///     }
/// }
/// ```
pub trait PrincipalResolver: Send + Sync + 'static {
    /// The principal of this request, or `None` when it has none.
    fn resolve(&self, parts: &Parts) -> Option<Principal>;
}

/// A bearer token (redacted in `Debug`).
#[derive(Clone)]
pub struct Token(String);

/// Why a text is not a [`Token`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidToken(());

impl fmt::Display for InvalidToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a token is 1 to 4096 visible ascii characters")
    }
}

impl std::error::Error for InvalidToken {}

impl Token {
    /// A token: 1 to 4096 visible ASCII characters (what a header can carry after `Bearer `).
    pub fn new(text: impl Into<String>) -> Result<Self, InvalidToken> {
        let text = text.into();
        let visible = text.bytes().all(|b| b.is_ascii_graphic());
        if text.is_empty() || text.len() > 4096 || !visible {
            return Err(InvalidToken(()));
        }
        Ok(Self(text))
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(..)")
    }
}

/// A fixed table of bearer tokens, each speaking for one principal, compared in constant
/// time (by their SHA-256 digests, every entry looked at).
#[derive(Debug, Clone, Default)]
pub struct TokenTable {
    entries: Vec<([u8; 32], Principal)>,
}

impl TokenTable {
    /// An empty table (it lets nobody in).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a token.
    pub fn insert(&mut self, token: Token, principal: Principal) {
        self.entries.push((digest(token.0.as_bytes()), principal));
    }

    /// The principal of a presented token.
    pub fn lookup(&self, presented: &[u8]) -> Option<Principal> {
        let presented = digest(presented);
        let mut found = None;
        for (known, principal) in &self.entries {
            if bool::from(known.ct_eq(&presented)) && found.is_none() {
                found = Some(principal.clone());
            }
        }
        found
    }
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// The token of an `Authorization: Bearer TOKEN` header.
pub(crate) fn bearer(parts: &Parts) -> Option<&[u8]> {
    let value = parts.headers.get(http::header::AUTHORIZATION)?.as_bytes();
    let (scheme, token) = value.split_at_checked(7)?;
    (scheme.eq_ignore_ascii_case(b"bearer ") && !token.is_empty()).then_some(token)
}

impl PrincipalResolver for TokenTable {
    fn resolve(&self, parts: &Parts) -> Option<Principal> {
        self.lookup(bearer(parts)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(authorization: Option<&str>) -> Parts {
        let mut request = http::Request::builder();
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        request.body(()).unwrap().into_parts().0
    }

    #[test]
    fn the_table_finds_exactly_its_tokens() {
        let mut table = TokenTable::new();
        table.insert(Token::new("admin-t").unwrap(), Principal::Admin);
        let acme = Owner::new("acme").unwrap();
        table.insert(
            Token::new("acme-t").unwrap(),
            Principal::Customer(acme.clone()),
        );
        assert_eq!(
            table.resolve(&parts(Some("Bearer admin-t"))),
            Some(Principal::Admin)
        );
        assert_eq!(
            table.resolve(&parts(Some("bearer acme-t"))),
            Some(Principal::Customer(acme))
        );
        for wrong in [
            None,
            Some("Bearer "),
            Some("Bearer admin"),
            Some("Basic admin-t"),
            Some("admin-t"),
        ] {
            assert_eq!(table.resolve(&parts(wrong)), None, "{wrong:?}");
        }
    }

    #[test]
    fn tokens_are_visible_ascii() {
        assert!(Token::new("").is_err());
        assert!(Token::new("a b").is_err());
        assert!(Token::new("é").is_err());
        assert_eq!(format!("{:?}", Token::new("s3cret").unwrap()), "Token(..)");
    }
}
