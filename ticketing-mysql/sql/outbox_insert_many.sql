-- Several events in the given order (the values list: one row of three parameters per event), so their seqs follow
-- that order.
INSERT INTO outbox (event_id, at, payload) VALUES {values}
