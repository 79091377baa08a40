-- Dead → pending at $2: the entry with id $1, or ($1 NULL) every dead entry matching the
-- filters $3 event type, $4 since, $5 until.
UPDATE {s}.hookrelay_inbox
SET status = 'pending', next_attempt_at = $2, finished_at = NULL, replayed = true
WHERE status = 'dead'
  AND ($1::int8 IS NULL OR id = $1)
  AND ($3::text IS NULL OR event_type = $3)
  AND ($4::int8 IS NULL OR received_at >= $4)
  AND ($5::int8 IS NULL OR received_at < $5)
