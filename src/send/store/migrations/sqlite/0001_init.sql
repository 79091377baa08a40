-- hookrelay SQLite delivery store, step 1: endpoints, messages, bodies, deliveries, attempts,
-- publish keys, the fencing-token counter. Never edit a published step: add one.
CREATE TABLE hookrelay_endpoints (
    id TEXT PRIMARY KEY NOT NULL,
    status TEXT NOT NULL,
    settings TEXT NOT NULL
);
CREATE TABLE hookrelay_messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE hookrelay_bodies (
    message_seq INTEGER NOT NULL,
    form INTEGER NOT NULL,
    body BLOB NOT NULL,
    PRIMARY KEY (message_seq, form)
) WITHOUT ROWID;
CREATE TABLE hookrelay_deliveries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    message_seq INTEGER NOT NULL,
    endpoint_id TEXT NOT NULL,
    form INTEGER NOT NULL,
    status TEXT NOT NULL,
    dead_reason TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_status INTEGER,
    due_at INTEGER,
    lease_token INTEGER,
    lease_until INTEGER
);
CREATE INDEX hookrelay_deliveries_due ON hookrelay_deliveries (due_at) WHERE status = 'pending';
CREATE INDEX hookrelay_deliveries_message ON hookrelay_deliveries (message_seq);
CREATE INDEX hookrelay_deliveries_endpoint ON hookrelay_deliveries (endpoint_id, seq);
CREATE INDEX hookrelay_deliveries_dead ON hookrelay_deliveries (seq) WHERE status = 'dead';
CREATE TABLE hookrelay_attempts (
    delivery_seq INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    started_at INTEGER NOT NULL,
    latency_ms INTEGER NOT NULL,
    status INTEGER,
    error TEXT,
    response_headers TEXT NOT NULL,
    response_body BLOB NOT NULL,
    PRIMARY KEY (delivery_seq, attempt)
) WITHOUT ROWID;
CREATE TABLE hookrelay_publish_keys (
    key TEXT PRIMARY KEY NOT NULL,
    message_id TEXT NOT NULL,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE hookrelay_counters (
    name TEXT PRIMARY KEY NOT NULL,
    value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO hookrelay_counters (name, value) VALUES ('fencing_token', 0);
