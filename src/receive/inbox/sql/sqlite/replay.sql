-- Dead → pending at ?2: the entry with id ?1, or (?1 NULL) every dead entry matching the
-- filters ?3 event type, ?4 since, ?5 until.
UPDATE hookrelay_inbox
SET status = 'pending', next_attempt_at = ?2, finished_at = NULL, replayed = 1
WHERE status = 'dead'
  AND (?1 IS NULL OR id = ?1)
  AND (?3 IS NULL OR event_type = ?3)
  AND (?4 IS NULL OR received_at >= ?4)
  AND (?5 IS NULL OR received_at < ?5)
