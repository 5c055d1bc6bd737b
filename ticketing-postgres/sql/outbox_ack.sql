-- Mark exactly the delivered events published (never a range: a lower seq may commit later).
UPDATE outbox SET published_at = now() WHERE seq = ANY($1) AND published_at IS NULL
