UPDATE {s}.hookrelay_inbox
SET status = $3,
    attempts = attempts + 1,
    next_attempt_at = COALESCE($4, next_attempt_at),
    lease_until = NULL,
    last_error = COALESCE($5, last_error),
    finished_at = $6,
    replayed = false
WHERE id = $1 AND token = $2 AND status = 'processing'
