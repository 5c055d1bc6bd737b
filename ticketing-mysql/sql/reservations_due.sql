-- Holds due at now (the first parameter), locked so that concurrent sweepers each take different ones.
SELECT id, user_id, option_id, seat_ids, status, amount, expires_at, created_at, payment_id,
       refunded_amount
FROM reservations
WHERE status = 'held' AND expires_at <= ?
ORDER BY expires_at
LIMIT ?
FOR UPDATE SKIP LOCKED
