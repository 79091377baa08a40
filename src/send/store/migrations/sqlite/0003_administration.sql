-- hookrelay SQLite delivery store, step 3: administration. Endpoint owners and keys; each
-- delivery keeps its endpoint's owner, its event type and publish time (so every log filter
-- has an index); attempts keep the request headers sent; throttle groups are found by index, with
-- the due time of their latest progress delivery.
ALTER TABLE hookrelay_endpoints ADD COLUMN owner TEXT;
ALTER TABLE hookrelay_endpoints ADD COLUMN endpoint_key TEXT;
CREATE UNIQUE INDEX hookrelay_endpoints_key
    ON hookrelay_endpoints (COALESCE(owner, ''), endpoint_key) WHERE endpoint_key IS NOT NULL;
CREATE INDEX hookrelay_endpoints_owner ON hookrelay_endpoints (owner, id);
ALTER TABLE hookrelay_deliveries ADD COLUMN owner TEXT;
ALTER TABLE hookrelay_deliveries ADD COLUMN event_type TEXT NOT NULL DEFAULT '';
ALTER TABLE hookrelay_deliveries ADD COLUMN created_at INTEGER NOT NULL DEFAULT 0;
UPDATE hookrelay_deliveries SET event_type = m.event_type, created_at = m.created_at
    FROM hookrelay_messages m WHERE m.seq = hookrelay_deliveries.message_seq;
CREATE INDEX hookrelay_deliveries_owner ON hookrelay_deliveries (owner, seq);
CREATE INDEX hookrelay_deliveries_status ON hookrelay_deliveries (status, seq);
CREATE INDEX hookrelay_deliveries_type ON hookrelay_deliveries (event_type, seq);
CREATE INDEX hookrelay_deliveries_created ON hookrelay_deliveries (created_at, seq);
CREATE INDEX hookrelay_deliveries_group ON hookrelay_deliveries (endpoint_id, throttle_key, seq)
    WHERE throttle_key IS NOT NULL;
-- The due time the throttle gave a progress delivery at publish (`due_at` moves with claims
-- and retries): the next progress event of its group is due a window after the latest one.
ALTER TABLE hookrelay_deliveries ADD COLUMN throttle_due_at INTEGER;
ALTER TABLE hookrelay_attempts ADD COLUMN request_headers TEXT NOT NULL DEFAULT '[]';
