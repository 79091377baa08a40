DELETE FROM hookrelay_inbox_attempts
WHERE entry_id IN (SELECT id FROM hookrelay_inbox
                   WHERE status IN ('done', 'dead') AND received_at < ?1)
