//! Customer portal links: a signed, expiring URL that opens the dashboard limited to one
//! owner's endpoints and deliveries.

use std::fmt;
use std::time::Duration;

use crate::Secret;
use crate::retry::UnixMillis;
use crate::send::Owner;

use super::html::query_value;

/// Makes customer portal links for a [`Dashboard`](super::Dashboard): signed with its key
/// (HMAC-SHA256), each for one [`Owner`], valid until it expires. Opening one signs the
/// browser in as that customer only.
///
/// ```
/// use std::time::Duration;
/// use hookrelay::Secret;
/// use hookrelay::send::{MemoryStore, Owner, Sender};
/// use hookrelay::server::Dashboard;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dashboard = Dashboard::new(Sender::new(MemoryStore::new()))
///     .key(Secret::from_raw("a long random server key, kept out of the repository")?);
/// let links = dashboard.portal_links();
/// let link = links.link(&Owner::new("acme")?, Duration::from_secs(3600));
/// assert!(link.starts_with("/dashboard/portal?owner=acme&expires="));
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct PortalLinks {
    pub(crate) key: Secret,
    pub(crate) base: String,
}

impl fmt::Debug for PortalLinks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PortalLinks")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

/// Why a portal link does not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LinkRefused {
    /// A field is missing or malformed.
    Malformed,
    /// The signature does not hold.
    Forged,
    /// It expired.
    Expired,
}

fn tag(key: &Secret, owner: &str, expires: &str) -> crate::MacTag {
    key.mac(&[b"portal\0", owner.as_bytes(), b"\0", expires.as_bytes()])
}

impl PortalLinks {
    /// A link (path and query, to append to the dashboard's origin) that signs its visitor in
    /// as `owner` until `valid_for` from now has passed.
    pub fn link(&self, owner: &Owner, valid_for: Duration) -> String {
        let expires = (UnixMillis::now().as_millis() / 1000)
            .saturating_add(valid_for.as_secs())
            .to_string();
        let sig = tag(&self.key, owner.as_str(), &expires).to_hex();
        format!(
            "{}/portal?owner={}&expires={expires}&sig={sig}",
            self.base,
            query_value(owner.as_str())
        )
    }
}

/// The owner a link's `owner`, `expires` and `sig` fields stand for.
pub(crate) fn open(
    key: &Secret,
    owner: Option<&str>,
    expires: Option<&str>,
    sig: Option<&str>,
) -> Result<Owner, LinkRefused> {
    let (Some(owner), Some(expires), Some(sig)) = (owner, expires, sig) else {
        return Err(LinkRefused::Malformed);
    };
    let sig = hex::decode(sig).map_err(|_| LinkRefused::Malformed)?;
    if !tag(key, owner, expires).matches(&sig) {
        return Err(LinkRefused::Forged);
    }
    let expires: u64 = expires.parse().map_err(|_| LinkRefused::Malformed)?;
    if expires <= UnixMillis::now().as_millis() / 1000 {
        return Err(LinkRefused::Expired);
    }
    Owner::new(owner).map_err(|_| LinkRefused::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(link: &str) -> Vec<(String, String)> {
        let query = link.split_once('?').unwrap().1;
        url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect()
    }

    fn get<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
        fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn links_open_for_their_owner_until_they_expire() {
        let links = PortalLinks {
            key: Secret::from_raw("k").unwrap(),
            base: "/d".into(),
        };
        let acme = Owner::new("acme & co").unwrap();
        let f = fields(&links.link(&acme, Duration::from_secs(60)));
        let open_with = |owner: &str, expires: &str| {
            open(&links.key, Some(owner), Some(expires), get(&f, "sig"))
        };
        let expires = get(&f, "expires").unwrap();
        assert_eq!(open_with("acme & co", expires), Ok(acme.clone()));
        assert_eq!(open_with("globex", expires), Err(LinkRefused::Forged));
        assert_eq!(
            open_with("acme & co", "99999999999"),
            Err(LinkRefused::Forged)
        );
        let stale = fields(&links.link(&acme, Duration::ZERO));
        assert_eq!(
            open(
                &links.key,
                get(&stale, "owner"),
                get(&stale, "expires"),
                get(&stale, "sig")
            ),
            Err(LinkRefused::Expired)
        );
        assert_eq!(
            open(&links.key, None, None, None),
            Err(LinkRefused::Malformed)
        );
    }
}
