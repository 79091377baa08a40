DELETE FROM {s}.hookrelay_inbox_attempts
WHERE entry_id IN (SELECT id FROM {s}.hookrelay_inbox
                   WHERE status IN ('done', 'dead') AND received_at < $1)
