-- Mark exactly the delivered events published (never a range: a lower seq may commit later),
-- at the database's clock in microseconds. The ids list is padded by repeating its last seq.
UPDATE outbox
SET published_at = CAST(UNIX_TIMESTAMP(NOW(6)) * 1000000 AS SIGNED)
WHERE seq IN ({ids}) AND published_at IS NULL
