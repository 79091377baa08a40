SELECT id FROM {s}.hookrelay_inbox WHERE key = $1
