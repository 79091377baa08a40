-- Every attempt of endpoint ?1's deliveries that started in [?2, ?3) (NULL: open).
SELECT a.attempt, a.started_at, a.latency_ms, a.status, a.error
FROM hookrelay_deliveries d
JOIN hookrelay_attempts a ON a.delivery_seq = d.seq
WHERE d.endpoint_id = ?1
  AND (?2 IS NULL OR a.started_at >= ?2)
  AND (?3 IS NULL OR a.started_at < ?3)
