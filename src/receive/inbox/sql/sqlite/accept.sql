-- Followed by one `(…)` of values per entry (next_attempt_at = received_at), then
-- `ON CONFLICT (key) DO NOTHING RETURNING id, key`: one statement per group commit.
INSERT INTO hookrelay_inbox
    (key, profile, message_id, event_type, signed_at, headers, body, order_key, received_at, next_attempt_at)
