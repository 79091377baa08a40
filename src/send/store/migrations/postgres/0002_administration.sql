-- hookrelay PostgreSQL delivery store, step 2: administration. `{s}` stands for the quoted
-- schema name. Endpoint owners and keys; each delivery keeps its endpoint's owner, its event
-- type and publish time (so every log filter has an index); attempts keep the request
-- headers sent; throttle groups are found by index, with the due time of their latest
-- progress delivery.
--
-- The log is paged by keyset on `seq`: each filter's index ends in `seq`, so one filter with
-- a single value reads its index backwards (or forwards) from the cursor and stops after a
-- page. `event_type` compares bytewise (`COLLATE "C"`) so that a type prefix is a plain range.
-- The new columns keep their defaults: a process not yet upgraded can still publish while
-- others migrate (its deliveries show up with an empty type and time 0 until purged).
ALTER TABLE {s}.hookrelay_endpoints ADD COLUMN owner text;
ALTER TABLE {s}.hookrelay_endpoints ADD COLUMN endpoint_key text;
CREATE UNIQUE INDEX hookrelay_endpoints_key
    ON {s}.hookrelay_endpoints (COALESCE(owner, ''), endpoint_key) WHERE endpoint_key IS NOT NULL;
CREATE INDEX hookrelay_endpoints_owner ON {s}.hookrelay_endpoints (owner, id);
ALTER TABLE {s}.hookrelay_deliveries ADD COLUMN owner text;
ALTER TABLE {s}.hookrelay_deliveries ADD COLUMN event_type text COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE {s}.hookrelay_deliveries ADD COLUMN created_at int8 NOT NULL DEFAULT 0;
UPDATE {s}.hookrelay_deliveries d SET event_type = m.event_type, created_at = m.created_at
    FROM {s}.hookrelay_messages m WHERE m.seq = d.message_seq;
CREATE INDEX hookrelay_deliveries_owner ON {s}.hookrelay_deliveries (owner, seq)
    WHERE owner IS NOT NULL;
-- Serves every status, dead letters included: the step-1 partial index on dead rows goes.
CREATE INDEX hookrelay_deliveries_status ON {s}.hookrelay_deliveries (status, seq);
DROP INDEX {s}.hookrelay_deliveries_dead;
CREATE INDEX hookrelay_deliveries_type ON {s}.hookrelay_deliveries (event_type, seq);
CREATE INDEX hookrelay_deliveries_created ON {s}.hookrelay_deliveries (created_at, seq);
CREATE INDEX hookrelay_deliveries_group ON {s}.hookrelay_deliveries (endpoint_id, throttle_key, seq)
    WHERE throttle_key IS NOT NULL;
-- The due time the throttle gave a progress delivery at publish (`due_at` moves with claims
-- and retries): the next progress event of its group is due a window after the latest one.
ALTER TABLE {s}.hookrelay_deliveries ADD COLUMN throttle_due_at int8;
ALTER TABLE {s}.hookrelay_attempts ADD COLUMN request_headers text NOT NULL DEFAULT '[]';
