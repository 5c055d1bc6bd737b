SELECT k.user_id, k.key, k.fingerprint, k.outcome
FROM idempotency_keys AS k
JOIN unnest($1::BIGINT[], $2::TEXT[]) AS v(user_id, key)
  ON k.user_id = v.user_id AND k.key = v.key
