INSERT INTO payments (id, reservation_id, user_id, amount, balance_after, created_at, method)
VALUES (?, ?, ?, ?, ?, ?, 'provider')
