-- Several events in the given order, so their seqs follow that order.
INSERT INTO outbox (event_id, at, payload)
SELECT v.event_id, v.at, v.payload::JSONB
FROM unnest($1::UUID[], $2::TIMESTAMPTZ[], $3::TEXT[]) WITH ORDINALITY AS v(event_id, at, payload, n)
ORDER BY v.n
