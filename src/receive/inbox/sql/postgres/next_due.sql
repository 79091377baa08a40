SELECT MIN(CASE WHEN status = 'processing' THEN lease_until ELSE next_attempt_at END)
FROM {s}.hookrelay_inbox
WHERE status IN ('pending', 'processing')
