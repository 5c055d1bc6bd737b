SELECT seq, payload FROM outbox
WHERE seq > $1 AND published_at IS NULL
ORDER BY seq
LIMIT $2
