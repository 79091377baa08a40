-- hookrelay SQLite idempotency store (receiving): created if missing.
CREATE TABLE IF NOT EXISTS hookrelay_idempotency (
    key TEXT PRIMARY KEY NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('in_flight', 'done')),
    expires_at INTEGER NOT NULL
);
