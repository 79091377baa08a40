-- The claim, in one statement (see `PostgresStore`'s docs, "Claims across processes").
-- `{s}.` stands for the quoted schema. $1 now, $2 limit, $3 lease end, $4 endpoints to skip.
WITH eps AS MATERIALIZED (
    SELECT e.id, e.max_in_flight, e.rate_interval_ms,
           CASE WHEN e.rate_requests IS NULL THEN NULL
                ELSE LEAST(e.rate_burst * e.rate_interval_ms,
                           e.rate_level + GREATEST($1 - e.rate_at, 0) * e.rate_requests)
           END AS level
    FROM {s}.hookrelay_endpoints e
    WHERE e.status = 'active' AND NOT (e.id = ANY($4))
      AND EXISTS (SELECT 1 FROM {s}.hookrelay_deliveries d
                  WHERE d.endpoint_id = e.id AND d.status = 'pending' AND d.due_at <= $1)
    FOR NO KEY UPDATE OF e SKIP LOCKED
),
room AS MATERIALIZED (
    SELECT eps.id, eps.level, eps.rate_interval_ms,
           LEAST(eps.max_in_flight
                   - (SELECT count(*) FROM {s}.hookrelay_deliveries d
                      WHERE d.endpoint_id = eps.id AND d.status = 'pending'
                        AND d.lease_token IS NOT NULL AND d.lease_until > $1),
                 COALESCE(eps.level / eps.rate_interval_ms, $2)) AS n
    FROM eps
),
cand AS MATERIALIZED (
    -- Each endpoint's oldest due, read in order from its index and no further than it has
    -- room for (so no endpoint's whole backlog is read and sorted); the oldest of those.
    SELECT c.seq, c.endpoint_id, c.due_at
    FROM room,
    LATERAL (
        SELECT d.seq, d.endpoint_id, d.due_at FROM {s}.hookrelay_deliveries d
        WHERE d.endpoint_id = room.id AND d.status = 'pending' AND d.due_at <= $1
          AND (d.order_key IS NULL OR NOT EXISTS (
               SELECT 1 FROM {s}.hookrelay_deliveries o
               WHERE o.endpoint_id = d.endpoint_id AND o.order_key = d.order_key
                 AND o.status = 'pending' AND o.seq < d.seq))
        ORDER BY d.due_at, d.seq
        LIMIT GREATEST(LEAST(room.n, $2), 0)
        FOR UPDATE OF d SKIP LOCKED
    ) c
    WHERE room.n > 0
    ORDER BY c.due_at, c.seq
    LIMIT $2
),
picked AS (
    SELECT c.seq FROM (
        SELECT cand.seq, cand.endpoint_id,
               row_number() OVER (PARTITION BY cand.endpoint_id ORDER BY cand.due_at, cand.seq) AS rn
        FROM cand
    ) c
    JOIN room ON room.id = c.endpoint_id
    WHERE c.rn <= room.n
),
tok AS MATERIALIZED (SELECT nextval('{s}.hookrelay_fencing') AS t),
upd AS (
    UPDATE {s}.hookrelay_deliveries d
    SET lease_token = (SELECT t FROM tok), lease_until = $3, due_at = $3
    FROM picked WHERE d.seq = picked.seq
    RETURNING d.seq, d.id, d.endpoint_id, d.attempts, d.charged, d.kind, d.manual, d.message_seq,
              d.form, d.lease_token, d.due_at
),
spent AS (
    UPDATE {s}.hookrelay_endpoints e
    SET rate_level = room.level - used.n * room.rate_interval_ms, rate_at = GREATEST($1, e.rate_at)
    FROM room JOIN (SELECT endpoint_id, count(*) AS n FROM upd GROUP BY endpoint_id) used
         ON used.endpoint_id = room.id
    WHERE e.id = room.id AND room.level IS NOT NULL
)
SELECT upd.id, upd.endpoint_id, upd.attempts, upd.charged, upd.kind, upd.manual, upd.lease_token,
       m.id AS message_id, m.event_id,
       m.event_type, m.created_at, b.body
FROM upd
JOIN {s}.hookrelay_messages m ON m.seq = upd.message_seq
JOIN {s}.hookrelay_bodies b ON b.message_seq = upd.message_seq AND b.form = upd.form
ORDER BY upd.seq
