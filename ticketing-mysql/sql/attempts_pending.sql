SELECT body FROM payment_attempts WHERE pending ORDER BY created_at, id LIMIT ?
