-- Available = free, or held by a hold whose time has passed (the first parameter is now): the SQL
-- mirror of rules::effective_seat_state. SUM is DECIMAL in MySQL: cast back to an integer.
SELECT o.id, o.concert_id, o.starts_at, o.sale_opens_at, o.sale_closes_at,
       COUNT(s.id) AS total,
       CAST(COALESCE(SUM(s.status = 'available' OR (s.status = 'held' AND s.held_until <= ?)), 0)
            AS SIGNED) AS available
FROM show_options o
LEFT JOIN seats s ON s.option_id = o.id
WHERE o.concert_id = ?
GROUP BY o.id, o.concert_id, o.starts_at, o.sale_opens_at, o.sale_closes_at
ORDER BY o.id
