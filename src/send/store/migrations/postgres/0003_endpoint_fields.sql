-- hookrelay PostgreSQL delivery store, step 3: endpoint fields for the management API. `{s}`
-- stands for the quoted schema name. Each endpoint's settings document gains `created_at_ms`
-- (when it was registered) and `mode` (`live` or `test`: which events it receives).
-- Endpoints registered before this step are live, and their registration time is the publish
-- time of their oldest delivery still in the log (a registration can be no later), else the
-- time of this migration. A process not yet upgraded that rewrites an endpoint drops both
-- fields: it reads back live, of unknown age.
UPDATE {s}.hookrelay_endpoints e
SET settings = (
    settings::jsonb || jsonb_build_object(
        'created_at_ms',
        COALESCE(
            (SELECT MIN(d.created_at) FROM {s}.hookrelay_deliveries d
             WHERE d.endpoint_id = e.id AND d.created_at > 0),
            (extract(epoch FROM now()) * 1000)::int8
        ),
        'mode',
        COALESCE(settings::jsonb ->> 'mode', 'live')
    )
)::text
WHERE settings::jsonb -> 'created_at_ms' IS NULL
   OR settings::jsonb -> 'created_at_ms' = 'null'::jsonb;
