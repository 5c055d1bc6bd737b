INSERT INTO idempotency_keys (user_id, key, fingerprint, outcome, created_at)
SELECT v.user_id, v.key, v.fingerprint, v.outcome::JSONB, v.created_at
FROM unnest($1::BIGINT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::TIMESTAMPTZ[])
     AS v(user_id, key, fingerprint, outcome, created_at)
