-- Seats wanted only by holds, under NOWAIT: a seat another transaction has locked is skipped,
-- and the holds that want it are answered seat_unavailable.
SELECT id, option_id, seat_no, grade, price, status, reservation_id, held_until, version, fence
FROM seats WHERE id = ANY($1) ORDER BY id FOR UPDATE SKIP LOCKED
