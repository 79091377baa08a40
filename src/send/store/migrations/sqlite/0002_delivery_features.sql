-- hookrelay SQLite delivery store, step 2: delivery kinds, manual retries, charged attempts,
-- ordering and throttle keys, finish times, batches.
ALTER TABLE hookrelay_deliveries ADD COLUMN kind TEXT NOT NULL DEFAULT 'event';
ALTER TABLE hookrelay_deliveries ADD COLUMN manual INTEGER NOT NULL DEFAULT 0;
ALTER TABLE hookrelay_deliveries ADD COLUMN charged INTEGER NOT NULL DEFAULT 0;
ALTER TABLE hookrelay_deliveries ADD COLUMN order_key TEXT;
ALTER TABLE hookrelay_deliveries ADD COLUMN throttle_key TEXT;
ALTER TABLE hookrelay_deliveries ADD COLUMN finished_at INTEGER;
ALTER TABLE hookrelay_deliveries ADD COLUMN batch_id TEXT;
ALTER TABLE hookrelay_attempts ADD COLUMN manual INTEGER NOT NULL DEFAULT 0;
UPDATE hookrelay_deliveries SET charged = attempts;
UPDATE hookrelay_deliveries SET status = 'expired', dead_reason = NULL
    WHERE status = 'dead' AND dead_reason = 'expired';
UPDATE hookrelay_deliveries SET finished_at = COALESCE(
    (SELECT MAX(a.started_at + a.latency_ms) FROM hookrelay_attempts a
     WHERE a.delivery_seq = hookrelay_deliveries.seq), 0)
    WHERE status != 'pending';
CREATE INDEX hookrelay_deliveries_ordered ON hookrelay_deliveries (endpoint_id, order_key, seq)
    WHERE status = 'pending' AND order_key IS NOT NULL;
CREATE INDEX hookrelay_deliveries_throttled ON hookrelay_deliveries (endpoint_id, throttle_key)
    WHERE status = 'pending' AND throttle_key IS NOT NULL;
CREATE INDEX hookrelay_deliveries_finished ON hookrelay_deliveries (finished_at)
    WHERE status != 'pending';
CREATE INDEX hookrelay_attempts_manual ON hookrelay_attempts (started_at) WHERE manual = 1;
