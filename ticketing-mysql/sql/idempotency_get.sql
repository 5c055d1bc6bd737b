SELECT fingerprint, outcome FROM idempotency_keys WHERE user_id = ? AND idem_key = ?
