-- A reservation read on the pool, outside any command's transaction. The same query as
-- reservation_get.sql, under a text of its own: PostgreSQL caches one plan per statement text
-- and connection, and a plan made here (no transaction settings) must not be the one commands
-- reuse inside their transactions (command_begin.sql), nor the other way round.
SELECT id, user_id, option_id, seat_ids, status, amount, expires_at, created_at, payment_id,
       refunded_amount
FROM reservations WHERE id = $1
