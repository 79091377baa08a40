-- Leases up to $3 due entries, oldest first, skipping rows other workers are claiming; an
-- entry waits while an older entry with its order key is unfinished.
WITH due AS (
    SELECT i.id FROM {s}.hookrelay_inbox i
    WHERE i.status IN ('pending', 'processing')
      AND (CASE WHEN i.status = 'processing' THEN i.lease_until ELSE i.next_attempt_at END) <= $1
      AND (i.order_key IS NULL OR NOT EXISTS (
          SELECT 1 FROM {s}.hookrelay_inbox j
          WHERE j.order_key = i.order_key AND j.id < i.id
            AND j.status IN ('pending', 'processing')))
    ORDER BY i.id
    LIMIT $3
    FOR UPDATE SKIP LOCKED
)
UPDATE {s}.hookrelay_inbox e
SET status = 'processing', lease_until = $2, token = e.token + 1
FROM due
WHERE e.id = due.id
RETURNING e.id, e.key, e.profile, e.message_id, e.event_type, e.signed_at, e.headers, e.body,
    e.order_key, e.received_at, e.status, e.attempts, e.next_attempt_at, e.lease_until,
    e.last_error, e.finished_at, e.token
