INSERT INTO payment_attempts (id, reservation_id, user_id, key, pending, created_at, body)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (id) DO UPDATE SET pending = EXCLUDED.pending, body = EXCLUDED.body
