INSERT INTO payment_attempts (id, reservation_id, user_id, attempt_key, pending, created_at, body)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON DUPLICATE KEY UPDATE pending = VALUES(pending), body = VALUES(body)
