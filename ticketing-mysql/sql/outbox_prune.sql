-- Up to the limit (second parameter) of outbox events acknowledged before the first, oldest
-- first, locked for outbox_prune_delete.sql in the same READ COMMITTED transaction (rows only,
-- no gap locks: commands inserting events never wait). Rows another transaction is writing are
-- skipped, left for the next call. Unacknowledged events (published_at NULL) are never touched.
SELECT seq FROM outbox
WHERE published_at < ?
ORDER BY published_at
LIMIT ?
FOR UPDATE SKIP LOCKED
