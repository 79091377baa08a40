-- Leases up to ?3 due entries, oldest first; an entry waits while an older entry with its
-- order key is unfinished.
UPDATE hookrelay_inbox
SET status = 'processing', lease_until = ?2, token = token + 1
WHERE id IN (
    SELECT i.id FROM hookrelay_inbox i
    WHERE i.status IN ('pending', 'processing')
      AND (CASE WHEN i.status = 'processing' THEN i.lease_until ELSE i.next_attempt_at END) <= ?1
      AND (i.order_key IS NULL OR NOT EXISTS (
          SELECT 1 FROM hookrelay_inbox j
          WHERE j.order_key = i.order_key AND j.id < i.id
            AND j.status IN ('pending', 'processing')))
    ORDER BY i.id
    LIMIT ?3
)
RETURNING id, key, profile, message_id, event_type, signed_at, headers, body, order_key,
    received_at, status, attempts, next_attempt_at, lease_until, last_error, finished_at, token
