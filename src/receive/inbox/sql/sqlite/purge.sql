DELETE FROM hookrelay_inbox WHERE status IN ('done', 'dead') AND received_at < ?1
