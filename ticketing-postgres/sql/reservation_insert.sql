INSERT INTO reservations (id, user_id, option_id, seat_ids, status, amount, expires_at, created_at)
VALUES ($1, $2, $3, $4, 'held', $5, $6, $7)
