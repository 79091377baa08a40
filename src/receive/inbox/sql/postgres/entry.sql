SELECT id, key, profile, message_id, event_type, signed_at, headers, body, order_key,
    received_at, status, attempts, next_attempt_at, lease_until, last_error, finished_at, token
FROM {s}.hookrelay_inbox
WHERE id = $1
