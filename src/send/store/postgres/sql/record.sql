-- Records attempt results in one statement (see `DeliveryQueue::record`); `{s}.` stands
-- for the quoted schema.
WITH r AS (
    SELECT * FROM UNNEST($1::text[], $2::int8[], $3::text[], $4::text[], $5::int8[], $6::int4[],
                         $7::int4[], $8::int8[], $9::int8[], $10::text[], $11::text[],
                         $12::bytea[], $13::bool[], $14::int4[], $15::bool[], $16::int8[],
                         $17::text[])
        AS r(id, token, status, reason, due, attempt, http, started, latency, error, headers,
             body, disable, charged, manual, finished, sent)
),
u AS (
    UPDATE {s}.hookrelay_deliveries d
    SET status = r.status, dead_reason = r.reason, due_at = r.due,
        lease_token = NULL, lease_until = NULL,
        attempts = CASE WHEN r.attempt > 0 THEN GREATEST(d.attempts, r.attempt) ELSE d.attempts END,
        last_status = CASE WHEN r.attempt > 0 THEN r.http ELSE d.last_status END,
        manual = CASE WHEN r.attempt > 0 THEN false ELSE d.manual END,
        charged = d.charged + r.charged, finished_at = r.finished
    FROM r
    WHERE d.id = r.id AND d.lease_token = r.token AND d.status = 'pending'
    RETURNING d.id, d.seq, d.endpoint_id
),
logged AS (
    INSERT INTO {s}.hookrelay_attempts
        (delivery_seq, attempt, started_at, latency_ms, status, error, request_headers,
         response_headers, response_body, manual)
    SELECT u.seq, r.attempt, r.started, r.latency, r.http, r.error, r.sent, r.headers, r.body,
           r.manual
    FROM r JOIN u ON u.id = r.id
    WHERE r.attempt > 0
    ON CONFLICT (delivery_seq, attempt) DO UPDATE SET
        started_at = excluded.started_at, latency_ms = excluded.latency_ms,
        status = excluded.status, error = excluded.error,
        request_headers = excluded.request_headers, response_headers = excluded.response_headers, response_body = excluded.response_body,
        manual = excluded.manual
),
disabled AS (
    UPDATE {s}.hookrelay_endpoints e SET status = 'disabled'
    WHERE e.id IN (SELECT u.endpoint_id FROM u JOIN r ON r.id = u.id WHERE r.disable)
)
SELECT id FROM u
