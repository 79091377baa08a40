-- Due deliveries of active endpoints, not skipped, not blocked by an earlier delivery of their
-- order key; oldest due first. ?1 now, ?2 a JSON list of endpoint ids to skip, ?3 the limit.
-- `INDEXED BY`: see `claim_in`.
SELECT d.seq, d.id, d.endpoint_id, d.attempts, d.charged, d.kind, d.manual,
       m.id AS message_id, m.event_id, m.event_type, m.created_at,
       b.body
FROM hookrelay_deliveries d INDEXED BY hookrelay_deliveries_due
JOIN hookrelay_endpoints e ON e.id = d.endpoint_id AND e.status = 'active'
JOIN hookrelay_messages m ON m.seq = d.message_seq
JOIN hookrelay_bodies b ON b.message_seq = d.message_seq AND b.form = d.form
WHERE d.status = 'pending' AND d.due_at <= ?1
  AND d.endpoint_id NOT IN (SELECT value FROM json_each(?2))
  AND (d.order_key IS NULL OR NOT EXISTS (
       SELECT 1 FROM hookrelay_deliveries o
       WHERE o.endpoint_id = d.endpoint_id AND o.order_key = d.order_key
         AND o.status = 'pending' AND o.seq < d.seq))
ORDER BY d.due_at, d.seq
LIMIT ?3
