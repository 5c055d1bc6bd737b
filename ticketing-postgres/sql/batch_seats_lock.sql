-- Seats a batch needs, locked in id order, waiting for other transactions.
SELECT id, option_id, seat_no, grade, price, status, reservation_id, held_until, version, fence
FROM seats WHERE id = ANY($1) ORDER BY id FOR UPDATE
