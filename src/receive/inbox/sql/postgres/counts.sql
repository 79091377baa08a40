SELECT status, COUNT(*) FROM {s}.hookrelay_inbox GROUP BY status
