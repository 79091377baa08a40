SELECT at, duration_ms, error, manual FROM {s}.hookrelay_inbox_attempts
WHERE entry_id = $1
ORDER BY seq
