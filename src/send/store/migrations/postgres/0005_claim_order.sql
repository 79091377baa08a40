-- hookrelay PostgreSQL delivery store, step 5: a claim reads each endpoint's due deliveries
-- in (due time, sequence) order straight from this index and stops at what the endpoint has
-- room for, instead of reading all of them and sorting (deliveries published together share
-- a due time, so the sequence must be in the index too). It replaces the (endpoint, due time)
-- index, whose look-ups it serves as well. `{s}` stands for the quoted schema name.
CREATE INDEX hookrelay_deliveries_endpoint_due_seq
    ON {s}.hookrelay_deliveries (endpoint_id, due_at, seq) WHERE status = 'pending';
DROP INDEX {s}.hookrelay_deliveries_endpoint_due;
