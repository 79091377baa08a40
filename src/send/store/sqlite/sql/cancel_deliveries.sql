-- Ends endpoint ?1's pending deliveries, claimed or not, as cancelled at ?2: no due time,
-- no lease, so a result recorded under an old claim is stale.
UPDATE hookrelay_deliveries
SET status = 'cancelled', dead_reason = NULL, finished_at = ?2, due_at = NULL,
    lease_token = NULL, lease_until = NULL
WHERE endpoint_id = ?1 AND status = 'pending'
