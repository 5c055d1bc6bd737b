-- Forget up to the limit (second parameter) of idempotency records made before the first
-- parameter, oldest first.
DELETE FROM idempotency_keys WHERE created_at < ? ORDER BY created_at LIMIT ?
