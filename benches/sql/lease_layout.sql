-- What a cheaper PostgreSQL lease layout would buy (issue #22, part 2): the writes of one
-- store round of 64 claims and 64 results, on the real `hookrelay_deliveries` (15 indexes)
-- and on two narrower layouts, timed inside the server (no client round trips).
--
--   S=hr_exp; (echo "DROP SCHEMA IF EXISTS $S CASCADE; CREATE SCHEMA $S;"
--    for f in src/send/store/migrations/postgres/000*.sql; do sed "s/{s}/$S/g" $f; echo ";"; done
--    cat benches/sql/lease_layout.sql; echo "DROP SCHEMA $S CASCADE;") |
--   psql -q -h 127.0.0.1 -U postgres test
--
-- Results: benches/README.md, "PostgreSQL: what a cheaper lease layout would buy".
SET search_path = hr_exp;
INSERT INTO hookrelay_messages (id, event_id, event_type, created_at) SELECT 'msg_'||g, 'evt_'||g, 'task.created', 1000 FROM generate_series(1,100000) g;
INSERT INTO hookrelay_deliveries (id, message_seq, endpoint_id, form, status, due_at, kind, event_type, created_at)
  SELECT 'dlv_'||g, g, 'ep_1', 0, 'pending', 1000, 'event', 'task.created', 1000 FROM generate_series(1,100000) g;
CREATE TABLE leases (seq int8 PRIMARY KEY, endpoint_id text NOT NULL, token int8 NOT NULL, until int8 NOT NULL);
CREATE INDEX leases_ep ON leases (endpoint_id, until);
VACUUM ANALYZE hookrelay_deliveries;
CREATE TEMP TABLE t(k text, ms float8);
DO $$
DECLARE s timestamptz; i int;
BEGIN
  s := clock_timestamp();
  FOR i IN 0..299 LOOP
    UPDATE hookrelay_deliveries SET lease_token = i+1, lease_until = 5000, due_at = 5000 WHERE seq > i*64 AND seq <= i*64+64;
  END LOOP;
  INSERT INTO t VALUES ('claim UPDATE of 64 deliveries (today)', extract(epoch from clock_timestamp()-s)*1000/300);
  s := clock_timestamp();
  FOR i IN 300..599 LOOP
    INSERT INTO leases SELECT seq, endpoint_id, i+1, 5000 FROM hookrelay_deliveries WHERE seq > i*64 AND seq <= i*64+64;
  END LOOP;
  INSERT INTO t VALUES ('claim INSERT of 64 leases (narrow table)', extract(epoch from clock_timestamp()-s)*1000/300);
  s := clock_timestamp();
  FOR i IN 600..899 LOOP
    PERFORM 1 FROM hookrelay_deliveries WHERE seq > i*64 AND seq <= i*64+64 FOR UPDATE;
  END LOOP;
  INSERT INTO t VALUES ('row locks on 64 deliveries (narrow table claim also takes them)', extract(epoch from clock_timestamp()-s)*1000/300);
  s := clock_timestamp();
  FOR i IN 0..299 LOOP
    UPDATE hookrelay_deliveries SET status='delivered', lease_token = NULL, lease_until = NULL, due_at = NULL, attempts = 1, last_status = 200, finished_at = 6000 WHERE seq > i*64 AND seq <= i*64+64;
  END LOOP;
  INSERT INTO t VALUES ('record UPDATE of 64 deliveries (both layouts)', extract(epoch from clock_timestamp()-s)*1000/300);
  s := clock_timestamp();
  FOR i IN 300..599 LOOP
    DELETE FROM leases WHERE seq > i*64 AND seq <= i*64+64;
  END LOOP;
  INSERT INTO t VALUES ('record DELETE of 64 leases (narrow table)', extract(epoch from clock_timestamp()-s)*1000/300);
END $$;
SELECT k, round(ms::numeric, 3) AS ms_per_64 FROM t;

-- A narrow table holding every mutable column of a delivery, beside the wide log row.
CREATE TABLE state (seq int8 PRIMARY KEY, endpoint_id text NOT NULL, status text NOT NULL, due_at int8, lease_token int8, lease_until int8, attempts int4 NOT NULL DEFAULT 0, last_status int4, finished_at int8);
CREATE INDEX state_claim ON state (endpoint_id, due_at, seq) WHERE status = 'pending';
CREATE INDEX state_leased ON state (endpoint_id, lease_until) WHERE status = 'pending' AND lease_token IS NOT NULL;
CREATE INDEX state_status ON state (status, seq);
INSERT INTO state (seq, endpoint_id, status, due_at) SELECT g, 'ep_1', 'pending', 1000 FROM generate_series(1,100000) g;
VACUUM ANALYZE state;
CREATE TEMP TABLE t2(k text, ms float8);
DO $$
DECLARE s timestamptz; i int;
BEGIN
  s := clock_timestamp();
  FOR i IN 0..299 LOOP
    UPDATE state SET lease_token = i+1, lease_until = 5000, due_at = 5000 WHERE seq > i*64 AND seq <= i*64+64;
  END LOOP;
  INSERT INTO t2 VALUES ('claim UPDATE of 64 rows of a narrow state table (3 indexes)', extract(epoch from clock_timestamp()-s)*1000/300);
  s := clock_timestamp();
  FOR i IN 0..299 LOOP
    UPDATE state SET status='delivered', lease_token = NULL, lease_until = NULL, due_at = NULL, attempts = 1, last_status = 200, finished_at = 6000 WHERE seq > i*64 AND seq <= i*64+64;
  END LOOP;
  INSERT INTO t2 VALUES ('record UPDATE of 64 rows of the narrow state table', extract(epoch from clock_timestamp()-s)*1000/300);
END $$;
SELECT k, round(ms::numeric, 3) AS ms_per_64 FROM t2;
