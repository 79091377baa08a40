-- The deliveries in a series' scope (`{scope}`: a condition on `d` with ?1) published in
-- [?2, ?3) (NULL: open): when, and their status.
SELECT d.created_at, d.status FROM hookrelay_deliveries d
WHERE {scope}
  AND (?2 IS NULL OR d.created_at >= ?2)
  AND (?3 IS NULL OR d.created_at < ?3)
