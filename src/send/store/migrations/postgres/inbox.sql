-- hookrelay PostgreSQL inbox (receiving); `{s}` stands for the quoted schema.
CREATE TABLE IF NOT EXISTS {s}.hookrelay_inbox (
    id bigserial PRIMARY KEY,
    key text NOT NULL UNIQUE,
    profile text NOT NULL,
    message_id text,
    event_type text,
    signed_at int8,
    headers text NOT NULL,
    body bytea NOT NULL,
    order_key text,
    received_at int8 NOT NULL,
    status text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'processing', 'done', 'dead')),
    attempts int8 NOT NULL DEFAULT 0,
    next_attempt_at int8 NOT NULL,
    lease_until int8,
    token int8 NOT NULL DEFAULT 0,
    last_error text,
    finished_at int8,
    replayed boolean NOT NULL DEFAULT false
);
CREATE INDEX IF NOT EXISTS hookrelay_inbox_unfinished
    ON {s}.hookrelay_inbox (id) WHERE status IN ('pending', 'processing');
CREATE INDEX IF NOT EXISTS hookrelay_inbox_due
    ON {s}.hookrelay_inbox ((CASE WHEN status = 'processing' THEN lease_until ELSE next_attempt_at END))
    WHERE status IN ('pending', 'processing');
CREATE INDEX IF NOT EXISTS hookrelay_inbox_order
    ON {s}.hookrelay_inbox (order_key, id)
    WHERE order_key IS NOT NULL AND status IN ('pending', 'processing');
CREATE INDEX IF NOT EXISTS hookrelay_inbox_status ON {s}.hookrelay_inbox (status, id);
CREATE TABLE IF NOT EXISTS {s}.hookrelay_inbox_attempts (
    entry_id int8 NOT NULL,
    at int8 NOT NULL,
    duration_ms int8 NOT NULL,
    error text,
    manual boolean NOT NULL DEFAULT false,
    seq bigserial
);
CREATE INDEX IF NOT EXISTS hookrelay_inbox_attempts_entry ON {s}.hookrelay_inbox_attempts (entry_id, seq);
