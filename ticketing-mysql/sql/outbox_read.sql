SELECT seq, payload FROM outbox
WHERE published_at IS NULL AND seq > ?
ORDER BY seq
LIMIT ?
