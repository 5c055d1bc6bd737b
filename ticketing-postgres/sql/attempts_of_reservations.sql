-- The attempts of a batch's reservations (their owners' per-user locks are taken by the batch).
SELECT reservation_id, body FROM payment_attempts WHERE reservation_id = ANY($1)
ORDER BY created_at, id
