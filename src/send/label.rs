//! [`Owner`] and [`EndpointKey`]: the caller's own names for who an endpoint belongs to and
//! how to find it again.

use std::fmt;
use std::sync::Arc;

/// A label that is not 1–256 characters without control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidLabel(());

impl fmt::Display for InvalidLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("owners and endpoint keys are 1-256 characters without control characters")
    }
}

impl std::error::Error for InvalidLabel {}

/// Longest owner or endpoint key accepted, in bytes.
pub const MAX_LABEL_LEN: usize = 256;

macro_rules! label {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        ///
        /// 1–256 bytes of UTF-8 without control characters; cheap to clone.
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Arc<str>);

        impl $name {
            /// Checks and wraps a label.
            pub fn new(text: impl AsRef<str>) -> Result<Self, InvalidLabel> {
                let text = text.as_ref();
                if text.is_empty()
                    || text.len() > MAX_LABEL_LEN
                    || text.chars().any(char::is_control)
                {
                    return Err(InvalidLabel(()));
                }
                Ok(Self(text.into()))
            }

            /// The label as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), &*self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = InvalidLabel;
            fn from_str(s: &str) -> Result<Self, InvalidLabel> {
                Self::new(s)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

label!(
    /// Who an endpoint belongs to: your customer, tenant or application id. Every endpoint
    /// list and log query can be limited to one owner, which is how a management API keeps
    /// customers apart; each delivery keeps its endpoint's owner.
    Owner
);
label!(
    /// A caller-chosen key to look an endpoint up by (svix calls it `uid`): unique among one
    /// owner's endpoints (and among endpoints without an owner).
    EndpointKey
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_refuse_empty_long_and_control_text() {
        assert!(Owner::new("").is_err());
        assert!(Owner::new("a\nb").is_err());
        assert!(EndpointKey::new("x".repeat(MAX_LABEL_LEN + 1)).is_err());
        assert_eq!(Owner::new("cust_42").unwrap().as_str(), "cust_42");
        assert_eq!(
            EndpointKey::new("billing hook é").unwrap().to_string(),
            "billing hook é"
        );
    }
}
