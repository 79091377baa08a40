-- The receiver's inbox (receive::inbox::SqliteInbox): verified deliveries stored before the
-- 2xx, and one row per handler run. Created if missing, like hookrelay_idempotency.
CREATE TABLE IF NOT EXISTS hookrelay_inbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,
    profile TEXT NOT NULL,
    message_id TEXT,
    event_type TEXT,
    signed_at INTEGER,
    headers TEXT NOT NULL,
    body BLOB NOT NULL,
    order_key TEXT,
    received_at INTEGER NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    lease_until INTEGER,
    token INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    finished_at INTEGER,
    replayed INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS hookrelay_inbox_unfinished
    ON hookrelay_inbox (id) WHERE status IN ('pending', 'processing');
CREATE INDEX IF NOT EXISTS hookrelay_inbox_due
    ON hookrelay_inbox ((CASE WHEN status = 'processing' THEN lease_until ELSE next_attempt_at END))
    WHERE status IN ('pending', 'processing');
CREATE INDEX IF NOT EXISTS hookrelay_inbox_order
    ON hookrelay_inbox (order_key, id) WHERE order_key IS NOT NULL AND status IN ('pending', 'processing');
CREATE INDEX IF NOT EXISTS hookrelay_inbox_status ON hookrelay_inbox (status, id);
CREATE TABLE IF NOT EXISTS hookrelay_inbox_attempts (
    entry_id INTEGER NOT NULL,
    at INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL,
    error TEXT,
    manual INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS hookrelay_inbox_attempts_entry ON hookrelay_inbox_attempts (entry_id);
