-- Endpoints after id ?1 (NULL: from the start), of owner ?2 (NULL: any), in one of the
-- statuses of the JSON array ?3 (empty: any), by id, at most ?4. The caller applies the
-- filters SQL cannot (profile, subscriptions) and reads on while it needs more.
SELECT id, status, settings FROM hookrelay_endpoints
WHERE (?1 IS NULL OR id > ?1)
  AND (?2 IS NULL OR owner = ?2)
  AND (json_array_length(?3) = 0 OR status IN (SELECT value FROM json_each(?3)))
ORDER BY id
LIMIT ?4
