-- Deletes an endpoint and cancels its pending deliveries, claimed or not, in one statement
-- (see `EndpointRegistry::delete_endpoint`); `{s}.` stands for the quoted schema. $1 the
-- endpoint, $2 now. Clearing the lease token makes a result recorded later under an old
-- claim stale. Returns (endpoints deleted, deliveries cancelled).
WITH gone AS (
    DELETE FROM {s}.hookrelay_endpoints WHERE id = $1 RETURNING id
),
cancelled AS (
    UPDATE {s}.hookrelay_deliveries d
    SET status = 'cancelled', finished_at = $2, due_at = NULL,
        lease_token = NULL, lease_until = NULL
    WHERE d.endpoint_id = $1 AND d.status = 'pending' AND EXISTS (SELECT 1 FROM gone)
    RETURNING 1
)
SELECT (SELECT count(*) FROM gone) AS endpoints, (SELECT count(*) FROM cancelled) AS cancelled
