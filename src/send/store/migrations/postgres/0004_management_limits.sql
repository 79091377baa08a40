-- hookrelay PostgreSQL delivery store, step 3: the management API's shared state (feature
-- `server`). `{s}` stands for the quoted schema name.
--
-- Rate limits: one fixed window per bucket (a caller and a class of routes), so processes
-- sharing the database share the limits. A bucket names a customer's owner, `admin`, or a
-- digest of a bearer token, never the token itself. Rows stay one per caller and class.
CREATE TABLE {s}.hookrelay_rate_limits (
    bucket text PRIMARY KEY,
    window_start int8 NOT NULL,
    hits int4 NOT NULL
);
-- `Idempotency-Key` replays: `key` is a digest of the principal and the header's value,
-- `fingerprint` one of the request (method, path, body); a finished request keeps its
-- response for 24 h. Expired rows are swept in small batches as new ones finish.
CREATE TABLE {s}.hookrelay_api_replays (
    key text PRIMARY KEY,
    fingerprint bytea NOT NULL,
    expires_at int8 NOT NULL,
    status int4,
    content_type text,
    body bytea
);
CREATE INDEX hookrelay_api_replays_expires ON {s}.hookrelay_api_replays (expires_at);
