-- $1 statuses (empty: all), $2 event type, $3 since, $4 until, $5 below id, $6 rows.
SELECT id, key, profile, message_id, event_type, signed_at, headers, body, order_key,
    received_at, status, attempts, next_attempt_at, lease_until, last_error, finished_at, token
FROM {s}.hookrelay_inbox
WHERE id < $5
  AND (cardinality($1::text[]) = 0 OR status = ANY($1::text[]))
  AND ($2::text IS NULL OR event_type = $2)
  AND ($3::int8 IS NULL OR received_at >= $3)
  AND ($4::int8 IS NULL OR received_at < $4)
ORDER BY id DESC
LIMIT $6
