INSERT INTO reservations (id, user_id, option_id, seat_ids, seat_count, status, amount,
                          expires_at, created_at)
VALUES (?, ?, ?, ?, ?, 'held', ?, ?, ?)
