INSERT INTO idempotency_keys (user_id, key, fingerprint, outcome, created_at)
VALUES ($1, $2, $3, $4, $5)
