-- Ledger entries in the order the batch made them.
INSERT INTO wallet_ledger (user_id, kind, amount, reference, at)
SELECT v.user_id, v.kind, v.amount, v.reference, v.at
FROM unnest($1::BIGINT[], $2::TEXT[], $3::BIGINT[], $4::UUID[], $5::TIMESTAMPTZ[])
     WITH ORDINALITY AS v(user_id, kind, amount, reference, at, n)
ORDER BY v.n
