-- hookrelay PostgreSQL delivery store, step 1. `{s}` stands for the quoted schema name.
-- Never edit a published step: add one.
CREATE TABLE {s}.hookrelay_endpoints (
    id text PRIMARY KEY,
    status text NOT NULL,
    settings text NOT NULL,
    max_in_flight int8 NOT NULL,
    rate_requests int8,
    rate_interval_ms int8,
    rate_burst int8,
    rate_level int8 NOT NULL DEFAULT 0,
    rate_at int8 NOT NULL DEFAULT 0
);
CREATE TABLE {s}.hookrelay_messages (
    seq bigserial PRIMARY KEY,
    id text NOT NULL UNIQUE,
    event_id text NOT NULL,
    event_type text NOT NULL,
    created_at int8 NOT NULL
);
CREATE TABLE {s}.hookrelay_bodies (
    message_seq int8 NOT NULL,
    form int2 NOT NULL,
    body bytea NOT NULL,
    PRIMARY KEY (message_seq, form)
);
CREATE TABLE {s}.hookrelay_deliveries (
    seq bigserial PRIMARY KEY,
    id text NOT NULL UNIQUE,
    message_seq int8 NOT NULL,
    endpoint_id text NOT NULL,
    form int2 NOT NULL,
    status text NOT NULL,
    dead_reason text,
    attempts int4 NOT NULL DEFAULT 0,
    last_status int4,
    due_at int8,
    lease_token int8,
    lease_until int8,
    kind text NOT NULL DEFAULT 'event',
    manual bool NOT NULL DEFAULT false,
    charged int4 NOT NULL DEFAULT 0,
    order_key text,
    throttle_key text,
    finished_at int8,
    batch_id text
);
CREATE INDEX hookrelay_deliveries_due ON {s}.hookrelay_deliveries (due_at)
    WHERE status = 'pending';
CREATE INDEX hookrelay_deliveries_endpoint_due ON {s}.hookrelay_deliveries (endpoint_id, due_at)
    WHERE status = 'pending';
CREATE INDEX hookrelay_deliveries_leased ON {s}.hookrelay_deliveries (endpoint_id, lease_until)
    WHERE status = 'pending' AND lease_token IS NOT NULL;
CREATE INDEX hookrelay_deliveries_message ON {s}.hookrelay_deliveries (message_seq);
CREATE INDEX hookrelay_deliveries_endpoint ON {s}.hookrelay_deliveries (endpoint_id, seq);
CREATE INDEX hookrelay_deliveries_dead ON {s}.hookrelay_deliveries (seq) WHERE status = 'dead';
CREATE INDEX hookrelay_deliveries_ordered ON {s}.hookrelay_deliveries (endpoint_id, order_key, seq)
    WHERE status = 'pending' AND order_key IS NOT NULL;
CREATE INDEX hookrelay_deliveries_throttled ON {s}.hookrelay_deliveries (endpoint_id, throttle_key)
    WHERE status = 'pending' AND throttle_key IS NOT NULL;
CREATE INDEX hookrelay_deliveries_finished ON {s}.hookrelay_deliveries (finished_at)
    WHERE status <> 'pending';
CREATE TABLE {s}.hookrelay_attempts (
    delivery_seq int8 NOT NULL,
    attempt int4 NOT NULL,
    started_at int8 NOT NULL,
    latency_ms int8 NOT NULL,
    status int4,
    error text,
    response_headers text NOT NULL,
    response_body bytea NOT NULL,
    manual bool NOT NULL DEFAULT false,
    PRIMARY KEY (delivery_seq, attempt)
);
CREATE INDEX hookrelay_attempts_manual ON {s}.hookrelay_attempts (started_at) WHERE manual;
CREATE TABLE {s}.hookrelay_publish_keys (
    key text PRIMARY KEY,
    message_id text NOT NULL,
    expires_at int8 NOT NULL
);
CREATE SEQUENCE {s}.hookrelay_fencing;
