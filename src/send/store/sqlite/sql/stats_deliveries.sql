-- Endpoint ?1's deliveries published in [?2, ?3) (NULL: open), counted by status.
SELECT status, COUNT(*) AS n FROM hookrelay_deliveries
WHERE endpoint_id = ?1
  AND (?2 IS NULL OR created_at >= ?2)
  AND (?3 IS NULL OR created_at < ?3)
GROUP BY status
