-- Seats the expiry sweeper frees, locked in id order; a seat another transaction has locked
-- is skipped (its reservation is left for a later sweep), so expiring never waits on a hold.
SELECT id, option_id, seat_no, grade, price, status, reservation_id, held_until, version, fence
FROM seats WHERE id IN ({ids}) ORDER BY id FOR UPDATE SKIP LOCKED
