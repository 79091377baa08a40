-- hookrelay SQLite delivery store, step 4: endpoint fields for the management API. Each
-- endpoint's settings document gains `created_at_ms` (when it was registered) and `mode`
-- (`live` or `test`: which events it receives). Endpoints registered before this step are
-- live, and their registration time is the publish time of their oldest delivery still in
-- the log (a registration can be no later), else the time of this migration.
UPDATE hookrelay_endpoints
SET settings = json_set(
    settings,
    '$.created_at_ms',
    COALESCE(
        (SELECT MIN(d.created_at) FROM hookrelay_deliveries d
         WHERE d.endpoint_id = hookrelay_endpoints.id AND d.created_at > 0),
        CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)
    ),
    '$.mode',
    COALESCE(json_extract(settings, '$.mode'), 'live')
)
WHERE json_extract(settings, '$.created_at_ms') IS NULL;
