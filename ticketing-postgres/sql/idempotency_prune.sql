-- Forget up to $2 idempotency records made before $1, oldest first (rows another transaction
-- is writing are left for the next call).
DELETE FROM idempotency_keys k
USING (
    SELECT user_id, key FROM idempotency_keys
    WHERE created_at < $1
    ORDER BY created_at
    LIMIT $2
    FOR UPDATE SKIP LOCKED
) old
WHERE k.user_id = old.user_id AND k.key = old.key
