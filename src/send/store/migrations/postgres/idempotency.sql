-- hookrelay PostgreSQL idempotency store (receiving); `{s}` stands for the quoted schema.
CREATE TABLE IF NOT EXISTS {s}.hookrelay_idempotency (
    key text PRIMARY KEY,
    state text NOT NULL CHECK (state IN ('in_flight', 'done')),
    expires_at int8 NOT NULL
);
CREATE INDEX IF NOT EXISTS hookrelay_idempotency_expiry ON {s}.hookrelay_idempotency (expires_at);
