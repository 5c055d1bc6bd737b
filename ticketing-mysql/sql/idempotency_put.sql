INSERT INTO idempotency_keys (user_id, idem_key, fingerprint, outcome, created_at)
VALUES (?, ?, ?, ?, ?)
