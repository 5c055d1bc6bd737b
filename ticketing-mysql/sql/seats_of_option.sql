SELECT id, option_id, seat_no, grade, price, status, reservation_id, held_until, version, fence
FROM seats WHERE option_id = ? ORDER BY id
