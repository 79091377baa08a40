//! Signed-out sessions. A session cookie is signed and carries its own expiry, so it needs
//! no server-side state to open; signing out adds its id here, and a replayed copy of the
//! cookie is refused until it would have expired anyway.
//!
//! The set is in memory, per [`Dashboard::router`](super::Dashboard::router): a restart (or
//! another process behind the same key) forgets it, and a copied cookie then works again
//! until its expiry (`Dashboard::session_ttl`, 12 hours by default). Entries are dropped once
//! their session has expired, so the set holds at most the sessions signed out within one
//! session lifetime.

use std::collections::HashMap;
use std::sync::Mutex;

/// Session ids signed out, each with the unix second its session expires at.
#[derive(Debug, Default)]
pub(crate) struct Revocations {
    revoked: Mutex<HashMap<String, u64>>,
}

impl Revocations {
    /// Refuses the session `id` from now until `expires` (unix seconds); forgets sessions
    /// expired by `now`.
    pub(crate) fn revoke(&self, id: &str, expires: u64, now: u64) {
        let mut revoked = self.revoked.lock().unwrap_or_else(|e| e.into_inner());
        revoked.retain(|_, until| *until > now);
        revoked.insert(id.to_owned(), expires);
    }

    /// Whether the session `id` was signed out.
    pub(crate) fn is_revoked(&self, id: &str) -> bool {
        let revoked = self.revoked.lock().unwrap_or_else(|e| e.into_inner());
        revoked.contains_key(id)
    }
}

#[cfg(test)]
mod tests {
    use super::Revocations;

    #[test]
    fn a_revoked_session_stays_refused_until_it_expires_then_is_forgotten() {
        let set = Revocations::default();
        assert!(!set.is_revoked("a"));
        set.revoke("a", 100, 10);
        assert!(set.is_revoked("a"));
        assert!(!set.is_revoked("b"));
        // Revoking another session after `a` expired forgets `a`.
        set.revoke("b", 300, 150);
        assert!(!set.is_revoked("a"));
        assert!(set.is_revoked("b"));
    }
}
