-- Attempt results, each saved only under its claim's current token. `{rows}` stands for as
-- many `(?, ?, ?, ?, ?, ?, ?, ?, ?)` as there are results, bound in the order of the
-- columns below (see `record_in`).
-- `+d.status`: look each delivery up by id (see `claim_in`).
UPDATE hookrelay_deliveries AS d
SET status = j.status, dead_reason = j.reason, due_at = j.due,
    lease_token = NULL, lease_until = NULL,
    attempts = CASE WHEN j.attempt > 0 THEN MAX(d.attempts, j.attempt) ELSE d.attempts END,
    last_status = CASE WHEN j.attempt > 0 THEN j.http ELSE d.last_status END,
    manual = CASE WHEN j.attempt > 0 THEN 0 ELSE d.manual END,
    charged = d.charged + j.charged, finished_at = j.finished
FROM (SELECT column1 AS id, column2 AS token, column3 AS status, column4 AS reason,
             column5 AS due, column6 AS attempt, column7 AS http, column8 AS charged,
             column9 AS finished
      FROM (VALUES {rows})) AS j
WHERE d.id = j.id AND d.lease_token = j.token AND +d.status = 'pending'
RETURNING hookrelay_deliveries.id, hookrelay_deliveries.seq, hookrelay_deliveries.endpoint_id
