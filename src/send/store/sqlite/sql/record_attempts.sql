-- The attempt log of recorded results. `{rows}` stands for as many
-- `(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)` as there are attempts, bound in the order of the columns
-- (see `record_in`).
INSERT OR REPLACE INTO hookrelay_attempts
    (delivery_seq, attempt, started_at, latency_ms, status, error, request_headers,
     response_headers, response_body, manual)
VALUES {rows}
