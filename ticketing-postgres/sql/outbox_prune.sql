-- Forget up to $2 outbox events acknowledged before $1, oldest first. Unacknowledged events
-- are never touched.
DELETE FROM outbox o
USING (
    SELECT seq FROM outbox
    WHERE published_at < $1
    ORDER BY published_at
    LIMIT $2
    FOR UPDATE SKIP LOCKED
) old
WHERE o.seq = old.seq
