SELECT body FROM payment_attempts WHERE id = ?
