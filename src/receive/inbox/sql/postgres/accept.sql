INSERT INTO {s}.hookrelay_inbox
    (key, profile, message_id, event_type, signed_at, headers, body, order_key, received_at, next_attempt_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)
ON CONFLICT (key) DO NOTHING
RETURNING id
