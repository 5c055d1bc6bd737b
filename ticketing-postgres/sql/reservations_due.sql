-- Holds due at $1, locked so that concurrent sweepers each take different ones.
SELECT id, user_id, option_id, seat_ids, status, amount, expires_at, created_at, payment_id,
       refunded_amount
FROM reservations
WHERE status = 'held' AND expires_at <= $1
ORDER BY expires_at
LIMIT $2
FOR UPDATE SKIP LOCKED
