-- Forget the records idempotency_prune.sql locked (the values list: one (user_id, idem_key)
-- row per record, matched on the primary key).
DELETE FROM idempotency_keys WHERE (user_id, idem_key) IN ({values})
