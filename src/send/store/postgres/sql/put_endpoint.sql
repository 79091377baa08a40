-- Inserts or replaces an endpoint, in one statement (see `EndpointRegistry::put_endpoint`);
-- `{s}.` stands for the quoted schema. $1 id, $2 status, $3 settings, $4 max in flight,
-- $5 rate requests, $6 rate interval (ms), $7 rate burst, $8 owner, $9 endpoint key.
-- A key another endpoint of the same owner holds fails on the unique index
-- `hookrelay_endpoints_key` (SQLSTATE 23505). A changed owner moves to the endpoint's
-- pending deliveries; finished ones keep the owner they had.
-- `before` reads the statement's snapshot: the owner as it was (no `FOR UPDATE`, which would
-- skip the row once `put` has changed it; the upsert locks the row anyway).
WITH before AS (
    SELECT owner FROM {s}.hookrelay_endpoints WHERE id = $1
),
put AS (
    INSERT INTO {s}.hookrelay_endpoints AS e
        (id, status, settings, max_in_flight, rate_requests, rate_interval_ms, rate_burst,
         rate_level, rate_at, owner, endpoint_key)
    VALUES ($1, $2, $3, $4, $5, $6, $7, COALESCE($7 * $6, 0), 0, $8, $9)
    ON CONFLICT (id) DO UPDATE SET
        status = excluded.status, settings = excluded.settings,
        max_in_flight = excluded.max_in_flight,
        rate_requests = excluded.rate_requests,
        rate_interval_ms = excluded.rate_interval_ms,
        rate_burst = excluded.rate_burst,
        rate_level = CASE
            WHEN (e.rate_requests, e.rate_interval_ms, e.rate_burst)
                 IS NOT DISTINCT FROM (excluded.rate_requests, excluded.rate_interval_ms,
                                       excluded.rate_burst)
            THEN e.rate_level ELSE excluded.rate_level END,
        rate_at = CASE
            WHEN (e.rate_requests, e.rate_interval_ms, e.rate_burst)
                 IS NOT DISTINCT FROM (excluded.rate_requests, excluded.rate_interval_ms,
                                       excluded.rate_burst)
            THEN e.rate_at ELSE excluded.rate_at END,
        owner = excluded.owner, endpoint_key = excluded.endpoint_key
    RETURNING e.id
),
moved AS (
    UPDATE {s}.hookrelay_deliveries d SET owner = $8
    FROM before
    WHERE d.endpoint_id = $1 AND d.status = 'pending' AND before.owner IS DISTINCT FROM $8
      AND EXISTS (SELECT 1 FROM put)
)
SELECT count(*) FROM put
