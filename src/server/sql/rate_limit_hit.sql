-- Counts one request on a bucket's fixed window, in one statement; `{s}.` stands for the
-- quoted schema. $1 bucket, $2 now (unix seconds), $3 the period in seconds, $4 the limit.
-- A closed window (or none) opens at $2 with this request; an open one with room counts
-- it; a full one is left as it is and no row comes back.
INSERT INTO {s}.hookrelay_rate_limits AS r (bucket, window_start, hits)
VALUES ($1, $2, 1)
ON CONFLICT (bucket) DO UPDATE SET
    window_start = CASE WHEN r.window_start + $3 <= $2 THEN $2 ELSE r.window_start END,
    hits = CASE WHEN r.window_start + $3 <= $2 THEN 1 ELSE r.hits + 1 END
WHERE r.window_start + $3 <= $2 OR r.hits < $4
RETURNING hits, window_start
