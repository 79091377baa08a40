SELECT status, COUNT(*) FROM hookrelay_inbox GROUP BY status
