-- Attempt results, ?1 a JSON list, each saved only under its claim's current token.
-- `+d.status`: look each delivery up by id (see `claim_in`).
UPDATE hookrelay_deliveries AS d
SET status = j.status, dead_reason = j.reason, due_at = j.due,
    lease_token = NULL, lease_until = NULL,
    attempts = CASE WHEN j.attempt > 0 THEN MAX(d.attempts, j.attempt) ELSE d.attempts END,
    last_status = CASE WHEN j.attempt > 0 THEN j.http ELSE d.last_status END,
    manual = CASE WHEN j.attempt > 0 THEN 0 ELSE d.manual END,
    charged = d.charged + j.charged, finished_at = j.finished
FROM (SELECT json_extract(value, '$.id') AS id, json_extract(value, '$.token') AS token,
         json_extract(value, '$.status') AS status, json_extract(value, '$.reason') AS reason,
         json_extract(value, '$.due') AS due, json_extract(value, '$.attempt') AS attempt,
         json_extract(value, '$.http') AS http, json_extract(value, '$.charged') AS charged,
         json_extract(value, '$.finished') AS finished
  FROM json_each(?1)) AS j
WHERE d.id = j.id AND d.lease_token = j.token AND +d.status = 'pending'
RETURNING hookrelay_deliveries.id, hookrelay_deliveries.seq, hookrelay_deliveries.endpoint_id
