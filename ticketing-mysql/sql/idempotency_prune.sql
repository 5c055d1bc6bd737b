-- Up to the limit (second parameter) of idempotency records made before the first parameter,
-- oldest first, locked for idempotency_prune_delete.sql in the same READ COMMITTED transaction
-- (rows only, no gap locks: commands recording keys never wait). Rows another transaction is
-- writing are skipped, left for the next call.
SELECT user_id, idem_key FROM idempotency_keys
WHERE created_at < ?
ORDER BY created_at
LIMIT ?
FOR UPDATE SKIP LOCKED
