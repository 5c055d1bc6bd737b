-- The ids list is expanded to one placeholder per seat (MySQL has no array parameters).
SELECT id, option_id, seat_no, grade, price, status, reservation_id, held_until, version, fence
FROM seats WHERE id IN ({ids}) ORDER BY id FOR UPDATE
