INSERT INTO payments (id, reservation_id, user_id, amount, balance_after, created_at, method)
VALUES ($1, $2, $3, $4, $5, $6, 'provider')
