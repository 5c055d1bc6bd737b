-- Forget up to the limit (second parameter) of outbox events acknowledged before the first,
-- oldest first. Unacknowledged events
-- (published_at NULL) are never touched.
DELETE FROM outbox WHERE published_at < ? ORDER BY published_at LIMIT ?
