-- An idempotency record read on the pool, outside any command's transaction: the same query as
-- idempotency_get.sql under a text of its own (see reservation_read.sql).
SELECT fingerprint, outcome FROM idempotency_keys WHERE user_id = $1 AND key = $2
