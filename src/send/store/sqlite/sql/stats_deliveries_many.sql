-- The deliveries of the endpoints in the JSON array ?1 published in [?2, ?3) (NULL: open),
-- counted by endpoint and status.
SELECT endpoint_id, status, COUNT(*) AS n FROM hookrelay_deliveries
WHERE endpoint_id IN (SELECT value FROM json_each(?1))
  AND (?2 IS NULL OR created_at >= ?2)
  AND (?3 IS NULL OR created_at < ?3)
GROUP BY endpoint_id, status
