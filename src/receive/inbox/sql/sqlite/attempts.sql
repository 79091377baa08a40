SELECT at, duration_ms, error, manual FROM hookrelay_inbox_attempts
WHERE entry_id = ?1
ORDER BY rowid
