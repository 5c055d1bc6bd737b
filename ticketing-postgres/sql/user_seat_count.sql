-- Seats of an option the user holds (unexpired, $3 is now) or owns.
SELECT coalesce(sum(cardinality(seat_ids)), 0)::BIGINT
FROM reservations
WHERE user_id = $1 AND option_id = $2
  AND (status = 'confirmed' OR (status = 'held' AND expires_at > $3))
