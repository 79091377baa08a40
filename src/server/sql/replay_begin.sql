-- Holds an `Idempotency-Key` in flight unless a live record has it; `{s}.` stands for the
-- quoted schema. $1 key, $2 fingerprint, $3 in flight until (unix seconds), $4 now.
-- A row comes back when this request holds the key.
INSERT INTO {s}.hookrelay_api_replays AS r (key, fingerprint, expires_at)
VALUES ($1, $2, $3)
ON CONFLICT (key) DO UPDATE SET
    fingerprint = excluded.fingerprint, expires_at = excluded.expires_at,
    status = NULL, content_type = NULL, body = NULL
WHERE r.expires_at <= $4
RETURNING 1
