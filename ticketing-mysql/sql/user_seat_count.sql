-- Seats of an option the user holds (unexpired at now, the third parameter) or owns.
SELECT CAST(COALESCE(SUM(seat_count), 0) AS SIGNED)
FROM reservations
WHERE user_id = ? AND option_id = ?
  AND (status = 'confirmed' OR (status = 'held' AND expires_at > ?))
