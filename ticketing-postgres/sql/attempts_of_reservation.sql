SELECT body FROM payment_attempts WHERE reservation_id = $1 ORDER BY created_at, id
