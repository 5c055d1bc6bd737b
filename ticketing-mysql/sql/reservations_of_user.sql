SELECT id, user_id, option_id, seat_ids, status, amount, expires_at, created_at, payment_id,
       refunded_amount
FROM reservations WHERE user_id = ? ORDER BY created_at DESC, id DESC
