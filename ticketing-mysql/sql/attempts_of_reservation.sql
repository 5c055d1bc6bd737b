SELECT body FROM payment_attempts WHERE reservation_id = ? ORDER BY created_at, id
