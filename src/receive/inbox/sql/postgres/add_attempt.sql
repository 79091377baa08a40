-- Logs one run of entry $1 if $5 is still its lease's token (nothing otherwise: stale);
-- `manual` is whether a replay made it due.
INSERT INTO {s}.hookrelay_inbox_attempts (entry_id, at, duration_ms, error, manual)
SELECT id, $2, $3, $4, replayed FROM {s}.hookrelay_inbox
WHERE id = $1 AND token = $5 AND status = 'processing'
