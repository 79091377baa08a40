SELECT id FROM hookrelay_inbox WHERE key = ?1
