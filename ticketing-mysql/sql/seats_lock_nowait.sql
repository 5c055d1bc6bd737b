-- A seat another transaction has locked fails the statement at once (MariaDB: error 1205,
-- MySQL 8: 3572), answered seat_unavailable.
SELECT id, option_id, seat_no, grade, price, status, reservation_id, held_until, version, fence
FROM seats WHERE id IN ({ids}) ORDER BY id FOR UPDATE NOWAIT
