-- The attempts of a batch's reservations (their owners' wallets are locked by the batch).
SELECT reservation_id, body FROM payment_attempts WHERE reservation_id = ANY($1)
ORDER BY created_at, id
